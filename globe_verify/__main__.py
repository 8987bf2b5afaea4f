"""``python -m globe_verify BUNDLE``."""

from __future__ import annotations

from globe_verify.cli import main

raise SystemExit(main())

"""Entry point for ``python -m globe_admin``."""

from globe_admin.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

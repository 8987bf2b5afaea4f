"""``globe-verify``: check a GlobE Link evidence bundle offline (docs/PROTOCOL.md §9.3).

A court, or a central authority preparing the formal mutual legal assistance
request, runs it on the bundle file an authority gave it.  It trusts neither
authority: every claim is checked against the network's genesis (pinned with
``--genesis-fingerprint``), the admin-signed membership log and the hub's and the
authorities' signatures, by :mod:`protocol` alone.  It opens no network
connection and writes nothing but its report.  Installable on its own: it needs
only :mod:`protocol` and its cryptography libraries (``verify/pyproject.toml``).
"""

from __future__ import annotations

__all__: list[str] = []

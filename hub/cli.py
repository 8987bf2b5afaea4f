"""Command-line interface of the GlobE Link hub (``globe-hub``)."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

PROG = "globe-hub"
DISTRIBUTION = "globe-link"


def _version() -> str:
    """Return the installed distribution version, or ``unknown`` if not installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for ``globe-hub``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "GlobE Link hub: membership, signed directory and store-and-forward "
            "routing for the GlobE Link secure messaging network."
        ),
        epilog="No subcommands are implemented yet.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} {_version()}",
        help="print the program version and exit",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``globe-hub`` command line; return the process exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    # No subcommands exist yet: show what the program is and succeed.
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

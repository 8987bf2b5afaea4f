"""Placeholder demo entry point; to be replaced by the real end-to-end demo."""

import sys


def main() -> int:
    """Report that the demo is not implemented yet."""
    sys.stdout.write("demo: not yet implemented\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

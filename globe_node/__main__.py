"""Entry point for ``python -m globe_node``."""

from globe_node.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

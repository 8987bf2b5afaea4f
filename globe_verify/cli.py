"""``globe-verify BUNDLE``: verify an evidence bundle offline and print its chain of custody.

Exit status: 0 when everything verifies; 1 when the bundle is refused (one line per failure
on standard error: ``globe-verify: <reason>: <item>: <detail>``); 2 when the command line
is wrong or the file cannot be read.  The file is mapped into memory read-only and read
member by member (docs/PROTOCOL.md §9.3.1): nothing is extracted, nothing is written
except the report on standard output, and no network connection is opened.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import sys
from pathlib import Path
from typing import Final

import orjson

from globe_verify.report import render
from protocol.bundle import BundleReport, verify_bundle

__all__ = ["PROG", "main"]

PROG: Final = "globe-verify"
EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Verify a GlobE Link evidence bundle offline and print its chain of custody.",
        epilog="Exit status: 0 verified, 1 refused (one line per failure on stderr), 2 usage or"
        " unreadable file. See docs/PROTOCOL.md §9.3.",
    )
    parser.add_argument("bundle", metavar="BUNDLE", type=Path, help="the bundle file (a ZIP)")
    parser.add_argument(
        "--genesis-fingerprint",
        metavar="DIGITS",
        help="the network's genesis fingerprint as its secretariat publishes it (twelve groups"
        " of five digits): the bundle is refused unless its genesis has it",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    return parser


def _read(path: Path) -> tuple[bytes | mmap.mmap, str]:
    """The file mapped read-only (or its bytes, if empty), and its SHA-256."""
    with path.open("rb") as f:
        size = path.stat().st_size
        data: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    return data, hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Run ``globe-verify``; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        data, digest = _read(args.bundle)
    except OSError as exc:
        print(f"{PROG}: error: cannot read {args.bundle}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = verify_bundle(memoryview(data), pinned=args.genesis_fingerprint)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    _print(report, args.bundle, digest, as_json=args.json)
    for failure in report.failures:
        print(f"{PROG}: {failure.line()}", file=sys.stderr)
    return 0 if report.ok else EXIT_REFUSED


def _print(report: BundleReport, path: Path, digest: str, *, as_json: bool) -> None:
    if as_json:
        out = {"file": str(path), "sha256": digest, **report.to_json()}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        lines = render(report, source=f"{path} (SHA-256 {digest})")
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()

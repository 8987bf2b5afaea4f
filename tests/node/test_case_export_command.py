"""``globe-node case export`` keeps only a bundle that verifies, under the name asked for,
and never replaces a file: against a stand-in daemon that serves a valid bundle (the
vector of tests/vectors/bundle.json), an empty one or one that does not verify, or one
during whose download a file appears at that name.  Whatever is refused leaves the
directory as it was: no ``FILE``, no half-written temporary file.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from protocol.bundle import verify_bundle
from tests.node.helpers import Daemon, Ran
from tests.vectors import bundle_parts as bp

VECTOR = json.loads((Path(__file__).parents[1] / "vectors" / "bundle.json").read_text())
VALID = bytes.fromhex(VECTOR["bundle"])


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


async def test_a_verified_bundle_is_saved_under_its_name(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]], out: Path
) -> None:
    daemon.answers["bundle"] = VALID
    ran = await daemon_cli("case", "export", "OP-2026/7", "--message", "abcd1234",
                           "--hashes-only", "-o", out / "case.zip")  # fmt: skip
    assert (ran.code, ran.err) == (0, "")
    assert daemon.requests[-1][:2] == (
        "GET", "/api/cases/OP-2026%2F7/bundle?message=abcd1234&attachments=digests"
    )  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["case.zip"]
    assert (out / "case.zip").read_bytes() == VALID
    report = verify_bundle(VALID)
    assert ran.out.splitlines()[1] == (
        f"{len(report.messages)} message(s) of case OP-2026/7, verified; the export is in the"
        " audit log"
    )


@pytest.mark.parametrize(
    ("served", "error"),
    [
        (b"", "the daemon sent an empty bundle; nothing was saved"),
        (
            bp.flip(VALID, "manifest.json", 3),  # "payload" is no longer "payload"
            "the daemon's bundle does not verify (malformed: manifest.json: bundle manifest:"
            " missing field 'payload'); nothing was saved",
        ),
    ],
    ids=["empty", "not-verifying"],
)
async def test_a_bundle_that_does_not_verify_is_not_saved(
    daemon: Daemon,
    daemon_cli: Callable[..., Awaitable[Ran]],
    out: Path,
    served: bytes,
    error: str,
) -> None:
    daemon.answers["bundle"] = served
    ran = await daemon_cli("case", "export", "C-1", "-o", out / "case.zip")
    assert (ran.code, ran.out, ran.err) == (1, "", f"globe-node: error: {error}\n")
    assert list(out.iterdir()) == []


async def test_a_file_that_appears_during_the_download_is_not_replaced(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]], out: Path
) -> None:
    target = out / "case.zip"
    daemon.answers["bundle"] = VALID
    daemon.answers["mid-bundle"] = lambda: target.write_bytes(b"someone else's")
    ran = await daemon_cli("case", "export", "C-1", "-o", target)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == f"globe-node: error: {target} already exists; refusing to overwrite it\n"
    assert [p.name for p in out.iterdir()] == ["case.zip"]
    assert target.read_bytes() == b"someone else's"


async def test_an_export_needs_an_existing_directory(
    daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]], out: Path
) -> None:
    daemon.answers["bundle"] = VALID
    ran = await daemon_cli("case", "export", "C-1", "-o", out / "missing" / "case.zip")
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == f"globe-node: error: directory {out / 'missing'} does not exist\n"
    assert list(out.iterdir()) == []
    assert daemon.requests == []  # refused before the daemon is asked

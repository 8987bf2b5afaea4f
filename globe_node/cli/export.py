"""``globe-node case export CASE [--message ID] [--hashes-only] -o FILE``: a case's evidence
bundle (docs/PROTOCOL.md §9.3), saved where the user says.

The daemon gathers, checks, audits and streams the bundle (``GET
/api/cases/{case}/bundle``); this command writes it, with the rights of whoever runs it,
under a temporary name next to ``FILE``, verifies it with the verifier's own code (the
bytes on disk, not the daemon's word), and only then gives it its name.  An existing
``FILE`` is never replaced.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path
from urllib.parse import urlencode

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.apiclient import ApiClient, segment
from globe_node.cli.common import api_command
from protocol.bundle import BundleReport, verify_bundle

__all__ = ["export"]


@api_command("export", short_help="save the case as an evidence bundle a court verifies offline")
@click.argument("case", metavar="CASE")
@click.option("--message", metavar="ID", help="only this message and its replies (one exchange)")
@click.option(
    "--hashes-only", is_flag=True, help="list each attachment's SHA-256 instead of the file"
)
@click.option(
    "-o", "--output", type=cli.PATH, required=True, metavar="FILE", help="the bundle file to write"
)
async def export(
    api: ApiClient, *, case: str, message: str | None, hashes_only: bool, output: Path
) -> cli.Result:
    """Save the evidence bundle of CASE (or of one exchange in it) to FILE."""
    output = output.absolute()
    if output.exists():
        raise CommandError(f"{output} already exists; refusing to overwrite it")
    if not output.parent.is_dir():
        raise CommandError(f"directory {output.parent} does not exist")
    wanted = (("message", message), ("attachments", "digests" if hashes_only else None))
    query = {k: v for k, v in wanted if v}
    path = f"/api/cases/{segment(case)}/bundle" + (f"?{urlencode(query)}" if query else "")
    staged = output.with_name(f".{output.name}.unverified")
    try:
        size = await api.download(path, staged, cli.progress(output.name))
        report, digest = _verify(staged)
        try:
            os.link(staged, output)
        except FileExistsError:
            raise CommandError(f"{output} already exists; refusing to overwrite it") from None
    finally:
        staged.unlink(missing_ok=True)
    p = report.provenance
    assert p is not None  # noqa: S101 - a verified report has one
    data = {
        "path": str(output), "size": size, "sha256": digest, "case": case, "message": p.message,
        "messages": len(report.messages), "attachments_included": p.attachments_included,
        "genesis_fingerprint": p.genesis_fingerprint, "manifest": p.manifest_digest,
    }  # fmt: skip
    lines = [
        f"wrote {output} ({size} bytes, SHA-256 {digest})",
        f"{len(report.messages)} message(s) of case {cli.safe(case)}, verified; the export is in"
        " the audit log",
        f"genesis fingerprint {p.genesis_fingerprint}",
        f"to verify offline: globe-verify {output} --genesis-fingerprint '{p.genesis_fingerprint}'",
    ]
    return data, lines


def _verify(path: Path) -> tuple[BundleReport, str]:
    """Verify the downloaded file as a court would; its report and SHA-256."""
    if path.stat().st_size == 0:
        raise CommandError("the daemon sent an empty bundle; nothing was saved")
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        digest = hashlib.sha256(data).hexdigest()
        report = verify_bundle(memoryview(data))
    if not report.ok:
        raise CommandError(
            f"the daemon's bundle does not verify ({report.failures[0].line()}); nothing was saved"
        )
    return report, digest

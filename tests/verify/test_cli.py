"""``globe-verify``: the report a court reads, the exit statuses, the console script
(globe_verify/cli.py, globe_verify/report.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from globe_verify.cli import main
from globe_verify.report import render
from protocol.bundle import BundleMessage, build_bundle, message_prefix, verify_bundle
from protocol.envelope import parse_envelope
from protocol.ids import AuthorityId
from protocol.messages import Forwarded, Handling, Kind, MessageContent, SignedContent, Tlp, Urgency
from tests.vectors import bundle_parts as bp
from tests.vectors.vectorlib import ADMIT_AT, NOW, HpkePool, build_network, member

POOL = HpkePool()


@cache
def ex() -> bp.Exchange:
    return bp.exchange(build_network(), POOL)


def fingerprint() -> str:
    return ex().net.genesis.fingerprint()


def written(tmp_path: Path, data: bytes, name: str = "case.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def verify(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_verified_bundle_prints_its_chain_of_custody(tmp_path, capsys) -> None:
    path = written(tmp_path, ex().bundle())
    code, out, err = verify(capsys, path, "--genesis-fingerprint", fingerprint())
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "GlobE Link evidence bundle: VERIFIED"
    assert "           pinned: it matches" in lines
    request = ex().sealed["request"].message_id
    assert f"1. request {request}  [TLP:AMBER, intelligence-only]" in lines
    assert "   hub        accepted at 2026-01-01T01:59:01Z for DE-BKA" in lines
    assert "   hub        delivered at 2026-01-01T01:59:03Z for DE-BKA" in lines
    assert any(x.startswith("   receipt    DE-BKA at 2026-01-01T01:59:02Z") for x in lines)
    assert any(x.startswith("   attachment 1: releves-bancaires-2025.bin") for x in lines)
    assert "   !          INTELLIGENCE ONLY: not evidence without a formal MLA request" in lines
    assert (
        "HANDLING   this bundle holds TLP:AMBER material: keep and pass the file on at that"
        " level" in lines
    )
    assert "Membership facts relied on (the log, as of the hub's checkpoint)" in lines
    assert not any(x.startswith("Failures") for x in lines)


def test_json_is_the_report_with_the_files_digest(tmp_path, capsys) -> None:
    path = written(tmp_path, ex().bundle())
    code, out, _ = verify(capsys, path, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["file"] == str(path)
    assert data["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    assert data["ok"] is True
    assert data["provenance"]["pinned"] is False
    assert [m["kind"] for m in data["messages"]] == ["request", "status", "answer"]


def test_an_unpinned_bundle_says_to_compare_the_fingerprint(tmp_path, capsys) -> None:
    code, out, _ = verify(capsys, written(tmp_path, ex().bundle(included=False)))
    assert code == 0
    assert "NOT PINNED: compare it with the fingerprint the network's secretariat publishes" in out
    assert "NOT included, SHA-256 4707a21b" in out
    assert "attachment digests only" in out


def test_each_failure_is_one_typed_line_and_the_status_is_1(tmp_path, capsys) -> None:
    data = ex().bundle()
    name = bp.named(data, "content.json")
    code, out, err = verify(capsys, written(tmp_path, bp.flip(data, name, 40)))
    assert code == 1
    assert err.splitlines() == [
        f"globe-verify: item-altered: {name}: its bytes are not those the manifest lists",
        f"globe-verify: bad-signature: {name}: signature does not verify",
    ]
    assert out.splitlines()[0] == "GlobE Link evidence bundle: REFUSED (2 failure(s))"
    assert f"  item-altered: {name}: its bytes are not those the manifest lists" in out
    code, _, err = verify(capsys, written(tmp_path, data, "b.zip"), "--genesis-fingerprint",
                          "00000 " * 12)  # fmt: skip
    assert code == 1
    assert err.startswith("globe-verify: genesis-mismatch: genesis.json: the bundle's network")


def test_a_file_that_is_not_a_bundle_or_not_readable(tmp_path, capsys) -> None:
    code, out, err = verify(capsys, written(tmp_path, b"", "empty.zip"))
    assert code == 1
    assert (
        err == "globe-verify: malformed: bundle: not a bundle (no ZIP member at the start"
        " of the file)\n"
    )
    assert "network    " not in out
    code, out, err = verify(capsys, tmp_path / "absent.zip")
    assert (code, out) == (2, "")
    assert (
        err == f"globe-verify: error: cannot read {tmp_path / 'absent.zip'}: No such file or"
        " directory\n"
    )
    with pytest.raises(SystemExit) as usage:
        main([])
    assert usage.value.code == 2


def test_the_report_names_a_forward_an_uncertified_signer_and_direct_delivery() -> None:
    n = ex().net
    green = bp.information("x", Handling(Tlp.GREEN))
    origin = bp.seal(n, POOL, "v/origin", sender="IT-ANAC", recipients=[("DE-BKA", 1)],
                     content=green, created=ADMIT_AT - 30)  # fmt: skip
    proof = SignedContent(parse_envelope(origin.envelope).header.raw, origin.content,
                          origin.signature)  # fmt: skip
    fwd = MessageContent(
        kind=Kind.INFORMATION, subject="Fwd", body="b", language="en", urgency=Urgency.ROUTINE,
        handling=Handling(Tlp.RED), forwarded=Forwarded(proof),
    )  # fmt: skip
    f = bp.seal(n, POOL, "v/fwd", sender="FR-PNF", recipients=[("DE-BKA", 1)], content=fwd,
                created=NOW - 10)  # fmt: skip
    clear = bp.information("y", Handling(Tlp.CLEAR))
    early = bp.seal(n, POOL, "v/early", sender="DE-BKA", recipients=[("FR-PNF", 1)],
                    content=clear, created=ADMIT_AT - 5)  # fmt: skip
    data = build_bundle(
        genesis=n.genesis, entries=n.entries, checkpoint=bp.checkpoint(n), exporter=
        AuthorityId.parse("FR-PNF"), identity=member(n, "FR-PNF").identity, created=NOW,
        messages=[BundleMessage(f.envelope, f.content, f.signature),
                  dataclasses.replace(bp.held(n, early, "DE-BKA", NOW), receipts=())],
    )  # fmt: skip
    report = verify_bundle(data)
    lines = render(report, source="x")
    early_prefix = message_prefix(member(n, "DE-BKA").authority, early.message_id)
    fwd_prefix = message_prefix(member(n, "FR-PNF").authority, f.message_id)
    assert [f.item for f in report.failures] == [
        early_prefix + "content.json", fwd_prefix + "content.json",
    ]  # fmt: skip
    assert any(x.startswith(f"   forwards   {origin.message_id} of IT-ANAC") and
               x.endswith("(fingerprint NOT certified then)") for x in lines)  # fmt: skip
    assert any("DE-BKA (NOT a certified, active member then: see the failures)" in x
               for x in lines)  # fmt: skip
    assert sum(x.startswith("   hub        no hub evidence") for x in lines) == 2
    assert (
        "HANDLING   this bundle holds TLP:RED material: keep and pass the file on at that"
        " level" in lines
    )
    assert lines[-1].startswith("  not-certified: ")


def test_a_bundle_without_messages_or_case_still_tells_its_provenance() -> None:
    n = ex().net
    data = build_bundle(
        genesis=n.genesis, entries=n.entries, checkpoint=bp.checkpoint(n), messages=[],
        exporter=AuthorityId.parse("FR-PNF"), identity=member(n, "FR-PNF").identity, created=NOW,
        message=ex().sealed["request"].message_id,
    )  # fmt: skip
    lines = render(verify_bundle(data), source="x")
    assert any(x.startswith("exported   by FR-PNF at 2026-01-01T02:00:00Z: no case, the exchange")
               for x in lines)  # fmt: skip
    assert not any(x.startswith("HANDLING") for x in lines)


def test_the_console_script_runs_as_a_process(tmp_path) -> None:
    path = written(tmp_path, ex().bundle())
    script = Path(sys.executable).with_name("globe-verify")
    ran = subprocess.run(
        [script, path, "--genesis-fingerprint", fingerprint()], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.startswith("GlobE Link evidence bundle: VERIFIED\n")
    ran = subprocess.run([sys.executable, "-m", "globe_verify", tmp_path / "none.zip"],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert ran.returncode == 2

"""Evidence bundles on real nodes and a real hub (globe_node/bundles.py, the local API route,
``globe-node case export``; docs/PROTOCOL.md §9.3).

FR-PNF asks DE-BKA for records with an attachment; DE-BKA acknowledges and answers; FR-PNF
exports the case, and the bundle verifies offline, as a file, with ``globe-verify`` run as
a process; each tampering of that very file is refused with its named reason; DE-BKA's RED
message is refused for export until DE-BKA consents; every export and refusal is audited.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import delete, select, update

from globe_node import db
from globe_node.bundles import Bundles
from globe_node.cli import main
from protocol.attachments import AttachmentEncryptor
from protocol.bundle import log_name, verify_bundle
from protocol.errors import PROBLEM_BASE, StorageError
from protocol.messages import (
    Consent,
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
)
from tests.node.helpers import delivered
from tests.node.network import Net, RunningNode, add_user, stage
from tests.support.waiting import eventually
from tests.vectors import bundle_parts as bp

pytestmark = pytest.mark.slow

CASE = "OP-2026/7"
LEDGER = b"ledger of Societe Anonyme Exemple\n" * 500


def request(handling: Handling) -> MessageContent:
    return MessageContent(
        kind=Kind.REQUEST, subject="Bank records", body="Please send the statements.",
        language="en", urgency=Urgency.PRIORITY, handling=handling, case=CASE,
    )  # fmt: skip


async def received(rn: RunningNode, mid: str) -> bool:
    return any(str(m.id) == mid for m in await rn.n.inbox(limit=1000))


async def bundle(rn: RunningNode, token: str, query: str = "") -> tuple[int, Any]:
    return await rn.api("GET", f"/api/cases/OP-2026%2F7/bundle{query}", token=token)


async def exchange(net: Net) -> tuple[RunningNode, RunningNode, str, str]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    de = await net.member("DE-BKA", "Bundeskriminalamt")
    upload = await stage(fr.n, LEDGER, name="ledger.txt", media_type="text/plain")
    mid = str(await fr.n.send([de.me], request(Handling(Tlp.AMBER)), uploads=[upload]))
    await eventually(lambda: delivered(fr, mid, de))
    ack = await de.n.update_status(
        mid, StatusUpdate(StatusState.ACKNOWLEDGED, expected=net.genesis.created + 40 * 86400)
    )
    answer = await de.n.reply(mid, kind=Kind.ANSWER, body="The statements follow.")
    for reply in (str(ack), str(answer)):
        await eventually(partial(received, fr, reply))
    sup = await add_user(fr.n, "sup", "supervisor")
    return fr, de, mid, sup


async def test_a_case_exported_verifies_offline_and_each_tampering_is_named(
    net: Net, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fr, _de, mid, sup = await exchange(net)
    status, data = await bundle(fr, sup)
    assert status == 200, data
    pin = net.genesis.fingerprint()
    report = verify_bundle(data, pinned=pin)
    assert report.ok, [f.line() for f in report.failures]
    assert [(m.kind, m.sender) for m in report.messages[:1]] == [("request", "FR-PNF")]
    assert sorted((m.kind, m.sender) for m in report.messages[1:]) == [
        ("answer", "DE-BKA"), ("status", "DE-BKA"),
    ]  # fmt: skip
    req = report.messages[0]
    assert req.message_id == mid
    assert [r.recipient for r in req.receipts] == ["DE-BKA"]
    assert [e.kind for e in req.evidence] == ["delivered"]  # the node keeps the latest
    assert [(a.name, a.size) for a in req.attachments] == [("ledger.txt", len(LEDGER))]
    assert report.provenance is not None
    assert (report.provenance.exporter, report.provenance.case) == ("FR-PNF", CASE)
    # the file, through the command line, then globe-verify as a process
    token = fr.config.directory / "sup.token"
    token.write_text(sup)
    out = tmp_path / "case.zip"
    argv = ["case", "export", CASE, "-o", str(out), "--json", "--dir", str(fr.config.directory),
            "--token-file", str(token)]  # fmt: skip
    capfd.readouterr()
    assert await asyncio.to_thread(main, argv) == 0
    printed = capfd.readouterr().out
    assert f'"path": "{out}"' in printed
    assert '"messages": 3' in printed
    assert verify_bundle(out.read_bytes(), pinned=pin).ok
    again = await asyncio.to_thread(main, argv)
    assert (again, capfd.readouterr().err.strip()) == (
        1, f"globe-node: error: {out} already exists; refusing to overwrite it",
    )  # fmt: skip
    ran = subprocess.run(
        [Path(sys.executable).with_name("globe-verify"), out, "--genesis-fingerprint", pin],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.startswith("GlobE Link evidence bundle: VERIFIED\n")
    # each tampering of that file, named
    original = out.read_bytes()
    prefix = f"messages/FR-PNF/{mid}/"
    de_msg = bp.named(original, "content.json", sender="DE-BKA").rsplit("/", 1)[0] + "/"
    receipt = dict(bp.members(original))[prefix + "receipt-DE-BKA.json"]
    sig_at = receipt.index(b'"sig":"') + 12
    swap = b"B" if receipt[sig_at : sig_at + 1] == b"A" else b"A"
    cases = {
        "content": (bp.flip(original, prefix + "content.json", 30),
                    [("item-altered", prefix + "content.json"),
                     ("bad-signature", prefix + "content.json")]),
        "receipt": (bp.edit(original, prefix + "receipt-DE-BKA.json",
                            lambda d: d[:sig_at] + swap + d[sig_at + 1:]),
                    [("item-altered", prefix + "receipt-DE-BKA.json"),
                     ("bad-signature", prefix + "receipt-DE-BKA.json")]),
        "log": (bp.flip(original, log_name(1), 40), [("malformed", log_name(1))]),
        "signature": (bp.flip(original, de_msg + "signature.bin", 7),
                      [("item-altered", de_msg + "signature.bin"),
                       ("bad-signature", de_msg + "content.json")]),
        "manifest": (bp.flip(original, "manifest.json", 3), [("malformed", "manifest.json")]),
        "missing": (bp.edit(original, prefix + "evidence-1.json", lambda d: None),
                    [("item-missing", prefix + "evidence-1.json")]),
        "extra": (bp.add(original, prefix + "evidence-2.json", receipt),
                  [("item-unlisted", prefix + "evidence-2.json"),
                   ("malformed", prefix + "evidence-2.json")]),
        "attachment": (bp.flip(original, prefix + "attachment-1", 100),
                       [("item-altered", prefix + "attachment-1")]),
    }  # fmt: skip
    for what, (tampered, want) in cases.items():
        got = [(f.slug, f.item) for f in verify_bundle(tampered, pinned=pin).failures]
        assert got == want, what
    assert [(f.slug, f.item) for f in verify_bundle(original, pinned="1" * 60).failures] == [
        ("genesis-mismatch", "genesis.json")
    ]
    # the export is in the audit log, with the manifest that names every item
    entries, ok = await fr.n.audit.entries()
    exports = [e for e in entries if e["action"] == "export"]
    assert ok
    assert [e["user"] for e in exports] == ["sup", "sup"]
    assert exports[0]["subject"] == (
        f"bundle of case {CASE}: 3 messages, attachments included, manifest"
        f" {report.provenance.manifest_digest}"
    )


async def test_one_exchange_and_digests_only(net: Net) -> None:
    fr, _de, mid, sup = await exchange(net)
    status, data = await bundle(fr, sup, f"?message={mid[:8]}&attachments=digests")
    assert status == 200
    report = verify_bundle(data)
    assert report.ok
    assert report.provenance is not None
    assert (report.provenance.message, report.provenance.attachments_included) == (mid, False)
    assert [a.item for a in report.messages[0].attachments] == [None]
    assert len(report.messages) == 3  # the request and both replies to it
    status, answer = await bundle(fr, sup, "?message=" + "f" * 32)
    assert (status, answer["type"]) == (404, PROBLEM_BASE + "not-found")
    status, answer = await fr.api("GET", "/api/cases/NOPE/bundle", token=sup)
    assert (status, answer["type"]) == (404, PROBLEM_BASE + "not-found")


async def test_red_material_of_another_authority_is_exported_only_with_its_consent(
    net: Net,
) -> None:
    fr, de, _mid, sup = await exchange(net)
    red = MessageContent(
        kind=Kind.INFORMATION, subject="Beneficial owner", body="Only for you.", language="en",
        urgency=Urgency.URGENT, handling=Handling(Tlp.RED), case=CASE,
    )  # fmt: skip
    secret = str(await de.n.send([fr.me], red))
    await eventually(lambda: received(fr, secret))
    status, answer = await bundle(fr, sup)
    assert (status, answer["type"]) == (403, PROBLEM_BASE + "consent-required")
    assert answer["detail"].startswith(
        f"message {secret} of DE-BKA is TLP:RED: only its originator"
    )
    entries, _ = await fr.n.audit.entries()
    assert entries[-1]["action"] == "export-refused"
    assert entries[-1]["subject"].startswith(f"bundle of case {CASE}: consent-required: ")
    # FR-PNF asks DE-BKA, naming itself; DE-BKA grants: the export goes, with both
    asked = str(await fr.n.request_consent(
        secret, [fr.me], "Evidence bundle for the formal MLA request", user="sup"))  # fmt: skip
    await eventually(lambda: received(de, asked))
    # a refusal lets nothing through
    refusal = str(await de.n.reply(
        asked, kind=Kind.CONSENT_DECISION, body="Not yet.",
        consent=Consent(await _message_id(secret), (fr.me,), None, ConsentDecision.REFUSED,
                        "not before the hearing"),
    ))  # fmt: skip
    await eventually(lambda: received(fr, refusal))
    assert (await bundle(fr, sup))[1]["type"] == PROBLEM_BASE + "consent-required"
    grant = str(await de.n.reply(
        asked, kind=Kind.CONSENT_DECISION, body="Granted for the MLA request.",
        consent=Consent(await _message_id(secret), (fr.me,), None, ConsentDecision.GRANTED),
    ))  # fmt: skip
    await eventually(lambda: received(fr, grant))
    status, data = await bundle(fr, sup)
    assert status == 200, data
    report = verify_bundle(data)
    assert report.ok, [f.line() for f in report.failures]
    basis = {m.message_id: m.basis for m in report.messages}
    assert basis[secret] == f"consent {grant} of DE-BKA"
    assert {asked, grant} <= set(basis)


async def _message_id(text: str) -> Any:
    from protocol.ids import MessageId  # noqa: PLC0415

    return MessageId.parse(text)


async def refusal(rn: RunningNode, token: str, query: str = "") -> tuple[int, str, str]:
    """A refused export: status, problem type and detail."""
    status, answer = await bundle(rn, token, query)
    assert isinstance(answer, dict), (status, answer[:100])
    return status, answer["type"].removeprefix(PROBLEM_BASE), answer["detail"]


async def test_each_refusal_is_named_audited_and_leaves_nothing_behind(
    net: Net, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """What the node cannot prove is refused before a byte is sent: the refusal named,
    audited, and through the command line nothing written where the bundle was to go."""
    fr, _de, mid, sup = await exchange(net)
    held = await fr.n.content_of(mid)
    blob = fr.n.ctx.blob_path(fr.me, held.content.attachments[0].blob)
    answer = next(m.id for m in await fr.n.inbox() if m.kind == "answer")
    refusals: list[tuple[int, str, str]] = []

    async def refused(want: tuple[int, str, str], query: str = "", case: str = CASE) -> None:
        path = f"/api/cases/{quote(case, safe='')}/bundle{query}"
        status, body = await fr.api("GET", path, token=sup)
        got = (status, body["type"].removeprefix(PROBLEM_BASE), body["detail"])
        assert got == want
        refusals.append(got)

    # a case opened here that holds no message yet
    assert (await fr.api("POST", "/api/cases", {"case": "EMPTY-1"}, token=sup))[0] == 201
    await refused((404, "not-found", "case EMPTY-1 holds no message: there is nothing to export"),
                  case="EMPTY-1")  # fmt: skip
    # an attachment file gone from the node: only its digest can be exported
    gone = "attachment 'ledger.txt' is no longer on this node: export with digests only"
    kept = blob.with_name("kept")
    blob.rename(kept)
    await refused((404, "not-found", gone))
    token = fr.config.directory / "sup.token"
    token.write_text(sup)
    target = tmp_path / "exports"
    target.mkdir()
    argv = ["case", "export", CASE, "-o", str(target / "case.zip"), "--dir",
            str(fr.config.directory), "--token-file", str(token)]  # fmt: skip
    capfd.readouterr()
    assert await asyncio.to_thread(main, argv) == 1
    assert capfd.readouterr().err == f"globe-node: error: {gone}\n"
    assert list(target.iterdir()) == []  # no file, no half-written one
    assert (await bundle(fr, sup, "?attachments=digests"))[0] == 200
    # the attachment file altered at rest: it does not match what was sent
    kept.rename(blob)
    original = blob.read_bytes()
    blob.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    await refused((409, "state-conflict",
                   "attachment 'ledger.txt' does not match its digest on this node"))  # fmt: skip
    blob.write_bytes(original)
    # a message stored before the node kept inner signatures: its origin is unproven
    async with fr.n.ctx.store.write() as s:
        row = await s.execute(select(db.InMessage).where(db.InMessage.message_id == answer))
        stored = row.scalar_one()
        signature, stored.inner_signature = stored.inner_signature, None
    await refused((409, "state-conflict",
                   f"message {answer} was stored before this node kept signatures: its origin"
                   " cannot be proven, so it cannot go in a bundle"))  # fmt: skip
    async with fr.n.ctx.store.write() as s:
        await s.execute(update(db.InMessage).where(db.InMessage.message_id == answer)
                        .values(inner_signature=signature))  # fmt: skip
    # DE-BKA's receipt altered in the store: the bundle would not verify, so none is made
    async with fr.n.ctx.store.write() as s:
        row = await s.execute(select(db.OutRecipient).where(db.OutRecipient.message_id == mid))
        recipient = row.scalar_one()
        receipt = recipient.receipt
        assert receipt is not None
        recipient.receipt = receipt.replace(b'"sig":"', b'"sig":"A', 1)
    status, kind, detail = await refusal(fr, sup)
    assert (status, kind) == (409, "state-conflict")
    assert detail.startswith("the bundle would not verify (")
    assert f"messages/FR-PNF/{mid}/receipt-DE-BKA.json" in detail
    assert detail.endswith("): nothing was written")
    refusals.append((status, kind, detail))
    async with fr.n.ctx.store.write() as s:
        await s.execute(update(db.OutRecipient).where(db.OutRecipient.message_id == mid)
                        .values(receipt=receipt))  # fmt: skip
    assert (await bundle(fr, sup))[0] == 200  # all of it restored: the export goes again
    # no hub checkpoint ever confirmed the directory, and the hub is out of reach
    await net.stop_hub()
    async with fr.n.ctx.store.write() as s:
        await s.execute(delete(db.Meta).where(db.Meta.key == "checkpoint"))
    await refused((409, "log-stale",
                   "no hub checkpoint has confirmed this node's directory yet: the hub must be"
                   " reachable once before a bundle can prove who was a member"))  # fmt: skip
    # every refusal is in the audit log, with its reason
    entries, ok = await fr.n.audit.entries()
    assert ok
    logged = [e["subject"] for e in entries if e["action"] == "export-refused"]
    what = [f"bundle of case {'EMPTY-1' if 'EMPTY-1' in d else CASE}: {k}: {d}"
            for _, k, d in refusals]  # fmt: skip
    assert logged == [what[0], what[1], what[1], *what[2:]]  # the API's, then the command's


async def test_large_and_empty_attachments_and_a_forward_and_a_file_changed_mid_stream(
    net: Net,
) -> None:
    """Attachments stream decrypted piece by piece (one of more than a read's megabyte,
    one empty); a forward carries its original's proof; and a file that changed after
    the check stops the stream short instead of sending something else."""
    fr = await net.member("FR-PNF", "Parquet national financier")
    de = await net.member("DE-BKA", "Bundeskriminalamt")
    scan = bytes(range(256)) * 5000  # 1.28 MB
    staged = [await stage(fr.n, scan, name="scan.pdf", media_type="application/pdf"),
              await stage(fr.n, b"", name="empty.txt", media_type="text/plain")]  # fmt: skip
    note = MessageContent(
        kind=Kind.INFORMATION, subject="Scans", body="Both files.", language="en",
        urgency=Urgency.ROUTINE, handling=Handling(Tlp.CLEAR), case=CASE,
    )  # fmt: skip
    mid = str(await fr.n.send([de.me], note, uploads=staged))
    await eventually(lambda: delivered(fr, mid, de))
    fwd = str(await de.n.forward(mid, [fr.me], note="Back to you, for the file."))
    await eventually(lambda: received(fr, fwd))
    sup = await add_user(fr.n, "sup", "supervisor")
    status, data = await bundle(fr, sup)
    assert status == 200, data
    report = verify_bundle(data)
    assert report.ok, [f.line() for f in report.failures]
    assert sorted((m.sender, m.message_id) for m in report.messages) == [
        ("DE-BKA", fwd), ("FR-PNF", mid)
    ]  # fmt: skip
    for m in report.messages:
        assert [(a.name, a.size) for a in m.attachments] == [("scan.pdf", 256 * 5000),
                                                              ("empty.txt", 0)]  # fmt: skip
    zipped = dict(bp.members(data))
    assert zipped[f"messages/FR-PNF/{mid}/attachment-1"] == scan
    assert zipped[f"messages/FR-PNF/{mid}/attachment-2"] == b""
    # the file of the scan replaced, after the check, by another under the same key
    bundles = Bundles(ctx=fr.n.ctx, directory=fr.n.directory, audit=fr.n.audit)
    export = await bundles.export(CASE, message=None, included=True, user="sup")
    att = (await fr.n.content_of(mid)).content.attachments[0]
    enc = AttachmentEncryptor(att.key, att.blob)
    other = enc.header() + enc.update(scan[::-1]) + enc.finalize()
    fr.n.ctx.blob_path(fr.me, att.blob).write_bytes(other)
    sent = bytearray()

    async def send() -> None:
        async for chunk in bundles.stream(export):
            sent.extend(chunk)

    with pytest.raises(StorageError) as stopped:
        await send()
    assert stopped.value.detail == "attachment 'scan.pdf' changed while the bundle was sent"
    assert len(sent) < export.size

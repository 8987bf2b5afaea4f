"""What a node does with what arrives for it: each kind of hub mailbox item that does
not fit (receipts it cannot match, notices of the wrong kind, junk, a conflicting
envelope) is refused with a log line -- notices acknowledged, envelopes kept for another
try, alerts raised -- and an envelope whose attachments do not match its header or its
manifest is refused and its blob erased."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import orjson
import pytest

from globe_io.hubclient import MailboxItem
from globe_node import db
from protocol import canonical, crypto
from protocol.attachments import AttachmentEncryptor
from protocol.envelope import SealTo, seal_envelope
from protocol.errors import MalformedError
from protocol.ids import MessageId
from protocol.messages import Attachment
from protocol.receipts import Evidence, EvidenceKind, make_receipt
from tests.node.helpers import alerts, delivered, info, out_row, seal
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


async def test_mailbox_items_that_do_not_fit_are_refused_and_only_notices_acknowledged(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)
    mid = str(await fr.n.send([br.me], info("relayed by the hub")))
    await eventually(lambda: delivered(fr, mid, br))
    row = await out_row(fr, mid, "BR-PF")
    assert row.evidence is not None
    assert row.receipt is not None
    accepted, good_receipt = row.evidence, row.receipt
    # the hub's evidence of delivery, which came with Brazil's receipt
    assert Evidence.decode(accepted, net.genesis).kind is EvidenceKind.DELIVERED
    async with fr.n.sessions() as s:
        sent = await s.get(db.OutMessage, mid)
    assert sent is not None

    def receipt(signer: RunningNode, **kw: Any) -> bytes:
        base: dict[str, Any] = {
            "message_id": MessageId.parse(mid), "envelope_hash": sent.envelope_hash,
            "sender": fr.me, "recipient": signer.me, "time": int(time.time()),
        }  # fmt: skip
        base.update(kw)
        return make_receipt(genesis=net.genesis, identity=signer.keys.identity, **base).encode()

    def notice(data: bytes) -> bytes:
        return orjson.dumps({"receipt": canonical.b64e(data), "evidence": canonical.b64e(accepted)})

    # an envelope to France that conflicts with one it already stored
    first_mid = MessageId.new()
    await fr.n.receive(seal(br, fr, seq=5, message_id=first_mid), via="hub")
    conflicting = seal(br, fr, seq=5, message_id=first_mid, subject="Other words")
    items = [
        MailboxItem(101, "receipt", notice(receipt(br, sender=ke.me))),
        MailboxItem(102, "receipt", notice(receipt(br, message_id=MessageId.new()))),
        MailboxItem(103, "receipt", notice(receipt(br, envelope_hash=os.urandom(32)))),
        MailboxItem(104, "receipt", notice(receipt(ke))),
        MailboxItem(105, "receipt", b"not json"),
        MailboxItem(106, "receipt", b"{}"),
        MailboxItem(107, "non-delivery", accepted),
        MailboxItem(108, "news", b"a kind this node does not know"),
        MailboxItem(109, "receipt", notice(good_receipt)),  # delivered already: no change
        MailboxItem(110, "envelope", b"not an envelope"),
        MailboxItem(111, "envelope", conflicting),
    ]
    acked: list[tuple[list[bytes], list[int]]] = []
    real_ack = fr.n.hub.ack

    async def ack(receipts: Any = (), notices: Any = ()) -> dict[str, Any]:
        acked.append((list(receipts), list(notices)))
        return await real_ack(receipts, notices)

    fr.n.hub.ack = ack  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="globe.node")
    await fr.n.process_items(items)
    # every notice is dropped at the hub, refused or not; envelopes stay for another try
    assert acked == [([], [101, 102, 103, 104, 105, 106, 107, 108, 109])]
    # The receipts that verify are stored together after the others, so their refusals
    # (102-104: nothing of ours) come last.
    assert refusals(caplog) == [
        "mailbox item 101 refused: a receipt for a message this node did not send",
        "mailbox item 105 refused: not JSON (Expecting value at byte offset 0)",
        "mailbox item 106 refused: receipt notice: missing field 'receipt'",
        "mailbox item 107 refused: a non-delivery notice carries non-delivery evidence",
        "mailbox item 110 refused: envelope: not a GlobE envelope (bad magic)",
        "alert refused: envelope at hub cursor 110: envelope: not a GlobE envelope (bad magic)",
        "mailbox item 102 refused: the receipt names no envelope this node sent",
        "mailbox item 103 refused: the receipt names no envelope this node sent",
        "mailbox item 104 refused: the receipt's signer was not a recipient",
    ]
    after = await out_row(fr, mid, "BR-PF")
    assert (after.state, after.receipt, after.evidence, after.last_error) == (
        "delivered", good_receipt, accepted, None
    )  # fmt: skip
    assert [k for k, _ in await alerts(fr)] == ["conflict", "refused"]  # newest first
    kinds = dict(await alerts(fr))
    assert (
        kinds["refused"] == "envelope at hub cursor 110: envelope: not a GlobE envelope (bad magic)"
    )
    assert kinds["conflict"] == f"BR-PF sent message {first_mid} twice with different bytes"
    assert [m.id for m in await fr.n.inbox()] == [str(first_mid)]


def seal_with(sender: RunningNode, to: RunningNode, content: bytes, blobs: list[str]) -> bytes:
    n = sender.n
    now = n.now()
    return seal_envelope(
        genesis=n.genesis, sender=n.me, identity=sender.keys.identity,
        recipients=[SealTo(to.me, 1, to.keys.ka.public_key)], content=content, created=now,
        expires=now + 3600, dir_seq=n.state.seq, dir_head=n.state.head, blobs=blobs,
    )  # fmt: skip


async def test_envelopes_whose_attachments_do_not_match(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    blob = "ab" * 16
    # the header lists a blob the content does not describe
    envelope = seal_with(br, fr, info().encode(), [blob])
    with pytest.raises(MalformedError) as err:
        await fr.n.receive(envelope, via="hub")
    assert err.value.detail == "the attachments do not match the header's blob list"

    # the blob decrypts, but not to the manifest's digest
    key = crypto.system_rng(32)
    enc = AttachmentEncryptor(key, blob)
    data = b"the real ledger" * 1000
    path = fr.n.blob_path(br.me, blob)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_bytes(enc.header() + enc.update(data) + enc.finalize())
    manifest = Attachment("ledger.xlsx", len(data), "application/octet-stream",
                          bytes(32), key, blob)  # fmt: skip
    content = info(attachments=(manifest,)).encode()
    with pytest.raises(MalformedError) as err:
        await fr.n.receive(seal_with(br, fr, content, [blob]), via="hub")
    assert err.value.detail == "attachment 'ledger.xlsx' does not match its manifest"
    assert not path.exists()
    assert await fr.n.inbox() == []

"""The node core at its edges: mailbox items that do not fit, envelopes whose
attachments do not match, deliveries that fail for good or expire, peers behind a
proxy that answers 502, prekey choice and publication, directory syncs the node
must refuse (invalid entries, a hub ahead of or behind its own log), and a node
that has never confirmed its directory."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from sqlalchemy import select, update

from globe_io.hubclient import MailboxItem
from globe_node import db
from globe_node.errors import DirectoryStale, NotFound
from protocol import canonical, crypto
from protocol.attachments import AttachmentEncryptor
from protocol.envelope import SealTo, parse_envelope, seal_envelope
from protocol.errors import DecodeError, MalformedError, UsageError
from protocol.ids import MessageId
from protocol.keys import KemPrivateKey
from protocol.membership import Action, make_checkpoint
from protocol.messages import Attachment, Kind
from protocol.prekeys import SignedPrekey, make_prekey
from protocol.receipts import Evidence, EvidenceKind, make_receipt
from tests.node.conftest import Net, RunningNode, eventually, stage
from tests.node.test_adversarial import seal
from tests.node.test_exchange import delivered, info, recipient_states

pytestmark = pytest.mark.slow


async def out_row(rn: RunningNode, mid: str, who: str) -> db.OutRecipient:
    async with rn.n.sessions() as s:
        row = await s.get(db.OutRecipient, (mid, who))
    assert row is not None
    return row


async def alerts(rn: RunningNode) -> list[tuple[str, str]]:
    return [(a.kind, a.detail) for a in await rn.n.alerts()]


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


# --- the hub mailbox -----------------------------------------------------------------------------


async def test_mailbox_items_that_do_not_fit(net: Net, caplog: pytest.LogCaptureFixture) -> None:
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
    assert refusals(caplog) == [
        "mailbox item 101 refused: a receipt for a message this node did not send",
        "mailbox item 102 refused: the receipt names no envelope this node sent",
        "mailbox item 103 refused: the receipt names no envelope this node sent",
        "mailbox item 104 refused: the receipt's signer was not a recipient",
        "mailbox item 105 refused: not JSON (Expecting value at byte offset 0)",
        "mailbox item 106 refused: receipt notice: missing field 'receipt'",
        "mailbox item 107 refused: a non-delivery notice carries non-delivery evidence",
        "mailbox item 110 refused: envelope: not a GlobE envelope (bad magic)",
        "alert refused: envelope at hub cursor 110: envelope: not a GlobE envelope (bad magic)",
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


# --- attachments ---------------------------------------------------------------------------------


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


async def test_sending_refusals_and_progress(
    net: Net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    with pytest.raises(UsageError) as err:
        await fr.n.send([fr.me], info())
    assert err.value.detail == "a node cannot send to itself"
    with pytest.raises(UsageError) as err:
        await fr.n.send([], info())
    assert err.value.detail == "a message needs at least one recipient"
    # an upload id that is not staged, or staged by another user, is unknown
    with pytest.raises(NotFound) as nf:
        await fr.n.send([br.me], info(), uploads=["0" * 32])
    assert nf.value.detail == f"no staged upload {'0' * 32} of yours"
    data = os.urandom((1 << 20) + 5000)
    upload = await stage(fr.n, data, name="ledger.bin", user="alice")
    with pytest.raises(NotFound):
        await fr.n.send([br.me], info(), user="mallory", uploads=[upload])
    with pytest.raises(UsageError) as err:
        await fr.n.send([br.me], info(), user="alice", uploads=[upload, upload])
    assert err.value.detail == "an upload is attached once"
    assert await fr.n.outbox() == []

    mid = str(
        await fr.n.send(
            [br.me], info("with a ledger", kind=Kind.REQUEST), user="alice", uploads=[upload]
        )
    )
    assert await fr.n.staging.staged("alice") == []  # taken by the message, in its transaction
    with pytest.raises(NotFound):  # an upload is used by one message only
        await fr.n.send([br.me], info(), user="alice", uploads=[upload])
    await eventually(lambda: delivered(fr, mid, br))
    received = b"".join([c async for c in br.n.attachment_chunks(mid, 0)])
    assert received == data
    with pytest.raises(NotFound) as nf:
        _ = [c async for c in br.n.attachment_chunks(mid, 1)]
    assert nf.value.detail == f"message {mid} has no attachment 2"
    with pytest.raises(UsageError) as err:
        await fr.n.reply(mid, kind=Kind.ANSWER, body="answering myself")
    assert err.value.detail == "reply to a received message"
    # Brazil received a request but sent none: no response statistics of its own
    assert [(r.direction, r.state) for r in await br.n.requests()] == [("in", "received")]
    assert await br.n.response_stats() == {}
    assert fr.n.member(br.me).authority == br.me


# --- delivery ------------------------------------------------------------------------------------


async def test_a_sender_suspended_at_the_hub_sees_its_deliveries_fail(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)

    # France's node stops learning new log entries: the hub serves it none
    async def no_entries(since: int = 0) -> list[bytes]:
        return []

    fr.n.hub.log_entries = no_entries  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="globe.node")
    seq = fr.n.state.seq
    await net.set_status("FR-PNF", Action.SUSPEND, "under investigation")
    await net.synced(br, ke)
    with pytest.raises(MalformedError) as err:
        await fr.n.sync_directory()
    assert err.value.detail == "hub checkpoint is ahead of the log it served"
    assert fr.n.state.seq == seq
    await eventually(
        lambda: (
            "sync: hub checkpoint is ahead of the log it served"
            in [r.getMessage() for r in caplog.records]
        )
    )

    # still "active" in its own view, France sends; both paths refuse it for good
    mid = str(await fr.n.send([br.me, ke.me], info("sent while suspended")))

    async def settled() -> bool:
        return set((await recipient_states(fr, mid)).values()) == {"failed"}

    await eventually(settled)
    direct, relayed = await out_row(fr, mid, "BR-PF"), await out_row(fr, mid, "KE-EACC")
    assert (direct.last_error, direct.via) == ("request authentication failed", None)
    assert relayed.last_error is not None
    assert relayed.via is None
    assert await br.n.inbox() == []
    assert await ke.n.inbox() == []


async def test_a_message_that_cannot_leave_before_it_expires_fails(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_hub()
    mid = str(await fr.n.send([br.me], info("never leaves")))

    async def retried() -> bool:
        return (await out_row(fr, mid, "BR-PF")).attempts >= 1

    await eventually(retried)
    row = await out_row(fr, mid, "BR-PF")
    assert row.state == "queued"
    assert row.next_attempt > fr.n.now() - 1
    async with fr.n.sessions.begin() as s:
        await s.execute(
            update(db.OutMessage).where(db.OutMessage.message_id == mid).values(expires=1)
        )
        await s.execute(
            update(db.OutRecipient).where(db.OutRecipient.message_id == mid).values(next_attempt=0)
        )
    await fr.n.deliver_due()
    row = await out_row(fr, mid, "BR-PF")
    assert (row.state, row.last_error) == ("failed", "expired")
    assert await fr.n.retry(mid) == 1  # an operator may queue it again...
    await fr.n.deliver_due()
    assert (await out_row(fr, mid, "BR-PF")).state == "failed"  # ...it is still expired

    # the hub stays away: the head ages past the limit and the sync loop says so
    ping = await fr.n.ping(br.me)
    assert ping == {
        "authority": "BR-PF",
        "direct": {"ok": False, "ms": None, "error": "the peer publishes no endpoint"},
        "hub": {"ok": False, "ms": None},
    }
    caplog.set_level(logging.WARNING, logger="globe.node")
    real = fr.n.clock
    fr.n.clock = lambda: real() + fr.config.directory_max_age + 3600
    await eventually(
        lambda: any("sending is refused until the hub is reachable" in r.getMessage()
                    for r in caplog.records)
    )  # fmt: skip
    with pytest.raises(DirectoryStale):
        await fr.n.send([br.me], info())


async def test_a_proxy_answering_502_for_a_stopped_peer(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    await net.stop_node(br)

    async def bad_gateway(_r: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>502 Bad Gateway</html>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", bad_gateway)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", br.config.peer_port).start()
    try:
        ping = await fr.n.ping(br.me)
        assert ping["direct"] == {"ok": False, "ms": None, "error": "peer BR-PF answered HTTP 502"}
        assert ping["hub"]["ok"] is True
        mid = str(await fr.n.send([br.me], info("while Brazil's proxy answers 502")))

        async def relayed() -> bool:
            return (await recipient_states(fr, mid)).get("BR-PF") == "sent"

        await eventually(relayed)
        assert (await out_row(fr, mid, "BR-PF")).via == "hub"
    finally:
        await runner.cleanup()
    # (the first attempt may meet the proxy's closed keep-alive connection)
    await fr.n.ping(br.me)
    ping = await fr.n.ping(br.me)
    assert ping["direct"] == {
        "ok": False, "ms": None, "error": "peer BR-PF unreachable: ClientConnectorError"
    }  # fmt: skip
    await net.start_node(br)
    await eventually(lambda: delivered(fr, mid, br))


# --- prekeys -------------------------------------------------------------------------------------


async def test_the_newest_valid_prekey_is_used_and_junk_is_skipped(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    now = int(time.time())

    def prekey(not_after: int) -> SignedPrekey:
        return make_prekey(
            genesis=net.genesis, authority=br.me, identity=br.keys.identity,
            key=KemPrivateKey.generate().public_key, not_before=now - 60, not_after=not_after,
        )  # fmt: skip

    newer, older = prekey(now + 5000), prekey(now + 1000)
    forged = make_prekey(
        genesis=net.genesis, authority=br.me, identity=fr.keys.identity,
        key=KemPrivateKey.generate().public_key, not_before=now - 60, not_after=now + 9000,
    )  # fmt: skip

    async def prekeys(_authority: Any) -> list[bytes]:
        return [b"junk", newer.signed.encode(), forged.signed.encode(), older.signed.encode()]

    fr.n.hub.get_prekeys = prekeys  # type: ignore[method-assign,assignment]
    mid = str(await fr.n.send([br.me], info()))
    async with fr.n.sessions() as s:
        msg = await s.get(db.OutMessage, mid)
    assert msg is not None
    (to,) = parse_envelope(msg.envelope).header.recipients
    assert to.prekey == newer.key.key_id


async def test_a_prekey_made_while_the_hub_is_down_is_published_later(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_hub()
    kid = await fr.n.rotate_prekey()
    async with fr.n.sessions() as s:
        row = await s.get(db.PrekeyRow, kid)
    assert row is not None
    assert row.published is False
    await net.start_hub()

    async def published() -> bool:
        async with fr.n.sessions() as s:
            r = await s.get(db.PrekeyRow, kid)
        return r is not None and r.published

    await eventually(published)
    at_hub = [
        str(SignedPrekey.decode(d, net.genesis, fr.keys.identity.verify_key, authority=fr.me).key
            .key_id)
        for d in await br.n.hub.get_prekeys(fr.me)
    ]  # fmt: skip
    assert kid in at_hub

    # an erased private prekey is not loaded again when the node restarts
    async with fr.n.sessions.begin() as s:
        aged = await s.get(db.PrekeyRow, kid)
        assert aged is not None
        aged.not_after = fr.n.now() - fr.config.prekey_grace - 1
    assert await fr.n.erase_expired_prekeys() == [kid]
    await net.stop_node(fr)
    await net.start_node(fr)
    assert kid not in {str(k) for k in fr.n.prekeys.private}
    assert len(fr.n.prekeys.private) >= 2  # the certified KA key and the live prekey


# --- the directory -------------------------------------------------------------------------------


async def test_directory_syncs_the_node_refuses(net: Net, caplog: pytest.LogCaptureFixture) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    await net.member("BR-PF", "Policia Federal")
    state = fr.n.state
    seq, head = state.seq, state.head
    caplog.set_level(logging.INFO, logger="globe.node")
    real_entries, real_checkpoint = fr.n.hub.log_entries, fr.n.hub.checkpoint

    # an entry that does not verify: an alert, and the live directory is untouched
    async def junk_entries(since: int = 0) -> list[bytes]:
        return [b"not a log entry"]

    fr.n.hub.log_entries = junk_entries  # type: ignore[method-assign]
    with pytest.raises(DecodeError):
        await fr.n.sync_directory()
    assert fr.n.state is state
    assert (state.seq, state.head) == (seq, head)
    assert "directory-invalid" in [k for k, _ in await alerts(fr)]
    async with fr.n.sessions() as s:
        stored = (await s.execute(select(db.LogRow.seq))).scalars().all()
    assert max(stored) == seq

    # a hub checkpoint behind the stored log: accepted as old, with an alert
    async def no_entries(since: int = 0) -> list[bytes]:
        return []

    behind = make_checkpoint(
        genesis=net.genesis, hub=net.hub_key, seq=seq - 1, head=state.heads[seq - 1],
        time=int(time.time()),
    ).signed.encode()  # fmt: skip

    async def old_checkpoint() -> bytes:
        return behind

    fr.n.hub.log_entries = no_entries  # type: ignore[method-assign]
    fr.n.hub.checkpoint = old_checkpoint  # type: ignore[method-assign]
    assert await fr.n.sync_directory() == 0
    assert await fr.n.sync_directory() == 0
    rollbacks = [d for k, d in await alerts(fr) if k == "directory-rollback"]
    assert rollbacks == [f"hub checkpoint at {seq - 1} is behind the stored log at {seq}"]

    # the sync loop survives what it did not expect, and syncs again afterwards
    async def broken() -> bytes:
        raise RuntimeError("checkpoint store unavailable")

    fr.n.hub.checkpoint = broken  # type: ignore[method-assign]
    await eventually(lambda: "sync failed" in [r.getMessage() for r in caplog.records])
    fr.n.hub.log_entries = real_entries  # type: ignore[method-assign]
    fr.n.hub.checkpoint = real_checkpoint  # type: ignore[method-assign]
    await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    assert fr.n.state.seq > seq


async def test_a_node_that_never_confirmed_its_directory_refuses_to_send(net: Net) -> None:
    await net.stop_hub()
    rn = net.make_node("FR-PNF", "Parquet national financier")
    await net.start_node(rn)
    await asyncio.sleep(0.1)
    status = await rn.n.status()
    assert status.age_s is None
    assert status.membership == "not admitted"
    assert rn.n.directory_age() is None
    with pytest.raises(DirectoryStale) as err:
        await rn.n.send([rn.me], info())
    assert err.value.detail == (
        f"the directory head is never confirmed (limit {rn.config.directory_max_age} s): the hub "
        "must be reachable to confirm it before sending"
    )

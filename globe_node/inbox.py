"""The inbox: every envelope, on either path, checked the same way (PROTOCOL.md §10.4).

:meth:`Inbox.receive` verifies, decrypts and stores an envelope, its seen-set
row, its sequence verdict, its attachments and the receipt this node signs in
one transaction (R7, R10), and returns the receipt: to the peer on the direct
path, to the hub in the acknowledgement on the hub path
(:meth:`Inbox.process_items`).  An exact replay is answered with the stored
receipt and stores nothing; the same id with other bytes is kept once as
evidence and refused.  A stored receipt that no longer verifies — signed by this node's
old identity key after the log replaced it (PROTOCOL.md §6.8) — is signed anew with the
current key when the envelope comes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NoReturn, Protocol

from sqlalchemy import insert, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from globe_io.hubclient import MailboxItem
from globe_node import db
from globe_node.alerts import Alerts
from globe_node.cases import Cases, place_incoming
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.outbox import Outbox, reply_event
from globe_node.peerheads import PeerHeads
from globe_node.prekeys import Prekeys
from globe_node.sql import Sql
from globe_node.states import RECIPIENT_EVENTS, RequestState
from globe_node.store import ReceiptRecord, Store, move_request
from protocol import canonical, strictjson
from protocol.attachments import AttachmentDecryptor, encrypted_size
from protocol.directory import HeadRelation
from protocol.envelope import Envelope, OpenedEnvelope, open_envelope, parse_envelope
from protocol.errors import (
    BadSignature,
    ConflictError,
    MalformedError,
    NotCertified,
    ProtocolError,
    TransportError,
    WorkflowError,
)
from protocol.ids import AuthorityId
from protocol.messages import Attachment, Kind, MessageContent, Party, check_status_sender
from protocol.origin import verify_forward
from protocol.receipts import DeliveryReceipt, Evidence, make_receipt
from protocol.replay import SeqVerdict, classify_seq

__all__ = ["Inbox", "MailboxSource"]

_INBOX: Final = db.Base.metadata.tables[db.InMessage.__tablename__]
_ATTACHMENTS: Final = db.Base.metadata.tables[db.AttachmentRow.__tablename__]
#: Built once: these run with every message received (building costs more than running).
_ADD_INBOX: Final = Sql(insert(_INBOX))
_ADD_ATTACHMENT: Final = Sql(sqlite_insert(_ATTACHMENTS).on_conflict_do_nothing())

log = logging.getLogger("globe.node.inbox")


class MailboxSource(Protocol):
    """What the inbox needs of the hub (the hub client, or a test double)."""

    async def mailbox(self, *, after: int = 0) -> tuple[list[MailboxItem], int]:
        """Items after a cursor, and the next cursor."""
        ...  # pragma: no cover - a protocol

    async def ack(self, receipts: Sequence[bytes], notices: Sequence[int]) -> object:
        """Release receipted envelopes and drop notices."""
        ...  # pragma: no cover - a protocol

    async def get_blob(self, blob_id: str, out: Path, *, max_size: int) -> object:
        """Download a blob to ``out``."""
        ...  # pragma: no cover - a protocol


@dataclass(slots=True)
class _Batch:
    """What one batch of mailbox items comes to."""

    receipts: list[bytes] = field(default_factory=list)  # this node's, to acknowledge
    received: list[tuple[str, str]] = field(default_factory=list)  # their (sender, id)
    notices: list[int] = field(default_factory=list)  # cursors of notices to drop
    checked: list[tuple[int, ReceiptRecord]] = field(default_factory=list)
    ready: list[tuple[MailboxItem, _Ready]] = field(default_factory=list)

    def acknowledge(self, key: tuple[str, str], receipt: bytes) -> None:
        self.receipts.append(receipt)
        self.received.append(key)


@dataclass(frozen=True, slots=True)
class _Ready:
    """An envelope verified, opened and checked, with this node's receipt: to be stored."""

    env: Envelope
    opened: OpenedEnvelope
    content: MessageContent
    receipt: bytes
    via: str
    now: int


class Inbox:
    """Receive envelopes from either path; acknowledge what came from the hub."""

    def __init__(
        self,
        *,
        ctx: NodeContext,
        directory: Directory,
        prekeys: Prekeys,
        outbox: Outbox,
        hub: MailboxSource,
        alerts: Alerts,
        peer_heads: PeerHeads,
        sync_soon: asyncio.Event,
        cases: Cases,
        stored: Callable[[str, MessageContent], None] = lambda _mid, _content: None,
    ) -> None:
        self.ctx = ctx
        self.cases = cases
        #: Told of every message stored (the search index).
        self.stored = stored
        self.directory = directory
        self.prekeys = prekeys
        self.outbox = outbox
        self.hub = hub
        self.alerts = alerts
        self.peer_heads = peer_heads
        self.sync_soon = sync_soon
        #: One pull at a time (the push stream's before it connects, the sync loop's while
        #: it is not connected): two would fetch and process the same items.
        self._pulling = asyncio.Lock()

    async def receive(self, data: bytes, *, via: str) -> bytes:
        """Verify, decrypt and store an envelope; return this node's signed receipt.

        Attachments are fetched and checked before anything is stored.
        """
        env = parse_envelope(data)
        h = env.header
        seen = await self.ctx.store.seen(str(h.sender), str(h.message_id))
        ready = await self._prepare(env, seen, via=via)
        return ready if isinstance(ready, bytes) else await self._commit(ready)

    async def _prepare(
        self, env: Envelope, seen: tuple[bytes, bytes] | None, *, via: str
    ) -> _Ready | bytes:
        """Everything of :meth:`receive` before the store: ``env`` verified, opened and
        checked, its attachments fetched, its receipt signed; or, for a copy of a stored
        envelope (``seen``: the stored (envelope hash, receipt) of its (sender, id)), the
        stored receipt."""
        ctx = self.ctx
        h = env.header
        now = ctx.now()
        if seen is not None and seen[0] == env.hash:
            return await self._receipt_again(env, seen[1])
        try:
            opened = open_envelope(
                env, directory=self.directory.state, me=ctx.me,
                private_key=self.prekeys.private_key, now=now,
            )  # fmt: skip
        except NotCertified:
            self.sync_soon.set()  # the sender's keys may be updated in a log not synced yet
            raise
        if seen is not None:
            await self._conflict(env, now)
        content = MessageContent.decode(opened.content)
        if sorted(a.blob for a in content.attachments) != sorted(h.blobs):
            raise MalformedError("the attachments do not match the header's blob list")
        if content.forwarded is not None:  # originator control on every hop (§8.5)
            verify_forward(content, forwarder=h.sender, recipient=ctx.me,
                           directory=self.directory.state)  # fmt: skip
        await self._check_status(content, h.sender, env.raw)
        for att in content.attachments:
            await self._fetch_attachment(att, h.sender)
        if opened.head_relation is HeadRelation.PEER_AHEAD:
            self.sync_soon.set()  # the sender has seen log entries we have not
        receipt = make_receipt(
            genesis=ctx.genesis, identity=ctx.keys.identity, message_id=h.message_id,
            envelope_hash=env.hash, sender=h.sender, recipient=ctx.me, time=now,
        ).encode()  # fmt: skip
        return _Ready(env, opened, content, receipt, via, now)

    async def _commit(self, r: _Ready) -> bytes:
        """Store a prepared envelope (one writer transaction, which commits with those
        queued beside it); its receipt."""
        env, h = r.env, r.env.header
        verdict = await self.ctx.store.transact(
            lambda c: self._store(c, env, r.content, r.opened, r.receipt, via=r.via, now=r.now)
        )
        if isinstance(verdict, tuple):  # a concurrent copy was stored first
            if verdict[0] == env.hash:
                return await self._receipt_again(env, verdict[1])
            await self._conflict(env, r.now)
        if r.opened.head_relation is HeadRelation.FORK:
            await self.alerts.record(
                "directory-fork",
                f"{h.sender} signed directory head {h.dir_seq} that differs from this node's",
                env.raw,
            )
        if verdict.missing:
            log.info("gap from %s: %d-%d missing", h.sender, verdict.missing.start,
                     verdict.missing.stop - 1)  # fmt: skip
        self.stored(str(h.message_id), r.content)
        return r.receipt

    async def _receipt_again(self, env: Envelope, stored: bytes) -> bytes:
        """The receipt stored for ``env``, or a new one signed with the current identity key
        when the stored one no longer verifies (signed by a replaced key after it was
        replaced: the hub would not release the envelope for it, nor would the sender
        take it)."""
        try:
            DeliveryReceipt.decode(stored, self.directory.state)
        except ProtocolError:
            pass
        else:
            return stored
        ctx, h = self.ctx, env.header
        fresh = make_receipt(
            genesis=ctx.genesis, identity=ctx.keys.identity, message_id=h.message_id,
            envelope_hash=env.hash, sender=h.sender, recipient=ctx.me, time=ctx.now(),
        ).encode()  # fmt: skip
        async with ctx.store.write() as s:
            await s.execute(
                update(db.InMessage)
                .where(db.InMessage.sender == str(h.sender))
                .where(db.InMessage.message_id == str(h.message_id))
                .values(receipt=fresh)
            )
        log.info("receipt for %s signed anew with the current identity key", h.message_id)
        return fresh

    async def _check_status(
        self, content: MessageContent, sender: AuthorityId, data: bytes
    ) -> None:
        """A status must come from the party of the request that may report its state
        (PROTOCOL.md §8.2.1): refused, with a ``refused`` alert, otherwise."""
        status, request = content.status, content.in_reply_to
        if status is None or request is None:
            return
        party, deadline = None, 0
        for row in await self.ctx.store.request_rows(str(request)):
            if row.counterpart == str(sender):
                party = Party.RECIPIENT if row.direction == "out" else Party.REQUESTER
                deadline = row.asked if row.asked is not None else row.deadline
        try:
            check_status_sender(status, party, deadline=deadline)
        except WorkflowError as exc:
            await self.alerts.record("refused", f"status from {sender}: {exc.detail}", data)
            raise

    def _store(
        self, c: Connection, env: Envelope, content: MessageContent, opened: OpenedEnvelope,
        receipt: bytes, *, via: str, now: int,
    ) -> SeqVerdict | tuple[bytes, bytes]:  # fmt: skip
        """Insert a verified message, its seen-set row, sequence and workflow state (one
        transaction on the writer thread, Core statements only); or, writing nothing, the
        (envelope hash, receipt) of the copy of the same (sender, id) stored already (the
        writer's transaction makes this check and the insert one step: two copies
        received at once cannot both be stored)."""
        ctx = self.ctx
        h = env.header
        mid, sender = str(h.message_id), str(h.sender)
        stored = Store.seen_in(c, sender, mid)
        if stored is not None:
            return stored
        _, mine = h.recipient(ctx.me)
        last = Store.take_in_seq(c, sender, mine.seq)
        verdict = classify_seq(last, mine.seq)
        order = "old" if verdict.old else "in-order" if verdict.in_order else "gap"
        place = place_incoming(c, content, sender, now)
        _ADD_INBOX.run(
            c,
            {
                "sender": sender, "message_id": mid, "envelope_hash": env.hash,
                "envelope": env.raw, "content": ctx.cipher.seal(opened.content, f"content:{mid}"),
                "kind": content.kind.value, "case": place.case, "team": place.team,
                "in_reply_to": str(content.in_reply_to) if content.in_reply_to else None,
                "created": h.created, "received": now, "via": via, "seq": mine.seq,
                "order": order, "head_relation": opened.head_relation.value,
                "receipt": receipt, "receipt_acked": via == "direct",
                "inner_signature": opened.inner_signature,
                "suspect": self.peer_heads.suspect(self.directory.state.seq),
            },
        )  # fmt: skip
        for att in content.attachments:
            # an attachment row exists already when the same blob came with an earlier message
            _ADD_ATTACHMENT.run(
                c,
                {"sender": sender, "blob": att.blob, "message_id": mid, "direction": "in",
                 "size": att.size, "state": "fetched"},
            )  # fmt: skip
        if content.kind is Kind.REQUEST:
            deadline = content.deadline or now + ctx.config.deadlines.for_urgency(content.urgency)
            Store.open_requests(
                c, mid, "in", [sender], place=place, urgency=content.urgency.value,
                handling=content.handling, state=RequestState.RECEIVED, created=h.created,
                deadline=deadline,
            )  # fmt: skip
        event = reply_event(content)
        if event is not None and content.in_reply_to is not None:
            st = content.status
            # a recipient's news moves the request we sent it; the requester's, ours from it
            direction = "out" if event in RECIPIENT_EVENTS else "in"
            move_request(
                c, str(content.in_reply_to), direction, sender, event=event,
                expected=st.expected if st else None, deadline=st.deadline if st else None,
                now=now,
            )  # fmt: skip
        if opened.head_relation is HeadRelation.PEER_AHEAD:
            PeerHeads.note(
                c, peer=h.sender, seq=h.dir_seq, head=h.dir_head, envelope=env.raw, now=now
            )
        return verdict

    async def _conflict(self, env: Envelope, now: int) -> NoReturn:
        """Keep a verified envelope that reuses a stored (sender, id) as evidence; refuse it."""
        h = env.header
        new = await self.ctx.store.add_conflict(
            db.Conflict(
                sender=str(h.sender), message_id=str(h.message_id), envelope_hash=env.hash,
                envelope=env.raw, time=now,
            )
        )  # fmt: skip
        if new:
            await self.alerts.record(
                "conflict",
                f"{h.sender} sent message {h.message_id} twice with different bytes",
                env.raw,
            )
        raise ConflictError(f"message {h.message_id} was received with other bytes")

    async def _fetch_attachment(self, att: Attachment, sender: AuthorityId) -> None:
        """Fetch a blob from the hub and check it decrypts to the manifest's digest."""
        path = self.ctx.blob_path(sender, att.blob)
        self.ctx.config.blob_dir.mkdir(mode=0o700, exist_ok=True)
        if not path.exists():
            await self.hub.get_blob(att.blob, path, max_size=encrypted_size(att.size))
        dec = AttachmentDecryptor(att.key, att.blob)

        def check() -> None:  # off the event loop: a blob may be gigabytes
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    dec.update(chunk)
            dec.finalize()

        try:
            await asyncio.to_thread(check)
            intact = dec.sha256 == att.sha256 and dec.size == att.size
        except ProtocolError:
            intact = False
        if not intact:
            if not await self.ctx.store.attachment_known(str(sender), att.blob):
                path.unlink(missing_ok=True)  # not the file of an earlier message
            raise MalformedError(f"attachment {att.name!r} does not match its manifest")

    # -- the hub mailbox ----------------------------------------------------------------------

    async def pull(self) -> int:
        """Fetch everything waiting at the hub, process it and acknowledge; return the count."""
        return (await self.drain())[0]

    async def drain(self) -> tuple[int, int]:
        """:meth:`pull`: (the count, the cursor of the last item fetched, 0 for none).
        A pull that starts while another runs waits for it, then fetches what is left."""
        total = 0
        after = 0
        async with self._pulling:
            while True:
                items, cursor = await self.hub.mailbox(after=after)
                if not items:
                    break
                await self.process_items(items)
                total += len(items)
                after = cursor
        return total, after

    async def process_items(self, items: Sequence[MailboxItem]) -> None:
        """Process mailbox items (pulled or pushed) and acknowledge them at the hub.

        The envelopes among them are checked one after the other, with one read of the
        seen set for all of them, and stored together (their transactions commit as one
        group, in item order); the receipts among them, once each is verified, are stored
        in one transaction; everything processed is acknowledged in one request."""
        batch = _Batch()
        envelopes = self._envelopes(items)
        seen = await self.ctx.store.seen_many(
            [
                (str(e.header.sender), str(e.header.message_id))
                for e in envelopes.values()
                if isinstance(e, Envelope)
            ]
        )
        for item in items:
            try:
                await self._take(item, envelopes, seen, batch)
            except ConflictError:
                continue  # kept as evidence; the hub keeps its copy until expiry
            except ProtocolError as exc:
                await self._refused(item, exc, batch.notices)
        await self._store_ready(batch)
        if batch.checked:
            problems = await self.outbox.record_receipts([r for _, r in batch.checked])
            for (cursor, _), problem in zip(batch.checked, problems, strict=True):
                if problem is not None:
                    log.warning("mailbox item %d refused: %s", cursor, problem.detail)
                batch.notices.append(cursor)
        if batch.receipts or batch.notices:
            await self.hub.ack(batch.receipts, sorted(batch.notices))
            await self.ctx.store.receipts_acked(batch.received)

    async def _take(
        self, item: MailboxItem, envelopes: dict[int, Envelope | ProtocolError],
        seen: dict[tuple[str, str], tuple[bytes, bytes]], batch: _Batch,
    ) -> None:  # fmt: skip
        """Check one mailbox item into ``batch``."""
        if item.kind == "envelope":
            env = envelopes[item.cursor]
            if isinstance(env, ProtocolError):
                raise env
            key = (str(env.header.sender), str(env.header.message_id))
            prepared = await self._prepare_synced(env, seen.get(key))
            if isinstance(prepared, bytes):
                batch.acknowledge(key, prepared)
            else:
                batch.ready.append((item, prepared))
        elif item.kind == "receipt":
            batch.checked.append((item.cursor, await self._receipt_notice_synced(item.data)))
        else:
            if item.kind == "non-delivery":
                await self.outbox.record_non_delivery(item.data)
            batch.notices.append(item.cursor)

    async def _store_ready(self, batch: _Batch) -> None:
        """Store the batch's checked envelopes together; a storage failure is raised once
        the others are done (then nothing is acknowledged: the hub offers them again)."""
        ready = batch.ready
        stored = await asyncio.gather(*(self._commit(r) for _, r in ready), return_exceptions=True)
        failure: BaseException | None = None
        for (item, r), outcome in zip(ready, stored, strict=True):
            h = r.env.header
            if isinstance(outcome, bytes):
                batch.acknowledge((str(h.sender), str(h.message_id)), outcome)
            elif isinstance(outcome, ConflictError):
                continue
            elif isinstance(outcome, ProtocolError):
                await self._refused(item, outcome, batch.notices)
            elif failure is None:
                failure = outcome
        if failure is not None:
            raise failure

    @staticmethod
    def _envelopes(items: Sequence[MailboxItem]) -> dict[int, Envelope | ProtocolError]:
        """The envelopes among ``items`` parsed, by cursor (or why one does not parse: it is
        refused in its turn)."""
        out: dict[int, Envelope | ProtocolError] = {}
        for item in items:
            if item.kind == "envelope":
                try:
                    out[item.cursor] = parse_envelope(item.data)
                except ProtocolError as exc:
                    out[item.cursor] = exc
        return out

    async def _refused(self, item: MailboxItem, exc: ProtocolError, notices: list[int]) -> None:
        """A mailbox item refused: a notice is acknowledged (dropped), an envelope kept at
        the hub with a ``refused`` alert here."""
        log.warning("mailbox item %d refused: %s", item.cursor, exc.detail)
        if item.kind != "envelope":
            notices.append(item.cursor)
        else:
            await self.alerts.record(
                "refused", f"envelope at hub cursor {item.cursor}: {exc.detail}", item.data
            )

    async def _prepare_synced(
        self, env: Envelope, seen: tuple[bytes, bytes] | None
    ) -> _Ready | bytes:
        """An envelope from the mailbox, opened again after a sync when its sender's key is
        not certified in this node's log: the sender's keys may have been updated in a
        log this node has not synced yet (the hub accepted the envelope against its own)."""
        try:
            return await self._prepare(env, seen, via="hub")
        except NotCertified:
            with contextlib.suppress(TransportError):
                await self.directory.sync()
            return await self._prepare(env, seen, via="hub")

    async def _receipt_notice_synced(self, data: bytes) -> ReceiptRecord:
        """A receipt notice, checked again after a sync when its signing key is unknown:
        the recipient's keys may have been updated in a log this node has not synced yet
        (the hub released the envelope for it, so it verified there)."""
        try:
            return self._receipt_notice(data)
        except BadSignature:
            with contextlib.suppress(TransportError):
                await self.directory.sync()
            return self._receipt_notice(data)

    def _receipt_notice(self, data: bytes) -> ReceiptRecord:
        """A receipt the hub relays, with its delivered evidence, verified."""
        notice = strictjson.loads(data, max_size=1 << 16)
        if not isinstance(notice, dict):
            raise MalformedError("a receipt notice is a JSON object")
        fields = canonical.ObjectReader(notice, "receipt notice")  # type: ignore[arg-type]
        receipt = fields.blob("receipt", max_len=4096)
        evidence = fields.blob("evidence", max_len=65536)
        fields.done()
        Evidence.decode(evidence, self.ctx.genesis)
        return self.outbox.check_receipt(receipt, via="hub", evidence=evidence)

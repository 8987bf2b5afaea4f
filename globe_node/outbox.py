"""The transactional outbox (R10): nothing leaves the node before it is committed.

:meth:`Outbox.send` seals the envelope and commits it with everything that
goes with it — per-pair sequence numbers, the exact envelope bytes it will
retry with, its recipients (``queued``), the staged uploads it takes, its
attachment rows, the request workflow rows and the audit row — in one
transaction; the delivery pump (:mod:`globe_node.delivery`) takes it from
there.  Receipts and the hub's non-delivery evidence move recipients by the
transition table of :mod:`globe_node.states`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from globe_node import db
from globe_node.audit import AuditLog, add_row
from globe_node.cases import Cases, place_outgoing
from globe_node.compartments import Placement
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.errors import NotFound
from globe_node.prekeys import Prekeys
from globe_node.sql import Sql
from globe_node.states import Delivery, DeliveryEvent, RequestState
from globe_node.store import ReceiptRecord, Store
from globe_node.uploads import Uploads
from protocol.directory import MemberStatus
from protocol.envelope import SealTo, envelope_hash, seal_envelope_signed
from protocol.errors import MalformedError, MemberNotActive, UsageError
from protocol.ids import AuthorityId, MessageId
from protocol.keys import KemPublicKey
from protocol.messages import Kind, MessageContent, StatusState
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind

__all__ = ["Also", "Outbox", "reply_event"]

_OUT: Final = db.Base.metadata.tables[db.OutMessage.__tablename__]
_RECIPIENTS: Final = db.Base.metadata.tables[db.OutRecipient.__tablename__]
_ATTACHMENTS: Final = db.Base.metadata.tables[db.AttachmentRow.__tablename__]
#: Built once (building a statement costs more than running it on SQLite).
_ADD_OUT: Final = Sql(insert(_OUT))
_ADD_RECIPIENTS: Final = Sql(insert(_RECIPIENTS))
_ADD_ATTACHMENTS: Final = Sql(insert(_ATTACHMENTS))

#: Recipients' prekeys asked of the hub at once by one send.
PREKEY_FETCHES: Final = 16

#: More work that commits with a message (moving the request it answers, say):
#: called in the send transaction (on the writer thread) with its connection and the time.
Also = Callable[[Connection, int], None]


def reply_event(content: MessageContent) -> StatusState | None:
    """The event a message is for the request it replies to: an answer is ``answered``,
    a status update its state; anything else none."""
    if content.in_reply_to is None:
        return None
    if content.kind is Kind.ANSWER:
        return StatusState.ANSWERED
    if content.kind is Kind.STATUS and content.status is not None:
        return content.status.state
    return None


class Outbox:
    """Commit messages, then record what happens to each recipient's copy."""

    def __init__(
        self,
        *,
        ctx: NodeContext,
        directory: Directory,
        prekeys: Prekeys,
        staging: Uploads,
        audit: AuditLog,
        cases: Cases,
        wake: Callable[[], None],
        stored: Callable[[str, MessageContent], None] = lambda _mid, _content: None,
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.prekeys = prekeys
        self.staging = staging
        self.audit = audit
        self.cases = cases
        self.wake = wake
        #: Told of every message committed (the search index).
        self.stored = stored

    @property
    def store(self) -> Store:
        """The node database."""
        return self.ctx.store

    def _check_sender(self, recipients: Sequence[AuthorityId], now: int) -> None:
        if not recipients:
            raise UsageError("a message needs at least one recipient")
        me = self.ctx.me
        mine = self.directory.state.members.get(me)
        if mine is None or mine.status is not MemberStatus.ACTIVE:
            raise MemberNotActive(
                f"this node ({me}) is "
                + (f"{mine.status.value}" if mine else "not admitted")
                + ": the hub and every member would refuse what it sends"
            )
        for r in recipients:
            if r == me:
                raise UsageError("a node cannot send to itself")
            self.directory.state.active_member(r, now)

    async def send(
        self,
        recipients: Sequence[AuthorityId],
        content: MessageContent,
        *,
        user: str,
        uploads: Sequence[str] = (),
        place: Placement | None = None,
        team: str | None = None,
        also: Also | None = None,
        guard: Also | None = None,
    ) -> MessageId:
        """Seal and commit a message; delivery follows in the background.

        ``uploads``: ids of ``user``'s staged uploads, which become the message's
        attachments and leave the staging area in the same transaction.  ``place``: where
        the message is filed (a reply goes where its original is); without it, under
        the content's case (whose record is made now, with ``team``, if new) or, with no
        case, in ``team``.  ``guard`` runs first in the send's transaction (and refuses
        the send by raising); ``also`` commits with the message.  A request without a
        deadline gets this node's default for its urgency, written into the content so
        that both parties hold the same deadline (PROTOCOL.md §8.1).
        """
        ctx = self.ctx
        now = ctx.now()
        self.directory.check_fresh()
        self._check_sender(recipients, now)
        mid = MessageId.new()
        manifests = await self.staging.manifests(user, uploads)
        if manifests:
            content = dataclasses.replace(content, attachments=tuple(manifests))
        if content.kind is Kind.REQUEST and content.deadline is None:
            default = ctx.config.deadlines.for_urgency(content.urgency)
            content = dataclasses.replace(content, deadline=now + default)
        data = content.encode()
        keys = await self._prekeys(recipients, now)
        state = self.directory.state
        blobs = [m.blob for m in manifests]

        def commit(c: Connection) -> None:
            # One transaction on the writer thread, Core statements only (docs/ARCHITECTURE.md
            # §2.2): the message, everything that goes with it, and its audit row.
            if guard is not None:
                guard(c, now)
            placed = place or place_outgoing(c, content.case, team, by=user, now=now)
            seqs = Store.next_seqs(c, [str(r) for r in recipients])
            envelope, inner = seal_envelope_signed(
                genesis=ctx.genesis, sender=ctx.me, identity=ctx.keys.identity,
                recipients=[SealTo(r, seqs[str(r)], keys[r]) for r in recipients],
                content=data, created=now, expires=now + ctx.config.message_lifetime,
                dir_seq=state.seq, dir_head=state.head, message_id=mid, blobs=blobs,
            )  # fmt: skip
            Uploads.take(c, user, uploads)
            _ADD_OUT.run(
                c,
                {
                    "message_id": str(mid), "envelope": envelope,
                    "envelope_hash": envelope_hash(envelope),
                    "content": ctx.cipher.seal(data, f"content:{mid}"),
                    "kind": content.kind.value, "case": placed.case, "team": placed.team,
                    "in_reply_to": str(content.in_reply_to) if content.in_reply_to else None,
                    "created": now, "expires": now + ctx.config.message_lifetime, "user": user,
                    "pending_blobs": " ".join(blobs),
                    "inner_signature": inner,
                },
            )  # fmt: skip
            _ADD_RECIPIENTS.many(
                c,
                [
                    {"message_id": str(mid), "recipient": str(r), "state": Delivery.QUEUED.value,
                     "attempts": 0, "next_attempt": 0}
                    for r in recipients
                ],
            )  # fmt: skip
            if manifests:
                _ADD_ATTACHMENTS.many(
                    c,
                    [
                        {"sender": str(ctx.me), "blob": m.blob, "message_id": str(mid),
                         "direction": "out", "size": m.size, "state": "pending"}
                        for m in manifests
                    ],
                )  # fmt: skip
            if content.kind is Kind.REQUEST and content.deadline is not None:
                Store.open_requests(
                    c, str(mid), "out", [str(r) for r in recipients], place=placed,
                    urgency=content.urgency.value, handling=content.handling,
                    state=RequestState.SENT, created=now, deadline=content.deadline, user=user,
                )  # fmt: skip
            if also is not None:
                also(c, now)
            # The audit row commits with the message, or neither does.
            add_row(c, now, user, "send", f"{mid} to {','.join(map(str, recipients))}")

        # No audit lock: transactions on the writer thread hold the writer's turn, which
        # every other writer of the audit chain waits for (store.write() takes it too).
        await self.store.transact(commit)
        self.stored(str(mid), content)
        self.wake()
        return mid

    async def _prekeys(
        self, recipients: Sequence[AuthorityId], now: int
    ) -> dict[AuthorityId, KemPublicKey]:
        """Each recipient's key to seal to, up to :data:`PREKEY_FETCHES` asked of the hub at
        a time (a bulletin to a hundred members waits for one round trip, not a hundred)."""
        limit = asyncio.Semaphore(PREKEY_FETCHES)

        async def one(r: AuthorityId) -> KemPublicKey:
            async with limit:
                return await self.prekeys.for_recipient(r, now)

        found = await asyncio.gather(*(one(r) for r in recipients))
        return dict(zip(recipients, found, strict=True))

    async def retry(self, message_id: str, user: str) -> int:
        """Queue failed or waiting deliveries of a message again, now."""
        if await self.store.out_message(message_id) is None:
            raise NotFound(f"no sent message {message_id}")
        names = [r.recipient for r in await self.store.recipients([message_id])]
        count = await self.store.apply(message_id, names, DeliveryEvent.RETRY, reset_attempt=True)
        await self.audit.append(self.ctx.now(), user, "retry", message_id)
        self.wake()
        return count

    async def record_receipt(self, data: bytes, *, via: str, evidence: bytes | None = None) -> None:
        """A recipient's signed receipt for one of our messages: delivered."""
        [problem] = await self.record_receipts(
            [self.check_receipt(data, via=via, evidence=evidence)]
        )
        if problem is not None:
            raise problem

    def check_receipt(self, data: bytes, *, via: str, evidence: bytes | None) -> ReceiptRecord:
        """A recipient's receipt, verified (its signature, and that it is for a message
        of this node), ready to be stored."""
        receipt = DeliveryReceipt.decode(data, self.directory.state)
        if receipt.sender != self.ctx.me:
            raise MalformedError("a receipt for a message this node did not send")
        return ReceiptRecord(
            str(receipt.message_id), str(receipt.recipient), receipt.envelope_hash, via, data,
            evidence,
        )  # fmt: skip

    async def record_receipts(
        self, receipts: Sequence[ReceiptRecord]
    ) -> list[MalformedError | None]:
        """Store verified receipts in one transaction; for each, why it names nothing this
        node sent (or ``None``: stored, or already delivered)."""
        outcomes = await self.store.record_receipts(receipts, now=self.ctx.now())
        problems: list[MalformedError | None] = []
        for outcome in outcomes:
            if outcome == "no-message":
                problems.append(MalformedError("the receipt names no envelope this node sent"))
            elif outcome == "not-a-recipient":
                problems.append(MalformedError("the receipt's signer was not a recipient"))
            else:
                problems.append(None)
        return problems

    async def record_non_delivery(self, data: bytes) -> None:
        """The hub's evidence that a copy expired in the recipient's mailbox: failed."""
        ev = Evidence.decode(data, self.ctx.genesis)
        if ev.kind is not EvidenceKind.NON_DELIVERY:
            raise MalformedError("a non-delivery notice carries non-delivery evidence")
        await self.store.apply(
            str(ev.message_id), [str(r) for r in ev.recipients], DeliveryEvent.NON_DELIVERY,
            error="expired undelivered", evidence=data,
        )  # fmt: skip

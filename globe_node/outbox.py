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

import dataclasses
from collections.abc import Callable, Sequence

from globe_node import db
from globe_node.audit import AuditLog
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.errors import NotFound
from globe_node.prekeys import Prekeys
from globe_node.states import Delivery, DeliveryEvent, RequestState
from globe_node.store import Store
from globe_node.uploads import Uploads
from protocol.directory import MemberStatus
from protocol.envelope import (
    SealTo,
    content_signature,
    envelope_hash,
    parse_envelope,
    seal_envelope,
)
from protocol.errors import MalformedError, MemberNotActive, UsageError
from protocol.ids import AuthorityId, MessageId
from protocol.messages import Kind, MessageContent
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind

__all__ = ["Outbox", "reply_moves_request"]


def reply_moves_request(content: MessageContent) -> tuple[RequestState, int | None] | None:
    """The request state a reply sets (an answer, or a status update), if any."""
    if content.in_reply_to is None:
        return None
    if content.kind is Kind.ANSWER:
        return RequestState.ANSWERED, None
    if content.kind is Kind.STATUS and content.status is not None:
        return RequestState(content.status.state.value), content.status.expected
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
        wake: Callable[[], None],
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.prekeys = prekeys
        self.staging = staging
        self.audit = audit
        self.wake = wake

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
    ) -> MessageId:
        """Seal and commit a message; delivery follows in the background.

        ``uploads``: ids of ``user``'s staged uploads, which become the message's
        attachments and leave the staging area in the same transaction.
        """
        ctx = self.ctx
        now = ctx.now()
        self.directory.check_fresh()
        self._check_sender(recipients, now)
        mid = MessageId.new()
        manifests = await self.staging.manifests(user, uploads)
        if manifests:
            content = dataclasses.replace(content, attachments=tuple(manifests))
        data = content.encode()
        keys = {r: await self.prekeys.for_recipient(r, now) for r in recipients}
        state = self.directory.state
        async with self.audit.lock, self.store.write() as s:
            seqs = await self.store.next_seqs(s, [str(r) for r in recipients])
            envelope = seal_envelope(
                genesis=ctx.genesis, sender=ctx.me, identity=ctx.keys.identity,
                recipients=[SealTo(r, seqs[str(r)], keys[r]) for r in recipients],
                content=data, created=now, expires=now + ctx.config.message_lifetime,
                dir_seq=state.seq, dir_head=state.head, message_id=mid,
                blobs=[m.blob for m in manifests],
            )  # fmt: skip
            await self.staging.take(s, user, uploads)
            s.add(
                db.OutMessage(
                    message_id=str(mid), envelope=envelope, envelope_hash=envelope_hash(envelope),
                    content=ctx.cipher.seal(data, f"content:{mid}"), kind=content.kind.value,
                    case=content.case,
                    in_reply_to=str(content.in_reply_to) if content.in_reply_to else None,
                    created=now, expires=now + ctx.config.message_lifetime, user=user,
                    pending_blobs=" ".join(m.blob for m in manifests),
                    inner_signature=content_signature(
                        ctx.keys.identity, parse_envelope(envelope).header.raw, data
                    ),
                )
            )  # fmt: skip
            await s.flush()
            for r in recipients:
                s.add(
                    db.OutRecipient(
                        message_id=str(mid), recipient=str(r), state=Delivery.QUEUED.value,
                        attempts=0, next_attempt=0,
                    )
                )  # fmt: skip
            for m in manifests:
                s.add(
                    db.AttachmentRow(
                        sender=str(ctx.me), blob=m.blob, message_id=str(mid), direction="out",
                        size=m.size, state="pending",
                    )
                )  # fmt: skip
            if content.kind is Kind.REQUEST:
                urgency_deadline = ctx.config.deadlines.for_urgency(content.urgency)
                self.store.open_requests(
                    s, str(mid), "out", [str(r) for r in recipients], case=content.case,
                    urgency=content.urgency.value, state=RequestState.SENT, created=now,
                    deadline=content.deadline or now + urgency_deadline,
                )  # fmt: skip
            # The audit row commits with the message, or neither does.
            await self.audit.add(s, now, user, "send", f"{mid} to {','.join(map(str, recipients))}")
        self.wake()
        return mid

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
        receipt = DeliveryReceipt.decode(data, self.directory.state)
        if receipt.sender != self.ctx.me:
            raise MalformedError("a receipt for a message this node did not send")
        outcome = await self.store.record_receipt(
            str(receipt.message_id), str(receipt.recipient), receipt.envelope_hash, via=via,
            receipt=data, evidence=evidence, now=self.ctx.now(),
        )  # fmt: skip
        if outcome == "no-message":
            raise MalformedError("the receipt names no envelope this node sent")
        if outcome == "not-a-recipient":
            raise MalformedError("the receipt's signer was not a recipient")

    async def record_non_delivery(self, data: bytes) -> None:
        """The hub's evidence that a copy expired in the recipient's mailbox: failed."""
        ev = Evidence.decode(data, self.ctx.genesis)
        if ev.kind is not EvidenceKind.NON_DELIVERY:
            raise MalformedError("a non-delivery notice carries non-delivery evidence")
        await self.store.apply(
            str(ev.message_id), [str(r) for r in ev.recipients], DeliveryEvent.NON_DELIVERY,
            error="expired undelivered", evidence=data,
        )  # fmt: skip

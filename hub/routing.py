"""Store-and-forward routing: accept envelopes durably, hold them per recipient,
release them only against the recipient's signed receipt (BRIEF R9-R11).

Acceptance order (R9): size cap → strict parse → sender certified and active →
outer signature → every recipient active → idempotency → per-recipient quota →
**durable commit, then acknowledge** with hub-signed acceptance evidence.

Submissions are committed by one writer task that batches whatever is queued
into a single transaction (group commit), so a synchronous commit per batch,
not per message, bounds throughput; each submitter is answered only after the
commit that holds its envelope (R10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from hub import db
from hub.errors import Conflict, NotFound
from hub.metrics import Metrics
from hub.service import HubService, Principal
from protocol import canonical
from protocol.envelope import (
    Envelope,
    check_recipients_active,
    parse_envelope,
    verify_envelope,
)
from protocol.errors import (
    ConflictError,
    GlobeError,
    MalformedError,
    ProtocolError,
    StorageError,
)
from protocol.ids import AuthorityId, MessageId
from protocol.receipts import DeliveryReceipt, EvidenceKind, make_evidence

__all__ = ["MailboxFull", "Router", "RoutingLimits"]

log = logging.getLogger("globe.hub.routing")

#: Advisory-lock key serialising mailbox writers on PostgreSQL ("GLBM").
_MAILBOX_LOCK: Final = 0x474C424D
ENVELOPE: Final = "envelope"
RECEIPT: Final = "receipt"
NON_DELIVERY: Final = "non-delivery"


class MailboxFull(ProtocolError):
    """The recipient's mailbox is over its quota; retry later (RFC 9457, HTTP 507)."""

    slug = "mailbox-full"
    status = 507
    title = "Recipient mailbox full"


@dataclass(frozen=True, slots=True)
class RoutingLimits:
    """Bounds on what the hub holds."""

    max_envelope: int = 2 * 1024 * 1024
    mailbox_count: int = 100_000  # items waiting per recipient
    mailbox_bytes: int = 2 * 1024 * 1024 * 1024  # bytes waiting per recipient
    batch_max: int = 256  # submissions per group commit
    page_size: int = 500


@dataclass(slots=True)
class _Pending:
    envelope: Envelope
    evidence: bytes
    accepted: int
    #: Resolved after the commit: ``None`` for a new envelope, or the evidence stored
    #: for it by a concurrent submission of the same bytes.
    done: asyncio.Future[bytes | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Router:
    """Message acceptance, mailboxes, receipts and expiry over the hub's database."""

    def __init__(
        self,
        service: HubService,
        *,
        limits: RoutingLimits = RoutingLimits(),
        on_commit: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.service = service
        self.limits = limits
        self.on_commit = on_commit or (lambda _recipients: None)
        #: Awaited with (sender, message id) of messages that lost a waiting copy (receipt
        #: or expiry), so attachment blobs nobody needs any more can go (hub.blobs).
        self.on_release: Callable[[list[tuple[str, str]]], Awaitable[None]] | None = None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._usage: dict[str, list[int]] = {}  # recipient -> [count, bytes] waiting
        self.batch_sizes: list[int] = []  # recent group-commit sizes
        self._postgres = service.engine.dialect.name == "postgresql"
        self.metrics = Metrics()  # create_app shares its registry here

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load mailbox usage and start the group-commit writer."""
        async with self.service.unit() as s:
            rows = await s.execute(
                select(
                    db.MailboxItem.recipient,
                    func.count(),
                    func.coalesce(func.sum(db.MailboxItem.size), 0),
                ).group_by(db.MailboxItem.recipient)
            )
            self._usage = {r: [int(c), int(b)] for r, c, b in rows.all()}
        self._writer = asyncio.create_task(self._write_loop(), name="globe-group-commit")

    async def stop(self) -> None:
        """Stop the writer after the queued submissions are committed."""
        if self._writer is not None:
            await self._queue.join()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    # -- acceptance ------------------------------------------------------------------

    async def submit(self, data: bytes, who: Principal) -> tuple[int, bytes]:
        """Accept an envelope; return (HTTP status, acceptance evidence bytes).

        201 for a new envelope, 200 with the original evidence for an exact
        resubmission; :class:`ConflictError` (409) for the same id with other bytes.
        """
        svc = self.service
        now = svc.now()
        env = parse_envelope(data, max_size=self.limits.max_envelope)
        if who.authority != env.header.sender:
            raise MalformedError("an envelope is submitted by its sender")
        verify_envelope(env, svc.state, now)
        check_recipients_active(env, svc.state, now)
        existing = await self._existing(env)
        if existing is not None:
            return existing
        if env.header.blobs:
            await self._check_blobs(env)
        self._check_quota(env)
        evidence = make_evidence(
            genesis=svc.genesis,
            hub=svc.hub_key,
            kind=EvidenceKind.ACCEPTED,
            message_id=env.header.message_id,
            envelope_hash=env.hash,
            sender=env.header.sender,
            recipients=[r.authority for r in env.header.recipients],
            time=now,
        ).signed.encode()
        pending = _Pending(env, evidence, now)
        # Reserve the quota now, not at commit: concurrent submissions must not all
        # pass the check above before any of them is counted.
        self._reserve(env, 1)
        try:
            await self._queue.put(pending)
            stored = await pending.done  # raised if the commit failed: nothing acknowledged
        except BaseException:
            self._reserve(env, -1)
            raise
        if stored is not None:  # a concurrent submission of the same bytes won the commit
            self._reserve(env, -1)
            return 200, stored
        return 201, evidence

    def _reserve(self, env: Envelope, sign: int) -> None:
        for r in env.header.recipients:
            self._used(str(r.authority), sign, sign * len(env.raw))

    async def _existing(self, env: Envelope) -> tuple[int, bytes] | None:
        h = env.header
        async with self.service.unit() as s:
            row = (
                await s.execute(
                    select(db.Message.envelope_hash, db.Message.evidence)
                    .where(db.Message.sender == str(h.sender))
                    .where(db.Message.message_id == str(h.message_id))
                )
            ).first()
            if row is None:
                return None
            if row.envelope_hash == env.hash:
                return 200, row.evidence
            s.add(
                db.ConflictRecord(
                    sender=str(h.sender), message_id=str(h.message_id),
                    envelope_hash=env.hash, data=env.raw, time=self.service.now(),
                )
            )  # fmt: skip
        raise ConflictError(f"message {h.message_id} was accepted before with other bytes")

    async def _check_blobs(self, env: Envelope) -> None:
        """Every blob the header lists is a complete upload of the sender (§7.2, §8.4)."""
        h = env.header
        async with self.service.unit() as s:
            found = (
                await s.execute(
                    select(func.count())
                    .select_from(db.Blob)
                    .where(db.Blob.id.in_(h.blobs))
                    .where(db.Blob.owner == str(h.sender))
                    .where(db.Blob.state == "complete")
                )
            ).scalar_one()
        if found != len(h.blobs):
            raise Conflict("the envelope lists a blob that is not a complete upload of its sender")

    def _check_quota(self, env: Envelope) -> None:
        for r in env.header.recipients:
            count, size = self._usage.get(str(r.authority), (0, 0))
            if (
                count + 1 > self.limits.mailbox_count
                or size + len(env.raw) > self.limits.mailbox_bytes
            ):
                raise MailboxFull(f"the mailbox of {r.authority} is full; retry later")

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self.limits.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - every waiting submitter must get an answer
                log.error("group commit of %d failed: %s", len(batch), type(exc).__name__)
                for item in batch:
                    _fail(item, exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            await self._insert(batch)
        except IntegrityError:
            # Two submissions of one id raced into this batch: commit one by one so
            # each gets its own answer (the loser sees the winner on retry).
            for item in batch:
                try:
                    await self._insert([item])
                except IntegrityError as exc:
                    # The same envelope committed by a concurrent submission: answer
                    # this one as the resubmission it is (200, the stored evidence).
                    try:
                        existing = await self._existing(item.envelope)
                    except GlobeError as refusal:
                        _fail(item, refusal)
                        continue
                    if existing is None:
                        _fail(item, exc)
                    elif not item.done.done():
                        item.done.set_result(existing[1])
                except (StorageError, SQLAlchemyError, OSError) as exc:
                    _fail(item, exc)
            return
        except (StorageError, SQLAlchemyError, OSError) as exc:
            for item in batch:
                _fail(item, exc)
            return

    async def _insert(self, batch: list[_Pending]) -> None:
        committed: list[_Pending] = []
        touched: set[str] = set()
        async with self.service.unit() as s:
            await self._serialise(s)
            for item in batch:
                if item.done.done():
                    continue
                h = item.envelope.header
                result = await s.execute(
                    insert(db.Message).values(
                        sender=str(h.sender), message_id=str(h.message_id),
                        envelope_hash=item.envelope.hash, data=item.envelope.raw,
                        size=len(item.envelope.raw), expires=h.expires, accepted=item.accepted,
                        evidence=item.evidence,
                    ).returning(db.Message.id)
                )  # fmt: skip
                message = result.scalar_one()
                await s.execute(
                    insert(db.MailboxItem),
                    [
                        {"recipient": str(r.authority), "kind": ENVELOPE, "message": message,
                         "payload": None, "size": len(item.envelope.raw), "created": item.accepted}
                        for r in h.recipients
                    ],
                )  # fmt: skip
                if h.blobs:  # the foreign key refuses a blob removed since _check_blobs
                    await s.execute(
                        insert(db.MessageBlob), [{"message": message, "blob": b} for b in h.blobs]
                    )
                committed.append(item)
        self.batch_sizes = [*self.batch_sizes[-999:], len(committed)]
        self.metrics.commit_batch.observe(len(committed))
        for item in committed:  # their quota was reserved at submission
            touched.update(str(r.authority) for r in item.envelope.header.recipients)
            if not item.done.done():
                item.done.set_result(None)
        self.on_commit(touched)

    async def _serialise(self, s: AsyncSession) -> None:
        """Make mailbox cursors follow commit order across hub processes.

        A cursor pull (``after=``) must never skip an item that commits later with
        a smaller ``seq``.  On PostgreSQL, sequence values are taken at insert time,
        so two processes could commit out of ``seq`` order; a transaction-scoped
        advisory lock taken before the first insert makes every transaction that
        adds mailbox items commit in ``seq`` order.  SQLite has a single writer.
        """
        if self._postgres:
            await s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MAILBOX_LOCK})

    # -- mailboxes ----------------------------------------------------------------------

    async def pull(self, who: Principal, after: int, limit: int) -> dict[str, Any]:
        """Items waiting for ``who`` after the cursor, oldest first."""
        assert who.authority is not None  # noqa: S101 - member route
        async with self.service.unit() as s:
            rows = (
                await s.execute(
                    select(
                        db.MailboxItem.seq,
                        db.MailboxItem.kind,
                        db.MailboxItem.payload,
                        db.Message.data,
                    )
                    .outerjoin(db.Message, db.Message.id == db.MailboxItem.message)
                    .where(db.MailboxItem.recipient == str(who.authority))
                    .where(db.MailboxItem.seq > after)
                    .order_by(db.MailboxItem.seq)
                    .limit(limit)
                )
            ).all()
        return {
            "items": [
                {"cursor": r.seq, "kind": r.kind,
                 "data": canonical.b64e(r.data if r.kind == ENVELOPE else r.payload or b"")}
                for r in rows
            ],
            "cursor": rows[-1].seq if rows else after,
        }  # fmt: skip

    async def ack(
        self, who: Principal, receipts: list[bytes], notices: list[int]
    ) -> dict[str, Any]:
        """Release envelopes against signed receipts; drop acknowledged notices.

        A receipt must be the authenticated member's, for an envelope waiting in
        its mailbox, over that envelope's exact bytes; otherwise nothing is
        released for it and it is reported as refused.
        """
        assert who.authority is not None  # noqa: S101 - member route
        me = str(who.authority)
        svc = self.service
        now = svc.now()
        released: list[str] = []
        refused: list[dict[str, str]] = []
        notify: set[str] = set()
        finished: list[tuple[str, str]] = []
        for data in receipts:
            try:
                receipt = DeliveryReceipt.decode(data, svc.state)
                if receipt.recipient != who.authority:
                    raise MalformedError("a receipt is acknowledged by its signer")
                released.append(await self._release(receipt, data, now))
                notify.add(str(receipt.sender))
                finished.append((str(receipt.sender), str(receipt.message_id)))
            except GlobeError as exc:
                refused.append({"type": exc.type_uri(), "detail": exc.detail})
        dropped = 0
        if notices:
            async with svc.unit() as s:
                rows = (
                    await s.execute(
                        select(db.MailboxItem.seq, db.MailboxItem.size)
                        .where(db.MailboxItem.recipient == me)
                        .where(db.MailboxItem.kind != ENVELOPE)
                        .where(db.MailboxItem.seq.in_(notices))
                    )
                ).all()
                if rows:
                    await s.execute(
                        delete(db.MailboxItem)
                        .where(db.MailboxItem.recipient == me)
                        .where(db.MailboxItem.kind != ENVELOPE)
                        .where(db.MailboxItem.seq.in_([r.seq for r in rows]))
                    )
                dropped = len(rows)
            self._used(me, -dropped, -sum(r.size for r in rows))
        self.on_commit(notify)
        await self._released(finished)
        return {"released": released, "refused": refused, "notices": dropped}

    async def _release(self, receipt: DeliveryReceipt, data: bytes, now: int) -> str:
        me = str(receipt.recipient)
        async with self.service.unit() as s:
            await self._serialise(s)
            row = (
                await s.execute(
                    select(
                        db.MailboxItem.seq, db.MailboxItem.size, db.Message.id, db.Message.sender
                    )
                    .join(db.Message, db.Message.id == db.MailboxItem.message)
                    .where(db.MailboxItem.recipient == me)
                    .where(db.MailboxItem.kind == ENVELOPE)
                    .where(db.Message.sender == str(receipt.sender))
                    .where(db.Message.message_id == str(receipt.message_id))
                    .where(db.Message.envelope_hash == receipt.envelope_hash)
                )
            ).first()
            gone = f"no envelope {receipt.message_id} waits for {me} with those bytes"
            if row is None:
                raise NotFound(gone)
            # A concurrent ack of the same receipt, or the expiry sweep, may have removed
            # the row since it was read: then this release did not happen (rolled back).
            taken = await s.execute(
                delete(db.MailboxItem)
                .where(db.MailboxItem.seq == row.seq)
                .where(db.MailboxItem.recipient == me)
                .where(db.MailboxItem.message == row.id)
                .returning(db.MailboxItem.seq)
            )
            if taken.first() is None:
                raise NotFound(gone)
            s.add(
                db.Delivery(
                    message=row.id, recipient=me, outcome="delivered", receipt=data, time=now
                )
            )
            evidence = make_evidence(
                genesis=self.service.genesis, hub=self.service.hub_key, kind=EvidenceKind.DELIVERED,
                message_id=receipt.message_id, envelope_hash=receipt.envelope_hash,
                sender=receipt.sender, recipients=[receipt.recipient], time=now,
            ).signed.encode()  # fmt: skip
            notice = canonical.encode(
                {"receipt": canonical.b64e(data), "evidence": canonical.b64e(evidence)}
            )
            s.add(db.MailboxItem(recipient=row.sender, kind=RECEIPT, message=None, payload=notice,
                                 size=len(notice), created=now))  # fmt: skip
        self._used(me, -1, -row.size)
        self._used(row.sender, 1, len(notice))
        self.metrics.receipts += 1
        return str(receipt.message_id)

    def _used(self, recipient: str, count: int, size: int) -> None:
        usage = self._usage.setdefault(recipient, [0, 0])
        usage[0] = max(0, usage[0] + count)
        usage[1] = max(0, usage[1] + size)

    # -- expiry -------------------------------------------------------------------------

    async def expire(self, *, limit: int = 1000) -> int:
        """Remove undelivered envelopes past expiry; give each sender non-delivery evidence."""
        svc = self.service
        now = svc.now()
        notify: set[str] = set()
        moved: list[tuple[str, int, str, int]] = []
        finished: list[tuple[str, str]] = []
        async with svc.unit() as s:
            await self._serialise(s)
            rows = (
                await s.execute(
                    select(db.MailboxItem.seq, db.MailboxItem.recipient, db.MailboxItem.size,
                           db.Message.id, db.Message.sender, db.Message.message_id,
                           db.Message.envelope_hash)
                    .join(db.Message, db.Message.id == db.MailboxItem.message)
                    .where(db.MailboxItem.kind == ENVELOPE)
                    .where(db.Message.expires <= now)
                    .order_by(db.MailboxItem.seq)
                    .limit(limit)
                )
            ).all()  # fmt: skip
            for row in rows:
                evidence = make_evidence(
                    genesis=svc.genesis, hub=svc.hub_key, kind=EvidenceKind.NON_DELIVERY,
                    message_id=MessageId.parse(row.message_id), envelope_hash=row.envelope_hash,
                    sender=_aid(row.sender),
                    recipients=[_aid(row.recipient)], time=now, reason="expired",
                ).signed.encode()  # fmt: skip
                taken = await s.execute(
                    delete(db.MailboxItem)
                    .where(db.MailboxItem.seq == row.seq)
                    .where(db.MailboxItem.recipient == row.recipient)
                    .where(db.MailboxItem.message == row.id)
                    .returning(db.MailboxItem.seq)
                )
                if taken.first() is None:  # released by a receipt since it was read
                    continue
                s.add(db.Delivery(message=row.id, recipient=row.recipient, outcome="expired",
                                  receipt=None, time=now))  # fmt: skip
                notice = db.MailboxItem(
                    recipient=row.sender, kind=NON_DELIVERY, message=None, payload=evidence,
                    size=len(evidence), created=now,
                )  # fmt: skip
                s.add(notice)
                notify.add(row.sender)
                moved.append((row.recipient, row.size, row.sender, len(evidence)))
                finished.append((row.sender, row.message_id))
        for recipient, size, sender, notice_size in moved:
            self._used(recipient, -1, -size)
            self._used(sender, 1, notice_size)
        if moved:
            self.on_commit(notify)
        await self._released(finished)
        self.metrics.expired += len(moved)
        return len(moved)

    async def _released(self, messages: list[tuple[str, str]]) -> None:
        if messages and self.on_release is not None:
            await self.on_release(messages)

    def depth(self) -> dict[str, tuple[int, int]]:
        """Items and bytes waiting per recipient (as this process counts them)."""
        return {r: (u[0], u[1]) for r, u in self._usage.items()}


def _aid(text: str) -> AuthorityId:
    return AuthorityId.parse(text)


def _fail(item: _Pending, exc: BaseException) -> None:
    if not item.done.done():
        err = (
            exc
            if isinstance(exc, GlobeError)
            else StorageError("the envelope could not be stored; it was not accepted: retry")
        )
        item.done.set_exception(err)

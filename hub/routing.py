"""Store-and-forward routing: accept envelopes durably, hold them per recipient,
release them only against the recipient's signed receipt (BRIEF R9-R11).

Acceptance order (R9): size cap → strict parse → sender certified and active →
outer signature → every recipient active → per-recipient quota → **durable
commit, then acknowledge** with hub-signed acceptance evidence.  Idempotency is
decided in the commit: an id already stored is answered as a resubmission (the
same bytes: 200 and the stored evidence) or a conflict (other bytes: 409), also
when the quota or a blob check would refuse the envelope.

Submissions are committed by one writer task that batches whatever is queued
into a single transaction (group commit) of a few multi-row statements, so a
synchronous commit per batch, not per message, bounds throughput and no
submission costs a database round trip of its own; each submitter is answered
only after the commit that holds its envelope, or that found it stored (R10).

The node path's other two calls are as cheap: an acknowledgement is one
transaction of a few statements whatever its size, on SQLite on the same
writer thread and connection as the group commit (the two never contend for
the database lock), and a pull, which every push connection makes on every
wake-up, is one prebuilt statement, on SQLite on a reader thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from globe_io.errors import Conflict, MailboxFull, NotFound
from globe_io.hubapi import AckRefusal, AckResult, MailboxItem, MailboxPage
from hub import db
from hub import routing_sql as sql
from hub.metrics import Metrics
from hub.routing_sql import ENVELOPE, NON_DELIVERY, RECEIPT
from hub.service import HubService, Principal
from protocol import canonical, labels
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
    StorageError,
)
from protocol.ids import AuthorityId, MessageId
from protocol.receipts import DeliveryReceipt, EvidenceKind, make_evidence
from protocol.signed import sign_object

__all__ = ["ENVELOPE", "NON_DELIVERY", "RECEIPT", "MailboxFull", "Router", "RoutingLimits"]

log = logging.getLogger("globe.hub.routing")


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
    hash: bytes  # envelope.hash, computed once
    evidence: bytes
    accepted: int
    #: Resolved after the commit: ``None`` for a new envelope, or the evidence stored
    #: for it by a concurrent submission of the same bytes.
    done: asyncio.Future[bytes | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(slots=True)
class _Outcome:
    """What a group commit did with each submission of its batch."""

    new: list[tuple[int, _Pending]] = field(default_factory=list)  # (messages.id, item)
    again: list[tuple[_Pending, bytes]] = field(default_factory=list)  # stored evidence
    conflicts: list[_Pending] = field(default_factory=list)


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
        #: Awaited with (sender, message id) of messages that list attachment blobs and
        #: lost a waiting copy (receipt or expiry), so blobs nobody needs any more can go
        #: (hub.blobs); never with a message that lists none, the most of them.
        self.on_release: Callable[[list[tuple[str, str]]], Awaitable[None]] | None = None
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None  # the writer's connection (PostgreSQL)
        # SQLite: the writer's engine and thread (db.make_writer_engine), which
        # acknowledgements share, and the reader's for pulls (db.make_reader_engine).
        self._sqlite_engine: Engine | None = None
        self._sqlite_writer: ThreadPoolExecutor | None = None
        self._sqlite_reader_engine: Engine | None = None
        self._sqlite_reader: ThreadPoolExecutor | None = None
        self._usage: dict[str, list[int]] = {}  # recipient -> [count, bytes] waiting
        self.batch_sizes: list[int] = []  # recent group-commit sizes
        self._postgres = service.engine.dialect.name == "postgresql"
        self._network = canonical.b64e(service.genesis.digest)
        self._insert_conflicts = insert(db.ConflictRecord)
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
        self._sqlite_engine = db.make_writer_engine(self.service.engine)
        if self._sqlite_engine is not None:
            self._sqlite_writer = ThreadPoolExecutor(1, thread_name_prefix="globe-sqlite-writer")
        self._sqlite_reader_engine = db.make_reader_engine(self.service.engine)
        if self._sqlite_reader_engine is not None:
            self._sqlite_reader = ThreadPoolExecutor(1, thread_name_prefix="globe-sqlite-reader")
        self._writer = asyncio.create_task(self._write_loop(), name="globe-group-commit")

    async def stop(self) -> None:
        """Stop the writer after the queued submissions are committed."""
        if self._writer is not None:
            await self._queue.join()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self._close_connection()
        executors = (self._sqlite_writer, self._sqlite_reader)
        engines = (self._sqlite_engine, self._sqlite_reader_engine)
        self._sqlite_writer = self._sqlite_reader = None
        self._sqlite_engine = self._sqlite_reader_engine = None
        for executor in executors:
            if executor is not None:
                executor.shutdown(wait=True)
        for engine in engines:
            if engine is not None:
                engine.dispose()

    # -- acceptance ------------------------------------------------------------------

    async def submit(self, data: bytes, who: Principal) -> tuple[int, bytes]:
        """Accept an envelope; return (HTTP status, acceptance evidence bytes).

        201 for a new envelope, 200 with the original evidence for an exact
        resubmission; :class:`ConflictError` (409) for the same id with other bytes.

        Idempotency is decided by the group commit, not by a lookup per submission:
        the batch is inserted with ``ON CONFLICT DO NOTHING`` and only the envelopes
        that hit a stored (or an earlier queued) id are compared with it.  A refusal
        by quota or blob check first looks for a stored envelope, so a resubmission
        is answered as one even when the mailbox is full or its blobs are gone.
        """
        svc = self.service
        now = svc.now()
        env = parse_envelope(data, max_size=self.limits.max_envelope)
        if who.authority != env.header.sender:
            raise MalformedError("an envelope is submitted by its sender")
        verify_envelope(env, svc.state, now)
        check_recipients_active(env, svc.state, now)
        try:
            if env.header.blobs:
                await self._check_blobs(env)
            self._check_quota(env)
        except GlobeError:
            existing = await self._existing(env)
            if existing is not None:
                return existing
            raise
        digest = env.hash
        evidence = self.acceptance_evidence(env, now, digest)
        pending = _Pending(env, digest, evidence, now)
        # Reserve the quota now, not at commit: concurrent submissions must not all
        # pass the check above before any of them is counted.
        self._reserve(env, 1)
        try:
            await self._queue.put(pending)
            stored = await pending.done  # raised if the commit failed: nothing acknowledged
        except BaseException:
            self._reserve(env, -1)  # a conflict (409) too: nothing new waits
            raise
        if stored is not None:  # the envelope was stored before: a resubmission
            self._reserve(env, -1)
            return 200, stored
        return 201, evidence

    def acceptance_evidence(self, env: Envelope, time: int, digest: bytes | None = None) -> bytes:
        """The hub-signed ACCEPTED evidence for ``env``, as exact bytes.

        The container :func:`~protocol.receipts.make_evidence` builds (the same
        bytes: Ed25519 signatures are deterministic), without parsing the fresh
        container again and verifying the hub's own signature on it, which would
        cost a third Ed25519 verification per accepted envelope.  ``digest``:
        ``env.hash``, if the caller has it already.
        """
        h = env.header
        return self._evidence(
            EvidenceKind.ACCEPTED, message_id=str(h.message_id),
            envelope_hash=env.hash if digest is None else digest, sender=str(h.sender),
            recipients=sorted(str(r.authority) for r in h.recipients), time=time,
        )  # fmt: skip

    def delivery_evidence(self, receipt: DeliveryReceipt, time: int) -> bytes:
        """The hub-signed DELIVERED evidence for a verified ``receipt``, as exact bytes.

        What :func:`~protocol.receipts.make_evidence` builds for it, as
        :meth:`acceptance_evidence` does: every acknowledged receipt gets one, and
        verifying the hub's own fresh signature again cost as much as signing it.
        """
        return self._evidence(
            EvidenceKind.DELIVERED, message_id=str(receipt.message_id),
            envelope_hash=receipt.envelope_hash, sender=str(receipt.sender),
            recipients=[str(receipt.recipient)], time=time,
        )  # fmt: skip

    def _evidence(
        self,
        kind: EvidenceKind,
        *,
        message_id: str,
        envelope_hash: bytes,
        sender: str,
        recipients: list[str],
        time: int,
    ) -> bytes:
        """Sign evidence without a reason; ``recipients`` sorted (as make_evidence sorts them)."""
        payload: dict[str, object] = {
            "type": "evidence",
            "v": 1,
            "network": self._network,
            "kind": kind.value,
            "id": message_id,
            "envelope": canonical.b64e(envelope_hash),
            "sender": sender,
            "recipients": recipients,
            "time": time,
        }
        return sign_object(payload, labels.EVIDENCE, [self.service.hub_key]).encode()

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
        except (IntegrityError, sqlite3.IntegrityError):
            # Only a foreign key can refuse the batch (a listed blob removed since
            # _check_blobs): commit one by one so that only its submitter fails.
            for item in batch:
                try:
                    await self._insert([item])
                except (StorageError, SQLAlchemyError, sqlite3.Error, OSError) as exc:
                    _storage_failure(exc)
                    _fail(item, exc)
        except (StorageError, SQLAlchemyError, sqlite3.Error, OSError) as exc:
            _storage_failure(exc)
            for item in batch:
                _fail(item, exc)

    async def _insert(self, batch: list[_Pending]) -> None:
        """Commit a batch in one transaction, then answer each submitter.

        One multi-row ``INSERT … ON CONFLICT (sender, message_id) DO NOTHING
        RETURNING`` into ``messages``; of several submissions of one id in the
        batch, the first is the one inserted.  Every other submission (its id
        stored before, or taken earlier in the batch) is compared with the stored
        envelope: the same bytes are a resubmission (answered with the stored
        evidence), other bytes a conflict (recorded, then refused).  Then one
        multi-row insert each into ``mailbox`` and ``message_blobs`` for the
        envelopes actually inserted, in insertion order.

        On PostgreSQL the transaction runs on the writer's own async Core
        connection, kept from batch to batch (no pool checkout, reset or
        ``pool_pre_ping`` round trip per batch) and replaced after any failure.  On
        SQLite it runs in the writer's thread on a synchronous connection to the
        same file (:func:`hub.db.make_writer_engine`): the whole batch is one
        hand-off to that thread instead of one per driver call.
        """
        live = [item for item in batch if not item.done.done()]
        if not live:
            return
        if self._sqlite_writer is not None:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(self._sqlite_writer, self._sqlite_batch, live)
        else:
            if self._conn is None:
                self._conn = await self.service.engine.connect()
            try:
                async with self._conn.begin():
                    outcome = await self._conn.run_sync(self._transaction, live)
            except BaseException:
                await self._close_connection()  # a fresh one for the next batch
                raise
        # Committed: only now is anybody answered.
        if outcome.new:  # commits that stored envelopes (not resubmissions alone)
            self.batch_sizes = [*self.batch_sizes[-999:], len(outcome.new)]
            self.metrics.commit_batch.observe(len(outcome.new))
        touched: set[str] = set()
        for _message, item in outcome.new:  # their quota was reserved at submission
            touched.update(str(r.authority) for r in item.envelope.header.recipients)
            if not item.done.done():
                item.done.set_result(None)
        for item, evidence in outcome.again:
            if not item.done.done():
                item.done.set_result(evidence)
        for item in outcome.conflicts:
            mid = item.envelope.header.message_id
            _fail(item, ConflictError(f"message {mid} was accepted before with other bytes"))
        self.on_commit(touched)

    def _sqlite_batch(self, live: list[_Pending]) -> _Outcome:
        """One batch in the SQLite writer's thread (its engine pools one connection)."""
        assert self._sqlite_engine is not None  # noqa: S101 - SQLite only
        with self._sqlite_engine.begin() as conn:
            return self._transaction(conn, live)

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await conn.close()

    def _transaction(self, conn: Connection, live: list[_Pending]) -> _Outcome:
        """The statements of one batch, inside its transaction (see :meth:`_insert`)."""
        if self._postgres:  # see _serialise
            sql.lock_mailbox(conn)
        first: dict[tuple[str, str], _Pending] = {}
        for item in live:
            first.setdefault(_key(item.envelope), item)
        # SQLite: plain DB-API statements on the writer's own connection (same
        # transaction); SQLAlchemy's statement rendering would run in this thread
        # holding the GIL the event loop needs.  PostgreSQL: Core.
        raw: Any = None
        if not self._postgres:
            driver: Any = conn.connection.driver_connection
            raw = driver.cursor()
        rows = [
            (s, m, item.hash, item.envelope.raw, len(item.envelope.raw),
             item.envelope.header.expires, item.accepted, item.evidence)
            for (s, m), item in first.items()
        ]  # fmt: skip
        ids = sql.insert_message_rows(conn, raw, rows)
        stored = sql.stored(conn, [key for key in first if key not in ids])
        outcome = _Outcome()
        for item in live:
            key = _key(item.envelope)
            if key in ids and first[key] is item:
                outcome.new.append((ids[key], item))
                continue
            envelope_hash, evidence = (
                (first[key].hash, first[key].evidence) if key in ids else stored[key]
            )
            if envelope_hash == item.hash:
                outcome.again.append((item, evidence))
            else:
                outcome.conflicts.append(item)
        outcome.new.sort(key=lambda pair: pair[0])  # mailbox order = message order
        mailbox = [
            (str(r.authority), ENVELOPE, message, None, len(item.envelope.raw), item.accepted)
            for message, item in outcome.new
            for r in item.envelope.header.recipients
        ]
        links = [(message, b) for message, item in outcome.new for b in item.envelope.header.blobs]
        sql.insert_items(conn, raw, mailbox, links)
        if outcome.conflicts:
            now = self.service.now()
            conn.execute(
                self._insert_conflicts,
                [
                    {"sender": s, "message_id": m, "envelope_hash": item.hash,
                     "data": item.envelope.raw, "time": now}
                    for item in outcome.conflicts
                    for s, m in (_key(item.envelope),)
                ],
            )  # fmt: skip
        return outcome

    async def _serialise(self, s: AsyncSession) -> None:
        """Make mailbox cursors follow commit order across hub processes.

        A cursor pull (``after=``) must never skip an item that commits later with
        a smaller ``seq``.  On PostgreSQL, sequence values are taken at insert time,
        so two processes could commit out of ``seq`` order; a transaction-scoped
        advisory lock taken before the first insert makes every transaction that
        adds mailbox items commit in ``seq`` order.  SQLite has a single writer.
        """
        if self._postgres:
            await s.execute(sql.LOCK, {"key": sql.MAILBOX_LOCK})

    # -- mailboxes ----------------------------------------------------------------------

    async def pull(self, who: Principal, after: int, limit: int) -> MailboxPage:
        """Items waiting for ``who`` after the cursor, oldest first.

        Every push connection pulls on every wake-up, so a pull is one prebuilt
        statement: on SQLite one hand-off to the reader thread, whose own connection
        reads beside the writer (WAL: it neither waits for the writer nor holds it
        up); elsewhere a Core select on a pooled connection.
        """
        assert who.authority is not None  # noqa: S101 - member route
        me = str(who.authority)
        reader, engine = self._sqlite_reader, self._sqlite_reader_engine
        rows: Sequence[Any]
        with _storage_errors():
            if reader is not None and engine is not None:
                loop = asyncio.get_running_loop()
                rows = await loop.run_in_executor(reader, sql.sqlite_pull, engine, me, after, limit)
            else:  # one statement: no transaction to begin and end around it
                async with self.service.engine.connect() as conn:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                    result = await conn.execute(
                        sql.PULL, {"me": me, "after": after, "limit": limit}
                    )
                    rows = result.all()
        return MailboxPage(
            items=tuple(
                MailboxItem(seq, kind, data if kind == ENVELOPE else payload or b"")
                for seq, kind, payload, data in rows
            ),
            cursor=rows[-1][0] if rows else after,
        )

    async def ack(self, who: Principal, receipts: list[bytes], notices: list[int]) -> AckResult:
        """Release envelopes against signed receipts; drop acknowledged notices.

        A receipt must be the authenticated member's, for an envelope waiting in
        its mailbox, over that envelope's exact bytes; otherwise nothing is
        released for it and it is reported as refused.  Everything one request
        acknowledges commits in one transaction (a node acknowledges a whole batch
        of pushed or pulled items at once): a receipt is checked, and refused,
        before it writes anything, so a refusal needs no rollback of the others.

        The transaction is a few statements whatever the batch's size
        (:func:`hub.routing_sql.ack_transaction`); on SQLite it runs on the group commit's writer
        thread and connection, so acknowledgements and submissions never wait for
        each other's database lock.
        """
        assert who.authority is not None  # noqa: S101 - member route
        me = str(who.authority)
        svc = self.service
        now = svc.now()
        refused: list[tuple[int, AckRefusal]] = []  # by the receipt's place in the request
        decoded: list[tuple[int, DeliveryReceipt, bytes]] = []
        for i, data in enumerate(receipts):
            try:
                receipt = DeliveryReceipt.decode(data, svc.state)
                if receipt.recipient != who.authority:
                    raise MalformedError("a receipt is acknowledged by its signer")
                decoded.append((i, receipt, data))
            except GlobeError as exc:
                refused.append((i, AckRefusal(type=exc.type_uri(), detail=exc.detail)))
        if not decoded and not notices:
            return AckResult(released=(), refused=tuple(r for _, r in refused), notices=0)
        with _storage_errors():
            # Signed before the transaction, which then holds the locks only for its
            # statements; a receipt refused by the transaction wastes its signature.
            claims = [self._claim(i, receipt, data, now) for i, receipt, data in decoded]
            acked = await self._run_ack(sql.AckBatch(me, claims, notices, now))
        released = {claim.index for claim, _size, _sender in acked.released}
        for claim in claims:
            if claim.index not in released:
                gone = NotFound(f"no envelope {claim.key[1]} waits for {me} with those bytes")
                refused.append((claim.index, AckRefusal(type=gone.type_uri(), detail=gone.detail)))
        # What the commit changed: the usage counters, the metrics, who to wake.
        notify: set[str] = set()
        for claim, size, sender in acked.released:
            self._used(me, -1, -size)
            self._used(sender, 1, len(claim.notice))
            notify.add(sender)
        self.metrics.receipts += len(acked.released)
        dropped = acked.dropped
        self._used(me, -len(dropped), -sum(size for _, size in dropped))
        self.on_commit(notify)
        await self._released(acked.with_blobs)
        in_order = tuple(r for _, r in sorted(refused, key=lambda x: x[0]))
        return AckResult(
            released=tuple(claim.key[1] for claim, _size, _sender in acked.released),
            refused=in_order,
            notices=len(dropped),
        )

    def _claim(self, index: int, receipt: DeliveryReceipt, data: bytes, now: int) -> sql.Claim:
        """A verified receipt with the notice its release queues for the sender: the
        receipt and the hub's DELIVERED evidence."""
        evidence = self.delivery_evidence(receipt, now)
        notice = canonical.encode(
            {"receipt": canonical.b64e(data), "evidence": canonical.b64e(evidence)}
        )
        key = (str(receipt.sender), str(receipt.message_id))
        return sql.Claim(index, receipt, data, notice, key)

    async def _run_ack(self, batch: sql.AckBatch) -> sql.Acked:
        """Run :func:`hub.routing_sql.ack_transaction` in one transaction: on SQLite as
        one hand-off to the writer's thread; otherwise on a pooled connection."""
        writer, engine = self._sqlite_writer, self._sqlite_engine
        if writer is not None and engine is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(writer, self._sqlite_ack, engine, batch)
        async with self.service.engine.begin() as conn:
            return await conn.run_sync(sql.ack_transaction, None, batch, postgres=True)

    def _sqlite_ack(self, engine: Engine, batch: sql.AckBatch) -> sql.Acked:
        """One acknowledgement in the SQLite writer's thread, on its connection."""
        with engine.begin() as conn:
            driver: Any = conn.connection.driver_connection
            raw = driver.cursor()
            try:
                return sql.ack_transaction(conn, raw, batch, postgres=False)
            finally:
                raw.close()

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
                           db.Message.envelope_hash, sql.LISTS_BLOBS.label("blobs"))
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
                if row.blobs:
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


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Storage failures as :class:`StorageError` (503: retry), as ``HubService.unit``
    reports them: the driver's message is logged, never a statement or its parameters."""
    try:
        yield
    except (GlobeError, IntegrityError, sqlite3.IntegrityError):
        raise
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        _storage_failure(exc)
        raise StorageError("the hub's database is unavailable; retry later") from exc


def _key(env: Envelope) -> tuple[str, str]:
    return str(env.header.sender), str(env.header.message_id)


def _storage_failure(exc: BaseException) -> None:
    """Log why a group commit failed: the driver's message, never the statement or its
    parameters (which hold envelope bytes)."""
    if isinstance(exc, GlobeError):
        return
    cause = getattr(exc, "orig", None) or exc
    log.error(
        "storage failure: %s: %s",
        type(cause).__name__,
        str(cause.args[0] if cause.args else "")[:200],
    )


def _fail(item: _Pending, exc: BaseException) -> None:
    if not item.done.done():
        err = (
            exc
            if isinstance(exc, GlobeError)
            else StorageError("the envelope could not be stored; it was not accepted: retry")
        )
        item.done.set_exception(err)

"""All of the node's SQL, behind one repository (STYLE.md: "SQL behind one repository").

Each method is one unit of work: it opens its own session or transaction (or
takes the caller's, named ``s``, when several changes must commit together),
and every storage failure (a full disk, a locked or unreadable database) is
translated here into :class:`~protocol.errors.StorageError` — 503 on the
local API, retryable, nothing half-written — instead of escaping as a library
exception.  Delivery states change by conditional statements built from the
transition table (:mod:`globe_node.states`), so a late event never undoes a
later state.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from globe_node import db
from globe_node.compartments import Placement
from globe_node.sql import Sql
from globe_node.states import (
    DELIVERY_TRANSITIONS,
    RECIPIENT_EVENTS,
    Delivery,
    DeliveryEvent,
    RequestState,
    request_transition,
)
from globe_node.writer import GroupWriter, WriterLock, storage_failure
from protocol.messages import Handling, StatusState

__all__ = ["ReceiptRecord", "Store", "WriterLock", "move_request", "storage_errors"]

log = logging.getLogger("globe.node.store")
_T = TypeVar("_T")
#: Whether this task is inside :meth:`Store.write` (see :meth:`Store.transact`).
_IN_SESSION: contextvars.ContextVar[bool] = contextvars.ContextVar("in_session", default=False)


@contextlib.asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Translate the database library's failures into :class:`StorageError`."""
    try:
        yield
    except IntegrityError:
        raise  # a broken invariant is a bug, not an operational failure
    except (OperationalError, DBAPIError) as exc:
        raise storage_failure(exc) from None


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """A recipient's verified receipt for one of our messages, to be stored."""

    message_id: str
    recipient: str
    envelope_hash: bytes
    via: str
    receipt: bytes
    evidence: bytes | None


class Store:
    """The node database: sessions, and one method per query or change.

    Two ways to write.  :meth:`write` opens an ORM session on the async engine (each
    statement a round trip to aiosqlite's thread, and several more to begin, commit
    and close).  :meth:`transact` runs a whole transaction, a plain function of a
    synchronous connection with SQLAlchemy Core statements, on the node's one writer
    thread: one round trip from the event loop, whatever the transaction does.  The
    changes made on the busy paths (deliveries, receipts) use :meth:`transact`; both
    kinds take turns (:class:`WriterLock`).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = db.session_factory(engine)
        self.writer = WriterLock()
        #: The writer thread's and the reader thread's engines (each one connection, made
        #: by its thread on first use).
        self.writer_engine: Engine = db.make_writer_engine(engine)
        self.reader_engine: Engine = db.make_writer_engine(engine, writes=False)
        #: Runs :meth:`transact`'s transactions, several at once when they queue up.
        self.group = GroupWriter(self.writer_engine, self.writer)
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="globe-node-reader")

    async def query(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work``, reads only, on the reader thread (one hand-off from the event
        loop, whatever it reads); storage failures are :class:`StorageError`."""
        loop = asyncio.get_running_loop()
        async with storage_errors():
            return await loop.run_in_executor(self._reader, self._read, work)

    def _read(self, work: Callable[[Connection], _T]) -> _T:
        with self.reader_engine.connect() as conn:
            return work(conn)

    async def transact(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a write transaction on the writer thread: what it wrote commits
        when it returns, and is rolled back if it raises; storage failures are
        :class:`StorageError`.  Transactions that queue up meanwhile commit together
        (:class:`~globe_node.writer.GroupWriter`), and nobody is answered before the
        commit.  A cancelled caller does not give up its turn before its transaction is
        over (the thread does not stop half-way)."""
        if _IN_SESSION.get():
            # The session's transaction may hold SQLite's write lock: the writer thread
            # would wait for it, and it for the thread, until the busy timeout.
            raise RuntimeError("a writer-thread transaction inside an open session transaction")
        return await self.group.transact(work)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session."""
        async with storage_errors(), self.sessions() as s:
            yield s

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction: everything in it commits together or not at all.  Write
        transactions take turns (:class:`WriterLock`)."""
        async with self.writer.turn(), storage_errors(), self.sessions.begin() as s:
            token = _IN_SESSION.set(True)
            try:
                yield s
            finally:
                _IN_SESSION.reset(token)

    async def close(self) -> None:
        """Dispose of the engines' connections and stop the writer thread."""
        loop = asyncio.get_running_loop()
        await self.group.close()  # each thread closes the connection it made
        await loop.run_in_executor(self._reader, self.reader_engine.dispose)
        self._reader.shutdown(wait=True)
        await self.engine.dispose()

    # -- meta, log, alerts ---------------------------------------------------------------

    async def load_log(self) -> list[bytes]:
        """The verified log entries, in order."""
        async with self.read() as s:
            return list((await s.execute(select(db.LogRow.data).order_by(db.LogRow.seq))).scalars())

    async def meta(self, key: str) -> str | None:
        """A small named value."""
        async with self.read() as s:
            row = await s.get(db.Meta, key)
            return None if row is None else row.value

    @staticmethod
    async def put_meta(s: AsyncSession, key: str, value: str) -> None:
        """Set a small named value in the caller's transaction."""
        row = await s.get(db.Meta, key)
        if row is None:
            s.add(db.Meta(key=key, value=value))
        else:
            row.value = value

    async def extend_log(
        self, start: int, entries: Sequence[bytes], heads: Sequence[bytes], meta: dict[str, str]
    ) -> None:
        """Append verified entries ``start + 1 …`` and set ``meta``, in one transaction."""
        async with self.write() as s:
            for i, data in enumerate(entries, start=start + 1):
                s.add(db.LogRow(seq=i, data=data, head=heads[i]))
            for key, value in meta.items():
                await self.put_meta(s, key, value)

    async def add_alert(
        self, kind: str, detail: str, evidence: bytes | None, now: int, *,
        about: tuple[str, str | None, str | None] | None = None,
    ) -> bool:  # fmt: skip
        """Record an alert once per evidence (or per detail without evidence); True if new.

        ``about``: (message id, team, user) of a request's reminder, which only those who
        see the request are shown.
        """
        async with self.write() as s:
            same = (
                db.Alert.evidence == evidence if evidence is not None else db.Alert.detail == detail
            )
            known = (
                await s.execute(select(db.Alert.id).where(db.Alert.kind == kind).where(same))
            ).first()
            if known is not None:
                return False
            row = db.Alert(kind=kind, detail=detail, evidence=evidence, time=now)
            if about is not None:
                row.material = True
                row.message_id, row.team, row.user = about
            s.add(row)
            return True

    async def alerts(self, shown: ColumnElement[bool] | None = None) -> list[db.Alert]:
        """Every alert (that ``shown`` holds for), newest first."""
        q = select(db.Alert).order_by(db.Alert.id.desc())
        if shown is not None:
            q = q.where(shown)
        async with self.read() as s:
            return list((await s.execute(q)).scalars())

    # -- prekeys ---------------------------------------------------------------------------

    async def prekeys(self) -> list[db.PrekeyRow]:
        """This node's prekeys."""
        async with self.read() as s:
            return list((await s.execute(select(db.PrekeyRow))).scalars())

    async def add_prekey(self, row: db.PrekeyRow) -> None:
        """Store a new prekey."""
        async with self.write() as s:
            s.add(row)

    async def prekey_published(self, key_id: str) -> None:
        """Mark a prekey as published at the hub."""
        async with self.write() as s:
            await s.execute(
                update(db.PrekeyRow).where(db.PrekeyRow.key_id == key_id).values(published=True)
            )

    async def erase_prekeys(self, ended_before: int, now: int) -> list[str]:
        """Erase the private halves of prekeys that ended before ``ended_before``."""
        async with self.write() as s:
            rows = (
                await s.execute(
                    select(db.PrekeyRow)
                    .where(db.PrekeyRow.private.is_not(None))
                    .where(db.PrekeyRow.not_after < ended_before)
                )
            ).scalars()
            erased = []
            for r in rows:
                r.private = None
                r.erased = now
                erased.append(r.key_id)
            return erased

    # -- the outbox ------------------------------------------------------------------------

    @staticmethod
    def next_seqs(c: Connection, peers: Sequence[str]) -> dict[str, int]:
        """Take the next per-pair sequence number for each peer (the transaction of
        ``c``): one statement per peer, which makes the pair row if it is new."""
        return {p: int(_TAKE_SEQ.scalar(c, {"b_peer": p})) - 1 for p in peers}

    async def out_message(self, message_id: str) -> db.OutMessage | None:
        """A sent message (a detached row)."""
        row = await self.query(lambda c: _OUT_MESSAGE.first(c, {"mid": message_id}))
        return None if row is None else db.OutMessage(**row._asdict())

    async def due(
        self, now: int, limit: int = 100
    ) -> tuple[list[tuple[db.OutMessage, list[db.OutRecipient]]], int | None]:
        """Up to ``limit`` messages with a recipient queued and due now, each with its
        recipients still queued (detached rows), and the earliest next attempt of any
        queued recipient: one hand-off to the reader, three statements whatever the count.
        """

        def read(c: Connection) -> tuple[list[tuple[db.OutMessage, list[db.OutRecipient]]],
                                          int | None]:  # fmt: skip
            nxt = _EARLIEST.scalar(c)
            ids = _DUE.scalars(c, {"now": now, "limit": limit})
            if not ids:
                return [], None if nxt is None else int(nxt)
            listed = {"ids": json.dumps(ids)}
            targets: dict[str, list[db.OutRecipient]] = {}
            for r in _QUEUED_OF.rows(c, listed):
                targets.setdefault(r.message_id, []).append(db.OutRecipient(**r._asdict()))
            messages = {m.message_id: m for m in _OUT_MESSAGES.rows(c, listed)}
            # A message sent on or answered meanwhile has no recipient queued: left out.
            out = [
                (db.OutMessage(**messages[mid]._asdict()), targets[mid])
                for mid in ids
                if mid in targets and mid in messages
            ]
            return out, None if nxt is None else int(nxt)

        return await self.query(read)

    async def queued_targets(self, message_id: str) -> list[db.OutRecipient]:
        """The recipients of a message still queued (detached rows)."""
        rows = await self.query(lambda c: _QUEUED.rows(c, {"mid": message_id}))
        return [db.OutRecipient(**row._asdict()) for row in rows]

    async def recipients(self, message_ids: Sequence[str]) -> list[db.OutRecipient]:
        """The recipient rows of these sent messages."""
        async with self.read() as s:
            return list(
                (
                    await s.execute(
                        select(db.OutRecipient).where(
                            db.OutRecipient.message_id.in_(list(message_ids))
                        )
                    )
                ).scalars()
            )

    async def apply(
        self,
        message_id: str,
        recipients: Sequence[str],
        event: DeliveryEvent,
        *,
        via: str | None = None,
        error: str | None = None,
        evidence: bytes | None = None,
        reset_attempt: bool = False,
    ) -> int:
        """Apply a delivery event (one conditional statement); how many rows moved."""
        return await self.transact(
            applying(message_id, recipients, event, via=via, error=error, evidence=evidence,
                     reset_attempt=reset_attempt)
        )  # fmt: skip

    async def blob_uploaded(self, message_id: str, sender: str, blob: str) -> str:
        """A pending attachment reached the hub; the message's remaining pending blobs."""
        out = db.OutMessage
        att = db.AttachmentRow

        def record(c: Connection) -> str:
            pending = c.execute(
                select(out.pending_blobs).where(out.message_id == message_id)
            ).scalar_one_or_none()
            remaining = ""
            if pending is not None:
                remaining = " ".join(b for b in pending.split() if b != blob)
                c.execute(
                    update(out).where(out.message_id == message_id).values(pending_blobs=remaining)
                )
            c.execute(
                update(att)
                .where(att.sender == sender)
                .where(att.blob == blob)
                .values(state="uploaded")
            )
            return remaining

        return await self.transact(record)

    async def record_receipts(self, receipts: Sequence[ReceiptRecord], *, now: int) -> list[str]:
        """Store recipients' verified receipts in one transaction; each one's outcome:
        ``stored``, ``kept`` (already delivered) or why it names nothing of ours
        (``no-message``, ``not-a-recipient``)."""
        return await self.transact(lambda c: [_record_receipt(c, r, now) for r in receipts])

    # -- the inbox ---------------------------------------------------------------------------

    async def seen(self, sender: str, message_id: str) -> tuple[bytes, bytes] | None:
        """The stored (envelope hash, receipt) of a received (sender, id), if any."""
        return await self.query(lambda c: self.seen_in(c, sender, message_id))

    async def seen_many(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[bytes, bytes]]:
        """:meth:`seen` for several (sender, id) at once (one read): those stored."""
        if not keys:
            return {}

        def read(c: Connection) -> dict[tuple[str, str], tuple[bytes, bytes]]:
            found = {key: self.seen_in(c, *key) for key in keys}
            return {key: held for key, held in found.items() if held is not None}

        return await self.query(read)

    @staticmethod
    def seen_in(c: Connection, sender: str, message_id: str) -> tuple[bytes, bytes] | None:
        """:meth:`seen`, in the transaction of ``c``."""
        row = _SEEN.first(c, {"b_sender": sender, "b_mid": message_id})
        return None if row is None else (bytes(row.envelope_hash), bytes(row.receipt))

    async def add_conflict(self, row: db.Conflict) -> bool:
        """Keep a conflicting envelope once; True if it was new."""
        async with self.write() as s:
            known = (
                await s.execute(
                    select(db.Conflict.id)
                    .where(db.Conflict.sender == row.sender)
                    .where(db.Conflict.envelope_hash == row.envelope_hash)
                )
            ).first()
            if known is None:
                s.add(row)
            return known is None

    @staticmethod
    def take_in_seq(c: Connection, peer: str, seq: int) -> int:
        """Record ``seq`` received from ``peer``; the highest seen before (the transaction
        of ``c``).  The pair row is made if it is new: a send and a receive may both make
        it, and the second finds the first's row."""
        last = _LAST_IN.scalar(c, {"b_peer": peer})
        _TAKE_IN_SEQ.run(c, {"b_peer": peer, "b_seq": seq})
        return 0 if last is None else int(last)

    async def attachment_known(self, sender: str, blob: str) -> bool:
        """Whether an attachment row exists for a sender's blob (its file is kept)."""
        async with self.read() as s:
            return await s.get(db.AttachmentRow, (sender, blob)) is not None

    async def receipts_acked(self, messages: Sequence[tuple[str, str]]) -> None:
        """The hub released these received messages' envelopes: (sender, message id)."""
        keys = [{"b_sender": sender, "b_mid": mid} for sender, mid in messages]
        if keys:
            await self.transact(lambda c: _RECEIPT_ACKED.many(c, keys))

    async def sealed_contents(self) -> AsyncIterator[tuple[str, bytes]]:
        """(message id, sealed content) of every stored message, received then sent."""
        async with self.read() as s:
            for model in (db.InMessage, db.OutMessage):
                rows = await s.stream(select(model.message_id, model.content))
                async for mid, content in rows:
                    yield mid, content

    async def mark_read(self, message_id: str, now: int, user: str, s: AsyncSession) -> None:
        """Record the first read of a received message (caller's transaction)."""
        await s.execute(
            update(db.InMessage)
            .where(db.InMessage.message_id == message_id)
            .where(db.InMessage.read_at.is_(None))
            .values(read_at=now, read_by=user)
        )

    async def in_message(self, message_id: str) -> db.InMessage | None:
        """A received message by id (the first, if two senders reused one id)."""
        async with self.read() as s:
            return (
                (await s.execute(select(db.InMessage).where(db.InMessage.message_id == message_id)))
                .scalars()
                .first()
            )

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def open_requests(
        c: Connection, message_id: str, direction: str, counterparts: Sequence[str], *,
        place: Placement, urgency: str, handling: Handling, state: RequestState,
        created: int, deadline: int, user: str | None = None,
    ) -> None:  # fmt: skip
        """A new request, one row per counterpart (the transaction of ``c``)."""
        restrictions = " ".join(sorted(r.value for r in handling.restrictions))
        _ADD_REQUESTS.many(
            c,
            [
                {
                    "message_id": message_id, "direction": direction, "counterpart": cp,
                    "case": place.case, "team": place.team, "urgency": urgency,
                    "tlp": handling.tlp.value, "restrictions": restrictions,
                    "state": state.value, "created": created, "deadline": deadline,
                    "asked": deadline, "user": user,
                }
                for cp in counterparts
            ],
        )  # fmt: skip

    async def request_rows(self, message_id: str) -> list[db.RequestRow]:
        """The workflow rows of one request (one per counterpart), by counterpart."""
        async with self.read() as s:
            return list(
                (
                    await s.execute(
                        select(db.RequestRow)
                        .where(db.RequestRow.message_id == message_id)
                        .order_by(db.RequestRow.direction, db.RequestRow.counterpart)
                    )
                ).scalars()
            )

    async def requests(self) -> list[db.RequestRow]:
        """Every request workflow row, by deadline."""
        q = select(db.RequestRow).order_by(db.RequestRow.deadline)
        async with self.read() as s:
            return list((await s.execute(q)).scalars())

    # -- peer heads ------------------------------------------------------------------------

    async def delete_peer_heads(self, ids: Sequence[int]) -> None:
        """Forget resolved peer-head claims."""
        async with self.write() as s:
            await s.execute(delete(db.PeerHead).where(db.PeerHead.id.in_(list(ids))))

    # -- the read side (lists and counts) ----------------------------------------------------

    async def inbox_rows(
        self, limit: int, *, unread: bool, shown: ColumnElement[bool]
    ) -> list[db.InMessage]:
        """Received messages (those ``shown`` holds for), newest first."""
        q = (
            select(db.InMessage)
            .where(shown)
            .order_by(db.InMessage.received.desc(), db.InMessage.id.desc())
        )
        if unread:
            q = q.where(db.InMessage.read_at.is_(None))
        async with self.read() as s:
            return list((await s.execute(q.limit(limit))).scalars())

    async def outbox_rows(self, limit: int, *, shown: ColumnElement[bool]) -> list[db.OutMessage]:
        """Sent messages (those ``shown`` holds for), newest first."""
        q = (
            select(db.OutMessage)
            .where(shown)
            .order_by(db.OutMessage.created.desc(), db.OutMessage.message_id)
            .limit(limit)
        )
        async with self.read() as s:
            return list((await s.execute(q)).scalars())

    async def granted_decisions(self, originator: str) -> list[db.InMessage]:
        """Consent decisions received from ``originator`` with their inner signature (and
        the content it signs: not purged)."""
        async with self.read() as s:
            return list(
                (
                    await s.execute(
                        select(db.InMessage)
                        .where(db.InMessage.sender == originator)
                        .where(db.InMessage.kind == "consent-decision")
                        .where(db.InMessage.inner_signature.is_not(None))
                        .where(db.InMessage.purged.is_(None))  # its signed content is gone
                    )
                ).scalars()
            )

    async def counts(self, shown: ColumnElement[bool]) -> tuple[dict[str, int], int]:
        """(recipients per delivery state, unread received messages ``shown`` holds for)."""
        async with self.read() as s:
            states = (
                await s.execute(
                    select(db.OutRecipient.state, func.count()).group_by(db.OutRecipient.state)
                )
            ).all()
            unread = (
                await s.execute(
                    select(func.count())
                    .select_from(db.InMessage)
                    .where(db.InMessage.read_at.is_(None), shown)
                )
            ).scalar_one()
        return {str(k): int(v) for k, v in states}, int(unread)


def _record_receipt(c: Connection, r: ReceiptRecord, now: int) -> str:
    """Store one verified receipt (the writer's transaction); its outcome."""
    digest = _ENVELOPE_HASH.scalar(c, {"mid": r.message_id})
    if digest is None or digest != r.envelope_hash:
        return "no-message"
    row = _RECIPIENT_STATE.first(c, {"mid": r.message_id, "rcpt": r.recipient})
    if row is None:
        return "not-a-recipient"
    sources, target = DELIVERY_TRANSITIONS[DeliveryEvent.RECEIPT]
    if Delivery(row.state) not in sources:
        return "kept"
    _DELIVERED.run(
        c,
        {"mid": r.message_id, "rcpt": r.recipient, "b_state": target.value,
         "b_via": row.via if r.via == "hub" and row.via else r.via, "b_receipt": r.receipt,
         "b_delivered": now, "b_evidence": r.evidence},
    )  # fmt: skip
    return "stored"


def _table(model: type[db.Base]) -> Table:
    """The table of a model, for Core statements."""
    return db.Base.metadata.tables[model.__tablename__]


# Statements of the busy paths, built once: building one costs more than running it.
_PAIRS: Final = _table(db.Pair)
_OUT: Final = _table(db.OutMessage)
_RCPT: Final = _table(db.OutRecipient)
_TAKE_SEQ: Final = Sql(
    sqlite_insert(_PAIRS)
    .values(peer=bindparam("b_peer"), next_out=2, last_in=0)
    .on_conflict_do_update(index_elements=[_PAIRS.c.peer], set_={"next_out": _PAIRS.c.next_out + 1})
    .returning(_PAIRS.c.next_out)
)
_LAST_IN: Final = Sql(select(_PAIRS.c.last_in).where(_PAIRS.c.peer == bindparam("b_peer")))
_TAKE_IN_SEQ: Final = Sql(
    sqlite_insert(_PAIRS)
    .values(peer=bindparam("b_peer"), next_out=1, last_in=bindparam("b_seq"))
    .on_conflict_do_update(
        index_elements=[_PAIRS.c.peer],
        set_={"last_in": func.max(_PAIRS.c.last_in, bindparam("b_seq"))},
    )
)
_IN: Final = _table(db.InMessage)
_RECEIPT_ACKED: Final = Sql(
    update(_IN)
    .where(_IN.c.sender == bindparam("b_sender"))
    .where(_IN.c.message_id == bindparam("b_mid"))
    .values(receipt_acked=True)
)
_SEEN: Final = Sql(
    select(_IN.c.envelope_hash, _IN.c.receipt).where(
        (_IN.c.sender == bindparam("b_sender")) & (_IN.c.message_id == bindparam("b_mid"))
    )
)
_ADD_REQUESTS: Final = Sql(insert(_table(db.RequestRow)))
_OUT_MESSAGE: Final = Sql(select(_OUT).where(_OUT.c.message_id == bindparam("mid")))
_QUEUED: Final = Sql(
    select(_RCPT)
    .where(_RCPT.c.message_id == bindparam("mid"))
    .where(_RCPT.c.state == Delivery.QUEUED.value)
)
#: The message ids of a JSON array parameter ``ids``: a list in one statement compiled once
#: (:mod:`globe_node.sql` has no expanding IN).
_LISTED: Final[Select[Any]] = select(literal_column("value")).select_from(
    func.json_each(bindparam("ids", type_=String))
)
_QUEUED_OF: Final = Sql(
    select(_RCPT)
    .where(_RCPT.c.message_id.in_(_LISTED))
    .where(_RCPT.c.state == Delivery.QUEUED.value)
)
_OUT_MESSAGES: Final = Sql(select(_OUT).where(_OUT.c.message_id.in_(_LISTED)))
_DUE: Final = Sql(
    select(_RCPT.c.message_id)
    .where(_RCPT.c.state == Delivery.QUEUED.value)
    .where(_RCPT.c.next_attempt <= bindparam("now"))
    .distinct()
    .limit(bindparam("limit"))
)
_EARLIEST: Final = Sql(
    select(func.min(_RCPT.c.next_attempt)).where(_RCPT.c.state == Delivery.QUEUED.value)
)
_ENVELOPE_HASH: Final = Sql(
    select(_OUT.c.envelope_hash).where(_OUT.c.message_id == bindparam("mid"))
)
_RECIPIENT_STATE: Final = Sql(
    select(_RCPT.c.state, _RCPT.c.via).where(
        (_RCPT.c.message_id == bindparam("mid")) & (_RCPT.c.recipient == bindparam("rcpt"))
    )
)
_DELIVERED: Final = Sql(
    update(_RCPT)
    .where((_RCPT.c.message_id == bindparam("mid")) & (_RCPT.c.recipient == bindparam("rcpt")))
    .values(
        state=bindparam("b_state"), via=bindparam("b_via"), receipt=bindparam("b_receipt"),
        delivered=bindparam("b_delivered"),
        evidence=func.coalesce(bindparam("b_evidence"), _RCPT.c.evidence),
    )
)  # fmt: skip


def applying(
    message_id: str,
    recipients: Sequence[str],
    event: DeliveryEvent,
    *,
    via: str | None = None,
    error: str | None = None,
    evidence: bytes | None = None,
    reset_attempt: bool = False,
) -> Callable[[Connection], int]:
    """The write of :meth:`Store.apply`, to run in a transaction of the caller's."""
    values: dict[str, object] = {}
    if via is not None:
        values["via"] = via
    if error is not None or reset_attempt:
        values["last_error"] = error
    if evidence is not None:
        values["evidence"] = evidence
    if reset_attempt:
        values["next_attempt"] = 0
    moved = _transition(event, tuple(sorted(values)))
    common: dict[str, object] = {f"b_{k}": v for k, v in values.items()}
    each = [{**common, "mid": message_id, "rcpt": r} for r in recipients]
    return lambda c: sum(moved.run(c, p) for p in each)


def backing_off(
    message_id: str, attempts: dict[str, tuple[int, int]], error: str
) -> Callable[[Connection], None]:
    """Record a failed attempt: recipient -> (attempts, next attempt), while still queued;
    the write, to run in a transaction of the caller's."""
    each = [
        {
            "mid": message_id,
            "rcpt": r,
            "b_attempts": n,
            "b_next_attempt": when,
            "b_last_error": error,
        }
        for r, (n, when) in attempts.items()
    ]

    def record(c: Connection) -> None:
        for p in each:
            _BACKOFF.run(c, p)

    return record


_BACKOFF: Final = Sql(
    update(_RCPT)
    .where(_RCPT.c.message_id == bindparam("mid"))
    .where(_RCPT.c.recipient == bindparam("rcpt"))
    .where(_RCPT.c.state == Delivery.QUEUED.value)
    .values(
        attempts=bindparam("b_attempts"), next_attempt=bindparam("b_next_attempt"),
        last_error=bindparam("b_last_error"),
    )
)  # fmt: skip


@functools.cache
def _transition(event: DeliveryEvent, columns: tuple[str, ...]) -> Sql:
    """The conditional update that applies ``event`` to one recipient of a message,
    setting the state and ``columns`` (bound as ``b_<column>``), built once per shape."""
    sources, target = DELIVERY_TRANSITIONS[event]
    moved = (
        update(_RCPT)
        .where(_RCPT.c.message_id == bindparam("mid"))
        .where(_RCPT.c.recipient == bindparam("rcpt"))
        # equalities, not IN: a literal IN list is an expanding parameter (sql.Sql)
        .where(or_(*(_RCPT.c.state == x.value for x in sources)))
        .values(state=target.value, **{k: bindparam(f"b_{k}") for k in columns})
    )
    if event is DeliveryEvent.RETRY:  # a purged message's envelope is gone (retention.py)
        purged = select(_OUT.c.message_id).where(_OUT.c.purged.is_not(None))
        moved = moved.where(_RCPT.c.message_id.not_in(purged))
    return Sql(moved)


def move_request(
    c: Connection, message_id: str, direction: str, counterpart: str, *,
    event: StatusState, expected: int | None = None, deadline: int | None = None, now: int,
) -> bool:  # fmt: skip
    """Apply a status update or an answer (``answered``) to the request it replies to, by
    the transition table (the transaction of ``c``); False when it does not apply."""
    requests = _table(db.RequestRow)
    key = (
        (requests.c.message_id == message_id)
        & (requests.c.direction == direction)
        & (requests.c.counterpart == counterpart)
    )
    row = c.execute(select(requests).where(key)).first()
    if row is None:
        return False
    target = request_transition(RequestState(row.state), event)
    if target is None:
        return False
    values: dict[str, object] = {"state": target.value}
    if expected is not None:
        values["expected"] = expected
    if deadline is not None:
        values["deadline"] = max(row.deadline, deadline)  # the latest extension holds
    if event in RECIPIENT_EVENTS:
        values["first_response"] = row.first_response or now
    if target is RequestState.ANSWERED:
        values["answered"] = row.answered or now
    if target is RequestState.DECLINED:
        values["declined"] = row.declined or now
    if target in (RequestState.CLOSED, RequestState.WITHDRAWN):
        values["ended"] = row.ended or now
    c.execute(update(requests).where(key).values(**values))
    return True

"""The routing tables' statements, and the functions that run them on one connection.

Two forms of each: SQLAlchemy Core, built once, for PostgreSQL (and any connection);
and plain DB-API text for the SQLite writer's and reader's own connections (``raw``:
the driver's cursor), where rendering a Core statement would cost more than running
it, in a thread that holds the GIL the event loop needs.  The text names the tables
and columns of :mod:`hub.db`; tests/hub/test_routing_sql.py checks they match.  The
router (:mod:`hub.routing`) decides what to run and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import bindparam, delete, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from hub import db
from protocol.errors import StorageError
from protocol.receipts import DeliveryReceipt

__all__ = [
    "ENVELOPE",
    "LOCK",
    "MAILBOX_LOCK",
    "NON_DELIVERY",
    "RECEIPT",
    "AckBatch",
    "Acked",
    "Claim",
    "ack_candidates",
    "ack_transaction",
    "flat",
    "insert_deliveries",
    "insert_items",
    "insert_message_rows",
    "lock_mailbox",
    "sqlite_pull",
    "stored",
    "take",
]

#: Mailbox item kinds.
ENVELOPE: Final = "envelope"
RECEIPT: Final = "receipt"
NON_DELIVERY: Final = "non-delivery"


#: Advisory-lock key serialising mailbox writers on PostgreSQL ("GLBM").
MAILBOX_LOCK: Final = 0x474C424D
LOCK: Final = text("SELECT pg_advisory_xact_lock(:key)")


def lock_mailbox(conn: Connection) -> None:
    """Take the mailbox writers' lock for the transaction of ``conn`` (PostgreSQL)."""
    conn.execute(LOCK, {"key": MAILBOX_LOCK})


@dataclass(slots=True)
class Claim:
    """A verified receipt of one acknowledgement, and the notice its release queues."""

    index: int  # the receipt's place in the request
    receipt: DeliveryReceipt
    data: bytes  # the receipt container, as acknowledged
    notice: bytes  # for the sender's mailbox: the receipt and the DELIVERED evidence
    key: tuple[str, str]  # (sender, message id) of the envelope it releases


@dataclass(frozen=True, slots=True)
class AckBatch:
    """What one acknowledgement asks of the database."""

    me: str  # the acknowledging member
    claims: list[Claim]  # in request order
    notices: list[int]  # cursors of notices to drop
    now: int


@dataclass(slots=True)
class Acked:
    """What one acknowledgement's transaction did."""

    #: (claim, envelope size, sender) of each release, in request order.
    released: list[tuple[Claim, int, str]] = field(default_factory=list)
    dropped: list[tuple[int, int]] = field(default_factory=list)  # (seq, size) of notices
    #: (sender, message id) of the released envelopes that list attachment blobs.
    with_blobs: list[tuple[str, str]] = field(default_factory=list)


def ack_transaction(conn: Connection, raw: Any, batch: AckBatch, *, postgres: bool) -> Acked:
    """One acknowledgement's statements, inside its transaction (see ``Router.ack``).

    On PostgreSQL the mailbox lock first (``Router._serialise``: the receipt notices
    take ``seq`` values).  Then one select of every envelope the receipts could
    release (the member's mailbox rows of the batch's ids), matched in request
    order and checked against each receipt's envelope hash; one delete of the
    matched rows; one insert each (executemany) of the deliveries and of the
    receipt notices; one delete of the acknowledged notices.

    Why an envelope is released at most once, on both backends: the select
    only proposes, and a row is released only if this transaction's ``DELETE
    ... RETURNING`` returns it; a receipt whose row it does not return is
    refused with :class:`NotFound`, and nothing is written for it.  On
    PostgreSQL every acknowledgement and expiry sweep takes the mailbox lock
    first, so the statements after it see what the others committed; a writer
    that skipped the lock would not break this either: under read committed the
    delete waits for that writer's row lock and, once it commits, skips the row.
    On SQLite acknowledgements run one at a time on the writer's thread, and the
    expiry sweep writes on another connection: the delete, this transaction's
    first write (where the driver begins it), takes the database write lock up
    to the commit and sees every commit before it, so an envelope the sweep
    took after the select is not returned.

    ``raw``: the driver's cursor on the SQLite writer's connection (plain DB-API
    statements, see :meth:`hub.routing.Router._transaction`); ``None`` for Core.
    """
    me, now = batch.me, batch.now
    acked = Acked()
    if batch.claims:
        if postgres:  # see Router._serialise
            lock_mailbox(conn)
        keys = list(dict.fromkeys(claim.key for claim in batch.claims))
        waiting: dict[tuple[str, str], list[tuple[int, int, int, bytes]]] = {}
        listing: set[tuple[str, str]] = set()  # the ids whose envelope lists blobs
        for seq, size, message, sender, message_id, digest, blobs in sorted(
            ack_candidates(conn, raw, me, keys)
        ):
            waiting.setdefault((sender, message_id), []).append((seq, size, message, digest))
            if blobs:
                listing.add((sender, message_id))
        matched: list[tuple[Claim, int, int, int]] = []  # (claim, seq, size, messages.id)
        for claim in batch.claims:
            rows = waiting.get(claim.key)
            # Every row of one (sender, message id) has its envelope's hash.  A receipt
            # given twice matches once: the second finds nothing left.
            if rows and rows[0][3] == claim.receipt.envelope_hash:
                seq, size, message, _digest = rows.pop(0)
                matched.append((claim, seq, size, message))
        taken = {seq for seq, _size in take(conn, raw, me, [m[1] for m in matched], True)}
        released = [m for m in matched if m[1] in taken]
        if released:
            deliveries = [
                (message, me, "delivered", claim.data, now)
                for claim, _seq, _size, message in released
            ]
            insert_deliveries(conn, raw, deliveries)
            notices = [
                (claim.key[0], RECEIPT, None, claim.notice, len(claim.notice), now)
                for claim, _seq, _size, _message in released
            ]
            insert_items(conn, raw, notices, [])
        acked.released = [(claim, size, claim.key[0]) for claim, _seq, size, _m in released]
        acked.with_blobs = [claim.key for claim, *_ in released if claim.key in listing]
    if batch.notices:
        acked.dropped = take(conn, raw, me, batch.notices, False)
    return acked


def insert_items(
    conn: Connection,
    raw: Any,
    mailbox: Sequence[tuple[object, ...]],
    links: Sequence[tuple[int, str]],
) -> None:
    """The new messages' mailbox rows and blob links (the foreign key refuses a
    blob removed since :meth:`hub.routing.Router._check_blobs`)."""
    if raw is not None:
        if mailbox:
            raw.executemany(SQLITE_MAILBOX, mailbox)
        if links:
            raw.executemany(SQLITE_LINKS, links)
        return
    if mailbox:
        conn.execute(
            INSERT_MAILBOX,
            [dict(zip(MAILBOX_COLUMNS, r, strict=True)) for r in mailbox],
        )
    if links:
        conn.execute(INSERT_LINKS, [{"message": m, "blob": b} for m, b in links])


def insert_message_rows(
    conn: Connection, raw: Any, rows: Sequence[tuple[object, ...]]
) -> dict[tuple[str, str], int]:
    """Insert a batch's messages (``MESSAGE_COLUMNS``), skipping stored ids; the new
    rows' ids by (sender, message id)."""
    if raw is not None:
        text = SQLITE_MESSAGES_HEAD + ", ".join([ROW8] * len(rows)) + SQLITE_MESSAGES_TAIL
        raw.execute(text, flat(rows))
        return {(s, m): int(i) for i, s, m in raw.fetchall()}
    inserted = conn.execute(
        INSERT_MESSAGES, [dict(zip(MESSAGE_COLUMNS, r, strict=True)) for r in rows]
    )
    return {(r.sender, r.message_id): int(r.id) for r in inserted}


def stored(
    conn: Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[bytes, bytes]]:
    """(envelope hash, evidence) stored under ids committed before this batch."""
    if not keys:
        return {}
    rows = conn.execute(
        select(
            db.Message.sender, db.Message.message_id, db.Message.envelope_hash, db.Message.evidence
        ).where(tuple_(db.Message.sender, db.Message.message_id).in_(keys))
    )
    found = {(r.sender, r.message_id): (r.envelope_hash, r.evidence) for r in rows}
    if len(found) != len(keys):  # cannot happen: messages are never deleted
        raise StorageError("a message id is neither new nor stored")
    return found


def ack_candidates(
    conn: Connection, raw: Any, me: str, keys: list[tuple[str, str]]
) -> list[tuple[Any, ...]]:
    """(seq, size, messages.id, sender, message id, envelope hash, whether it lists
    blobs) of every envelope waiting for ``me`` under one of ``keys`` (sender, message
    id).  The last, an index lookup in ``message_blobs``, spares the blob store a
    transaction for every release of an envelope without attachments."""
    if raw is not None:
        sql = SQLITE_CANDIDATES_HEAD + ", ".join([ROW2] * len(keys)) + SQLITE_CANDIDATES_TAIL
        raw.execute(sql, [*flat(keys), me, ENVELOPE])
        rows: list[tuple[Any, ...]] = raw.fetchall()
        return rows
    return [tuple(r) for r in conn.execute(CANDIDATES, {"me": me, "keys": keys})]


def take(
    conn: Connection, raw: Any, me: str, seqs: Sequence[int], envelopes: bool
) -> list[tuple[int, int]]:
    """Delete ``me``'s mailbox rows ``seqs`` that are envelopes (or notices, the other
    kinds); (seq, size) of each row this very statement deleted."""
    if not seqs:
        return []
    if raw is not None:
        head = SQLITE_TAKE_ENVELOPES if envelopes else SQLITE_DROP_NOTICES
        raw.execute(head + ", ".join(["?"] * len(seqs)) + SQLITE_TAKE_TAIL, [me, ENVELOPE, *seqs])
        return [(int(seq), int(size)) for seq, size in raw.fetchall()]
    statement = TAKE_ENVELOPES if envelopes else DROP_NOTICES
    return [(int(r.seq), int(r.size)) for r in conn.execute(statement, {"me": me, "seqs": seqs})]


def insert_deliveries(conn: Connection, raw: Any, rows: Sequence[tuple[object, ...]]) -> None:
    """The released envelopes' outcomes (``DELIVERY_COLUMNS``)."""
    if raw is not None:
        raw.executemany(SQLITE_DELIVERIES, rows)
        return
    conn.execute(INSERT_DELIVERIES, [dict(zip(DELIVERY_COLUMNS, r, strict=True)) for r in rows])


def sqlite_pull(engine: Engine, me: str, after: int, limit: int) -> list[tuple[Any, ...]]:
    """One pull in the SQLite reader's thread, on its own connection: a plain DB-API
    statement (see :meth:`Router._transaction`), outside any transaction, so it sees
    the newest commit."""
    with engine.connect() as conn:
        driver: Any = conn.connection.driver_connection
        cursor = driver.cursor()
        try:
            cursor.execute(SQLITE_PULL, (me, after, limit))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows
        finally:
            cursor.close()


MESSAGE_COLUMNS: Final = (
    "sender", "message_id", "envelope_hash", "data", "size", "expires", "accepted", "evidence",
)  # fmt: skip
MAILBOX_COLUMNS: Final = ("recipient", "kind", "message", "payload", "size", "created")
DELIVERY_COLUMNS: Final = ("message", "recipient", "outcome", "receipt", "time")
# The Core statements (PostgreSQL), built once.
#: A batch's messages, executed as multi-row INSERTs ("insertmanyvalues").
INSERT_MAILBOX: Final = insert(db.MailboxItem)
INSERT_LINKS: Final = insert(db.MessageBlob)
INSERT_MESSAGES: Final = (
    postgresql.insert(db.Message)
    .on_conflict_do_nothing(index_elements=[db.Message.sender, db.Message.message_id])
    .returning(db.Message.id, db.Message.sender, db.Message.message_id)
)
#: Whether a message lists attachment blobs (the primary key of message_blobs leads
#: with the message).
LISTS_BLOBS: Final = (
    select(db.MessageBlob.message).where(db.MessageBlob.message == db.Message.id).exists()
)
CANDIDATES: Final = (
    select(db.MailboxItem.seq, db.MailboxItem.size, db.Message.id, db.Message.sender,
           db.Message.message_id, db.Message.envelope_hash, LISTS_BLOBS.label("blobs"))
    .join(db.Message, db.Message.id == db.MailboxItem.message)
    .where(db.MailboxItem.recipient == bindparam("me"))
    .where(db.MailboxItem.kind == ENVELOPE)
    .where(tuple_(db.Message.sender, db.Message.message_id).in_(bindparam("keys", expanding=True)))
)  # fmt: skip
TAKE_ENVELOPES: Final = (
    delete(db.MailboxItem)
    .where(db.MailboxItem.recipient == bindparam("me"))
    .where(db.MailboxItem.kind == ENVELOPE)
    .where(db.MailboxItem.seq.in_(bindparam("seqs", expanding=True)))
    .returning(db.MailboxItem.seq, db.MailboxItem.size)
)
DROP_NOTICES: Final = (
    delete(db.MailboxItem)
    .where(db.MailboxItem.recipient == bindparam("me"))
    .where(db.MailboxItem.kind != ENVELOPE)
    .where(db.MailboxItem.seq.in_(bindparam("seqs", expanding=True)))
    .returning(db.MailboxItem.seq, db.MailboxItem.size)
)
INSERT_DELIVERIES: Final = insert(db.Delivery)
PULL: Final = (
    select(db.MailboxItem.seq, db.MailboxItem.kind, db.MailboxItem.payload, db.Message.data)
    .outerjoin(db.Message, db.Message.id == db.MailboxItem.message)
    .where(db.MailboxItem.recipient == bindparam("me"))
    .where(db.MailboxItem.seq > bindparam("after"))
    .order_by(db.MailboxItem.seq)
    .limit(bindparam("limit"))
)
# The SQLite writer's statements (tables and columns of hub.db; a test checks they match).
ROW8: Final = "(?, ?, ?, ?, ?, ?, ?, ?)"
SQLITE_MESSAGES_HEAD: Final = (
    "INSERT INTO messages (sender, message_id, envelope_hash, data, size, expires, accepted,"
    " evidence) VALUES "
)
SQLITE_MESSAGES_TAIL: Final = (
    " ON CONFLICT (sender, message_id) DO NOTHING RETURNING id, sender, message_id"
)
SQLITE_MAILBOX: Final = (
    "INSERT INTO mailbox (recipient, kind, message, payload, size, created)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
SQLITE_LINKS: Final = "INSERT INTO message_blobs (message, blob) VALUES (?, ?)"
SQLITE_DELIVERIES: Final = (
    "INSERT INTO deliveries (message, recipient, outcome, receipt, time) VALUES (?, ?, ?, ?, ?)"
)
# An acknowledgement's candidates: the batch's ids as a table, then CROSS JOIN, which
# fixes SQLite's join order: each id through the unique index on (sender, message_id),
# then the mailbox by message.  Left to itself, the planner scans the member's whole
# mailbox (its index on recipient) and tests every row against the ids.
ROW2: Final = "(?, ?)"
SQLITE_CANDIDATES_HEAD: Final = "WITH batch (sender, message_id) AS (VALUES "
SQLITE_CANDIDATES_TAIL: Final = (
    ") SELECT mailbox.seq, mailbox.size, messages.id, messages.sender, messages.message_id,"
    " messages.envelope_hash,"
    " EXISTS (SELECT 1 FROM message_blobs WHERE message_blobs.message = messages.id)"
    " FROM batch"
    " CROSS JOIN messages ON messages.sender = batch.sender"
    " AND messages.message_id = batch.message_id"
    " CROSS JOIN mailbox ON mailbox.message = messages.id"
    " WHERE mailbox.recipient = ? AND mailbox.kind = ?"
)
SQLITE_TAKE_ENVELOPES: Final = "DELETE FROM mailbox WHERE recipient = ? AND kind = ? AND seq IN ("
SQLITE_DROP_NOTICES: Final = "DELETE FROM mailbox WHERE recipient = ? AND kind != ? AND seq IN ("
SQLITE_TAKE_TAIL: Final = ") RETURNING seq, size"
SQLITE_PULL: Final = (
    "SELECT mailbox.seq, mailbox.kind, mailbox.payload, messages.data FROM mailbox"
    " LEFT OUTER JOIN messages ON messages.id = mailbox.message"
    " WHERE mailbox.recipient = ? AND mailbox.seq > ? ORDER BY mailbox.seq LIMIT ?"
)


def flat(rows: Sequence[tuple[object, ...]]) -> list[object]:
    return [value for row in rows for value in row]

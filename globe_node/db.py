"""Node storage: typed SQLAlchemy 2 models and the engine (SQLite).

Schema changes go through Alembic (``globe_node/migrations``).  SQLite runs in
WAL mode with ``synchronous=FULL`` (a commit is durable when it returns, R10)
and ``secure_delete=ON`` (erased private prekeys and deleted rows are
overwritten in the file, not merely unlinked from the b-tree).

What is encrypted at rest: message content (subject, body, attachment keys), case
titles and case notes are sealed under the node storage key
(:mod:`globe_node.storage`); attachment files stay in their blob encryption.  What
is not: the metadata a row needs to be found, filtered and ordered (authority ids,
message ids, kinds, case references, teams, times, states, a request's urgency and
handling code), most of which the hub sees too (R13).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from globe_io import database

__all__ = [
    "Alert",
    "AttachmentRow",
    "AuditRow",
    "Base",
    "CaseRow",
    "Conflict",
    "InMessage",
    "LegalHold",
    "LogRow",
    "Meta",
    "NoteRow",
    "OutMessage",
    "OutRecipient",
    "Pair",
    "PeerHead",
    "PrekeyRow",
    "RequestRow",
    "TeamRow",
    "UploadRow",
    "User",
    "make_engine",
    "migrate",
    "session_factory",
]


class Base(DeclarativeBase):
    """Declarative base of the node schema."""


class Meta(Base):
    """Small named values: the last hub checkpoint that confirmed the stored log."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LogRow(Base):
    """A verified membership log entry (exact bytes), in sequence."""

    __tablename__ = "log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    head: Mapped[bytes] = mapped_column(LargeBinary(32))  # chain head after this entry


class PrekeyRow(Base):
    """One of this node's signed prekeys; ``private`` is sealed, NULL once erased."""

    __tablename__ = "prekeys"

    key_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    signed: Mapped[bytes] = mapped_column(LargeBinary)
    private: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    not_before: Mapped[int] = mapped_column(BigInteger)
    not_after: Mapped[int] = mapped_column(BigInteger)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    erased: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Pair(Base):
    """Per-counterpart sequence numbers: the next one we send, the highest we received."""

    __tablename__ = "pairs"

    peer: Mapped[str] = mapped_column(String(19), primary_key=True)
    next_out: Mapped[int] = mapped_column(BigInteger, default=1)
    last_in: Mapped[int] = mapped_column(BigInteger, default=0)


class OutMessage(Base):
    """A message this node sent: the exact envelope bytes it retries with (R10)."""

    __tablename__ = "outbox"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    content: Mapped[bytes] = mapped_column(LargeBinary)  # sealed under the storage key
    kind: Mapped[str] = mapped_column(String(32))
    # the case it is filed under here: the content's case, or one a user filed it under
    case: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created: Mapped[int] = mapped_column(BigInteger, index=True)
    expires: Mapped[int] = mapped_column(BigInteger)
    user: Mapped[str] = mapped_column(String(64))
    # blob ids of attachments still to upload before the envelope may go to the hub
    pending_blobs: Mapped[str] = mapped_column(Text, default="")
    # this node's inner signature over the content (§7.5): its proof of origin in a forward
    inner_signature: Mapped[bytes | None] = mapped_column(LargeBinary(64), nullable=True)
    # a retention rule's purge (globe_node/retention.py): when, under which rule, and what
    # went ("attachments" or "content"); the envelope bytes go with either
    purged: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    purge_rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purged_what: Mapped[str | None] = mapped_column(String(16), nullable=True)


class OutRecipient(Base):
    """Delivery state of one outgoing message to one recipient."""

    __tablename__ = "outbox_recipients"

    message_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("outbox.message_id"), primary_key=True
    )
    recipient: Mapped[str] = mapped_column(String(19), primary_key=True)
    # queued -> sent (accepted by the hub) -> delivered (signed receipt) -> read
    # failed: expired undelivered (hub non-delivery evidence) or refused for good
    state: Mapped[str] = mapped_column(String(16), index=True)
    via: Mapped[str | None] = mapped_column(String(8), nullable=True)  # direct | hub
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[int] = mapped_column(BigInteger, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # hub-signed
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # recipient-signed
    delivered: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class InMessage(Base):
    """A received, verified and decrypted message; (sender, message_id) is the seen-set."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("sender", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(String(19), index=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)  # exact bytes, evidence of origin
    content: Mapped[bytes] = mapped_column(LargeBinary)  # sealed under the storage key
    kind: Mapped[str] = mapped_column(String(32))
    # the case it is filed under here: the content's case, or one a user filed it under
    case: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, index=True)
    via: Mapped[str] = mapped_column(String(8))  # direct | hub
    seq: Mapped[int] = mapped_column(BigInteger)
    order: Mapped[str] = mapped_column(String(16))  # in-order | gap | old (§7.6)
    head_relation: Mapped[str] = mapped_column(String(16))
    receipt: Mapped[bytes] = mapped_column(LargeBinary)  # the receipt this node signed
    receipt_acked: Mapped[bool] = mapped_column(Boolean, default=False)
    read_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    read_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the sender's inner signature over the content (§7.5): proof of origin for a forward
    inner_signature: Mapped[bytes | None] = mapped_column(LargeBinary(64), nullable=True)
    # why this message deserves suspicion (e.g. received while a peer had seen log entries
    # the hub did not serve this node), or NULL
    suspect: Mapped[str | None] = mapped_column(Text, nullable=True)
    # a retention rule's purge, as in the outbox
    purged: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    purge_rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purged_what: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Conflict(Base):
    """Same (sender, id), other bytes: both kept as evidence, neither shown as new (R7)."""

    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender: Mapped[str] = mapped_column(String(19))
    message_id: Mapped[str] = mapped_column(String(32))
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    time: Mapped[int] = mapped_column(BigInteger)


class AttachmentRow(Base):
    """An attachment of a sent or received message; the file stays blob-encrypted."""

    __tablename__ = "attachments"

    sender: Mapped[str] = mapped_column(String(19), primary_key=True)
    blob: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(32), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    size: Mapped[int] = mapped_column(BigInteger)
    # uploaded/fetched: the encrypted file is in DIR/blobs/<blob>; pending: not yet;
    # purged: its key is gone from the message and its file is (or is being) removed
    state: Mapped[str] = mapped_column(String(16))


class RequestRow(Base):
    """An assistance request and its workflow state, in either direction."""

    __tablename__ = "requests"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)  # in | out
    counterpart: Mapped[str] = mapped_column(String(19), primary_key=True)
    case: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    urgency: Mapped[str] = mapped_column(String(16))
    # the handling code, to filter lists by (NULL: a request stored before it was kept)
    tlp: Mapped[str | None] = mapped_column(String(16), nullable=True)
    restrictions: Mapped[str] = mapped_column(String(64), default="")  # space-separated
    # the transition table of globe_node/states.py
    state: Mapped[str] = mapped_column(String(16))
    created: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[int] = mapped_column(BigInteger, index=True)  # after extensions
    asked: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the request's own
    expected: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    first_response: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    answered: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    declined: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ended: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # closed, withdrawn
    user: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who sent ours


class Alert(Base):
    """Something a user must see: a forked directory head, a conflict, or a request's
    reminder (``material``: shown only to those who see its request)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text)
    evidence: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    time: Mapped[int] = mapped_column(BigInteger)
    material: Mapped[bool] = mapped_column(Boolean, default=False)
    team: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user: Mapped[str | None] = mapped_column(String(64), nullable=True)  # addressed to
    message_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class UploadRow(Base):
    """A staged upload: the file is already blob-encrypted in the spool, its key sealed."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    blob: Mapped[str] = mapped_column(String(32), unique=True)
    key: Mapped[bytes] = mapped_column(LargeBinary)  # sealed under the storage key
    name: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(129))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    created: Mapped[int] = mapped_column(BigInteger, index=True)


class PeerHead(Base):
    """A peer's signed view of the membership log that is ahead of this node's (R2).

    Kept until this node's verified log reaches ``seq``: then the heads are
    compared (same: resolved; different: a fork alert).  While the hub does not
    serve the entries up to ``seq``, an alert stands and received messages are
    marked suspect.
    """

    __tablename__ = "peer_heads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    peer: Mapped[str] = mapped_column(String(19))
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    head: Mapped[bytes] = mapped_column(LargeBinary(32))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)  # the peer's signed evidence
    time: Mapped[int] = mapped_column(BigInteger)
    alerted: Mapped[bool] = mapped_column(Boolean, default=False)


class User(Base):
    """A local API user; only the SHA-256 of the token is stored, and of the web UI password
    (if one is set) only its Argon2id hash."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # investigator | supervisor | operator
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created: Mapped[int] = mapped_column(BigInteger)
    # The last authenticated request, to the minute (globe_node/users.py); None: never.
    last_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The web UI password's PHC string (globe_node/users.py); None: token sign-in only.
    password_hash: Mapped[str | None] = mapped_column(String(160), nullable=True)


class TeamRow(Base):
    """A user's membership of a team (compartments: globe_node/compartments.py)."""

    __tablename__ = "user_teams"

    user: Mapped[str] = mapped_column(String(64), primary_key=True)
    team: Mapped[str] = mapped_column(String(64), primary_key=True)


class CaseRow(Base):
    """This node's record of a case, keyed by the case reference messages carry (§8.1)."""

    __tablename__ = "cases"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # sealed
    team: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(8))  # open | closed
    created: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))  # a user, or the sending authority
    updated: Mapped[int] = mapped_column(BigInteger)
    closed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # while closed


class NoteRow(Base):
    """A note on a case: local, never sent; its text sealed under the storage key."""

    __tablename__ = "case_notes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case: Mapped[str] = mapped_column(String(64), index=True)
    user: Mapped[str] = mapped_column(String(64))
    time: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class LegalHold(Base):
    """A legal hold on a case: nothing filed under it is purged while it stands
    (``released`` NULL).  Released holds stay, as the record of who held what when."""

    __tablename__ = "legal_holds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[bytes] = mapped_column(LargeBinary)  # sealed under the storage key
    placed: Mapped[int] = mapped_column(BigInteger)
    placed_by: Mapped[str] = mapped_column(String(64))
    released: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditRow(Base):
    """The local tamper-evident audit log: each row's hash covers the previous one."""

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[int] = mapped_column(BigInteger)
    user: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Text)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


def make_engine(path: Path) -> AsyncEngine:
    """An async engine on ``path``: WAL, ``synchronous=FULL``, secure delete."""
    return database.make_engine(database.sqlite_url(path), secure_delete=True)


def make_writer_engine(engine: AsyncEngine, *, writes: bool = True) -> Engine:
    """A synchronous engine on ``engine``'s database file, for the node's writer thread
    or its reader thread (:class:`globe_node.store.Store`): the same pragmas, secure
    delete included."""
    path = engine.url.database
    assert path, "the node database is a file"  # noqa: S101 - db.make_engine made it so
    return database.make_writer_engine(Path(path), secure_delete=True, writes=writes)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that do not expire objects on commit."""
    return database.session_factory(engine)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the latest schema revision."""
    await database.migrate(engine, Path(__file__).parent / "migrations")

"""Hub storage: typed SQLAlchemy 2 models and the engine (SQLite or PostgreSQL).

Schema changes go through Alembic (``hub/migrations``); :func:`migrate`
upgrades a database to the latest revision.  SQLite runs in WAL mode with
``synchronous=FULL`` so a commit is durable when it returns (R10).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from globe_io import database

__all__ = [
    "Application",
    "AuditRecord",
    "Base",
    "Blob",
    "ConflictRecord",
    "Delivery",
    "KeyUpdate",
    "LogEntryRow",
    "MailboxItem",
    "Message",
    "MessageBlob",
    "Nonce",
    "Prekey",
    "Proposal",
    "make_engine",
    "make_reader_engine",
    "make_writer_engine",
    "migrate",
    "session_factory",
]


class Base(DeclarativeBase):
    """Declarative base of the hub schema."""


class Application(Base):
    """A membership application and its review state."""

    __tablename__ = "applications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    authority: Mapped[str] = mapped_column(String(19), index=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # awaiting-pop -> pending -> approved | rejected
    status: Mapped[str] = mapped_column(String(16), index=True)
    pop_challenge: Mapped[bytes] = mapped_column(LargeBinary)
    pop_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    draft: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    identity_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    transport_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    ka_key: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)


class KeyUpdate(Base):
    """A member's key-update request (PROTOCOL.md §6.8) and its review state."""

    __tablename__ = "key_updates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the digest's first half, hex
    authority: Mapped[str] = mapped_column(String(19), index=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # awaiting-pop -> pending -> approved | rejected
    status: Mapped[str] = mapped_column(String(16), index=True)
    pop_challenge: Mapped[bytes] = mapped_column(LargeBinary)
    pop_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    draft: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    identity_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    transport_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    ka_key: Mapped[bytes] = mapped_column(LargeBinary)
    replaced: Mapped[str] = mapped_column(String(48))  # the roles replaced, comma-separated
    fingerprint: Mapped[str] = mapped_column(String(71))  # of the keys asked for (§3.4)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)


class Proposal(Base):
    """A membership action collecting admin signatures until the quorum is met."""

    __tablename__ = "proposals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # action digest, hex
    authority: Mapped[str] = mapped_column(String(19), index=True)
    action: Mapped[str] = mapped_column(String(16))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    signatures: Mapped[bytes] = mapped_column(LargeBinary)  # the signed-object container
    # open -> appended | superseded
    status: Mapped[str] = mapped_column(String(16), index=True)
    application_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    updated: Mapped[int] = mapped_column(BigInteger)


class LogEntryRow(Base):
    """One membership log entry, as exact bytes."""

    __tablename__ = "log_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    time: Mapped[int] = mapped_column(BigInteger)


class Prekey(Base):
    """A member's published signed prekey."""

    __tablename__ = "prekeys"
    __table_args__ = (UniqueConstraint("authority", "key_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    authority: Mapped[str] = mapped_column(String(19), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[int] = mapped_column(BigInteger)
    not_after: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[int] = mapped_column(BigInteger)


class Nonce(Base):
    """A request-authentication nonce, kept until its timestamp leaves the window."""

    __tablename__ = "nonces"
    __table_args__ = (Index("ix_nonces_expires", "expires"),)

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    expires: Mapped[int] = mapped_column(BigInteger)


class AuditRecord(Base):
    """Who did what, when: every admin action and membership decision."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(80))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON


class Message(Base):
    """An accepted envelope: exact bytes and the hub's signed acceptance evidence."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("sender", "message_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sender: Mapped[str] = mapped_column(String(19))
    message_id: Mapped[str] = mapped_column(String(32))
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)
    accepted: Mapped[int] = mapped_column(BigInteger)
    evidence: Mapped[bytes] = mapped_column(LargeBinary)


class ConflictRecord(Base):
    """A second envelope under a (sender, message id) already used: kept as evidence (R7)."""

    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sender: Mapped[str] = mapped_column(String(19), index=True)
    message_id: Mapped[str] = mapped_column(String(32))
    envelope_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    time: Mapped[int] = mapped_column(BigInteger)


class MailboxItem(Base):
    """One item waiting for a member: an envelope, or a notice (receipt, non-delivery).

    ``seq`` orders each mailbox in acceptance order and is the pull cursor.
    """

    __tablename__ = "mailbox"
    __table_args__ = (
        Index("ix_mailbox_recipient_seq", "recipient", "seq"),
        {"sqlite_autoincrement": True},  # a cursor never names two items
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(19))
    kind: Mapped[str] = mapped_column(String(16))  # envelope | receipt | non-delivery
    message: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[int] = mapped_column(BigInteger)


class Delivery(Base):
    """The outcome for one recipient of one message: its signed receipt, or expiry."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("message", "recipient"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message: Mapped[int] = mapped_column(BigInteger, index=True)
    recipient: Mapped[str] = mapped_column(String(19))
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | expired
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    time: Mapped[int] = mapped_column(BigInteger)


class Blob(Base):
    """An attachment blob: ciphertext in a file under the blob directory (``hub.blobs``)."""

    __tablename__ = "blobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # 32 lower-case hex
    owner: Mapped[str] = mapped_column(String(19), index=True)  # the uploading authority
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))  # of the stored ciphertext
    created: Mapped[int] = mapped_column(BigInteger, index=True)
    state: Mapped[str] = mapped_column(String(16))  # complete


class MessageBlob(Base):
    """An accepted message lists a blob in its header (``blobs``, PROTOCOL.md §7.2)."""

    __tablename__ = "message_blobs"

    message: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # messages.id
    blob: Mapped[str] = mapped_column(
        String(32), ForeignKey("blobs.id"), primary_key=True, index=True
    )


def make_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, ``synchronous=FULL`` and foreign keys."""
    return database.make_engine(url)


def make_writer_engine(engine: AsyncEngine) -> Engine | None:
    """For a SQLite file database: a synchronous engine on the same file, with the
    same pragmas (WAL, ``synchronous=FULL``, foreign keys), for the group-commit
    writer's own connection, used from one thread; ``None`` for anything else.

    With it a whole batch is one hand-off to that thread, instead of one per
    driver call through aiosqlite's thread.  Dispose it when done.
    """
    return _shadow_engine(engine)


def make_reader_engine(engine: AsyncEngine) -> Engine | None:
    """For a SQLite file database: a synchronous engine on the same file, with the
    same pragmas and ``query_only``, for the mailbox reader's own connection (a
    push connection pulls on every wake-up), used from one thread; ``None`` for
    anything else.

    WAL lets it read beside the writer: a statement run outside a transaction
    sees the newest commit and never waits for the writer's lock.  Dispose it
    when done.
    """
    reader = _shadow_engine(engine)
    if reader is not None:
        event.listen(reader, "connect", _query_only)
    return reader


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # a reader that never writes, whatever it runs
    cursor.close()


def _shadow_engine(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine of one pooled connection on ``engine``'s SQLite file."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    shadow = create_engine(
        url.set(drivername="sqlite"), connect_args={"timeout": 30}, pool_size=1, max_overflow=0
    )

    # A shadow of ``engine``: its connections get the same "connect" listeners (the
    # pragmas, and any other configuration added to ``engine``), and the shadow's
    # pooled connection goes whenever ``engine`` is disposed.
    def _connect(dbapi_connection: Any, record: Any) -> None:
        engine.sync_engine.pool.dispatch.connect(dbapi_connection, record)

    def _disposed(_engine: Any) -> None:
        shadow.dispose()

    event.listen(shadow, "connect", _connect)
    event.listen(engine.sync_engine, "engine_disposed", _disposed)
    return shadow


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that do not expire objects on commit."""
    return database.session_factory(engine)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the database to the latest schema revision."""
    await database.migrate(engine, Path(__file__).parent / "migrations")

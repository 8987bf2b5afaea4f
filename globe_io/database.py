"""Database engines and schema migrations, the same way for the hub and the node.

SQLite gets WAL, ``synchronous=FULL`` (a commit is durable when it returns,
R10), foreign keys, a busy timeout and, where asked, ``secure_delete`` (deleted
rows are overwritten in the file, not merely unlinked); PostgreSQL gets a
pool with pre-ping.  Every schema change is an Alembic revision; :func:`migrate`
upgrades to the newest.  The administrators' tools never import this module
(tests/test_architecture.py): they need no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import SingletonThreadPool

__all__ = [
    "SchemaState",
    "make_engine",
    "make_writer_engine",
    "migrate",
    "schema_state",
    "session_factory",
    "sqlite_url",
]


def sqlite_url(path: Path) -> str:
    """The async SQLite URL of a database file."""
    return f"sqlite+aiosqlite:///{path.resolve()}"


def _pragmas(*, secure_delete: bool) -> Any:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if secure_delete:
            cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return apply


def make_engine(url: str, *, secure_delete: bool = False) -> AsyncEngine:
    """An async engine on ``url`` with the project's settings for its backend."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _pragmas(secure_delete=secure_delete))
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def make_writer_engine(path: Path, *, secure_delete: bool = False, writes: bool = True) -> Engine:
    """A synchronous engine on the SQLite file ``path`` for one thread: the same pragmas as
    :func:`make_engine`'s and one connection (made and used by that thread only).  For a
    writer (``writes``) every transaction is ``BEGIN IMMEDIATE``: it takes the write lock
    before its first read, so what it reads cannot change under it before it commits.
    A reader's statements each see the newest commit (WAL readers never wait)."""
    engine = create_engine(
        f"sqlite:///{path.resolve()}", poolclass=SingletonThreadPool, connect_args={"timeout": 30}
    )
    pragmas = _pragmas(secure_delete=secure_delete)

    def connect(dbapi_connection: Any, record: Any) -> None:
        pragmas(dbapi_connection, record)
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's

    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", connect)
    if writes:
        event.listen(engine, "begin", begin)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that do not expire objects on commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def migrate(engine: AsyncEngine, migrations: Path) -> None:
    """Upgrade the database to the newest revision of the Alembic scripts in ``migrations``."""

    def upgrade(connection: Connection) -> None:
        cfg = _config(migrations)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against the migrations this code ships."""

    current: str | None  # the database's revision (None: never migrated)
    head: str  # the newest revision of the code
    known: bool  # whether the code knows ``current`` (False: a newer release wrote it)

    @property
    def up_to_date(self) -> bool:
        """Whether the database is at the code's newest revision."""
        return self.current == self.head


def _config(migrations: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    return cfg


async def schema_state(engine: AsyncEngine, migrations: Path) -> SchemaState:
    """The database's revision against the newest of the Alembic scripts in ``migrations``."""
    script = ScriptDirectory.from_config(_config(migrations))
    head = script.get_current_head()
    assert head is not None  # noqa: S101 - the shipped scripts have one head

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        current = await conn.run_sync(read)
    known = current is None or current in {rev.revision for rev in script.walk_revisions()}
    return SchemaState(current, head, known)

"""Database engines and schema migrations, the same way for the hub and the node.

SQLite gets WAL, ``synchronous=FULL`` (a commit is durable when it returns,
R10), foreign keys, a busy timeout and, where asked, ``secure_delete`` (deleted
rows are overwritten in the file, not merely unlinked); PostgreSQL gets a
pool with pre-ping.  Every schema change is an Alembic revision; :func:`migrate`
upgrades to the newest.  The administrators' tools never import this module
(tests/test_architecture.py): they need no database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

__all__ = ["make_engine", "migrate", "session_factory", "sqlite_url"]


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


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that do not expire objects on commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def migrate(engine: AsyncEngine, migrations: Path) -> None:
    """Upgrade the database to the newest revision of the Alembic scripts in ``migrations``."""

    def upgrade(connection: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(migrations))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)

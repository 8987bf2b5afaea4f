"""Revision 0006 (``users.password_hash``): an upgrade from 0005 keeps every user, its token
hash, role, teams and last use, with no password; a downgrade drops the column and keeps
the rows; the upgraded schema is the models' own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from globe_node import db
from globe_node.check import MIGRATIONS

USERS = [
    ("operator", "operator", b"o" * 32, 1_700_000_000, None),
    ("alice", "investigator", b"a" * 32, 1_700_000_100, 1_700_000_500),
]


def _alembic(action: str, revision: str) -> Any:
    def run(connection: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        getattr(command, action)(cfg, revision)

    return run


def _columns(connection: Connection) -> list[str]:
    return [c["name"] for c in inspect(connection).get_columns("users")]


async def test_the_upgrade_from_0005_keeps_the_users_without_a_password(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "node.db")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_alembic("upgrade", "0005"))
            for row in USERS:
                await conn.execute(
                    text("INSERT INTO users (name, role, token_hash, created, last_used)"
                         " VALUES (:n, :r, :t, :c, :u)"),
                    dict(zip("nrtcu", row, strict=True)),
                )  # fmt: skip
            await conn.execute(text("INSERT INTO user_teams VALUES ('alice', 'aml')"))
        async with engine.begin() as conn:
            await conn.run_sync(_alembic("upgrade", "0006"))
            upgraded = (await conn.execute(text(
                "SELECT name, role, token_hash, created, last_used, password_hash FROM users"
                " ORDER BY created"
            ))).all()  # fmt: skip
            teams = (await conn.execute(text("SELECT * FROM user_teams"))).all()
            assert "password_hash" in await conn.run_sync(_columns)
        async with engine.begin() as conn:
            await conn.run_sync(_alembic("downgrade", "0005"))
            downgraded = (await conn.execute(text(
                "SELECT name, role, token_hash, created, last_used FROM users ORDER BY created"
            ))).all()  # fmt: skip
            assert "password_hash" not in await conn.run_sync(_columns)
    finally:
        await engine.dispose()
    assert [tuple(r) for r in upgraded] == [(*row, None) for row in USERS]
    assert [tuple(r) for r in teams] == [("alice", "aml")]
    assert [tuple(r) for r in downgraded] == USERS


async def test_the_upgraded_column_is_the_models(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "node.db")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_alembic("upgrade", "head"))
            column = next(
                c for c in await conn.run_sync(lambda c: inspect(c).get_columns("users"))
                if c["name"] == "password_hash"
            )  # fmt: skip
    finally:
        await engine.dispose()
    model = db.User.__table__.c.password_hash
    assert (column["nullable"], str(column["type"])) == (model.nullable, str(model.type))
    assert str(model.type) == "VARCHAR(160)"

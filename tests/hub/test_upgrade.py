"""Upgrades of the hub's database: one made by the previous release's schema (the first
migration, 0001, standing in for the last tagged release: there are none yet) and holding
data is upgraded by this code, on SQLite and PostgreSQL, and the hub then starts and
serves that data; and the migrations build exactly the models (Alembic's compare_metadata),
whatever the newest revision is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from globe_io.database import schema_state
from globe_io.httpguard import GuardedRunner
from globe_io.hubclient import HubClient
from hub import db
from hub.check import MIGRATIONS
from hub.config import load_config
from hub.server import open_hub
from protocol.membership import entry_hash
from tests.deploy.hubdir import PASSPHRASE, make_hub_dir
from tests.support.postgres import PgServer
from tests.support.servers import serve_runner


def _alembic() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


#: The first revision: the oldest schema a database may have.
def _first_revision() -> str:
    base = ScriptDirectory.from_config(_alembic()).get_base()
    assert base is not None
    return base


PREVIOUS = _first_revision()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = await server.create_database("upgrade")
    try:
        yield server.url(name)
    finally:
        await server.drop_database(name)


def _to(revision: str) -> object:
    def upgrade(connection: Connection) -> None:
        cfg = _alembic()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    return upgrade


async def test_a_database_of_the_previous_schema_upgrades_and_serves(
    empty_url: str, tmp_path: Path
) -> None:
    hub = make_hub_dir(tmp_path, database_url=empty_url)
    engine = db.make_engine(empty_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to(PREVIOUS))  # type: ignore[arg-type]
            # Data as the previous release wrote it, in that schema's own columns.
            for seq, entry in enumerate(hub.net.entries, 1):
                await conn.execute(
                    text("INSERT INTO log_entries (seq, hash, data, time) "
                         "VALUES (:seq, :hash, :data, :time)"),
                    {"seq": seq, "hash": entry_hash(entry), "data": entry, "time": 1_767_300_000},
                )  # fmt: skip
            await conn.execute(
                text("INSERT INTO audit (time, actor, action, subject, detail) "
                     "VALUES (1767300000, 'admin:Admin 1', 'append', 'FR-PNF', 'admit')")
            )  # fmt: skip
        state = await schema_state(engine, MIGRATIONS)
        assert (state.current, state.up_to_date) == (PREVIOUS, state.head == PREVIOUS)
    finally:
        await engine.dispose()

    runtime = await open_hub(load_config(hub.directory), PASSPHRASE.encode())  # migrates
    runner = GuardedRunner(runtime.app, access_log=None)
    async with (
        serve_runner(runner) as served,
        HubClient(served.url, network=hub.net.genesis.digest) as client,
    ):
        assert await client.log_entries(0) == hub.net.entries
        assert (await client.readyz()).seq == len(hub.net.entries)
    engine = db.make_engine(empty_url)
    try:
        assert (await schema_state(engine, MIGRATIONS)).up_to_date
        async with engine.connect() as conn:
            audit = (await conn.execute(text("SELECT actor, detail FROM audit"))).all()
        assert [tuple(r) for r in audit] == [("admin:Admin 1", "admit")]
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_models(empty_url: str) -> None:
    engine = db.make_engine(empty_url)
    try:
        await db.migrate(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), db.Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []

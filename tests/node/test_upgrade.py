"""Upgrades of the node's database: one made by the previous release's schema (the first
migration standing in for the last tagged release: there are none yet) with data is
upgraded by this code when the daemon starts, which then serves that data; and the
migrations build exactly the models, whatever the newest revision is."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from globe_io.database import schema_state
from globe_node import db
from globe_node.check import MIGRATIONS
from globe_node.config import NodeConfig, render_config
from globe_node.keys import NodeKeys, save_keys
from globe_node.node import Node
from globe_node.roles import Role
from globe_node.server import Listeners, serve
from globe_node.users import add_user
from protocol.devnet import build_devnet
from protocol.keystore import INTERACTIVE
from tests.node.network import PASSPHRASE


def _alembic() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _first_revision() -> str:
    base = ScriptDirectory.from_config(_alembic()).get_base()
    assert base is not None
    return base


PREVIOUS = _first_revision()


def _to(revision: str):
    def upgrade(connection: Connection) -> None:
        cfg = _alembic()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    return upgrade


async def test_a_database_of_the_previous_schema_upgrades_and_serves(tmp_path: Path) -> None:
    net = build_devnet(b"node upgrade", members=[("FR-PNF", "Parquet national financier")])
    directory = tmp_path / "node"
    directory.mkdir(mode=0o700)
    config = NodeConfig(directory=directory, authority="FR-PNF", hub_url="http://127.0.0.1:9")
    (directory / "node.toml").write_text(render_config(config))
    config.genesis_path.write_bytes(net.genesis.encode())
    member = net.members["FR-PNF"]  # the keys its log certifies, or the node alerts and stops
    keys = NodeKeys(member.identity, member.transport, member.ka, NodeKeys.generate().storage)
    save_keys(config.key_path, keys, PASSPHRASE, INTERACTIVE)
    engine = db.make_engine(config.db_path)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to(PREVIOUS))
            heads = net.directory.heads
            for seq, entry in enumerate(net.entries, 1):
                await conn.execute(
                    text("INSERT INTO log (seq, data, head) VALUES (:seq, :data, :head)"),
                    {"seq": seq, "data": entry, "head": heads[seq]},
                )
            await conn.execute(
                text("INSERT INTO alerts (kind, detail, evidence, time) "
                     "VALUES ('conflict', 'kept from the previous release', NULL, 1767300000)")
            )  # fmt: skip
            await conn.execute(
                text("INSERT INTO pairs (peer, next_out, last_in) VALUES ('DE-BKA', 7, 3)")
            )
        assert (await schema_state(engine, MIGRATIONS)).current == PREVIOUS
    finally:
        await engine.dispose()

    api = socket.socket()
    api.bind(("127.0.0.1", 0))
    api.listen()
    url = f"http://127.0.0.1:{api.getsockname()[1]}"
    started: asyncio.Future[Node] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(config, PASSPHRASE, ready=started.set_result, stop=stop,
              listeners=Listeners(api=api))
    )  # fmt: skip
    try:
        node = await asyncio.wait_for(started, 60)
        token = await add_user(node.sessions, "ops", Role.OPERATOR, now=node.now())
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(url + "/api/status") as resp:
                status = await resp.json()
            async with session.get(url + "/api/alerts") as resp:
                alerts = await resp.json()
        assert (status["membership"], status["directory"]["seq"]) == ("active", len(net.entries))
        assert [(a["kind"], a["detail"]) for a in alerts["alerts"]] == [
            ("conflict", "kept from the previous release")
        ]
    finally:
        stop.set()
        await task
    engine = db.make_engine(config.db_path)
    try:
        assert (await schema_state(engine, MIGRATIONS)).up_to_date
        async with engine.connect() as conn:
            pairs = (await conn.execute(text("SELECT peer, next_out, last_in FROM pairs"))).all()
        assert [tuple(p) for p in pairs] == [("DE-BKA", 7, 3)]
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "node.db")
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


def _down(revision: str):
    def downgrade(connection: Connection) -> None:
        cfg = _alembic()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    return downgrade


def _schema(connection: Connection) -> dict[str, tuple[set[tuple[str, str, bool]], set[str]]]:
    """Each table's columns (name, type, nullable) and index names."""
    seen = inspect(connection)
    return {
        table: (
            {(c["name"], str(c["type"]), c["nullable"]) for c in seen.get_columns(table)},
            {str(i["name"]) for i in seen.get_indexes(table)},
        )
        for table in seen.get_table_names()
    }


#: Rows of the schema before 0003 whose case references 0003 turns into case records.
_ROWS_0002 = (
    'INSERT INTO inbox (id, sender, message_id, envelope_hash, envelope, content, kind, "case",'
    ' in_reply_to, created, received, via, seq, "order", head_relation, receipt, receipt_acked,'
    " read_at, read_by, inner_signature, suspect) VALUES"
    " (1, 'BR-PF', '11111111111111111111111111111111', x'00', x'01', x'02', 'answer', 'C-1',"
    "  NULL, 190, 200, 'hub', 1, 'in-order', 'same', x'03', 1, NULL, NULL, x'04', NULL),"
    " (2, 'KE-EACC', '22222222222222222222222222222222', x'00', x'01', x'02', 'information',"
    "  NULL, NULL, 390, 400, 'direct', 1, 'in-order', 'same', x'03', 0, 410, 'alice', NULL,"
    "  'suspect')",
    'INSERT INTO outbox (message_id, envelope, envelope_hash, content, kind, "case",'
    " in_reply_to, created, expires, user, pending_blobs, inner_signature) VALUES"
    " ('33333333333333333333333333333333', x'01', x'00', x'02', 'request', 'C-1', NULL, 150,"
    "  9000, 'alice', '', x'05'),"
    " ('44444444444444444444444444444444', x'01', x'00', x'02', 'request', 'C-2', NULL, 300,"
    "  9000, 'bob', '', NULL)",
    'INSERT INTO requests (message_id, direction, counterpart, "case", urgency, state, created,'
    " deadline, expected, first_response, answered) VALUES"
    " ('33333333333333333333333333333333', 'out', 'BR-PF', 'C-1', 'urgent', 'declined', 150,"
    "  5000, NULL, 250, NULL),"
    " ('44444444444444444444444444444444', 'out', 'DE-BKA', 'C-2', 'routine', 'sent', 300,"
    "  6000, NULL, NULL, NULL)",
    "INSERT INTO alerts (kind, detail, evidence, time) VALUES ('conflict', 'kept', NULL, 500)",
)
_KEPT = ("inbox", "outbox", "requests", "alerts")


async def _fresh_schema(path: Path, revision: str) -> dict[str, tuple[set[Any], set[str]]]:
    engine = db.make_engine(path)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to(revision))
            return await conn.run_sync(_schema)
    finally:
        await engine.dispose()


async def _rows(conn: AsyncConnection, columns: dict[str, list[str]]) -> dict[str, list[Any]]:
    out = {}
    for table in _KEPT:
        names = ", ".join(f'"{c}"' for c in columns[table])
        result = await conn.execute(text(f"SELECT {names} FROM {table} ORDER BY 1"))  # noqa: S608
        out[table] = [tuple(r) for r in result.all()]
    return out


async def test_each_migration_downgrades_and_upgrades_again_with_the_rows_kept(
    tmp_path: Path,
) -> None:
    """0003 makes a case record for each case referenced; down to 0002 and 0001, each schema
    is exactly the one that revision builds, the rows are all there; up again, the models'."""
    before = {rev: await _fresh_schema(tmp_path / f"{rev}.db", rev) for rev in ("0001", "0002")}
    columns = {
        rev: {t: sorted(c[0] for c in schema[t][0]) for t in _KEPT}
        for rev, schema in before.items()
    }
    engine = db.make_engine(tmp_path / "node.db")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0002"))
            for statement in _ROWS_0002:
                await conn.execute(text(statement))
            rows = {rev: await _rows(conn, columns[rev]) for rev in before}
            await conn.run_sync(_to("0003"))
            cases = await conn.execute(
                text('SELECT ref, team, assignee, state, created, created_by, updated FROM cases'
                     ' ORDER BY ref')
            )  # fmt: skip
            assert [tuple(c) for c in cases.all()] == [
                ("C-1", None, None, "open", 150, "migration", 200),
                ("C-2", None, None, "open", 300, "migration", 300),
            ]
            asked = await conn.execute(
                text("SELECT message_id, asked, declined FROM requests ORDER BY message_id")
            )
            assert [tuple(r) for r in asked.all()] == [
                ("3" * 32, 5000, 250), ("4" * 32, 6000, None)
            ]  # fmt: skip
            await conn.run_sync(_to("head"))
            for revision in ("0002", "0001"):
                await conn.run_sync(_down(revision))
                assert await conn.run_sync(_schema) == before[revision], revision
                assert await _rows(conn, columns[revision]) == rows[revision], revision
            await conn.run_sync(_to("head"))
            assert await _rows(conn, columns["0001"]) == rows["0001"]
            refs = await conn.execute(text("SELECT ref FROM cases ORDER BY ref"))
            assert refs.scalars().all() == ["C-1", "C-2"]  # made again from the references
            # and down to nothing at all: every table goes but alembic's own
            await conn.run_sync(_down("base"))
            assert set(await conn.run_sync(_schema)) == {"alembic_version"}
            await conn.run_sync(_to("head"))
            assert (await conn.execute(text("SELECT count(*) FROM cases"))).scalar() == 0
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), db.Base.metadata
                )
            )
        assert diff == []
        assert (await schema_state(engine, MIGRATIONS)).up_to_date
    finally:
        await engine.dispose()

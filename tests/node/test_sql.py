"""Statements compiled once and run on the sqlite3 cursor give what Core gives: the same
rows, the columns' Python defaults on insert, and SQLAlchemy's error types."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from globe_node import db
from globe_node.sql import Sql
from globe_node.store import Store
from protocol.errors import StorageError

PAIRS = db.Base.metadata.tables[db.Pair.__tablename__]
ADD = Sql(insert(PAIRS))
ONE = Sql(select(PAIRS.c.peer, PAIRS.c.next_out).where(PAIRS.c.peer == bindparam("p")))
ALL = Sql(select(PAIRS).order_by(PAIRS.c.peer))


def _rows(c: Connection) -> list[tuple[object, ...]]:
    return [tuple(r) for r in ALL.rows(c)]


async def test_the_cursor_and_core_paths_read_and_write_alike(store: Store) -> None:
    # the writer thread's connection is sqlite3's (the cursor path) ...
    await store.transact(lambda c: ADD.many(c, [{"peer": "BR-PF"}, {"peer": "KE-EACC"}]))
    # ... an ORM session's is aiosqlite's (the Core path)
    async with store.write() as s:
        await s.run_sync(lambda ss: ADD.run(ss.connection(), {"peer": "DE-BKA", "next_out": 5}))
    # Pair's Python defaults (next_out 1, last_in 0) were supplied on both paths
    expected = [("BR-PF", 1, 0), ("DE-BKA", 5, 0), ("KE-EACC", 1, 0)]
    assert await store.query(_rows) == expected
    async with store.read() as s:
        assert await s.run_sync(lambda ss: _rows(ss.connection())) == expected
    row = await store.query(lambda c: ONE.first(c, {"p": "DE-BKA"}))
    assert (row.peer, row.next_out) == ("DE-BKA", 5)
    assert await store.query(lambda c: ONE.first(c, {"p": "FR-PNF"})) is None
    assert await store.query(lambda c: ONE.scalars(c, {"p": "BR-PF"})) == ["BR-PF"]


async def test_driver_errors_surface_as_sqlalchemy_errors_without_the_parameters(
    store: Store,
) -> None:
    await store.transact(lambda c: ADD.run(c, {"peer": "BR-PF"}))
    with pytest.raises(IntegrityError) as dup:
        await store.transact(lambda c: ADD.run(c, {"peer": "BR-PF"}))
    assert "BR-PF" not in str(dup.value)
    broken = Sql(select(PAIRS.c.peer).where(PAIRS.c.peer == bindparam("p")))
    broken.text = "SELECT nothing FROM nowhere"  # a statement SQLite refuses
    with pytest.raises(OperationalError, match="syntax error") as refused:
        broken.first(store.reader_engine.connect(), {"p": "secret"})
    assert "secret" not in str(refused.value)
    with pytest.raises(StorageError, match="syntax error"):  # as the node reports it
        await store.query(lambda c: broken.first(c, {"p": "secret"}))


def test_an_expanding_parameter_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match="expanding"):
        Sql(select(PAIRS).where(PAIRS.c.peer.in_(bindparam("peers", expanding=True))))

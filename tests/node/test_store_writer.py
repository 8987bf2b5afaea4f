"""The node's writer: write transactions take turns, a whole transaction runs on the
writer thread in one hand-off, commits or rolls back as a unit, and a cancelled caller
keeps its turn until the thread has finished."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from globe_node import db
from globe_node.store import Store
from protocol.errors import StorageError


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    engine = db.make_engine(tmp_path / "node.db")
    await db.migrate(engine)
    st = Store(engine)
    try:
        yield st
    finally:
        await st.close()


async def next_out(store: Store, peer: str) -> int | None:
    async with store.read() as s:
        return (
            await s.execute(select(db.Pair.next_out).where(db.Pair.peer == peer))
        ).scalar_one_or_none()


def add_pair(peer: str, next_out: int = 1) -> Callable[[Connection], None]:
    def work(c: Connection) -> None:
        c.execute(insert(db.Pair).values(peer=peer, next_out=next_out, last_in=0))

    return work


async def test_a_transaction_commits_as_a_unit_or_not_at_all(store: Store) -> None:
    await store.transact(add_pair("BR-PF", 7))
    assert await next_out(store, "BR-PF") == 7

    def half_then_fail(c: Connection) -> None:
        c.execute(update(db.Pair).where(db.Pair.peer == "BR-PF").values(next_out=8))
        c.execute(insert(db.Pair).values(peer="KE-EACC", next_out=1, last_in=0))
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    with pytest.raises(StorageError, match="disk I/O error"):
        await store.transact(half_then_fail)
    assert await next_out(store, "BR-PF") == 7
    assert await next_out(store, "KE-EACC") is None


async def test_the_writer_reads_what_the_sessions_wrote_and_the_other_way(store: Store) -> None:
    async with store.write() as s:
        s.add(db.Pair(peer="BR-PF", next_out=3, last_in=0))

    def bump(c: Connection) -> int:
        c.execute(update(db.Pair).values(next_out=db.Pair.next_out + 1))
        return int(c.execute(select(db.Pair.next_out)).scalar_one())

    assert await store.transact(bump) == 4
    assert await next_out(store, "BR-PF") == 4


async def test_a_cancelled_caller_keeps_its_turn_until_the_thread_is_done(store: Store) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(c: Connection) -> None:
        started.set()
        release.wait(10)
        c.execute(insert(db.Pair).values(peer="BR-PF", next_out=5, last_in=0))

    task = asyncio.create_task(store.transact(slow))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the caller, which still waits

    async def next_writer() -> str:
        async with store.write() as s:
            s.add(db.Pair(peer="KE-EACC", next_out=1, last_in=0))
        return "wrote"

    waiting = asyncio.create_task(next_writer())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the turn is still the cancelled caller's
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await waiting == "wrote"
    assert await next_out(store, "BR-PF") == 5  # the thread's transaction committed


async def test_a_task_holding_the_turn_may_open_another_transaction(store: Store) -> None:
    async with store.writer.turn():
        await store.transact(add_pair("BR-PF"))
        async with store.write() as s:
            s.add(db.Pair(peer="KE-EACC", next_out=2, last_in=0))
    assert await next_out(store, "BR-PF") == 1
    assert await next_out(store, "KE-EACC") == 2


async def test_a_writer_transaction_inside_an_open_session_transaction_is_refused(
    store: Store,
) -> None:
    """Its own session may hold SQLite's write lock: the thread would wait for it until
    the busy timeout, so the nesting is refused at once, and the session still commits."""
    async with store.write() as s:
        s.add(db.Pair(peer="BR-PF", next_out=1, last_in=0))
        await s.flush()
        with pytest.raises(RuntimeError, match="inside an open session transaction"):
            await store.transact(add_pair("KE-EACC"))
    assert await next_out(store, "BR-PF") == 1
    assert await next_out(store, "KE-EACC") is None
    await store.transact(add_pair("KE-EACC"))  # outside it, as usual
    assert await next_out(store, "KE-EACC") == 1

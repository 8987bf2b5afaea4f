"""The node's writer: write transactions take turns, a whole transaction runs on the
writer thread in one hand-off, commits or rolls back as a unit, and a cancelled caller
keeps its turn until the thread has finished."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from globe_node import db
from globe_node.store import Store
from protocol.errors import StorageError


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


async def _hold_the_turn(store: Store) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A task holding the writer's turn until the event is set."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with store.writer.turn():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    return holder, release


async def _queued_behind_a_turn(
    store: Store, works: list[Callable[[Connection], object]]
) -> list[asyncio.Task[object]]:
    """Start ``works`` while another task holds the writer's turn, so that they queue up
    and run as one group when it lets go."""
    holder, release = await _hold_the_turn(store)
    tasks = [asyncio.create_task(store.transact(w)) for w in works]
    await asyncio.sleep(0.01)
    assert not any(t.done() for t in tasks)  # they wait for the turn
    release.set()
    await holder
    await asyncio.wait(tasks)
    return tasks


async def test_transactions_that_queue_up_commit_as_one_group_each_with_its_value(
    store: Store,
) -> None:
    def add(peer: str, n: int) -> Callable[[Connection], int]:
        def work(c: Connection) -> int:
            c.execute(insert(db.Pair).values(peer=peer, next_out=n, last_in=0))
            return n * 10

        return work

    before = len(store.group.group_sizes)
    tasks = await _queued_behind_a_turn(store, [add("BR-PF", 1), add("KE-EACC", 2), add("DE", 3)])
    assert [t.result() for t in tasks] == [10, 20, 30]
    assert store.group.group_sizes[before:] == [3]
    assert [await next_out(store, p) for p in ("BR-PF", "KE-EACC", "DE")] == [1, 2, 3]


async def test_a_failing_transaction_of_a_group_is_rolled_back_alone(store: Store) -> None:
    def fails(c: Connection) -> None:
        c.execute(insert(db.Pair).values(peer="KE-EACC", next_out=9, last_in=0))
        raise ValueError("refused by its own check")

    def disk(c: Connection) -> None:
        c.execute(insert(db.Pair).values(peer="FR", next_out=9, last_in=0))
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    tasks = await _queued_behind_a_turn(store, [add_pair("BR-PF", 4), fails, disk, add_pair("DE")])
    assert tasks[0].result() is None
    assert tasks[3].result() is None
    with pytest.raises(ValueError, match="refused by its own check"):
        tasks[1].result()
    with pytest.raises(StorageError, match="disk I/O error"):
        tasks[2].result()
    assert await next_out(store, "BR-PF") == 4
    assert await next_out(store, "DE") == 1
    assert await next_out(store, "KE-EACC") is None  # its insert was rolled back
    assert await next_out(store, "FR") is None


async def test_a_group_that_fails_as_a_whole_runs_each_transaction_alone(store: Store) -> None:
    """One transaction ends the group's transaction under it (as SQLite does after some
    failures): what the group wrote so far is gone, so each transaction runs again on its
    own, and each caller gets its own outcome."""
    runs: list[str] = []

    def ends_the_transaction(c: Connection) -> str:
        runs.append("ends")
        c.exec_driver_sql("ROLLBACK")
        return "alone"

    def first(c: Connection) -> None:
        runs.append("first")
        add_pair("BR-PF", 5)(c)

    tasks = await _queued_behind_a_turn(
        store, [first, ends_the_transaction, add_pair("KE-EACC", 6)]
    )
    assert runs == ["first", "ends", "first", "ends"]  # the group, then each alone
    assert [t.result() for t in tasks] == [None, "alone", None]
    assert await next_out(store, "BR-PF") == 5  # committed once, by its own transaction
    assert await next_out(store, "KE-EACC") == 6


async def test_a_caller_cancelled_before_its_transaction_started_withdraws_it(
    store: Store,
) -> None:
    holder, release = await _hold_the_turn(store)
    withdrawn = asyncio.create_task(store.transact(add_pair("BR-PF", 7)))
    kept = asyncio.create_task(store.transact(add_pair("KE-EACC", 8)))
    await asyncio.sleep(0.01)
    withdrawn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await withdrawn
    release.set()
    await holder
    await kept
    assert await next_out(store, "BR-PF") is None
    assert await next_out(store, "KE-EACC") == 8


async def test_a_task_holding_the_turn_gets_its_own_failure_and_keeps_cancellation_safe(
    store: Store,
) -> None:
    def fails(c: Connection) -> None:
        c.execute(insert(db.Pair).values(peer="KE-EACC", next_out=1, last_in=0))
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    async with store.writer.turn():
        with pytest.raises(StorageError, match="disk I/O error"):
            await store.transact(fails)
    assert await next_out(store, "KE-EACC") is None

    started, release = threading.Event(), threading.Event()

    def slow(c: Connection) -> None:
        started.set()
        release.wait(10)
        c.execute(insert(db.Pair).values(peer="BR-PF", next_out=3, last_in=0))

    async def holder() -> None:
        async with store.writer.turn():
            await store.transact(slow)

    task = asyncio.create_task(holder())
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # it waits for its transaction before it goes
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await next_out(store, "BR-PF") == 3


async def test_closing_finishes_what_is_queued(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "node.db")
    await db.migrate(engine)
    st = Store(engine)
    tasks = [asyncio.create_task(st.transact(add_pair(p))) for p in ("BR-PF", "KE-EACC")]
    await asyncio.sleep(0)  # queued, not yet run
    await st.close()
    assert [t.result() for t in tasks] == [None, None]
    reopened = Store(db.make_engine(tmp_path / "node.db"))
    try:
        assert [await next_out(reopened, p) for p in ("BR-PF", "KE-EACC")] == [1, 1]
    finally:
        await reopened.close()


async def test_a_writer_thread_that_is_gone_fails_every_queued_caller(tmp_path: Path) -> None:
    engine = db.make_engine(tmp_path / "node.db")
    await db.migrate(engine)
    st = Store(engine)
    try:
        st.group.thread.shutdown(wait=True)
        tasks = [asyncio.create_task(st.transact(add_pair(p))) for p in ("BR-PF", "KE-EACC")]
        await asyncio.wait(tasks)
        for t in tasks:
            with pytest.raises(RuntimeError, match="shutdown"):
                t.result()
    finally:
        await st.engine.dispose()

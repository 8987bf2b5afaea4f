"""The node's one writer: write transactions take turns, and those that queue up while
one runs commit together.

SQLite has one writer at a time.  :class:`WriterLock` makes this process's writers take
turns in the event loop instead of colliding on two connections (the loser's busy
handler sleeps and polls).  :class:`GroupWriter` runs transactions — plain functions of
a synchronous connection — on the node's writer thread; when several are waiting (eight
sends, the delivery outcomes of eight relayed messages and a batch of receipts, say),
it runs them one after the other in **one** transaction, each inside a savepoint of its
own, and answers each caller only after that transaction has committed.  One hand-off
to the thread, one ``BEGIN IMMEDIATE`` and one durable commit (``synchronous=FULL``)
then serve the whole group, the way a database's group commit does.

Each transaction keeps its own outcome: one that raises is rolled back to its savepoint
and its caller gets the exception, while the others commit.  If the group as a whole
fails (the commit itself, or a failure SQLite answers by rolling back the whole
transaction), nothing of it has been committed and each transaction is run again on its
own, so that each caller gets its own answer; a transaction is therefore a function of
the database only (it may run twice, never commit twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from protocol.errors import StorageError

__all__ = ["GROUP_MAX", "GroupWriter", "WriterLock", "storage_failure"]

log = logging.getLogger("globe.node.store")

_T = TypeVar("_T")

#: Transactions committed together at most (the rest wait for the next group).
GROUP_MAX: Final = 64


def storage_failure(exc: BaseException) -> BaseException:
    """What a caller is told of ``exc``: the database library's operational failures
    become :class:`StorageError` (logged, without the statement); a broken invariant
    (:class:`IntegrityError`) is a bug and stays as it is, like everything else."""
    if isinstance(exc, IntegrityError) or not isinstance(exc, OperationalError | DBAPIError):
        return exc
    reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
    log.error("node database failure: %s", reason)
    return StorageError(
        f"the node database refused the operation ({reason}); nothing was stored:"
        " check the disk and the database file, then retry"
    )


class WriterLock:
    """Write transactions take turns in the event loop (re-entrant within one task).

    Taking turns costs nothing when the node is quiet and, when it is busy, turns
    SQLite's busy-handler sleeps into a plain queue.  A task already holding the turn
    may open another transaction (it would have to commit before the outer one anyway).
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None

    def held(self) -> bool:
        """Whether the current task holds the turn."""
        task = asyncio.current_task()
        return task is not None and self._owner is task

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the writer's turn (re-entrant within one task)."""
        if self.held():
            yield
            return
        async with self._lock:
            self._owner = asyncio.current_task()
            try:
                yield
            finally:
                self._owner = None


@dataclass(eq=False, slots=True)
class _Work(Generic[_T]):
    run: Callable[[Connection], _T]
    done: asyncio.Future[_T]
    taken: bool = False


@dataclass(slots=True)
class _Outcome:
    ok: bool
    value: Any


@dataclass(eq=False)
class GroupWriter:
    """Transactions on one thread with its own connection, committed in groups."""

    engine: Engine
    lock: WriterLock
    thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="globe-node-writer")
    )
    #: Transactions per commit, the last 1,000 groups (for the benchmark and tests).
    group_sizes: list[int] = field(default_factory=list)
    _queue: list[_Work[Any]] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None

    async def transact(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in a write transaction; its value once the transaction committed.

        A caller cancelled before its transaction started withdraws it; one cancelled
        later waits until the thread is done with it (the transaction is not stopped
        half-way, and it may commit).  A task that holds the writer's turn runs its
        transaction alone at once (a group would wait for that turn).
        """
        loop = asyncio.get_running_loop()
        if self.lock.held():
            done = loop.run_in_executor(self.thread, _alone, self.engine, work)
            value: _T = _unwrap(await _shielded(done))
            return value
        item: _Work[_T] = _Work(work, loop.create_future())
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        try:
            return await asyncio.shield(item.done)
        except asyncio.CancelledError:
            if not item.taken:
                self._queue.remove(item)
                item.done.cancel()
                raise
            with contextlib.suppress(BaseException):
                await item.done
            raise

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            async with self.lock.turn():
                batch, self._queue[:] = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
                for item in batch:
                    item.taken = True
                try:
                    outcomes = await loop.run_in_executor(
                        self.thread, _group, self.engine, [w.run for w in batch]
                    )
                except asyncio.CancelledError:  # the event loop is closing
                    for item in batch:
                        item.done.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 - the thread is gone: tell everyone
                    outcomes = [_Outcome(False, exc)] * len(batch)
            self.group_sizes = [*self.group_sizes[-999:], len(batch)]
            for item, outcome in zip(batch, outcomes, strict=True):  # taken: not cancelled
                if outcome.ok:
                    item.done.set_result(outcome.value)
                else:
                    item.done.set_exception(storage_failure(outcome.value))

    async def drain(self) -> None:
        """Wait until every queued transaction is done."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def close(self) -> None:
        """Finish what is queued, close the thread's connection, stop the thread."""
        await self.drain()
        loop = asyncio.get_running_loop()
        async with self.lock.turn():  # the thread closes the connection it made
            await loop.run_in_executor(self.thread, self.engine.dispose)
        self.thread.shutdown(wait=True)


async def _shielded(done: asyncio.Future[_T]) -> _T:
    """Await ``done``; cancelled meanwhile, wait for it still, then re-raise."""
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await done
        raise


def _unwrap(outcome: _Outcome) -> Any:
    if outcome.ok:
        return outcome.value
    raise storage_failure(outcome.value)


def _alone(engine: Engine, work: Callable[[Connection], object]) -> _Outcome:
    """One transaction on its own (the writer thread)."""
    try:
        with engine.begin() as conn:
            return _Outcome(True, work(conn))
    except Exception as exc:  # noqa: BLE001 - handed to the caller
        return _Outcome(False, exc)


def _group(engine: Engine, works: list[Callable[[Connection], object]]) -> list[_Outcome]:
    """Several transactions in one (the writer thread), each in a savepoint; if the
    group as a whole fails, nothing of it committed: each runs again on its own."""
    if len(works) == 1:
        return [_alone(engine, works[0])]
    try:
        with engine.begin() as conn:
            outcomes = []
            for work in works:
                conn.exec_driver_sql("SAVEPOINT globe_group")
                try:
                    value = work(conn)
                except Exception as exc:  # noqa: BLE001 - this one's caller gets it
                    conn.exec_driver_sql("ROLLBACK TO globe_group")
                    conn.exec_driver_sql("RELEASE globe_group")
                    outcomes.append(_Outcome(False, exc))
                else:
                    conn.exec_driver_sql("RELEASE globe_group")
                    outcomes.append(_Outcome(True, value))
            return outcomes
    except Exception as exc:  # noqa: BLE001 - the commit, or a transaction SQLite ended
        log.warning("a group of %d transactions failed (%s); each alone", len(works),
                    type(exc).__name__)  # fmt: skip
        return [_alone(engine, work) for work in works]

"""Bounded waiting: one :func:`eventually` for every "until this becomes true" in the suite.

A test that waits for something another task, thread or process does must not
guess how long that takes (a sleep) nor claim how fast it was (a timed
assertion): it polls the observable outcome, with a deadline generous enough
for a loaded machine, and fails with a message naming what never happened.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar, overload

T = TypeVar("T")

#: Default bound on a wait, in seconds: far above what anything takes on an idle
#: machine, so that only a real failure (or a hung process) reaches it.
DEFAULT_TIMEOUT: Final = 20.0
#: Default pause between two checks of the condition, in seconds.
DEFAULT_INTERVAL: Final = 0.02


@overload
async def eventually(
    condition: Callable[[], Awaitable[T]],
    timeout: float = ...,
    *,
    interval: float = ...,
    ignore: tuple[type[BaseException], ...] = ...,
    what: str | None = ...,
) -> T: ...


@overload
async def eventually(
    condition: Callable[[], T],
    timeout: float = ...,
    *,
    interval: float = ...,
    ignore: tuple[type[BaseException], ...] = ...,
    what: str | None = ...,
) -> T: ...


async def eventually(
    condition: Callable[[], Any],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    interval: float = DEFAULT_INTERVAL,
    ignore: tuple[type[BaseException], ...] = (),
    what: str | None = None,
) -> Any:
    """Check ``condition()`` until it returns something truthy; return that value.

    ``condition`` may be a plain function or return an awaitable (an ``async
    def`` or a lambda around a coroutine); it is checked at once, then every
    ``interval`` seconds.  An exception it raises propagates (a failure is
    not "not yet"), except those listed in ``ignore``, which count as "not
    yet" (say, ``aiohttp.ClientError`` while a server starts).  After
    ``timeout`` seconds the last check is the final one: if it is still falsy,
    :class:`AssertionError` says ``what`` did not happen (by default the
    condition's name) and shows the last value or ignored exception.
    """
    deadline = time.monotonic() + timeout
    while True:
        last: object
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            name = what or getattr(condition, "__qualname__", repr(condition))
            raise AssertionError(f"{name}: not true within {timeout:g} s (last: {last!r})")
        await asyncio.sleep(interval)


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``factory()`` makes to completion from synchronous code.

    It runs on a private event loop in a worker thread, so this is safe both
    where no loop exists (a session fixture) and inside a running loop's
    synchronous callback (where ``asyncio.run`` would refuse).
    """
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


__all__ = ["DEFAULT_INTERVAL", "DEFAULT_TIMEOUT", "eventually", "run_sync"]

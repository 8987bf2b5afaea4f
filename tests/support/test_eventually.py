"""tests.support.waiting: eventually() and run_sync()."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.waiting import eventually, run_sync


async def test_a_true_condition_returns_its_value_at_once() -> None:
    assert await eventually(lambda: 42) == 42
    assert await eventually(lambda: [1]) == [1]


async def test_waits_for_a_condition_another_task_makes_true() -> None:
    box: list[str] = []

    async def later() -> None:
        for _ in range(3):
            await asyncio.sleep(0)  # let the waiter check a few times first
        box.append("done")

    task = asyncio.create_task(later())
    assert await eventually(lambda: box) == ["done"]
    await task


async def test_an_async_condition_is_awaited() -> None:
    event = asyncio.Event()
    calls = 0

    async def ready() -> str | None:
        nonlocal calls
        calls += 1
        if calls == 3:
            event.set()
        return "ready" if event.is_set() else None

    assert await eventually(ready, interval=0) == "ready"
    assert calls == 3


async def test_a_condition_never_true_fails_naming_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError) as info:
        await eventually(lambda: 0, 0.05, what="the answer")
    assert str(info.value) == "the answer: not true within 0.05 s (last: 0)"


async def test_the_default_message_names_the_condition() -> None:
    def nothing_yet() -> list[int]:
        return []

    with pytest.raises(AssertionError) as info:
        await eventually(nothing_yet, 0.01)
    assert str(info.value).startswith(
        "test_the_default_message_names_the_condition.<locals>.nothing_yet: not true within"
    )


async def test_ignored_exceptions_mean_not_yet_and_others_propagate() -> None:
    attempts = 0

    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("not listening yet")
        return "up"

    assert await eventually(flaky, interval=0, ignore=(ConnectionError,)) == "up"
    with pytest.raises(AssertionError) as info:
        await eventually(lambda: 1 / 0, 0.01, ignore=(ArithmeticError,), what="division")
    assert "last: ZeroDivisionError('division by zero')" in str(info.value)
    with pytest.raises(ZeroDivisionError):
        await eventually(lambda: 1 / 0)  # not ignored: a failure, at once


async def test_run_sync_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 7

    assert run_sync(answer) == 7


def test_run_sync_works_without_a_loop() -> None:
    async def answer() -> str:
        return "x"

    assert run_sync(answer) == "x"

"""Fixtures of the admin tool's tests: ``make_desk`` builds a real hub and an admin's desk
(:mod:`tests.admin.desk`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.admin.desk import Desk, DeskFactory, open_desk


@pytest.fixture
async def make_desk(tmp_path: Path) -> AsyncIterator[DeskFactory]:
    """Build desks (options: :func:`tests.admin.desk.open_desk`), all closed at the end."""
    async with AsyncExitStack() as stack:
        count = 0

        async def make(**options: Any) -> Desk:
            nonlocal count
            count += 1
            return await open_desk(stack, tmp_path / f"desk{count}", **options)

        yield make


@pytest.fixture
async def desk(make_desk: DeskFactory) -> Desk:
    """A hub of three admins (alice, bob, carol), two of whom must sign, and its desk."""
    return await make_desk()

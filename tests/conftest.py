"""Shared pytest configuration.

* Hypothesis profiles, selected by ``$HYPOTHESIS_PROFILE`` (``ci``: derandomised).
* ``pg_server`` (session): the PostgreSQL server this test process uses, found or
  started by :func:`tests.support.postgres.open_server` (``$GLOBE_TEST_PG``:
  ``auto``, ``system`` or ``throwaway``).  Only tests that ask for it start one;
  with pytest-xdist each worker process has its own session, hence its own
  databases (and its own throwaway server, if one is needed).  If no server can
  be reached or started the tests that need one *fail* with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support.postgres import (
    MODE_ENV,
    PgServer,
    PostgresUnavailable,
    mode_from_env,
    open_server,
    system_dsn,
)

settings.register_profile("ci", deadline=None, max_examples=100, derandomize=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_report_header(config: pytest.Config) -> str:
    """Say where the PostgreSQL tests will run."""
    mode = mode_from_env()
    where = {
        "auto": f"the server at {system_dsn()} if it answers, else a throwaway server",
        "system": f"the server at {system_dsn()} only",
        "throwaway": "a throwaway server per test process",
    }[mode]
    return f"postgresql: ${MODE_ENV}={mode}: {where}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (system or throwaway); a failure if there is none."""
    try:
        with open_server() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.fail(
            f"PostgreSQL: {exc}\nThe hub claims PostgreSQL support, so these tests fail "
            "instead of skipping: start the server (.ci/run does), or install the dev extras "
            f"for a throwaway one (${MODE_ENV}=throwaway forces it).",
            pytrace=False,
        )

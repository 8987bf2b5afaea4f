"""tests.support.servers: in-process and subprocess servers bound to port 0."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.support.cli import cli_env
from tests.support.servers import ServerProcess, serve_app

#: A server that binds port 0, says where as globe-hub does, and exits 0 on SIGTERM.
SERVER = """
import http.server, signal, sys
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"globe-hub: serving on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""


def _app(events: list[str]) -> web.Application:
    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def started(_app: web.Application) -> None:
        events.append("startup")

    async def cleaned(_app: web.Application) -> None:
        events.append("cleanup")

    app = web.Application()
    app.router.add_get("/", hello)
    app.on_startup.append(started)
    app.on_cleanup.append(cleaned)
    return app


async def test_serve_app_binds_a_port_of_its_own_and_runs_the_app_hooks() -> None:
    events: list[str] = []
    async with serve_app(_app(events)) as one, serve_app(_app(events)) as two:
        assert one.port > 0
        assert two.port > 0
        assert one.port != two.port
        assert one.url == f"http://127.0.0.1:{one.port}"
        async with aiohttp.ClientSession() as session, session.get(two.url) as resp:
            assert (resp.status, await resp.text()) == (200, "hello")
        assert events == ["startup", "startup"]
    assert events == ["startup", "startup", "cleanup", "cleanup"]


async def test_server_process_learns_its_port_from_what_it_prints(tmp_path: Path) -> None:
    proc = ServerProcess([sys.executable, "-c", SERVER], log=tmp_path / "log", env=cli_env())
    port = await proc.start()
    try:
        assert proc.port == port > 0
        async with aiohttp.ClientSession() as session, session.get(proc.url + "/") as resp:
            assert resp.status == 200
    finally:
        code = await proc.stop()
    assert code == 0
    assert proc.kill() is None  # stopped: nothing left to kill
    # A restart announces a port again; the log keeps both runs.
    await proc.start()
    assert proc.kill() == -signal.SIGKILL
    assert proc.log_text().count("globe-hub: serving on") == 2
    assert proc.log_text().startswith("--- start 1\n")


async def test_a_server_process_that_exits_before_listening_fails_the_wait(
    tmp_path: Path,
) -> None:
    script = "import sys; print('cannot open the database'); sys.exit(3)"
    proc = ServerProcess([sys.executable, "-c", script], log=tmp_path / "log", env=cli_env())
    with pytest.raises(AssertionError) as info:
        await proc.start()
    assert "exited 3 before listening" in str(info.value)
    assert "cannot open the database" in str(info.value)
    assert proc.proc is None

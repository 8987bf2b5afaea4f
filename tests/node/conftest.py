"""Fixtures of the node tests.

* ``net``: a real hub on loopback, to which tests add real node daemons
  (:class:`tests.node.network.Net`);
* ``run`` and the fixtures around it: ``globe-node`` run in-process, on node
  directories in ``tmp_path``, with ports reserved for the test where a daemon
  or a hub would listen;
* ``daemon``: a stand-in daemon API on a port the kernel picked, answering what
  each test sets, for the commands that talk to the daemon;
* ``store``: a migrated node database in ``tmp_path`` behind a :class:`Store`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from globe_node import db
from globe_node.cli import main
from globe_node.store import Store
from protocol.devnet import build_devnet
from protocol.errors import PROBLEM_BASE
from tests.node.helpers import (
    ATTACHMENT,
    CLI_PASSPHRASE,
    MESSAGES,
    Daemon,
    Ran,
    client_dir,
    init_args,
)
from tests.node.network import Net, ReservedPort
from tests.support.servers import serve_app

# --- a hub and its members ---------------------------------------------------------------------


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Net]:
    network = Net(tmp_path)
    await network.start_hub()
    try:
        yield network
    finally:
        await network.close()


# --- globe-node in-process ---------------------------------------------------------------------


@pytest.fixture
def cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, node directory or debug setting from the developer's environment;
    the test passphrase in ``GLOBE_PASSPHRASE``."""
    for name in ("GLOBE_TOKEN", "GLOBE_NODE_DIR", "GLOBE_DEBUG", "GLOBE_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLOBE_PASSPHRASE", CLI_PASSPHRASE)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], cli_environment: None) -> Callable[..., Ran]:
    """Run ``globe-node ARGS`` through :func:`globe_node.cli.main`; its status and output."""

    def go(*args: str | Path) -> Ran:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # not expected: main returns the exit status
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return go


@pytest.fixture(scope="session")
def genesis_bytes() -> bytes:
    """The devnet's genesis (the same bytes on every call: the devnet is seeded)."""
    return build_devnet().genesis.encode()


@pytest.fixture
def genesis_file(tmp_path: Path, genesis_bytes: bytes) -> Path:
    path = tmp_path / "genesis.json"
    path.write_bytes(genesis_bytes)
    return path


@pytest.fixture
def api_port() -> Iterator[ReservedPort]:
    """The ``node`` fixture's API port: reserved, listening only while a test serves it."""
    with ReservedPort() as port:
        yield port


@pytest.fixture
def hub_port() -> Iterator[ReservedPort]:
    """The ``node`` fixture's hub port: reserved, nothing ever listens on it."""
    with ReservedPort() as port:
        yield port


@pytest.fixture
def node(
    tmp_path: Path,
    genesis_file: Path,
    run: Callable[..., Ran],
    api_port: ReservedPort,
    hub_port: ReservedPort,
) -> Path:
    """An initialised node (FR-PNF) whose API and hub ports have nothing listening."""
    directory = tmp_path / "node"
    ran = run(
        *init_args(directory, genesis_file, "--api-port", str(api_port.port),
                   "--hub-url", hub_port.url)
    )  # fmt: skip
    assert ran.code == 0, ran.err
    return directory


# --- a stand-in daemon -------------------------------------------------------------------------


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    """A daemon API that records each request and answers what the test put in ``answers``
    (``MESSAGES`` for ``GET /api/messages/{id}``, :data:`ATTACHMENT` for every attachment,
    201 for every message action; ``hits`` for the text search, ``stats-csv`` as CSV,
    ``bundle``'s bytes as an evidence bundle, running ``mid-bundle`` halfway through)."""
    state = Daemon()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {state.token}":
            refusal = {"type": PROBLEM_BASE + "unauthenticated", "detail": "unknown token"}
            return web.json_response(refusal, status=401, content_type="application/problem+json")
        body = await request.json() if request.can_read_body else None
        state.requests.append((request.method, request.path_qs, body))
        response: web.StreamResponse = await handler(request)
        return response

    def answer(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(_r: web.Request) -> web.Response:
            return web.json_response(state.answers[name])

        return handler

    async def message(request: web.Request) -> web.Response:
        return web.json_response(MESSAGES[request.match_info["id"]])

    async def csv(_r: web.Request) -> web.Response:
        return web.Response(text=state.answers["stats-csv"], content_type="text/csv")

    async def bundle(request: web.Request) -> web.StreamResponse:
        data: bytes = state.answers["bundle"]
        resp = web.StreamResponse(headers={"Content-Type": "application/zip"})
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[: len(data) // 2])
        state.answers.get("mid-bundle", lambda: None)()  # what happens while it downloads
        await resp.write(data[len(data) // 2 :])
        await resp.write_eof()
        return resp

    async def queued(_r: web.Request) -> web.Response:
        return web.json_response({"id": "9" * 32}, status=201)

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(ATTACHMENT)
        await resp.write_eof()
        return resp

    app = web.Application(middlewares=[record])
    for name in ("status", "inbox", "outbox", "cases", "stats", "alerts", "audit"):
        app.router.add_get(f"/api/{name}", answer(name))
    app.router.add_get("/api/cases/{case}", answer("case"))
    app.router.add_get("/api/requests", answer("requests"))
    app.router.add_get("/api/search", answer("hits"))
    app.router.add_get("/api/stats/csv", csv)
    app.router.add_get("/api/cases/{case}/bundle", bundle)
    app.router.add_post("/api/cases/{case}/notes", answer("note"))
    app.router.add_post("/api/messages/{id}/file", answer("filed"))
    app.router.add_get("/api/directory/search", answer("search"))
    app.router.add_post("/api/ping/{authority}", answer("ping"))
    app.router.add_get("/api/messages/{id}", message)
    app.router.add_get("/api/messages/{id}/attachments/{n}", chunked)
    for action in ("reply", "status", "forward", "consent", "request-consent"):
        app.router.add_post(f"/api/messages/{{id}}/{action}", queued)
    async with serve_app(app) as served:
        state.port = served.port
        yield state


@pytest.fixture
def daemon_cli(
    tmp_path: Path, daemon: Daemon, run: Callable[..., Ran]
) -> Callable[..., Awaitable[Ran]]:
    """Run a command against the stand-in ``daemon`` (from a worker thread: it serves
    on this loop) with a node directory naming its port and token."""
    directory = client_dir(tmp_path / "client", daemon.port, daemon.token)

    async def go(*args: str | Path) -> Ran:
        return await asyncio.to_thread(run, *args, "--dir", directory)

    return go


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated node database, closed after the test."""
    engine = db.make_engine(tmp_path / "node.db")
    await db.migrate(engine)
    st = Store(engine)
    try:
        yield st
    finally:
        await st.close()

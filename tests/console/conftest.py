"""Fixtures of the administrators' console tests: a real hub and an admin's desk
(:mod:`tests.admin.desk`), and consoles served on loopback port 0 by the console's own
:func:`~globe_admin.console.server.serve`, each for one admin of the desk, with the
passphrase typed in the page or pre-supplied (``--passphrase-file``).

:class:`ConsoleClient` is a raw HTTP client of a console (what a browser sends, and what
an attacker's page could send instead), built on the web UI tests' client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from globe_admin.console.app import Console
from globe_admin.console.reading import read_hub
from globe_admin.console.server import serve
from globe_admin.console.workstation import Workstation
from globe_admin.session import ADMIN_PASSPHRASE_ENV, Admin, load_admin_key
from protocol.requestauth import HEADER
from tests.admin.desk import ADMIN_NAMES, Desk
from tests.admin.runner import PASSPHRASE
from tests.support.servers import serve_app
from tests.webui.client import UiClient


@dataclass
class Running:
    """A console serving one admin of a desk: where, and its one-time sign-in link."""

    console: Console
    base: str
    link: str
    admin: int

    @property
    def name(self) -> str:
        """The admin's name (alice, bob, carol)."""
        return ADMIN_NAMES[self.admin]


class ConsoleClient(UiClient):
    """One browser's worth of cookies against a console (the web UI tests' client, aimed
    at a console instead of a node)."""

    def __init__(self, running: Running) -> None:
        # not UiClient.__init__: it takes a node
        self.base = running.base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.origin = self.base
        self.link = running.link

    async def signed_in(self) -> ConsoleClient:
        """Follow the sign-in link as the browser would; this client, signed in."""
        answer = await self.get(self.link.removeprefix(self.base))
        assert answer.status == 303, answer.text[:300]
        return self

    async def token(self, path: str = "/console/applications") -> str:
        """The session's form token, read from a page."""
        return (await self.get(path)).csrf


ConsoleFactory = Callable[..., Awaitable[Running]]


class HubProxy:
    """A reverse proxy in front of the desk's hub: it passes requests through unchanged,
    answers 404 for ``/metrics`` when ``hide_metrics`` is set (as the nginx example of
    deploy/ does), and
    hands each answer of the hub to ``rewrite`` (a hub that lies) when one is set."""

    def __init__(self, hub: Desk) -> None:
        self.desk = hub
        self.url = ""
        self.hide_metrics = False
        self.rewrite: Callable[[str, bytes], bytes] | None = None
        self.session = aiohttp.ClientSession()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if self.hide_metrics and request.path == "/metrics":
            return web.Response(status=404, text="<html>404 Not Found</html>",
                                content_type="text/html")  # fmt: skip
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "accept", HEADER.lower())}  # fmt: skip
        async with self.session.request(
            request.method, URL(self.desk.url + request.raw_path, encoded=True),
            data=await request.read(), headers=headers,
        ) as answer:  # fmt: skip
            body = await answer.read()
        if self.rewrite is not None:
            body = self.rewrite(request.path, body)
        return web.Response(
            status=answer.status,
            body=body,
            headers={"Content-Type": answer.headers["Content-Type"]},
        )


@pytest.fixture
async def hub_proxy(desk: Desk) -> AsyncIterator[HubProxy]:  # noqa: F811 - imported below
    """A :class:`HubProxy` in front of the desk's hub."""
    proxy = HubProxy(desk)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.forward)
    async with serve_app(app) as served:
        proxy.url = served.url
        yield proxy
    await proxy.session.close()


@pytest.fixture
async def open_console(
    desk: Desk,  # noqa: F811 - the fixture imported at the end of this module
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[ConsoleFactory]:
    """Start consoles for the desk's admins (``admin``: 0 alice, 1 bob, 2 carol;
    ``presupplied``: the passphrase from the desk's passphrase file, else typed in the
    page; ``hub``: another URL of the hub), as ``globe-admin ui`` does: the key opened once
    for the first reading, then let go.  All stopped at the end."""
    monkeypatch.delenv(ADMIN_PASSPHRASE_ENV, raising=False)
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(
        admin: int = 0, *, presupplied: bool = False, hub: str | None = None, **options: Any
    ) -> Running:
        key = desk.keys[admin]
        signing = load_admin_key(key, PASSPHRASE.encode())
        opened = Admin(desk.genesis, signing, ADMIN_NAMES[admin], hub or desk.url, 10.0)
        reading = await opened.call(lambda hub: read_hub(hub, now=int(desk.clock())))
        workstation = Workstation.of(opened, key, desk.pw if presupplied else None)
        console = Console(workstation, hosts=frozenset(), reading=reading, **options)
        announced: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(serve(
            console, host="127.0.0.1", port=0, stop=stop,
            announce=lambda address, link: announced.set_result((address, link)),
        ))  # fmt: skip
        stops.append((stop, task))
        address, link = await asyncio.wait_for(announced, 20)
        return Running(console, address.removesuffix("/console/"), link, admin)

    yield start
    for stop, task in stops:
        stop.set()
        await task


@pytest.fixture
async def client() -> AsyncIterator[Callable[[Running], ConsoleClient]]:
    """Raw HTTP clients of consoles (closed at the end)."""
    made: list[ConsoleClient] = []

    def make(running: Running) -> ConsoleClient:
        made.append(ConsoleClient(running))
        return made[-1]

    yield make
    for c in made:
        await c.close()


# The hub and the desk (tests/admin/conftest.py), and the browser (tests/webui/browser.py).
from tests.admin.conftest import desk, make_desk  # noqa: E402, F401
from tests.webui.browser import browser  # noqa: E402, F401

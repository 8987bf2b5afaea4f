"""The console's application and its listener on the loopback interface.

:func:`create_console_app` assembles the routes of :mod:`~globe_admin.console.pages`,
:mod:`~globe_admin.console.signing` and :mod:`~globe_admin.console.directory` behind
the guard; :func:`serve` binds it to a loopback address (port 0: the kernel picks one),
announces the address and the one-time sign-in link, and runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Final

from aiohttp import web

from globe_admin.console.app import CONSOLE_KEY, PREFIX, ROOT, Console, guard
from globe_admin.console.command import check_loopback
from globe_admin.console.directory import DIRECTORY
from globe_admin.console.pages import PAGES
from globe_admin.console.signing import SIGNING
from globe_io.errors import NotFound
from globe_io.httpguard import GuardedRunner, start_site
from globe_io.webui.site import listener_hosts, secure_headers

__all__ = ["base_url", "create_console_app", "serve"]

log = logging.getLogger("globe.admin.console")

STATIC_DIR: Final = ROOT / "static"


async def _not_found(_request: web.Request) -> web.StreamResponse:
    raise NotFound("no such page")


def create_console_app(console: Console) -> web.Application:
    """The console's application, mounted at :data:`PREFIX` (everything else: not found)."""
    app = web.Application(middlewares=[guard])
    app[CONSOLE_KEY] = console
    app.on_response_prepare.append(secure_headers)
    for method, path, handler, name in (*PAGES, *SIGNING, *DIRECTORY):
        app.router.add_route(method, PREFIX + path, handler, name=name)
    app.router.add_static(f"{PREFIX}/static", STATIC_DIR, name="static")
    app.router.add_route("*", "/{tail:.*}", _not_found, name="not_found")
    return app


def base_url(host: str, port: int) -> str:
    """The console's address on ``host:port``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{PREFIX}/"


async def serve(
    console: Console,
    *,
    host: str,
    port: int,
    announce: Callable[[str, str], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``console`` on ``host:port`` until ``stop`` is set (without one: until SIGINT
    or SIGTERM), calling ``announce(address, sign_in_link)`` once it listens.  A port that
    cannot be bound is a one-line :class:`~globe_io.errors.ConfigError`."""
    check_loopback(host)
    runner = GuardedRunner(
        create_console_app(console), access_log=None, handle_signals=False, logger=log
    )
    await runner.setup()
    signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    try:
        bound = await start_site(runner, host, port)
        console.hosts = listener_hosts(host, bound)
        for sig in (signal.SIGINT, signal.SIGTERM) if signals else ():
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        address = base_url(host, bound)
        announce(address, f"{address}sign-in?secret={console.new_link()}")
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()

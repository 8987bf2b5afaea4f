"""``globe-node run``: the daemon with its two HTTP faces.

* the **peer listener** (``peer_host:peer_port``, :mod:`globe_node.peer`):
  direct delivery from other members, behind the operator's TLS proxy;
* the **local API** (``api_host:api_port``, 127.0.0.1 by default,
  :mod:`globe_node.api`): what the CLI and the web UI use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from globe_io.httpguard import GuardedRunner, start_site
from globe_node.api import create_api_app
from globe_node.config import NodeConfig
from globe_node.keys import load_keys
from globe_node.node import Node
from globe_node.peer import create_peer_app

__all__ = ["Listeners", "run", "serve"]

log = logging.getLogger("globe.node.server")


@dataclass(frozen=True, slots=True)
class Listeners:
    """Sockets already bound for the daemon's listeners (else it binds its configured ports)."""

    api: socket.socket | None = None
    peer: socket.socket | None = None


async def serve(
    config: NodeConfig,
    passphrase: bytes,
    *,
    ready: Callable[[Node], None] | None = None,
    stop: asyncio.Event | None = None,
    listeners: Listeners = Listeners(),
) -> None:
    """Run the node until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    keys = load_keys(config.key_path, passphrase)
    node = await Node.open(config, keys)
    runners: list[GuardedRunner] = []
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        api = GuardedRunner(
            create_api_app(node, node.audit), limits=config.http, access_log=None,
            logger=logging.getLogger("globe.node.api"),
        )  # fmt: skip
        await api.setup()
        runners.append(api)
        await start_site(api, config.api_host, config.api_port, sock=listeners.api)
        if config.peer_port:
            peer = GuardedRunner(
                create_peer_app(node), limits=config.http, access_log=None,
                logger=logging.getLogger("globe.node.peer"),
            )  # fmt: skip
            await peer.setup()
            runners.append(peer)
            await start_site(peer, config.peer_host, config.peer_port, sock=listeners.peer)
        await node.start()
        log.info("node %s running (api %s:%d)", node.me, config.api_host, config.api_port)
        if ready is not None:
            ready(node)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        for runner in runners:
            await runner.cleanup()
        await node.close()


def run(config: NodeConfig, passphrase: bytes) -> int:
    """``globe-node run``: serve until SIGTERM; 0 on a clean shutdown."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    started = time.monotonic()
    asyncio.run(serve(config, passphrase, ready=lambda n: print(
        f"globe-node: {n.me} running; api http://{config.api_host}:{config.api_port}"
        + (f", peer listener {config.peer_host}:{config.peer_port}" if config.peer_port else ""),
        flush=True,
    )))  # fmt: skip
    log.info("stopped after %.0f s", time.monotonic() - started)
    return 0

"""``globe-node run``: the daemon with its HTTP faces.

* the **peer listener** (``peer_host:peer_port``, :mod:`globe_node.peer`):
  direct delivery from other members, behind the operator's TLS proxy;
* the **local API** (``api_host:api_port``, 127.0.0.1 by default,
  :mod:`globe_node.api`): what the CLI and the web UI use;
* the **metrics listener** (``metrics_host:metrics_port``, off by default,
  :mod:`globe_node.metrics`): Prometheus counts, no case material.

Under systemd the listeners may be inherited (socket activation, sockets named
``api``, ``peer`` and ``metrics`` by ``FileDescriptorName=``), and readiness is
reported with ``READY=1`` once every listener serves (``Type=notify``;
:mod:`globe_io.systemd`).
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

from globe_io import logs, systemd
from globe_io.errors import ConfigError
from globe_io.httpguard import GuardedRunner, start_site
from globe_node.api import create_api_app
from globe_node.config import NodeConfig
from globe_node.keys import KeyFile, load_keys
from globe_node.metrics import create_metrics_app
from globe_node.node import Node
from globe_node.peer import create_peer_app
from globe_node.webui import with_webui

__all__ = ["Listeners", "banner", "run", "serve"]

log = logging.getLogger("globe.node.server")


@dataclass(frozen=True, slots=True)
class Listeners:
    """Sockets already bound for the daemon's listeners (else it binds its configured ports)."""

    api: socket.socket | None = None
    peer: socket.socket | None = None
    metrics: socket.socket | None = None

    @classmethod
    def inherited(cls, sockets: dict[str, socket.socket]) -> Listeners:
        """The sockets systemd passed, by ``FileDescriptorName=`` (:func:`listen_fds`)."""
        unknown = sorted(sockets.keys() - {"api", "peer", "metrics"})
        if unknown:
            for sock in sockets.values():
                sock.close()
            raise ConfigError(
                f"inherited socket {unknown[0]!r}: name each socket api, peer or metrics "
                "(FileDescriptorName= in the .socket unit)"
            )
        return cls(**sockets)


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
    node = await Node.open(config, keys, key_file=KeyFile(config.key_path, passphrase))
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
            with_webui(create_api_app(node, node.audit)), limits=config.http, access_log=None,
            logger=logging.getLogger("globe.node.api"),
        )  # fmt: skip
        await api.setup()
        runners.append(api)
        await start_site(api, config.api_host, config.api_port, sock=listeners.api)
        if config.peer_port or listeners.peer is not None:
            peer = GuardedRunner(
                create_peer_app(node), limits=config.http, access_log=None,
                logger=logging.getLogger("globe.node.peer"),
            )  # fmt: skip
            await peer.setup()
            runners.append(peer)
            await start_site(peer, config.peer_host, config.peer_port, sock=listeners.peer)
        if config.metrics_port or listeners.metrics is not None:
            metrics = GuardedRunner(
                create_metrics_app(node, node.sessions), limits=config.http, access_log=None,
                logger=logging.getLogger("globe.node.metrics"),
            )  # fmt: skip
            await metrics.setup()
            runners.append(metrics)
            await start_site(
                metrics, config.metrics_host, config.metrics_port, sock=listeners.metrics
            )
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


def banner(config: NodeConfig, node: Node) -> str:
    """The line ``globe-node run`` prints once it serves."""
    text = f"globe-node: {node.me} running; api http://{config.api_host}:{config.api_port}"
    if config.peer_port:
        text += f", peer listener {config.peer_host}:{config.peer_port}"
    if config.metrics_port:
        text += f", metrics http://{config.metrics_host}:{config.metrics_port}/metrics"
    return text


def run(
    config: NodeConfig, passphrase: bytes, *, log_level: str = "info", log_format: str = "json"
) -> int:
    """``globe-node run``: serve until SIGTERM; 0 on a clean shutdown."""
    logs.configure(log_level, json_lines=log_format == "json")
    inherited = systemd.listen_fds()
    started = time.monotonic()

    def ready(node: Node) -> None:
        print(banner(config, node), flush=True)
        systemd.notify(f"READY=1\nSTATUS=serving as {node.me}")

    if inherited:  # socket activation: serve what systemd bound
        listeners = Listeners.inherited(inherited)
        asyncio.run(serve(config, passphrase, ready=ready, listeners=listeners))
    else:
        asyncio.run(serve(config, passphrase, ready=ready))
    log.info("stopped after %.0f s", time.monotonic() - started)
    return 0

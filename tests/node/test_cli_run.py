"""``globe-node run``: the daemon serves its local API until SIGTERM, then shuts down
cleanly (exit status 0, its one line on stdout, the signal handlers it installed
removed)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from globe_io import logs
from globe_node import server
from globe_node.config import NodeConfig, load_config
from globe_node.node import Node
from globe_node.server import Listeners
from tests.node.helpers import Ran
from tests.node.network import ReservedPort


def test_run_serves_until_sigterm(
    node: Path,
    api_port: ReservedPort,
    run: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_config(node)
    real_serve = server.serve
    killed: list[bool] = []

    async def serve(
        config: NodeConfig, passphrase: bytes, *, ready: Callable[[Node], None]
    ) -> None:
        """The daemon on the node's reserved API port; SIGTERM once it is ready."""

        def then_terminate(node: Node) -> None:
            ready(node)
            # it serves and its signal handlers are installed: stop it as an operator would
            killed.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

        listeners = Listeners(api=api_port.listener())
        await real_serve(config, passphrase, ready=then_terminate, listeners=listeners)

    monkeypatch.setattr(server, "serve", serve)
    # The daemon's log set-up would take over this test process's root logger; it is
    # tested with the daemon as a process of its own (tests/deploy/test_daemons.py).
    monkeypatch.setattr(logs, "configure", lambda *_args, **_kwargs: None)
    ran = run("run", "--dir", node)
    assert killed == [True]
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == f"globe-node: FR-PNF running; api http://127.0.0.1:{config.api_port}\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

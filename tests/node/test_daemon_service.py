"""``globe-node run`` as systemd runs it (deploy/systemd/globe-node.service): a process of
its own serving the sockets it inherited (socket activation), reporting ``READY=1`` on
``$NOTIFY_SOCKET``, reading its passphrase from the credential ``LoadCredential=`` made,
logging JSON lines without library chatter; and a port already in use is one line for
every listener."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from globe_io import logs
from globe_io.errors import ConfigError
from globe_node import server
from globe_node.config import load_config, render_config
from tests.node.helpers import CLI_PASSPHRASE, Ran
from tests.node.network import ReservedPort
from tests.support.cli import cli_env
from tests.support.waiting import eventually

#: Starts the daemon with inherited sockets, as systemd's socket activation does.
LAUNCHER = Path(__file__).with_name("inherited_listeners.py")


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


async def test_run_under_systemd(node: Path, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "passphrase").write_text(CLI_PASSPHRASE + "\n")
    notify_path = tmp_path / "notify"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(notify_path))
    manager.setblocking(False)
    api, metrics = _listening(), _listening()
    env = cli_env({"NOTIFY_SOCKET": str(notify_path), "CREDENTIALS_DIRECTORY": str(credentials)})
    fds = [str(api.fileno()), "-1", str(metrics.fileno())]  # api, peer, metrics
    argv = [sys.executable, str(LAUNCHER), *fds, "--", "run", "--dir", str(node),
            "--log-format", "json", "--log-level", "info"]  # fmt: skip
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=(api.fileno(), metrics.fileno()),
    )  # fmt: skip
    try:
        try:
            ready = await eventually(lambda: _datagram(manager), what="READY=1 from the daemon")
        except AssertionError:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"no READY=1; the daemon wrote: {out!r} {err!r}") from None
        assert ready == "READY=1\nSTATUS=serving as FR-PNF"
        api_url = f"http://127.0.0.1:{api.getsockname()[1]}"
        metrics_url = f"http://127.0.0.1:{metrics.getsockname()[1]}/metrics"
        async with aiohttp.ClientSession() as session:
            async with session.get(api_url + "/api/status") as resp:
                assert resp.status == 401  # the local API, on the inherited socket
            async with session.get(metrics_url) as resp:
                assert resp.status == 200
                text = await resp.text()
        assert 'globe_node_membership{status="not admitted"} 1' in text.splitlines()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        manager.close()
        api.close()
        metrics.close()
    assert proc.returncode == 0, err
    config = load_config(node)
    assert out.decode() == (f"globe-node: FR-PNF running; api http://127.0.0.1:{config.api_port}\n")
    records = [json.loads(line) for line in err.decode().splitlines()]
    assert {r["logger"].split(".")[0] for r in records} == {"globe"}, records  # no libraries
    messages = [r["message"] for r in records]
    assert f"node FR-PNF running (api 127.0.0.1:{config.api_port})" in messages
    assert messages[-1].startswith("stopped after ")


def _datagram(sock: socket.socket) -> str | None:
    try:
        return sock.recv(4096).decode()
    except BlockingIOError:
        return None


@pytest.mark.parametrize("listener", ["api", "peer", "metrics"])
def test_a_port_in_use_is_one_line(
    listener: str,
    node: Path,
    api_port: ReservedPort,
    run: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The daemon's log set-up would take over this test process's root logger.
    monkeypatch.setattr(logs, "configure", lambda *_args, **_kwargs: None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = load_config(node)
        if listener == "api":
            api_port.close()  # nothing holds the API port but the taken socket
            config = replace(config, api_port=port)
        elif listener == "peer":
            config = replace(config, peer_port=port)
        else:
            config = replace(config, metrics_port=port)
        (node / "node.toml").write_text(render_config(config))
        if listener != "api":  # the API must come up first: its port must be free
            api_port.close()
        ran = run("run", "--dir", node)
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == (
        f"globe-node: error: cannot listen on 127.0.0.1:{port}: the address is already in use\n"
    )


def test_inherited_sockets_must_be_named_for_a_listener() -> None:
    with _listening() as sock:
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        with pytest.raises(ConfigError) as info:
            server.Listeners.inherited({"web": dup})
        assert dup.fileno() == -1  # closed: nothing serves it
    assert info.value.detail == (
        "inherited socket 'web': name each socket api, peer or metrics "
        "(FileDescriptorName= in the .socket unit)"
    )


def test_the_banner_names_every_listener(node: Path) -> None:
    config = replace(load_config(node), peer_port=8451, metrics_port=9451)

    class Named:
        me = "FR-PNF"

    assert server.banner(config, Named()) == (  # type: ignore[arg-type]
        f"globe-node: FR-PNF running; api http://127.0.0.1:{config.api_port}, peer listener "
        "127.0.0.1:8451, metrics http://127.0.0.1:9451/metrics"
    )

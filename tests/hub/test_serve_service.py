"""``globe-hub serve`` as systemd runs it (deploy/systemd/globe-hub@.service): readiness on
``$NOTIFY_SOCKET``, the passphrase from the credential, JSON logs without library chatter,
the disk gauge on /metrics; a port in use is one line; and behind a trusted proxy the
per-address rate limit sees each client, while a spoofed header from anyone else buys
nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from globe_io.httpguard import GuardedRunner, HttpLimits
from hub.config import Limits, load_config
from hub.server import open_hub
from tests.deploy.hubdir import PASSPHRASE, fill_database, make_hub_dir
from tests.support.cli import cli_env, run_cli
from tests.support.servers import serve_runner
from tests.support.waiting import eventually


def _datagram(sock: socket.socket) -> str | None:
    try:
        return sock.recv(4096).decode()
    except BlockingIOError:
        return None


async def test_serve_under_systemd(tmp_path: Path) -> None:
    hub = make_hub_dir(tmp_path)
    await fill_database(hub.config.database_url, hub.net)
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "passphrase").write_text(PASSPHRASE + "\n")
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify"))
    manager.setblocking(False)
    env = cli_env({"NOTIFY_SOCKET": str(tmp_path / "notify"),
                   "CREDENTIALS_DIRECTORY": str(credentials)})  # fmt: skip
    argv = [sys.executable, "-m", "hub", "serve", "--dir", str(hub.directory),
            "--log-format", "json"]  # fmt: skip
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        ready = await eventually(lambda: _datagram(manager), what="READY=1 from the hub")
        assert ready is not None
        assert ready.startswith("READY=1\nSTATUS=serving on 127.0.0.1:")
        port = int(ready.rsplit(":", 1)[1])
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            metrics = await resp.text()
        free = [x for x in metrics.splitlines() if x.startswith("globe_hub_disk_free_bytes ")]
        assert len(free) == 1
        assert float(free[0].split()[1]) > 0
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        manager.close()
    assert proc.returncode == 0, err
    assert out.decode() == f"globe-hub: serving on http://127.0.0.1:{port}\n"
    records = [json.loads(line) for line in err.decode().splitlines()]
    assert {r["logger"].split(".")[0] for r in records} == {"globe"}, records
    assert f"hub serving on http://127.0.0.1:{port} (log seq 2)" in [r["message"] for r in records]


async def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        hub = make_hub_dir(tmp_path, port=port)
        await fill_database(hub.config.database_url, hub.net)
        ran = run_cli(
            "hub", "serve", "--dir", hub.directory, "--passphrase-file", hub.passphrase_file,
            "--log-level", "warning",
        )  # fmt: skip
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == (
        f"globe-hub: error: cannot listen on 127.0.0.1:{port}: the address is already in use\n"
    )


@pytest.mark.parametrize(
    ("trusted", "clients", "statuses"),
    [
        # Behind the proxy: each client its own bucket (burst 1), the second request of the
        # same client refused.
        (("127.0.0.1/32",), ["203.0.113.1", "203.0.113.2", "203.0.113.1"], [200, 200, 429]),
        # The same headers from a peer that is not a trusted proxy: one bucket for all.
        ((), ["203.0.113.1", "203.0.113.2", "203.0.113.3"], [200, 429, 429]),
        (("10.0.0.0/8",), ["203.0.113.1", "203.0.113.2"], [200, 429]),
    ],
)
async def test_rate_limits_per_client_behind_trusted_proxies(
    tmp_path: Path, trusted: tuple[str, ...], clients: list[str], statuses: list[int]
) -> None:
    hub = make_hub_dir(tmp_path)
    await fill_database(hub.config.database_url, hub.net)
    config = load_config(hub.directory)
    config = type(config)(**{**{f: getattr(config, f) for f in config.__slots__},
                             "limits": Limits(burst=1, rate_per_second=0.001)})  # fmt: skip
    runtime = await open_hub(config, PASSPHRASE.encode())
    runner = GuardedRunner(runtime.app, limits=HttpLimits(trusted_proxies=trusted), access_log=None)
    got = []
    async with serve_runner(runner) as served, aiohttp.ClientSession() as session:
        for client in clients:
            headers = {"X-Forwarded-For": client}
            async with session.get(served.url + "/healthz", headers=headers) as resp:
                got.append(resp.status)
    assert got == statuses

"""``globe-admin ui`` on the command line: its help, a non-loopback address or a port in use
refused in one line, a name that is not the key's, and the real thing run as a process
(its address and one-time link announced, SIGINT or SIGTERM a clean stop in one line)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys

import aiohttp
import pytest

from globe_admin.session import ADMIN_PASSPHRASE_ENV
from tests.admin.desk import Desk
from tests.admin.runner import admin_cli, assert_refused
from tests.support.servers import ServerProcess

#: What ``globe-admin ui`` prints once it listens.
ANNOUNCED = re.compile(
    rb"globe-admin: sign in once with (?P<link>http://127\.0\.0\.1:(?P<port>\d+)"
    rb"/console/sign-in\?secret=[A-Za-z0-9_-]{43})\n"
)


def test_the_help_says_what_the_console_does() -> None:
    ran = admin_cli("ui", "--help")
    assert (ran.code, ran.err) == (0, "")
    text = " ".join(ran.out.split())
    assert "usage: globe-admin ui [OPTIONS]" in text
    assert "a loopback address only" in text
    assert "one-time sign-in link" in text
    assert "--port N the port to listen on (default: 0, a free port)" in text
    assert "--host ADDRESS the loopback address to listen on [default: 127.0.0.1]" in text
    listed = admin_cli("--help")
    assert re.search(r"\n  ui\s+run the administrators' console", listed.out)


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "192.0.2.10", "::", "localhost", "example.org"],  # noqa: S104 - refused
)
async def test_a_non_loopback_address_is_refused_in_one_line(desk: Desk, host: str) -> None:
    ran = await desk.admin("ui", "--host", host)
    assert_refused(
        ran, f"the console listens on a loopback address only (such as 127.0.0.1 or ::1), "
        f"not {host!r}",
    )  # fmt: skip


async def test_a_port_in_use_is_refused_in_one_line(desk: Desk) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = await desk.admin("ui", "--port", str(port))
    assert_refused(ran, f"cannot listen on 127.0.0.1:{port}: the address is already in use")


async def test_a_name_that_is_not_the_keys_is_refused(desk: Desk) -> None:
    ran = await desk.admin("ui", "--name", "bob")
    assert_refused(ran, f"{desk.keys[0]} is the admin key of alice, not of bob")
    bad_port = await desk.admin("ui", "--port", "65536")
    assert bad_port.code == 2
    assert "not a TCP port" in bad_port.err


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
async def test_the_console_runs_until_interrupted_and_stops_in_one_line(
    desk: Desk, tmp_path, stop: signal.Signals
) -> None:
    await desk.apply("FR-PNF")
    env = {k: v for k, v in os.environ.items() if k != ADMIN_PASSPHRASE_ENV}
    process = ServerProcess(
        [sys.executable, "-m", "globe_admin", "ui", "--genesis", str(desk.genesis_path),
         "--key", str(desk.keys[1]), "--hub", desk.url, "--passphrase-file", str(desk.pw)],
        log=tmp_path / "console.log", env=env, announce=ANNOUNCED,
    )  # fmt: skip
    port = await process.start()
    assert f"globe-admin: console at http://127.0.0.1:{port}/console/\n" in process.log_text()
    found = ANNOUNCED.search(process.log.read_bytes())
    assert found is not None
    link = found["link"].decode()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(link) as signed:
            assert signed.status == 200  # followed to the applications page
            assert "Admin bob of globe-desk" in await signed.text()
            assert "FR-PNF" in await signed.text()
        async with browser.get(link, allow_redirects=False) as again:
            assert again.status == 401
    assert process.proc is not None
    proc, process.proc = process.proc, None
    proc.send_signal(stop)
    code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0
    lines = process.log_text().splitlines()
    assert lines[-1] == "globe-admin: console stopped"
    assert not any("Traceback" in line for line in lines)

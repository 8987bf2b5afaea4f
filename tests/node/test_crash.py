"""A node killed with SIGKILL while sending or receiving loses nothing and shows
nothing twice after a restart (R10).

The node under test runs as a real ``globe-node run`` process; the hub and the
other member run in the test's event loop.  Every message the killed node's API
acknowledged (201: committed to its outbox) must reach the recipient exactly
once; every message sent to the killed node must be in its inbox exactly once.

The kill points are chosen by a seeded random number of events -- sends
acknowledged, messages delivered -- that must have happened first, while the
rest are in flight: never by a delay, which a loaded machine would stretch
until nothing is in flight any more (or nothing has happened yet).  The
process serves sockets the test binds on the node's reserved ports, passed as
systemd's socket activation passes them (``inherited_listeners.py``), so a restart
serves the certified endpoint again.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Final

import aiohttp
import pytest
from sqlalchemy import select

from globe_node import db
from globe_node.config import render_config
from tests.node.helpers import delivered, info
from tests.node.network import PASSPHRASE, Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

KILL_POINTS = 3
MESSAGES = 12
#: What ``globe-node run`` prints once it serves (globe_node/server.py).
RUNNING: Final = re.compile(rb"globe-node: [A-Z0-9-]+ running; api ")
LAUNCHER: Final = Path(__file__).with_name("inherited_listeners.py")


class NodeProcess:
    """``python -m globe_node run`` for one node directory."""

    def __init__(self, rn: RunningNode) -> None:
        self.rn = rn
        self.proc: subprocess.Popen[bytes] | None = None
        rn.config.directory.joinpath("node.toml").write_text(render_config(rn.config))
        self.token = "crash-test-token-" + os.urandom(8).hex()
        self.log = rn.config.directory / "daemon.log"

    async def add_token(self) -> None:
        engine = db.make_engine(self.rn.config.db_path)
        await db.migrate(engine)
        async with db.session_factory(engine).begin() as s:
            s.add(db.User(name="tester", role="supervisor", created=0,
                          token_hash=hashlib.sha256(self.token.encode()).digest()))  # fmt: skip
        await engine.dispose()

    async def start(self) -> None:
        """Start the daemon on fresh listeners on the node's ports; return once it serves."""
        env = dict(os.environ, GLOBE_PASSPHRASE=PASSPHRASE.decode())
        listeners = self.rn.listeners()
        api_fd = listeners.api.fileno() if listeners.api is not None else -1
        peer_fd = listeners.peer.fileno() if listeners.peer is not None else -1
        argv = [sys.executable, str(LAUNCHER), str(api_fd), str(peer_fd),
                "run", "--dir", str(self.rn.config.directory)]  # fmt: skip
        try:
            with self.log.open("ab") as out:
                offset = out.tell()
                self.proc = subprocess.Popen(
                    argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                    pass_fds=[fd for fd in (api_fd, peer_fd) if fd >= 0],
                )  # fmt: skip
        finally:
            # the daemon holds them now: once it dies, its ports refuse connections
            for sock in (listeners.api, listeners.peer):
                if sock is not None:
                    sock.close()
        proc = self.proc

        def running() -> bool:
            if RUNNING.search(self.log.read_bytes()[offset:]):
                return True
            if proc.poll() is not None:
                raise AssertionError(self.log.read_text()[-3000:])
            return False

        await eventually(running, timeout=30, what="the daemon's 'running' line")

    async def api(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        c = self.rn.config
        url = f"http://{c.api_host}:{c.api_port}{path}"
        import orjson  # noqa: PLC0415

        data = None if body is None else orjson.dumps(body)
        headers = {"Authorization": f"Bearer {self.token}"}
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as s,
            s.request(method, url, data=data, headers=headers) as r,
        ):
            return r.status, orjson.loads(await r.read())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def inbox_rows(path: Path) -> list[tuple[str, str]]:
    engine = db.make_engine(path)
    async with db.session_factory(engine)() as s:
        rows = (await s.execute(select(db.InMessage.sender, db.InMessage.message_id))).all()
    await engine.dispose()
    return [(a, b) for a, b in rows]


async def test_sender_killed_mid_send_loses_nothing(net: Net) -> None:
    rng = random.Random(20261128)  # noqa: S311 - reproducible kill points
    br = await net.member("BR-PF", "Policia Federal")
    fr = net.make_node("FR-PNF", "Parquet national financier")
    await net.admit(fr, "Parquet national financier")
    proc = NodeProcess(fr)
    await proc.add_token()
    await proc.start()
    acknowledged: list[str] = []
    try:
        for _ in range(KILL_POINTS):
            await eventually(lambda: _synced(proc, net))
            sends = [
                asyncio.create_task(
                    proc.api(
                        "POST",
                        "/api/messages",
                        {"to": ["BR-PF"], "subject": f"m{i}", "body": "crash test"},
                    )
                )
                for i in range(MESSAGES)
            ]
            # kill once some sends are answered, while the others are in flight
            await completions(sends, rng.randint(1, MESSAGES - 1))
            proc.kill()
            for task in sends:
                try:
                    status, body = await task
                except (aiohttp.ClientError, TimeoutError):
                    continue  # not acknowledged: may or may not have been committed
                if status == 201:
                    assert isinstance(body, dict)
                    acknowledged.append(str(body["id"]))
            await proc.start()
        assert acknowledged, "no send was acknowledged before the kills"

        async def all_in() -> bool:
            got = {m for _, m in await inbox_rows(br.config.db_path)}
            return set(acknowledged) <= got

        await eventually(all_in, timeout=60)
        rows = await inbox_rows(br.config.db_path)
        assert len(rows) == len(set(rows))  # nothing twice
        assert {s for s, _ in rows} == {"FR-PNF"}
        # Whatever the sender committed is delivered once: its outbox and the inbox agree.
        engine = db.make_engine(fr.config.db_path)
        async with db.session_factory(engine)() as s:
            committed = set((await s.execute(select(db.OutMessage.message_id))).scalars())
        await engine.dispose()
        await eventually(lambda: _inbox_is(br, committed), timeout=60)
    finally:
        await proc.stop()


async def completions(tasks: Collection[asyncio.Task[tuple[int, object]]], n: int) -> None:
    """Return once ``n`` of ``tasks`` are done (each is bounded by its client timeout)."""
    pending = set(tasks)
    while len(tasks) - len(pending) < n:
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)


async def _inbox_is(br: RunningNode, ids: set[str]) -> bool:
    return {m for _, m in await inbox_rows(br.config.db_path)} == ids


async def _synced(proc: NodeProcess, net: Net) -> bool:
    status, body = await proc.api("GET", "/api/status")
    assert net.service is not None
    return (
        status == 200
        and isinstance(body, dict)
        and body["membership"] == "active"
        and body["directory"]["seq"] == net.service.state.seq
        and body["directory"]["age_s"] is not None
    )


async def test_receiver_killed_mid_receive_shows_nothing_twice(net: Net) -> None:
    rng = random.Random(11282026)  # noqa: S311 - reproducible kill points
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = net.make_node("BR-PF", "Policia Federal")
    await net.admit(br, "Policia Federal")
    await net.synced(fr)
    proc = NodeProcess(br)
    await proc.add_token()
    await proc.start()
    sent: list[str] = []
    try:
        for round_ in range(KILL_POINTS):
            batch = [
                str(await fr.n.send([br.me], info(f"r{round_} m{i}"))) for i in range(MESSAGES)
            ]
            sent += batch
            # kill once some of the batch are in, while the others are on their way
            at_least = rng.randint(1, MESSAGES - 1)
            await eventually(
                functools.partial(_delivered_count, fr, batch, br, at_least),
                what=f"{at_least} messages of round {round_} delivered",
            )
            proc.kill()
            await proc.start()
        await eventually(lambda: _all_delivered(fr, sent, br), timeout=90)
        rows = await inbox_rows(br.config.db_path)
        assert sorted(m for _, m in rows) == sorted(sent)  # each exactly once
    finally:
        await proc.stop()


async def _delivered_count(fr: RunningNode, batch: list[str], br: RunningNode, n: int) -> bool:
    """Whether at least ``n`` messages of ``batch`` are delivered (their receipts in)."""
    count = 0
    for mid in batch:
        count += await delivered(fr, mid, br)
    return count >= n


async def _all_delivered(fr: RunningNode, sent: list[str], br: RunningNode) -> bool:
    for mid in sent:
        if not await delivered(fr, mid, br):
            return False
    return True

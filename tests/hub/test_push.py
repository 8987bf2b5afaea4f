"""Push delivery over ``GET /v1/stream`` (hub/push.py).

In-process tests run the real app (router, pusher, aiohttp over loopback) on
SQLite and PostgreSQL; on PostgreSQL the pusher also LISTENs and NOTIFYs, so
its own notifications are exercised (and ignored by pid).  The two-process
test runs two ``python -m hub serve`` processes on one fresh PostgreSQL
database: a message accepted by one is pushed by the other.
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import db
from hub.config import HubConfig, render_config
from hub.push import APPLICATION_NAME, CLOSE_AUTH, CLOSE_POLICY, Pusher, PushLimits, add_routes
from hub.routing import Router
from hub.server import HUB_KEY_PURPOSE
from hub.service import HubService, Principal
from hub.web import create_app
from protocol import canonical
from protocol.devnet import GENESIS_TIME, DevMember, DevNetwork, build_devnet
from protocol.directory import DirectoryState
from protocol.envelope import SealTo, parse_envelope, seal_envelope
from protocol.errors import PROBLEM_BASE
from protocol.keys import SigningKey
from protocol.keystore import KdfCost, seal_secret
from protocol.membership import Action, entry_hash
from protocol.receipts import make_receipt
from protocol.requestauth import sign_request
from tests.support.cli import cli_env
from tests.support.postgres import PgServer
from tests.support.servers import ServerProcess
from tests.support.waiting import eventually

NOW = GENESIS_TIME + 86400
UNAUTHORIZED = PROBLEM_BASE + "unauthorized"


@pytest.fixture(scope="module")
def net() -> DevNetwork:
    """Four members; the last log entry suspends IT-ANAC (applied only where a test says so)."""
    network = build_devnet(
        b"push",
        members=[
            ("FR-PNF", "Parquet national financier"),
            ("DE-BKA", "Bundeskriminalamt"),
            ("ES-FCC", "Fiscalia contra la Corrupcion"),
            ("IT-ANAC", "Autorita Nazionale Anticorruzione"),
        ],
    )
    network.set_status("IT-ANAC", Action.SUSPEND, "under review", time=GENESIS_TIME + 7200)
    return network


# --- helpers ------------------------------------------------------------------------------------


def seal(
    net: DevNetwork,
    sender: str,
    *recipients: str,
    content: bytes = b'{"text":"hi"}',
    created: int = NOW,
    state: DirectoryState | None = None,
) -> bytes:
    """An envelope citing ``state`` (the hub's directory; by default the whole devnet log)."""
    s = net.members[sender]
    state = state or net.directory
    return seal_envelope(
        genesis=net.genesis,
        sender=s.authority,
        identity=s.identity,
        recipients=[
            SealTo(
                net.members[r].authority,
                secrets.randbelow(2**31) + 1,
                net.members[r].prekey.public_key,
            )
            for r in recipients
        ],
        content=content,
        created=created,
        expires=created + 3600,
        dir_seq=state.seq,
        dir_head=state.head,
    )


def auth_message(
    net: DevNetwork,
    member: DevMember,
    challenge: bytes,
    *,
    after: int = 0,
    created: int = NOW,
    key: SigningKey | None = None,
) -> str:
    header = sign_request(
        key=key or member.transport,
        network=net.genesis.digest,
        audience="hub",
        method="GET",
        target="/v1/stream",
        body=challenge,
        created=created,
    )
    return orjson.dumps({"type": "auth", "auth": header, "after": after}).decode()


async def challenge_of(ws: aiohttp.ClientWebSocketResponse) -> bytes:
    msg = await ws.receive_json(timeout=5)
    assert msg["type"] == "challenge"
    nonce = canonical.b64d(msg["nonce"], what="nonce")
    assert len(nonce) == 32
    return nonce


async def expect_refusal(
    ws: aiohttp.ClientWebSocketResponse, code: int, problem_type: str = UNAUTHORIZED
) -> dict[str, Any]:
    msg = await ws.receive_json(timeout=5)
    assert msg["type"] == "error", msg
    problem: dict[str, Any] = msg["problem"]
    assert problem["type"] == problem_type, problem
    assert problem["instance"] == "/v1/stream"
    assert isinstance(problem["title"], str)
    assert isinstance(problem["detail"], str)
    closing = await ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), closing
    assert ws.close_code == code
    return problem


async def next_item(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> dict[str, Any]:
    msg = await ws.receive_json(timeout=timeout)
    assert msg["type"] == "item", msg
    assert set(msg) == {"type", "cursor", "kind", "data"}
    return dict(msg)


@dataclass
class PushHub:
    net: DevNetwork
    service: HubService
    router: Router
    pusher: Pusher
    client: TestClient[web.Request, web.Application]

    async def request(self, who: str, method: str, target: str, body: bytes = b"") -> Any:
        member = self.net.members[who]
        header = sign_request(
            key=member.transport, network=self.net.genesis.digest, audience="hub",
            method=method, target=target, body=body, created=NOW,
        )  # fmt: skip
        data = io.BytesIO(body) if len(body) > 65536 else body  # big bodies: not raw bytes
        async with self.client.request(
            method, target, data=data, headers={"Globe-Auth": header}
        ) as resp:
            return resp.status, await resp.read()

    async def send(self, sender: str, *recipients: str, **kw: Any) -> bytes:
        envelope = seal(self.net, sender, *recipients, state=self.service.state, **kw)
        status, body = await self.request(sender, "POST", "/v1/messages", envelope)
        assert status == 201, body[:300]
        return envelope

    async def pull(self, who: str, after: int = 0) -> list[dict[str, Any]]:
        status, body = await self.request(who, "GET", f"/v1/mailbox?after={after}")
        assert status == 200, body
        items: list[dict[str, Any]] = orjson.loads(body)["items"]
        return items

    async def stream(self, who: str, after: int = 0) -> aiohttp.ClientWebSocketResponse:
        ws = await self.client.ws_connect("/v1/stream")
        challenge = await challenge_of(ws)
        await ws.send_str(auth_message(self.net, self.net.members[who], challenge, after=after))
        return ws

    async def suspend_it(self) -> None:
        """Append the suspension of IT-ANAC (the devnet's last entry) and load it."""
        seq = len(self.net.entries)
        async with self.service.unit() as s:
            entry = self.net.entries[-1]
            s.add(db.LogEntryRow(seq=seq, hash=entry_hash(entry), data=entry, time=NOW))
        await self.service.refresh()


async def open_push_hub(
    url: str, net: DevNetwork, limits: PushLimits | None = None
) -> tuple[PushHub, AsyncEngine]:
    """A hub with router and pusher on ``url``; the log (but IT's suspension) stored if empty."""
    engine = db.make_engine(url)
    await db.migrate(engine)
    service = HubService(genesis=net.genesis, hub_key=net.hub, engine=engine, clock=lambda: NOW)
    async with service.unit() as s:
        if (await s.execute(select(db.LogEntryRow.seq).limit(1))).first() is None:
            for seq, entry in enumerate(net.entries[:-1], 1):
                s.add(db.LogEntryRow(seq=seq, hash=entry_hash(entry), data=entry, time=NOW))
    await service.start()
    router = Router(service)
    pusher = Pusher(router, service, database_url=url, limits=limits or PushLimits())
    router.on_commit = pusher.notify
    app = create_app(
        service, clock=time.monotonic, router=router, burst=10_000, expiry_interval=3600
    )
    add_routes(app, pusher)
    client = TestClient(TestServer(app))
    await client.start_server()
    return PushHub(net, service, router, pusher, client), engine


@pytest.fixture
async def make_push_hub(db_url: str, net: DevNetwork) -> AsyncIterator[Any]:
    opened: list[tuple[PushHub, AsyncEngine]] = []

    async def make(limits: PushLimits | None = None) -> PushHub:
        opened.append(await open_push_hub(db_url, net, limits))
        return opened[-1][0]

    yield make
    for hub, engine in opened:
        await hub.client.close()
        await engine.dispose()


# --- delivery -------------------------------------------------------------------------------------


async def test_item_pushed_as_soon_as_the_commit_is_done(make_push_hub):
    # No periodic resync within the test: only the commit's wake-up can push the item.
    hub = await make_push_hub(PushLimits(resync=3600))
    de = await hub.stream("DE-BKA")
    fr = await hub.stream("FR-PNF")
    await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)

    envelope = seal(hub.net, "FR-PNF", "DE-BKA", "ES-FCC", state=hub.service.state)
    status, _ = await hub.request("FR-PNF", "POST", "/v1/messages", envelope)
    assert status == 201
    item = await next_item(de)
    assert item["kind"] == "envelope"
    assert canonical.b64d(item["data"], what="data") == envelope
    # The same item, at the same cursor, as a pull would give it.
    assert await hub.pull("DE-BKA") == [{k: item[k] for k in ("cursor", "kind", "data")}]

    # Acknowledging over HTTP pushes the receipt notice to the sender's stream.
    header = parse_envelope(envelope).header
    receipt = make_receipt(
        genesis=hub.net.genesis, identity=hub.net.members["DE-BKA"].identity,
        message_id=header.message_id, envelope_hash=parse_envelope(envelope).hash,
        sender=header.sender, recipient=hub.net.members["DE-BKA"].authority, time=NOW,
    ).encode()  # fmt: skip
    body = orjson.dumps({"receipts": [canonical.b64e(receipt)], "notices": []})
    status, reply = await hub.request("DE-BKA", "POST", "/v1/mailbox/ack", body)
    assert status == 200, reply
    notice = await next_item(fr)
    assert notice["kind"] == "receipt"
    assert await hub.pull("DE-BKA") == []  # released: nothing more for DE
    await de.close()
    await fr.close()
    await eventually(lambda: hub.pusher.connections() == 0)


async def test_waiting_items_are_delivered_on_connect_after_the_cursor(make_push_hub):
    hub = await make_push_hub(PushLimits(page_size=2))  # several pages
    sent = [await hub.send("FR-PNF", "DE-BKA", content=b'{"n":%d}' % i) for i in range(5)]

    ws = await hub.stream("DE-BKA")
    items = [await next_item(ws) for _ in sent]
    assert [canonical.b64d(i["data"], what="data") for i in items] == sent
    cursors = [i["cursor"] for i in items]
    assert cursors == sorted(cursors)
    # Then live ones, in order after them.
    later = await hub.send("FR-PNF", "DE-BKA", content=b'{"n":"live"}')
    live = await next_item(ws)
    assert canonical.b64d(live["data"], what="data") == later
    assert live["cursor"] > cursors[-1]
    await ws.close()

    # Reconnecting with a cursor skips what came before it.
    again = await hub.stream("DE-BKA", after=cursors[1])
    rest = [await next_item(again) for _ in range(4)]
    assert [i["cursor"] for i in rest] == [*cursors[2:], live["cursor"]]
    with pytest.raises(asyncio.TimeoutError):
        await again.receive(timeout=0.3)  # nothing else is waiting
    await again.close()


async def test_each_stream_gets_only_its_own_items(make_push_hub):
    hub = await make_push_hub()
    de = await hub.stream("DE-BKA")
    es = await hub.stream("ES-FCC")
    await eventually(lambda: hub.pusher.connections("ES-FCC") == 1)
    to_de = await hub.send("FR-PNF", "DE-BKA")
    to_es = await hub.send("FR-PNF", "ES-FCC")
    assert canonical.b64d((await next_item(de))["data"], what="d") == to_de
    assert canonical.b64d((await next_item(es))["data"], what="d") == to_es
    with pytest.raises(asyncio.TimeoutError):
        await de.receive(timeout=0.3)
    await de.close()
    await es.close()


# --- authentication -------------------------------------------------------------------------------


async def test_refusals_close_with_4401(make_push_hub):
    hub = await make_push_hub()
    net = hub.net
    de = net.members["DE-BKA"]

    # Signed with a key that is not DE's transport key (its identity key).
    ws = await hub.client.ws_connect("/v1/stream")
    await ws.send_str(auth_message(net, de, await challenge_of(ws), key=de.identity))
    await expect_refusal(ws, CLOSE_AUTH)

    # A corrupted signature.
    ws = await hub.client.ws_connect("/v1/stream")
    good = orjson.loads(auth_message(net, de, await challenge_of(ws)))
    sig_at = good["auth"].index(";sig=") + 5
    flipped = "A" if good["auth"][sig_at] != "A" else "B"
    good["auth"] = good["auth"][:sig_at] + flipped + good["auth"][sig_at + 1 :]
    await ws.send_str(orjson.dumps(good).decode())
    await expect_refusal(ws, CLOSE_AUTH)

    # Auth made for another challenge.
    ws = await hub.client.ws_connect("/v1/stream")
    await challenge_of(ws)
    await ws.send_str(auth_message(net, de, secrets.token_bytes(32)))
    await expect_refusal(ws, CLOSE_AUTH)

    # A recorded auth message replayed on a second connection.
    first = await hub.client.ws_connect("/v1/stream")
    recorded = auth_message(net, de, await challenge_of(first))
    await first.send_str(recorded)
    await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)
    second = await hub.client.ws_connect("/v1/stream")
    await challenge_of(second)
    await second.send_str(recorded)
    await expect_refusal(second, CLOSE_AUTH)
    assert not first.closed  # the legitimate stream is untouched
    await first.close()

    # Outside the clock window.
    ws = await hub.client.ws_connect("/v1/stream")
    await ws.send_str(auth_message(net, de, await challenge_of(ws), created=NOW - 3600))
    problem = await expect_refusal(ws, CLOSE_AUTH, PROBLEM_BASE + "stale-request")
    assert problem["status"] == 401

    # A suspended member.
    await hub.suspend_it()
    ws = await hub.client.ws_connect("/v1/stream")
    await ws.send_str(auth_message(net, net.members["IT-ANAC"], await challenge_of(ws)))
    await expect_refusal(ws, CLOSE_AUTH)
    await eventually(lambda: hub.pusher.connections() == 0)


async def test_suspension_closes_an_open_stream(make_push_hub):
    hub = await make_push_hub()
    ws = await hub.stream("IT-ANAC")
    await eventually(lambda: hub.pusher.connections("IT-ANAC") == 1)
    await hub.suspend_it()
    hub.pusher.wake({"IT-ANAC"})  # any wake-up (a commit, the periodic resync) re-checks
    await expect_refusal(ws, CLOSE_AUTH)


async def test_malformed_auth_and_messages_after_auth_close_with_1008(make_push_hub):
    hub = await make_push_hub()
    malformed = PROBLEM_BASE + "malformed"
    for text, slug in (
        ('{"type":"hello"}', "malformed"),
        ('{"type":"auth","auth":"x","after":-1}', "malformed"),
        ('{"type":"auth","auth":"x","extra":1}', "malformed"),
        # the one strict JSON decoder (PROTOCOL.md §2.8)
        ("not json", "invalid-json"),
        ('{"type":"auth","type":"auth","auth":"x"}', "duplicate-key"),
        ('{"type":"auth","auth":"x","after":NaN}', "non-finite-number"),
        ('{"type":"auth","auth":"x","after":1.0}', "number-out-of-range"),
        ('{"type":"auth","auth":"\\ud800"}', "invalid-unicode"),
        ('{"type":"auth","auth":"x"} []', "trailing-data"),
        ('{"type":"auth","auth":' + "[" * 40 + "]" * 40 + "}", "nesting-too-deep"),
    ):
        ws = await hub.client.ws_connect("/v1/stream")
        await challenge_of(ws)
        await ws.send_str(text)
        await expect_refusal(ws, CLOSE_POLICY, PROBLEM_BASE + slug)
    ws = await hub.client.ws_connect("/v1/stream")
    await challenge_of(ws)
    await ws.send_bytes(b"\x00")
    await expect_refusal(ws, CLOSE_POLICY, malformed)

    ws = await hub.stream("DE-BKA")
    await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)
    await ws.send_str('{"type":"ack"}')
    await expect_refusal(ws, CLOSE_POLICY, malformed)
    await eventually(lambda: hub.pusher.connections() == 0)


async def test_oversized_frame_is_refused(make_push_hub):
    hub = await make_push_hub(PushLimits(max_msg_size=1024))
    ws = await hub.client.ws_connect("/v1/stream")
    await challenge_of(ws)
    await ws.send_str("x" * 4096)
    msg = await ws.receive(timeout=5)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    assert ws.close_code == 1009  # message too big
    await eventually(lambda: hub.pusher.connections() == 0)


async def test_no_auth_within_the_timeout_closes_the_socket(make_push_hub):
    hub = await make_push_hub(PushLimits(auth_timeout=0.3))
    ws = await hub.client.ws_connect("/v1/stream")
    await challenge_of(ws)
    problem = await expect_refusal(ws, CLOSE_AUTH)
    assert problem["detail"] == "no authentication within 0.3 s"
    await eventually(lambda: hub.pusher.connections() == 0)


async def test_plain_get_is_a_problem(make_push_hub):
    hub = await make_push_hub()
    async with hub.client.get("/v1/stream") as resp:
        assert resp.status == 400
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["type"] == PROBLEM_BASE + "malformed"


async def test_periodic_resync_finds_items_nobody_announced(make_push_hub):
    hub = await make_push_hub(PushLimits(resync=0.2))
    ws = await hub.stream("DE-BKA")
    await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)
    silent = Router(hub.service)  # another writer that tells no pusher
    await silent.start()
    try:
        envelope = seal(hub.net, "FR-PNF", "DE-BKA", state=hub.service.state)
        fr = hub.net.members["FR-PNF"]
        who = Principal(fr.transport.key_id, authority=fr.authority)
        assert (await silent.submit(envelope, who))[0] == 201
        item = await next_item(ws, timeout=2)
        assert canonical.b64d(item["data"], what="d") == envelope
    finally:
        await silent.stop()
    await ws.close()


# --- bounds ---------------------------------------------------------------------------------------


async def test_connection_caps(make_push_hub):
    hub = await make_push_hub(PushLimits(max_connections=3, max_per_member=1))
    old = await hub.stream("DE-BKA")
    await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)
    new = await hub.stream("DE-BKA")  # a newer stream of the same member replaces the old
    await expect_refusal(old, 4409, PROBLEM_BASE + "state-conflict")
    await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)
    sent = await hub.send("FR-PNF", "DE-BKA")
    assert canonical.b64d((await next_item(new))["data"], what="d") == sent

    others = [await hub.client.ws_connect("/v1/stream") for _ in range(2)]  # 3 open now
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await hub.client.ws_connect("/v1/stream")
    assert refused.value.status == 429
    for ws in [new, *others]:
        await ws.close()
    await eventually(lambda: hub.pusher.connections() == 0)


class RawStream:
    """A WebSocket client on a bare socket with a tiny receive buffer, which can stop
    reading altogether (and so never answers pings): a slow or dead node."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.sock.sendall(
            (
                "GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    def read_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._exact(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._exact(8))
        return b0 & 0x0F, self._exact(length)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = secrets.token_bytes(4)
        assert len(payload) < 65536
        head = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_close(self, code: int) -> None:
        mask = secrets.token_bytes(4)
        payload = struct.pack("!H", code)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + masked)

    def drain_until_closed(self) -> int:
        """Read everything that is left; the number of bytes (connection reset counts as end)."""
        self.sock.settimeout(10)
        total = 0
        try:
            while chunk := self.sock.recv(1 << 20):
                total += len(chunk)
        except ConnectionResetError:
            pass
        return total

    def close(self) -> None:
        self.sock.close()


@pytest.mark.slow
async def test_slow_reader_is_closed_and_nothing_is_lost(make_push_hub):
    hub = await make_push_hub(PushLimits(send_timeout=0.5, close_timeout=0.5))
    big = b'{"pad":"' + b"x" * 900_000 + b'"}'
    sent = [await hub.send("FR-PNF", "DE-BKA", content=big) for _ in range(12)]  # about 15 MB
    port = hub.client.port
    assert port is not None
    raw = await asyncio.to_thread(RawStream, port)
    try:
        opcode, challenge = await asyncio.to_thread(raw.read_frame)
        assert opcode == 1
        nonce = canonical.b64d(orjson.loads(challenge)["nonce"], what="nonce")
        raw.send_text(auth_message(hub.net, hub.net.members["DE-BKA"], nonce))
        # The node reads nothing more: the hub's sends stop draining, it gives up.
        await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)
        await eventually(lambda: hub.pusher.connections() == 0, timeout=10)
        received = await asyncio.to_thread(raw.drain_until_closed)
        assert received < sum(len(e) for e in sent)  # far from everything got out
    finally:
        raw.close()
    # Every item still waits in the mailbox.
    assert len(await hub.pull("DE-BKA")) == len(sent)


@pytest.mark.slow
async def test_a_stalled_reader_gets_1013_when_it_reads_again(make_push_hub):
    hub = await make_push_hub(PushLimits(send_timeout=0.3, close_timeout=5))
    big = b'{"pad":"' + b"x" * 900_000 + b'"}'
    sent = [await hub.send("FR-PNF", "DE-BKA", content=big) for _ in range(12)]
    port = hub.client.port
    assert port is not None
    raw = await asyncio.to_thread(RawStream, port)
    try:
        _, challenge = await asyncio.to_thread(raw.read_frame)
        nonce = canonical.b64d(orjson.loads(challenge)["nonce"], what="nonce")
        raw.send_text(auth_message(hub.net, hub.net.members["DE-BKA"], nonce))
        # Not reading: a send stalls past send_timeout and the hub starts closing.
        await eventually(lambda: [c.ws.closed for c in hub.pusher._sockets] == [True])
        items = 0
        while True:
            opcode, payload = await asyncio.to_thread(raw.read_frame)
            if opcode == 8:  # close: the hub gave up on this reader
                assert struct.unpack("!H", payload[:2])[0] == 1013
                break
            assert opcode == 1
            assert orjson.loads(payload)["type"] == "item"
            items += 1
        assert 0 < items < len(sent)
        raw.send_close(1000)
        await eventually(lambda: hub.pusher.connections() == 0)
    finally:
        raw.close()
    assert len(await hub.pull("DE-BKA")) == len(sent)


async def test_dead_peer_is_closed_by_the_heartbeat_and_a_live_one_is_kept(make_push_hub):
    hub = await make_push_hub(PushLimits(heartbeat=0.4))
    live = await hub.stream("DE-BKA")
    pushed = asyncio.create_task(next_item(live, timeout=10))  # reading answers the pings
    port = hub.client.port
    assert port is not None
    raw = await asyncio.to_thread(RawStream, port)
    try:
        _, challenge = await asyncio.to_thread(raw.read_frame)
        nonce = canonical.b64d(orjson.loads(challenge)["nonce"], what="nonce")
        raw.send_text(auth_message(hub.net, hub.net.members["ES-FCC"], nonce))
        await eventually(lambda: hub.pusher.connections("ES-FCC") == 1)
        # The raw peer never answers pings: the heartbeat closes it (nothing else would).
        await eventually(lambda: hub.pusher.connections("ES-FCC") == 0)
    finally:
        raw.close()
    # The aiohttp client answered every ping: still connected and still pushed to.
    assert hub.pusher.connections("DE-BKA") == 1
    sent = await hub.send("FR-PNF", "DE-BKA")
    assert canonical.b64d((await pushed)["data"], what="d") == sent
    await live.close()


async def test_shutdown_closes_streams_with_1001(make_push_hub):
    hub = await make_push_hub()
    async with aiohttp.ClientSession() as session:  # not the test client's: it closes its own
        ws = await session.ws_connect(hub.client.make_url("/v1/stream"))
        challenge = await challenge_of(ws)
        await ws.send_str(auth_message(hub.net, hub.net.members["DE-BKA"], challenge))
        await eventually(lambda: hub.pusher.connections("DE-BKA") == 1)
        closing = asyncio.create_task(ws.receive(timeout=20))
        await hub.client.server.close()  # the app's shutdown
        msg = await closing
        assert msg.type is WSMsgType.CLOSE
        assert msg.data == 1001


# --- two processes on one PostgreSQL database -----------------------------------------------------


@pytest.fixture
async def fresh_pg(pg_server: PgServer) -> AsyncIterator[tuple[PgServer, str]]:
    """The server and the URL of a fresh PostgreSQL database holding nothing (dropped after)."""
    name = await pg_server.create_database("push")
    try:
        yield pg_server, pg_server.url(name)
    finally:
        await pg_server.drop_database(name)


async def _prepare_database(url: str, net: DevNetwork) -> None:
    engine = db.make_engine(url)
    try:
        await db.migrate(engine)
        async with engine.begin() as conn:
            for seq, entry in enumerate(net.entries, 1):
                await conn.execute(
                    insert(db.LogEntryRow).values(
                        seq=seq, hash=entry_hash(entry), data=entry, time=GENESIS_TIME
                    )
                )
    finally:
        await engine.dispose()


async def _listeners(pg: PgServer, url: str) -> list[int]:
    conn = await pg.connect()
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            make_url(url).database,
            APPLICATION_NAME,
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


async def _terminate(pg: PgServer, pids: list[int]) -> None:
    conn = await pg.connect()
    try:
        for pid in pids:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_two_pushers_and_lost_listen_connections(
    net: DevNetwork, fresh_pg: tuple[PgServer, str]
):
    pg, url = fresh_pg
    a, engine_a = await open_push_hub(url, net)
    b, engine_b = await open_push_hub(url, net)
    try:
        ws = await a.stream("DE-BKA")
        await eventually(lambda: a.pusher.connections("DE-BKA") == 1)
        sent = await b.send("FR-PNF", "DE-BKA")  # accepted by B, pushed by A
        assert canonical.b64d((await next_item(ws))["data"], what="d") == sent

        # Both LISTEN connections die; a message committed meanwhile still arrives
        # (B retries its NOTIFY on a new connection, A pulls when it reconnects).
        listeners = await _listeners(pg, url)
        assert len(listeners) == 2
        await _terminate(pg, listeners)
        sent = await b.send("FR-PNF", "DE-BKA")
        assert canonical.b64d((await next_item(ws))["data"], what="d") == sent

        async def both_back() -> bool:
            back = await _listeners(pg, url)
            return len(back) == 2 and not set(back) & set(listeners)

        await eventually(both_back, what="the LISTEN connections coming back")
        sent = await b.send("FR-PNF", "DE-BKA")
        assert canonical.b64d((await next_item(ws))["data"], what="d") == sent
        await ws.close()
    finally:
        for hub, engine in ((a, engine_a), (b, engine_b)):
            await hub.client.close()
            await engine.dispose()


@pytest.mark.postgres
async def test_two_processes_on_one_postgresql(
    tmp_path: Path, net: DevNetwork, fresh_pg: tuple[PgServer, str]
):
    _, url = fresh_pg
    await _prepare_database(url, net)
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    pw = tmp_path / "passphrase"
    pw.write_text("push test passphrase\n")
    (hub_dir / "hub.key").write_bytes(
        seal_secret(net.hub.seed, b"push test passphrase", purpose=HUB_KEY_PURPOSE,
                    cost=KdfCost(1, 8192))
    )  # fmt: skip
    (hub_dir / "genesis.json").write_bytes(net.genesis.encode())
    # Port 0 in hub.toml: each process binds a port of its own and prints it.
    (hub_dir / "hub.toml").write_text(
        render_config(HubConfig(directory=hub_dir, database_url=url, port=0))
    )
    argv = [sys.executable, "-m", "hub", "serve", "--dir", str(hub_dir),
            "--passphrase-file", str(pw)]  # fmt: skip
    procs = [ServerProcess(argv, log=tmp_path / f"serve{i}.log", env=cli_env()) for i in (0, 1)]
    try:
        for proc in procs:
            await proc.start()
        async with aiohttp.ClientSession() as session:
            a, b = (proc.url for proc in procs)
            fr, de = net.members["FR-PNF"], net.members["DE-BKA"]

            async def signed(base: str, who: DevMember, method: str, target: str,
                             body: bytes = b"") -> tuple[int, bytes]:  # fmt: skip
                header = sign_request(
                    key=who.transport, network=net.genesis.digest, audience="hub",
                    method=method, target=target, body=body, created=int(time.time()),
                )  # fmt: skip
                async with session.request(
                    method, base + target, data=body, headers={"Globe-Auth": header}
                ) as resp:
                    return resp.status, await resp.read()

            async def stream(base: str, who: DevMember) -> aiohttp.ClientWebSocketResponse:
                ws = await session.ws_connect(base + "/v1/stream")
                challenge = await challenge_of(ws)
                await ws.send_str(auth_message(net, who, challenge, created=int(time.time())))
                return ws

            # DE's stream is on process B, FR's on process A.
            de_ws = await stream(b, de)
            fr_ws = await stream(a, fr)
            with pytest.raises(asyncio.TimeoutError):
                await de_ws.receive(timeout=0.5)  # authenticated, nothing waiting

            # A accepts the envelope; B pushes it.
            envelope = seal(net, "FR-PNF", "DE-BKA", created=int(time.time()))
            status, _ = await signed(a, fr, "POST", "/v1/messages", envelope)
            assert status == 201
            item = await next_item(de_ws)
            assert canonical.b64d(item["data"], what="data") == envelope

            # B releases it against DE's receipt; A pushes the receipt notice to FR.
            parsed = parse_envelope(envelope)
            receipt = make_receipt(
                genesis=net.genesis, identity=de.identity, message_id=parsed.header.message_id,
                envelope_hash=parsed.hash, sender=fr.authority, recipient=de.authority,
                time=int(time.time()),
            ).encode()  # fmt: skip
            body = orjson.dumps({"receipts": [canonical.b64e(receipt)], "notices": []})
            status, reply = await signed(b, de, "POST", "/v1/mailbox/ack", body)
            assert status == 200, reply
            assert orjson.loads(reply)["released"] == [str(parsed.header.message_id)]
            notice = await next_item(fr_ws)
            assert notice["kind"] == "receipt"
            await de_ws.close()
            await fr_ws.close()
        codes = [await proc.stop() for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert codes == [0, 0], [proc.log_text() for proc in procs]

"""Crash safety of message acceptance and delivery (BRIEF R10), on SQLite and PostgreSQL.

``globe-hub serve`` runs as a subprocess over a devnet hub directory.  Four
senders submit envelopes (three in flight each) to one or two of the five
members while every member pulls its mailbox and releases about two thirds of
what it finds with signed receipts.  At a seeded random moment the hub gets
SIGKILL; it is restarted and, before anything is resubmitted, every mailbox
is read back and checked:

* every acknowledged (201/200) message waits exactly once in each of its
  recipients' mailboxes, or was released there exactly once;
* an unacknowledged message is either in all of its recipients' mailboxes
  (committed, its answer lost) or in none (not committed), never twice;
* a receipt whose answer was lost released its envelope or not, atomically
  with the receipt notice the sender gets, which exists exactly once;

then unacknowledged messages are resubmitted twice at once (an impatient
client): a committed one gets 200 twice with its evidence, the others get one
201 and a 200 or a retryable 503; acknowledged ones get 200 with the same
evidence bytes.  After the last kill point every mailbox is drained and the
database is checked: one row per (sender, message id), one delivery per
(message, recipient), nothing left waiting.  (A killed process leaves the
page cache behind, so this checks "answered only after the commit", not that
the commit reached the disk: that would take power-loss testing.)

Disk full is emulated with SQLite's ``max_page_count`` (always) and made real
with a small tmpfs when this process may mount one: submissions fail with
503 ``storage``, nothing acknowledged is lost, and once space is back the
refused envelopes are accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import event, func, select

from hub import db
from hub.config import load_config
from hub.server import HubRuntime, open_hub
from hub.web import ROUTER_KEY
from protocol import canonical
from protocol.devnet import DevNetwork
from protocol.envelope import parse_envelope
from protocol.errors import PROBLEM_BASE
from protocol.ids import AuthorityId, MessageId
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind
from tests.hub._crash_client import (
    CONNECTION_ERRORS,
    MEMBERS,
    PASSPHRASE,
    Answer,
    HubProcess,
    MemberClient,
    build_network,
    load_log,
    write_hub_dir,
)
from tests.support.postgres import PgServer

#: Seeds the kill moments, recipients and which envelopes receivers release.
SEED: Final = 20261128
#: Kill points per backend, each KILL_WINDOW seconds after the traffic starts (even
#: points) or after the first new submission of that lifetime is acknowledged (odd
#: points: the traffic is flowing, not just catching up after the restart).
KILL_POINTS: Final = 10
KILL_WINDOW: Final = (0.05, 0.4)
SENDERS: Final = ("FR-PNF", "DE-BKA", "ES-FCC", "IT-GDF")
LANES: Final = 3  # submissions in flight per sender
RELEASE_SHARE: Final = 0.65  # of the envelopes a receiver pulls, how many it releases
PULL_PAGE: Final = 10  # small pages: acknowledgments (one commit per receipt) stay short
POLL: Final = 0.02  # seconds between pulls of an empty mailbox
STORAGE: Final = PROBLEM_BASE + "storage"


@dataclass(slots=True)
class Sent:
    """One envelope a sender made, and everything the hub answered for it."""

    message_id: str
    sender: str
    recipients: frozenset[str]
    data: bytes
    envelope_hash: bytes
    statuses: list[int] = field(default_factory=list)
    evidence: bytes | None = None  # set by the first 201/200: "acknowledged"
    acked_life: int = 0  # the hub lifetime whose answer acknowledged it
    unanswered_but_stored: bool = False  # its answer was lost in a crash after the commit


@dataclass(slots=True)
class KillPoint:
    """What one SIGKILL interrupted (for the report)."""

    delay_ms: int
    anchor: str  # "start" or "flowing"
    acked: int = 0  # new messages acknowledged before the kill
    unacked: int = 0  # submitted, answer lost in the crash
    unacked_stored: int = 0  # ... and yet committed
    released: int = 0  # receipts answered "released" during that lifetime
    receipts_in_doubt: int = 0  # receipts whose answer was lost
    receipts_applied: int = 0  # ... and yet committed
    restart_s: float = 0.0

    def line(self) -> str:
        return (
            f"kill {self.delay_ms:3d} ms after {self.anchor:7s}: {self.acked:2d} new acknowledged, "
            f"{self.unacked:2d} unanswered ({self.unacked_stored} stored), {self.released:2d} "
            f"released, {self.receipts_in_doubt:2d} receipts unanswered "
            f"({self.receipts_applied} applied), restart {self.restart_s:.2f} s"
        )


@dataclass(slots=True)
class Mailbox:
    """A whole mailbox, read from cursor 0."""

    envelopes: list[Sent]
    notices: list[tuple[str, str]]  # (message id, recipient) of each receipt notice
    notice_cursors: list[int]


class CrashRun:
    """The clients, the ledger of what was sent and released, and the checks."""

    def __init__(self, net: DevNetwork, hub: HubProcess, session: aiohttp.ClientSession) -> None:
        self.net = net
        self.hub = hub
        self.rng = random.Random(SEED)  # noqa: S311 - test schedule, not cryptography
        self.clients = {
            a: MemberClient(net, net.members[a], session, lambda: hub.url) for a, _ in MEMBERS
        }
        self.ledger: dict[str, Sent] = {}
        self.released: dict[str, Counter[str]] = {a: Counter() for a in self.clients}
        self.in_doubt: dict[str, set[str]] = {a: set() for a in self.clients}
        self.killed = asyncio.Event()
        self.flowing = asyncio.Event()  # a new submission was acknowledged in this lifetime
        self.life = 1
        self.kills: list[KillPoint] = []

    def kill_delays(self) -> list[float]:
        """One delay per kill point, stratified over the window, in seeded random order."""
        lo, hi = KILL_WINDOW
        step = (hi - lo) / KILL_POINTS
        delays = [lo + step * (i + self.rng.random()) for i in range(KILL_POINTS)]
        self.rng.shuffle(delays)
        return delays

    # -- traffic until the kill ------------------------------------------------------------

    async def traffic_until_kill(self, delay: float) -> None:
        """Senders and receivers run; ``delay`` seconds after the anchor the hub gets SIGKILL."""
        point = KillPoint(round(delay * 1000), "flowing" if len(self.kills) % 2 else "start")
        self.kills.append(point)
        self.killed.clear()
        self.flowing.clear()
        async with asyncio.TaskGroup() as tg:
            for name in SENDERS:
                for _ in range(LANES):
                    tg.create_task(self._send_lane(self.clients[name], self._lane_rng()))
            for client in self.clients.values():
                tg.create_task(self._receive_lane(client, self._lane_rng()))
            tg.create_task(self._kill_after(delay, point.anchor))
        point.unacked = sum(1 for s in self.ledger.values() if s.evidence is None)
        point.receipts_in_doubt = sum(len(v) for v in self.in_doubt.values())

    def _lane_rng(self) -> random.Random:
        return random.Random(self.rng.random())  # noqa: S311 - test schedule

    async def _kill_after(self, delay: float, anchor: str) -> None:
        if anchor == "flowing":
            await asyncio.wait_for(self.flowing.wait(), 30)
        await asyncio.sleep(delay)
        self.killed.set()  # first: any connection error from now on is the kill's
        assert self.hub.kill() == -signal.SIGKILL, "the hub exited before the kill"

    async def _send_lane(self, client: MemberClient, rng: random.Random) -> None:
        others = [m for a, m in self.net.members.items() if a != client.authority]
        while not self.killed.is_set():
            to = rng.sample(others, rng.choice((1, 2)))
            data = client.seal(to, orjson.dumps({"n": len(self.ledger), "life": self.life}))
            env = parse_envelope(data)
            sent = Sent(
                str(env.header.message_id), client.authority,
                frozenset(str(m.authority) for m in to), data, env.hash,
            )  # fmt: skip
            self.ledger[sent.message_id] = sent
            try:
                answer = await client.request("POST", "/v1/messages", data)
            except CONNECTION_ERRORS:
                if self.killed.is_set():
                    return
                raise
            assert answer.status == 201, (answer.status, answer.body[:300])
            self._acknowledged(sent, answer)
            self.kills[-1].acked += 1
            self.flowing.set()

    async def _receive_lane(self, client: MemberClient, rng: random.Random) -> None:
        me = client.authority
        cursor = 0
        pulled: set[str] = set()
        while not self.killed.is_set():
            try:
                answer = await client.request(
                    "GET", f"/v1/mailbox?after={cursor}&limit={PULL_PAGE}"
                )
            except CONNECTION_ERRORS:
                if self.killed.is_set():
                    return
                raise
            page = answer.json()
            if not page["items"]:
                await asyncio.sleep(POLL)
                continue
            take: list[Sent] = []
            for item in page["items"]:
                assert item["cursor"] > cursor
                if item["kind"] == "envelope":
                    sent = self._waiting(me, item)
                    assert sent.message_id not in pulled, "one mailbox item per message"
                    pulled.add(sent.message_id)
                    if rng.random() < RELEASE_SHARE:
                        take.append(sent)
            cursor = page["cursor"]
            if take:
                ids = [s.message_id for s in take]
                body = orjson.dumps(
                    {"receipts": [_receipt(client, s) for s in take], "notices": []}
                )
                self.in_doubt[me].update(ids)
                try:
                    answer = await client.request("POST", "/v1/mailbox/ack", body)
                except CONNECTION_ERRORS:
                    if self.killed.is_set():
                        return
                    raise
                assert answer.json() == {"released": ids, "refused": [], "notices": 0}
                self.in_doubt[me].difference_update(ids)
                self.released[me].update(ids)
                self.kills[-1].released += len(ids)

    def _acknowledged(self, sent: Sent, answer: Answer) -> None:
        """Check a 201/200 and its acceptance evidence; record the acknowledgment."""
        assert answer.status in (200, 201), (answer.status, answer.body[:300])
        assert answer.content_type == "application/json"
        ev = Evidence.decode(answer.body, self.net.genesis)
        assert (ev.kind, str(ev.message_id), ev.envelope_hash, str(ev.sender)) == (
            EvidenceKind.ACCEPTED, sent.message_id, sent.envelope_hash, sent.sender,
        )  # fmt: skip
        assert {str(r) for r in ev.recipients} == sent.recipients
        if sent.evidence is None:
            sent.evidence = answer.body
            sent.acked_life = self.life
        else:
            assert answer.body == sent.evidence, "the same evidence for every acknowledgment"
        sent.statuses.append(answer.status)
        assert sent.statuses.count(201) <= 1, ("accepted as new twice", sent.statuses)

    def _waiting(self, me: str, item: dict[str, Any]) -> Sent:
        """The ledger entry of a mailbox envelope item, checked."""
        data = canonical.b64d(item["data"], what="item")
        sent = self.ledger[str(parse_envelope(data).header.message_id)]
        assert sent.data == data
        assert me in sent.recipients
        assert self.released[me][sent.message_id] == 0, "a released envelope came back"
        return sent

    # -- after the restart ------------------------------------------------------------------

    async def restart(self) -> None:
        """Start the hub again (the next lifetime)."""
        self.life += 1
        began = time.monotonic()  # reported, never asserted
        await self.hub.start()
        if self.kills:
            self.kills[-1].restart_s = time.monotonic() - began

    async def pull_all(self, client: MemberClient) -> Mailbox:
        """The member's whole mailbox, page by page from cursor 0."""
        me = client.authority
        box = Mailbox([], [], [])
        cursor = 0
        while True:
            page = (await client.request("GET", f"/v1/mailbox?after={cursor}&limit=500")).json()
            if not page["items"]:
                return box
            for item in page["items"]:
                assert item["cursor"] > cursor
                if item["kind"] == "envelope":
                    box.envelopes.append(self._waiting(me, item))
                    continue
                assert item["kind"] == "receipt", item["kind"]
                notice = orjson.loads(canonical.b64d(item["data"], what="notice"))
                assert sorted(notice) == ["evidence", "receipt"]
                receipt = DeliveryReceipt.decode(
                    canonical.b64d(notice["receipt"], what="receipt"), self.net.directory
                )
                ev = Evidence.decode(
                    canonical.b64d(notice["evidence"], what="ev"), self.net.genesis
                )
                assert str(receipt.sender) == me
                assert (ev.kind, ev.message_id, ev.envelope_hash, ev.recipients) == (
                    EvidenceKind.DELIVERED, receipt.message_id, receipt.envelope_hash,
                    (receipt.recipient,),
                )  # fmt: skip
                box.notices.append((str(receipt.message_id), str(receipt.recipient)))
                box.notice_cursors.append(item["cursor"])
            cursor = page["cursor"]

    async def check_mailboxes(self) -> dict[str, Mailbox]:
        """Read every mailbox back and check it against the ledger (see the module doc)."""
        boxes = dict(
            zip(
                self.clients,
                await asyncio.gather(*(self.pull_all(c) for c in self.clients.values())),
                strict=True,
            )
        )
        waiting: dict[str, set[str]] = {}
        for me, box in boxes.items():
            ids = [s.message_id for s in box.envelopes]
            assert len(ids) == len(set(ids)), ("an envelope waits twice", me)
            waiting[me] = set(ids)
            # A receipt whose answer the crash swallowed: applied iff its envelope left.
            for mid in self.in_doubt[me]:
                if mid not in waiting[me]:
                    self.released[me][mid] += 1
                    self.kills[-1].receipts_applied += 1
            self.in_doubt[me].clear()
            assert set(self.released[me].values()) <= {1}, ("released twice", me)
            assert not waiting[me] & set(self.released[me]), ("released yet waiting", me)
        for sent in self.ledger.values():
            mid = sent.message_id
            found = [r for r in sent.recipients if mid in waiting[r] or self.released[r][mid]]
            if sent.evidence is not None:
                assert set(found) == sent.recipients, ("acknowledged message lost", sent.message_id)
            elif found:
                assert set(found) == sent.recipients, ("stored for some recipients only", found)
                if not sent.unanswered_but_stored:
                    sent.unanswered_but_stored = True
                    self.kills[-1].unacked_stored += 1
        for sender, box in boxes.items():  # one receipt notice per release, exactly
            assert len(box.notices) == len(set(box.notices)), ("a receipt notice twice", sender)
            assert set(box.notices) == {
                (mid, r) for r, done in self.released.items() for mid in done
                if self.ledger[mid].sender == sender
            }, ("receipt notices differ from the releases", sender)  # fmt: skip
        return boxes

    async def resubmit(self) -> None:
        """Unacknowledged messages twice at once, then retried; acknowledged ones once."""
        gate = asyncio.Semaphore(16)

        async def submit(sent: Sent) -> Answer:
            async with gate:
                answer = await self.clients[sent.sender].request("POST", "/v1/messages", sent.data)
            if answer.status in (200, 201):
                self._acknowledged(sent, answer)
            return answer

        async def impatient(sent: Sent) -> None:
            first = await asyncio.gather(submit(sent), submit(sent))
            statuses = sorted(a.status for a in first)
            if sent.unanswered_but_stored:
                assert statuses == [200, 200], statuses
            else:
                assert statuses in ([200, 201], [201, 503]), statuses
            for answer in first:
                if answer.status == 503:  # the loser of the race: retry
                    assert answer.problem_type() == STORAGE
                    assert (await submit(sent)).status == 200

        async def again(sent: Sent) -> None:
            assert (await submit(sent)).status == 200

        unacked = [s for s in self.ledger.values() if s.evidence is None]
        recent = [s for s in self.ledger.values() if s.acked_life == self.life - 1]
        await asyncio.gather(*map(impatient, unacked), *map(again, recent))
        assert all(s.evidence is not None for s in self.ledger.values())

    async def drain(self) -> None:
        """Release everything; then only the receipt notices are left, one per release."""
        for me, client in self.clients.items():
            box = await self.pull_all(client)
            for i in range(0, len(box.envelopes), 100):
                chunk = box.envelopes[i : i + 100]
                ids = [s.message_id for s in chunk]
                body = orjson.dumps(
                    {"receipts": [_receipt(client, s) for s in chunk], "notices": []}
                )
                answer = await client.request("POST", "/v1/mailbox/ack", body)
                assert answer.json() == {"released": ids, "refused": [], "notices": 0}
                self.released[me].update(ids)
        pairs = {(s.message_id, r) for s in self.ledger.values() for r in s.recipients}
        assert {(mid, r) for r, done in self.released.items() for mid in done} == pairs
        assert all(set(done.values()) == {1} for done in self.released.values() if done)
        boxes = await self.check_mailboxes()
        assert sum(len(b.notices) for b in boxes.values()) == len(pairs)
        for me, box in boxes.items():  # drop the notices: every mailbox ends empty
            assert box.envelopes == []
            cursors = box.notice_cursors
            for i in range(0, len(cursors), 100):  # an acknowledgement takes at most 500
                body = orjson.dumps({"receipts": [], "notices": cursors[i : i + 100]})
                answer = await self.clients[me].request("POST", "/v1/mailbox/ack", body)
                dropped = len(cursors[i : i + 100])
                assert answer.json() == {"released": [], "refused": [], "notices": dropped}
            assert (await self.pull_all(self.clients[me])) == Mailbox([], [], [])
        for sent in self.ledger.values():  # exactly one 201, unless a crash swallowed it
            assert sent.statuses.count(201) == (0 if sent.unanswered_but_stored else 1)

    async def check_database(self, url: str) -> None:
        """One row per (sender, message id), one delivery per (message, recipient)."""
        engine = db.make_engine(url)
        try:
            async with engine.connect() as c:
                messages = (
                    await c.execute(
                        select(
                            db.Message.sender, db.Message.message_id,
                            db.Message.envelope_hash, db.Message.evidence,
                        )
                    )
                ).all()  # fmt: skip
                deliveries = (
                    await c.execute(
                        select(db.Message.message_id, db.Delivery.recipient, db.Delivery.outcome)
                        .join(db.Message, db.Message.id == db.Delivery.message)
                    )
                ).all()  # fmt: skip
                left = (await c.execute(select(func.count()).select_from(db.MailboxItem))).one()
                conflicts = (
                    await c.execute(select(func.count()).select_from(db.ConflictRecord))
                ).one()
        finally:
            await engine.dispose()
        assert sorted((m.sender, m.message_id) for m in messages) == sorted(
            (s.sender, s.message_id) for s in self.ledger.values()
        )
        for m in messages:
            sent = self.ledger[m.message_id]
            assert (m.envelope_hash, m.evidence) == (sent.envelope_hash, sent.evidence)
        assert sorted(tuple(d) for d in deliveries) == sorted(
            (s.message_id, r, "delivered") for s in self.ledger.values() for r in s.recipients
        )
        assert (tuple(left), tuple(conflicts)) == ((0,), (0,))

    def report(self, backend: str) -> str:
        total = len(self.ledger)
        lines = [f"{backend}: {total} messages, {len(self.kills)} kill points"]
        lines += ["  " + k.line() for k in self.kills]
        return "\n".join(lines)


def _receipt(client: MemberClient, sent: Sent) -> str:
    return client.receipt(
        MessageId.parse(sent.message_id), sent.envelope_hash, AuthorityId.parse(sent.sender)
    )


# --- the crash test -----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    pg: PgServer = request.getfixturevalue("pg_server")  # a failure if there is none
    name = await pg.create_database("crash")
    try:
        yield pg.url(name)
    finally:
        await pg.drop_database(name)


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_message_and_duplicates_none(
    database_url: str, tmp_path: Path
) -> None:
    net = build_network()
    hub_dir = tmp_path / "hub"
    passphrase = write_hub_dir(hub_dir, net, database_url)
    await load_log(database_url, net)
    hub = HubProcess(hub_dir, passphrase, tmp_path / "serve.log")
    began = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        run = CrashRun(net, hub, session)
        try:
            await hub.start()
            for delay in run.kill_delays():
                await run.traffic_until_kill(delay)
                await run.restart()
                await run.check_mailboxes()
                await run.resubmit()
            await run.drain()
            assert await hub.stop() == 0, hub.log_text()
        finally:
            hub.kill()
    await run.check_database(database_url)
    backend = database_url.split(":", 1)[0]
    print(f"\n{run.report(backend)}\n  {time.monotonic() - began:.1f} s in all")
    assert "Traceback" not in hub.log_text(), hub.log_text()
    assert sum(k.acked for k in run.kills) > 0
    assert sum(k.unacked for k in run.kills) > 0, "no kill hit a submission in flight"


# --- disk full ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _served(
    net: DevNetwork, hub_dir: Path, cap: list[int] | None = None
) -> AsyncIterator[tuple[HubRuntime, dict[str, MemberClient]]]:
    """The hub of ``hub_dir`` in process, over loopback HTTP, and a client per member.

    With ``cap``, every new database connection gets ``PRAGMA max_page_count =
    cap[0]`` while ``cap`` is not empty: the database file cannot grow.
    """
    runtime = await open_hub(load_config(hub_dir), PASSPHRASE.encode())
    if cap is not None:

        @event.listens_for(runtime.engine.sync_engine, "connect")
        def _max_pages(dbapi_connection: Any, _record: Any) -> None:
            if cap:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA max_page_count = {int(cap[0])}")
                cursor.close()

    async with TestServer(runtime.app) as server, aiohttp.ClientSession() as session:
        base = f"http://{server.host}:{server.port}"
        yield (
            runtime,
            {a: MemberClient(net, m, session, lambda: base) for a, m in net.members.items()},
        )


async def _mailbox(client: MemberClient) -> list[str]:
    """The message ids waiting for ``client``, in order; each at most once."""
    page = (await client.request("GET", "/v1/mailbox?after=0&limit=500")).json()
    assert len(page["items"]) < 500
    ids = [
        str(parse_envelope(canonical.b64d(i["data"], what="item")).header.message_id)
        for i in page["items"]
    ]
    assert all(i["kind"] == "envelope" for i in page["items"])
    assert len(ids) == len(set(ids))
    return ids


async def _disk_full(
    net: DevNetwork,
    hub_dir: Path,
    fill: Callable[[HubRuntime], Awaitable[int]],
    make_room: Callable[[HubRuntime], Awaitable[None]],
    cap: list[int] | None = None,
) -> None:
    """Acknowledge some envelopes, fill the disk, submit more, make room, restart.

    ``fill(runtime)`` makes the database unable to grow and returns the size an
    envelope must exceed to need new space; ``make_room(runtime)`` undoes it.
    """
    sender, other = "FR-PNF", "IT-GDF"
    de, es = net.members["DE-BKA"], net.members["ES-FCC"]
    acked: dict[str, tuple[bytes, bytes]] = {}  # message id -> (envelope, evidence)
    async with _served(net, hub_dir, cap) as (runtime, clients):

        async def submit(name: str, data: bytes) -> Answer:
            return await clients[name].request("POST", "/v1/messages", data)

        for i in range(6):
            data = clients[sender].seal([de, es][: 1 + i % 2], b'{"n":%d}' % i)
            answer = await submit(sender, data)
            assert answer.status == 201, answer.body[:300]
            acked[str(parse_envelope(data).header.message_id)] = (data, answer.body)
        depth = runtime.app[ROUTER_KEY].depth()

        room = await fill(runtime)
        pad = orjson.dumps({"pad": "x" * (room + 4096)})
        refused = [(sender, clients[sender].seal([de, es], pad)) for _ in range(3)]
        refused.append((other, clients[other].seal([de], pad)))
        for attempt in range(2):  # refused, and refused again: nothing was half-stored
            answers = await asyncio.gather(*(submit(name, data) for name, data in refused))
            assert [(a.status, a.problem_type()) for a in answers] == [(503, STORAGE)] * 4, attempt
        for data, evidence in acked.values():  # the acknowledged ones are still there
            answer = await submit(sender, data)
            assert (answer.status, answer.body) == (200, evidence)
        assert await _mailbox(clients["DE-BKA"]) == list(acked)
        assert await _mailbox(clients["ES-FCC"]) == list(acked)[1::2]
        assert runtime.app[ROUTER_KEY].depth() == depth  # failed commits count for nothing

        await make_room(runtime)  # the same envelopes, retried, are accepted now
        answers = await asyncio.gather(*(submit(name, data) for name, data in refused))
        assert [a.status for a in answers] == [201] * 4
        for (_, data), answer in zip(refused, answers, strict=True):
            acked[str(parse_envelope(data).header.message_id)] = (data, answer.body)

    first = list(acked)[:6]  # submitted one by one; the last four concurrently
    late = [str(parse_envelope(data).header.message_id) for _, data in refused]
    async with _served(net, hub_dir) as (runtime, clients):  # a new engine over the same file
        de_box, es_box = await _mailbox(clients["DE-BKA"]), await _mailbox(clients["ES-FCC"])
        assert (de_box[:6], sorted(de_box[6:])) == (first, sorted(late))
        assert (es_box[:3], sorted(es_box[3:])) == (first[1::2], sorted(late[:3]))
        for (name, data), mid in zip([*[(sender, acked[m][0]) for m in first], *refused],
                                     [*first, *late], strict=True):  # fmt: skip
            answer = await clients[name].request("POST", "/v1/messages", data)
            assert (answer.status, answer.body) == (200, acked[mid][1])
        async with runtime.engine.connect() as c:
            check = (await c.exec_driver_sql("PRAGMA integrity_check")).scalar_one()
        assert check == "ok"


async def test_disk_full_refuses_submissions_retryably_and_loses_nothing(tmp_path: Path) -> None:
    """SQLite at ``max_page_count``: SQLITE_FULL on every commit that needs a new page."""
    net = build_network()
    hub_dir = tmp_path / "hub"
    url = f"sqlite+aiosqlite:///{hub_dir / 'hub.db'}"
    write_hub_dir(hub_dir, net, url)
    await load_log(url, net)
    cap: list[int] = []

    async def fill(runtime: HubRuntime) -> int:
        async with runtime.engine.connect() as c:
            pages, free, size = [
                (await c.exec_driver_sql(f"PRAGMA {p}")).scalar_one()
                for p in ("page_count", "freelist_count", "page_size")
            ]
        cap[:] = [pages]
        await runtime.engine.dispose()  # pooled connections go; new ones get the cap
        return int(free) * int(size)

    async def make_room(runtime: HubRuntime) -> None:
        cap.clear()
        await runtime.engine.dispose()

    await _disk_full(net, hub_dir, fill, make_room, cap)


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs, or a skip where this process may not mount one."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    ran = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if ran.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {ran.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_real_enospc_refuses_submissions_retryably_and_loses_nothing(
    small_filesystem: Path,
) -> None:
    """The hub directory on a tmpfs that a filler file makes full (ENOSPC)."""
    net = build_network()
    hub_dir = small_filesystem / "hub"
    url = f"sqlite+aiosqlite:///{hub_dir / 'hub.db'}"
    write_hub_dir(hub_dir, net, url)
    await load_log(url, net)
    filler = small_filesystem / "filler"

    async def fill(_runtime: HubRuntime) -> int:
        with filler.open("wb", buffering=0) as f:
            for chunk in (1 << 20, 4096, 1):
                with contextlib.suppress(OSError):
                    while f.write(b"\0" * chunk):
                        pass
        with pytest.raises(OSError, match="No space left") as full:
            (small_filesystem / "probe").write_bytes(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
        return 0

    async def make_room(_runtime: HubRuntime) -> None:
        filler.unlink()
        (small_filesystem / "probe").unlink(missing_ok=True)

    await _disk_full(net, hub_dir, fill, make_room)

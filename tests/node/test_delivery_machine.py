"""The outbox and the delivery pump, driven with a fake clock and fake transports.

No hub and no peer run here: :class:`FakeHub` and :class:`FakePeers` stand in
for the transports the node injects, answering with real signatures from a
deterministic development network, so each test states exactly what the
transports did and checks exactly what the node stored (as aioquic and h11 are
tested: the machine, its inputs, its outputs).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from globe_io.errors import MailboxFull, NotFound
from globe_io.hubapi import BATCH_MAX_ITEMS, ProfilePublished
from globe_io.web import MethodNotAllowed
from globe_node import db
from globe_node.alerts import Alerts
from globe_node.audit import AuditLog
from globe_node.config import NodeConfig
from globe_node.context import NodeContext
from globe_node.delivery import BATCH_RETRY, PEER_RETRY, Deliverer
from globe_node.directory import Directory
from globe_node.keys import NodeKeys
from globe_node.outbox import Outbox
from globe_node.peerheads import PeerHeads
from globe_node.prekeys import Prekeys
from globe_node.states import (
    DELIVERY_TRANSITIONS,
    Delivery,
    DeliveryEvent,
    next_attempt,
    transition,
)
from globe_node.store import Store
from globe_node.uploads import Uploads
from protocol.devnet import GENESIS_TIME, DevNetwork, build_devnet
from protocol.envelope import parse_envelope
from protocol.errors import AuthError, GlobeError, MalformedError, TransportError
from protocol.ids import AuthorityId
from protocol.messages import Handling, Kind, MessageContent, Tlp, Urgency
from protocol.receipts import Evidence, EvidenceKind, make_evidence, make_receipt
from tests.node.helpers import cases_of
from tests.support.waiting import eventually

NOW = GENESIS_TIME + 7200

# --- the pure parts --------------------------------------------------------------------------


def test_a_receipt_always_wins_and_delivered_is_final() -> None:
    for state in Delivery:
        after = transition(state, DeliveryEvent.RECEIPT)
        assert after == (None if state is Delivery.DELIVERED else Delivery.DELIVERED)
    for event in DeliveryEvent:
        assert transition(Delivery.DELIVERED, event) is None


@pytest.mark.parametrize(
    ("state", "event", "after"),
    [
        (Delivery.QUEUED, DeliveryEvent.HUB_ACCEPTED, Delivery.SENT),
        (Delivery.SENT, DeliveryEvent.HUB_ACCEPTED, None),
        (Delivery.FAILED, DeliveryEvent.HUB_ACCEPTED, None),
        (Delivery.QUEUED, DeliveryEvent.REFUSED, Delivery.FAILED),
        (Delivery.SENT, DeliveryEvent.REFUSED, None),
        (Delivery.QUEUED, DeliveryEvent.EXPIRED, Delivery.FAILED),
        (Delivery.SENT, DeliveryEvent.EXPIRED, None),
        (Delivery.SENT, DeliveryEvent.NON_DELIVERY, Delivery.FAILED),
        (Delivery.QUEUED, DeliveryEvent.NON_DELIVERY, Delivery.FAILED),
        (Delivery.FAILED, DeliveryEvent.RETRY, Delivery.QUEUED),
        (Delivery.QUEUED, DeliveryEvent.RETRY, Delivery.QUEUED),
        (Delivery.SENT, DeliveryEvent.RETRY, None),
        (Delivery.FAILED, DeliveryEvent.RECEIPT, Delivery.DELIVERED),
    ],
)
def test_the_transition_table(
    state: Delivery, event: DeliveryEvent, after: Delivery | None
) -> None:
    assert transition(state, event) == after


def test_every_event_has_exactly_one_target() -> None:
    assert set(DELIVERY_TRANSITIONS) == set(DeliveryEvent)


@pytest.mark.parametrize(
    ("attempts", "jitter", "expected"),
    [
        (1, 1.0, NOW + 2 + 1),  # base 1 s * 2**1
        (3, 1.0, NOW + 8 + 1),
        (3, 0.5, NOW + 4 + 1),
        (30, 1.0, NOW + 300 + 1),  # capped at retry_max
        (0, 0.5, NOW + 0 + 1),  # never now: at least one second later
    ],
)
def test_next_attempt(attempts: int, jitter: float, expected: int) -> None:
    assert next_attempt(NOW, attempts, base=1.0, cap=300.0, jitter=lambda: jitter) == expected


# --- a node's units over fakes ----------------------------------------------------------------


class NoJitter(random.Random):
    """Randomness pinned so retries land at exact times: jitter is always its maximum."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class Clock:
    """A settable wall clock and monotonic clock."""

    wall: float = float(NOW)
    mono: float = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@dataclass
class FakeHub:
    """The hub as delivery and prekeys see it: scripted answers, real signatures."""

    net: DevNetwork
    clock: Clock
    refuse: list[GlobeError] = field(default_factory=list)
    submitted: list[bytes] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    batch_refuse: list[GlobeError] = field(default_factory=list)  # refusals of whole batches

    async def submit_message(self, envelope: bytes) -> tuple[int, bytes]:
        self.submitted.append(envelope)
        if self.refuse:
            raise self.refuse.pop(0)
        env = parse_envelope(envelope)
        ev = make_evidence(
            genesis=self.net.genesis, hub=self.net.hub, kind=EvidenceKind.ACCEPTED,
            message_id=env.header.message_id, envelope_hash=env.hash, sender=env.header.sender,
            recipients=[r.authority for r in env.header.recipients], time=int(self.clock.wall),
        )  # fmt: skip
        return 201, ev.signed.encode()

    async def submit_messages(
        self, envelopes: Sequence[bytes]
    ) -> list[tuple[int, bytes] | GlobeError]:
        """The batch route: each envelope judged alone, in order (scripted refusals too)."""
        self.batches.append(len(envelopes))
        if self.batch_refuse:
            raise self.batch_refuse.pop(0)
        out: list[tuple[int, bytes] | GlobeError] = []
        for e in envelopes:
            try:
                out.append(await self.submit_message(e))
            except GlobeError as exc:
                out.append(exc)
        return out

    async def put_blob(self, blob_id: str, path: Path, *, progress: Any = None) -> object:
        raise AssertionError("no attachments in these tests")

    async def put_prekey(self, prekey: bytes) -> object:
        return {}

    async def get_prekeys(self, authority: AuthorityId) -> list[bytes]:
        return [self.net.members[str(authority)].signed_prekey.signed.encode()]

    async def log_entries(self, since: int = 0) -> list[bytes]:
        return self.net.entries[since:]

    async def checkpoint(self) -> bytes:
        raise TransportError("not used")

    async def publish_profile(self, profile: bytes) -> ProfilePublished:
        raise AssertionError("no profiles in this harness")


@dataclass
class FakePeers:
    """Peers' listeners: a receipt signed by the recipient, or a scripted failure."""

    net: DevNetwork
    clock: Clock
    fail: list[GlobeError] = field(default_factory=list)
    posted: list[tuple[str, str]] = field(default_factory=list)

    async def post(self, endpoint: str, peer: AuthorityId, path: str, body: bytes) -> bytes:
        self.posted.append((endpoint, str(peer)))
        if self.fail:
            raise self.fail.pop(0)
        env = parse_envelope(body)
        return make_receipt(
            genesis=self.net.genesis, identity=self.net.members[str(peer)].identity,
            message_id=env.header.message_id, envelope_hash=env.hash, sender=env.header.sender,
            recipient=peer, time=int(self.clock.wall),
        ).encode()  # fmt: skip

    async def close(self) -> None:
        return None


@dataclass
class Units:
    ctx: NodeContext
    outbox: Outbox
    deliverer: Deliverer
    hub: FakeHub
    peers: FakePeers
    clock: Clock
    directory: Directory

    async def states(self, mid: str) -> dict[str, tuple[str, str | None, int]]:
        async with self.ctx.store.read() as s:
            rows = (
                await s.execute(select(db.OutRecipient).where(db.OutRecipient.message_id == mid))
            ).scalars()
            return {r.recipient: (r.state, r.via, r.attempts) for r in rows}

    async def row(self, mid: str, who: str) -> db.OutRecipient:
        async with self.ctx.store.read() as s:
            row = await s.get(db.OutRecipient, (mid, who))
            assert row is not None
            return row


@pytest.fixture
async def units(tmp_path: Path) -> AsyncIterator[Units]:
    net = build_devnet(b"delivery machine", members=[])
    fr = net.admit("FR-PNF", "P")
    net.admit("BR-PF", "B", endpoint="https://br.example")
    net.admit("KE-EACC", "K")  # publishes no endpoint: always through the hub
    keys = NodeKeys(fr.identity, fr.transport, fr.ka, bytes(range(32)))
    config = NodeConfig(directory=tmp_path, authority="FR-PNF", hub_url="http://hub.invalid")
    engine = db.make_engine(tmp_path / "node.db")
    await db.migrate(engine)
    clock = Clock()
    ctx = NodeContext(
        config=config, keys=keys, genesis=net.genesis, store=Store(engine),
        clock=lambda: clock.wall, monotonic=lambda: clock.mono, rng=NoJitter(),
    )  # fmt: skip
    hub, peers = FakeHub(net, clock), FakePeers(net, clock)
    alerts = Alerts(ctx)
    directory = Directory(ctx, hub, alerts, PeerHeads(ctx.store, alerts.record))
    directory.state.extend(net.entries)
    directory.checkpoint_time = NOW  # confirmed just now
    prekeys = Prekeys(ctx, hub, directory)
    staging = Uploads(
        me=ctx.me, store=ctx.store, cipher=ctx.cipher, blob_path=ctx.blob_path, lifetime=3600,
        quota=1 << 20, clock=ctx.now,
    )  # fmt: skip
    outbox = Outbox(ctx=ctx, directory=directory, prekeys=prekeys, staging=staging,
                    audit=AuditLog(ctx.store), cases=cases_of(ctx), wake=lambda: None)  # fmt: skip
    deliverer = Deliverer(ctx=ctx, directory=directory, outbox=outbox, hub=hub, peers=peers)
    try:
        yield Units(ctx, outbox, deliverer, hub, peers, clock, directory)
    finally:
        await ctx.store.close()


def message(subject: str = "s") -> MessageContent:
    return MessageContent(
        kind=Kind.INFORMATION, subject=subject, body="b", language="en",
        urgency=Urgency.ROUTINE, handling=Handling(Tlp.AMBER),
    )  # fmt: skip


TO = [AuthorityId.parse("BR-PF"), AuthorityId.parse("KE-EACC")]


async def test_direct_to_a_peer_with_an_endpoint_and_through_the_hub_otherwise(
    units: Units,
) -> None:
    mid = str(await units.outbox.send(TO, message(), user="alice"))
    assert await units.states(mid) == {"BR-PF": ("queued", None, 0), "KE-EACC": ("queued", None, 0)}
    assert await units.deliverer.deliver_due() == 0.0
    assert await units.states(mid) == {
        "BR-PF": ("delivered", "direct", 0), "KE-EACC": ("sent", "hub", 0),
    }  # fmt: skip
    assert units.peers.posted == [("https://br.example", "BR-PF")]
    assert len(units.hub.submitted) == 1
    # nothing is due any more: the next pass sleeps (30 s: nothing queued)
    assert await units.deliverer.deliver_due() == 30.0


async def test_a_peer_that_fails_is_relayed_and_skipped_for_a_while(units: Units) -> None:
    units.peers.fail = [TransportError("connection refused")]
    first = str(await units.outbox.send(TO[:1], message("one"), user="alice"))
    await units.deliverer.deliver_due()
    assert await units.states(first) == {"BR-PF": ("sent", "hub", 0)}
    second = str(await units.outbox.send(TO[:1], message("two"), user="alice"))
    await units.deliverer.deliver_due()  # the peer is not tried again yet
    assert len(units.peers.posted) == 1
    assert await units.states(second) == {"BR-PF": ("sent", "hub", 0)}
    units.clock.advance(PEER_RETRY + 1)
    third = str(await units.outbox.send(TO[:1], message("three"), user="alice"))
    await units.deliverer.deliver_due()
    assert len(units.peers.posted) == 2  # tried directly again, and it answered
    assert await units.states(third) == {"BR-PF": ("delivered", "direct", 0)}


async def test_an_unreachable_hub_backs_off_by_the_schedule(units: Units) -> None:
    units.hub.refuse = [TransportError("hub down"), TransportError("hub down")]
    mid = str(await units.outbox.send(TO[1:], message(), user="alice"))
    await units.deliverer.deliver_due()
    row = await units.row(mid, "KE-EACC")
    assert (row.state, row.attempts, row.next_attempt, row.last_error) == (
        "queued", 1, NOW + 2 + 1, "hub down",
    )  # fmt: skip
    assert units.directory.hub_reachable is False
    # not due before its time: the pump sleeps until then
    assert await units.deliverer.deliver_due() == 3.0
    assert len(units.hub.submitted) == 1
    units.clock.advance(3)
    await units.deliverer.deliver_due()
    row = await units.row(mid, "KE-EACC")
    assert (row.attempts, row.next_attempt) == (2, NOW + 3 + 4 + 1)
    units.clock.advance(10)
    await units.deliverer.deliver_due()
    assert await units.states(mid) == {"KE-EACC": ("sent", "hub", 2)}
    assert units.directory.hub_reachable is True


async def test_a_refusal_for_good_fails_the_recipient_and_keeps_the_evidence(
    units: Units,
) -> None:
    mid = str(await units.outbox.send(TO[1:], message(), user="alice"))
    envelope = (await units.ctx.store.out_message(mid)).envelope  # type: ignore[union-attr]
    env = parse_envelope(envelope)
    refusal = MalformedError("recipient not active")
    refusal.evidence = make_evidence(
        genesis=units.hub.net.genesis, hub=units.hub.net.hub, kind=EvidenceKind.REJECTED,
        message_id=env.header.message_id, envelope_hash=env.hash, sender=env.header.sender,
        recipients=[TO[1]], time=NOW, reason="malformed",
    ).signed.encode()  # fmt: skip
    units.hub.refuse = [refusal]
    await units.deliverer.deliver_due()
    row = await units.row(mid, "KE-EACC")
    assert (row.state, row.last_error, row.evidence) == (
        "failed", "recipient not active", refusal.evidence,
    )  # fmt: skip
    # a retry queues it again; a late receipt would still win over "failed"
    assert await units.outbox.retry(mid, "alice") == 1
    assert (await units.row(mid, "KE-EACC")).state == "queued"


async def test_an_expired_message_fails_without_leaving(units: Units) -> None:
    mid = str(await units.outbox.send(TO[1:], message(), user="alice"))
    units.clock.advance(units.ctx.config.message_lifetime + 1)
    await units.deliverer.deliver_due()
    row = await units.row(mid, "KE-EACC")
    assert (row.state, row.last_error) == ("failed", "expired")
    assert units.hub.submitted == []


async def test_a_late_event_never_undoes_a_receipt(units: Units) -> None:
    mid = str(await units.outbox.send(TO[:1], message(), user="alice"))
    await units.deliverer.deliver_due()
    assert (await units.row(mid, "BR-PF")).state == "delivered"
    store = units.ctx.store
    for event in (DeliveryEvent.HUB_ACCEPTED, DeliveryEvent.NON_DELIVERY, DeliveryEvent.REFUSED,
                  DeliveryEvent.EXPIRED, DeliveryEvent.RETRY):  # fmt: skip
        assert await store.apply(mid, ["BR-PF"], event, error="late") == 0
    row = await units.row(mid, "BR-PF")
    assert (row.state, row.via, row.last_error) == ("delivered", "direct", None)


async def test_the_same_bytes_on_every_attempt(units: Units) -> None:
    units.hub.refuse = [TransportError("x"), TransportError("y")]
    await units.outbox.send(TO[1:], message(), user="alice")
    for _ in itertools.repeat(None, 3):
        await units.deliverer.deliver_due()
        units.clock.advance(600)
    assert len(units.hub.submitted) == 3
    assert len(set(units.hub.submitted)) == 1


# --- batched submission (PROTOCOL.md §10.6) ---------------------------------------------------


async def send_many(units: Units, n: int) -> list[str]:
    return [str(await units.outbox.send(TO[1:], message(f"m{i}"), user="alice")) for i in range(n)]


def submitted_ids(units: Units) -> list[str]:
    return [str(parse_envelope(e).header.message_id) for e in units.hub.submitted]


async def test_a_pass_relays_its_messages_in_one_batch(
    units: Units, caplog: pytest.LogCaptureFixture
) -> None:
    mids = await send_many(units, 5)
    with caplog.at_level(logging.INFO, logger="globe.node.delivery"):
        await units.deliverer.deliver_due()
    assert units.hub.batches == [5]
    assert sorted(submitted_ids(units)) == sorted(mids)
    (line,) = [r.getMessage() for r in caplog.records if "accepted" in r.getMessage()]
    count, ids = line.split(" messages accepted by the hub: ")
    assert (int(count), sorted(ids.split())) == (5, sorted(mids))
    for mid in mids:
        row = await units.row(mid, "KE-EACC")
        assert (row.state, row.via, row.attempts) == ("sent", "hub", 0)
        ev = Evidence.decode(row.evidence or b"", units.hub.net.genesis)
        assert (ev.kind, str(ev.message_id)) == (EvidenceKind.ACCEPTED, mid)


async def test_each_envelope_of_a_batch_keeps_its_own_outcome(units: Units) -> None:
    mids = await send_many(units, 3)
    units.hub.refuse = [MailboxFull("the recipient's mailbox is full"), MalformedError("no")]
    await units.deliverer.deliver_due()
    assert units.hub.batches == [3]
    first, second, third = submitted_ids(units)
    assert sorted([first, second, third]) == sorted(mids)
    busy, refused, sent = [await units.row(m, "KE-EACC") for m in (first, second, third)]
    assert (busy.state, busy.attempts, busy.last_error) == (
        "queued", 1, "the recipient's mailbox is full",
    )  # fmt: skip
    assert (refused.state, refused.last_error) == ("failed", "no")
    assert (sent.state, sent.via) == ("sent", "hub")


async def test_a_batch_that_cannot_be_sent_backs_every_envelope_off(units: Units) -> None:
    mids = await send_many(units, 3)
    units.hub.batch_refuse = [TransportError("hub down")]
    await units.deliverer.deliver_due()
    assert units.hub.submitted == []  # no envelope went alone
    for mid in mids:
        row = await units.row(mid, "KE-EACC")
        assert (row.state, row.attempts, row.last_error) == ("queued", 1, "hub down")
    assert units.directory.hub_reachable is False


@pytest.mark.parametrize(
    "refusal", [AuthError("request authentication failed"), MalformedError("not a batch")]
)
async def test_a_batch_refused_as_a_whole_is_sent_one_envelope_at_a_time(
    units: Units, refusal: GlobeError
) -> None:
    mids = await send_many(units, 3)
    units.hub.batch_refuse = [refusal]
    await units.deliverer.deliver_due()
    assert sorted(submitted_ids(units)) == sorted(mids)  # each judged alone
    assert [(await units.row(m, "KE-EACC")).state for m in mids] == ["sent"] * 3
    more = await send_many(units, 2)  # and the next pass batches again
    await units.deliverer.deliver_due()
    assert units.hub.batches == [3, 2]
    assert [(await units.row(m, "KE-EACC")).state for m in more] == ["sent"] * 2


@pytest.mark.parametrize("refusal", [NotFound("no such resource"), MethodNotAllowed("no")])
async def test_a_hub_without_the_batch_route_gets_one_envelope_per_request(
    units: Units, refusal: GlobeError
) -> None:
    await send_many(units, 3)
    units.hub.batch_refuse = [refusal]
    await units.deliverer.deliver_due()
    assert (units.hub.batches, len(units.hub.submitted)) == ([3], 3)
    await send_many(units, 2)
    await units.deliverer.deliver_due()
    assert (units.hub.batches, len(units.hub.submitted)) == ([3], 5)  # not asked again
    units.clock.advance(BATCH_RETRY)
    await send_many(units, 2)
    await units.deliverer.deliver_due()
    assert (units.hub.batches, len(units.hub.submitted)) == ([3, 2], 7)


async def test_batches_are_cut_at_the_item_and_byte_limits(
    units: Units, monkeypatch: pytest.MonkeyPatch
) -> None:
    await send_many(units, BATCH_MAX_ITEMS + 3)
    await units.deliverer.deliver_due()
    assert units.hub.batches == [BATCH_MAX_ITEMS, 3]
    size = len(units.hub.submitted[0])
    monkeypatch.setattr("globe_node.delivery.BATCH_BYTES", 2 * size + size // 2)
    units.hub.batches.clear()
    await send_many(units, 5)
    await units.deliverer.deliver_due()
    assert units.hub.batches == [2, 2]  # and the fifth alone, on the single route
    assert len(units.hub.submitted) == BATCH_MAX_ITEMS + 3 + 5


async def test_one_message_due_goes_on_the_single_route(units: Units) -> None:
    (mid,) = await send_many(units, 1)
    await units.deliverer.deliver_due()
    assert (units.hub.batches, submitted_ids(units)) == ([], [mid])


async def test_a_send_during_a_pass_is_delivered_by_the_next_one_at_once(
    units: Units, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message committed after a pass read what was due, while that pass still runs,
    wakes the next pass: it does not wait for the next attempt time (30 s idle)."""
    wake = asyncio.Event()
    reading, hold = asyncio.Event(), asyncio.Event()
    due = units.ctx.store.due

    async def held_due(now: int, limit: int = 100) -> Any:
        found = await due(now, limit)
        if not reading.is_set():  # the first pass: it found nothing, and waits here
            reading.set()
            await hold.wait()
        return found

    monkeypatch.setattr(units.ctx.store, "due", held_due)
    pump = asyncio.create_task(units.deliverer.run(wake))
    try:
        await asyncio.wait_for(reading.wait(), 5)
        mid = str(await units.outbox.send(TO[1:], message(), user="alice"))
        wake.set()  # what the outbox does after its commit
        hold.set()
        await eventually(lambda: len(units.hub.submitted) == 1, timeout=5)
        assert submitted_ids(units) == [mid]
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump

"""A stateful model of the node's outbox and delivery pump (globe_node/outbox.py, delivery.py).

Hypothesis drives the units a node runs — :class:`~globe_node.outbox.Outbox` and
:class:`~globe_node.delivery.Deliverer` over the node's SQLite store, with a fake clock
and fake transports as in ``test_delivery_machine.py`` — through any sequence of:
sending to one or both recipients (BR-PF publishes an endpoint and is tried directly,
KE-EACC is reached through the hub); a delivery pass in which the peer answers, is
down or refuses, and the hub accepts, is down, is busy, refuses for good or answers
with evidence that does not name the envelope; a receipt arriving through the hub;
the hub's non-delivery evidence; an operator's retry; receipts that name nothing of
ours; time passing; and a restart (new units over the same store).

The reference model holds each recipient's copy — state, attempts, next attempt, how
it left — and moves it by the transition table of docs/PROTOCOL.md §9 as
``globe_node/states.py`` states it, written out again here, and by the retry schedule
``base * 2**attempts`` capped, plus one second.  After every step the store must hold
exactly the model's rows, and every attempt must have sent the same bytes.

Bounded for CI: ``MAX_EXAMPLES`` runs of up to ``STEPS`` steps (the suite's ``ci``
Hypothesis profile is derandomised).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import tempfile
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from globe_io.errors import MailboxFull
from globe_io.hubapi import ProfilePublished
from globe_node import db
from globe_node.alerts import Alerts
from globe_node.audit import AuditLog
from globe_node.config import NodeConfig
from globe_node.context import NodeContext
from globe_node.delivery import PEER_RETRY, Deliverer
from globe_node.directory import Directory
from globe_node.keys import NodeKeys
from globe_node.outbox import Outbox
from globe_node.peerheads import PeerHeads
from globe_node.prekeys import Prekeys
from globe_node.store import Store
from globe_node.uploads import Uploads
from protocol.devnet import GENESIS_TIME, build_devnet
from protocol.envelope import parse_envelope
from protocol.errors import GlobeError, MalformedError, TransportError
from protocol.ids import AuthorityId, MessageId
from protocol.messages import Handling, Kind, MessageContent, Tlp, Urgency
from protocol.receipts import EvidenceKind, make_evidence, make_receipt
from tests.node.helpers import cases_of

T = TypeVar("T")

MAX_EXAMPLES = 30
STEPS = 40
LIFETIME = 900  # seconds an envelope lives: short, so that expiry happens
BASE, CAP = 1.0, 300.0  # the retry schedule of NodeConfig's defaults
START = GENESIS_TIME + 7200
DIRECT, HUB_ONLY = "BR-PF", "KE-EACC"
RECIPIENTS = [DIRECT, HUB_ONLY]

NET = build_devnet(b"model outbox", members=[])
ME = NET.admit("FR-PNF", "P")
NET.admit(DIRECT, "B", endpoint="https://br.example")
NET.admit(HUB_ONLY, "K")  # no endpoint: always through the hub

QUEUED, SENT, DELIVERED, FAILED = "queued", "sent", "delivered", "failed"
#: The delivery transitions (globe_node/states.py), written out again for the model:
#: event -> (states it applies in, the state it leads to).
TABLE = {
    "hub-accepted": ({QUEUED}, SENT),
    "receipt": ({QUEUED, SENT, FAILED}, DELIVERED),
    "refused": ({QUEUED}, FAILED),
    "expired": ({QUEUED}, FAILED),
    "non-delivery": ({QUEUED, SENT}, FAILED),
    "retry": ({QUEUED, FAILED}, QUEUED),
}
HUB_MODES = ["accepts", "accepts", "down", "busy", "refuses", "wrong evidence"]
PEER_MODES = ["answers", "answers", "down", "refuses"]
_RUNS = itertools.count()
_PLACE: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A migrated node database, copied for each run (on a RAM file system if there is one:
    the store commits with synchronous=FULL)."""
    shm = Path("/dev/shm")  # noqa: S108 - a private directory made below, removed after
    ram = shm.is_dir() and os.access(shm, os.W_OK)
    root = Path(tempfile.mkdtemp(dir=shm)) if ram else tmp_path_factory.mktemp("outbox-model")

    async def build() -> None:
        engine = db.make_engine(root / "template.db")
        try:
            await db.migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(build())
    _PLACE["root"] = root
    yield
    _PLACE.clear()
    if ram:
        shutil.rmtree(root, ignore_errors=True)


class NoJitter(random.Random):
    """Retries land at exact times: the jitter is always its maximum, 1."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class Clock:
    wall: float = float(START)
    mono: float = 1000.0


async def _outcome(
    submission: Coroutine[Any, Any, tuple[int, bytes]],
) -> tuple[int, bytes] | GlobeError:
    try:
        return await submission
    except GlobeError as exc:
        return exc


@dataclass
class Hub:
    """The hub as delivery sees it; ``mode`` says how it answers a submission."""

    clock: Clock
    mode: str = "accepts"
    submitted: list[bytes] = field(default_factory=list)
    batches: int = 0

    async def submit_message(self, envelope: bytes) -> tuple[int, bytes]:
        self.submitted.append(envelope)
        if self.mode == "down":
            raise TransportError("hub down")
        if self.mode == "busy":
            raise MailboxFull("the recipient's mailbox is full")
        if self.mode == "refuses":
            raise MalformedError("refused for good")
        env = parse_envelope(envelope)
        wrong = self.mode == "wrong evidence"
        ev = make_evidence(
            genesis=NET.genesis, hub=NET.hub,
            kind=EvidenceKind.REJECTED if wrong else EvidenceKind.ACCEPTED,
            message_id=env.header.message_id, envelope_hash=env.hash, sender=env.header.sender,
            recipients=[r.authority for r in env.header.recipients], time=int(self.clock.wall),
            reason="malformed" if wrong else None,
        )  # fmt: skip
        return 201, ev.signed.encode()

    async def submit_messages(
        self, envelopes: Sequence[bytes]
    ) -> list[tuple[int, bytes] | GlobeError]:
        """The batch route: a hub that is down refuses the request; else each alone."""
        self.batches += 1
        if self.mode == "down":
            self.submitted.extend(envelopes)
            raise TransportError("hub down")
        return [await _outcome(self.submit_message(e)) for e in envelopes]

    async def put_blob(self, blob_id: str, path: Path, *, progress: Any = None) -> object:
        raise AssertionError("no attachments in this model")

    async def put_prekey(self, prekey: bytes) -> object:
        return {}

    async def get_prekeys(self, authority: AuthorityId) -> list[bytes]:
        return [NET.members[str(authority)].signed_prekey.signed.encode()]

    async def log_entries(self, since: int = 0) -> list[bytes]:
        return NET.entries[since:]

    async def checkpoint(self) -> bytes:
        raise TransportError("not used")

    async def publish_profile(self, profile: bytes) -> ProfilePublished:
        raise AssertionError("no profiles in this model")


@dataclass
class Peers:
    """Peers' listeners; ``mode`` says how they answer a direct delivery."""

    clock: Clock
    mode: str = "answers"
    posted: list[str] = field(default_factory=list)

    async def post(self, endpoint: str, peer: AuthorityId, path: str, body: bytes) -> bytes:
        self.posted.append(str(peer))
        if self.mode == "down":
            raise TransportError("connection refused")
        if self.mode == "refuses":
            raise MalformedError("the peer's directory is behind")
        env = parse_envelope(body)
        return make_receipt(
            genesis=NET.genesis, identity=NET.members[str(peer)].identity,
            message_id=env.header.message_id, envelope_hash=env.hash, sender=env.header.sender,
            recipient=peer, time=int(self.clock.wall),
        ).encode()  # fmt: skip

    async def close(self) -> None:
        return None


@dataclass
class Copy:
    """One recipient's copy of a sent message, as the model expects the store to hold it."""

    state: str = QUEUED
    via: str | None = None
    attempts: int = 0
    next_attempt: int = 0


@dataclass
class Message:
    recipients: list[str]
    expires: int
    envelope: bytes | None = None  # the bytes of the first attempt


class OutboxMachine(RuleBasedStateMachine):
    """The outbox and the pump against the model.

    Message ids are random, so draws pick from lists in the order things happened
    (never sorted by id): replaying a run then draws the same copies.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dir = _PLACE["root"] / f"run-{next(_RUNS)}"
        self.dir.mkdir()
        shutil.copy(_PLACE["root"] / "template.db", self.dir / "node.db")
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.hub = Hub(self.clock)
        self.peers = Peers(self.clock)
        self.copies: dict[tuple[str, str], Copy] = {}
        self.messages: dict[str, Message] = {}
        self.peer_down_until = 0.0  # the pump's memory of a failed direct delivery
        self.run(self.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def start(self) -> None:
        config = NodeConfig(
            directory=self.dir, authority="FR-PNF", hub_url="http://hub.invalid",
            message_lifetime=LIFETIME, retry_base=BASE, retry_max=CAP,
        )  # fmt: skip
        keys = NodeKeys(ME.identity, ME.transport, ME.ka, bytes(range(32)))
        clock = self.clock
        store = Store(db.make_engine(config.db_path))
        self.ctx = ctx = NodeContext(
            config=config, keys=keys, genesis=NET.genesis, store=store,
            clock=lambda: clock.wall, monotonic=lambda: clock.mono, rng=NoJitter(),
        )  # fmt: skip
        alerts = Alerts(ctx)
        self.directory = Directory(ctx, self.hub, alerts, PeerHeads(ctx.store, alerts.record))
        self.directory.state.extend(NET.entries)
        prekeys = Prekeys(ctx, self.hub, self.directory)
        staging = Uploads(
            me=ctx.me, store=ctx.store, cipher=ctx.cipher, blob_path=ctx.blob_path, lifetime=3600,
            quota=1 << 20, clock=ctx.now,
        )  # fmt: skip
        self.outbox = Outbox(
            ctx=ctx, directory=self.directory, prekeys=prekeys, staging=staging,
            audit=AuditLog(ctx.store), cases=cases_of(ctx), wake=lambda: None,
        )  # fmt: skip
        self.deliverer = Deliverer(
            ctx=ctx, directory=self.directory, outbox=self.outbox, hub=self.hub, peers=self.peers
        )

    def teardown(self) -> None:
        try:
            self.run(self.ctx.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def now(self) -> int:
        return int(self.clock.wall)

    def move(self, mid: str, recipient: str, event: str, **changes: object) -> bool:
        """Apply ``event`` to a copy in the model by the table; whether it moved."""
        copy = self.copies[(mid, recipient)]
        sources, target = TABLE[event]
        if copy.state not in sources:
            return False
        copy.state = target
        for name, value in changes.items():
            setattr(copy, name, value)
        return True

    # -- sending and delivering ----------------------------------------------------------------

    @rule(to=st.sampled_from([[DIRECT], [HUB_ONLY], RECIPIENTS]))
    def send(self, to: list[str]) -> None:
        self.directory.checkpoint_time = self.now()  # the hub confirmed the head just now
        content = MessageContent(
            kind=Kind.INFORMATION, subject="s", body="b", language="en",
            urgency=Urgency.ROUTINE, handling=Handling(Tlp.AMBER),
        )  # fmt: skip
        mid = str(self.run(self.outbox.send([AuthorityId.parse(r) for r in to], content, user="u")))
        self.messages[mid] = Message(list(to), self.now() + LIFETIME)
        for r in to:
            self.copies[(mid, r)] = Copy()

    def due(self) -> list[str]:
        now = self.now()
        return [
            mid
            for mid, m in self.messages.items()
            if any(
                self.copies[(mid, r)].state == QUEUED and self.copies[(mid, r)].next_attempt <= now
                for r in m.recipients
            )
        ]

    @rule(hub=st.sampled_from(HUB_MODES), peer=st.sampled_from(PEER_MODES))
    def deliver(self, hub: str, peer: str) -> None:
        """One pass of the pump, the peer and the hub answering as ``peer`` and ``hub`` say."""
        self.hub.mode, self.peers.mode = hub, peer
        due = self.due()
        reachable = self.directory.hub_reachable
        relayed = False
        for mid in due:
            relay = self.leave(mid, peer)
            for r in relay:
                self.relayed(mid, r, hub)
            relayed = relayed or bool(relay)
        if relayed and hub != "refuses":
            reachable = hub != "down"
        pause = self.run(self.deliverer.deliver_due())
        assert self.directory.hub_reachable is reachable
        if due:
            assert pause == 0.0
        else:
            waiting = [c.next_attempt for c in self.copies.values() if c.state == QUEUED]
            assert pause == (max(0.05, float(min(waiting) - self.now())) if waiting else 30.0)

    def leave(self, mid: str, peer: str) -> list[str]:
        """The model of one due message: expired, delivered directly, or to relay (returned)."""
        message = self.messages[mid]
        queued = [r for r in message.recipients if self.copies[(mid, r)].state == QUEUED]
        if message.expires <= self.now():
            for r in queued:
                self.move(mid, r, "expired")
            return []
        relay = []
        for r in queued:
            if r != DIRECT or self.peer_down_until > self.clock.mono:
                relay.append(r)
            elif peer == "answers":
                self.move(mid, r, "receipt", via="direct")
            else:
                relay.append(r)
                if peer == "down":  # not tried directly again for a while
                    self.peer_down_until = self.clock.mono + PEER_RETRY
        return relay

    def relayed(self, mid: str, recipient: str, hub: str) -> None:
        """The model of a copy the hub was given."""
        copy = self.copies[(mid, recipient)]
        if hub == "accepts":
            self.move(mid, recipient, "hub-accepted", via="hub")
        elif hub == "refuses":
            self.move(mid, recipient, "refused")
        else:  # down, busy, wrong evidence: back off by the schedule, jitter 1
            copy.attempts += 1
            delay = int(min(CAP, BASE * 2 ** min(copy.attempts, 20)))
            copy.next_attempt = self.now() + delay + 1

    # -- what comes back later -----------------------------------------------------------------

    @precondition(lambda self: bool(self.copies))
    @rule(data=st.data())
    def receipt_through_the_hub(self, data: st.DataObject) -> None:
        mid, recipient = data.draw(st.sampled_from(list(self.copies)), label="copy")
        receipt = self.receipt(mid, recipient)
        self.run(self.outbox.record_receipt(receipt, via="hub"))
        copy = self.copies[(mid, recipient)]
        self.move(mid, recipient, "receipt", via=copy.via or "hub")

    @precondition(lambda self: bool(self.copies))
    @rule(data=st.data())
    def hub_non_delivery(self, data: st.DataObject) -> None:
        mid, recipient = data.draw(st.sampled_from(list(self.copies)), label="copy")
        envelope = self.stored_envelope(mid)
        env = parse_envelope(envelope)
        evidence = make_evidence(
            genesis=NET.genesis, hub=NET.hub, kind=EvidenceKind.NON_DELIVERY,
            message_id=env.header.message_id, envelope_hash=env.hash, sender=env.header.sender,
            recipients=[AuthorityId.parse(recipient)], time=self.now(), reason="expired",
        ).signed.encode()  # fmt: skip
        self.run(self.outbox.record_non_delivery(evidence))
        self.move(mid, recipient, "non-delivery")

    @precondition(lambda self: bool(self.messages))
    @rule(data=st.data())
    def operator_retries(self, data: st.DataObject) -> None:
        mid = data.draw(st.sampled_from(list(self.messages)), label="message")
        moved = [r for r in self.messages[mid].recipients if self.move(mid, r, "retry")]
        for r in moved:
            self.copies[(mid, r)].next_attempt = 0
        assert self.run(self.outbox.retry(mid, "u")) == len(moved)

    @precondition(lambda self: bool(self.messages))
    @rule(data=st.data(), defect=st.sampled_from(["unknown message", "not a recipient"]))
    def receipt_naming_nothing_of_ours(self, data: st.DataObject, defect: str) -> None:
        if defect == "unknown message":
            mid, signer = str(MessageId.new()), HUB_ONLY
        else:
            single = [m for m, msg in self.messages.items() if len(msg.recipients) == 1]
            if not single:
                return
            mid = data.draw(st.sampled_from(single), label="message")
            signer = next(r for r in RECIPIENTS if r not in self.messages[mid].recipients)
        envelope = self.stored_envelope(mid) if mid in self.messages else b""
        receipt = self.receipt(mid, signer, envelope=envelope)
        with pytest.raises(MalformedError):
            self.run(self.outbox.record_receipt(receipt, via="hub"))

    def stored_envelope(self, mid: str) -> bytes:
        row = self.run(self.ctx.store.out_message(mid))
        assert row is not None
        return row.envelope

    def receipt(self, mid: str, recipient: str, *, envelope: bytes | None = None) -> bytes:
        data = self.stored_envelope(mid) if envelope is None else envelope
        digest = parse_envelope(data).hash if data else bytes(32)
        return make_receipt(
            genesis=NET.genesis, identity=NET.members[recipient].identity,
            message_id=MessageId.parse(mid), envelope_hash=digest, sender=ME.authority,
            recipient=AuthorityId.parse(recipient), time=self.now(),
        ).encode()  # fmt: skip

    # -- time and restarts ---------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 2, 5, 30, PEER_RETRY + 1, 300, LIFETIME]))
    def time_passes(self, seconds: float) -> None:
        self.clock.wall += seconds
        self.clock.mono += seconds

    @precondition(lambda self: bool(self.messages))
    @rule()
    def restart(self) -> None:
        self.run(self.ctx.store.close())
        self.run(self.start())
        self.peer_down_until = 0.0  # the pump's memory is not stored

    # -- the store is the model -------------------------------------------------------------------

    @invariant()
    def store_matches_the_model(self) -> None:
        async def rows() -> dict[tuple[str, str], Copy]:
            async with self.ctx.store.read() as s:
                found = (await s.execute(select(db.OutRecipient))).scalars()
                return {
                    (r.message_id, r.recipient): Copy(r.state, r.via, r.attempts, r.next_attempt)
                    for r in found
                }

        assert self.run(rows()) == self.copies
        for envelope in self.hub.submitted:
            mid = str(parse_envelope(envelope).header.message_id)
            first = self.messages[mid].envelope
            if first is None:
                self.messages[mid].envelope = envelope
            else:
                assert envelope == first, "another attempt sent other bytes"
        self.hub.submitted.clear()


OutboxMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOutboxModel = OutboxMachine.TestCase

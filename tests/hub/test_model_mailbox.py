"""A stateful model of the hub's mailboxes (hub/routing.py) over SQLite.

Hypothesis drives a :class:`~hub.routing.Router` (with its group-commit writer, on a
private event loop) through any sequence of: a new envelope; the same bytes again;
other bytes under a stored message id; a recipient's valid receipt, the same receipt
again, a receipt acknowledged by someone else or over other bytes; dropping the
notices a sender was given; time passing; the expiry sweep; and a restart (a new
engine, service and router over the same database file).  The reference model is the
list of items each member's mailbox holds, in order — envelopes still waiting, and the
receipt and non-delivery notices their senders were given — plus what was stored,
acknowledged and expired.  After every step each mailbox, pulled from the router, must
be exactly the model's: an envelope is never delivered twice and never lost, a
resubmission is answered with the stored evidence even when the mailbox is full, and
the quota counts what the tables hold.

Bounded for CI: ``MAX_EXAMPLES`` runs of up to ``STEPS`` steps (the suite's ``ci``
Hypothesis profile is derandomised).  PostgreSQL runs the same router code through
``tests/hub/test_routing.py``; this model stays on SQLite to stay fast.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

from globe_io.errors import MailboxFull
from hub import db
from hub.routing import Router, RoutingLimits
from hub.service import HubService, Principal
from protocol import canonical
from protocol.devnet import GENESIS_TIME, build_devnet
from protocol.envelope import SealTo, envelope_hash, parse_envelope, seal_envelope
from protocol.errors import ConflictError, ExpiredError, GlobeError
from protocol.ids import AuthorityId, MessageId
from protocol.membership import LogEntry
from protocol.receipts import Evidence, EvidenceKind, make_receipt

T = TypeVar("T")

MAX_EXAMPLES = 30
STEPS = 40
#: Items a mailbox may hold: small, so that full mailboxes happen.
MAILBOX = 3
MEMBERS = ["FR-PNF", "DE-BKA", "ES-FCC"]
NET = build_devnet(b"model mailbox", members=[(a, f"Authority {a}") for a in MEMBERS])
START = GENESIS_TIME + 7200
#: How a receipt is offered: mostly valid, else again, by another member, over other bytes.
ACKS = ["valid", "valid", "valid", "again", "by another member", "over other bytes"]
_RUNS = itertools.count()
_PLACE: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A migrated hub database holding the devnet's log, copied for each run."""
    # SQLite commits with synchronous=FULL: on a RAM file system the fsyncs cost nothing.
    shm = Path("/dev/shm")  # noqa: S108 - a private directory made below, removed after
    ram = shm.is_dir() and os.access(shm, os.W_OK)
    root = Path(tempfile.mkdtemp(dir=shm)) if ram else tmp_path_factory.mktemp("mailbox-model")
    path = root / "template.db"

    async def build() -> None:
        engine = db.make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await db.migrate(engine)
            async with db.session_factory(engine)() as s, s.begin():
                for raw in NET.entries:
                    entry = LogEntry.decode(raw, NET.genesis)
                    s.add(db.LogEntryRow(seq=entry.seq, hash=entry.hash, data=raw, time=entry.time))
        finally:
            await engine.dispose()

    asyncio.run(build())
    _PLACE["root"], _PLACE["template"] = root, path
    yield
    _PLACE.clear()
    if ram:
        shutil.rmtree(root, ignore_errors=True)


class Clock:
    """The hub's clock, moved by the model."""

    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Sent:
    """An envelope the hub accepted, as the model remembers it."""

    key: tuple[str, str]  # (sender, message id)
    envelope: bytes
    recipients: tuple[str, ...]
    expires: int
    evidence: bytes


@dataclass
class Model:
    """Each member's mailbox in order: ("envelope", key) waiting, or a notice to a sender."""

    mailbox: dict[str, list[tuple[str, tuple[str, str]]]] = field(
        default_factory=lambda: {m: [] for m in MEMBERS}
    )
    sent: dict[tuple[str, str], Sent] = field(default_factory=dict)
    acknowledged: set[tuple[str, tuple[str, str]]] = field(default_factory=set)
    expired: set[tuple[str, tuple[str, str]]] = field(default_factory=set)
    #: Acknowledged or expired, in that order (draws never sort the random message ids,
    #: so that a replayed run draws the same items).
    finished: list[tuple[str, tuple[str, str]]] = field(default_factory=list)
    conflicts: int = 0
    #: The order envelopes entered the mailboxes (the expiry sweep goes in that order).
    order: dict[tuple[str, tuple[str, str]], int] = field(default_factory=dict)

    def waiting(self) -> list[tuple[str, tuple[str, str]]]:
        """(recipient, message) of every envelope still waiting."""
        return [
            (m, key) for m, items in self.mailbox.items() for k, key in items if k == "envelope"
        ]


class MailboxMachine(RuleBasedStateMachine):
    """A router over SQLite against :class:`Model`."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = _PLACE["root"] / f"run-{next(_RUNS)}"
        self.dir.mkdir()
        shutil.copy(_PLACE["template"], self.dir / "hub.db")
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.model = Model()
        self.pair_seq: dict[tuple[str, str], int] = {}
        self.router: Router | None = None
        self.run(self.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def start(self) -> None:
        self.engine = db.make_engine(f"sqlite+aiosqlite:///{self.dir / 'hub.db'}")
        self.service = HubService(
            genesis=NET.genesis, hub_key=NET.hub, engine=self.engine, clock=self.clock
        )
        await self.service.start()
        self.router = Router(self.service, limits=RoutingLimits(mailbox_count=MAILBOX))
        await self.router.start()

    async def stop(self) -> None:
        if self.router is not None:
            await self.router.stop()
            self.router = None
        await self.engine.dispose()

    def teardown(self) -> None:
        try:
            self.run(self.stop())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def live(self) -> Router:
        assert self.router is not None
        return self.router

    def now(self) -> int:
        return int(self.clock.now)

    @staticmethod
    def principal(member: str) -> Principal:
        m = NET.members[member]
        return Principal(m.transport.key_id, authority=m.authority)

    def seal(
        self, sender: str, recipients: list[str], lifetime: int,
        message_id: MessageId | None = None, content: bytes = b'{"x":1}',
    ) -> bytes:  # fmt: skip
        to = []
        for r in sorted(recipients):
            seq = self.pair_seq[(sender, r)] = self.pair_seq.get((sender, r), 0) + 1
            to.append(SealTo(AuthorityId.parse(r), seq, NET.members[r].prekey.public_key))
        state = self.service.state
        return seal_envelope(
            genesis=NET.genesis, sender=AuthorityId.parse(sender),
            identity=NET.members[sender].identity, recipients=to, content=content,
            created=self.now(), expires=self.now() + lifetime, dir_seq=state.seq,
            dir_head=state.head, message_id=message_id,
        )  # fmt: skip

    def receipt(self, recipient: str, envelope: bytes, *, other_bytes: bool = False) -> bytes:
        header = parse_envelope(envelope).header
        digest = envelope_hash(envelope + b"x" if other_bytes else envelope)
        return make_receipt(
            genesis=NET.genesis, identity=NET.members[recipient].identity,
            message_id=header.message_id, envelope_hash=digest, sender=header.sender,
            recipient=AuthorityId.parse(recipient), time=self.now(),
        ).encode()  # fmt: skip

    def submit(self, sender: str, envelope: bytes) -> tuple[int, bytes]:
        return self.run(self.live.submit(envelope, self.principal(sender)))

    def refused_with(self, cls: type[GlobeError], sender: str, envelope: bytes) -> None:
        with pytest.raises(GlobeError) as info:
            self.submit(sender, envelope)
        assert info.type is cls, f"expected {cls.__name__}, got {info.value!r}"

    # -- submissions ----------------------------------------------------------------------

    @rule(
        sender=st.sampled_from(MEMBERS),
        data=st.data(),
        lifetime=st.sampled_from([600, 3600]),
    )
    def submit_new(self, sender: str, data: st.DataObject, lifetime: int) -> None:
        others = [m for m in MEMBERS if m != sender]
        recipients = data.draw(st.lists(st.sampled_from(others), min_size=1, unique=True))
        envelope = self.seal(sender, recipients, lifetime)
        if any(len(self.model.mailbox[r]) + 1 > MAILBOX for r in recipients):
            self.refused_with(MailboxFull, sender, envelope)
            return
        status, evidence = self.submit(sender, envelope)
        assert status == 201
        ev = Evidence.decode(evidence, NET.genesis)
        assert (ev.kind, ev.envelope_hash) == (EvidenceKind.ACCEPTED, envelope_hash(envelope))
        key = (sender, str(parse_envelope(envelope).header.message_id))
        self.model.sent[key] = Sent(
            key, envelope, tuple(sorted(recipients)), self.now() + lifetime, evidence
        )
        for r in sorted(recipients):  # the header's order
            self.model.mailbox[r].append(("envelope", key))
            self.model.order[(r, key)] = len(self.model.order)

    @precondition(lambda self: bool(self.model.sent))
    @rule(data=st.data())
    def submit_the_same_bytes_again(self, data: st.DataObject) -> None:
        sent = data.draw(st.sampled_from(list(self.model.sent.values())))
        if sent.expires <= self.now():
            self.refused_with(ExpiredError, sent.key[0], sent.envelope)
            return
        # answered from the store, whatever the mailboxes hold now: nothing is queued again
        assert self.submit(sent.key[0], sent.envelope) == (200, sent.evidence)

    @precondition(lambda self: bool(self.model.sent))
    @rule(data=st.data())
    def submit_other_bytes_under_a_stored_id(self, data: st.DataObject) -> None:
        sent = data.draw(st.sampled_from(list(self.model.sent.values())))
        other = self.seal(
            sent.key[0], list(sent.recipients), 3600, MessageId.parse(sent.key[1]), b'{"x":2}'
        )
        self.refused_with(ConflictError, sent.key[0], other)
        self.model.conflicts += 1

    # -- receipts and notices ----------------------------------------------------------------

    @precondition(lambda self: bool(self.model.waiting()))
    @rule(data=st.data(), how=st.sampled_from(ACKS))
    def acknowledge(self, data: st.DataObject, how: str) -> None:
        """A receipt for a waiting envelope: released once, by its recipient, for its bytes."""
        done = self.model.finished
        if how == "again" and done:  # released or expired already: nothing to release
            recipient, key = data.draw(st.sampled_from(done), label="done")
            self.refused_receipt(recipient, self.model.sent[key].envelope, "not-found")
            return
        recipient, key = data.draw(st.sampled_from(self.model.waiting()), label="waiting")
        envelope = self.model.sent[key].envelope
        if how == "by another member":
            other = next(m for m in MEMBERS if m != recipient)
            self.refused_receipt(other, envelope, "malformed", signer=recipient)
            return
        if how == "over other bytes":
            self.refused_receipt(recipient, envelope, "not-found", other_bytes=True)
            return
        receipt = self.receipt(recipient, envelope)
        result = self.run(self.live.ack(self.principal(recipient), [receipt], []))
        assert (result.released, result.refused, result.notices) == ((key[1],), (), 0)
        self.model.mailbox[recipient].remove(("envelope", key))
        self.model.mailbox[key[0]].append(("receipt", key))
        self.model.acknowledged.add((recipient, key))
        self.model.finished.append((recipient, key))

    def refused_receipt(self, who: str, envelope: bytes, slug: str, *, signer: str | None = None,
                        other_bytes: bool = False) -> None:  # fmt: skip
        receipt = self.receipt(signer or who, envelope, other_bytes=other_bytes)
        result = self.run(self.live.ack(self.principal(who), [receipt], []))
        assert result.released == ()
        assert [r.type.rsplit("/", 1)[1] for r in result.refused] == [slug]

    @precondition(
        lambda self: any(k != "envelope" for i in self.model.mailbox.values() for k, _ in i)
    )
    @rule(data=st.data())
    def drop_notices(self, data: st.DataObject) -> None:
        told = [
            m for m, items in self.model.mailbox.items() if any(k != "envelope" for k, _ in items)
        ]
        member = data.draw(st.sampled_from(told), label="member")
        page = self.run(self.live.pull(self.principal(member), 0, 1000))
        cursors = [i.cursor for i in page.items if i.kind != "envelope"]
        result = self.run(self.live.ack(self.principal(member), [], cursors))
        kept = [item for item in self.model.mailbox[member] if item[0] == "envelope"]
        assert result.notices == len(self.model.mailbox[member]) - len(kept)
        self.model.mailbox[member] = kept

    # -- time, expiry, restarts ------------------------------------------------------------------

    @rule(seconds=st.sampled_from([60, 600, 3600]))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += seconds

    def due(self) -> list[tuple[str, tuple[str, str]]]:
        """Waiting envelopes past their expiry."""
        now = self.now()
        return [(r, key) for r, key in self.model.waiting() if self.model.sent[key].expires <= now]

    @precondition(lambda self: bool(self.due()))
    @rule()
    def sweep_expired(self) -> None:
        due = self.due()
        assert self.run(self.live.expire()) == len(due)
        # the sweep goes in mailbox order; each sender is told once per recipient
        for recipient, key in sorted(due, key=self.model.order.__getitem__):
            self.model.mailbox[recipient].remove(("envelope", key))
            self.model.mailbox[key[0]].append(("non-delivery", key))
            self.model.expired.add((recipient, key))
            self.model.finished.append((recipient, key))

    @precondition(lambda self: bool(self.model.sent))
    @rule()
    def restart(self) -> None:
        self.run(self.stop())
        self.run(self.start())

    # -- every mailbox is the model's ---------------------------------------------------------

    @invariant()
    def mailboxes_match_the_model(self) -> None:
        for member in MEMBERS:
            page = self.run(self.live.pull(self.principal(member), 0, 1000))
            items = []
            for item in page.items:
                if item.kind == "envelope":
                    header = parse_envelope(item.data).header
                    items.append(("envelope", (str(header.sender), str(header.message_id))))
                else:
                    items.append((item.kind, self._notice_key(item.kind, item.data)))
            assert items == self.model.mailbox[member], member
        depth = {r: n for r, (n, _size) in self.live.depth().items() if n}
        assert depth == {m: len(i) for m, i in self.model.mailbox.items() if i}
        self.run(self._tables_match())

    @staticmethod
    def _notice_key(kind: str, data: bytes) -> tuple[str, str]:
        if kind == "receipt":
            notice = canonical.decode(data, max_size=1 << 16, what="notice")
            evidence = canonical.b64d(str(notice["evidence"]), what="evidence")
        else:
            evidence = data
        ev = Evidence.decode(evidence, NET.genesis)
        expected = EvidenceKind.DELIVERED if kind == "receipt" else EvidenceKind.NON_DELIVERY
        assert ev.kind is expected
        return str(ev.sender), str(ev.message_id)

    async def _tables_match(self) -> None:
        async with self.service.unit() as s:
            deliveries = (
                await s.execute(
                    select(db.Delivery.recipient, db.Message.sender, db.Message.message_id,
                           db.Delivery.outcome)
                    .join(db.Message, db.Message.id == db.Delivery.message)
                )
            ).all()  # fmt: skip
            conflicts = (
                await s.execute(select(func.count()).select_from(db.ConflictRecord))
            ).scalar_one()
            messages = (await s.execute(select(func.count()).select_from(db.Message))).scalar_one()
            sizes = (
                await s.execute(
                    select(db.MailboxItem.recipient, func.sum(db.MailboxItem.size)).group_by(
                        db.MailboxItem.recipient
                    )
                )
            ).all()
        outcomes = [(r, (s, m), o) for r, s, m, o in deliveries]
        assert len(outcomes) == len({(r, k) for r, k, _o in outcomes}), "delivered twice"
        assert {(r, k) for r, k, o in outcomes if o == "delivered"} == self.model.acknowledged
        assert {(r, k) for r, k, o in outcomes if o == "expired"} == self.model.expired
        assert conflicts == self.model.conflicts
        assert messages == len(self.model.sent)
        depth = {r: size for r, (n, size) in self.live.depth().items() if n}
        assert depth == {r: int(size) for r, size in sizes}


MailboxMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMailboxModel = MailboxMachine.TestCase

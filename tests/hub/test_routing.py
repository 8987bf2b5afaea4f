"""Store-and-forward routing (R9-R11): acceptance, refusals, mailboxes, receipts, expiry.

Every test runs on SQLite and PostgreSQL (the ``db_url`` parametrization in
``conftest.py``) against the real app over loopback HTTP; the app's router is
``hub.router``.  Members are admitted through the API; envelopes are sealed to
their certified key-agreement keys from the test's own key material.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from sqlalchemy.exc import OperationalError

from globe_io.hubapi import AckResult
from hub import db
from hub.routing import Router, RoutingLimits
from hub.service import HubService
from protocol import canonical, crypto
from protocol.envelope import envelope_hash, open_envelope, parse_envelope
from protocol.errors import PROBLEM_BASE, MemberNotActive
from protocol.genesis import make_genesis
from protocol.ids import MessageId
from protocol.keys import SigningKey
from protocol.membership import Action
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind, make_evidence
from protocol.requestauth import HEADER
from tests.support.waiting import eventually

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant, Hub, HubFactory, Reply

NAMES = {
    "FR-PNF": "Parquet national financier",
    "DE-BKA": "Bundeskriminalamt",
    "ES-FCC": "Fiscalia contra la Corrupcion",
    "IT-GDF": "Guardia di Finanza",
}


async def members(hub: Hub, *authorities: str) -> list[Applicant]:
    """Admit each authority through the API (application, proof, two admin signatures)."""
    return [await hub.admit(a, NAMES[a]) for a in authorities]


def header_of(envelope: bytes) -> Any:
    return parse_envelope(envelope).header


async def by_seq(hub: Hub) -> list[db.MailboxItem]:
    return sorted(await hub.rows(db.MailboxItem), key=lambda r: r.seq)


async def by_id(hub: Hub) -> list[db.Message]:
    return sorted(await hub.rows(db.Message), key=lambda r: r.id)


def values(rows: list[Any]) -> list[tuple[Any, ...]]:
    """Rows as tuples of their column values (ORM objects compare by identity)."""
    return [tuple(getattr(r, c.key) for c in r.__table__.columns) for r in rows]


def data_of(page: dict[str, Any]) -> list[bytes]:
    return [canonical.b64d(i["data"], what="item") for i in page["items"]]


def receipt_notice(item: dict[str, Any]) -> tuple[bytes, bytes]:
    """A 'receipt' mailbox item: canonical JSON holding the receipt and the hub's evidence."""
    assert item["kind"] == "receipt"
    raw = canonical.b64d(item["data"], what="notice")
    notice = canonical.decode(raw, max_size=16 * 1024, what="notice")
    assert set(notice) == {"receipt", "evidence"}
    assert isinstance(notice["receipt"], str)
    assert isinstance(notice["evidence"], str)
    return (
        canonical.b64d(notice["receipt"], what="receipt"),
        canonical.b64d(notice["evidence"], what="evidence"),
    )


def refused(result: dict[str, Any]) -> list[str]:
    return [r["type"].removeprefix(PROBLEM_BASE) for r in result["refused"]]


async def nothing_stored(hub: Hub) -> None:
    assert await hub.rows(db.Message) == []
    assert await hub.rows(db.MailboxItem) == []
    assert await hub.rows(db.ConflictRecord) == []
    assert await hub.rows(db.Delivery) == []


# --- acceptance ----------------------------------------------------------------------------


async def test_accepted_envelope_gets_signed_evidence_and_waits_per_recipient(hub: Hub) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    content = b'{"text":"request for mutual legal assistance"}'
    env = hub.seal(fr, es, de, content=content, lifetime=7200)
    header = header_of(env)

    reply = await hub.send(fr, env)
    assert reply.status == 201
    assert reply.content_type == "application/json"
    evidence = Evidence.decode(reply.body, hub.genesis)  # verifies under the pinned hub key
    assert evidence.kind is EvidenceKind.ACCEPTED
    assert evidence.message_id == header.message_id
    assert evidence.envelope_hash == envelope_hash(env)
    assert evidence.sender == fr.authority
    assert evidence.recipients == (de.authority, es.authority)  # sorted
    assert evidence.reason is None
    assert evidence.time == hub.now()

    (msg,) = await hub.rows(db.Message)
    assert (msg.sender, msg.message_id, msg.envelope_hash, msg.data) == (
        "FR-PNF",
        str(header.message_id),
        envelope_hash(env),
        env,
    )
    assert (msg.size, msg.expires, msg.accepted, msg.evidence) == (
        len(env),
        hub.now() + 7200,
        hub.now(),
        reply.body,
    )
    items = await by_seq(hub)
    assert [(i.recipient, i.kind, i.message, i.payload, i.size, i.created) for i in items] == [
        ("DE-BKA", "envelope", msg.id, None, len(env), hub.now()),
        ("ES-FCC", "envelope", msg.id, None, len(env), hub.now()),
    ]
    assert await hub.rows(db.ConflictRecord) == []
    assert await hub.rows(db.Delivery) == []
    assert hub.router.depth() == {"DE-BKA": (1, len(env)), "ES-FCC": (1, len(env))}

    # Each recipient pulls the exact bytes and opens them; the sender's mailbox is empty.
    state = await hub.directory()
    for member, item in zip((de, es), items, strict=True):
        page = await hub.pull(member)
        assert page == {
            "items": [{"cursor": item.seq, "kind": "envelope", "data": canonical.b64e(env)}],
            "cursor": item.seq,
        }
        keys = {member.ka.key_id: member.ka}
        opened = open_envelope(
            parse_envelope(data_of(page)[0]),
            directory=state,
            me=member.authority,
            private_key=keys.get,
            now=hub.now(),
        )
        assert opened.content == content
    assert await hub.pull(fr) == {"items": [], "cursor": 0}
    await hub.check_usage()


async def test_envelope_larger_than_max_body_is_accepted(hub: Hub) -> None:
    """The message route is capped at max_envelope, not at the JSON routes' max_body."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de, content=b'{"text":"' + b"x" * 200_000 + b'"}')
    assert 64 * 1024 < len(env) < hub.router.limits.max_envelope
    (await hub.send(fr, env)).ok(201)
    assert data_of(await hub.pull(de)) == [env]


# --- refusals ------------------------------------------------------------------------------


async def test_oversized_body_is_refused_before_it_is_read(hub: Hub) -> None:
    cap = hub.router.limits.max_envelope
    head = (
        "POST /v1/messages HTTP/1.1\r\n"
        f"Host: {hub.client.host}\r\n"
        f"Content-Length: {cap + 1}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    raw = await hub.raw_http([head, b"GLBE" + bytes(1020)])  # 1 KiB of the declared 2 MiB
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 "), raw[:300]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in headers.lower()
    problem = orjson.loads(body)
    assert problem["type"] == PROBLEM_BASE + "payload-too-large"
    assert (problem["status"], problem["instance"]) == (413, "/v1/messages")
    await nothing_stored(hub)


async def test_oversized_chunked_body_is_refused(make_hub: HubFactory) -> None:
    hub = await make_hub(limits=RoutingLimits(max_envelope=8 * 1024))
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de, content=b'{"text":"' + b"x" * 9000 + b'"}')
    assert len(env) > 8 * 1024

    async def chunks() -> Any:
        for i in range(0, len(env), 1024):
            yield env[i : i + 1024]

    headers = {HEADER: hub.auth(fr.transport, "POST", "/v1/messages", env)}
    async with hub.client.post("/v1/messages", data=chunks(), headers=headers) as resp:
        assert "Content-Length" not in resp.request_info.headers
        assert resp.status == 413
        assert (await resp.json(content_type=None))["type"] == PROBLEM_BASE + "payload-too-large"
    await nothing_stored(hub)
    (await hub.send(fr, hub.seal(fr, de))).ok(201)  # a small one still goes through


async def test_malformed_envelopes_are_refused(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    cases: list[tuple[bytes, int, str]] = [
        (b"", 400, "truncated"),
        (env[:3], 400, "truncated"),
        (env[:-1], 400, "truncated"),  # the signature is one byte short
        (env[: len(env) // 2], 400, "truncated"),
        (env + b"\x00", 400, "malformed"),  # trailing bytes
        (b"not an envelope at all, just some text", 400, "malformed"),  # bad magic
        (b"\x00" * 4096, 400, "malformed"),
        (b"GLBX" + env[4:], 400, "malformed"),
        (env[:4] + b"\x02" + env[5:], 400, "unsupported-version"),
        (env[:5] + b"\x02" + env[6:], 400, "unsupported-suite"),
    ]
    for body, status, slug in cases:
        (await hub.send(fr, body)).problem(status, slug)
    await nothing_stored(hub)


async def test_tampered_envelope_is_refused(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    header_len = int.from_bytes(env[6:10], "big")
    for pos in (
        10 + header_len + 2 + 100,  # in the wrapped key
        len(env) - 64 - 200,  # in the body ciphertext
        len(env) - 1,  # in the signature
    ):
        tampered = bytearray(env)
        tampered[pos] ^= 0x01
        (await hub.send(fr, bytes(tampered))).problem(401, "bad-signature")
    # Signed by a key that is not the sender's certified identity key.
    forged = hub.seal(fr, de, identity=SigningKey.generate())
    (await hub.send(fr, forged)).problem(403, "not-certified")
    # Made for another network.
    other = make_genesis(
        network_id="globe-other",
        name="Another network",
        admins=[("Admin", hub.admins[0].verify_key)],
        threshold=1,
        hub_key=hub.hub_key.verify_key,
        hub_url="https://hub.other.invalid",
        created=hub.now() - 86400,
        signers=[hub.admins[0]],
    )
    body = (await hub.send(fr, hub.seal(fr, de, genesis=other))).problem(400, "malformed")
    assert "another network" in body["detail"]
    await nothing_stored(hub)
    (await hub.send(fr, env)).ok(201)  # the untampered original is fine


async def test_envelope_is_submitted_by_its_sender(hub: Hub) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    env = hub.seal(fr, de)
    body = (await hub.send(es, env)).problem(400, "malformed")
    assert "submitted by its sender" in body["detail"]
    body = (await hub.send(de, env)).problem(400, "malformed")  # not even by a recipient
    (await hub.request("POST", "/v1/messages", env)).problem(401, "unauthorized")  # unsigned
    await nothing_stored(hub)


async def test_suspended_sender_cannot_submit(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    await hub.set_status(fr, Action.SUSPEND, "under review")
    (await hub.send(fr, env)).problem(401, "unauthorized")
    (await hub.as_member(fr, "GET", "/v1/mailbox")).problem(401, "unauthorized")
    await nothing_stored(hub)
    # Even past the HTTP layer the router refuses it (sender not active).
    with pytest.raises(MemberNotActive):
        await hub.router.submit(env, hub.principal(fr))
    await nothing_stored(hub)


async def test_inactive_or_unknown_recipient_is_refused(hub: Hub) -> None:
    fr, de, es, it = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC", "IT-GDF")
    await hub.set_status(de, Action.SUSPEND, "under review")
    await hub.set_status(it, Action.REVOKE, "no longer designated")
    for recipients in ((de,), (it,), (de, es), (es, it)):
        body = (await hub.send(fr, hub.seal(fr, *recipients))).problem(403, "member-not-active")
        assert body["detail"].startswith(("DE-BKA is suspended", "IT-GDF is revoked")), body
    stranger = hub.applicant("PT-PJ", "Policia Judiciaria")  # applied nowhere, not a member
    body = (await hub.send(fr, hub.seal(fr, stranger))).problem(403, "unknown-member")
    assert "PT-PJ" in body["detail"]
    (await hub.send(fr, hub.seal(fr, es, stranger))).problem(403, "unknown-member")
    await nothing_stored(hub)
    await hub.set_status(de, Action.REINSTATE, "review closed")
    (await hub.send(fr, hub.seal(fr, de, es))).ok(201)


async def test_envelope_validity_window(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    now = hub.now()
    expired = hub.seal(fr, de, created=now - 3600, expires=now - 1)
    (await hub.send(fr, expired)).problem(410, "expired")
    expiring_now = hub.seal(fr, de, created=now - 3600, expires=now)
    (await hub.send(fr, expiring_now)).problem(410, "expired")
    future = hub.seal(fr, de, created=now + 301)  # beyond the envelope clock skew (300 s)
    (await hub.send(fr, future)).problem(400, "not-yet-valid")
    await nothing_stored(hub)
    (await hub.send(fr, hub.seal(fr, de, created=now + 300))).ok(201)
    (await hub.send(fr, hub.seal(fr, de, created=now - 3600, expires=now + 1))).ok(201)
    assert len(await hub.rows(db.Message)) == 2


async def test_replayed_request_is_refused(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    header = hub.auth(fr.transport, "POST", "/v1/messages", env)
    (await hub.request("POST", "/v1/messages", env, header=header)).ok(201)
    (await hub.request("POST", "/v1/messages", env, header=header)).problem(409, "replay")
    # The same for the mailbox routes.
    pull = hub.auth(de.transport, "GET", "/v1/mailbox")
    (await hub.request("GET", "/v1/mailbox", header=pull)).ok()
    (await hub.request("GET", "/v1/mailbox", header=pull)).problem(409, "replay")
    # A Globe-Auth header is bound to its body: not reusable for another envelope.
    other = hub.seal(fr, de)
    (await hub.request("POST", "/v1/messages", other, header=header)).problem(401, "unauthorized")
    assert len(await hub.rows(db.Message)) == 1
    # A fresh signature over the same bytes is an idempotent resubmission, not a replay.
    (await hub.send(fr, env)).ok(200)


async def test_acceptance_evidence_is_the_container_make_evidence_builds(hub: Hub) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    for sender, env in ((fr, hub.seal(fr, de)), (fr, hub.seal(fr, es, de)), (es, hub.seal(es, fr))):
        parsed = parse_envelope(env)
        reference = make_evidence(
            genesis=hub.genesis,
            hub=hub.hub_key,
            kind=EvidenceKind.ACCEPTED,
            message_id=parsed.header.message_id,
            envelope_hash=parsed.hash,
            sender=parsed.header.sender,
            recipients=[r.authority for r in parsed.header.recipients],
            time=hub.now() + 5,
        ).signed.encode()
        assert hub.router.acceptance_evidence(parsed, hub.now() + 5) == reference
        reply = await hub.send(sender, env)
        assert reply.status == 201
        evidence = Evidence.decode(reply.body, hub.genesis)  # verifies the hub's signature
        assert (evidence.kind, evidence.envelope_hash) == (EvidenceKind.ACCEPTED, parsed.hash)


# --- idempotency and conflicts -------------------------------------------------------------


async def test_exact_resubmission_returns_the_original_evidence(hub: Hub) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    env = hub.seal(fr, de, es)
    first = await hub.send(fr, env)
    assert first.status == 201
    messages, items = await by_id(hub), await by_seq(hub)
    hub.clock.advance(120)
    for _ in range(2):
        again = await hub.send(fr, env)
        assert again.status == 200
        assert again.content_type == "application/json"
        assert again.body == first.body  # byte-identical, still timed at the first acceptance
        assert Evidence.decode(again.body, hub.genesis).time == hub.now() - 120
    assert values(await by_id(hub)) == values(messages)
    assert values(await by_seq(hub)) == values(items)
    assert await hub.rows(db.ConflictRecord) == []
    # Still idempotent after a recipient released its copy: nothing is delivered twice.
    (await hub.ack(de, [hub.receipt(de, env)])).ok()
    assert (await hub.send(fr, env)).body == first.body
    assert data_of(await hub.pull(de)) == []
    assert data_of(await hub.pull(es)) == [env]
    assert len(await hub.rows(db.Message)) == 1


async def test_same_id_with_other_bytes_is_a_conflict_and_both_are_kept(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    mid = MessageId.new(crypto.system_rng)
    original = hub.seal(fr, de, message_id=mid, content=b'{"text":"original"}')
    other = hub.seal(fr, de, message_id=mid, content=b'{"text":"substitute"}')
    assert original != other
    assert header_of(original).message_id == header_of(other).message_id == mid
    accepted = await hub.send(fr, original)
    assert accepted.status == 201
    hub.clock.advance(5)
    body = (await hub.send(fr, other)).problem(409, "conflict")
    assert str(mid) in body["detail"]

    (msg,) = await hub.rows(db.Message)
    assert (msg.message_id, msg.data, msg.evidence) == (str(mid), original, accepted.body)
    (conflict,) = await hub.rows(db.ConflictRecord)
    assert (conflict.sender, conflict.message_id, conflict.envelope_hash, conflict.data) == (
        "FR-PNF",
        str(mid),
        envelope_hash(other),
        other,
    )
    assert conflict.time == hub.now()
    assert data_of(await hub.pull(de)) == [original]  # only the first is delivered
    # The original resubmitted is still idempotent; each conflicting attempt is recorded.
    assert (await hub.send(fr, original)).body == accepted.body
    (await hub.send(fr, other)).problem(409, "conflict")
    assert len(await hub.rows(db.ConflictRecord)) == 2
    assert len(await hub.rows(db.Message)) == 1
    # Message ids are per sender: another sender may use the same id.
    es = (await members(hub, "ES-FCC"))[0]
    (await hub.send(es, hub.seal(es, de, message_id=mid))).ok(201)


class HeldWriter:
    """Hold the group-commit writer so that the next submissions land in one batch.

    A first submission (the blocker) is taken by the writer and held at its commit;
    submissions made meanwhile wait in the queue, and :meth:`release` lets the
    writer commit the blocker, then all of them as one batch.
    """

    def __init__(self, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
        self.router = hub.router
        self.gate = asyncio.Event()
        self.batches: list[int] = []
        commit = self.router._commit

        async def gated(batch: Any) -> None:
            self.batches.append(len(batch))
            await self.gate.wait()
            await commit(batch)

        monkeypatch.setattr(self.router, "_commit", gated)

    async def queued(self, count: int) -> None:
        """Wait until the writer holds a batch and ``count`` submissions are queued."""
        await eventually(
            lambda: self.batches and self.router._queue.qsize() >= count,
            what=f"{count} submissions queued behind a held batch",
        )


async def send_in_one_batch(
    hub: Hub,
    monkeypatch: pytest.MonkeyPatch,
    blocker: tuple[Applicant, Applicant],
    sends: list[tuple[Applicant, bytes]],
) -> list[Reply]:
    """Submit ``sends`` so that the writer commits them as one batch, in this order."""
    held = HeldWriter(hub, monkeypatch)
    first = asyncio.create_task(hub.send(blocker[0], hub.seal(*blocker)))
    await held.queued(0)
    tasks = []
    for i, (sender, env) in enumerate(sends):  # one at a time: the queue keeps the order
        tasks.append(asyncio.create_task(hub.send(sender, env)))
        await held.queued(i + 1)
    held.gate.set()
    (await first).ok(201)
    replies = list(await asyncio.gather(*tasks))
    assert held.batches == [1, len(sends)]
    return replies


async def envelope_items(hub: Hub) -> list[tuple[str, int]]:
    """(recipient, messages.id) of every envelope waiting, in mailbox order."""
    return [(i.recipient, i.message or 0) for i in await by_seq(hub) if i.kind == "envelope"]


@pytest.mark.parametrize("same_bytes", [True, False], ids=["same-bytes", "other-bytes"])
async def test_racing_submissions_of_one_id(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, same_bytes: bool
) -> None:
    """Two submissions of one id in one batch: the first wins, the second is answered
    as a resubmission (200, the winner's evidence) or refused as a conflict (409)."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    mid = MessageId.new(crypto.system_rng)
    first = hub.seal(fr, de, message_id=mid)
    second = first if same_bytes else hub.seal(fr, de, message_id=mid)
    assert (first == second) is same_bytes
    winner, loser = await send_in_one_batch(hub, monkeypatch, (fr, de), [(fr, first), (fr, second)])
    assert winner.status == 201
    (msg,) = [m for m in await hub.rows(db.Message) if m.message_id == str(mid)]
    assert (msg.data, msg.evidence) == (first, winner.body)
    if same_bytes:
        assert (loser.status, loser.body) == (200, winner.body)
        assert await hub.rows(db.ConflictRecord) == []
    else:
        assert str(mid) in loser.problem(409, "conflict")["detail"]
        (conflict,) = await hub.rows(db.ConflictRecord)
        assert (conflict.sender, conflict.message_id, conflict.envelope_hash, conflict.data) == (
            "FR-PNF",
            str(mid),
            envelope_hash(second),
            second,
        )
    # One copy waits for the recipient, and the quota counts exactly that.
    assert [m for r, m in await envelope_items(hub) if m == msg.id] == [msg.id]
    assert hub.router.batch_sizes[-1] == 1
    await hub.check_usage()


async def test_batch_mixing_new_envelopes_resubmissions_and_conflicts(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, de, es, it = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC", "IT-GDF")
    stored = hub.seal(fr, de, es)
    accepted = await hub.send(fr, stored)
    assert accepted.status == 201
    stored_id = header_of(stored).message_id
    substitute = hub.seal(fr, de, message_id=stored_id, content=b'{"text":"substitute"}')
    mid = MessageId.new(crypto.system_rng)
    twice = hub.seal(es, de, message_id=mid)
    twice_other = hub.seal(es, de, message_id=mid, content=b'{"text":"other"}')
    new1, new2 = hub.seal(fr, de, es), hub.seal(es, fr)
    hub.clock.advance(10)
    sends = [
        (fr, new1),
        (fr, stored),  # stored before this batch, same bytes
        (es, twice),
        (fr, substitute),  # stored before this batch, other bytes
        (es, twice),  # taken earlier in this batch, same bytes
        (es, twice_other),  # taken earlier in this batch, other bytes
        (es, new2),
    ]
    replies = await send_in_one_batch(hub, monkeypatch, (de, it), sends)
    assert [r.status for r in replies] == [201, 200, 201, 409, 200, 409, 201]
    assert replies[1].body == accepted.body  # the stored evidence, timed at the first acceptance
    assert Evidence.decode(replies[1].body, hub.genesis).time == hub.now() - 10
    assert replies[4].body == replies[2].body
    replies[3].problem(409, "conflict")
    replies[5].problem(409, "conflict")
    for env, reply in zip(sends, replies, strict=True):
        if reply.status == 201:
            evidence = Evidence.decode(reply.body, hub.genesis)
            assert evidence.envelope_hash == envelope_hash(env[1])
            assert evidence.time == hub.now()

    # The batch committed the three new envelopes (and the blocker), in batch order.
    messages = await by_id(hub)
    assert [m.data for m in messages][-3:] == [new1, twice, new2]
    assert len(messages) == 5
    assert {(m.message_id, m.data) for m in messages} >= {
        (str(stored_id), stored),
        (str(mid), twice),
    }
    conflicts = sorted(await hub.rows(db.ConflictRecord), key=lambda c: c.id)
    assert [(c.sender, c.message_id, c.data, c.time) for c in conflicts] == [
        ("FR-PNF", str(stored_id), substitute, hub.now()),
        ("ES-FCC", str(mid), twice_other, hub.now()),
    ]
    # Every recipient holds each accepted envelope exactly once, in acceptance order.
    ids = {m.data: m.id for m in messages}
    items = await envelope_items(hub)
    assert len(items) == len(set(items))
    assert [m for r, m in items if r == "DE-BKA"] == [ids[stored], ids[new1], ids[twice]]
    assert [m for r, m in items if r == "ES-FCC"] == [ids[stored], ids[new1]]
    assert [m for r, m in items if r == "FR-PNF"] == [ids[new2]]
    assert [m for r, m in items if r == "IT-GDF"] == [messages[1].id]  # the blocker
    assert data_of(await hub.pull(es)) == [stored, new1]
    assert hub.router.batch_sizes[-1] == 3
    await hub.check_usage()


# --- mailboxes -----------------------------------------------------------------------------


async def test_mailboxes_keep_acceptance_order_and_page_by_cursor(hub: Hub) -> None:
    fr, es, de, it = await members(hub, "FR-PNF", "ES-FCC", "DE-BKA", "IT-GDF")
    senders = [fr, es, fr, fr, es, es, fr, es, fr, es, es, fr]
    sent: list[bytes] = []
    for i, sender in enumerate(senders):
        to = (de, it) if i % 3 == 0 else (de,)
        env = hub.seal(sender, *to, content=b'{"n":%d}' % i)
        (await hub.send(sender, env)).ok(201)
        sent.append(env)
        hub.clock.advance(1)

    page = await hub.pull(de)
    assert data_of(page) == sent
    cursors = [i["cursor"] for i in page["items"]]
    assert cursors == sorted(set(cursors))
    assert page["cursor"] == cursors[-1]
    assert {i["kind"] for i in page["items"]} == {"envelope"}
    assert data_of(await hub.pull(it)) == sent[::3]
    assert (await hub.pull(fr))["items"] == []

    # Paging with after/limit visits every item once, in order.
    seen: list[bytes] = []
    after = 0
    pages = 0
    while True:
        page = await hub.pull(de, after=after, limit=5)
        pages += 1
        assert len(page["items"]) <= 5
        if not page["items"]:
            assert page["cursor"] == after
            break
        assert page["items"][0]["cursor"] > after
        seen += data_of(page)
        after = page["cursor"]
    assert (seen, pages) == (sent, 4)
    assert data_of(await hub.pull(de, after=cursors[4], limit=2)) == sent[5:7]
    assert await hub.pull(de, after=cursors[-1]) == {"items": [], "cursor": cursors[-1]}
    # Pulling does not consume anything.
    assert data_of(await hub.pull(de)) == sent

    for query in ("limit=0", "limit=501", "after=-1", "after=x", "limit=1.5", f"after={2**53}"):
        reply = await hub.as_member(de, "GET", f"/v1/mailbox?{query}")
        reply.problem(400, "malformed")
    (await hub.get("/v1/mailbox")).problem(401, "unauthorized")


async def test_mailbox_cursors_are_never_reused(
    hub: Hub, db_url: str, request: pytest.FixtureRequest
) -> None:
    """A cursor names one item forever: a puller (or the push stream) resuming after it
    must see every item stored later."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    (await hub.send(fr, env)).ok(201)
    de_cursor = (await hub.pull(de))["cursor"]
    (await hub.ack(de, [hub.receipt(de, env)])).ok()
    (notice,) = (await hub.pull(fr))["items"]
    fr_cursor = notice["cursor"]
    (await hub.ack(fr, notices=[fr_cursor])).ok()  # the mailbox table is empty again
    later = hub.seal(fr, de)
    (await hub.send(fr, later)).ok(201)
    assert data_of(await hub.pull(de, after=de_cursor)) == [later]
    assert fr_cursor > de_cursor


async def test_concurrent_submissions_are_group_committed(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envelopes = [hub.seal(fr, de, content=b'{"n":%d}' % i) for i in range(50)]
    assert hub.router.batch_sizes == []
    replies = await asyncio.gather(*(hub.send(fr, env) for env in envelopes))
    assert [r.status for r in replies] == [201] * 50
    for env, reply in zip(envelopes, replies, strict=True):
        evidence = Evidence.decode(reply.body, hub.genesis)
        assert (evidence.message_id, evidence.envelope_hash) == (
            header_of(env).message_id,
            envelope_hash(env),
        )
    # Every acknowledged envelope was committed, each exactly once.
    messages = await by_id(hub)
    assert sorted(m.data for m in messages) == sorted(envelopes)
    assert {m.evidence for m in messages} == {r.body for r in replies}
    items = await by_seq(hub)
    assert [i.message for i in items] == [m.id for m in messages]  # acceptance order
    assert sum(hub.router.batch_sizes) == 50
    assert max(hub.router.batch_sizes) > 1, hub.router.batch_sizes
    assert data_of(await hub.pull(de)) == [m.data for m in messages]
    assert hub.router.depth()["DE-BKA"] == (50, sum(len(e) for e in envelopes))
    await hub.check_usage()


# --- receipts and acknowledgement ----------------------------------------------------------


async def test_receipt_releases_the_envelope_and_the_sender_gets_delivered_evidence(
    hub: Hub,
) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    env = hub.seal(fr, de, es)
    (await hub.send(fr, env)).ok(201)
    (msg,) = await hub.rows(db.Message)
    hub.clock.advance(30)
    pulled = data_of(await hub.pull(de))
    assert pulled == [env]
    receipt = hub.receipt(de, pulled[0])

    result = (await hub.ack(de, [receipt])).ok()
    assert result == {"released": [msg.message_id], "refused": [], "notices": 0}
    assert (await hub.pull(de))["items"] == []
    assert data_of(await hub.pull(es)) == [env]  # the other recipient's copy still waits
    (delivery,) = await hub.rows(db.Delivery)
    assert (delivery.message, delivery.recipient, delivery.outcome) == (
        msg.id,
        "DE-BKA",
        "delivered",
    )
    assert (delivery.receipt, delivery.time) == (receipt, hub.now())

    # The sender's mailbox holds the receipt and the hub's DELIVERED evidence.
    page = await hub.pull(fr)
    (item,) = page["items"]
    got_receipt, got_evidence = receipt_notice(item)
    assert got_receipt == receipt
    node_view = await hub.directory()  # the sender verifies against its own log replay
    verified = DeliveryReceipt.decode(got_receipt, node_view)
    assert (verified.sender, verified.recipient, verified.key) == (
        fr.authority,
        de.authority,
        de.identity.key_id,
    )
    assert verified.matches(header_of(env).message_id, envelope_hash(env))
    evidence = Evidence.decode(got_evidence, hub.genesis)
    assert evidence.kind is EvidenceKind.DELIVERED
    assert (evidence.message_id, evidence.envelope_hash) == (
        header_of(env).message_id,
        envelope_hash(env),
    )
    assert (evidence.sender, evidence.recipients, evidence.time) == (
        fr.authority,
        (de.authority,),
        hub.now(),
    )
    assert evidence.reason is None
    row = next(i for i in await by_seq(hub) if i.recipient == "FR-PNF")
    assert (row.seq, row.kind, row.message) == (item["cursor"], "receipt", None)
    assert row.payload == canonical.b64d(item["data"], what="notice")

    # Acknowledging the same receipt again releases nothing new.
    again = (await hub.ack(de, [receipt])).ok()
    assert (again["released"], refused(again)) == ([], ["not-found"])
    assert len(await hub.rows(db.Delivery)) == 1
    # The sender drops the notice by its cursor.
    dropped = (await hub.ack(fr, notices=[item["cursor"]])).ok()
    assert dropped == {"released": [], "refused": [], "notices": 1}
    assert (await hub.pull(fr))["items"] == []
    assert (await hub.ack(fr, notices=[item["cursor"]])).ok()["notices"] == 0
    # The second recipient's receipt gives the sender a second notice.
    (await hub.ack(es, [hub.receipt(es, env)])).ok()
    (item,) = (await hub.pull(fr))["items"]
    evidence = Evidence.decode(receipt_notice(item)[1], hub.genesis)
    assert evidence.recipients == (es.authority,)
    assert sorted(d.recipient for d in await hub.rows(db.Delivery)) == ["DE-BKA", "ES-FCC"]
    assert [i.kind for i in await by_seq(hub)] == ["receipt"]
    await hub.check_usage()


async def test_ack_without_a_valid_receipt_releases_nothing(hub: Hub) -> None:
    fr, de, es, it = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC", "IT-GDF")
    env = hub.seal(fr, de, es)
    (await hub.send(fr, env)).ok(201)
    unsent = hub.seal(fr, de)  # never submitted
    items_before = [(i.seq, i.recipient, i.kind) for i in await by_seq(hub)]

    cases: list[tuple[Applicant, bytes, str]] = [
        # signed by a key that is not DE's certified identity key
        (de, hub.receipt(de, env, signer=SigningKey.generate()), "bad-signature"),
        (de, hub.receipt(de, env, signer=de.transport), "bad-signature"),
        (de, hub.receipt(de, env, signer=es.identity), "bad-signature"),
        # DE's valid receipt, presented by another member (even one holding its own copy)
        (es, hub.receipt(de, env), "malformed"),
        (fr, hub.receipt(de, env), "malformed"),
        # over other bytes than the envelope waiting
        (de, hub.receipt(de, env, envelope_digest=envelope_hash(unsent)), "not-found"),
        # for an envelope that is not waiting for the signer
        (de, hub.receipt(de, unsent), "not-found"),
        (it, hub.receipt(it, env), "not-found"),
        # not a receipt at all
        (de, b"not a receipt", "malformed"),
        (de, hub.receipt(de, env)[:-5], "malformed"),
    ]
    for member, receipt, slug in cases:
        result = (await hub.ack(member, [receipt])).ok()
        assert result["released"] == [], (member.authority, slug)
        assert result["notices"] == 0
        (problem,) = result["refused"]
        assert problem["type"] == PROBLEM_BASE + slug, (member.authority, slug, problem)
        if slug == "malformed" and member is not de:
            assert "acknowledged by its signer" in problem["detail"]
    assert [(i.seq, i.recipient, i.kind) for i in await by_seq(hub)] == items_before
    assert await hub.rows(db.Delivery) == []
    assert (await hub.pull(fr))["items"] == []

    # One valid receipt among refused ones: only it takes effect.
    mixed = (await hub.ack(de, [b"junk", hub.receipt(de, env), hub.receipt(de, unsent)])).ok()
    assert mixed["released"] == [str(header_of(env).message_id)]
    assert refused(mixed) == ["malformed", "not-found"]
    assert len(await hub.rows(db.Delivery)) == 1


async def test_one_ack_releases_many_receipts_together_and_refuses_in_request_order(
    hub: Hub,
) -> None:
    """A node acknowledges a whole batch of pushed items at once: every valid receipt is
    released, each refusal is reported where its receipt stood in the request, and the
    notices of the same request are dropped with them."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envs = [hub.seal(fr, de) for _ in range(3)]
    for env in envs:
        (await hub.send(fr, env)).ok(201)
    first = (await hub.ack(de, [hub.receipt(de, envs[0])])).ok()
    assert first["released"] == [str(header_of(envs[0]).message_id)]
    notices = [i.seq for i in await by_seq(hub) if i.recipient == "FR-PNF"]
    assert len(notices) == 1
    batch = [
        hub.receipt(de, envs[1]),
        b"junk",
        hub.receipt(de, envs[0]),  # released already
        hub.receipt(de, envs[2]),
        hub.receipt(de, envs[1]),  # twice in one request: released once
    ]
    result = (await hub.ack(de, batch)).ok()
    assert result["released"] == [str(header_of(e).message_id) for e in (envs[1], envs[2])]
    assert refused(result) == ["malformed", "not-found", "not-found"]
    assert result["notices"] == 0  # DE's own notices: none; FR's are FR's to drop
    dropped = (await hub.ack(fr, [], notices)).ok()
    assert dropped == {"released": [], "refused": [], "notices": 1}
    deliveries = await hub.rows(db.Delivery)
    assert sorted(d.outcome for d in deliveries) == ["delivered"] * 3
    assert [i.kind for i in await by_seq(hub)] == ["receipt"] * 2  # FR's for envs 1 and 2
    await hub.check_usage()


async def test_an_ack_that_fails_to_commit_releases_none_of_its_receipts(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receipts of one request commit together: a storage failure part-way through
    leaves every envelope waiting, and the node's retry of the same request succeeds."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envs = [hub.seal(fr, de) for _ in range(3)]
    for env in envs:
        (await hub.send(fr, env)).ok(201)
    receipts = [hub.receipt(de, env) for env in envs]
    before = [(i.seq, i.recipient, i.kind) for i in await by_seq(hub)]
    calls = 0
    real = hub.router.delivery_evidence

    def failing(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real(*args)

    monkeypatch.setattr(hub.router, "delivery_evidence", failing)
    (await hub.ack(de, receipts)).problem(503, "storage")
    assert [(i.seq, i.recipient, i.kind) for i in await by_seq(hub)] == before
    assert await hub.rows(db.Delivery) == []
    await hub.check_usage()
    monkeypatch.undo()
    again = (await hub.ack(de, receipts)).ok()
    assert again["released"] == [str(header_of(e).message_id) for e in envs]
    await hub.check_usage()


async def test_ack_body_is_validated(hub: Hub) -> None:
    (de,) = await members(hub, "DE-BKA")
    receipt = canonical.b64e(b"x")
    for body, slug in (
        (b"not json", "invalid-json"),
        (b"[]", "malformed"),
        (b"{}", "malformed"),
        (orjson.dumps({"receipts": []}), "malformed"),
        (orjson.dumps({"notices": []}), "malformed"),
        (orjson.dumps({"receipts": [1], "notices": []}), "malformed"),
        (orjson.dumps({"receipts": [""], "notices": []}), "malformed"),
        (orjson.dumps({"receipts": ["***"], "notices": []}), "malformed"),
        (orjson.dumps({"receipts": [], "notices": [-1]}), "malformed"),
        (orjson.dumps({"receipts": [], "notices": ["1"]}), "malformed"),
        (orjson.dumps({"receipts": [], "notices": [True]}), "malformed"),
        (orjson.dumps({"receipts": [], "notices": [1.5]}), "number-out-of-range"),
        (b'{"receipts": [], "receipts": [], "notices": []}', "duplicate-key"),
        (orjson.dumps({"receipts": [receipt] * 501, "notices": []}), "malformed"),
        (orjson.dumps({"receipts": [], "notices": list(range(501))}), "malformed"),
    ):
        reply = await hub.as_member(de, "POST", "/v1/mailbox/ack", body)
        assert reply.status == 400, body[:60]
        assert reply.json["type"] == PROBLEM_BASE + slug, (body[:60], reply.json)
    extra = orjson.dumps({"receipts": [], "notices": [], "drop": "all"})
    (await hub.as_member(de, "POST", "/v1/mailbox/ack", extra)).problem(400, "unknown-field")
    assert (await hub.ack(de)).ok() == {"released": [], "refused": [], "notices": 0}
    (await hub.request("POST", "/v1/mailbox/ack", b"{}")).problem(401, "unauthorized")


async def test_concurrent_acks_of_one_receipt_release_it_once(hub: Hub) -> None:
    """A node retrying an ack while the first is in flight: one release, no 500."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    for _ in range(4):  # the interleaving is up to the scheduler: try a few times
        env = hub.seal(fr, de)
        (await hub.send(fr, env)).ok(201)
        receipt = hub.receipt(de, env)
        replies = await asyncio.gather(*(hub.ack(de, [receipt]) for _ in range(3)))
        results = [r.ok() for r in replies]
        assert sorted(len(r["released"]) for r in results) == [0, 0, 1], results
        assert sorted(refused(r) for r in results) == [[], ["not-found"], ["not-found"]]
    deliveries = await hub.rows(db.Delivery)
    assert sorted(d.outcome for d in deliveries) == ["delivered"] * 4
    assert [i.kind for i in await by_seq(hub)] == ["receipt"] * 4
    await hub.check_usage()


async def test_envelopes_are_never_dropped_by_cursor(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    (await hub.send(fr, env)).ok(201)
    (item,) = (await hub.pull(de))["items"]
    # Neither the sender nor the recipient itself can drop an envelope as a "notice".
    assert (await hub.ack(fr, notices=[item["cursor"]])).ok()["notices"] == 0
    assert (await hub.ack(de, notices=[item["cursor"]])).ok()["notices"] == 0
    assert data_of(await hub.pull(de)) == [env]
    # Nor can anyone drop another member's notice.
    (await hub.ack(de, [hub.receipt(de, env)])).ok()
    (notice,) = (await hub.pull(fr))["items"]
    assert (await hub.ack(de, notices=[notice["cursor"]])).ok()["notices"] == 0
    assert (await hub.pull(fr))["items"] == [notice]
    # Unknown cursors are ignored.
    assert (await hub.ack(fr, notices=[10**9])).ok()["notices"] == 0
    assert (await hub.ack(fr, notices=[notice["cursor"], 10**9])).ok()["notices"] == 1


# --- expiry ----------------------------------------------------------------------------------


async def test_expired_envelope_is_removed_and_the_sender_gets_non_delivery(hub: Hub) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    short = hub.seal(fr, de, es, lifetime=600)
    long = hub.seal(fr, de, lifetime=7200)
    for env in (short, long):
        (await hub.send(fr, env)).ok(201)
    short_id = next(m.id for m in await hub.rows(db.Message) if m.data == short)
    # ES acknowledges in time; DE does not.
    (await hub.ack(es, [hub.receipt(es, short)])).ok()
    (receipt_notice,) = (await hub.pull(fr))["items"]

    hub.clock.advance(599)
    assert await hub.router.expire() == 0
    hub.clock.advance(1)  # now == expires: no longer deliverable
    assert await hub.router.expire() == 1
    assert await hub.router.expire() == 0

    assert data_of(await hub.pull(de)) == [long]
    deliveries = {(d.message, d.recipient): d for d in await hub.rows(db.Delivery)}
    assert set(deliveries) == {(short_id, "DE-BKA"), (short_id, "ES-FCC")}
    expired = deliveries[(short_id, "DE-BKA")]
    assert (expired.outcome, expired.receipt, expired.time) == ("expired", None, hub.now())
    assert deliveries[(short_id, "ES-FCC")].outcome == "delivered"

    page = await hub.pull(fr)
    assert [i["kind"] for i in page["items"]] == ["receipt", "non-delivery"]
    assert page["items"][0] == receipt_notice
    item = page["items"][1]
    evidence = Evidence.decode(canonical.b64d(item["data"], what="evidence"), hub.genesis)
    assert evidence.kind is EvidenceKind.NON_DELIVERY
    assert evidence.reason == "expired"
    assert (evidence.message_id, evidence.envelope_hash) == (
        header_of(short).message_id,
        envelope_hash(short),
    )
    assert (evidence.sender, evidence.recipients, evidence.time) == (
        fr.authority,
        (de.authority,),
        hub.now(),
    )
    row = next(i for i in await by_seq(hub) if i.seq == item["cursor"])
    assert (row.recipient, row.kind, row.message) == ("FR-PNF", "non-delivery", None)
    assert row.payload == canonical.b64d(item["data"], what="evidence")

    # Too late to acknowledge; the notices are dropped by cursor.
    late = (await hub.ack(de, [hub.receipt(de, short)])).ok()
    assert (late["released"], refused(late)) == ([], ["not-found"])
    cursors = [i["cursor"] for i in page["items"]]
    assert (await hub.ack(fr, notices=cursors)).ok()["notices"] == 2
    assert hub.router.depth()["FR-PNF"] == (0, 0)
    assert hub.router.depth()["DE-BKA"] == (1, len(long))
    assert hub.router.depth()["ES-FCC"] == (0, 0)
    # The accepted message itself is kept as the record the evidence refers to.
    assert len(await hub.rows(db.Message)) == 2
    await hub.check_usage()


async def test_expiry_racing_receipts_settles_each_envelope_once(hub: Hub) -> None:
    """Receipts arriving while the sweep runs: each envelope ends delivered XOR expired."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envelopes = [hub.seal(fr, de, lifetime=600) for _ in range(12)]
    for env in envelopes:
        (await hub.send(fr, env)).ok(201)
    receipts = [hub.receipt(de, env) for env in envelopes]
    hub.clock.advance(600)  # expired now, but the sweep has not run yet
    sweep = asyncio.create_task(hub.router.expire())
    replies = await asyncio.gather(*(hub.ack(de, [r]) for r in receipts[::-1]))
    expired_count = await sweep
    results = [r.ok() for r in replies]
    released = sum(len(r["released"]) for r in results)
    assert all(refused(r) in ([], ["not-found"]) for r in results), results
    deliveries = await hub.rows(db.Delivery)
    assert len(deliveries) == 12  # one outcome per envelope, no more
    by_outcome = sorted(d.outcome for d in deliveries)
    assert by_outcome == ["delivered"] * released + ["expired"] * (12 - released)
    assert expired_count == 12 - released
    notices = sorted(i.kind for i in await hub.rows(db.MailboxItem))
    assert notices == ["non-delivery"] * (12 - released) + ["receipt"] * released
    await hub.check_usage()


# --- quotas ----------------------------------------------------------------------------------


async def test_mailbox_count_quota(make_hub: HubFactory) -> None:
    hub = await make_hub(limits=RoutingLimits(mailbox_count=2))
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    first, second, third = (hub.seal(fr, de, content=b'{"n":%d}' % i) for i in range(3))
    for env in (first, second):
        (await hub.send(fr, env)).ok(201)
    messages, items = await by_id(hub), await by_seq(hub)

    body = (await hub.send(fr, third)).problem(507, "mailbox-full")
    assert "DE-BKA" in body["detail"]
    (await hub.send(es, hub.seal(es, de))).problem(507, "mailbox-full")  # per recipient
    (await hub.send(fr, hub.seal(fr, es, de))).problem(507, "mailbox-full")  # all or nothing
    assert values(await by_id(hub)) == values(messages)
    assert values(await by_seq(hub)) == values(items)
    assert (await hub.send(fr, first)).status == 200  # resubmission is not a new item
    (await hub.send(fr, hub.seal(fr, es))).ok(201)  # other mailboxes are unaffected

    # A receipt frees a slot.
    result = (await hub.ack(de, [hub.receipt(de, first)])).ok()
    assert result["released"] == [str(header_of(first).message_id)]
    (await hub.send(fr, third)).ok(201)
    (await hub.send(fr, hub.seal(fr, de))).problem(507, "mailbox-full")
    assert data_of(await hub.pull(de)) == [second, third]
    # Notices count against the mailbox they wait in: FR holds one receipt notice.
    assert hub.router.depth()["FR-PNF"][0] == 1
    await hub.check_usage()


async def test_mailbox_bytes_quota(make_hub: HubFactory) -> None:
    hub = await make_hub()
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envelopes = [hub.seal(fr, de) for _ in range(3)]
    assert len({len(e) for e in envelopes}) == 1  # same size: same ids, same bucket
    hub.router.limits = RoutingLimits(mailbox_bytes=2 * len(envelopes[0]) + 10)
    (await hub.send(fr, envelopes[0])).ok(201)
    (await hub.send(fr, envelopes[1])).ok(201)
    (await hub.send(fr, envelopes[2])).problem(507, "mailbox-full")
    assert len(await hub.rows(db.Message)) == 2
    small = hub.router.limits.mailbox_bytes - 2 * len(envelopes[0])
    assert hub.router.depth()["DE-BKA"] == (2, hub.router.limits.mailbox_bytes - small)


async def test_mailbox_frees_slots_on_expiry(make_hub: HubFactory) -> None:
    hub = await make_hub(limits=RoutingLimits(mailbox_count=1))
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    (await hub.send(fr, hub.seal(fr, de, lifetime=60))).ok(201)
    (await hub.send(fr, hub.seal(fr, de))).problem(507, "mailbox-full")
    hub.clock.advance(60)
    assert await hub.router.expire() == 1
    (await hub.send(fr, hub.seal(fr, de))).ok(201)


async def test_mailbox_quota_holds_under_concurrent_submissions(make_hub: HubFactory) -> None:
    hub = await make_hub(limits=RoutingLimits(mailbox_count=2))
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envelopes = [hub.seal(fr, de, content=b'{"n":%d}' % i) for i in range(8)]
    replies = await asyncio.gather(*(hub.send(fr, env) for env in envelopes))
    assert sorted(r.status for r in replies) == [201] * 2 + [507] * 6
    assert len(await hub.rows(db.MailboxItem)) == 2


# --- durability ------------------------------------------------------------------------------


async def test_a_failed_group_commit_acknowledges_nothing(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    stored = hub.seal(fr, de)
    accepted = await hub.send(fr, stored)
    assert accepted.status == 201
    envelopes = [hub.seal(fr, de, content=b'{"n":%d}' % i) for i in range(3)]
    failed = hub.fail_commits(monkeypatch)
    replies = await asyncio.gather(*(hub.send(fr, env) for env in [*envelopes, stored]))
    for reply in replies:  # the resubmission too: it is answered only after a commit
        reply.problem(503, "storage")
        assert reply.headers["Retry-After"] == "1"
    assert sum(failed) == 4
    (msg,) = await hub.rows(db.Message)
    assert msg.data == stored
    assert len(await hub.rows(db.MailboxItem)) == 1
    assert hub.router.depth()["DE-BKA"] == (1, len(stored))
    monkeypatch.undo()  # the next batch gets a fresh connection and commits
    replies = await asyncio.gather(*(hub.send(fr, env) for env in [*envelopes, stored]))
    assert [r.status for r in replies] == [201, 201, 201, 200]
    assert replies[3].body == accepted.body
    pulled = data_of(await hub.pull(de))
    assert (pulled[0], sorted(pulled[1:])) == (stored, sorted(envelopes))  # each exactly once
    await hub.check_usage()


async def test_the_sqlite_writer_connection_is_as_durable_as_the_others(hub: Hub) -> None:
    """The group commit's own SQLite connection: WAL, synchronous=FULL, foreign keys."""
    writer = db.make_writer_engine(hub.engine)
    if hub.engine.dialect.name != "sqlite":
        assert writer is None  # PostgreSQL: the writer keeps an async Core connection
        return
    assert writer is not None
    try:
        with writer.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys")
            ]
    finally:
        writer.dispose()
    assert pragmas == ["wal", 2, 1]  # synchronous 2 = FULL


async def test_accepted_envelope_survives_a_restart(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    accepted = await hub.send(fr, env)
    assert accepted.status == 201

    # A brand-new service and router on a new engine over the same database.
    engine = db.make_engine(hub.engine.url.render_as_string(hide_password=False))
    service = HubService(genesis=hub.genesis, hub_key=hub.hub_key, engine=engine, clock=hub.clock)
    router: Router | None = None
    try:
        await service.start()
        router = Router(service, limits=hub.router.limits)
        await router.start()
        assert router.depth() == {"DE-BKA": (1, len(env))}
        page = await router.pull(hub.principal(de), 0, 10)
        assert [(i.kind, i.data) for i in page.items] == [("envelope", env)]
        assert page.cursor == page.items[0].cursor
        # Idempotency survives the restart too: the same bytes get the same evidence.
        assert await router.submit(env, hub.principal(fr)) == (200, accepted.body)
        result = await router.ack(hub.principal(de), [hub.receipt(de, env)], [])
        assert result == AckResult(
            released=(str(header_of(env).message_id),), refused=(), notices=0
        )
    finally:
        if router is not None:
            await router.stop()
        await engine.dispose()
    assert (await hub.pull(de))["items"] == []
    assert [i["kind"] for i in (await hub.pull(fr))["items"]] == ["receipt"]


async def test_metrics_count_acceptance_duplicates_and_refusals(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    (await hub.send(fr, env)).ok(201)
    (await hub.send(fr, env)).ok(200)
    bad = bytearray(hub.seal(fr, de))
    bad[-1] ^= 1
    (await hub.send(fr, bytes(bad))).problem(401, "bad-signature")
    reply = await hub.get("/metrics")
    assert reply.status == 200
    assert reply.content_type == "text/plain"
    lines = reply.body.decode().splitlines()
    assert "globe_hub_messages_accepted_total 1" in lines
    assert "globe_hub_messages_duplicate_total 1" in lines
    assert 'globe_hub_refused_total{reason="bad-signature"} 1' in lines
    assert "globe_hub_mailbox_items 1" in lines
    assert "globe_hub_commit_batch_size_count 1" in lines
    assert "globe_hub_accept_latency_seconds_count 1" in lines
    assert any(
        line.startswith('globe_hub_request_duration_seconds_count{route="/v1/messages"} ')
        for line in lines
    )

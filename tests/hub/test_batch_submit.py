"""``POST /v1/messages/batch`` (PROTOCOL.md §10.6): several envelopes in one signed request.

Checked whole (any defect refuses it: nothing submitted), then each envelope submitted as
``POST /v1/messages`` would submit it alone, in one group commit, each after the first paying
a token of the sender key's bucket.  On SQLite and PostgreSQL over loopback HTTP; the client
also against a fake server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from globe_io.errors import NotFound, RateLimited, RemoteError
from globe_io.hubapi import BATCH_MAX_BODY, BATCH_MAX_ITEMS
from globe_io.hubclient import HubClient
from hub import db
from hub.routing import Router
from hub.web import create_app
from protocol import canonical, crypto
from protocol.envelope import envelope_hash, parse_envelope
from protocol.errors import (
    PROBLEM_BASE,
    AuthError,
    ConflictError,
    GlobeError,
    MalformedError,
    StorageError,
    UnknownField,
    UsageError,
)
from protocol.ids import MessageId
from protocol.keys import SigningKey
from protocol.membership import Action
from protocol.receipts import Evidence, EvidenceKind, make_evidence
from protocol.requestauth import HEADER
from tests.hub.conftest import Hub

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant

BATCH = "/v1/messages/batch"
NAMES = {
    "FR-PNF": "Parquet national financier",
    "DE-BKA": "Bundeskriminalamt",
    "ES-FCC": "Fiscalia contra la Corrupcion",
    "IT-GDF": "Guardia di Finanza",
}
STORAGE_DETAIL = "the envelope could not be stored; it was not accepted: retry"


async def members(hub: Hub, *authorities: str) -> list[Applicant]:
    return [await hub.admit(a, NAMES[a]) for a in authorities]


def body_of(items: Sequence[object]) -> bytes:
    return orjson.dumps({"envelopes": list(items)})


async def submit(hub: Hub, sender: Applicant, envelopes: Sequence[bytes]) -> list[dict[str, Any]]:
    """The batch, signed by ``sender``; asserts 200 and one result per envelope."""
    reply = await hub.as_member(
        sender, "POST", BATCH, body_of([canonical.b64e(e) for e in envelopes])
    )
    answer = reply.ok()
    assert list(answer) == ["results"]
    results: list[dict[str, Any]] = answer["results"]
    assert len(results) == len(envelopes)
    return results


def evidence_for(
    hub: Hub, env: bytes, kind: EvidenceKind, time: int, reason: str | None = None
) -> bytes:
    """The exact evidence container the hub signs for ``env`` (signatures are deterministic)."""
    h = parse_envelope(env).header
    return make_evidence(
        genesis=hub.genesis, hub=hub.hub_key, kind=kind, message_id=h.message_id,
        envelope_hash=envelope_hash(env), sender=h.sender,
        recipients=[r.authority for r in h.recipients], time=time, reason=reason,
    ).signed.encode()  # fmt: skip


def check_accepted(hub: Hub, result: dict[str, Any], env: bytes, status: int, time: int) -> bytes:
    """An acceptance (201 or 200) of ``env`` with evidence timed ``time``; its bytes."""
    assert set(result) == {"status", "evidence"}, result
    assert result["status"] == status
    data = canonical.b64d(result["evidence"], what="evidence")
    evidence = Evidence.decode(data, hub.genesis)
    assert (evidence.kind, evidence.envelope_hash, evidence.time) == (
        EvidenceKind.ACCEPTED, envelope_hash(env), time,
    )  # fmt: skip
    assert evidence.message_id == parse_envelope(env).header.message_id
    assert data == evidence_for(hub, env, EvidenceKind.ACCEPTED, time)
    return data


def check_refused(
    hub: Hub, result: dict[str, Any], env: bytes, status: int, slug: str, *,
    rejected: bool = False, retry_after: int | None = None,
) -> None:  # fmt: skip
    """A refusal of ``env``: status, type, a detail; rejected evidence and a wait iff given."""
    keys = {"status", "type", "detail"}
    keys |= {"evidence"} if rejected else set()
    keys |= {"retry_after"} if retry_after is not None else set()
    assert set(result) == keys, result
    assert (result["status"], result["type"]) == (status, PROBLEM_BASE + slug), result
    assert isinstance(result["detail"], str)
    assert result["detail"]
    assert result.get("retry_after") == retry_after
    if rejected:
        data = canonical.b64d(result["evidence"], what="evidence")
        evidence = Evidence.decode(data, hub.genesis)
        assert (evidence.kind, evidence.reason, evidence.envelope_hash) == (
            EvidenceKind.REJECTED, slug, envelope_hash(env),
        )  # fmt: skip
        assert data == evidence_for(hub, env, EvidenceKind.REJECTED, hub.now(), slug)


async def snapshot(hub: Hub) -> dict[str, list[tuple[Any, ...]]]:
    return await hub.table_rows(db.Message, db.MailboxItem, db.ConflictRecord, db.Delivery)


async def stored(hub: Hub) -> list[bytes]:
    """The stored envelopes, in acceptance (id) order."""
    return [m.data for m in sorted(await hub.rows(db.Message), key=lambda m: m.id)]


@asynccontextmanager
async def limited(hub: Hub, *, burst: int, rate: float) -> AsyncIterator[Hub]:
    """A second app over the same service, with a small rate limit (members are admitted
    through ``hub``, whose own limit admission would exhaust)."""
    router = Router(hub.service, limits=hub.router.limits)
    app = create_app(
        hub.service, clock=hub.clock, router=router, burst=burst, rate_per_second=rate,
        expiry_interval=3600,
    )  # fmt: skip
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Hub(
            genesis=hub.genesis, admins=hub.admins, hub_key=hub.hub_key, clock=hub.clock,
            engine=hub.engine, service=hub.service, client=client, router=router,
        )  # fmt: skip
    finally:
        await client.close()


# --- acceptance ---------------------------------------------------------------------------------


async def test_a_batch_is_accepted_in_order_in_one_commit_and_again_idempotently(
    hub: Hub,
) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    large = hub.seal(fr, de, content=b'{"text":"' + b"x" * 100_000 + b'"}')
    envs = [hub.seal(fr, de), hub.seal(fr, es, de), large, hub.seal(fr, es), hub.seal(fr, de)]
    assert len(body_of([canonical.b64e(e) for e in envs])) > 64 * 1024  # over max_body
    now = hub.now()

    results = await submit(hub, fr, envs)
    first = [check_accepted(hub, r, e, 201, now) for r, e in zip(results, envs, strict=True)]
    assert hub.router.batch_sizes == [len(envs)]  # one group commit held them all
    messages = sorted(await hub.rows(db.Message), key=lambda m: m.id)
    assert [(m.sender, m.data, m.evidence, m.accepted) for m in messages] == [
        ("FR-PNF", e, ev, now) for e, ev in zip(envs, first, strict=True)
    ]
    ids = [m.id for m in messages]
    items = sorted(await hub.rows(db.MailboxItem), key=lambda i: i.seq)
    assert [(i.recipient, i.kind, i.message, i.size) for i in items] == [
        (str(r.authority), "envelope", ids[n], len(e))
        for n, e in enumerate(envs)
        for r in parse_envelope(e).header.recipients
    ]
    await hub.check_usage()
    before = await snapshot(hub)

    hub.clock.advance(60)
    again = await submit(hub, fr, envs)
    for r, e, ev in zip(again, envs, first, strict=True):
        assert check_accepted(hub, r, e, 200, now) == ev  # byte-identical, the first's time
    assert await snapshot(hub) == before
    assert hub.router.batch_sizes == [len(envs)]  # nothing new was committed
    await hub.check_usage()


async def test_a_full_batch_is_one_commit(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envs = [hub.seal(fr, de, content=b'{"n":%d}' % i) for i in range(BATCH_MAX_ITEMS)]
    results = await submit(hub, fr, envs)
    for r, e in zip(results, envs, strict=True):
        check_accepted(hub, r, e, 201, hub.now())
    assert hub.router.batch_sizes == [BATCH_MAX_ITEMS]
    assert await stored(hub) == envs


async def test_a_mixed_batch_answers_each_envelope_as_the_single_route(hub: Hub) -> None:
    fr, de, es, it = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC", "IT-GDF")
    earlier = hub.seal(fr, de)
    first = await hub.send(fr, earlier)
    assert first.status == 201
    await hub.set_status(it, Action.SUSPEND, "under review")
    hub.clock.advance(10)
    valid = hub.seal(fr, de, es)
    mid = parse_envelope(earlier).header.message_id
    conflict = hub.seal(fr, de, message_id=mid, content=b'{"text":"substitute"}')
    tampered = bytearray(hub.seal(fr, de))
    tampered[-1] ^= 1
    to_inactive = hub.seal(fr, it)
    sends = [
        valid,
        earlier,  # exact resubmission
        conflict,  # same id, other bytes
        hub.seal(es, de),  # another member's envelope
        bytes(tampered),
        to_inactive,
        b"GLBE",  # base64url of something that is no envelope: this item only
    ]
    results = await submit(hub, fr, sends)

    assert [r["status"] for r in results] == [201, 200, 409, 400, 401, 403, 400]
    check_accepted(hub, results[0], valid, 201, hub.now())
    assert check_accepted(hub, results[1], earlier, 200, hub.now() - 10) == first.body
    check_refused(hub, results[2], conflict, 409, "conflict", rejected=True)
    assert results[2]["detail"] == f"message {mid} was accepted before with other bytes"
    check_refused(hub, results[3], sends[3], 400, "malformed")
    assert results[3]["detail"] == "an envelope is submitted by its sender"
    check_refused(hub, results[4], sends[4], 401, "bad-signature")
    check_refused(hub, results[5], to_inactive, 403, "member-not-active", rejected=True)
    assert results[5]["detail"].startswith("IT-GDF is suspended")
    check_refused(hub, results[6], sends[6], 400, "truncated")

    assert await stored(hub) == [earlier, valid]
    (record,) = await hub.rows(db.ConflictRecord)
    assert (record.sender, record.message_id, record.data, record.time) == (
        "FR-PNF", str(mid), conflict, hub.now(),
    )  # fmt: skip
    ids = {m.data: m.id for m in await hub.rows(db.Message)}
    items = sorted(await hub.rows(db.MailboxItem), key=lambda i: i.seq)
    assert [(i.recipient, i.message) for i in items] == [
        ("DE-BKA", ids[earlier]), ("DE-BKA", ids[valid]), ("ES-FCC", ids[valid]),
    ]  # fmt: skip
    assert hub.router.batch_sizes[-1] == 1
    await hub.check_usage()

    # Each refusal is the one POST /v1/messages gives the same envelope alone, evidence too.
    for env, result in zip(sends, results, strict=True):
        if result["status"] < 400:
            continue
        slug = result["type"].removeprefix(PROBLEM_BASE)
        alone = (await hub.send(fr, env)).problem(result["status"], slug)
        assert alone["detail"] == result["detail"]
        assert alone.get("evidence") == result.get("evidence")


async def test_an_envelope_over_max_envelope_is_refused_alone_as_by_the_single_route(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    cap = 16 * 1024
    monkeypatch.setattr(hub.router, "limits", replace(hub.router.limits, max_envelope=cap))
    valid, huge = hub.seal(fr, de), b"GLBE" + bytes(cap - 3)
    results = await submit(hub, fr, [huge, valid])
    check_refused(hub, results[0], huge, 413, "payload-too-large")
    assert results[0]["detail"] == f"envelope of {cap + 1} bytes exceeds {cap}"
    check_accepted(hub, results[1], valid, 201, hub.now())
    assert await stored(hub) == [valid]
    (await hub.send(fr, huge)).problem(413, "payload-too-large")


@pytest.mark.parametrize("same_bytes", [True, False], ids=["same-bytes", "other-bytes"])
async def test_one_id_twice_in_a_batch(hub: Hub, same_bytes: bool) -> None:
    """Both land in one group commit: the first is stored, the second is answered as a
    resubmission of it (200, the first's evidence) or refused as a conflict (409)."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    mid = MessageId.new(crypto.system_rng)
    env = hub.seal(fr, de, message_id=mid)
    second = env if same_bytes else hub.seal(fr, de, message_id=mid, content=b'{"text":"2"}')
    results = await submit(hub, fr, [env, second])
    evidence = check_accepted(hub, results[0], env, 201, hub.now())
    if same_bytes:
        assert check_accepted(hub, results[1], env, 200, hub.now()) == evidence
        assert await hub.rows(db.ConflictRecord) == []
    else:
        check_refused(hub, results[1], second, 409, "conflict", rejected=True)
        (record,) = await hub.rows(db.ConflictRecord)
        assert (record.message_id, record.data) == (str(mid), second)
    assert hub.router.batch_sizes == [1]
    assert await stored(hub) == [env]
    assert len(await hub.rows(db.MailboxItem)) == 1
    await hub.check_usage()


# --- rate limit ---------------------------------------------------------------------------------


async def test_each_envelope_after_the_first_takes_a_token(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envs = [hub.seal(fr, de, content=b'{"n":%d}' % i) for i in range(6)]
    async with limited(hub, burst=4, rate=0.25) as lim:
        results = await submit(lim, fr, envs)
        for r, e in zip(results[:4], envs[:4], strict=True):  # the request's token, then 3
            check_accepted(hub, r, e, 201, hub.now())
        for r, e in zip(results[4:], envs[4:], strict=True):
            check_refused(hub, r, e, 429, "rate-limited", retry_after=4)  # 1 token at 0.25/s
            assert r["detail"] == "too many requests; retry in 4 s"
        assert await stored(hub) == envs[:4]
        assert len(await hub.rows(db.MailboxItem)) == 4

        # No token left for the request itself: refused whole.
        body = body_of([canonical.b64e(envs[4])])
        reply = await lim.as_member(fr, "POST", BATCH, body)
        assert reply.problem(429, "rate-limited")["instance"] == BATCH
        assert reply.headers["Retry-After"] == "4"
        # Another key has its own bucket.
        other = hub.seal(de, fr)
        check_accepted(hub, (await submit(lim, de, [other]))[0], other, 201, hub.now())
        assert await stored(hub) == [*envs[:4], other]

        hub.clock.advance(4)  # one token again
        results = await submit(lim, fr, envs[4:])
        check_accepted(hub, results[0], envs[4], 201, hub.now())
        check_refused(hub, results[1], envs[5], 429, "rate-limited", retry_after=4)
        assert await stored(hub) == [*envs[:4], other, envs[4]]
        await lim.check_usage()


# --- refusals of the whole request --------------------------------------------------------------


def _items(n: int) -> Callable[[str], bytes]:
    return lambda e: body_of([e] * n)


BAD_BODIES: list[tuple[str, Callable[[str], bytes], int, str]] = [
    ("not-json", lambda e: b"envelopes: " + e.encode(), 400, "invalid-json"),
    ("trailing-data", lambda e: body_of([e]) + b" []", 400, "trailing-data"),
    ("duplicate-key", lambda e: b'{"envelopes":["%s"],"envelopes":[]}' % e.encode(), 400,
     "duplicate-key"),
    ("unknown-key", lambda e: orjson.dumps({"envelopes": [e], "mode": "all"}), 400,
     "unknown-field"),
    ("not-an-object", lambda e: orjson.dumps([e]), 400, "malformed"),
    ("missing", lambda e: orjson.dumps({"envelope": [e]}), 400, "malformed"),
    ("not-an-array", lambda e: orjson.dumps({"envelopes": e}), 400, "malformed"),
    ("empty", _items(0), 400, "malformed"),
    ("65-items", _items(BATCH_MAX_ITEMS + 1), 400, "malformed"),
    ("item-not-a-string", lambda e: body_of([e, 1]), 400, "malformed"),
    ("item-null", lambda e: body_of([e, None]), 400, "malformed"),
    ("item-a-fraction", lambda e: b'{"envelopes":["%s",1.5]}' % e.encode(), 400,
     "number-out-of-range"),
    ("item-empty", lambda e: body_of([e, ""]), 400, "malformed"),
    ("item-stray-bits", lambda e: body_of([e, "AB"]), 400, "non-canonical"),
    ("item-padded", lambda e: body_of([e, "AA=="]), 400, "malformed"),
    ("item-standard-alphabet", lambda e: body_of([e, "+/+/"]), 400, "malformed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "status", "slug"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
async def test_a_defective_body_refuses_the_whole_request(
    hub: Hub, make: Callable[[str], bytes], status: int, slug: str
) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    valid = canonical.b64e(hub.seal(fr, de))  # beside the defect: not submitted either
    reply = await hub.as_member(fr, "POST", BATCH, make(valid))
    assert reply.problem(status, slug)["instance"] == BATCH
    assert "evidence" not in reply.json
    assert hub.router.batch_sizes == []
    assert await stored(hub) == []
    assert await hub.rows(db.MailboxItem) == []


async def test_requests_not_authenticated_by_the_sender_submit_nothing(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    body = body_of([canonical.b64e(env)])
    other = body_of([canonical.b64e(hub.seal(fr, de))])
    headers = [
        None,  # unsigned
        "Globe-Auth garbage",
        hub.auth(SigningKey.generate(), "POST", BATCH, body),  # an unknown key
        hub.auth(hub.admins[0], "POST", BATCH, body),  # an admin's key is no member's
        hub.auth(fr.identity, "POST", BATCH, body),  # the identity key, not the transport key
        hub.auth(fr.transport, "POST", BATCH, other),  # over other bytes
        hub.auth(fr.transport, "POST", "/v1/messages", body),  # for another route
        hub.auth(fr.transport, "POST", BATCH, body, audience="DE-BKA"),  # meant for a node
        hub.auth(fr.transport, "POST", BATCH, body, network=bytes(32)),  # another network
    ]
    for header in headers:
        reply = await hub.request("POST", BATCH, body, header=header)
        reply.problem(401, "unauthorized")
    stale = hub.auth(fr.transport, "POST", BATCH, body, created=hub.now() - 3600)
    (await hub.request("POST", BATCH, body, header=stale)).problem(401, "stale-request")
    assert (hub.router.batch_sizes, await stored(hub)) == ([], [])

    # A replayed request is refused as one, even though its envelope would be a resubmission.
    header = hub.auth(fr.transport, "POST", BATCH, body)
    reply = await hub.request("POST", BATCH, body, header=header)
    check_accepted(hub, reply.ok()["results"][0], env, 201, hub.now())
    before = await snapshot(hub)
    (await hub.request("POST", BATCH, body, header=header)).problem(409, "replay")
    assert await snapshot(hub) == before
    assert hub.router.batch_sizes == [1]


async def test_an_oversized_batch_is_refused_before_it_is_read(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    head = (
        f"POST {BATCH} HTTP/1.1\r\n"
        f"Host: {hub.client.host}\r\n"
        f"Content-Length: {BATCH_MAX_BODY + 1}\r\n"
        "Content-Type: application/json\r\n"
        f"{HEADER}: {hub.auth(fr.transport, 'POST', BATCH, b'{}')}\r\n\r\n"
    ).encode()
    start = body_of([canonical.b64e(hub.seal(fr, de))])[:-2]  # 1 KiB of the declared 8 MiB
    raw = await hub.raw_http([head, start])
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 "), raw[:300]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in headers.lower()
    problem = orjson.loads(body)
    assert (problem["type"], problem["status"], problem["instance"]) == (
        PROBLEM_BASE + "payload-too-large", 413, BATCH,
    )  # fmt: skip
    assert await stored(hub) == []


# --- storage failure ----------------------------------------------------------------------------


async def test_a_failed_commit_refuses_every_envelope_for_a_retry(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    earlier = hub.seal(fr, de)
    first = await hub.send(fr, earlier)
    assert first.status == 201
    envs = [hub.seal(fr, de), hub.seal(fr, de), earlier, hub.seal(fr, de)]
    failed = hub.fail_commits(monkeypatch)
    before = await snapshot(hub)
    results = await submit(hub, fr, envs)
    for r, e in zip(results, envs, strict=True):  # the resubmission too: no commit answered it
        check_refused(hub, r, e, 503, "storage", retry_after=1)
        assert r["detail"] == STORAGE_DETAIL
    assert failed == [4]
    assert await snapshot(hub) == before
    await hub.check_usage()

    monkeypatch.undo()
    results = await submit(hub, fr, envs)
    assert [r["status"] for r in results] == [201, 201, 200, 201]
    for r, e in zip(results, envs, strict=True):
        if e is not earlier:
            check_accepted(hub, r, e, 201, hub.now())
    assert canonical.b64d(results[2]["evidence"], what="evidence") == first.body
    assert await stored(hub) == [earlier, envs[0], envs[1], envs[3]]
    await hub.check_usage()


# --- metrics --------------------------------------------------------------------------------------


async def test_metrics_count_each_envelope(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    earlier = hub.seal(fr, de)
    (await hub.send(fr, earlier)).ok(201)
    a, b = hub.seal(fr, de), hub.seal(fr, de)
    tampered = bytearray(hub.seal(fr, de))
    tampered[-1] ^= 1
    results = await submit(hub, fr, [a, earlier, b, a, bytes(tampered)])
    assert [r["status"] for r in results] == [201, 200, 201, 200, 401]
    (await hub.as_member(fr, "POST", BATCH, body_of([]))).problem(400, "malformed")
    assert (hub.router.metrics.accepted, hub.router.metrics.duplicates) == (3, 2)
    lines = (await hub.get("/metrics")).body.decode().splitlines()
    assert "globe_hub_messages_accepted_total 3" in lines
    assert "globe_hub_messages_duplicate_total 2" in lines
    assert "globe_hub_accept_latency_seconds_count 3" in lines
    assert "globe_hub_commit_batch_size_count 2" in lines  # the single one, then the batch
    assert 'globe_hub_refused_total{reason="bad-signature"} 1' in lines
    assert 'globe_hub_refused_total{reason="malformed"} 1' in lines
    assert f'globe_hub_request_duration_seconds_count{{route="{BATCH}"}} 2' in lines


# --- the client -----------------------------------------------------------------------------------


async def test_the_client_returns_each_outcome(hub: Hub) -> None:
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    earlier = hub.seal(fr, de)
    first = await hub.send(fr, earlier)
    assert first.status == 201
    mid = parse_envelope(earlier).header.message_id
    new, conflict = hub.seal(fr, de), hub.seal(fr, de, message_id=mid, content=b'{"t":"x"}')
    foreign, late = hub.seal(de, fr), hub.seal(fr, de)
    async with limited(hub, burst=4, rate=0.25) as lim:
        base = str(lim.client.make_url("")).rstrip("/")
        client = HubClient(base, network=hub.genesis.digest, key=fr.transport, clock=hub.clock)
        try:
            out = await client.submit_messages([new, earlier, conflict, foreign, late])
            assert out[:2] == [
                (201, evidence_for(hub, new, EvidenceKind.ACCEPTED, hub.now())),
                (200, first.body),
            ]
            refused, malformed, too_soon = out[2:]
            assert type(refused) is ConflictError
            assert refused.evidence == evidence_for(
                hub, conflict, EvidenceKind.REJECTED, hub.now(), "conflict"
            )
            assert type(malformed) is MalformedError
            assert malformed.detail == "an envelope is submitted by its sender"
            assert malformed.evidence is None
            assert type(too_soon) is RateLimited
            assert (too_soon.retry_after, too_soon.evidence) == (4, None)
            # The whole request without a token: raised.
            with pytest.raises(RateLimited) as whole:
                await client.submit_messages([late])
            assert whole.value.retry_after == 4
            hub.clock.advance(4)
            got = await client.submit_messages([late])
            assert got == [(201, evidence_for(hub, late, EvidenceKind.ACCEPTED, hub.now()))]
        finally:
            await client.close()
    assert await stored(hub) == [earlier, new, late]


class FakeHub:
    """A loopback server answering every request with one canned response."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, bytes] = (200, "application/json", b"{}")
        self.seen: list[tuple[str, str, bytes, str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path, await request.read(),
                          request.headers.get(HEADER)))  # fmt: skip
        status, ctype, body = self.answer
        return web.Response(status=status, body=body, content_type=ctype)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeHub, HubClient]]:
    hub = FakeHub()
    app = web.Application(client_max_size=BATCH_MAX_BODY * 2)
    app.router.add_route("*", "/{tail:.*}", hub.handle)
    server = TestServer(app)
    await server.start_server()
    client = HubClient(
        str(server.make_url("")).rstrip("/"), network=bytes(32), key=SigningKey.generate()
    )
    try:
        yield hub, client
    finally:
        await client.close()
        await server.close()


def answer(results: object, **extra: object) -> tuple[int, str, bytes]:
    return 200, "application/json", orjson.dumps({"results": results, **extra})


OK = {"status": 201, "evidence": "AA"}
CONFLICT = PROBLEM_BASE + "conflict"
BAD_ANSWERS: list[tuple[str, tuple[int, str, bytes], type[GlobeError], str]] = [
    ("too-few", answer([OK]), MalformedError, "1 results for 2 envelopes"),
    ("too-many", answer([OK, OK, OK]), MalformedError, "3 results for 2 envelopes"),
    ("no-evidence", answer([OK, {"status": 201}]), MalformedError, r"\[1\]: not an acceptance"),
    ("acceptance-with-type", answer([OK, {**OK, "type": CONFLICT}]), MalformedError,
     "not an acceptance"),
    ("acceptance-with-detail", answer([OK, {**OK, "detail": "d"}]), MalformedError,
     "not an acceptance"),
    ("acceptance-with-wait", answer([{**OK, "retry_after": 1}, OK]), MalformedError,
     r"\[0\]: not an acceptance"),
    ("no-type", answer([{"status": 409, "detail": "d"}, OK]), MalformedError,
     r"\[0\]: not a refusal"),
    ("no-detail", answer([OK, {"status": 409, "type": CONFLICT}]), MalformedError,
     "not a refusal"),
    ("not-4xx-5xx", answer([OK, {"status": 302, "type": CONFLICT, "detail": "d"}]),
     MalformedError, "not a refusal"),
    ("status-a-string", answer([OK, {"status": "201", "evidence": "AA"}]), MalformedError,
     "must be an integer"),
    ("evidence-not-base64url", answer([OK, {"status": 201, "evidence": "A"}]), MalformedError,
     "base64url"),
    ("unknown-key-in-result", answer([OK, {**OK, "note": "x"}]), UnknownField, "note"),
    ("unknown-key", answer([OK, OK], more=True), UnknownField, "more"),
    ("results-not-an-array", answer({"0": OK}), MalformedError, "must be an array"),
    ("not-json", (200, "application/json", b"<html>"), MalformedError, "not JSON"),
    ("no-route", (404, "application/problem+json", orjson.dumps(
        {"type": PROBLEM_BASE + "not-found", "status": 404, "detail": "no such resource"})),
     NotFound, "no such resource"),
    ("whole-refusal", (401, "application/problem+json", orjson.dumps(
        {"type": PROBLEM_BASE + "unauthorized", "status": 401, "detail": "failed"})),
     AuthError, "failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("response", "error", "match"), [c[1:] for c in BAD_ANSWERS], ids=[c[0] for c in BAD_ANSWERS]
)
async def test_the_client_refuses_a_bad_answer(
    fake: tuple[FakeHub, HubClient],
    response: tuple[int, str, bytes],
    error: type[GlobeError],
    match: str,
) -> None:
    server, client = fake
    server.answer = response
    with pytest.raises(error, match=match) as raised:
        await client.submit_messages([b"one", b"two"])
    assert type(raised.value) is error
    assert len(server.seen) == 1


async def test_the_client_maps_each_result_and_checks_the_count_first(
    fake: tuple[FakeHub, HubClient],
) -> None:
    server, client = fake
    server.answer = answer([
        OK,
        {"status": 200, "evidence": canonical.b64e(b"\x01")},
        {"status": 409, "type": CONFLICT, "detail": "taken", "evidence": canonical.b64e(b"\x02")},
        {"status": 429, "type": PROBLEM_BASE + "rate-limited", "detail": "slow", "retry_after": 7},
        {"status": 503, "type": PROBLEM_BASE + "storage", "detail": "s", "retry_after": 1},
        {"status": 418, "type": "https://example.invalid/teapot", "detail": "t"},
    ])  # fmt: skip
    envelopes = [bytes([i]) * 3 for i in range(6)]
    out = await client.submit_messages(envelopes)
    method, path, body, auth = server.seen[0]
    assert (method, path, auth is not None) == ("POST", BATCH, True)
    assert body == canonical.encode({"envelopes": [canonical.b64e(e) for e in envelopes]})
    assert out[:2] == [(201, b"\x00"), (200, b"\x01")]
    conflict, limited_, storage, teapot = out[2:]
    assert type(conflict) is ConflictError
    assert (conflict.detail, conflict.evidence) == ("taken", b"\x02")
    assert type(limited_) is RateLimited
    assert (limited_.detail, limited_.retry_after) == ("slow", 7)
    assert type(storage) is StorageError
    assert type(teapot) is RemoteError
    assert (teapot.detail, teapot.http_status) == ("t", 418)

    for count in (0, BATCH_MAX_ITEMS + 1):
        with pytest.raises(UsageError, match="1 to 64 envelopes"):
            await client.submit_messages([b"x"] * count)
    # over the body cap once in base64url: refused before anything is sent
    big = [b"x" * (BATCH_MAX_BODY // 8)] * 7
    with pytest.raises(UsageError, match=f"exceeds {BATCH_MAX_BODY}"):
        await client.submit_messages(big)
    assert len(server.seen) == 1  # no request for those

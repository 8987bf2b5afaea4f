"""HTTP behaviour: problem+json everywhere, body caps, query validation, rate limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import pytest

from globe_io.errors import RateLimited
from hub import db
from hub.web import TokenBuckets
from protocol.keys import SigningKey
from protocol.requestauth import HEADER

if TYPE_CHECKING:
    from tests.hub.conftest import Hub, HubFactory


def _split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def test_unknown_route_is_a_problem(hub: Hub) -> None:
    reply = await hub.get("/v1/nope")
    body = reply.problem(404, "not-found")
    assert body["instance"] == "/v1/nope"
    (await hub.request("POST", "/v2/applications", b"{}")).problem(404, "not-found")
    (await hub.get("/")).problem(404, "not-found")


async def test_wrong_method_is_a_problem(hub: Hub) -> None:
    reply = await hub.request("DELETE", "/v1/prekeys")
    body = reply.problem(405, "method-not-allowed")
    assert body["instance"] == "/v1/prekeys"
    assert reply.headers["Allow"] == "PUT"  # RFC 9110 §15.5.6: a 405 names the allowed methods
    reply = await hub.request("GET", "/v1/admin/actions")
    reply.problem(405, "method-not-allowed")
    assert reply.headers["Allow"] == "POST"
    (await hub.request("PUT", "/v1/applications", b"{}")).problem(405, "method-not-allowed")


async def test_malformed_query_parameters(hub: Hub) -> None:
    for target in (
        "/v1/directory/log?limit=abc",
        "/v1/directory/log?limit=0",
        "/v1/directory/log?limit=501",
        "/v1/directory/log?limit=-1",
        "/v1/directory/log?since=-1",
        "/v1/directory/log?since=1.5",
        "/v1/directory/log?since=9999999999999999",
        "/v1/directory/search?language=eng",
        "/v1/directory/search?q=" + "x" * 201,
    ):
        body = (await hub.get(target)).problem(400, "malformed")
        assert body["instance"] == target.split("?")[0]
    reply = await hub.admin("GET", "/v1/admin/audit?limit=nope")
    reply.problem(400, "malformed")
    reply = await hub.admin("GET", "/v1/admin/applications?status=%E2%80%AEpending")
    reply.problem(400, "malformed")
    (await hub.get("/v1/directory/log?limit=500&since=0")).ok()


async def test_openapi_document_is_served(hub: Hub) -> None:
    reply = await hub.get("/v1/openapi.json")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert isinstance(reply.json, dict)


async def test_oversized_body_is_refused_before_it_is_read(hub: Hub) -> None:
    # Announce 100 MB, send a few bytes, and wait: the hub answers at once.
    head = (
        b"POST /v1/applications HTTP/1.1\r\nHost: hub\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
    )
    raw = await hub.raw_http([head + b'{"payload":'])
    status, headers, body = _split_response(raw)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body[: int(headers["content-length"])])
    assert problem["type"] == "https://globe-link.invalid/problems/payload-too-large"
    assert problem["status"] == 413
    # The same for authenticated endpoints: refused before authentication work.
    raw = await hub.raw_http([head.replace(b"/v1/applications", b"/v1/admin/actions")])
    assert _split_response(raw)[0] == 413
    # Through the client, just over the 64 KiB cap (with a length, and chunked).
    (await hub.request("POST", "/v1/applications", b"x" * (64 * 1024 + 1))).problem(
        413, "payload-too-large"
    )

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(9):
            yield b"y" * 8192

    async with hub.client.post("/v1/applications", data=chunks()) as resp:
        assert resp.status == 413
        assert (await resp.json(content_type=None))["type"].endswith("/payload-too-large")
    assert await hub.rows(db.Application) == []


async def test_body_arriving_in_pieces_is_read_whole(hub: Hub) -> None:
    # The body is read to its end, not just the first segment that arrived.
    applicant = hub.applicant()
    body = applicant.application.signed.encode()
    head = (
        f"POST /v1/applications HTTP/1.1\r\nHost: hub\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    raw = await hub.raw_http([head + body[:100], body[100:2000], body[2000:]], pause=0.05)
    status, _, answer = _split_response(raw)
    assert status == 201, answer
    assert json.loads(answer)["status"] == "awaiting-pop"
    (row,) = await hub.rows(db.Application)
    assert row.data == body


async def test_body_exactly_at_the_cap_is_read(make_hub: HubFactory) -> None:
    hub = await make_hub(max_body=4096)
    applicant = hub.applicant()
    body = applicant.application.signed.encode()
    assert len(body) < 4096
    padded = body + b" " * (4096 - len(body))  # trailing space: not canonical, but read whole
    (await hub.request("POST", "/v1/applications", padded)).problem(400, "non-canonical")
    (await hub.request("POST", "/v1/applications", padded + b" ")).problem(413, "payload-too-large")


async def test_rate_limit(make_hub: HubFactory) -> None:
    hub = await make_hub(burst=3, rate_per_second=0.5)
    for _ in range(3):
        (await hub.get("/healthz")).ok()
    reply = await hub.get("/healthz")
    body = reply.problem(429, "rate-limited")
    assert reply.headers["Retry-After"] == "2"  # one token at 0.5 per second
    assert body["instance"] == "/healthz"
    # Every route shares the address's bucket, authenticated or not.
    (await hub.admin("GET", "/v1/admin/audit")).problem(429, "rate-limited")
    (await hub.get("/v1/nope")).problem(429, "rate-limited")
    hub.clock.advance(1)  # half a token
    assert (await hub.get("/healthz")).headers["Retry-After"] == "1"
    hub.clock.advance(1)
    (await hub.get("/healthz")).ok()
    (await hub.get("/healthz")).problem(429, "rate-limited")
    hub.clock.advance(3600)  # refills to the burst, no further
    for _ in range(3):
        (await hub.get("/healthz")).ok()
    (await hub.get("/healthz")).problem(429, "rate-limited")


async def test_rate_limit_per_key(make_hub: HubFactory) -> None:
    # Each address has its bucket, and so has each key, whatever address it comes from.
    hub = await make_hub(burst=4, rate_per_second=1.0)

    async def from_address(address: str, key: SigningKey) -> tuple[int, str | None, bytes]:
        target = "/v1/admin/audit"
        headers = {HEADER: hub.auth(key, "GET", target)}
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(hub.client.make_url(target), headers=headers) as resp,
        ):
            return resp.status, resp.headers.get("Retry-After"), await resp.read()

    for address in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"):
        assert (await from_address(address, hub.admins[0]))[0] == 200
    status, retry_after, body = await from_address("127.0.0.4", hub.admins[0])
    assert (status, retry_after) == (429, "1")
    assert json.loads(body)["type"].endswith("/rate-limited")
    assert (await from_address("127.0.0.4", hub.admins[1]))[0] == 200  # another key


async def test_concurrent_requests(hub: Hub) -> None:
    replies = await asyncio.gather(*(hub.get("/v1/directory/search") for _ in range(20)))
    assert {r.status for r in replies} == {200}


def test_token_buckets_forget_refilled_buckets() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=1.0, burst=3, clock=lambda: now[0], max_keys=2)
    for key in ("a", "b"):
        for _ in range(3):
            buckets.take(key)
    with pytest.raises(RateLimited) as limited:
        buckets.take("a")
    assert limited.value.retry_after == 1
    now[0] = 3600.0  # long idle: "a" and "b" are full again and carry no information
    buckets.take("c")
    assert set(buckets._buckets) <= {"c"}  # (a nearly full bucket may be dropped too)
    for _ in range(3):
        buckets.take("c")
    with pytest.raises(RateLimited):  # the busy key is still limited
        buckets.take("c")
    for _ in range(3):
        buckets.take("a")  # a forgotten key starts again with a full bucket

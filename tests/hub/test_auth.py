"""Signed requests (PROTOCOL.md §10): uniform refusal, replay, staleness, tampering."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING

from hub import db
from protocol.errors import AuthError
from protocol.keys import SigningKey
from protocol.membership import Action
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant, Hub, Reply


def _prekey(hub: Hub, member: Applicant) -> bytes:
    return hub.prekey(member).signed.encode()


async def test_suspended_and_revoked_members_get_the_unknown_key_refusal(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    other = await hub.admit("DE-BKA", "Bundeskriminalamt")
    (await hub.as_member(member, "PUT", "/v1/prekeys", _prekey(hub, member))).ok(201)

    async def refusal(key: SigningKey, body: bytes) -> Reply:
        return await hub.request("PUT", "/v1/prekeys", body, key=key)

    unknown = await refusal(SigningKey.generate(), _prekey(hub, member))
    reference = unknown.problem(401, "unauthorized")
    assert reference["detail"] == AuthError("request authentication failed").detail
    assert reference["instance"] == "/v1/prekeys"

    # The identity key is not a request key (R3), and a bad signature looks the same.
    assert (await refusal(member.identity, _prekey(hub, member))).json == reference
    forged = hub.auth(member.transport, "PUT", "/v1/prekeys", b"other body")
    reply = await hub.request("PUT", "/v1/prekeys", _prekey(hub, member), header=forged)
    assert (reply.status, reply.json) == (401, reference)
    assert (await hub.request("PUT", "/v1/prekeys", b"x")).json == reference  # no header
    bad_header = await hub.request("PUT", "/v1/prekeys", b"x", header="v1;kid=nonsense")
    assert bad_header.json == reference

    await hub.set_status(member, Action.SUSPEND, "under review")
    suspended = await hub.as_member(member, "PUT", "/v1/prekeys", _prekey(hub, member))
    assert (suspended.status, suspended.content_type) == (401, unknown.content_type)
    assert suspended.json == reference
    assert suspended.body == unknown.body  # byte for byte

    await hub.set_status(member, Action.REINSTATE, "cleared")
    (await hub.as_member(member, "PUT", "/v1/prekeys", _prekey(hub, member))).ok(201)

    await hub.set_status(member, Action.REVOKE, "left the network")
    revoked = await hub.as_member(member, "PUT", "/v1/prekeys", _prekey(hub, member))
    assert revoked.status == 401
    assert revoked.body == unknown.body
    # Another member is unaffected.
    (await hub.as_member(other, "PUT", "/v1/prekeys", _prekey(hub, other))).ok(201)


async def test_expired_certificate_cannot_authenticate(hub: Hub) -> None:
    member = await hub.admit()
    reference = (await hub.request("PUT", "/v1/prekeys", b"x", key=SigningKey.generate())).json
    hub.clock.advance(731 * 86400)  # certificates are issued for 730 days
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", _prekey(hub, member))
    assert (reply.status, reply.json) == (401, reference)


async def test_replayed_request_is_refused(hub: Hub) -> None:
    member = await hub.admit()
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/audit")
    (await hub.request("GET", "/v1/admin/audit", header=header)).ok()
    body = (await hub.request("GET", "/v1/admin/audit", header=header)).problem(409, "replay")
    assert body["instance"] == "/v1/admin/audit"
    # A replayed member write is refused before any work (not "already published").
    prekey = _prekey(hub, member)
    header = hub.auth(member.transport, "PUT", "/v1/prekeys", prekey)
    (await hub.request("PUT", "/v1/prekeys", prekey, header=header)).ok(201)
    (await hub.request("PUT", "/v1/prekeys", prekey, header=header)).problem(409, "replay")
    assert len(await hub.rows(db.Prekey)) == 1
    # Still refused later inside the window, and the nonce is in the database.
    hub.clock.advance(59)
    (await hub.request("PUT", "/v1/prekeys", prekey, header=header)).problem(409, "replay")
    nonces = await hub.rows(db.Nonce)
    assert str(member.transport.key_id) in {n.key_id for n in nonces}


async def test_stale_request_is_refused(hub: Hub) -> None:
    skew = hub.service.clock_skew
    assert skew == 60
    header = hub.auth(hub.admins[1], "GET", "/v1/admin/audit")
    hub.clock.advance(skew + 1)
    reply = await hub.request("GET", "/v1/admin/audit", header=header)
    reply.problem(401, "stale-request")
    # From the future, too.
    future = hub.auth(hub.admins[1], "GET", "/v1/admin/audit", created=hub.now() + skew + 1)
    (await hub.request("GET", "/v1/admin/audit", header=future)).problem(401, "stale-request")
    # The edges of the window are accepted.
    for created in (hub.now() - skew, hub.now() + skew):
        edge = hub.auth(hub.admins[1], "GET", "/v1/admin/audit", created=created)
        (await hub.request("GET", "/v1/admin/audit", header=edge)).ok()


async def test_tampered_requests_are_refused(hub: Hub) -> None:
    member = await hub.admit()
    nonces_before = len(await hub.rows(db.Nonce))
    prekey = _prekey(hub, member)
    # Body changed after signing.
    header = hub.auth(member.transport, "PUT", "/v1/prekeys", prekey)
    other = _prekey(hub, member)
    (await hub.request("PUT", "/v1/prekeys", other, header=header)).problem(401, "unauthorized")
    # Query string added or changed after signing.
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/audit?limit=5")
    reply = await hub.request("GET", "/v1/admin/audit?limit=6", header=header)
    reply.problem(401, "unauthorized")
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/audit")
    reply = await hub.request("GET", "/v1/admin/audit?limit=1", header=header)
    reply.problem(401, "unauthorized")
    # Path changed (signed for one admin endpoint, sent to another).
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/proposals")
    (await hub.request("GET", "/v1/admin/audit", header=header)).problem(401, "unauthorized")
    # Signed for another audience or another network.
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/audit", audience="FR-PNF")
    (await hub.request("GET", "/v1/admin/audit", header=header)).problem(401, "unauthorized")
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/audit", network=bytes(32))
    (await hub.request("GET", "/v1/admin/audit", header=header)).problem(401, "unauthorized")
    # Another admin's key id with this admin's signature.
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/audit")
    swapped = header.replace(str(hub.admins[0].key_id), str(hub.admins[1].key_id))
    (await hub.request("GET", "/v1/admin/audit", header=swapped)).problem(401, "unauthorized")
    assert await hub.rows(db.Prekey) == []
    # Nothing above consumed a nonce: refused requests leave no trace.
    assert len(await hub.rows(db.Nonce)) == nonces_before


async def test_signed_query_string_is_accepted(hub: Hub) -> None:
    target = "/v1/admin/audit?since=0&limit=2"
    reply = await hub.admin("GET", target)
    assert len(reply.ok()["records"]) == 0
    await hub.admit()
    records = (await hub.admin("GET", target)).ok()["records"]
    assert [r["id"] for r in records] == [1, 2]
    more = (await hub.admin("GET", "/v1/admin/audit?since=2&limit=10")).ok()["records"]
    assert more[0]["id"] == 3


async def test_header_is_parsed_strictly(hub: Hub) -> None:
    good = hub.auth(hub.admins[0], "GET", "/v1/admin/audit")
    for header in (
        good + "x",  # trailing whitespace is not part of a field value (RFC 9110)
        good.replace("v1;", "v2;"),
        good.replace(";nonce=", ";nonce=A"),
        "",
        "v1",
    ):
        reply = await hub.request("GET", "/v1/admin/audit", header=header)
        reply.problem(401, "unauthorized")
    assert HEADER == "Globe-Auth"
    # Sanity: the untouched header still works (it was never consumed).
    (await hub.request("GET", "/v1/admin/audit", header=good)).ok()


async def test_real_time_is_not_used(hub: Hub) -> None:
    # Requests are judged by the hub's clock, not by the test machine's.
    assert abs(hub.now() - time.time()) > 3600
    (await hub.admin("GET", "/v1/admin/audit")).ok()


async def test_concurrent_replay_succeeds_once(hub: Hub) -> None:
    header = hub.auth(hub.admins[0], "GET", "/v1/admin/audit")
    replies = await asyncio.gather(
        *(hub.request("GET", "/v1/admin/audit", header=header) for _ in range(5))
    )
    assert sorted(r.status for r in replies) == [200, 409, 409, 409, 409]


async def test_expired_nonces_are_swept(hub: Hub) -> None:
    def signed(first_byte: int) -> str:
        return sign_request(
            key=hub.admins[0],
            network=hub.genesis.digest,
            audience=HUB_AUDIENCE,
            method="GET",
            target="/v1/admin/audit",
            body=b"",
            created=hub.now(),
            rng=lambda n: bytes([first_byte]) + secrets.token_bytes(n - 1),
        )

    old = signed(0xFF)  # a nonce that does not trigger a sweep
    (await hub.request("GET", "/v1/admin/audit", header=old)).ok()
    (row,) = await hub.rows(db.Nonce)
    assert row.expires == hub.now() + 2 * hub.service.clock_skew
    hub.clock.advance(2 * hub.service.clock_skew)
    (await hub.request("GET", "/v1/admin/audit", header=signed(0xFF))).ok()
    assert len(await hub.rows(db.Nonce)) == 2  # the first is not expired yet (kept to its end)
    hub.clock.advance(1)
    (await hub.request("GET", "/v1/admin/audit", header=signed(0x00))).ok()  # sweeps
    remaining = await hub.rows(db.Nonce)
    assert len(remaining) == 2
    assert row.nonce not in {r.nonce for r in remaining}
    # The swept nonce's request is long stale: it still cannot be replayed.
    (await hub.request("GET", "/v1/admin/audit", header=old)).problem(401, "stale-request")

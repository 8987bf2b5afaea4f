"""Signed prekeys: published by the member, verified against the certified identity key (R6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub import db
from hub.service import MAX_PREKEYS
from protocol import canonical
from protocol.ids import AuthorityId
from protocol.membership import Action
from protocol.prekeys import SignedPrekey

if TYPE_CHECKING:
    from tests.hub.conftest import Hub


async def test_publish_and_fetch_a_prekey(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    prekey = hub.prekey(member)
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", prekey.signed.encode())
    assert reply.ok(201) == {
        "authority": "FR-PNF",
        "key_id": str(prekey.key.key_id),
        "not_after": prekey.not_after,
    }
    (row,) = await hub.rows(db.Prekey)
    assert (row.authority, row.key_id, row.data) == (
        "FR-PNF",
        str(prekey.key.key_id),
        prekey.signed.encode(),
    )

    got = (await hub.get("/v1/prekeys/FR-PNF")).ok()
    assert got["authority"] == "FR-PNF"
    (served,) = got["prekeys"]
    # A sender checks it against the identity key certified in the verified log.
    state = await hub.directory()
    identity = state.identity_key(
        member.authority, member.identity.key_id, hub.now()
    )  # certified, active, valid now
    verified = SignedPrekey.decode(
        canonical.b64d(served, what="prekey"), hub.genesis, identity, authority=member.authority
    )
    assert verified.key == prekey.key
    verified.check_valid_at(hub.now())

    # Newest first; publishing the same prekey twice is a conflict.
    later = hub.prekey(member, start=30)
    (await hub.as_member(member, "PUT", "/v1/prekeys", later.signed.encode())).ok(201)
    again = await hub.as_member(member, "PUT", "/v1/prekeys", later.signed.encode())
    again.problem(409, "state-conflict")
    got = (await hub.get("/v1/prekeys/FR-PNF")).ok()["prekeys"]
    assert [canonical.b64d(p, what="p") for p in got] == [
        later.signed.encode(),
        prekey.signed.encode(),
    ]
    # A prekey that starts later than the clock-skew allowance is not served yet.
    future = hub.prekey(member, start=3600)
    (await hub.as_member(member, "PUT", "/v1/prekeys", future.signed.encode())).ok(201)
    assert len((await hub.get("/v1/prekeys/FR-PNF")).ok()["prekeys"]) == 2
    # Expired prekeys are no longer served.
    hub.clock.advance(30 * 86400)
    got = (await hub.get("/v1/prekeys/FR-PNF")).ok()["prekeys"]
    assert [canonical.b64d(p, what="p") for p in got] == [
        future.signed.encode(),
        later.signed.encode(),
    ]


async def test_prekey_naming_another_authority_is_refused(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    await hub.admit("DE-BKA", "Bundeskriminalamt")
    wrong = hub.prekey(member, authority=AuthorityId.parse("DE-BKA"))
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", wrong.signed.encode())
    body = reply.problem(400, "malformed")
    assert "FR-PNF" in body["detail"]
    assert await hub.rows(db.Prekey) == []
    assert (await hub.get("/v1/prekeys/DE-BKA")).ok()["prekeys"] == []


async def test_prekey_signed_by_another_key_is_refused(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    other = await hub.admit("DE-BKA", "Bundeskriminalamt")
    for signer in (member.transport, other.identity, hub.admins[0]):
        wrong = hub.prekey(member, signer=signer)
        reply = await hub.as_member(member, "PUT", "/v1/prekeys", wrong.signed.encode())
        reply.problem(401, "bad-signature")
    assert await hub.rows(db.Prekey) == []


async def test_prekey_validity_is_checked(hub: Hub) -> None:
    member = await hub.admit()
    expired = hub.prekey(member, start=-2 * 86400, days=1)
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", expired.signed.encode())
    reply.problem(400, "malformed")
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", b"not json")
    reply.problem(400, "malformed")
    for i in range(MAX_PREKEYS):
        prekey = hub.prekey(member, start=i)
        (await hub.as_member(member, "PUT", "/v1/prekeys", prekey.signed.encode())).ok(201)
    extra = hub.prekey(member, start=MAX_PREKEYS)
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", extra.signed.encode())
    reply.problem(409, "state-conflict")
    assert len(await hub.rows(db.Prekey)) == MAX_PREKEYS


async def test_prekeys_of_unknown_authority(hub: Hub) -> None:
    (await hub.get("/v1/prekeys/FR-PNF")).problem(403, "unknown-member")
    member = await hub.admit()
    await hub.set_status(member, Action.SUSPEND, "under review")
    prekey = hub.prekey(member)
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", prekey.signed.encode())
    reply.problem(401, "unauthorized")


async def test_prekeys_of_inactive_members_are_not_served(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    prekey = hub.prekey(member)
    (await hub.as_member(member, "PUT", "/v1/prekeys", prekey.signed.encode())).ok(201)
    assert len((await hub.get("/v1/prekeys/FR-PNF")).ok()["prekeys"]) == 1
    await hub.set_status(member, Action.SUSPEND, "inquiry")
    (await hub.get("/v1/prekeys/FR-PNF")).problem(403, "member-not-active")
    (await hub.get("/v1/prekeys/DE-BKA")).problem(403, "unknown-member")

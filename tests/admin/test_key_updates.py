"""``globe-admin key-updates``, ``show-keys``, ``approve-keys``, ``reject-keys``: the admins
certify a member's new keys by quorum (PROTOCOL.md §6.8), against a real hub.

The request is verified again against the whole log from the pinned genesis and the
draft ``update-keys`` is signed only if it is exactly the one the request asks for; a hub
that alters the draft gets no signature.
"""

from __future__ import annotations

import orjson

from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keyupdate import KeyUpdateRequest, make_key_update
from protocol.membership import kem_pop_answer
from tests.admin.desk import Desk, Member
from tests.admin.runner import assert_refused

FR = AuthorityId.parse("FR-PNF")


async def _ask(desk: Desk, member: Member) -> tuple[str, KeyUpdateRequest, SigningKey]:
    """FR-PNF asks for three new keys and proves the new key-agreement key."""
    identity, transport, ka = SigningKey.generate(), SigningKey.generate(), KemPrivateKey.generate()
    data = make_key_update(
        genesis=desk.genesis, authority=member.authority, current=member.identity,
        identity=identity, transport=transport, ka_key=ka.public_key, created=int(desk.clock()),
    ).encode()  # fmt: skip
    hub = desk.client()
    created = await hub.submit_key_update(data)
    request = KeyUpdateRequest.decode(data, await desk.directory())
    await hub.answer_key_update(created.id, kem_pop_answer(ka, request.digest, created.challenge))
    return created.id, request, identity


async def test_two_admins_certify_the_new_keys(desk: Desk) -> None:
    member = await desk.admit("FR-PNF")
    ku_id, request, identity = await _ask(desk, member)
    listed = await desk.admin("key-updates", "--status", "pending")
    assert listed.code == 0, listed.err
    assert listed.out.startswith(f"{ku_id}  FR-PNF       pending")
    assert listed.out.rstrip().endswith("identity, transport, key-agreement")
    shown = (await desk.admin("show-keys", ku_id[:8], "--json")).json()
    assert (shown["id"], shown["authority"], shown["member_status"]) == (ku_id, "FR-PNF", "active")
    assert shown["replaced"] == ["identity", "transport", "key-agreement"]
    assert shown["new"]["fingerprint"] == request.fingerprint()
    assert shown["new"]["identity_key"] == str(identity.key_id)
    assert shown["current"]["identity_key"] == str(member.identity.key_id)
    assert (shown["draft"]["matches"], shown["draft"]["detail"]) == (
        True, "the draft update-keys certifies exactly the keys the member asked for",
    )  # fmt: skip
    first = await desk.admin("approve-keys", ku_id)
    assert (first.code, first.out, first.err) == (
        0, "FR-PNF: update-keys signature 1 of 2; 1 more admin(s) must sign\n", "",
    )  # fmt: skip
    state = await desk.directory()
    second = await desk.admin("approve-keys", ku_id, key=1)
    assert (second.code, second.out, second.err) == (
        0, f"FR-PNF re-keyed at log entry {state.seq + 1}\n", "",
    )  # fmt: skip
    cert = (await desk.directory()).member(FR).certificate
    assert cert.identity_key == identity.verify_key
    assert cert.application == request.digest
    again = await desk.admin("approve-keys", ku_id, key=2)
    assert_refused(
        again, f"key update {ku_id} does not verify against the log: key update: it replaces no key"
    )


async def test_a_draft_the_hub_altered_is_not_signed(desk: Desk) -> None:
    member = await desk.admit("FR-PNF")
    ku_id, _request, _identity = await _ask(desk, member)
    draft = (await desk.client(desk.admins[0]).admin_key_update(ku_id)).draft
    assert draft is not None
    payload = orjson.loads(draft)
    payload["certificate"]["name"] = "Someone else"
    forged = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    assert desk.tamper("UPDATE key_updates SET draft = ? WHERE id = ?", forged, ku_id) == 1
    shown = (await desk.admin("show-keys", ku_id, "--json")).json()
    assert (shown["draft"]["matches"], shown["draft"]["detail"]) == (
        False, "the draft certificate does not match the key update",
    )  # fmt: skip
    refused = await desk.admin("approve-keys", ku_id)
    assert_refused(refused, "the draft certificate does not match the key update")
    assert await desk.proposals() == []


async def test_a_request_is_rejected_with_a_reason(desk: Desk) -> None:
    member = await desk.admit("FR-PNF")
    ku_id, _request, _identity = await _ask(desk, member)
    rejected = await desk.admin("reject-keys", ku_id, "--reason", "not asked by the authority")
    assert (rejected.code, rejected.out) == (0, f"key update {ku_id} (FR-PNF) rejected\n")
    status = await desk.client().key_update_status(ku_id)
    assert (status.status, status.reason) == ("rejected", "not asked by the authority")
    refused = await desk.admin("approve-keys", ku_id)
    assert_refused(refused, f"key update {ku_id} is rejected, not pending approval")
    assert_refused(await desk.admin("show-keys", "abcd"), "no key update id starts with abcd")

"""Key updates at the hub (PROTOCOL.md §6.8; hub/keyupdates.py): a member asks for new keys,
proves the new key-agreement key, and the admins' quorum certifies them with the
``update-keys`` the hub drafted.  Every refusal is the protocol's typed error as
problem+json, with its exact status and slug; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import orjson
import pytest

from hub import db
from protocol import canonical
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keyupdate import KeyUpdateRequest, check_key_update_draft, make_key_update
from protocol.membership import Action, MembershipAction, kem_pop_answer, make_action
from protocol.signed import SignedObject
from tests.hub.conftest import Applicant, Hub, Reply


@dataclass(frozen=True, slots=True)
class NewKeys:
    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey

    @classmethod
    def fresh(cls) -> NewKeys:
        return cls(SigningKey.generate(), SigningKey.generate(), KemPrivateKey.generate())


def _request(
    hub: Hub, member: Applicant, new: NewKeys, *, current: SigningKey | None = None
) -> bytes:
    return make_key_update(
        genesis=hub.genesis, authority=member.authority, current=current or member.identity,
        identity=new.identity, transport=new.transport, ka_key=new.ka.public_key,
        created=hub.now(),
    ).encode()  # fmt: skip


async def _ask(hub: Hub, member: Applicant, new: NewKeys) -> tuple[str, bytes]:
    """Submit a request and prove possession; its id and its bytes."""
    data = _request(hub, member, new)
    created = (await hub.request("POST", "/v1/key-updates", data)).ok(201)
    digest = SignedObject.decode(data, max_size=1 << 16, what="request").digest()
    secret = kem_pop_answer(new.ka, digest, canonical.b64d(created["challenge"], what="c"))
    body = orjson.dumps({"answer": canonical.b64e(secret)})
    proven = (await hub.request("POST", f"/v1/key-updates/{created['id']}/proof", body)).ok()
    assert proven == {"id": created["id"], "authority": str(member.authority), "status": "pending"}
    return created["id"], data


async def _draft(hub: Hub, ku_id: str) -> bytes:
    detail = (await hub.admin("GET", f"/v1/admin/key-updates/{ku_id}")).ok()
    return canonical.b64d(detail["draft"], what="draft")


async def test_a_member_rotates_all_its_keys_with_the_admins_quorum(hub: Hub):
    fr = await hub.admit("FR-PNF")
    new = NewKeys.fresh()
    data = _request(hub, fr, new)
    created = (await hub.request("POST", "/v1/key-updates", data)).ok(201)
    state = await hub.directory()
    req = KeyUpdateRequest.decode(data, state)
    assert created["id"] == req.digest[:16].hex()
    assert created["replaced"] == ["identity", "transport", "key-agreement"]
    assert created["fingerprint"] == req.fingerprint()
    assert (await hub.get(f"/v1/key-updates/{created['id']}")).ok() == {
        "id": created["id"], "authority": "FR-PNF", "status": "awaiting-pop", "reason": None,
    }  # fmt: skip
    ku_id = created["id"]
    secret = kem_pop_answer(new.ka, req.digest, canonical.b64d(created["challenge"], what="c"))
    body = orjson.dumps({"answer": canonical.b64e(secret)})
    (await hub.request("POST", f"/v1/key-updates/{ku_id}/proof", body)).ok()
    listed = (await hub.admin("GET", "/v1/admin/key-updates?status=pending")).ok()
    assert [(k["id"], k["replaced"]) for k in listed["key_updates"]] == [
        (ku_id, ["identity", "transport", "key-agreement"])
    ]
    draft = await _draft(hub, ku_id)
    action = check_key_update_draft(req, draft, state, now=hub.now())
    assert action.certificate is not None
    assert action.certificate.application == req.digest
    replies = await hub.sign(draft, 0, 1)
    assert replies[0].ok()["status"] == "open"
    appended = replies[1].ok()
    assert (appended["status"], appended["action"]) == ("appended", "update-keys")
    assert (await hub.get(f"/v1/key-updates/{ku_id}")).ok()["status"] == "approved"
    cert = (await hub.directory()).member(fr.authority).certificate
    assert (cert.identity_key, cert.transport_key) == (
        new.identity.verify_key,
        new.transport.verify_key,
    )
    assert cert.ka_key() == new.ka.public_key
    # The hub now knows the member by its new transport key only.
    (await hub.request("GET", "/v1/mailbox", key=fr.transport)).problem(401, "unauthorized")
    (await hub.request("GET", "/v1/mailbox", key=new.transport)).ok()
    audit = [(r.actor, r.action, r.subject) for r in await hub.rows(db.AuditRecord)]
    assert audit[-5:] == [
        ("FR-PNF", "key-update-received", "FR-PNF"),
        ("FR-PNF", "key-possession-proven", "FR-PNF"),
        ("Alice Admin", "sign-action", "FR-PNF"),
        ("Bruno Admin", "sign-action", "FR-PNF"),
        ("hub", "log-append", "FR-PNF"),
    ]
    assert orjson.loads((await hub.rows(db.AuditRecord))[-1].detail)["key_update"] == ku_id


async def test_forged_requests_are_refused_with_their_exact_errors(hub: Hub):
    fr = await hub.admit("FR-PNF")
    de = await hub.admit("DE-BKA", "Bundeskriminalamt")
    new = NewKeys.fresh()

    async def post(data: bytes) -> Reply:
        return await hub.request("POST", "/v1/key-updates", data)

    # Signed by the new keys only: nothing authorises it.
    only_new = _request(hub, fr, new, current=new.identity)
    (await post(only_new)).problem(401, "bad-signature")
    # Authorised by another member's identity key.
    (await post(_request(hub, fr, new, current=de.identity))).problem(401, "bad-signature")
    # A request naming a key certified to another member (R4).
    reuse = make_key_update(
        genesis=hub.genesis, authority=fr.authority, current=fr.identity, identity=de.identity,
        transport=new.transport, ka_key=new.ka.public_key, created=hub.now(),
    ).encode()  # fmt: skip
    problem = (await post(reuse)).problem(409, "log")
    assert problem["detail"] == "key update: identity key already certified (R4)"
    # Not a member.
    stranger = hub.applicant("IT-ANAC", "ANAC")
    made_up = make_key_update(
        genesis=hub.genesis, authority=stranger.authority, current=stranger.identity,
        identity=new.identity, transport=new.transport, ka_key=new.ka.public_key,
        created=hub.now(),
    ).encode()  # fmt: skip
    (await post(made_up)).problem(403, "unknown-member")
    # Not JSON, not a signed object.
    (await post(b"{}")).problem(400, "malformed")
    # Revoked: its keys are never updated.
    await hub.set_status(de, Action.REVOKE, "designation withdrawn")
    late = _request(hub, de, NewKeys.fresh())
    (await post(late)).problem(403, "member-not-active")
    assert await hub.rows(db.KeyUpdate) == []


async def test_one_open_request_per_member_and_no_key_twice(hub: Hub):
    fr = await hub.admit("FR-PNF")
    es = await hub.admit("ES-FCC", "Fiscalia")
    new = NewKeys.fresh()
    first = _request(hub, fr, new)
    created = (await hub.request("POST", "/v1/key-updates", first)).ok(201)
    # The same request again, while it awaits its proof: the same challenge.
    assert (await hub.request("POST", "/v1/key-updates", first)).ok(201) == created
    other = await hub.request("POST", "/v1/key-updates", _request(hub, fr, NewKeys.fresh()))
    assert other.problem(409, "state-conflict")["detail"] == (
        f"a key update for FR-PNF is already open ({created['id']}): the admins approve or "
        "reject it first"
    )
    # ES-FCC may not ask for a key FR-PNF's open request names.
    stolen = make_key_update(
        genesis=hub.genesis, authority=es.authority, current=es.identity, identity=new.identity,
        transport=SigningKey.generate(), ka_key=KemPrivateKey.generate().public_key,
        created=hub.now(),
    ).encode()  # fmt: skip
    clash = await hub.request("POST", "/v1/key-updates", stolen)
    assert clash.problem(409, "state-conflict")["detail"] == (
        "a key of this request is named by another open key update"
    )
    # Nor one an open application names.
    applicant = hub.applicant("IT-ANAC", "ANAC")
    (await hub.submit(applicant)).ok(201)
    taken = make_key_update(
        genesis=hub.genesis, authority=es.authority, current=es.identity,
        identity=applicant.identity, transport=SigningKey.generate(),
        ka_key=KemPrivateKey.generate().public_key, created=hub.now(),
    ).encode()  # fmt: skip
    clash = await hub.request("POST", "/v1/key-updates", taken)
    assert clash.problem(409, "state-conflict")["detail"] == (
        "a key of this request is named by an open application"
    )
    # A rejection closes FR-PNF's request; it may then ask again.
    why = orjson.dumps({"reason": "not asked by the authority"})
    rejected = await hub.admin("POST", f"/v1/admin/key-updates/{created['id']}/reject", why)
    assert rejected.ok() == {"id": created["id"], "authority": "FR-PNF", "status": "rejected"}
    status = (await hub.get(f"/v1/key-updates/{created['id']}")).ok()
    assert (status["status"], status["reason"]) == ("rejected", "not asked by the authority")
    again = await hub.request("POST", "/v1/key-updates", first)
    assert again.problem(409, "state-conflict")["detail"] == (
        "this key update was already submitted; it is rejected"
    )
    (await hub.request("POST", "/v1/key-updates", _request(hub, fr, NewKeys.fresh()))).ok(201)


async def test_a_wrong_answer_proves_nothing(hub: Hub):
    fr = await hub.admit("FR-PNF")
    data = _request(hub, fr, NewKeys.fresh())
    created = (await hub.request("POST", "/v1/key-updates", data)).ok(201)
    body = orjson.dumps({"answer": canonical.b64e(bytes(32))})
    wrong = await hub.request("POST", f"/v1/key-updates/{created['id']}/proof", body)
    wrong.problem(400, "decryption-failed")
    (await hub.get(f"/v1/key-updates/{'0' * 32}")).problem(404, "not-found")
    assert (await hub.admin("GET", f"/v1/admin/key-updates/{created['id']}")).ok()["draft"] is None


async def test_the_admins_sign_only_the_draft_the_hub_prepared(hub: Hub):
    fr = await hub.admit("FR-PNF")
    ku_id, data = await _ask(hub, fr, NewKeys.fresh())
    draft = MembershipAction.from_signed(SignedObject(await _draft(hub, ku_id), ()), hub.genesis)
    assert draft.certificate is not None
    # The same update-keys with another serial names the request but is not its draft.
    other = make_action(
        genesis=hub.genesis, action=Action.UPDATE_KEYS, authority=fr.authority,
        prev=draft.prev, issued=draft.issued,
        certificate=dataclasses.replace(draft.certificate, serial="ef" * 16),
    )  # fmt: skip
    container = hub.container(other.signed.payload, hub.admins[0])
    refused = await hub.admin("POST", "/v1/admin/actions", container)
    assert refused.problem(409, "state-conflict")["detail"] == (
        "an update-keys must sign the draft prepared for the key update"
    )
    assert (await hub.get(f"/v1/key-updates/{ku_id}")).ok()["status"] == "pending"
    shown = (await hub.admin("GET", f"/v1/admin/key-updates/{ku_id}")).ok()
    assert canonical.b64d(shown["request"], what="request") == data


async def test_the_compromise_procedure_suspend_rekey_reinstate(hub: Hub):
    fr = await hub.admit("FR-PNF")
    new = NewKeys.fresh()
    # The operator asked (from the clean machine) before the admins suspended the member:
    # the draft named the member's latest action, and is drafted anew after the suspension.
    ku_id, _ = await _ask(hub, fr, new)
    before = await _draft(hub, ku_id)
    await hub.set_status(fr, Action.SUSPEND, "identity key reported stolen")
    (await hub.request("GET", "/v1/mailbox", key=fr.transport)).problem(401, "unauthorized")
    after = await _draft(hub, ku_id)
    assert after != before
    state = await hub.directory()
    refreshed = MembershipAction.from_signed(SignedObject(after, ()), hub.genesis)
    assert refreshed.prev == state.member(fr.authority).last_action
    replies = await hub.sign(after, 0, 1)
    assert replies[1].ok()["status"] == "appended"
    member = (await hub.directory()).member(fr.authority)
    assert member.status.value == "suspended"
    suspended_at = member.suspended_at
    assert member.retired_at == {fr.identity.key_id: suspended_at}
    await hub.set_status(fr, Action.REINSTATE, "keys replaced; fingerprint confirmed")
    (await hub.request("GET", "/v1/mailbox", key=new.transport)).ok()
    (await hub.request("GET", "/v1/mailbox", key=fr.transport)).problem(401, "unauthorized")


@pytest.mark.parametrize("status", ["suspend", "revoke"])
async def test_a_request_of_a_suspended_member_replaces_every_key(hub: Hub, status: str):
    fr = await hub.admit("FR-PNF")
    await hub.set_status(fr, Action(status), "stolen")
    keep = make_key_update(
        genesis=hub.genesis, authority=fr.authority, current=fr.identity,
        identity=SigningKey.generate(), transport=fr.transport,
        ka_key=KemPrivateKey.generate().public_key, created=hub.now(),
    ).encode()  # fmt: skip
    reply = await hub.request("POST", "/v1/key-updates", keep)
    if status == "suspend":
        assert reply.problem(400, "malformed")["detail"] == (
            "key update: a suspended member replaces every key"
        )
    else:
        reply.problem(403, "member-not-active")

"""Applications, proof of possession and quorum-signed admission (R1, R4)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson

from hub import db
from protocol import canonical, labels
from protocol.ids import AuthorityId
from protocol.keys import SigningKey
from protocol.membership import (
    Action,
    Certificate,
    MembershipAction,
    entry_hash,
    kem_pop_answer,
    make_action,
)
from protocol.signed import SignedObject, sign_object

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant, Hub

# --- the happy path -----------------------------------------------------------------------


async def test_admission_end_to_end(hub: Hub) -> None:
    applicant = hub.applicant("FR-PNF", "Parquet national financier")
    got = (await hub.submit(applicant)).ok(201)
    assert set(got) == {"id", "authority", "status", "challenge"}
    assert got["authority"] == "FR-PNF"
    assert got["status"] == "awaiting-pop"
    assert len(got["id"]) == 32
    public = (await hub.get(f"/v1/applications/{applicant.app_id}")).ok()
    assert public == {
        "id": applicant.app_id,
        "authority": "FR-PNF",
        "status": "awaiting-pop",
        "reason": None,
    }

    proof = (await hub.prove(applicant)).ok()
    assert proof == {"id": applicant.app_id, "authority": "FR-PNF", "status": "pending"}

    listed = (await hub.admin("GET", "/v1/admin/applications?status=pending")).ok()
    assert [a["id"] for a in listed["applications"]] == [applicant.app_id]
    detail = (await hub.admin("GET", f"/v1/admin/applications/{applicant.app_id}")).ok()
    assert detail["name"] == "Parquet national financier"
    assert detail["status"] == "pending"
    assert canonical.b64d(detail["application"], what="a") == applicant.application.signed.encode()
    draft = canonical.b64d(detail["draft"], what="draft")

    # The draft is an unsigned admit whose certificate names this application and its keys.
    action = MembershipAction.from_signed(SignedObject(draft, ()), hub.genesis)
    assert (action.action, action.authority, action.prev) == (
        Action.ADMIT,
        applicant.authority,
        None,
    )
    cert = action.certificate
    assert cert is not None
    assert cert.application == applicant.application.digest
    assert (cert.identity_key, cert.transport_key) == (
        applicant.identity.verify_key,
        applicant.transport.verify_key,
    )
    assert cert.ka_key_raw == bytes(applicant.ka.public_key)
    assert (cert.not_before, cert.not_after) == (hub.now(), hub.now() + 730 * 86400)
    first, second = await hub.sign(draft, 0, 1)
    first_body = first.ok()
    assert first_body["status"] == "open"
    assert first_body["signatures"] == 1
    assert first_body["threshold"] == 2
    assert first_body["action"] == "admit"
    assert first_body["authority"] == "FR-PNF"
    second_body = second.ok()
    assert second_body["status"] == "appended"
    assert second_body["signatures"] == 2
    assert second_body["seq"] == 1
    assert second_body["proposal"] == first_body["proposal"]

    # Database rows: the application is approved, the proposal appended, one log entry.
    (app_row,) = await hub.rows(db.Application)
    assert app_row.status == "approved"
    assert app_row.draft == draft
    (proposal,) = await hub.rows(db.Proposal)
    assert (proposal.status, proposal.seq, proposal.payload) == ("appended", 1, draft)
    assert proposal.application_id == applicant.app_id
    (entry,) = await hub.rows(db.LogEntryRow)
    assert entry.seq == 1
    assert entry.hash == entry_hash(entry.data)
    state = await hub.directory()
    member = state.members[applicant.authority]
    assert member.certificate.identity_key == applicant.identity.verify_key
    assert member.certificate.transport_key == applicant.transport.verify_key
    assert member.certificate.application == applicant.application.digest
    assert (await hub.get(f"/v1/applications/{applicant.app_id}")).ok()["status"] == "approved"


# --- quorum ---------------------------------------------------------------------------------


async def test_fewer_than_k_signatures_do_not_admit(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant)).ok()
    (reply,) = await hub.sign(await hub.draft(applicant.app_id), 2)
    body = reply.ok()
    assert (body["status"], body["signatures"], body["threshold"]) == ("open", 1, 2)
    assert "seq" not in body
    assert (await hub.get("/v1/directory/log")).ok() == {"entries": [], "next": None}
    assert await hub.rows(db.LogEntryRow) == []
    (proposal,) = await hub.rows(db.Proposal)
    assert proposal.status == "open"
    assert (await hub.get(f"/v1/applications/{applicant.app_id}")).ok()["status"] == "pending"
    assert (await hub.get("/v1/directory/search")).ok() == {"results": []}
    proposals = (await hub.admin("GET", "/v1/admin/proposals?status=open")).ok()["proposals"]
    assert [p["proposal"] for p in proposals] == [body["proposal"]]
    assert [s["kid"] for s in proposals[0]["signed"]["sigs"]] == [str(hub.admins[2].key_id)]


async def test_same_admin_twice_counts_once(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant)).ok()
    draft = await hub.draft(applicant.app_id)
    first, again = await hub.sign(draft, 0, 0)
    assert first.ok()["signatures"] == 1
    assert again.ok()["signatures"] == 1
    assert again.ok()["status"] == "open"
    # A fresh signature by the same admin (Ed25519 is deterministic: same bytes) changes nothing.
    resubmit = await hub.admin("POST", "/v1/admin/actions", hub.container(draft, hub.admins[0]))
    assert resubmit.ok()["signatures"] == 1
    assert await hub.rows(db.LogEntryRow) == []
    # A container naming the same admin twice is refused outright.
    sig = hub.admins[0].sign(labels.MEMBERSHIP_ACTION, draft)
    item = {"kid": str(hub.admins[0].key_id), "sig": canonical.b64e(sig)}
    doubled = canonical.encode({"payload": canonical.b64e(draft), "sigs": [item, item]})
    (await hub.admin("POST", "/v1/admin/actions", doubled)).problem(400, "malformed")
    assert await hub.rows(db.LogEntryRow) == []
    # The second distinct admin completes the quorum.
    (done,) = await hub.sign(draft, 1)
    assert done.ok()["status"] == "appended"


async def test_non_admin_signature_is_refused_and_counts_zero(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant)).ok()
    draft = await hub.draft(applicant.app_id)
    stranger = SigningKey.generate()
    # An admin plus a stranger: the whole container is refused, nothing is stored.
    mixed = hub.container(draft, hub.admins[0], stranger)
    (await hub.admin("POST", "/v1/admin/actions", mixed)).problem(401, "bad-signature")
    # The applicant's own identity key is not an admin key either.
    own = hub.container(draft, applicant.identity)
    (await hub.admin("POST", "/v1/admin/actions", own)).problem(401, "bad-signature")
    # An admin key signing under the wrong label does not verify.
    wrong_label = sign_object(orjson.loads(draft), labels.APPLICATION, [hub.admins[1]]).encode()
    (await hub.admin("POST", "/v1/admin/actions", wrong_label)).problem(401, "bad-signature")
    assert await hub.rows(db.Proposal) == []
    assert await hub.rows(db.LogEntryRow) == []
    # So one real admin signature afterwards is still only one.
    (reply,) = await hub.sign(draft, 1)
    assert (reply.ok()["signatures"], reply.ok()["status"]) == (1, "open")
    assert await hub.rows(db.LogEntryRow) == []


async def test_admin_endpoint_refuses_member_keys(hub: Hub) -> None:
    member = await hub.admit()
    draft = (await hub.status_action(member, Action.SUSPEND)).signed.payload
    body = hub.container(draft, hub.admins[0])
    for key in (member.transport, member.identity, hub.hub_key):
        reply = await hub.request("POST", "/v1/admin/actions", body, key=key)
        reply.problem(401, "unauthorized")
    reply = await hub.request("GET", "/v1/admin/audit", key=member.transport)
    reply.problem(401, "unauthorized")
    assert len(await hub.rows(db.LogEntryRow)) == 1
    assert await hub.rows(db.Proposal) != []  # only the admission's
    assert {p.action for p in await hub.rows(db.Proposal)} == {"admit"}


# --- applications refused -------------------------------------------------------------------


def _payload(applicant: Applicant, **changes: object) -> dict[str, object]:
    """The applicant's application payload as a dict, with ``changes``."""
    payload: dict[str, object] = orjson.loads(applicant.application.signed.payload)
    payload.update(changes)
    return payload


async def test_application_needs_both_signatures(hub: Hub) -> None:
    applicant = hub.applicant()
    payload = _payload(applicant)
    only_identity = sign_object(payload, labels.APPLICATION, [applicant.identity])
    reply = await hub.request("POST", "/v1/applications", only_identity.encode())
    reply.problem(401, "bad-signature")
    only_transport = sign_object(payload, labels.APPLICATION, [applicant.transport])
    reply = await hub.request("POST", "/v1/applications", only_transport.encode())
    reply.problem(401, "bad-signature")
    third = sign_object(payload, labels.APPLICATION, [applicant.identity, SigningKey.generate()])
    reply = await hub.request("POST", "/v1/applications", third.encode())
    reply.problem(401, "bad-signature")
    three = sign_object(
        payload, labels.APPLICATION, [applicant.identity, applicant.transport, hub.admins[0]]
    )
    reply = await hub.request("POST", "/v1/applications", three.encode())
    reply.problem(401, "bad-signature")
    assert await hub.rows(db.Application) == []
    assert await hub.rows(db.AuditRecord) == []


async def test_key_of_an_admitted_member_is_refused(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    for reuse in (
        {"identity": member.identity},
        {"transport": member.transport},
        {"ka": member.ka},
    ):
        applicant = hub.applicant("DE-BKA", "Bundeskriminalamt", **reuse)
        reply = await hub.submit(applicant)
        body = reply.problem(409, "state-conflict")
        assert "already certified" in body["detail"]
    # A member's identity key may not come back as another member's transport key either.
    swapped = hub.applicant("DE-BKA", "Bundeskriminalamt", transport=member.identity)
    (await hub.submit(swapped)).problem(409, "state-conflict")
    # Nor may the same authority apply again while it is a member.
    again = hub.applicant("FR-PNF", "Parquet national financier")
    (await hub.submit(again)).problem(409, "state-conflict")
    assert len(await hub.rows(db.Application)) == 1


async def test_key_of_another_open_application_is_refused(hub: Hub) -> None:
    first = hub.applicant("FR-PNF", "Parquet national financier")
    (await hub.submit(first)).ok(201)
    same_identity = hub.applicant("DE-BKA", "Bundeskriminalamt", identity=first.identity)
    body = (await hub.submit(same_identity)).problem(409, "state-conflict")
    assert "another open application" in body["detail"]
    (await hub.prove(first)).ok()  # still open once pending
    same_ka = hub.applicant("DE-BKA", "Bundeskriminalamt", ka=first.ka)
    (await hub.submit(same_ka)).problem(409, "state-conflict")
    same_authority = hub.applicant("FR-PNF", "Parquet national financier")
    body = (await hub.submit(same_authority)).problem(409, "state-conflict")
    assert "already open" in body["detail"]
    # The exact same bytes again.
    resent = await hub.request("POST", "/v1/applications", first.application.signed.encode())
    resent.problem(409, "state-conflict")
    assert len(await hub.rows(db.Application)) == 1
    # Once the first is rejected, its keys may be used again.
    rejection = orjson.dumps({"reason": "not a designated authority"})
    (await hub.admin("POST", f"/v1/admin/applications/{first.app_id}/reject", rejection)).ok()
    (await hub.submit(hub.applicant("DE-BKA", "BKA", identity=first.identity))).ok(201)


async def test_reserved_keys_are_refused(hub: Hub) -> None:
    for identity, transport in (
        (hub.hub_key, None),
        (None, hub.hub_key),
        (hub.admins[0], None),
        (None, hub.admins[2]),
    ):
        reply = await hub.submit(hub.applicant(identity=identity, transport=transport))
        body = reply.problem(409, "state-conflict")
        assert "hub's or an admin's" in body["detail"]
    assert await hub.rows(db.Application) == []


async def test_malformed_authority_ids_are_refused(hub: Hub) -> None:
    applicant = hub.applicant("FR-PNF", "Parquet national financier")
    for bad in ("fr-pnf", "FR-PΝF", "FR-PNF\u200b", "FRA-PNF", "XX-PNF", "FR_PNF"):  # noqa: RUF001
        payload = _payload(applicant, authority=bad)
        signed = sign_object(payload, labels.APPLICATION, [applicant.identity, applicant.transport])
        reply = await hub.request("POST", "/v1/applications", signed.encode())
        reply.problem(400, "invalid-identifier")
    assert await hub.rows(db.Application) == []
    # The same refusal for a path parameter.
    (await hub.get("/v1/prekeys/fr-pnf")).problem(400, "invalid-identifier")
    (await hub.get("/v1/prekeys/FR-P%CE%9DF")).problem(400, "invalid-identifier")


async def test_application_for_another_network_is_refused(hub: Hub) -> None:
    applicant = hub.applicant()
    payload = _payload(applicant, network=canonical.b64e(bytes(32)))
    signed = sign_object(payload, labels.APPLICATION, [applicant.identity, applicant.transport])
    (await hub.request("POST", "/v1/applications", signed.encode())).problem(400, "malformed")
    (await hub.request("POST", "/v1/applications", b"{bad")).problem(400, "malformed")
    (await hub.request("POST", "/v1/applications", b"")).problem(400, "malformed")


async def test_wrong_kem_answer_is_refused(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant, answer=bytes(32))).problem(400, "decryption-failed")
    # Another applicant's correct answer does not open this challenge either.
    other = hub.applicant("DE-BKA", "Bundeskriminalamt")
    (await hub.submit(other)).ok(201)
    theirs = kem_pop_answer(other.ka, other.application.digest, other.challenge)
    (await hub.prove(applicant, answer=theirs)).problem(400, "decryption-failed")
    # Wrong length and wrong shape are malformed, not a failed decryption.
    reply = await hub.request(
        "POST", f"/v1/applications/{applicant.app_id}/proof", b'{"answer":"AAAA"}'
    )
    reply.problem(400, "malformed")
    reply = await hub.request(
        "POST", f"/v1/applications/{applicant.app_id}/proof", b'{"answer":1,"x":2}'
    )
    reply.problem(400, "malformed")
    row = next(r for r in await hub.rows(db.Application) if r.id == applicant.app_id)
    assert (row.status, row.draft) == ("awaiting-pop", None)
    # The right answer still works afterwards.
    (await hub.prove(applicant)).ok()


async def test_answering_twice_is_a_conflict(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant)).ok()
    (draft_row,) = await hub.rows(db.Application)
    body = (await hub.prove(applicant)).problem(409, "state-conflict")
    assert "pending" in body["detail"]
    (row,) = await hub.rows(db.Application)
    assert row.draft == draft_row.draft  # the draft was not replaced


async def test_concurrent_answers_prepare_one_draft(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    replies = await asyncio.gather(*(hub.prove(applicant) for _ in range(4)))
    assert sorted(r.status for r in replies) == [200, 409, 409, 409]
    for reply in replies:
        if reply.status == 409:
            reply.problem(409, "state-conflict")
    audited = [r for r in await hub.rows(db.AuditRecord) if r.action == "possession-proven"]
    assert len(audited) == 1
    # The draft the admins read is the one they can append.
    replies = await hub.sign(await hub.draft(applicant.app_id), 0, 1)
    assert replies[1].ok()["status"] == "appended"


async def test_unknown_application(hub: Hub) -> None:
    unknown = "0" * 32
    (await hub.get(f"/v1/applications/{unknown}")).problem(404, "not-found")
    (await hub.get("/v1/applications/not-hex")).problem(404, "not-found")
    body = orjson.dumps({"answer": canonical.b64e(bytes(32))})
    reply = await hub.request("POST", f"/v1/applications/{unknown}/proof", body)
    reply.problem(404, "not-found")
    (await hub.admin("GET", f"/v1/admin/applications/{unknown}")).problem(404, "not-found")


async def test_admit_must_be_the_hubs_draft(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)

    def own_admit(application_digest_from: Applicant = applicant) -> bytes:
        cert = Certificate.from_application(
            application_digest_from.application,
            serial="ab" * 16,
            not_before=hub.now(),
            not_after=hub.now() + 10 * 365 * 86400,
        )
        return make_action(
            genesis=hub.genesis,
            action=Action.ADMIT,
            authority=applicant.authority,
            prev=None,
            issued=hub.now(),
            certificate=cert,
        ).signed.payload

    # Before the proof of possession there is no pending application to admit.
    (reply,) = await hub.sign(own_admit(), 0)
    reply.problem(409, "state-conflict")
    (await hub.prove(applicant)).ok()
    # The admins' own admission (another serial and validity) is not the draft.
    for _ in range(2):
        (reply,) = await hub.sign(own_admit(), 0)
        body = reply.problem(409, "state-conflict")
        assert "draft" in body["detail"]
    # An admission of an application the hub never saw.
    stranger = hub.applicant("FR-PNF", "Parquet national financier")
    (reply,) = await hub.sign(own_admit(stranger), 1)
    reply.problem(409, "state-conflict")
    assert await hub.rows(db.Proposal) == []
    assert await hub.rows(db.LogEntryRow) == []
    # The draft itself goes through.
    replies = await hub.sign(await hub.draft(applicant.app_id), 0, 1)
    assert replies[1].ok()["status"] == "appended"


async def test_rejected_application_cannot_be_admitted(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant)).ok()
    draft = await hub.draft(applicant.app_id)
    target = f"/v1/admin/applications/{applicant.app_id}/reject"
    (await hub.admin("POST", target, b'{"reason":"   "}')).problem(400, "malformed")
    (await hub.admin("POST", target, b'{"reason":"x","extra":1}')).problem(400, "unknown-field")
    reply = await hub.admin("POST", target, orjson.dumps({"reason": "no designation"}), admin=2)
    assert reply.ok() == {"id": applicant.app_id, "authority": "FR-PNF", "status": "rejected"}
    (await hub.admin("POST", target, b'{"reason":"again"}')).problem(409, "state-conflict")
    public = (await hub.get(f"/v1/applications/{applicant.app_id}")).ok()
    assert (public["status"], public["reason"]) == ("rejected", "no designation")
    (reply,) = await hub.sign(draft, 0)
    reply.problem(409, "state-conflict")
    (await hub.prove(applicant)).problem(409, "state-conflict")
    assert await hub.rows(db.LogEntryRow) == []


async def test_second_admission_of_the_same_authority_is_refused(hub: Hub) -> None:
    await hub.admit("FR-PNF", "Parquet national financier")
    # An admit for an authority already in the directory cannot apply to the log.
    stale = hub.applicant("FR-PNF", "Parquet national financier")
    cert = Certificate.from_application(
        stale.application, serial="cd" * 16, not_before=hub.now(), not_after=hub.now() + 100
    )
    admit = make_action(
        genesis=hub.genesis,
        action=Action.ADMIT,
        authority=AuthorityId.parse("FR-PNF"),
        prev=None,
        issued=hub.now(),
        certificate=cert,
    )
    (reply,) = await hub.sign(admit.signed.payload, 0)
    reply.problem(409, "log")
    assert len(await hub.rows(db.LogEntryRow)) == 1


async def test_concurrent_signatures_append_once(hub: Hub) -> None:
    applicant = hub.applicant()
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant)).ok()
    draft = await hub.draft(applicant.app_id)
    replies = await asyncio.gather(
        *(
            hub.admin("POST", "/v1/admin/actions", hub.container(draft, hub.admins[i]), admin=i)
            for i in range(3)
        )
    )
    appended = [r for r in replies if r.status == 200 and r.json["status"] == "appended"]
    assert len(appended) == 1
    for reply in replies:
        if reply not in appended:
            assert reply.status in (200, 409), reply.body
            if reply.status == 409:
                reply.problem(409, "log")  # arrived after the admission: it no longer applies
    assert len(await hub.rows(db.LogEntryRow)) == 1
    assert (await hub.directory()).seq == 1

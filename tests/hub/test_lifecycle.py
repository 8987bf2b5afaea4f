"""Suspend, reinstate and revoke through the admin endpoint; the audit trail."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import orjson

from hub import db
from protocol.directory import MemberStatus, verify_log
from protocol.keys import SigningKey
from protocol.membership import Action, Certificate, make_action

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant, Hub, Reply


async def _can_authenticate(hub: Hub, member: Applicant) -> bool:
    reply = await hub.as_member(member, "PUT", "/v1/prekeys", hub.prekey(member).signed.encode())
    assert reply.status in (201, 401), reply.body
    return reply.status == 201


async def _status(hub: Hub, member: Applicant) -> str:
    results = (await hub.get("/v1/directory/search?inactive=1")).ok()["results"]
    status: str = next(r["status"] for r in results if r["authority"] == str(member.authority))
    return status


async def test_suspend_reinstate_revoke_with_quorum(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    assert await _can_authenticate(hub, member)

    # One signature: nothing happens yet.
    suspend = await hub.status_action(member, Action.SUSPEND, "under investigation")
    (first,) = await hub.sign(suspend.signed.payload, 2)
    assert (first.ok()["status"], first.ok()["signatures"]) == ("open", 1)
    assert await _status(hub, member) == "active"
    assert await _can_authenticate(hub, member)
    # The second admin: appended, the member is suspended.
    (second,) = await hub.sign(suspend.signed.payload, 1)
    assert second.ok()["status"] == "appended"
    assert second.ok()["seq"] == 2
    assert await _status(hub, member) == "suspended"
    assert not await _can_authenticate(hub, member)
    assert (await hub.get("/v1/directory/search")).ok()["results"] == []
    state = await hub.directory()
    assert state.members[member.authority].status is MemberStatus.SUSPENDED
    assert state.members[member.authority].reason == "under investigation"
    # The appended proposal cannot be signed again.
    (late,) = await hub.sign(suspend.signed.payload, 0)
    late.problem(409, "log")  # a second suspension does not apply to a suspended member

    # Suspending again, or reinstating with a stale `prev`, cannot apply.
    again = make_action(
        genesis=hub.genesis,
        action=Action.REINSTATE,
        authority=member.authority,
        prev=state.members[member.authority].last_action,
        issued=hub.now(),
        reason="cleared",
    )
    stale = make_action(
        genesis=hub.genesis,
        action=Action.REINSTATE,
        authority=member.authority,
        prev=suspend.digest[::-1],
        issued=hub.now(),
        reason="cleared",
    )
    (reply,) = await hub.sign(stale.signed.payload, 0)
    reply.problem(409, "log")
    replies = await hub.sign(again.signed.payload, 0, 2)
    assert replies[1].ok()["status"] == "appended"
    assert await _status(hub, member) == "active"
    assert await _can_authenticate(hub, member)

    await hub.set_status(member, Action.REVOKE, "designation withdrawn")
    assert await _status(hub, member) == "revoked"
    assert not await _can_authenticate(hub, member)
    # Revocation is final: no reinstatement...
    reinstate = await hub.status_action(member, Action.REINSTATE, "mistake")
    (reply,) = await hub.sign(reinstate.signed.payload, 0)
    reply.problem(409, "log")
    # ...and no new admission of the same authority, by application...
    applicant = hub.applicant("FR-PNF", "Parquet national financier")
    body = (await hub.submit(applicant)).problem(409, "state-conflict")
    assert "already in the directory" in body["detail"]
    # ...or by an admit the admins write themselves.
    cert = Certificate.from_application(
        applicant.application, serial="ef" * 16, not_before=hub.now(), not_after=hub.now() + 99
    )
    admit = make_action(
        genesis=hub.genesis,
        action=Action.ADMIT,
        authority=member.authority,
        prev=None,
        issued=hub.now(),
        certificate=cert,
    )
    (reply,) = await hub.sign(admit.signed.payload, 0)
    reply.problem(409, "log")
    # Nor may its old keys come back under another name.
    reuse = hub.applicant("FR-AFA", "Agence francaise anticorruption", identity=member.identity)
    (await hub.submit(reuse)).problem(409, "state-conflict")

    entries, _ = await hub.log_entries()
    assert len(entries) == 4  # admit, suspend, reinstate, revoke
    proposals = {p.action: p.status for p in await hub.rows(db.Proposal)}
    assert proposals == {
        "admit": "appended",
        "suspend": "appended",
        "reinstate": "appended",
        "revoke": "appended",
    }


async def test_competing_proposals_are_superseded(hub: Hub) -> None:
    member = await hub.admit()
    suspend = await hub.status_action(member, Action.SUSPEND, "one view")
    revoke = await hub.status_action(member, Action.REVOKE, "another view")
    (await hub.sign(suspend.signed.payload, 0))[0].ok()
    (await hub.sign(revoke.signed.payload, 1))[0].ok()
    replies = await hub.sign(revoke.signed.payload, 2)
    assert replies[0].ok()["status"] == "appended"
    rows = {p.action: p.status for p in await hub.rows(db.Proposal)}
    assert rows == {"admit": "appended", "suspend": "superseded", "revoke": "appended"}
    (reply,) = await hub.sign(suspend.signed.payload, 2)
    reply.problem(409, "log")
    listed = (await hub.admin("GET", "/v1/admin/proposals?status=superseded")).ok()["proposals"]
    assert [p["action"] for p in listed] == ["suspend"]


async def test_every_admin_action_is_audited(hub: Hub) -> None:
    names = [a.name for a in hub.genesis.admins]
    ids = [str(k.key_id) for k in hub.admins]
    member = await hub.admit("FR-PNF", "Parquet national financier")
    hub.clock.advance(60)
    refused = hub.applicant("DE-BKA", "Bundeskriminalamt")
    (await hub.submit(refused)).ok(201)
    reason = orjson.dumps({"reason": "not a designated authority"})
    target = f"/v1/admin/applications/{refused.app_id}/reject"
    (await hub.admin("POST", target, reason, admin=2)).ok()
    hub.clock.advance(60)
    suspend = await hub.status_action(member, Action.SUSPEND, "review")
    await hub.sign(suspend.signed.payload, 2, 0)

    records = (await hub.admin("GET", "/v1/admin/audit", admin=1)).ok()["records"]
    summary = [(r["actor"], r["action"], r["subject"]) for r in records]
    assert summary == [
        ("applicant", "application-received", "FR-PNF"),
        ("applicant", "possession-proven", "FR-PNF"),
        (names[0], "sign-action", "FR-PNF"),
        (names[1], "sign-action", "FR-PNF"),
        ("hub", "log-append", "FR-PNF"),
        ("applicant", "application-received", "DE-BKA"),
        (names[2], "reject-application", "DE-BKA"),
        (names[2], "sign-action", "FR-PNF"),
        (names[0], "sign-action", "FR-PNF"),
        ("hub", "log-append", "FR-PNF"),
    ]
    assert [r["id"] for r in records] == list(range(1, 11))
    assert [r["time"] for r in records] == [hub.now() - 120] * 5 + [hub.now() - 60] * 2 + [
        hub.now()
    ] * 3
    admit_proposal = records[2]["detail"]["proposal"]
    assert records[2]["detail"] == {
        "action": "admit",
        "proposal": admit_proposal,
        "key": ids[0],
        "signatures": 1,
    }
    assert records[3]["detail"] == {
        "action": "admit",
        "proposal": admit_proposal,
        "key": ids[1],
        "signatures": 2,
    }
    assert records[4]["detail"] == {
        "seq": 1,
        "action": "admit",
        "proposal": admit_proposal,
        "signers": sorted(ids[:2]),
    }
    assert records[0]["detail"]["application"] == member.app_id
    assert records[6]["detail"] == {
        "application": refused.app_id,
        "reason": "not a designated authority",
        "key": ids[2],
    }
    assert records[7]["detail"]["key"] == ids[2]
    assert records[7]["detail"]["action"] == "suspend"
    assert records[9]["detail"]["signers"] == sorted([ids[0], ids[2]])
    assert records[9]["detail"]["seq"] == 2

    # The rows behind the API, and paging.
    rows = await hub.rows(db.AuditRecord)
    assert [(r.id, r.actor, r.action, r.subject) for r in rows] == [
        (r["id"], r["actor"], r["action"], r["subject"]) for r in records
    ]
    assert [orjson.loads(r.detail) for r in rows] == [r["detail"] for r in records]
    page = (await hub.admin("GET", "/v1/admin/audit?since=8&limit=1")).ok()["records"]
    assert [r["id"] for r in page] == [9]

    # Refused requests change nothing in the trail.
    (reply,) = await hub.sign(b"{}", 0)
    reply.problem(400, "malformed")
    assert len(await hub.rows(db.AuditRecord)) == 10


def _rotated(hub: Hub, member: Applicant, transport: SigningKey) -> Certificate:
    """``member``'s certificate with a new transport key (and a new serial)."""
    old = member.application
    return Certificate(
        authority=member.authority,
        serial=secrets.token_hex(16),
        name=old.name,
        kinds=old.kinds,
        languages=old.languages,
        endpoint=None,
        identity_key=member.identity.verify_key,
        transport_key=transport.verify_key,
        ka_key_raw=bytes(member.ka.public_key),
        not_before=hub.now(),
        not_after=hub.now() + 365 * 86400,
        application=None,
    )


async def _update_keys(hub: Hub, member: Applicant, cert: Certificate) -> list[Reply]:
    state = await hub.directory()
    action = make_action(
        genesis=hub.genesis,
        action=Action.UPDATE_KEYS,
        authority=member.authority,
        prev=state.members[member.authority].last_action,
        issued=hub.now(),
        certificate=cert,
    )
    return await hub.sign(action.signed.payload, 0, 1)


async def test_update_keys_moves_request_authentication(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    old_transport = member.transport
    new_transport = SigningKey.generate()
    replies = await _update_keys(hub, member, _rotated(hub, member, new_transport))
    assert replies[1].ok()["status"] == "appended"
    assert not await _can_authenticate(hub, member)  # the old transport key is dropped
    member.transport = new_transport
    assert await _can_authenticate(hub, member)
    member.transport = old_transport
    # After a restart too.
    restarted = await hub.new_service()
    assert restarted.member_transport_key(old_transport.key_id) is None
    assert restarted.member_transport_key(new_transport.key_id) is not None
    # A key certified to another member cannot be taken over.
    other = await hub.admit("DE-BKA", "Bundeskriminalamt")
    (reply, _) = await _update_keys(hub, member, _rotated(hub, member, other.transport))
    reply.problem(409, "log")


async def test_admission_refused_when_its_key_was_certified_meanwhile(hub: Hub) -> None:
    # An applicant's key gets certified to a member (by an update-keys the admins signed)
    # while the application is pending: its admission must be refused, not appended.
    member = await hub.admit("FR-PNF", "Parquet national financier")
    applicant = hub.applicant("DE-BKA", "Bundeskriminalamt")
    (await hub.submit(applicant)).ok(201)
    (await hub.prove(applicant)).ok()
    replies = await _update_keys(hub, member, _rotated(hub, member, applicant.transport))
    assert replies[1].ok()["status"] == "appended"

    first, second = await hub.sign(await hub.draft(applicant.app_id), 0, 1)
    first.problem(409, "log")
    second.problem(409, "log")
    # The log stays verifiable and the hub can restart.
    entries, _ = await hub.log_entries()
    assert verify_log(hub.genesis, entries).seq == 2
    assert (await hub.new_service()).state.seq == 2
    (await hub.get("/readyz")).ok()

"""``globe-admin suspend``/``reinstate``/``revoke``, ``log`` and ``audit`` against a real hub
(docs/OPERATIONS.md §6): which open proposal an admin co-signs, what the verified log
shows, a hub that hides log entries, and an audit trail read page by page."""

from __future__ import annotations

import json
import re
import time

import pytest

from globe_admin import members
from globe_io.cli import iso
from globe_io.hubapi import Proposal
from protocol import canonical, labels
from protocol.directory import MemberStatus
from protocol.ids import AuthorityId
from protocol.membership import Action, make_action
from protocol.profile import make_profile
from protocol.signed import SignedObject, verify_quorum
from tests.admin.desk import Desk, DeskFactory
from tests.admin.runner import assert_refused

FR = AuthorityId.parse("FR-PNF")


def signature_counts(proposals: list[Proposal]) -> dict[str, int]:
    return {p.proposal: len(p.signed.signatures) for p in proposals}


@pytest.mark.parametrize("most_signed", ["listed first", "listed last"])
async def test_the_open_proposal_with_the_most_signatures_is_co_signed(
    make_desk: DeskFactory, most_signed: str
) -> None:
    """Two admins proposed the same suspension in other words: the third co-signs the one
    with more signatures, whichever the hub lists first (newest first)."""
    desk = await make_desk(admins=4, threshold=3)
    await desk.admit("FR-PNF")
    prev = (await desk.directory()).member(FR).last_action

    def suspension(reason: str) -> bytes:
        return make_action(
            genesis=desk.genesis, action=Action.SUSPEND, authority=FR, prev=prev,
            issued=int(desk.clock()), reason=reason,
        ).signed.payload  # fmt: skip

    first, second = ("other words", "integrity inquiry")
    if most_signed == "listed last":  # newest first: the most-signed is proposed first
        first, second = second, first
    signers = {"integrity inquiry": (0, 1), "other words": (2,)}
    await desk.sign(suspension(first), *signers[first])
    desk.clock.offset = 5  # a later creation time on the hub's clock
    await desk.sign(suspension(second), *signers[second])
    listed = await desk.proposals()
    counts = [len(p.signed.signatures) for p in listed]
    assert counts == ([2, 1] if most_signed == "listed first" else [1, 2])
    chosen = next(p for p in listed if len(p.signed.signatures) == 2)

    ran = await desk.admin("suspend", "FR-PNF", "--reason", "dave's words", key=3)
    assert (ran.code, ran.out, ran.err) == (
        0,
        "co-signed the open suspend proposal for FR-PNF (reason: integrity inquiry)\n"
        "FR-PNF suspended at log entry 2\n",
        "",
    )
    (appended,) = [p for p in await desk.proposals("appended") if p.action == "suspend"]
    assert (appended.proposal, appended.seq) == (chosen.proposal, 2)
    assert verify_quorum(appended.signed, labels.MEMBERSHIP_ACTION, desk.genesis.admin_keys, 3) == {
        desk.admins[i].key_id for i in (0, 1, 3)
    }
    assert [p.action for p in await desk.proposals("superseded")] == ["suspend"]
    state = await desk.directory()
    assert state.member(FR).status is MemberStatus.SUSPENDED
    assert_refused(
        await desk.admin("suspend", "FR-PNF", "--reason", "again", key=2),
        "cannot suspend FR-PNF: it is suspended",
    )


async def test_proposals_are_listed_newest_first(desk: Desk) -> None:
    await desk.admit("FR-PNF")
    desk.clock.offset = 5  # a later creation time on the hub's clock
    assert (await desk.admin("suspend", "FR-PNF", "--reason", "inquiry", key=2)).code == 0
    suspension, admission = await desk.proposals(None)
    assert desk.decode(admission).action is Action.ADMIT
    assert (await desk.admin("proposals")).out.splitlines() == [
        f"{suspension.proposal[:16]}  suspend     FR-PNF       open       1 of 2  "
        f"{iso(suspension.created)}",
        f"{admission.proposal[:16]}  admit       FR-PNF       appended   2 of 2  "
        f"{iso(admission.created)}  entry 1",
    ]
    listed = (await desk.admin("proposals", "--status", "open", "--json")).json()["proposals"]
    assert [(p["proposal"], p["status"]) for p in listed] == [(suspension.proposal, "open")]
    assert (await desk.admin("proposals", "--status", "superseded")).out == "no proposals\n"


async def test_proposals_that_are_not_this_action_are_not_co_signed(desk: Desk) -> None:
    """Another action, another member, and what a dishonest hub lists as open: a superseded
    proposal (an older ``prev``), one whose listing names the wrong member, one whose payload
    is no action.  The admin proposes the suspension afresh; a second admin completes it."""
    await desk.admit("FR-PNF")
    await desk.admit("DE-BKA")

    async def as_carol(*args: str) -> str:
        ran = await desk.admin(*args, "--json", key=2)
        proposal: str = ran.json()["proposal"]
        return proposal

    stale = await as_carol("suspend", "FR-PNF", "--reason", "before the amendment")
    for i in (0, 1):
        amended = await desk.admin("amend", "FR-PNF", "--kinds", "fiu", "--reason", "fiu", key=i)
        assert amended.code == 0, amended.err
    assert desk.tamper("UPDATE proposals SET status = 'open' WHERE id = ?", stale) == 1
    misnamed = await as_carol("suspend", "DE-BKA", "--reason", "inquiry")
    assert desk.tamper("UPDATE proposals SET authority = 'FR-PNF' WHERE id = ?", misnamed) == 1
    await as_carol("amend", "FR-PNF", "--kinds", "mla-central", "--reason", "central authority")
    await as_carol("revoke", "DE-BKA", "--reason", "dissolved")
    garbage = canonical.encode({"type": "membership-action", "v": 1, "action": "suspend"})
    container = SignedObject(garbage, ()).with_signature(labels.MEMBERSHIP_ACTION, desk.admins[2])
    now = int(time.time())
    assert desk.tamper(
        "INSERT INTO proposals (id, authority, action, payload, signatures, status, created, "
        "updated) VALUES (?, 'FR-PNF', 'suspend', ?, ?, 'open', ?, ?)",
        "ee" * 32, garbage, container.encode(), now, now,
    ) == 1  # fmt: skip
    decoys = signature_counts(await desk.proposals())
    assert len(decoys) == 5

    ran = await desk.admin("suspend", "FR-PNF", "--reason", "integrity inquiry")
    assert (ran.code, ran.out, ran.err) == (
        0, "FR-PNF: suspend signature 1 of 2; 1 more admin(s) must sign\n", "",
    )  # fmt: skip
    listed = await desk.proposals()
    (mine,) = [p for p in listed if p.proposal not in decoys]
    assert signature_counts(listed) == decoys | {mine.proposal: 1}
    action = desk.decode(mine)
    assert (action.action, action.authority, action.reason) == (
        Action.SUSPEND, FR, "integrity inquiry",
    )  # fmt: skip
    assert action.prev == (await desk.directory()).member(FR).last_action

    done = (await desk.admin("suspend", "FR-PNF", "--reason", "r", "--json", key=1)).json()
    assert (done["proposal"], done["co_signed"], done["seq"], done["reason"]) == (
        mine.proposal, True, 4, "integrity inquiry",
    )  # fmt: skip
    log = (await desk.admin("log", "--json", key=2)).json()
    assert [(e["seq"], e["action"], e["authority"], e["signers"], e["reason"])
            for e in log["entries"]] == [
        (1, "admit", "FR-PNF", ["alice", "bob"], None),
        (2, "admit", "DE-BKA", ["alice", "bob"], None),
        (3, "update-keys", "FR-PNF", ["alice", "bob"], "fiu"),
        (4, "suspend", "FR-PNF", ["alice", "bob"], "integrity inquiry"),
    ]  # fmt: skip


async def test_the_log_shows_a_members_own_profile_entries(desk: Desk) -> None:
    member = await desk.admit("FR-PNF")
    profile = make_profile(genesis=desk.genesis, authority=FR, seq=1, identity=member.identity,
                           offences=["bribery"], time_zone="Europe/Paris")  # fmt: skip
    published = await desk.client(member.transport).publish_profile(profile.signed.encode())
    assert published.entry == 2
    state = await desk.directory()

    log = (await desk.admin("log", "--json")).json()
    assert log["entries"][1] == {
        "seq": 2, "time": state.time, "action": "profile", "authority": "FR-PNF",
        "signers": ["FR-PNF"], "reason": None, "hash": state.head.hex(),
    }  # fmt: skip
    assert log["members"] == {"active": 1, "suspended": 0, "revoked": 0}
    lines = (await desk.admin("log")).out.splitlines()
    assert re.fullmatch(
        r"     2  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  profile     FR-PNF       signed by FR-PNF",
        lines[1],
    )
    assert re.fullmatch(
        rf"head: entry 2, hash {state.head.hex()}; verified from genesis globe-desk; "
        r"hub checkpoint at entry 2 \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\) matches",
        lines[2],
    )


async def test_a_hub_that_hides_log_entries_is_caught(desk: Desk) -> None:
    """The hub's signed checkpoint names more entries than it serves: no admin signs on
    that log (a suspension would name a stale ``prev``)."""
    await desk.admit("FR-PNF")
    for i in (0, 1):
        assert (await desk.admin("suspend", "FR-PNF", "--reason", "inquiry", key=i)).code == 0
    assert desk.tamper("DELETE FROM log_entries WHERE seq = 2") == 1
    hidden = "the hub's checkpoint names 2 entries but it served 1"
    assert_refused(await desk.admin("log"), hidden)
    assert_refused(await desk.admin("revoke", "FR-PNF", "--reason", "dissolved"), hidden)
    assert_refused(await desk.admin("amend", "FR-PNF", "--kinds", "fiu", "--reason", "r"), hidden)
    assert await desk.proposals() == []


async def test_the_audit_trail_is_read_page_by_page(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    await desk.admit("FR-PNF")
    whole = (await desk.admin("audit", "--json")).json()["records"]
    assert [(r["id"], r["actor"], r["action"]) for r in whole] == [
        (1, "applicant", "application-received"),
        (2, "applicant", "possession-proven"),
        (3, "alice", "sign-action"),
        (4, "bob", "sign-action"),
        (5, "hub", "log-append"),
    ]
    monkeypatch.setattr(members, "_AUDIT_PAGE", 2)  # three pages: 2, 2 and 1 records
    assert (await desk.admin("audit", "--json")).json()["records"] == whole
    assert (await desk.admin("audit", "--since", "1", "--json")).json()["records"] == whole[1:]
    assert (await desk.admin("audit", "--since", "5")).out == "no audit records\n"

    export = desk.tmp / "audit.json"
    export.write_text("an older export\n")
    started = int(time.time())
    written = await desk.admin("audit", "--since", "3", "--out", export, key=1)
    ended = int(time.time())
    assert written.out.splitlines()[-1] == f"2 records written to {export}"
    assert export.stat().st_mode & 0o777 == 0o600
    exported = json.loads(export.read_text())
    assert exported == {
        "type": "globe-hub-audit-export", "network_id": "globe-desk",
        "genesis_fingerprint": desk.genesis.fingerprint(), "hub_url": desk.url,
        "exported": exported["exported"], "exported_by": "bob", "records": whole[3:],
    }  # fmt: skip
    assert started <= exported["exported"] <= ended

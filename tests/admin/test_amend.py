"""``globe-admin amend``: the admins change a member's certified entry by quorum (PROTOCOL.md
§6.3, §6.7; docs/OPERATIONS.md §6), against a real hub.

The action is an ``update-keys`` that keeps every key: a fresh serial, valid from now to
the current certificate's end.  A second admin co-signs exactly the open proposal that
certifies the same entry, and nothing else; what cannot be amended is refused in one line
before anything is signed.
"""

from __future__ import annotations

import re
import time

from protocol import canonical, labels
from protocol.directory import MemberStatus
from protocol.ids import AuthorityId
from protocol.membership import AUTHORITY_KINDS, Action
from protocol.signed import SignedObject, verify_quorum
from tests.admin.desk import Desk, DeskFactory
from tests.admin.runner import assert_refused

FR = AuthorityId.parse("FR-PNF")
REASON = "designated central authority"


async def test_an_amendment_is_proposed_then_co_signed_into_the_log(desk: Desk) -> None:
    await desk.admit("FR-PNF")
    before = (await desk.directory()).member(FR)
    started = int(time.time())
    proposed = await desk.admin(
        "amend", "FR-PNF", "--kinds", "mla-central, anti-corruption", "--languages", "fr,es",
        "--name", "Parquet national financier", "--endpoint", "https://pnf.example.org/globe",
        "--reason", REASON,
    )  # fmt: skip
    ended = int(time.time())
    assert (proposed.code, proposed.out, proposed.err) == (
        0, "FR-PNF: amendment signature 1 of 2; 1 more admin(s) must sign\n", "",
    )  # fmt: skip

    (open_,) = await desk.proposals()
    action = desk.decode(open_)
    cert, cur = action.certificate, before.certificate
    assert cert is not None
    assert (action.action, action.authority, action.prev, action.reason) == (
        Action.UPDATE_KEYS, FR, before.last_action, REASON,
    )  # fmt: skip
    assert started <= action.issued == cert.not_before <= ended
    assert (cert.name, cert.kinds, cert.languages, cert.endpoint) == (
        "Parquet national financier", ("anti-corruption", "mla-central"), ("es", "fr"),
        "https://pnf.example.org/globe",
    )  # fmt: skip
    assert (cert.identity_key, cert.transport_key, cert.ka_key_raw, cert.not_after) == (
        cur.identity_key, cur.transport_key, cur.ka_key_raw, cur.not_after,
    )  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{32}", cert.serial)
    assert cert.serial != cur.serial
    assert cert.application is None
    assert [s.key_id for s in open_.signed.signatures] == [desk.admins[0].key_id]

    # Bob types the same change (other order, other spacing): he co-signs alice's proposal.
    co_signed = await desk.admin(
        "amend", "FR-PNF", "--kinds", "anti-corruption,mla-central", "--languages", "es, fr",
        "--name", "Parquet national financier", "--endpoint", "https://pnf.example.org/globe",
        "--reason", "another wording, not signed", key=1,
    )  # fmt: skip
    assert (co_signed.code, co_signed.out, co_signed.err) == (
        0, "co-signed the open amendment of FR-PNF\nFR-PNF amended at log entry 2\n", "",
    )  # fmt: skip
    state = await desk.directory()
    member = state.member(FR)
    assert (state.seq, member.status, member.certificate) == (2, MemberStatus.ACTIVE, cert)
    assert member.last_action == action.digest
    (appended,) = [p for p in await desk.proposals("appended") if p.action == "update-keys"]
    assert (appended.proposal, appended.seq) == (open_.proposal, 2)
    assert appended.signed.payload == open_.signed.payload
    signers = verify_quorum(appended.signed, labels.MEMBERSHIP_ACTION, desk.genesis.admin_keys, 2)
    assert signers == {desk.admins[0].key_id, desk.admins[1].key_id}
    assert await desk.proposals() == []


async def test_the_answer_as_json(desk: Desk) -> None:
    await desk.admit("FR-PNF")
    prev = (await desk.directory()).member(FR).last_action
    args = (
        "amend",
        "FR-PNF",
        "--endpoint",
        "https://pnf.example.org",
        "--reason",
        REASON,
        "--json",
    )
    first = (await desk.admin(*args)).json()
    (open_,) = await desk.proposals()
    assert first == {
        "proposal": open_.proposal, "action": "update-keys", "authority": "FR-PNF",
        "signatures": 1, "threshold": 2, "status": "open", "co_signed": False,
        "prev": prev.hex(),
    }  # fmt: skip
    second = (await desk.admin(*args, key=2)).json()
    assert second == first | {"signatures": 2, "status": "appended", "seq": 2, "co_signed": True}


async def test_refusals_sign_nothing(desk: Desk) -> None:
    await desk.admit("FR-PNF")
    kinds = ", ".join(sorted(AUTHORITY_KINDS))
    table: list[tuple[list[str], str]] = [
        (["--kinds", "fraud"], f"--kinds: a comma-separated list from {kinds}"),
        (["--kinds", "anti-corruption,fraud"], f"--kinds: a comma-separated list from {kinds}"),
        (["--kinds", " , "], f"--kinds: a comma-separated list from {kinds}"),
        (["--languages", ","], "--languages: a comma-separated list"),
        (["--endpoint", "ftp://pnf.example.org"],
         "--endpoint: must be an http(s) URL without query or credentials"),
        (["--endpoint", "https://user:pw@pnf.example.org"],
         "--endpoint: must be an http(s) URL without query or credentials"),
        # What the certificate already says, however it is typed.
        (["--kinds", "anti-corruption"], "the certificate of FR-PNF already says this: "
         "nothing to amend"),
        (["--languages", "fr, en,fr"], "the certificate of FR-PNF already says this: "
         "nothing to amend"),
        (["--endpoint", ""], "the certificate of FR-PNF already says this: nothing to amend"),
        (["--name", "Authority FR-PNF"], "the certificate of FR-PNF already says this: "
         "nothing to amend"),
        ([], "the certificate of FR-PNF already says this: nothing to amend"),
    ]  # fmt: skip
    for args, detail in table:
        assert_refused(await desk.admin("amend", "FR-PNF", *args, "--reason", REASON), detail)
    assert_refused(
        await desk.admin("amend", "DE-BKA", "--kinds", "fiu", "--reason", REASON),
        "DE-BKA is not a member",
    )
    assert [p.action for p in await desk.proposals(None)] == ["admit"]
    assert (await desk.directory()).seq == 1


async def test_a_suspended_member_can_be_amended_a_revoked_one_cannot(desk: Desk) -> None:
    await desk.admit("FR-PNF")
    for i in (0, 1):
        suspended = await desk.admin("suspend", "FR-PNF", "--reason", "inquiry", key=i)
        assert suspended.code == 0, suspended.err
    amended = await desk.admin("amend", "FR-PNF", "--kinds", "fiu", "--reason", REASON)
    assert amended.out == "FR-PNF: amendment signature 1 of 2; 1 more admin(s) must sign\n"
    (amendment,) = await desk.proposals()
    for i in (0, 1):
        revoked = await desk.admin("revoke", "FR-PNF", "--reason", "dissolved", key=i)
        assert revoked.code == 0, revoked.err
    assert_refused(
        await desk.admin("amend", "FR-PNF", "--kinds", "fiu", "--reason", REASON, key=2),
        "cannot amend FR-PNF: it is revoked",
    )
    # The open amendment was superseded by the revocation; nothing new was proposed.
    (superseded,) = await desk.proposals("superseded")
    assert superseded.proposal == amendment.proposal
    assert await desk.proposals() == []
    state = await desk.directory()
    assert (state.seq, state.member(FR).status) == (3, MemberStatus.REVOKED)


async def test_an_expired_certificate_is_not_amended(make_desk: DeskFactory) -> None:
    desk = await make_desk(certificate_days=1)
    desk.clock.offset = -3 * 86400  # admitted three days ago, for one day
    await desk.admit("FR-PNF")
    desk.clock.offset = 0
    assert (await desk.directory()).member(FR).certificate.not_after < time.time()
    assert_refused(
        await desk.admin("amend", "FR-PNF", "--kinds", "fiu", "--reason", REASON),
        "the certificate of FR-PNF has expired: admit it anew",
    )
    assert await desk.proposals() == []


async def test_only_the_open_proposal_of_the_same_entry_is_co_signed(desk: Desk) -> None:
    """Open proposals for another member, another action, other fields, or one whose payload
    is not an action at all (a dishonest hub's) are left alone: a proposal of its own."""
    await desk.admit("FR-PNF")
    await desk.admit("DE-BKA")
    for args in (
        ("suspend", "FR-PNF", "--reason", "inquiry"),
        ("amend", "DE-BKA", "--kinds", "fiu", "--reason", REASON),
        ("amend", "FR-PNF", "--kinds", "fiu", "--reason", REASON),
        ("amend", "FR-PNF", "--kinds", "fiu,anti-corruption", "--name", "PNF", "--reason", REASON),
    ):
        ran = await desk.admin(*args, key=2)
        assert ran.code == 0, ran.err
    garbage = canonical.encode({"type": "membership-action", "v": 1, "action": "update-keys"})
    container = SignedObject(garbage, ()).with_signature(labels.MEMBERSHIP_ACTION, desk.admins[2])
    now = int(time.time())
    assert desk.tamper(
        "INSERT INTO proposals (id, authority, action, payload, signatures, status, created, "
        "updated) VALUES (?, 'FR-PNF', 'update-keys', ?, ?, 'open', ?, ?)",
        "ee" * 32, garbage, container.encode(), now + 60, now + 60,
    ) == 1  # fmt: skip
    decoys = {p.proposal: len(p.signed.signatures) for p in await desk.proposals()}
    assert len(decoys) == 5

    mine = await desk.admin("amend", "FR-PNF", "--kinds", "fiu", "--languages", "fr",
                            "--reason", REASON, "--json")  # fmt: skip
    assert (mine.json()["co_signed"], mine.json()["status"]) == (False, "open")
    listed = {p.proposal: len(p.signed.signatures) for p in await desk.proposals()}
    assert listed == decoys | {mine.json()["proposal"]: 1}

    done = (await desk.admin("amend", "FR-PNF", "--kinds", "fiu", "--languages", "fr",
                             "--reason", REASON, "--json", key=1)).json()  # fmt: skip
    assert (done["proposal"], done["co_signed"], done["seq"]) == (mine.json()["proposal"], True, 3)
    # The hub closed every other FR-PNF proposal; DE-BKA's stays open.
    still_open = await desk.proposals()
    assert [(p.authority, p.action) for p in still_open] == [("DE-BKA", "update-keys")]
    certificate = (await desk.directory()).member(FR).certificate
    assert (certificate.kinds, certificate.languages) == (("fiu",), ("fr",))

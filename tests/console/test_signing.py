"""Signing from the console against a real hub: the key is opened for each signature with
the passphrase typed in the page (or pre-supplied), a wrong passphrase sends nothing, only
the action the page showed is signed, two admins' consoles reach the quorum, a suspension
is co-signed where the verified log allows it, and an application is rejected with a
reason."""

from __future__ import annotations

from globe_io.hubapi import APPROVED, REJECTED
from protocol.directory import MemberStatus
from protocol.ids import AuthorityId
from tests.admin.desk import Desk
from tests.admin.runner import PASSPHRASE
from tests.console.conftest import ConsoleFactory, HubProxy
from tests.console.test_security import sha256_of


async def test_a_wrong_passphrase_is_refused_and_nothing_is_sent(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    running = await open_console()
    c = await client(running).signed_in()
    path = f"/console/applications/{member.app_id}"
    page = await c.get(path)
    assert 'id="approve-passphrase" name="passphrase"' in page.text
    form = {"csrf": page.csrf, "sha256": sha256_of(page.text)}
    for typed, detail in [
        ("not the passphrase", f"{desk.keys[0]}: wrong passphrase, or the key file was altered"),
        ("", "type the passphrase of your admin key: nothing was sent"),
    ]:
        wrong = await c.post(f"{path}/approve", {**form, "passphrase": typed})
        assert (wrong.status, wrong.problem) == (403, "wrong-passphrase")
        assert detail in wrong.plain
        assert "The passphrase does not open your admin key" in wrong.plain
    assert await desk.proposals() == []
    french = await c.post(f"{path}/approve", {**form, "passphrase": "faux"},
                          **{"Accept-Language": "fr"})  # fmt: skip
    assert (french.status, french.problem) == (403, "wrong-passphrase")
    assert "La phrase de passe n'ouvre pas votre clé d'administrateur" in french.plain
    assert await desk.proposals() == []
    signed = await c.post(f"{path}/approve", {**form, "passphrase": PASSPHRASE})
    assert signed.status == 200
    assert 'data-outcome="signed" data-signatures="1"' in signed.text
    assert "Admission of FR-PNF: signed by alice; 1 of 2 signatures." in signed.plain
    assert 'data-needed="1"' in signed.text
    [proposal] = await desk.proposals()
    assert [str(s.key_id) for s in proposal.signed.signatures] == [str(desk.admins[0].key_id)]


async def test_only_the_action_the_page_showed_is_signed(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    running = await open_console(presupplied=True)
    c = await client(running).signed_in()
    path = f"/console/applications/{member.app_id}"
    page = await c.get(path)
    assert 'name="passphrase"' not in page.text  # pre-supplied: no field
    shown = sha256_of(page.text)
    for sent in ("0" * 64, None, "not a digest"):
        form = {"csrf": page.csrf} | ({"sha256": sent} if sent is not None else {})
        answer = await c.post(f"{path}/approve", form)
        assert (answer.status, answer.problem) == (409, "changed-since-shown"), sent
    assert await desk.proposals() == []
    ok = await c.post(f"{path}/approve", {"csrf": page.csrf, "sha256": shown})
    assert ok.status == 200
    assert len(await desk.proposals()) == 1


async def test_two_admins_reach_the_quorum_from_their_own_consoles(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    alice = await client(await open_console(0)).signed_in()
    bob_console = await open_console(1)  # started before alice signs: his reading is older
    bob = await client(bob_console).signed_in()
    page = await alice.get(f"/console/applications/{member.app_id}")
    first = await alice.post(
        f"/console/applications/{member.app_id}/approve",
        {"csrf": page.csrf, "sha256": sha256_of(page.text), "passphrase": PASSPHRASE},
    )
    assert "signed by alice; 1 of 2 signatures" in first.plain

    stale = await bob.get("/console/proposals")
    assert "No open proposals." in stale.plain
    read = await bob.post("/console/read", {"csrf": stale.csrf, "next": "/console/proposals",
                                            "passphrase": PASSPHRASE})  # fmt: skip
    assert (read.status, read.headers["Location"]) == (303, "/console/proposals")
    proposals = await bob.get("/console/proposals")
    assert 'data-action="admit"' in proposals.text
    assert '<dd class="signers" data-count="1">alice</dd>' in proposals.text
    assert '<dd class="needed" data-needed="1">1</dd>' in proposals.text
    assert f'action="/console/applications/{member.app_id}/approve"' in proposals.text
    second = await bob.post(
        f"/console/applications/{member.app_id}/approve",
        {"csrf": proposals.csrf, "sha256": sha256_of(proposals.text), "passphrase": PASSPHRASE},
    )
    assert second.status == 200
    assert 'data-outcome="appended" data-seq="1"' in second.text
    assert "appended to the membership log at entry 1, signed by alice, bob." in second.plain

    state = await desk.directory()
    assert [str(a) for a in state.members] == ["FR-PNF"]
    info = await desk.client(desk.admins[0]).admin_application(member.app_id)
    assert info.status == APPROVED
    assert await desk.proposals() == []
    again = await alice.get(f"/console/applications/{member.app_id}")
    assert 'id="approve"' not in again.text  # the console read the hub again: approved
    log = await bob.get("/console/log")
    assert '<td class="signers">alice, bob</td>' in log.text


async def test_a_suspension_is_co_signed_where_the_verified_log_allows_it(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    await desk.admit("FR-PNF")
    await desk.admit("BR-PF")
    assert (await desk.admin("suspend", "FR-PNF", "--reason", "integrity inquiry")).code == 0
    assert (await desk.admin("suspend", "BR-PF", "--reason", "audit")).code == 0
    assert (await desk.admin("revoke", "BR-PF", "--reason", "dissolved")).code == 0
    assert (await desk.admin("revoke", "BR-PF", "--reason", "dissolved", key=2)).code == 0
    # a hub that keeps offering the suspension of BR-PF, revoked since
    assert desk.tamper("UPDATE proposals SET status = 'open' WHERE action = 'suspend' "
                       "AND authority = 'BR-PF'") == 1  # fmt: skip
    bob = await client(await open_console(1, presupplied=True)).signed_in()
    page = await bob.get("/console/proposals")
    cards = {
        card.split('data-action="', 1)[1].split('"', 1)[0]
        + " "
        + card.split("<bdi>", 1)[1].split("<", 1)[0]: card
        for card in page.text.split('<li class="card"')[1:]
    }
    assert sorted(cards) == ["suspend BR-PF", "suspend FR-PNF"]
    live, stale = cards["suspend FR-PNF"], cards["suspend BR-PF"]
    assert "integrity inquiry" in live
    assert '<dd class="signers" data-count="1">alice</dd>' in live
    assert "allows this action now" in live
    assert 'data-verdict="refused"' in stale
    assert "cannot suspend BR-PF: it is revoked" in stale
    assert "/sign" not in stale  # no form

    def proposal_id(card: str) -> str:
        return card.split('data-proposal="', 1)[1].split('"', 1)[0]

    refused = await bob.post(f"/console/proposals/{proposal_id(stale)}/sign",
                             {"csrf": page.csrf, "sha256": "0" * 64})  # fmt: skip
    assert (refused.status, refused.problem) == (400, "command")
    assert "cannot suspend BR-PF: it is revoked" in refused.plain
    answer = await bob.post(f"/console/proposals/{proposal_id(live)}/sign",
                            {"csrf": page.csrf, "sha256": sha256_of(live)})  # fmt: skip
    assert answer.status == 200
    assert (
        "Suspension of FR-PNF: appended to the membership log at entry 4, signed by alice, bob."
        in answer.plain
    )
    state = await desk.directory()
    assert state.member(AuthorityId.parse("FR-PNF")).status is MemberStatus.SUSPENDED
    unknown = await bob.post(f"/console/proposals/{'ab' * 32}/sign",
                             {"csrf": page.csrf, "sha256": "0" * 64})  # fmt: skip
    assert (unknown.status, unknown.problem) == (404, "not-found")


async def test_an_application_is_rejected_with_a_reason(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    c = await client(await open_console()).signed_in()
    path = f"/console/applications/{member.app_id}"
    token = (await c.get(path)).csrf
    for why, detail in [
        ("  ", "the reason must not be empty"),
        ("not\u202eok", "the reason: at most 2000 characters, no control or bidi characters"),
    ]:
        refused = await c.post(f"{path}/reject", {"csrf": token, "reason": why,
                                                  "passphrase": PASSPHRASE})  # fmt: skip
        assert (refused.status, refused.problem) == (400, "command")
        assert detail in refused.plain
    wrong = await c.post(f"{path}/reject", {"csrf": token, "reason": "no", "passphrase": "x"})
    assert (wrong.status, wrong.problem) == (403, "wrong-passphrase")
    info = await desk.client(desk.admins[0]).admin_application(member.app_id)
    assert info.status == "pending"
    done = await c.post(f"{path}/reject", {"csrf": token, "passphrase": PASSPHRASE,
                                           "reason": "not an UNCAC art. 36 authority"})  # fmt: skip
    assert done.status == 200
    assert 'data-outcome="rejected"' in done.text
    assert "The application of FR-PNF is rejected." in done.plain
    info = await desk.client(desk.admins[0]).admin_application(member.app_id)
    assert (info.status, info.reason) == (REJECTED, "not an UNCAC art. 36 authority")
    page = await c.get(path)
    assert 'data-status="rejected"' in page.text
    assert 'id="reject"' not in page.text


async def test_a_key_file_replaced_while_the_console_runs_signs_nothing(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    c = await client(await open_console()).signed_in()
    page = await c.get(f"/console/applications/{member.app_id}")
    desk.keys[0].write_bytes(desk.keys[1].read_bytes())  # bob's key under alice's file name
    answer = await c.post(
        f"/console/applications/{member.app_id}/approve",
        {"csrf": page.csrf, "sha256": sha256_of(page.text), "passphrase": PASSPHRASE},
    )
    assert (answer.status, answer.problem) == (400, "command")
    assert f"{desk.keys[0]} no longer holds the admin key of alice" in answer.plain
    assert await desk.proposals() == []


async def test_a_proposal_the_log_has_moved_past_is_not_offered_nor_signed(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    await desk.admit("FR-PNF")
    await desk.admit("BR-PF")
    assert (await desk.admin("suspend", "FR-PNF", "--reason", "integrity inquiry")).code == 0
    for key in (0, 1):  # an amendment appended after the suspension was proposed
        amended = await desk.admin("amend", "FR-PNF", "--languages", "en,fr,es",
                                   "--reason", "Spanish desk", key=key)  # fmt: skip
        assert amended.code == 0, amended.err
    assert desk.tamper("UPDATE proposals SET status = 'open' WHERE action = 'suspend'") == 1
    opened = await desk.admin("amend", "BR-PF", "--name", "Polícia Federal", "--reason", "name")
    assert opened.code == 0, opened.err
    bob = await client(await open_console(1, presupplied=True)).signed_in()
    page = await bob.get("/console/proposals")
    cards = page.text.split('<li class="card"')[1:]
    [suspend] = [c for c in cards if 'data-action="suspend"' in c]
    assert 'data-verdict="refused"' in suspend
    assert (
        "the proposal does not follow the latest action on FR-PNF in the verified log: it can "
        "never be appended" in suspend
    )
    [amendment] = [c for c in cards if 'data-action="update-keys"' in c]
    assert "globe-admin approve-keys, or globe-admin amend" in amendment
    assert "/sign" not in amendment
    proposal = amendment.split('data-proposal="', 1)[1].split('"', 1)[0]
    refused = await bob.post(f"/console/proposals/{proposal}/sign",
                             {"csrf": page.csrf, "sha256": "0" * 64})  # fmt: skip
    assert (refused.status, refused.problem) == (400, "command")
    assert "an action update-keys is signed with its own command" in refused.plain
    assert [len(p.signed.signatures) for p in await desk.proposals()] == [1, 1]


async def test_a_signature_stays_done_when_the_hub_fails_the_reading_after_it(
    desk: Desk, open_console: ConsoleFactory, client, hub_proxy: HubProxy, caplog
) -> None:
    member = await desk.apply("FR-PNF")
    c = await client(await open_console(presupplied=True, hub=hub_proxy.url)).signed_in()
    path = f"/console/applications/{member.app_id}"
    page = await c.get(path)
    submitted = False

    def fail_after_signing(hub_path: str, body: bytes) -> bytes:
        nonlocal submitted
        if hub_path == "/v1/admin/actions":
            submitted = True
        elif submitted and hub_path == "/v1/admin/applications":
            return b"{}"
        return body

    hub_proxy.rewrite = fail_after_signing
    answer = await c.post(f"{path}/approve", {"csrf": page.csrf, "sha256": sha256_of(page.text)})
    assert answer.status == 200
    assert "Admission of FR-PNF: the hub counts 1 of 2 signatures." in answer.plain
    assert 'data-needed="1"' in answer.text
    assert [len(p.signed.signatures) for p in await desk.proposals()] == [1]
    assert "reading the hub after a signature failed: hub response applications" in caplog.text

"""Cases as records of their own on a real node: opened, renamed, closed and reopened,
assigned, annotated with notes that never leave the node, listed with filters and pages;
a reference first met in an incoming message opens an unassigned case; a message in no
case is filed under one.  Every change is audited; titles and notes are sealed at rest."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from globe_node import db
from protocol.messages import Kind
from tests.node.helpers import delivered, info, problem
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def ok(rn: RunningNode, method: str, path: str, body: Any = None, token: str = "") -> Any:
    status, answer = await rn.api(method, path, body, token=token or None)
    assert 200 <= status < 300, (method, path, answer)
    return answer


async def audited(rn: RunningNode) -> list[tuple[str, str, str]]:
    async with rn.n.sessions() as s:
        rows = (await s.execute(select(db.AuditRow).order_by(db.AuditRow.seq))).scalars()
        return [(r.user, r.action, r.subject) for r in rows if r.action.startswith("case-")]


def files_hold(rn: RunningNode, text: bytes) -> list[str]:
    """The files of the node directory holding ``text`` in the clear."""
    return [
        str(p) for p in rn.config.directory.rglob("*") if p.is_file() and text in p.read_bytes()
    ]


async def test_a_case_is_opened_changed_annotated_and_listed(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    lead = await add_user(fr.n, "lead", "supervisor")
    await add_user(fr.n, "ana", "investigator", "fin")
    opened = await ok(fr, "POST", "/api/cases", {
        "case": "FR-2026-7", "title": "Skyline procurement", "team": "fin", "assignee": "ana",
    }, lead)  # fmt: skip
    assert {k: opened[k] for k in ("case", "title", "team", "assignee", "state", "created_by",
                                   "message_count", "open", "overdue", "counterparts")} == {
        "case": "FR-2026-7", "title": "Skyline procurement", "team": "fin", "assignee": "ana",
        "state": "open", "created_by": "lead", "message_count": 0, "open": 0, "overdue": 0,
        "counterparts": [],
    }  # fmt: skip
    assert problem(await fr.api("POST", "/api/cases", {"case": "FR-2026-7"}, token=lead)) == (
        409, "state-conflict", "case FR-2026-7 exists"
    )  # fmt: skip
    renamed = await ok(fr, "POST", "/api/cases/FR-2026-7/rename", {"title": "Skyline tenders"},
                       lead)  # fmt: skip
    assert renamed["title"] == "Skyline tenders"
    note = await ok(fr, "POST", "/api/cases/FR-2026-7/notes",
                    {"body": "Call the prosecutor\\nbefore Friday."}, lead)  # fmt: skip
    assert (note["case"], note["user"], note["body"]) == (
        "FR-2026-7", "lead", "Call the prosecutor\\nbefore Friday."
    )  # fmt: skip
    # A message into the case, and one that opens a case of Brazil's reference here.
    mid = str(await fr.n.send([br.me], info("Tender documents", case="FR-2026-7")))
    theirs = str(await br.n.send([fr.me], info("Their lead", case="BR-PF-31")))
    await eventually(lambda: delivered(fr, mid, br))
    await eventually(lambda: delivered(br, theirs, fr))
    case = await ok(fr, "GET", "/api/cases/FR-2026-7", token=lead)
    assert [(m["id"], m["subject"], m["direction"]) for m in case["messages"]] == [
        (mid, "Tender documents", "out")
    ]
    assert [(n["user"], n["body"]) for n in case["notes"]] == [
        ("lead", "Call the prosecutor\\nbefore Friday.")
    ]
    assert (case["counterparts"], case["message_count"]) == (["BR-PF"], 1)
    met = await ok(fr, "GET", "/api/cases/BR-PF-31", token=lead)
    assert (met["team"], met["assignee"], met["created_by"], met["title"]) == (
        None, None, "BR-PF", None
    )  # fmt: skip
    # Lists: filters and pages.
    listed = await ok(fr, "GET", "/api/cases?limit=1", token=lead)
    assert (listed["total"], listed["limit"], len(listed["cases"])) == (2, 1, 1)
    nxt = await ok(fr, "GET", "/api/cases?limit=1&offset=1", token=lead)
    assert {listed["cases"][0]["case"], nxt["cases"][0]["case"]} == {"FR-2026-7", "BR-PF-31"}
    assert [c["case"] for c in (await ok(fr, "GET", "/api/cases?team=fin", token=lead))["cases"]
            ] == ["FR-2026-7"]  # fmt: skip
    assert [c["case"] for c in (await ok(fr, "GET", "/api/cases?assignee=ana", token=lead))[
        "cases"]] == ["FR-2026-7"]  # fmt: skip
    # Closing twice, reopening an open case: refused, the state unchanged.
    await ok(fr, "POST", "/api/cases/FR-2026-7/close", {}, lead)
    assert problem(await fr.api("POST", "/api/cases/FR-2026-7/close", {}, token=lead)) == (
        409, "state-conflict", "case FR-2026-7 is closed already"
    )  # fmt: skip
    closed = await ok(fr, "GET", "/api/cases?state=closed", token=lead)
    assert [c["case"] for c in closed["cases"]] == ["FR-2026-7"]
    await ok(fr, "POST", "/api/cases/FR-2026-7/reopen", {}, lead)
    assert problem(await fr.api("POST", "/api/cases/FR-2026-7/reopen", {}, token=lead)) == (
        409, "state-conflict", "case FR-2026-7 is open already"
    )  # fmt: skip
    # Filing: a message in no case goes under one; one naming a case stays in its own.
    loose = str(await br.n.send([fr.me], info("A loose tip")))
    await eventually(lambda: delivered(br, loose, fr))
    filed = await ok(fr, "POST", f"/api/messages/{loose}/file", {"case": "FR-2026-7"}, lead)
    assert filed == {"message": loose, "case": "FR-2026-7", "team": "fin"}
    assert problem(await fr.api("POST", f"/api/messages/{theirs}/file", {"case": "FR-2026-7"},
                                token=lead)) == (
        409, "state-conflict", f"message {theirs} names case BR-PF-31 itself: it stays there"
    )  # fmt: skip
    # A reply to the filed message follows it there (the wire keeps no case).
    reply = str(await fr.n.reply(loose, kind=Kind.INFORMATION, body="Thank you."))
    held = await fr.n.content_of(reply)
    assert (held.place.case, held.place.team, held.content.case) == ("FR-2026-7", "fin", None)
    assert await audited(fr) == [
        ("lead", "case-open", "FR-2026-7 team fin"),
        ("lead", "case-rename", "FR-2026-7"),
        ("lead", "case-note", f"FR-2026-7 note {note['id']}"),
        ("lead", "case-close", "FR-2026-7"),
        ("lead", "case-reopen", "FR-2026-7"),
        ("lead", "case-file", f"{loose} into FR-2026-7"),
    ]
    # Titles and notes are sealed at rest, like message content.
    for text in (b"Skyline", b"prosecutor", b"Tender documents"):
        assert files_hold(fr, text) == [], text


async def test_a_case_goes_only_to_teams_and_users_that_can_hold_it(net: Net) -> None:
    """A case is opened for one of the user's own teams (a supervisor: any), and given only
    to a team some user is in and to a user who sees that team; a refused change changes
    nothing and is not audited."""
    fr = await net.member("FR-PNF", "Parquet national financier")
    lead = await add_user(fr.n, "lead", "supervisor")
    ana = await add_user(fr.n, "ana", "investigator", "fin")
    await add_user(fr.n, "ops", "operator")
    case = {"case": "X-1", "team": "customs"}
    assert problem(await fr.api("POST", "/api/cases", case, token=ana)) == (
        400, "usage", "'team': customs is not one of your teams"
    )  # fmt: skip
    opened = await ok(fr, "POST", "/api/cases", {**case, "team": "fin"}, ana)
    assert (opened["team"], opened["assignee"]) == ("fin", None)
    refusals = [
        ({}, "name a 'team', an 'assignee' or both"),
        ({"team": "customs"}, "'team': no user is in team customs"),
        ({"assignee": "ops"}, "'assignee': ops is not a user who sees the case's team (fin)"),
        ({"assignee": "ghost"}, "'assignee': ghost is not a user who sees the case's team (fin)"),
    ]
    for body, detail in refusals:
        refused = await fr.api("POST", "/api/cases/X-1/assign", body, token=lead)
        assert problem(refused) == (400, "usage", detail), body
    shown = await ok(fr, "GET", "/api/cases/X-1", token=lead)
    assert (shown["team"], shown["assignee"], shown["updated"]) == ("fin", None, opened["updated"])
    assert await audited(fr) == [("ana", "case-open", "X-1 team fin")]
    # a supervisor opens a case for any team, even one no user is in yet
    made = await ok(fr, "POST", "/api/cases", {"case": "X-2", "team": "customs"}, lead)
    assert made["team"] == "customs"

"""The case actions of the web UI over raw HTTP, against a real hub and two real nodes:
open a case, rename it, add notes, assign it, close and reopen it, file a message under
it.  Each change is a POST with the session's form token, turned into the body of the
API's own case route; each refusal is the API's, shown on the page with what was typed;
each change is in the node's audit log."""

from __future__ import annotations

import re
from functools import partial

import pytest

from tests.node.helpers import delivered, info
from tests.support.waiting import eventually
from tests.webui.client import Answer, UiClient
from tests.webui.conftest import Pair, user

pytestmark = pytest.mark.slow


def notes(page: Answer) -> list[str]:
    """The notes a case page shows, oldest first."""
    return re.findall(r'<p class="body" dir="auto">([^<]*)</p>', page.text)


def shown(page: Answer, element: str) -> str:
    """The text of the element with id ``element`` (one without nested tags)."""
    found = re.search(rf'id="{element}"[^>]*>([^<]*)<', page.text)
    assert found is not None, element
    return found.group(1)


async def audited(pair: Pair, *actions: str) -> list[tuple[str, str, str]]:
    """(user, action, subject) of France's audit rows of ``actions``, oldest first."""
    entries, ok = await pair.fr.n.audit.entries()
    assert ok
    return [(e["user"], e["action"], e["subject"]) for e in entries if e["action"] in actions]


async def test_an_investigator_opens_renames_notes_assigns_closes_and_reopens_a_case(
    pair: Pair,
) -> None:
    await user(pair.fr, "bob", "investigator")
    await user(pair.fr, "ops", "operator")
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        listing = await c.get("/ui/cases")
        assert 'id="open-case-form"' in listing.text
        # the assignees offered: the node's investigators and supervisors, never an operator
        assert re.findall(r'<option value="(\w+)"', listing.text.split('id="new-assignee"')[1]
                          .split("</select>")[0]) == ["alice", "bob"]  # fmt: skip
        token = listing.csrf
        opened = await c.post("/ui/cases", {"csrf": token, "case": "OP-ORION",
                                            "title": "Orion Holdings", "assignee": ""})  # fmt: skip
        assert (opened.status, opened.headers["Location"]) == (303, "/ui/cases/OP-ORION")
        case = await c.get("/ui/cases/OP-ORION")
        assert shown(case, "case-title") == "Orion Holdings"
        assert 'data-case-state="open"' in case.text
        assert shown(case, "case-assignee") == "Nobody yet"
        assert 'id="close-form"' in case.text
        assert 'id="reopen-form"' not in case.text
        listed = await c.get("/ui/cases?state=open")
        assert '<tr data-case="OP-ORION">' in listed.text
        assert '<tr data-case="OP-ORION">' not in (await c.get("/ui/cases?state=closed")).text

        renamed = await c.post(
            "/ui/cases/OP-ORION/rename", {"csrf": token, "title": "Orion and partners"}
        )
        assert (renamed.status, renamed.headers["Location"]) == (303, "/ui/cases/OP-ORION")
        for body in ("Ask Kenya for the registry.", "Bank answered: two accounts."):
            added = await c.post("/ui/cases/OP-ORION/notes", {"csrf": token, "body": body})
            assert added.status == 303
        assigned = await c.post("/ui/cases/OP-ORION/assign", {"csrf": token, "assignee": "bob",
                                                              "team": ""})  # fmt: skip
        assert assigned.status == 303
        case = await c.get("/ui/cases/OP-ORION")
        assert shown(case, "case-title") == "Orion and partners"
        assert shown(case, "case-assignee") == "bob"
        # (two notes of the same second come in the order of their random ids)
        assert sorted(notes(case)) == [
            "Ask Kenya for the registry.",
            "Bank answered: two accounts.",
        ]
        assert '<option value="bob" selected>bob</option>' in case.text

        closed = await c.post("/ui/cases/OP-ORION/close", {"csrf": token})
        assert closed.status == 303
        case = await c.get("/ui/cases/OP-ORION")
        assert 'data-case-state="closed"' in case.text
        assert 'id="reopen-form"' in case.text
        assert 'id="close-form"' not in case.text
        again = await c.post("/ui/cases/OP-ORION/close", {"csrf": token})
        assert (again.status, again.problem) == (409, "state-conflict")
        assert "case OP-ORION is closed already" in again.plain
        assert 'data-case-state="closed"' in again.text  # the case page, with the refusal
        reopened = await c.post("/ui/cases/OP-ORION/reopen", {"csrf": token})
        assert reopened.status == 303
        assert 'data-case-state="open"' in (await c.get("/ui/cases/OP-ORION")).text

    rows = await audited(pair, "case-open", "case-rename", "case-note", "case-assign",
                         "case-close", "case-reopen")  # fmt: skip
    assert [(who, action) for who, action, _ in rows] == [
        ("alice", "case-open"), ("alice", "case-rename"), ("alice", "case-note"),
        ("alice", "case-note"), ("alice", "case-assign"), ("alice", "case-close"),
        ("alice", "case-reopen"),
    ]  # fmt: skip
    assert [subject for _, action, subject in rows if action != "case-note"] == [
        "OP-ORION team -", "OP-ORION", "OP-ORION team (same) assignee bob", "OP-ORION",
        "OP-ORION",
    ]  # fmt: skip
    assert all(re.fullmatch(r"OP-ORION note [0-9a-f]{32}", subject)
               for _, action, subject in rows if action == "case-note")  # fmt: skip


async def test_refusals_come_back_on_the_case_pages_with_what_was_typed(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        token = await c.token("/ui/cases")
        assert (await c.post("/ui/cases", {"csrf": token, "case": "C-1"})).status == 303
        taken = await c.post("/ui/cases", {"csrf": token, "case": "C-1", "title": "Kept title"})
        assert (taken.status, taken.problem) == (409, "state-conflict")
        assert "case C-1 exists" in taken.plain
        assert 'value="Kept title"' in taken.text
        bad = await c.post("/ui/cases", {"csrf": token, "case": "-C2", "title": "t"})
        assert (bad.status, bad.problem) == (400, "usage")
        assert "'case' is a case reference: 1-64 of A-Z a-z 0-9 . _ / -" in bad.plain
        assert 'value="-C2"' in bad.text
        empty = await c.post("/ui/cases", {"csrf": token, "case": ""})
        assert (empty.status, empty.problem) == (400, "usage")
        assert "'case' is a case reference" in empty.plain
        untitled = await c.post("/ui/cases/C-1/rename", {"csrf": token, "title": ""})
        assert (untitled.status, untitled.problem) == (400, "usage")
        assert "'title' is 1-200 characters on one line" in untitled.plain
        nobody = await c.post("/ui/cases/C-1/assign", {"csrf": token, "assignee": "zed"})
        assert (nobody.status, nobody.problem) == (400, "usage")
        assert "'assignee': zed is not a user who sees the case's team (intake)" in nobody.plain
        nothing = await c.post("/ui/cases/C-1/assign", {"csrf": token})
        assert (nothing.status, nothing.problem) == (400, "usage")
        assert "name a 'team', an 'assignee' or both" in nothing.plain
        hidden = await c.post("/ui/cases/C-1/notes",
                              {"csrf": token, "body": "a \u202e reversed note"})  # fmt: skip
        assert (hidden.status, hidden.problem) == (400, "usage")
        assert "a \u202e reversed note</textarea>" in hidden.plain  # kept, to correct
        unknown = await c.post("/ui/cases/NOPE/notes", {"csrf": token, "body": "x"})
        assert (unknown.status, unknown.problem) == (404, "not-found")
        # every change needs the session's form token
        for action in ("rename", "close", "reopen", "assign", "notes"):
            forged = await c.post(f"/ui/cases/C-1/{action}", {"title": "x", "body": "x"})
            assert (forged.status, forged.problem) == (403, "csrf-rejected"), action
        assert (await c.post("/ui/cases", {"case": "C-9"})).problem == "csrf-rejected"
    assert await audited(pair, "case-open", "case-rename", "case-note", "case-assign") == [
        ("alice", "case-open", "C-1 team -")
    ]


async def test_a_message_is_filed_under_a_case_and_a_case_given_away_leaves_the_list(
    pair: Pair,
) -> None:
    loose = str(await pair.br.n.send([pair.fr.me], info("Registry extract")))
    named = str(await pair.br.n.send([pair.fr.me], info("Their own case", case="BR-9")))
    for mid in (loose, named):
        await eventually(partial(delivered, pair.br, mid, pair.fr), what="the messages")
    await user(pair.fr, "tina", "investigator", "team-t")
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        token = await c.token("/ui/cases")
        for ref in ("OP-1", "OP-2"):
            assert (await c.post("/ui/cases", {"csrf": token, "case": ref})).status == 303
        page = await c.get(f"/ui/messages/{loose}")
        assert 'id="file-form"' in page.text
        assert '<option value="OP-1">OP-1</option>' in page.text
        filed = await c.post(f"/ui/messages/{loose}/file", {"csrf": token, "case": "OP-1"})
        assert (filed.status, filed.headers["Location"]) == (303, f"/ui/messages/{loose}")
        page = await c.get(f"/ui/messages/{loose}")
        assert '<a href="/ui/cases/OP-1">OP-1</a>' in page.text
        assert 'id="file-form"' not in page.text  # filed: nothing more to file
        assert f'data-id="{loose}"' in (await c.get("/ui/cases/OP-1")).text
        # a message that names its case stays there, and the page offers no filing
        assert 'id="file-form"' not in (await c.get(f"/ui/messages/{named}")).text
        kept = await c.post(f"/ui/messages/{named}/file", {"csrf": token, "case": "OP-1"})
        assert (kept.status, kept.problem) == (409, "state-conflict")
        assert f"message {named} names case BR-9 itself: it stays there" in kept.plain
        nowhere = await c.post(f"/ui/messages/{loose}/file", {"csrf": token, "case": "NOPE"})
        assert (nowhere.status, nowhere.problem) == (404, "not-found")
        # given to a team alice is not in, the case leaves her list and its page
        given = await c.post("/ui/cases/OP-2/assign", {"csrf": token, "team": "team-t"})
        assert (given.status, given.headers["Location"]) == (303, "/ui/cases")
        assert '<tr data-case="OP-2">' not in (await c.get("/ui/cases")).text
        gone = await c.get("/ui/cases/OP-2")
        assert (gone.status, gone.problem) == (404, "not-found")
    assert await audited(pair, "case-file") == [("alice", "case-file", f"{loose} into OP-1")]

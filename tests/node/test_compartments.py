"""Compartments on a real node: a user sees the cases of its teams (supervisors every
case, the intake what is not assigned yet), and what it may not see does not exist for
it on any route.

Team A's material (a case with a title, a request with an attachment, the status and
answer that came back, a note, a message in no case, a reminder) is probed by a user of
team B on every route of :data:`globe_node.api.ROUTES` that names a message or a case in
its path, by full id and by prefix: each answers 404 ``not-found``, as for an id that
never existed.  Every list, the search, the statistics and the status leave the material
out.  An ambiguous id prefix names only candidates the user may see.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import orjson
import pytest

from globe_node.api import ROUTES
from globe_node.apimodels import CASE_REF, MESSAGE
from globe_node.roles import GRANTS, Permission, Role
from protocol.ids import MessageId
from tests.node.helpers import delivered, inbox_ids, info, problem
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

DAY = 86400
#: A valid body for each action route, so that only the path can refuse it.
BODIES: dict[str, dict[str, Any]] = {
    "/api/messages/{id}/reply": {"body": "x"},
    "/api/messages/{id}/status": {"state": "in-progress"},
    "/api/messages/{id}/forward": {"to": ["KE-EACC"]},
    "/api/messages/{id}/request-consent": {"to": ["KE-EACC"], "purpose": "p"},
    "/api/messages/{id}/consent": {"decision": "granted"},
    "/api/messages/{id}/file": {"case": "B-1"},
    "/api/cases/{case}/rename": {"title": "mine now"},
    "/api/cases/{case}/assign": {"team": "b"},
    "/api/cases/{case}/notes": {"body": "peek"},
}


async def ok(rn: RunningNode, method: str, path: str, body: Any = None, token: str = "") -> Any:
    status, answer = await rn.api(method, path, body, token=token or None)
    assert 200 <= status < 300, (method, path, answer)
    return answer


class TeamA:
    """Team A's material on FR-PNF, made through the API by its user ``a1``."""

    case = "A-1"

    def __init__(self, fr: RunningNode, br: RunningNode, a1: str) -> None:
        self.fr, self.br, self.a1 = fr, br, a1
        self.ids: list[str] = []

    async def make(self) -> None:
        fr, br, a1 = self.fr, self.br, self.a1
        await ok(fr, "POST", "/api/cases", {"case": self.case, "title": "Alpha scheme"}, a1)
        status, upload = await fr.upload(b"alpha ledger rows", "alpha.csv", token=a1)
        assert status == 201, upload
        sent = await ok(fr, "POST", "/api/messages", {
            "to": ["BR-PF"], "kind": "request", "subject": "Alpha accounts", "body": "Alpha.",
            "case": self.case, "attachments": [upload["id"]],
        }, a1)  # fmt: skip
        self.request = sent["id"]
        await eventually(lambda: delivered(fr, self.request, br))
        ack = await ok(br, "POST", f"/api/messages/{self.request}/status",
                       {"state": "acknowledged", "expected": br.n.now() + DAY})  # fmt: skip
        answer = await ok(br, "POST", f"/api/messages/{self.request}/reply", {"body": "Alpha!"})
        for mid in (ack["id"], answer["id"]):
            await eventually(partial(delivered, br, mid, fr))
        self.status = ack["id"]
        loose = await ok(fr, "POST", "/api/messages", {
            "to": ["BR-PF"], "subject": "Alpha loose end", "body": "In no case."}, a1)  # fmt: skip
        pending = await ok(fr, "POST", "/api/messages", {
            "to": ["BR-PF"], "kind": "request", "subject": "Alpha pending", "body": "Still.",
            "case": self.case}, a1)  # fmt: skip
        self.pending = pending["id"]
        await ok(fr, "POST", f"/api/cases/{self.case}/notes", {"body": "alpha note"}, a1)
        self.ids = [self.request, ack["id"], answer["id"], loose["id"], self.pending]
        # A reminder for a1, who sent the pending request: overdue ten days from now.
        real = fr.n.clock
        fr.n.clock = lambda: real() + 10 * DAY
        try:
            assert [(n.message, n.to) for n in await fr.n.reminders.check()] == [
                (self.pending, "a1")
            ]
        finally:
            fr.n.clock = real

    def words(self) -> list[str]:
        """What must never reach another team: ids, the case, titles, subjects, notes."""
        return [*self.ids, self.case, "Alpha", "alpha"]


def concrete(path: str, mid: str, case: str) -> str:
    return path.replace("{n:[0-9]{1,3}}", "1").replace("{id}", mid).replace("{case}", case)


@pytest.fixture
async def node(net: Net) -> tuple[RunningNode, RunningNode, dict[str, str], TeamA]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    tokens = {
        "a1": await add_user(fr.n, "a1", "investigator", "a"),
        "b1": await add_user(fr.n, "b1", "investigator", "b"),
        "in1": await add_user(fr.n, "in1", "investigator", "intake"),
        "sup": await add_user(fr.n, "sup", "supervisor"),
    }
    await ok(fr, "POST", "/api/cases", {"case": "B-1"}, tokens["b1"])
    team_a = TeamA(fr, br, tokens["a1"])
    await team_a.make()
    return fr, br, tokens, team_a


async def test_another_team_finds_nothing_on_any_route(
    node: tuple[RunningNode, RunningNode, dict[str, str], TeamA],
) -> None:
    fr, _, tokens, a = node
    b1 = tokens["b1"]
    probed = set()
    for route in ROUTES:
        params = set(route.path_params)
        if not params & {MESSAGE, CASE_REF}:
            continue
        for mid in (a.request, a.status, a.request[:4], a.status[:7]):
            path = concrete(route.path, mid, a.case)
            answer = await fr.api(route.method, path, BODIES.get(route.path.split("?")[0]),
                                  token=b1)  # fmt: skip
            detail = f"no case {a.case}" if CASE_REF in params else f"no message {mid}"
            if route.permission not in GRANTS[Role.INVESTIGATOR]:  # a supervisor's (a hold)
                want = (403, "forbidden", "the investigator role may not do this")
            else:
                want = (404, "not-found", detail)
            assert problem(answer) == want, (route.method, path)
            probed.add((route.method, route.path))
    # every route naming a message or a case was probed, reading and changing alike
    assert {p for _, p in probed} >= {
        "/api/messages/{id}", "/api/messages/{id}/reply", "/api/messages/{id}/status",
        "/api/outbox/{id}", "/api/cases/{case}", "/api/cases/{case}/assign",
        "/api/cases/{case}/notes", "/api/messages/{id}/file",
    }  # fmt: skip
    assert any("attachments" in p for _, p in probed)
    # the lists, the search, the statistics, the status and the alerts leave it out
    listed = 0
    for route in ROUTES:
        if route.method != "GET" or route.path_params or route.permission is not Permission.READ:
            continue
        query = "?q=alpha" if route.path == "/api/search" else "?status=all" if (
            route.path == "/api/requests") else ""  # fmt: skip
        status, answer = await fr.api("GET", route.path + query, token=b1)
        assert status == 200, (route.path, answer)
        seen = answer if isinstance(answer, bytes) else orjson.dumps(answer)
        for word in a.words():
            assert word.encode() not in seen, (route.path, word)
        listed += 1
    assert listed >= 8
    for path in ("/api/status", "/api/alerts"):
        seen = orjson.dumps((await fr.api("GET", path, token=b1))[1])
        assert a.request.encode() not in seen, path
        assert b"A-1" not in seen, path
    # b1's own case and numbers are there: the filter is not "nothing at all"
    cases = await ok(fr, "GET", "/api/cases", token=b1)
    assert [c["case"] for c in cases["cases"]] == ["B-1"]
    # The team's own user and a supervisor see all of it; the reminder is a1's.
    for who in ("a1", "sup"):
        found = await ok(fr, "GET", "/api/search?q=alpha", token=tokens[who])
        assert {h["id"] for h in found["hits"]} >= {a.request, a.case}, who
    reminders = (await ok(fr, "GET", "/api/status", token=tokens["a1"]))["reminders"]["notices"]
    assert [(n["kind"], n["message"], n["to"]) for n in reminders] == [
        ("request-overdue", a.pending, "a1")
    ]
    assert (await ok(fr, "GET", "/api/status", token=tokens["in1"]))["reminders"]["notices"] == []


async def test_the_intake_sees_what_is_unassigned_until_it_is_assigned(
    node: tuple[RunningNode, RunningNode, dict[str, str], TeamA],
) -> None:
    fr, br, tokens, _team = node
    tip = str(await br.n.send([fr.me], info("Unassigned tip")))
    cased = str(await br.n.send([fr.me], info("Their case", case="BR-77")))
    for mid in (tip, cased):
        await eventually(partial(delivered, br, mid, fr))
    inbox = {who: [m["id"] for m in (await ok(fr, "GET", "/api/inbox", token=tokens[who]))
                   ["messages"]] for who in ("in1", "a1", "b1")}  # fmt: skip
    assert set(inbox["in1"]) == {tip, cased}
    assert tip not in inbox["a1"] + inbox["b1"]
    assert cased not in inbox["a1"] + inbox["b1"]
    assert set(await inbox_ids(fr)) >= {tip, cased}  # the node itself holds both
    # The intake files the tip under a case of its own, then gives that case to team B.
    opened = await ok(fr, "POST", "/api/cases", {"case": "IN-1"}, tokens["in1"])
    assert opened["team"] == "intake"
    filed = await ok(fr, "POST", f"/api/messages/{tip}/file", {"case": "IN-1"}, tokens["in1"])
    assert filed == {"message": tip, "case": "IN-1", "team": "intake"}
    assert problem(
        await fr.api("POST", f"/api/messages/{tip}/file", {"case": "A-1"}, token=tokens["in1"])
    ) == (404, "not-found", "no case A-1")
    given = await ok(fr, "POST", "/api/cases/IN-1/assign", {"team": "b", "assignee": "b1"},
                     tokens["in1"])  # fmt: skip
    assert (given["team"], given["assignee"]) == ("b", "b1")
    assert problem(await fr.api("GET", f"/api/messages/{tip}", token=tokens["in1"])) == (
        404, "not-found", f"no message {tip}"
    )  # fmt: skip
    shown = await ok(fr, "GET", f"/api/messages/{tip}", token=tokens["b1"])
    assert (shown["case"], shown["content"]["subject"]) == ("IN-1", "Unassigned tip")
    # The same for the case BR-PF opened here with its own reference.
    await ok(fr, "POST", "/api/cases/BR-77/assign", {"team": "a"}, tokens["in1"])
    assert (await ok(fr, "GET", "/api/cases/BR-77", token=tokens["a1"]))["messages"][0]["id"] == (
        cased
    )
    # An assignee must see the case's team; a team must have a member.
    assert problem(await fr.api("POST", "/api/cases/BR-77/assign", {"assignee": "b1"},
                                token=tokens["a1"])) == (
        400, "usage", "'assignee': b1 is not a user who sees the case's team (a)"
    )  # fmt: skip
    assert problem(await fr.api("POST", "/api/cases/BR-77/assign", {"team": "nobody"},
                                token=tokens["a1"])) == (
        400, "usage", "'team': no user is in team nobody"
    )  # fmt: skip


async def test_an_id_prefix_names_one_message_among_those_the_user_sees(
    node: tuple[RunningNode, RunningNode, dict[str, str], TeamA],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fr, br, tokens, _ = node
    chosen = iter(["abcd1" + "0" * 27, "abcd2" + "0" * 27])
    monkeypatch.setattr(MessageId, "new", classmethod(lambda cls: cls.parse(next(chosen))))
    first = (
        await ok(
            fr,
            "POST",
            "/api/messages",
            {"to": ["BR-PF"], "subject": "one", "body": "b"},
            tokens["a1"],
        )
    )["id"]
    second = (await ok(fr, "POST", "/api/messages", {"to": ["BR-PF"], "subject": "two",
                                                       "body": "b", "case": "B-1"},
                       tokens["b1"]))["id"]  # fmt: skip
    assert (first, second) == ("abcd1" + "0" * 27, "abcd2" + "0" * 27)
    sup = tokens["sup"]
    assert problem(await fr.api("GET", "/api/messages/abcd", token=sup)) == (
        409, "ambiguous-id", f"message id prefix abcd is ambiguous: {first}, {second}"
    )  # fmt: skip
    assert (await ok(fr, "GET", "/api/messages/abcd2", token=sup))["content"]["subject"] == "two"
    # b1 sees only its own: the same prefix is unique for it, and names nothing of team A.
    assert (await ok(fr, "GET", "/api/messages/abcd", token=tokens["b1"]))["content"][
        "subject"
    ] == "two"
    assert problem(await fr.api("GET", "/api/messages/abcd1", token=tokens["b1"])) == (
        404, "not-found", "no message abcd1"
    )  # fmt: skip
    for short in ("abc", "ABCD", "abcd" + "0" * 29, "zzzz"):
        assert problem(await fr.api("GET", f"/api/messages/{short}", token=sup)) == (
            404, "not-found", f"no message {short}"
        ), short  # fmt: skip
    assert re.fullmatch("[0-9a-f]{32}", first)
    await eventually(lambda: delivered(fr, second, br))

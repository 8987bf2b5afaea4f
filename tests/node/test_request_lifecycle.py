"""A request's whole life on real nodes and a real hub (PROTOCOL.md §8.2.1): a case opened,
a request to two authorities, acknowledged with the expected date (shown wherever the
request is), its deadline extended by the requester (both recipients follow), answered,
closed; a withdrawal with its reason; and every status from the wrong party refused by
the node that receives it, flagged, and applied nowhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from globe_node import db
from protocol.ids import MessageId
from protocol.messages import (
    Handling,
    Kind,
    MessageContent,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
)
from tests.node.helpers import alerts, delivered, problem, recipient_states
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

DAY = 86400
REQUEST: dict[str, Any] = {
    "to": ["BR-PF", "KE-EACC"], "kind": "request", "subject": "Bank records of ACME Ltd",
    "body": "Please provide the statements for 2025.", "urgency": "priority",
}  # fmt: skip


async def rows(rn: RunningNode, mid: str) -> dict[tuple[str, str], db.RequestRow]:
    """(direction, counterpart) -> the node's workflow row of request ``mid``."""
    return {(r.direction, r.counterpart): r for r in await rn.n.store.request_rows(mid)}


async def post(rn: RunningNode, path: str, body: dict[str, Any]) -> str:
    """POST that must be answered 201 with a message id; the id."""
    status, answer = await rn.api("POST", path, body)
    assert status == 201, answer
    return str(answer["id"])


async def audit(rn: RunningNode) -> list[tuple[str, str]]:
    async with rn.n.sessions() as s:
        found = (await s.execute(select(db.AuditRow).order_by(db.AuditRow.seq))).scalars()
        return [(r.action, r.subject) for r in found]


@pytest.fixture
async def trio(net: Net) -> tuple[RunningNode, RunningNode, RunningNode]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    return fr, br, ke


async def test_a_case_from_opening_to_closing(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, ke = trio
    status, opened = await fr.api(
        "POST", "/api/cases", {"case": "FR-2026-0042", "title": "ACME bribery"}
    )
    assert status == 201, opened
    assert (opened["case"], opened["title"], opened["state"], opened["team"]) == (
        "FR-2026-0042", "ACME bribery", "open", None,
    )  # fmt: skip
    mid = await post(fr, "/api/messages", {**REQUEST, "case": "FR-2026-0042"})
    await eventually(lambda: delivered(fr, mid, br, ke))

    # The default deadline travels in the request: both parties hold the same one.
    sent = await rows(fr, mid)
    deadline = sent[("out", "BR-PF")].deadline
    assert deadline - sent[("out", "BR-PF")].created == 3 * DAY  # priority
    assert (await br.n.content_of(mid)).content.deadline == deadline
    for peer in (br, ke):
        theirs = (await rows(peer, mid))[("in", "FR-PNF")]
        assert (theirs.state, theirs.deadline, theirs.asked) == ("received", deadline, deadline)

    # Brazil acknowledges with the expected answer date: shown wherever the request is.
    expected = br.n.now() + 2 * DAY
    ack = await post(
        br, f"/api/messages/{mid}/status", {"state": "acknowledged", "expected": expected}
    )
    await eventually(lambda: delivered(br, ack, fr))
    listed = (await fr.api("GET", "/api/requests?direction=out"))[1]["requests"]
    assert {(r["counterpart"], r["state"], r["expected"]) for r in listed} == {
        ("BR-PF", "acknowledged", expected), ("KE-EACC", "sent", None),
    }  # fmt: skip
    shown = (await fr.api("GET", f"/api/messages/{mid}"))[1]
    assert [(r["counterpart"], r["expected"]) for r in shown["requests"]] == [
        ("BR-PF", expected), ("KE-EACC", None),
    ]  # fmt: skip
    case = (await fr.api("GET", "/api/cases/FR-2026-0042"))[1]
    assert [(r["counterpart"], r["expected"]) for r in case["requests"]] == [
        ("BR-PF", expected), ("KE-EACC", None),
    ]  # fmt: skip
    status_item = next(m for m in case["messages"] if m["id"] == ack)
    assert (status_item["status"], status_item["expected"], status_item["from"]) == (
        "acknowledged", expected, "BR-PF",
    )  # fmt: skip

    # France extends the deadline: one signed status to both recipients, both follow.
    later = deadline + 3 * DAY
    ext = await post(fr, f"/api/messages/{mid}/status", {"state": "extended", "deadline": later})
    await eventually(lambda: delivered(fr, ext, br, ke))
    assert {k: (r.state, r.deadline) for k, r in (await rows(fr, mid)).items()} == {
        ("out", "BR-PF"): ("acknowledged", later), ("out", "KE-EACC"): ("sent", later),
    }  # fmt: skip
    for peer in (br, ke):
        theirs = (await rows(peer, mid))[("in", "FR-PNF")]
        assert (theirs.deadline, theirs.asked) == (later, deadline)
        got = await peer.n.content_of(ext)
        assert got.content.status == StatusUpdate(StatusState.EXTENDED, deadline=later)

    # Brazil answers; France closes the request for both.
    answer = await post(br, f"/api/messages/{mid}/reply", {"body": "Statements attached."})
    await eventually(lambda: delivered(br, answer, fr))
    assert (await rows(fr, mid))[("out", "BR-PF")].state == "answered"
    closing = await post(fr, f"/api/messages/{mid}/status", {"state": "closed"})
    await eventually(lambda: delivered(fr, closing, br, ke))
    for rn, key in ((fr, ("out", "BR-PF")), (fr, ("out", "KE-EACC")), (br, ("in", "FR-PNF")),
                    (ke, ("in", "FR-PNF"))):  # fmt: skip
        row = (await rows(rn, mid))[key]
        assert (row.state, row.ended is not None) == ("closed", True), (rn.me, key)
    assert (await rows(br, mid))[("in", "FR-PNF")].answered is not None
    ended = (await fr.api("GET", "/api/requests?status=ended"))[1]
    assert (ended["total"], {r["state"] for r in ended["requests"]}) == (2, {"closed"})

    # The case is closed in turn: nothing more is sent into it until it is reopened.
    status, closed = await fr.api("POST", "/api/cases/FR-2026-0042/close", {})
    assert (status, closed["state"]) == (200, "closed")
    refused = await fr.api("POST", "/api/messages", {**REQUEST, "case": "FR-2026-0042"})
    assert problem(refused) == (
        409,
        "state-conflict",
        "case FR-2026-0042 is closed: reopen it to send into it",
    )
    assert (await fr.api("POST", "/api/cases/FR-2026-0042/reopen", {}))[1]["state"] == "open"
    assert [a for a in await audit(fr) if a[0].startswith("case-")] == [
        ("case-open", "FR-2026-0042 team -"), ("case-close", "FR-2026-0042"),
        ("case-reopen", "FR-2026-0042"),
    ]  # fmt: skip


async def test_the_requester_withdraws_with_a_reason(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    mid = await post(fr, "/api/messages", {**REQUEST, "to": ["BR-PF"]})
    await eventually(lambda: delivered(fr, mid, br))
    # A request in no case is listed all the same.
    uncased = (await fr.api("GET", "/api/requests?uncased=1"))[1]
    assert [(r["message"], r["case"], r["subject"]) for r in uncased["requests"]] == [
        (mid, None, "Bank records of ACME Ltd")
    ]
    path = f"/api/messages/{mid}/status"
    assert problem(await fr.api("POST", path, {"state": "withdrawn"})) == (
        400, "usage", "a withdrawal gives a reason: pass 'reason' (text)"
    )  # fmt: skip
    withdrawal = await post(fr, path, {"state": "withdrawn", "reason": "The suspect confessed."})
    await eventually(lambda: delivered(fr, withdrawal, br))
    theirs = (await rows(br, mid))[("in", "FR-PNF")]
    assert (theirs.state, theirs.ended is not None) == ("withdrawn", True)
    got = await br.n.content_of(withdrawal)
    assert got.content.status == StatusUpdate(
        StatusState.WITHDRAWN, reason="The suspect confessed."
    )
    assert got.content.body == "Status: withdrawn (The suspect confessed.)"
    # Brazil can no longer act on it, and France cannot withdraw it twice.
    assert problem(
        await br.api("POST", path, {"state": "acknowledged", "expected": br.n.now() + DAY})
    ) == (409, "state-conflict", f"request {mid} is FR-PNF withdrawn: acknowledged does not apply")
    assert problem(await fr.api("POST", path, {"state": "withdrawn", "reason": "again"})) == (
        409, "state-conflict", f"request {mid} is BR-PF withdrawn: withdrawn does not apply"
    )  # fmt: skip


async def test_each_party_reports_only_its_own_states(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, _ = trio
    mid = await post(fr, "/api/messages", {**REQUEST, "to": ["BR-PF"]})
    await eventually(lambda: delivered(fr, mid, br))
    path = f"/api/messages/{mid}/status"
    later = fr.n.now() + 30 * DAY
    recipient_only = (
        "only the request's requester reports {state}, and this node is its recipient:"
        " acknowledge, report progress, decline or answer it instead"
    )
    for body in ({"state": "withdrawn", "reason": "not ours"}, {"state": "closed"},
                 {"state": "extended", "deadline": later}):  # fmt: skip
        assert problem(await br.api("POST", path, body)) == (
            400, "usage", recipient_only.format(state=body["state"])
        )  # fmt: skip
    assert problem(await fr.api("POST", path, {"state": "in-progress"})) == (
        400, "usage", "only the request's recipient reports in-progress, and this node is its"
        " requester: close, withdraw or extend it instead",
    )  # fmt: skip
    # What each state carries, as the API says it.
    deadline = (await rows(fr, mid))[("out", "BR-PF")].deadline
    for who, body, detail in (
        (br, {"state": "acknowledged"},
         "an acknowledgement gives the expected answer date: pass 'expected' (Unix time)"),
        (br, {"state": "declined"}, "a declined request gives a reason: pass 'reason' (text)"),
        (fr, {"state": "extended"},
         "an extension gives the new deadline: pass 'deadline' (Unix time)"),
        (fr, {"state": "closed", "deadline": later},
         "'deadline' goes with the state 'extended' only"),
        (br, {"state": "declined", "reason": "no", "expected": later},
         "'expected' goes with 'acknowledged' or 'in-progress' only"),
        (fr, {"state": "extended", "deadline": deadline - DAY},
         "'deadline' must be later than the current deadline "
         + _iso(deadline)),
    ):  # fmt: skip
        assert problem(await who.api("POST", path, body)) == (400, "usage", detail), body
    # A status is about a request: not about an answer or a piece of information.
    info = await post(fr, "/api/messages", {"to": ["BR-PF"], "subject": "s", "body": "b"})
    await eventually(lambda: delivered(fr, info, br))
    assert problem(await br.api("POST", f"/api/messages/{info}/status", {"state": "answered"})) == (
        400, "usage", f"message {info} is information: a status update is about a request"
        " (give the request's id)",
    )  # fmt: skip
    # Nothing moved.
    assert [(k, r.state) for k, r in (await rows(br, mid)).items()] == [
        (("in", "FR-PNF"), "received")
    ]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(request: str, state: StatusState, **fields: Any) -> MessageContent:
    """A status update's content about ``request``, as a node would seal it."""
    return MessageContent(
        kind=Kind.STATUS, subject="Re: Bank records of ACME Ltd", body="", language="en",
        urgency=Urgency.PRIORITY, handling=Handling(Tlp.AMBER),
        in_reply_to=MessageId.parse(request), status=StatusUpdate(state, **fields),
    )  # fmt: skip


async def refused_and_flagged(sender: RunningNode, to: RunningNode, mid: str, detail: str) -> None:
    """``to`` refused ``sender``'s message ``mid`` on both paths: a ``refused`` alert with
    ``detail``, nothing stored, no receipt (the hub holds the envelope until it expires)."""

    async def flagged() -> bool:
        return ("refused", f"status from {sender.me}: {detail}") in await alerts(to)

    await eventually(flagged)
    await eventually(lambda: _state_is(sender, mid, str(to.me), "sent"))
    assert await to.n.store.in_message(mid) is None


async def _state_is(rn: RunningNode, mid: str, who: str, state: str) -> bool:
    return (await recipient_states(rn, mid)).get(who) == state


async def test_a_status_from_the_wrong_party_is_refused_and_applied_nowhere(
    trio: tuple[RunningNode, RunningNode, RunningNode],
) -> None:
    fr, br, ke = trio
    mid = await post(fr, "/api/messages", {**REQUEST, "to": ["BR-PF"]})
    await eventually(lambda: delivered(fr, mid, br))
    before = {k: (r.state, r.deadline) for k, r in (await rows(fr, mid)).items()}
    deadline = before[("out", "BR-PF")][1]

    # Kenya, which never exchanged this request with France, acknowledges it anyway.
    forged = str(await ke.n.send([fr.me], status(mid, StatusState.ACKNOWLEDGED,
                                                  expected=fr.n.now() + DAY)))  # fmt: skip
    await refused_and_flagged(
        ke, fr, forged, "a status about a request its sender never exchanged with this node"
    )
    # Brazil, a recipient, withdraws France's request.
    usurped = str(await br.n.send([fr.me], status(mid, StatusState.WITHDRAWN, reason="mine")))
    await refused_and_flagged(br, fr, usurped, "only the request's requester reports withdrawn")
    # France, the requester, "extends" to a date before the request's deadline.
    earlier = str(await fr.n.send([br.me], status(mid, StatusState.EXTENDED,
                                                   deadline=deadline - DAY)))  # fmt: skip
    await refused_and_flagged(
        fr, br, earlier, "an extension's deadline is later than the request's own"
    )
    assert {k: (r.state, r.deadline) for k, r in (await rows(fr, mid)).items()} == before
    assert (await rows(br, mid))[("in", "FR-PNF")].deadline == deadline
    # The genuine parties still work the request.
    ack = await post(
        br, f"/api/messages/{mid}/status", {"state": "in-progress", "expected": br.n.now() + DAY}
    )
    await eventually(lambda: delivered(br, ack, fr))
    assert (await rows(fr, mid))[("out", "BR-PF")].state == "in-progress"

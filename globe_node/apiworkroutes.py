"""The local API's routes of the investigator's work: request lists, status updates by
either party, cases (open, rename, close, reopen, assign, notes), legal holds on cases,
filing a message under a case, text search, statistics (JSON and CSV) and the node's
users.

Their rows (:data:`WORK_ROUTES`) take their place in :data:`globe_node.api.ROUTES`, behind
the same guard: it authenticates, checks the role, parses the inputs, and resolves every
message id (or unique prefix) and case reference of the path against what the user may
see (:mod:`globe_node.compartments`) before a handler here runs.  Every handler reads as
the user who called it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from globe_io.errors import Conflict
from globe_io.web import json_response
from globe_node import apimodels as m
from globe_node import apiwork as w
from globe_node.apiapp import node_of
from globe_node.apiparams import ApiRoute, Call, Reply
from globe_node.cases import CaseState
from globe_node.holds import Holds
from globe_node.roles import Permission
from globe_node.stats import to_csv
from globe_node.users import Principal, list_users
from globe_node.worklists import RequestFilter
from protocol.errors import UsageError
from protocol.messages import StatusState, StatusUpdate

__all__ = ["WORK_ROUTES", "status_update"]

#: What every state of a status update must or must not carry, as the API says it.
_NEEDS: Final = {
    StatusState.ACKNOWLEDGED: ("expected", "an acknowledgement gives the expected answer date"),
    StatusState.DECLINED: ("reason", "a declined request gives a reason"),
    StatusState.WITHDRAWN: ("reason", "a withdrawal gives a reason"),
    StatusState.EXTENDED: ("deadline", "an extension gives the new deadline"),
}
_EXPECTING: Final = (StatusState.ACKNOWLEDGED, StatusState.IN_PROGRESS)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ok(data: dict[str, Any], status: int = 200) -> web.Response:
    return json_response(data, status=status)


# --- requests and status updates -------------------------------------------------------------


def _status(call: Call, now: int) -> StatusUpdate:
    """The status update a request asks for, each missing or misplaced field named."""
    state = call[m.STATE]
    expected, reason, deadline = call[m.EXPECTED], call[m.STATUS_REASON], call[m.NEW_DEADLINE]
    given = {"expected": expected, "reason": reason, "deadline": deadline}
    need = _NEEDS.get(state)
    if need is not None and given[need[0]] is None:
        unit = " (text)" if need[0] == "reason" else " (Unix time)"
        raise UsageError(f"{need[1]}: pass '{need[0]}'{unit}")
    if deadline is not None and state is not StatusState.EXTENDED:
        raise UsageError("'deadline' goes with the state 'extended' only")
    if expected is not None:
        if state not in _EXPECTING:
            raise UsageError("'expected' goes with 'acknowledged' or 'in-progress' only")
        if expected <= now:
            raise UsageError(f"'expected' is not in the future (now is {_iso(now)})")
    return StatusUpdate(state, expected, reason, deadline)


async def status_update(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Report a request's new state to its other party or parties (PROTOCOL.md §8.2.1).

    A recipient of the request acknowledges it (`expected`: the answer date is required),
    reports progress, declines it (`reason` required) or reports it answered, to the
    requester; the requester closes it, withdraws it (`reason` required) or extends its
    deadline (`deadline`: later than the current one), to all its recipients at once.
    """
    node = node_of(request)
    status = _status(call, node.now())
    reason = f" ({status.reason})" if status.reason else ""
    text = call[m.STATUS_BODY] or f"Status: {status.state.value}{reason}"
    mid = await node.update_status(call[m.MESSAGE], status, body=text, user=who.name)
    return _ok({"id": str(mid)}, 201)


async def api_requests(request: web.Request, who: Principal, call: Call) -> web.Response:
    """The requests this user works from, by deadline: open ones by default; sent ones
    (`direction=out`: awaiting their answer) or received ones (`in`: awaiting ours);
    overdue, or due within some days; by counterpart, case, urgency and handling code."""
    want = RequestFilter(
        direction=call[w.DIRECTION], status=call[w.REQUEST_STATUS] or "open",
        overdue=call[w.OVERDUE], due_within=call[w.DUE_WITHIN],
        counterpart=call[w.COUNTERPART], case=call[w.CASE_FILTER], uncased=call[w.UNCASED],
        urgency=call[w.URGENCY_FILTER], tlp=call[w.TLP_FILTER],
        restriction=call[w.RESTRICTION],
    )  # fmt: skip
    page = await node_of(request).worklists.page(
        who, want, limit=call[m.LIMIT], offset=call[w.OFFSET]
    )
    return _ok(page.to_json())


# --- cases -----------------------------------------------------------------------------------


async def api_cases(request: web.Request, who: Principal, call: Call) -> web.Response:
    """The cases this user sees, most recently active first, with their counterparts,
    message counts and open and overdue requests."""
    page = await node_of(request).cases.page(
        who, state=call[w.CASE_STATE], team=call[w.TEAM_FILTER],
        assignee=call[w.ASSIGNEE_FILTER], limit=call[m.LIMIT], offset=call[w.OFFSET],
    )  # fmt: skip
    return _ok(page.to_json())


async def api_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """A case: its record, its requests (with deadlines and expected answer dates), every
    message in thread order and its notes."""
    return _ok((await node_of(request).cases.view(call[m.CASE_REF], who)).to_json())


async def api_open_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Open a case under a new reference, for a team, optionally titled and assigned."""
    info = await node_of(request).cases.open(
        call[w.CASE_FIELD], who, title=call[w.TITLE], team=call[w.TEAM],
        assignee=call[w.ASSIGNEE],
    )  # fmt: skip
    return _ok(info.to_json(), 201)


async def api_rename_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Give a case a new title (this node's only; never sent)."""
    info = await node_of(request).cases.rename(call[m.CASE_REF], who, call[w.NEW_TITLE])
    return _ok(info.to_json())


async def api_close_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Close a case: nothing more is sent into it until it is reopened."""
    info = await node_of(request).cases.set_state(call[m.CASE_REF], who, CaseState.CLOSED)
    return _ok(info.to_json())


async def api_reopen_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Reopen a closed case."""
    info = await node_of(request).cases.set_state(call[m.CASE_REF], who, CaseState.OPEN)
    return _ok(info.to_json())


async def api_assign_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Give a case to a team (its messages, requests and reminders follow), a user of the
    node who sees that team's cases, or both."""
    info = await node_of(request).cases.assign(
        call[m.CASE_REF], who, team=call[w.ASSIGN_TEAM], assignee=call[w.ASSIGNEE]
    )
    return _ok(info.to_json())


async def api_note(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Add a note to a case: kept on this node, sealed under its storage key, never sent."""
    note = await node_of(request).cases.note(call[m.CASE_REF], who, call[w.NOTE_BODY])
    return _ok(note.to_json(), 201)


def _holds(request: web.Request) -> Holds:
    node = node_of(request)
    return Holds(node.ctx, node.audit)


async def api_hold_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Put a case under a legal hold (supervisors): no retention rule purges anything
    filed under it until the hold is released.  Audited."""
    hold = await _holds(request).place(call[m.CASE_REF], who, call[w.HOLD_REASON])
    return _ok(hold.to_json(), 201)


async def api_release_case(request: web.Request, who: Principal, call: Call) -> web.Response:
    """End a case's legal hold (supervisors): the retention rules apply to it again from
    the next purge.  Audited."""
    return _ok((await _holds(request).release(call[m.CASE_REF], who)).to_json())


async def api_holds(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """The legal holds standing now, by case, with their reasons (supervisors)."""
    return _ok({"holds": [h.to_json() for h in await _holds(request).standing()]})


async def api_file(request: web.Request, who: Principal, call: Call) -> web.Response:
    """File a message that names no case under a case: its requests and reminders go with
    it, and replies to it follow."""
    mid = call[m.MESSAGE]
    place = await node_of(request).cases.file(mid, who, call[w.FILE_CASE])
    return _ok({"message": mid, "case": place.case, "team": place.team})


# --- search, statistics, users ---------------------------------------------------------------


async def api_text_search(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Messages, case titles and notes this user sees whose text holds every word given,
    best first (searched in the node's memory: nothing leaves the node)."""
    page = await node_of(request).searcher.search(
        who, call[w.Q], limit=call[m.LIMIT], offset=call[w.OFFSET]
    )
    return _ok(page.to_json())


async def _report(request: web.Request, who: Principal, call: Call) -> Any:
    node = node_of(request)
    start, end = call[w.FROM] or 0, call[w.TO]
    end = node.now() + 1 if end is None else end
    if end < start:
        raise UsageError("'to' is before 'from'")
    return await node.stats.report(who, start=start, end=end)


async def api_stats(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Statistics of a period, sent and received, per counterpart and per kind: counts,
    requests answered, declined, withdrawn and open, and first-response and answer times
    (median and 90th percentile, nearest rank)."""
    return _ok((await _report(request, who, call)).to_json())


async def api_stats_csv(request: web.Request, who: Principal, call: Call) -> web.Response:
    """The same statistics as CSV (RFC 4180, one header line)."""
    report = await _report(request, who, call)
    return web.Response(text=to_csv(report), content_type="text/csv", charset="utf-8")


async def api_users(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """The node's users and their teams (whom a case can be assigned to)."""
    users = await list_users(node_of(request).sessions)
    return _ok({"users": [u.to_json() for u in users]})


# --- the rows --------------------------------------------------------------------------------

_CASE: Final = (m.CASE_REF,)
_CASE_INFO: Final = Reply(200, "The case.", w.CASE_INFO)

#: The routes of the investigator's work (in globe_node.api.ROUTES).
WORK_ROUTES: Final[tuple[ApiRoute, ...]] = (
    ApiRoute("GET", "/api/requests", Permission.READ, api_requests,
             Reply(200, "One page of requests.", w.REQUESTS), query=w.REQUESTS_QUERY),
    ApiRoute("GET", "/api/cases", Permission.READ, api_cases,
             Reply(200, "One page of cases.", w.CASES), query=w.CASES_QUERY),
    ApiRoute("POST", "/api/cases", Permission.SEND, api_open_case,
             Reply(201, "Opened.", w.CASE_INFO), body=w.NEW_CASE, refusals=(Conflict,)),
    ApiRoute("GET", "/api/cases/{case}", Permission.READ, api_case,
             Reply(200, "The case.", w.CASE_VIEW), path_params=_CASE),
    ApiRoute("POST", "/api/cases/{case}/rename", Permission.SEND, api_rename_case, _CASE_INFO,
             path_params=_CASE, body=w.RENAME),
    ApiRoute("POST", "/api/cases/{case}/close", Permission.SEND, api_close_case, _CASE_INFO,
             path_params=_CASE, body=m.NOTHING, refusals=(Conflict,)),
    ApiRoute("POST", "/api/cases/{case}/reopen", Permission.SEND, api_reopen_case, _CASE_INFO,
             path_params=_CASE, body=m.NOTHING, refusals=(Conflict,)),
    ApiRoute("POST", "/api/cases/{case}/assign", Permission.SEND, api_assign_case, _CASE_INFO,
             path_params=_CASE, body=w.ASSIGN),
    ApiRoute("POST", "/api/cases/{case}/notes", Permission.SEND, api_note,
             Reply(201, "Noted.", w.NOTE), path_params=_CASE, body=w.NEW_NOTE),
    ApiRoute("POST", "/api/cases/{case}/hold", Permission.HOLD, api_hold_case,
             Reply(201, "Held.", w.HOLD), path_params=_CASE, body=w.NEW_HOLD,
             refusals=(Conflict,)),
    ApiRoute("POST", "/api/cases/{case}/release", Permission.HOLD, api_release_case,
             Reply(200, "Released.", w.HOLD), path_params=_CASE, body=m.NOTHING,
             refusals=(Conflict,)),
    ApiRoute("GET", "/api/holds", Permission.HOLD, api_holds,
             Reply(200, "The legal holds standing.", w.HOLDS)),
    ApiRoute("POST", "/api/messages/{id}/file", Permission.SEND, api_file,
             Reply(200, "Filed.", w.FILED), path_params=(m.MESSAGE,), body=w.FILE,
             refusals=(Conflict,)),
    ApiRoute("GET", "/api/search", Permission.READ, api_text_search,
             Reply(200, "One page of matches.", w.TEXT_SEARCH), query=w.SEARCH_QUERY),
    ApiRoute("GET", "/api/stats", Permission.READ, api_stats,
             Reply(200, "The statistics.", w.STATS), query=w.STATS_QUERY),
    ApiRoute("GET", "/api/stats/csv", Permission.READ, api_stats_csv,
             Reply(200, "The statistics as CSV.", media_type="text/csv"), query=w.STATS_QUERY),
    ApiRoute("GET", "/api/users", Permission.READ, api_users,
             Reply(200, "The users.", w.USERS)),
)  # fmt: skip

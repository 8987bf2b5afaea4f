"""The inbox and the outbox, filtered and paged by the local API, and the node-wide text
search.

The filters of a list page are the query parameters of ``GET /api/inbox`` and
``GET /api/outbox`` (counterpart, kind, urgency, handling code, request state,
delivery state, case, period and text), passed on as the browser sends them: the
API filters, and refuses a bad value with its own problem, shown above the list.  Only
the period is turned from the date picker's days into the API's Unix times.  A page
ends with a link to the next one (the API's cursor), never an offset that new messages
would shift.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web

from globe_node.webui.app import page_of
from globe_node.webui.screens import day_end, day_start, members, render, status_of
from protocol.errors import GlobeError
from protocol.messages import Tlp

__all__ = ["LISTS", "LIST_LIMIT"]

#: Messages a list page shows (the API's lists are newest first).
LIST_LIMIT: Final = 50
#: Request rows read to show each listed request's deadline and state (the API's most).
REQUESTS_LIMIT: Final = 1000
#: The filters both lists take, as the API names them.
_FILTERS: Final = ("counterpart", "kind", "urgency", "tlp", "state", "case", "q")


def _wanted(request: web.Request, *more: str) -> dict[str, str]:
    """The filters the page was asked for, as typed (the period as days)."""
    names = (*_FILTERS, *more, "since", "until")
    return {k: request.query.get(k, "").strip() for k in names}


def _api_query(want: dict[str, str], cursor: str) -> dict[str, str | None]:
    """The list route's query: the filters as typed, the days as Unix times."""
    query: dict[str, str | None] = {k: v for k, v in want.items() if k not in ("since", "until")}
    since, until = day_start(want["since"], "since"), day_end(want["until"], "until")
    query.update(
        since=None if since is None else str(since), until=None if until is None else str(until),
        limit=str(LIST_LIMIT), cursor=cursor,
    )  # fmt: skip
    return query


async def _list_page(
    request: web.Request, direction: str, template: str, *more: str
) -> web.StreamResponse:
    """A list page: one page of the API's list with the filters asked for, each listed
    request's rows, and the link to the next page."""
    page = page_of(request)
    want = _wanted(request, *more)
    cursor = request.query.get("cursor", "")
    route = "/api/inbox" if direction == "in" else "/api/outbox"
    error: GlobeError | None = None
    listed: dict[str, Any] = {"messages": [], "next": None}
    try:
        listed = await page.api.json("GET", route, query=_api_query(want, cursor))
    except GlobeError as exc:
        error = exc
    found = await page.api.json(
        "GET", "/api/requests",
        query={"direction": direction, "status": "all", "limit": str(REQUESTS_LIMIT)},
    )  # fmt: skip
    requests: dict[str, list[dict[str, Any]]] = {}
    for r in found["requests"]:
        requests.setdefault(r["message"], []).append(r)
    rows = [{**m, "requests": requests.get(m["id"], [])} for m in listed["messages"]]
    kept = {k: v for k, v in want.items() if v}
    following = None
    if listed["next"]:
        following = f"{request.path}?" + urlencode({**kept, "cursor": listed["next"]})
    newest = f"{request.path}?" + urlencode(kept) if cursor else None
    return render(
        request, page, template, status=status_of(error), rows=rows, want=want,
        filtered=bool(kept), error=error, following=following, newest=newest,
        members=await members(request, page, inactive=True), lists=direction,
        search=True, tlps=[t.value for t in Tlp],
    )  # fmt: skip


async def inbox(request: web.Request) -> web.StreamResponse:
    """Received messages, newest first, with each request's deadline and state, filtered
    by the API (counterpart, kind, urgency, handling code, state, case, period, text)."""
    return await _list_page(request, "in", "inbox.html")


async def outbox(request: web.Request) -> web.StreamResponse:
    """Sent messages, newest first, with their subject and handling as the list gives them,
    each recipient's delivery state and each request's deadline and state; filtered by the
    API as the inbox is, and by delivery state."""
    return await _list_page(request, "out", "outbox.html", "delivery")


async def search(request: web.Request) -> web.StreamResponse:
    """The node-wide text search: messages, case titles and notes this user sees."""
    page = page_of(request)
    want = {"q": request.query.get("q", "").strip()}
    hits: list[dict[str, Any]] = []
    error: GlobeError | None = None
    if want["q"]:
        try:
            found = await page.api.json("GET", "/api/search", query={"q": want["q"], "limit": "50"})
            hits = found["hits"]
        except GlobeError as exc:
            error = exc
    return render(
        request, page, "search.html", status=status_of(error), hits=hits, want=want,
        error=error,
    )  # fmt: skip


#: (method, path, handler, name) of the list pages, under the UI's prefix.
LISTS: Final = (
    ("GET", "/inbox", inbox, "inbox"),
    ("GET", "/outbox", outbox, "outbox"),
    ("GET", "/search", search, "search"),
)

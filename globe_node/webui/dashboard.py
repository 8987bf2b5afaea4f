"""The requests dashboard, and the case pages beside it (:mod:`~globe_node.webui.casework`).

The dashboard is the investigator's start page.  It shows, from the local API's routes:
what needs attention first (the alerts this user is shown, ``GET /api/alerts``, and
whether the directory is too old to send, ``GET /api/status``; the sent messages a
recipient has not received, ``GET /api/outbox?delivery=failed``, each with a button
that queues it again, ``POST /api/messages/{id}/retry``); then the open requests
(``GET /api/requests``, the code of :mod:`globe_node.worklists`) in the groups an
investigator works from: overdue, due soon, awaiting my answer, awaiting theirs; and
last how fast requests were answered over the last days, per counterpart
(``GET /api/stats``).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from globe_node.webui.app import PREFIX, UI_KEY, Page, page_of
from globe_node.webui.casework import CASEWORK
from globe_node.webui.screens import directory_confirmed, directory_stale, render
from protocol.messages import Kind

__all__ = [
    "ALERTS_SHOWN",
    "DASHBOARD",
    "FAILED_SHOWN",
    "STATS_DAYS",
    "failed_deliveries",
    "groups",
    "request_stats",
]

#: Requests the dashboard reads at most (the API's largest page).
DASHBOARD_LIMIT: Final = 1000
#: Alerts the dashboard lists, newest first (it says how many there are in all).
ALERTS_SHOWN: Final = 20
#: Messages with a failed delivery the dashboard lists, newest first (the outbox, filtered
#: by delivery state, pages through the rest).
FAILED_SHOWN: Final = 20
#: The days the response-time statistics cover, up to now.
STATS_DAYS: Final = 90
#: The most digits a retry's result has (a message's recipients are fewer than 10**5).
_QUEUED_DIGITS: Final = 5


def groups(requests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Open requests by what they wait for, each in deadline order: ``overdue``,
    ``due_soon`` (either direction), then ``mine`` (received: my answer) and ``theirs``
    (sent: their answer) for the rest."""
    out: dict[str, list[dict[str, Any]]] = {"overdue": [], "due_soon": [], "mine": [],
                                            "theirs": []}  # fmt: skip
    for r in requests:
        if r["overdue"]:
            out["overdue"].append(r)
        elif r["due_soon"]:
            out["due_soon"].append(r)
        elif r["direction"] == "in":
            out["mine"].append(r)
        else:
            out["theirs"].append(r)
    return out


def failed_deliveries(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outbox's messages as the dashboard lists them: each with ``failed``, its
    recipients whose delivery failed (name, attempts and the node's reason), by name."""
    return [
        {**m, "failed": [{"recipient": name, **state}
                         for name, state in sorted(m["recipients"].items())
                         if state["state"] == "failed"]}
        for m in messages
    ]  # fmt: skip


def request_stats(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The request rows of a ``GET /api/stats`` report: each counterpart's (by authority
    id, what was sent to it before what was received from it), then the totals over every
    counterpart (``counterpart`` null)."""
    rows = [r for r in report["rows"] if r["kind"] == Kind.REQUEST.value]
    return sorted(rows, key=lambda r: (r["counterpart"] is None, r["counterpart"] or "",
                                       r["direction"] != "sent"))  # fmt: skip


def _queued(request: web.Request) -> int | None:
    """How many deliveries the retry this page follows queued again (its redirect says)."""
    value = request.query.get("queued", "")
    if value.isascii() and value.isdigit() and len(value) <= _QUEUED_DIGITS:
        return int(value)
    return None


async def _attention(request: web.Request, page: Page) -> dict[str, Any]:
    """What the dashboard shows before the requests: the alerts, whether the directory is
    too old to send, the failed deliveries."""
    alerts = (await page.api.json("GET", "/api/alerts"))["alerts"]
    status = await page.api.json("GET", "/api/status")
    failed = await page.api.json(
        "GET", "/api/outbox", query={"delivery": "failed", "limit": str(FAILED_SHOWN)}
    )
    return {
        "alerts": alerts[:ALERTS_SHOWN], "alerts_total": len(alerts),
        "stale": directory_stale(status), "confirmed": directory_confirmed(request, status),
        "failed": failed_deliveries(failed["messages"]), "failed_more": failed["next"] is not None,
        "may_retry": page.api.may("POST", "/api/messages/{id}/retry"),
    }  # fmt: skip


async def requests(request: web.Request) -> web.StreamResponse:
    """The dashboard: alerts, failed deliveries, the open requests this user sees grouped
    (:func:`groups`), and the response times of the last :data:`STATS_DAYS` days."""
    page = page_of(request)
    found = await page.api.json(
        "GET", "/api/requests", query={"status": "open", "limit": str(DASHBOARD_LIMIT)}
    )
    start = request.app[UI_KEY].node.now() - STATS_DAYS * 86400
    report = await page.api.json("GET", "/api/stats", query={"from": str(max(start, 0))})
    return render(
        request, page, "requests.html", groups=groups(found["requests"]), total=found["total"],
        stats=request_stats(report), stats_days=STATS_DAYS, queued=_queued(request),
        **await _attention(request, page),
    )  # fmt: skip


async def retry(request: web.Request) -> web.StreamResponse:
    """Queue a sent message's failed deliveries again (``POST /api/messages/{id}/retry``),
    then come back to the dashboard, which says how many were queued."""
    page = page_of(request)
    done = await page.api.json(
        "POST", "/api/messages/{id}/retry", params={"id": request.match_info["id"]}
    )
    raise web.HTTPSeeOther(f"{PREFIX}/requests?queued={done['queued']}#failed")


#: (method, path, handler, name) of the dashboard and case pages, under the UI's prefix.
DASHBOARD: Final = (
    ("GET", "/requests", requests, "requests"),
    ("POST", "/messages/{id}/retry", retry, "retry"),
    *CASEWORK,
)

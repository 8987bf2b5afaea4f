"""The requests dashboard, and the case pages beside it (:mod:`~globe_node.webui.casework`).

The dashboard is the request worklists of the local API (``GET /api/requests``, the
code of :mod:`globe_node.worklists`) in the groups an investigator works from: overdue,
due soon, awaiting my answer, awaiting theirs.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from globe_node.webui.app import page_of
from globe_node.webui.casework import CASEWORK
from globe_node.webui.screens import render

__all__ = ["DASHBOARD", "groups"]

#: Requests the dashboard reads at most (the API's largest page).
DASHBOARD_LIMIT: Final = 1000


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


async def requests(request: web.Request) -> web.StreamResponse:
    """The open requests this user sees, grouped (:func:`groups`)."""
    page = page_of(request)
    found = await page.api.json(
        "GET", "/api/requests", query={"status": "open", "limit": str(DASHBOARD_LIMIT)}
    )
    return render(
        request, page, "requests.html", groups=groups(found["requests"]), total=found["total"]
    )


#: (method, path, handler, name) of the dashboard and case pages, under the UI's prefix.
DASHBOARD: Final = (("GET", "/requests", requests, "requests"), *CASEWORK)

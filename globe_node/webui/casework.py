"""The case pages and what an investigator does with a case: open one, rename it, close
and reopen it, give it to a team or a user of the node, and add notes.

The list is ``GET /api/cases``, a case ``GET /api/cases/{case}`` (its record, requests,
thread and notes), and each form one of the API's case routes, sent as the signed-in
user: the route decides (a reference already in use, a closed case closed again, an
assignee who would not see the case are its refusals), and its refusal comes back on
the page with what was typed.  Every change is a POST with the session's form token
(the guard checks it), then a redirect to the case.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from globe_node.compartments import sees
from globe_node.webui.app import PREFIX, Page, page_of
from globe_node.webui.screens import field, form_body, render, status_of
from protocol.errors import GlobeError

__all__ = ["CASEWORK"]

#: Cases the list shows (the most recently active first).
CASES_LIMIT: Final = 200
#: A case's state as the list's filter names it (empty: every case).
CASE_STATES: Final = ("open", "closed")


async def _people(page: Page) -> tuple[list[dict[str, Any]], list[str]]:
    """The users a case can be given to (the node's investigators and supervisors: an
    operator reads no case material) and the teams they are in."""
    found = await page.api.json("GET", "/api/users")
    users = [u for u in found["users"] if u["role"] != "operator"]
    return users, sorted({t for u in users for t in u["teams"]})


def _case_path(ref: str) -> str:
    return f"{PREFIX}/cases/{quote(ref, safe='')}"


# --- the list, and opening a case ------------------------------------------------------------


async def _cases_page(
    request: web.Request, page: Page, *, error: GlobeError | None = None,
    form: dict[str, str] | None = None,
) -> web.Response:  # fmt: skip
    state = request.query.get("state", "")
    query = {"limit": str(CASES_LIMIT), "state": state if state in CASE_STATES else None}
    found = await page.api.json("GET", "/api/cases", query=query)
    users, teams = await _people(page)
    return render(
        request, page, "cases.html", status=status_of(error), cases=found["cases"],
        total=found["total"], state=state, error=error, form=form or {}, users=users,
        teams=teams, may_send=page.api.may("POST", "/api/cases"),
    )  # fmt: skip


async def cases(request: web.Request) -> web.StreamResponse:
    """The cases this user sees, most recently active first (open or closed ones only, if
    asked), and the form that opens a new one."""
    return await _cases_page(request, page_of(request))


async def open_case(request: web.Request) -> web.StreamResponse:
    """Open a case under a new reference (``POST /api/cases``), then show it."""
    page = page_of(request)
    form = await request.post()
    values = {k: field(form, k) for k in ("case", "title", "team", "assignee")}
    try:
        opened = await page.api.json(
            "POST", "/api/cases", body=form_body("POST", "/api/cases", values)
        )
    except GlobeError as exc:
        return await _cases_page(request, page, error=exc, form=values)
    raise web.HTTPSeeOther(_case_path(opened["case"]))


# --- one case, and its changes ---------------------------------------------------------------


async def _case_page(
    request: web.Request, page: Page, *, error: GlobeError | None = None,
    form: dict[str, str] | None = None,
) -> web.Response:  # fmt: skip
    ref = request.match_info["case"]
    found = await page.api.json("GET", "/api/cases/{case}", params={"case": ref})
    users, teams = await _people(page)
    return render(
        request, page, "case.html", status=status_of(error), c=found, error=error,
        form=form or {}, users=users, teams=teams,
        may_send=page.api.may("POST", "/api/cases/{case}/notes"),
    )  # fmt: skip


async def case(request: web.Request) -> web.StreamResponse:
    """A case: its record, requests, thread and notes, and the forms that change it
    (another team's case is not found)."""
    return await _case_page(request, page_of(request))


async def _change(
    request: web.Request, action: str, names: tuple[str, ...] = ()
) -> web.StreamResponse:
    """One change of a case: the form's fields (empty ones left out) as the body of
    ``POST /api/cases/{case}/<action>``; then the case, or the list if the user no longer
    sees it (given to another team)."""
    page = page_of(request)
    ref = request.match_info["case"]
    form = await request.post()
    values = {k: field(form, k) for k in names}
    route = f"/api/cases/{{case}}/{action}"
    try:
        info = await page.api.json(
            "POST", route, params={"case": ref}, body=form_body("POST", route, values)
        )
    except GlobeError as exc:
        return await _case_page(request, page, error=exc, form={"action": action, **values})
    if action == "assign" and not sees(page.who, info["team"]):
        raise web.HTTPSeeOther(f"{PREFIX}/cases")
    raise web.HTTPSeeOther(_case_path(ref))


async def rename(request: web.Request) -> web.StreamResponse:
    """Give a case a new title (this node's only; never sent)."""
    return await _change(request, "rename", ("title",))


async def close(request: web.Request) -> web.StreamResponse:
    """Close a case: nothing more is sent into it until it is reopened."""
    return await _change(request, "close")


async def reopen(request: web.Request) -> web.StreamResponse:
    """Reopen a closed case."""
    return await _change(request, "reopen")


async def assign(request: web.Request) -> web.StreamResponse:
    """Give a case to a team, a user of the node, or both."""
    return await _change(request, "assign", ("team", "assignee"))


async def note(request: web.Request) -> web.StreamResponse:
    """Add a note to a case: kept on this node, sealed, never sent."""
    return await _change(request, "notes", ("body",))


#: (method, path, handler, name) of the case pages, under the UI's prefix.
CASEWORK: Final = (
    ("GET", "/cases", cases, "cases"),
    ("POST", "/cases", open_case, "open_case"),
    ("GET", "/cases/{case}", case, "case"),
    ("POST", "/cases/{case}/rename", rename, "rename_case"),
    ("POST", "/cases/{case}/close", close, "close_case"),
    ("POST", "/cases/{case}/reopen", reopen, "reopen_case"),
    ("POST", "/cases/{case}/assign", assign, "assign_case"),
    ("POST", "/cases/{case}/notes", note, "note_case"),
)

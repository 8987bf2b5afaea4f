"""The investigator's reading pages: sign-in and sign-out, the inbox and the outbox (with
filters and text search), a message with its attachments, deliveries and request
workflow (refreshed in place by ``static/app.js``), and the language switcher.

Each handler reads the signed-in page the guard prepared (:func:`page_of`), asks the
local API's routes for its data (:class:`~globe_node.webui.bridge.LocalApi`), and
renders a template; nothing here reads the store.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from globe_io.webui.errors import CsrfRejected
from globe_io.webui.i18n import LANGUAGES
from globe_io.webui.sessions import new_secret
from globe_io.webui.site import CSRF_FIELD
from globe_node.errors import Forbidden, Unauthenticated
from globe_node.users import authenticate, token_hash
from globe_node.webui.app import (
    LANG_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    UI_KEY,
    Page,
    WebUi,
    page_of,
    require_reader,
)
from protocol.errors import GlobeError

__all__ = ["PAGES", "restricted", "safe_next"]

#: Messages a list shows at most (the API's lists are newest first).
LIST_LIMIT: Final = 50
#: Handling codes shown with a banner: everything but TLP:CLEAR and TLP:GREEN.
RESTRICTED_TLP: Final = frozenset({"AMBER", "AMBER+STRICT", "RED"})


def restricted(content: dict[str, Any]) -> bool:
    """Whether a message's content carries a handling code that needs its banner."""
    return content["tlp"] in RESTRICTED_TLP or bool(content["restrictions"])


def safe_next(value: object, default: str = f"{PREFIX}/") -> str:
    """Where to go after a form: a path of the UI only (never another site)."""
    if isinstance(value, str) and value.startswith(f"{PREFIX}/") and "//" not in value:
        return value
    return default


def _ui(request: web.Request) -> WebUi:
    return request.app[UI_KEY]


def _page(page: Page, **context: Any) -> dict[str, Any]:
    """What every signed-in template gets besides its own data."""
    return {"page": page, "csrf": page.session.csrf, **context}


# --- signing in and out ----------------------------------------------------------------------


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    """The sign-in page (its own form token set as a cookie: double submit)."""
    ui = _ui(request)
    chosen = request.query.get("lang")
    language = chosen if chosen in LANGUAGES else ui.language(request, None)
    return _sign_in_page(request, language, status=200, error=None)


def _sign_in_page(
    request: web.Request, language: str, *, status: int, error: GlobeError | None
) -> web.Response:
    ui = _ui(request)
    token = new_secret()
    resp = ui.render(
        language, "sign_in.html", status=status, csrf=token, error=error, page=None,
        next=safe_next(request.query.get("next")),
    )  # fmt: skip
    ui.set_cookie(request, resp, SIGNIN_COOKIE, token)
    if request.query.get("lang") in LANGUAGES:
        ui.set_cookie(request, resp, LANG_COOKIE, language, max_age=365 * 86400)
    return resp


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Sign in with the user's API token: a session for a user whose role reads case
    material; the sign-in form's token must match its cookie (login CSRF)."""
    ui = _ui(request)
    form = await request.post()
    language = ui.language(request, None)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    given = form.get(CSRF_FIELD)
    if not expected or not isinstance(given, str) or not hmac.compare_digest(given, expected):
        return _sign_in_page(
            request, language, status=403,
            error=CsrfRejected("the sign-in form expired: sign in again from this page"),
        )  # fmt: skip
    raw = form.get("token")
    token = raw.strip() if isinstance(raw, str) else ""
    node = ui.node
    try:
        who = await authenticate(
            node.sessions, f"Bearer {token}", intake=node.config.intake_team, now=node.now()
        )
        require_reader(who)
    except (Unauthenticated, Forbidden) as exc:
        return _sign_in_page(request, language, status=exc.status, error=exc)
    cookie, _ = ui.sessions.open(who.name, token_hash(token))
    await ui.audit.append(node.now(), who.name, "ui-sign-in", "web UI session opened")
    resp = web.HTTPSeeOther(safe_next(form.get("next")))
    ui.set_cookie(request, resp, SESSION_COOKIE, cookie)
    resp.del_cookie(SIGNIN_COOKIE, path=PREFIX)
    raise resp


async def sign_out(request: web.Request) -> web.StreamResponse:
    """End this browser's session."""
    ui, page = _ui(request), page_of(request)
    ui.sessions.close(request.cookies.get(SESSION_COOKIE))
    await ui.audit.append(ui.node.now(), page.who.name, "ui-sign-out", "this session")
    return _signed_out()


async def sign_out_everywhere(request: web.Request) -> web.StreamResponse:
    """End every session of this user, in every browser."""
    ui, page = _ui(request), page_of(request)
    ended = ui.sessions.close_user(page.who.name)
    await ui.audit.append(ui.node.now(), page.who.name, "ui-sign-out", f"{ended} session(s)")
    return _signed_out()


def _signed_out() -> web.StreamResponse:
    resp = web.HTTPSeeOther(f"{PREFIX}/sign-in")
    resp.del_cookie(SESSION_COOKIE, path=PREFIX)
    raise resp


async def set_language(request: web.Request) -> web.StreamResponse:
    """Keep the user's UI language, then go back to the page it was chosen on."""
    ui, page = _ui(request), page_of(request)
    form = await request.post()
    language = form.get("language")
    if isinstance(language, str) and language in LANGUAGES:
        ui.prefs.set_language(page.who.name, language)
    raise web.HTTPSeeOther(safe_next(form.get("next")))


# --- lists -----------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    """The start page: the requests dashboard."""
    raise web.HTTPSeeOther(f"{PREFIX}/requests")


def _filters(request: web.Request) -> dict[str, str]:
    return {k: request.query.get(k, "").strip() for k in ("kind", "counterpart", "case", "q")}


def _keep(row: dict[str, Any], want: dict[str, str], counterparts: Iterable[str]) -> bool:
    return (
        (not want["kind"] or row["kind"] == want["kind"])
        and (not want["counterpart"] or want["counterpart"] in counterparts)
        and (not want["case"] or row.get("case") == want["case"])
    )


async def inbox(request: web.Request) -> web.StreamResponse:
    """Received messages, newest first, with each request's deadline and state; filtered
    by kind, counterpart and case, or the text search's matches."""
    page = page_of(request)
    want = _filters(request)
    if want["q"]:
        return await _search(request, page, want)
    listed = await page.api.json("GET", "/api/inbox", query={"limit": str(LIST_LIMIT)})
    requests = await page.api.json(
        "GET", "/api/requests",
        query={"direction": "in", "status": "all", "limit": "1000"},
    )  # fmt: skip
    by_message = {r["message"]: r for r in requests["requests"]}
    rows = [
        {**m, "request": by_message.get(m["id"])}
        for m in listed["messages"]
        if _keep(m, want, (m["from"],))
    ]
    counterparts = sorted({m["from"] for m in listed["messages"]})
    return _ui(request).render(
        page.language, "inbox.html",
        **_page(page, rows=rows, want=want, counterparts=counterparts),
    )  # fmt: skip


async def _search(request: web.Request, page: Page, want: dict[str, str]) -> web.Response:
    found = await page.api.json("GET", "/api/search", query={"q": want["q"], "limit": "50"})
    return _ui(request).render(
        page.language, "search.html", **_page(page, hits=found["hits"], want=want)
    )


async def outbox(request: web.Request) -> web.StreamResponse:
    """Sent messages, newest first, with each recipient's delivery state and each
    request's deadline and state."""
    page = page_of(request)
    want = _filters(request)
    listed = await page.api.json("GET", "/api/outbox", query={"limit": str(LIST_LIMIT)})
    rows = []
    for item in listed["messages"]:
        if not _keep(item, want, item["recipients"]):
            continue
        # The outbox list names no subject, urgency or handling code: the message does
        # (a sent message is never marked read).
        held = await page.api.json("GET", "/api/messages/{id}", params={"id": item["id"]})
        rows.append({**item, "content": held["content"], "requests": held["requests"]})
    counterparts = sorted({r for m in listed["messages"] for r in m["recipients"]})
    return _ui(request).render(
        page.language, "outbox.html",
        **_page(page, rows=rows, want=want, counterparts=counterparts),
    )  # fmt: skip


# --- one message -----------------------------------------------------------------------------


async def message(request: web.Request) -> web.StreamResponse:
    """A message (opening a received one marks it read, audited, as the API does)."""
    page = page_of(request)
    mid = request.match_info["id"]
    held = await page.api.json("GET", "/api/messages/{id}", params={"id": mid})
    mid = _resolved_id(held, mid)
    return _ui(request).render(
        page.language, "message.html",
        **_page(page, m=held, mid=mid, restricted=restricted(held["content"]),
                may_send=page.api.may("POST", "/api/messages/{id}/status"),
                error=None, form={}),
    )  # fmt: skip


def _resolved_id(held: dict[str, Any], given: str) -> str:
    """The full id of a message shown by a prefix (its request rows or its links)."""
    for row in held["requests"]:
        return str(row["message"])
    return given


async def live(request: web.Request) -> web.StreamResponse:
    """The parts of a message that change while it is open: each recipient's delivery
    state and the request's workflow rows (an HTML fragment ``app.js`` swaps in)."""
    page = page_of(request)
    mid = request.match_info["id"]
    direction = request.query.get("direction")
    if direction == "in":
        counterpart = request.query.get("from", "")
        found = await page.api.json(
            "GET", "/api/requests",
            query={"direction": "in", "status": "all", "counterpart": counterpart,
                   "limit": "1000"},
        )  # fmt: skip
        held: dict[str, Any] = {
            "direction": "in", "meta": None,
            "requests": [r for r in found["requests"] if r["message"] == mid],
        }  # fmt: skip
    else:
        held = await page.api.json("GET", "/api/messages/{id}", params={"id": mid})
    return _ui(request).render(page.language, "_live.html", **_page(page, m=held, mid=mid))


async def attachment(request: web.Request) -> web.StreamResponse:
    """An attachment's bytes, streamed by the API's own route (audited as an export)."""
    page = page_of(request)
    return await page.api.stream(
        "GET", "/api/messages/{id}/attachments/{n}",
        params={"id": request.match_info["id"], "n": request.match_info["n"]},
    )  # fmt: skip


#: (method, path, handler, name) of the reading pages, under the UI's prefix.
PAGES: Final = (
    ("GET", "/sign-in", sign_in_form, "sign_in_form"),
    ("POST", "/sign-in", sign_in, "sign_in"),
    ("POST", "/sign-out", sign_out, "sign_out"),
    ("POST", "/sign-out-everywhere", sign_out_everywhere, "sign_out_everywhere"),
    ("POST", "/language", set_language, "language"),
    ("GET", "/", home, "home"),
    ("GET", "/inbox", inbox, "inbox"),
    ("GET", "/outbox", outbox, "outbox"),
    ("GET", "/messages/{id}", message, "message"),
    ("GET", "/messages/{id}/live", live, "live"),
    ("GET", "/messages/{id}/attachments/{n:[0-9]{1,3}}", attachment, "attachment"),
)

"""The investigator's reading pages: sign-out, the inbox and the outbox (with
filters and text search, :mod:`~globe_node.webui.lists`), a message with its attachments,
deliveries and request workflow (:mod:`~globe_node.webui.messagepage`; its changing parts
refreshed in place by ``static/app.js``), and the language switcher.

Each handler reads the signed-in page the guard prepared (:func:`page_of`), asks the
local API's routes for its data (:class:`~globe_node.webui.bridge.LocalApi`), and
renders a template; nothing here reads the store.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from globe_io.webui.i18n import LANGUAGES
from globe_node.webui.app import PREFIX, SESSION_COOKIE, UI_KEY, Page, WebUi, page_of, start_page
from globe_node.webui.lists import LISTS
from globe_node.webui.messagepage import message

__all__ = ["PAGES", "safe_next"]


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


# --- signing out (signing in: globe_node/webui/auth.py) ------------------------------------


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


# --- the start page (the lists: globe_node/webui/lists.py) --------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    """The start page: the requests dashboard, or an operator's status page."""
    raise web.HTTPSeeOther(start_page(page_of(request).who))


# --- one message (the page itself: globe_node/webui/messagepage.py) ------------------------


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
    ("POST", "/sign-out", sign_out, "sign_out"),
    ("POST", "/sign-out-everywhere", sign_out_everywhere, "sign_out_everywhere"),
    ("POST", "/language", set_language, "language"),
    ("GET", "/", home, "home"),
    *LISTS,
    ("GET", "/messages/{id}", message, "message"),
    ("GET", "/messages/{id}/live", live, "live"),
    ("GET", "/messages/{id}/attachments/{n:[0-9]{1,3}}", attachment, "attachment"),
)

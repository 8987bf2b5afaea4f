"""The investigator's writing pages: compose (with directory search), attachment uploads,
and the request workflow on a message: acknowledge with an expected date, report
progress, decline or answer a received request; close, withdraw or extend one's own.

Each form is turned into the body of a local API route and sent through it
(:class:`~globe_node.webui.bridge.LocalApi`): the route's own parser decides what is
valid, and its refusal comes back on the form, with what the user typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from multidict import MultiDictProxy

from globe_io.webui.i18n import LANGUAGES
from globe_node.webui.app import PREFIX, UI_KEY, Page, page_of
from globe_node.webui.pages import restricted
from protocol.errors import GlobeError, UsageError
from protocol.membership import AUTHORITY_KINDS
from protocol.messages import Restriction, Tlp, Urgency
from protocol.profile import OFFENCE_AREAS

__all__ = ["WORK", "parse_moment"]

#: The directory search's fields, as the compose page names them.
SEARCH_FIELDS: Final = ("country", "kind", "offence", "q")
_FORM_TEXT: Final = ("subject", "body", "kind", "language", "urgency", "tlp", "case", "deadline")


def parse_moment(value: str | None, name: str) -> int | None:
    """A ``datetime-local`` value (``YYYY-MM-DDTHH:MM``, read as UTC) as Unix time."""
    if not value:
        return None
    try:
        moment = datetime.strptime(value[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"'{name}' is a date and time (YYYY-MM-DDTHH:MM, UTC)") from None
    return int(moment.timestamp())


def _text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _all(form: MultiDictProxy[Any], name: str) -> list[str]:
    return [v for v in form.getall(name, []) if isinstance(v, str) and v]


# --- compose ---------------------------------------------------------------------------------


async def _compose_page(
    request: web.Request,
    page: Page,
    *,
    form: dict[str, Any],
    error: GlobeError | None = None,
) -> web.Response:
    search = {k: request.query.get(k, "").strip() for k in SEARCH_FIELDS}
    results: list[dict[str, Any]] = []
    if any(search.values()):
        found = await page.api.json(
            "GET", "/api/directory/search",
            query={"country": search["country"], "kind": search["kind"],
                   "offence": search["offence"], "q": search["q"]},
        )  # fmt: skip
        me = str(request.app[UI_KEY].node.me)
        results = [r for r in found["results"] if r["authority"] != me]
    chosen = form.get("to") or request.query.getall("to", [])
    return request.app[UI_KEY].render(
        page.language, "compose.html", status=error.status if error else 200,
        page=page, csrf=page.session.csrf, search=search, results=results, chosen=chosen,
        form=form, error=error, kinds=sorted(AUTHORITY_KINDS), offences=list(OFFENCE_AREAS),
        urgencies=[u.value for u in Urgency], tlps=[t.value for t in Tlp],
        restriction_values=[r.value for r in Restriction], ui_languages=LANGUAGES,
    )  # fmt: skip


async def compose(request: web.Request) -> web.StreamResponse:
    """The compose page: find recipients in the directory, then write."""
    page = page_of(request)
    defaults = {"kind": "request", "urgency": "routine", "tlp": "AMBER",
                "language": page.language, "restrictions": [], "attachments": []}  # fmt: skip
    return await _compose_page(request, page, form=defaults)


async def send(request: web.Request) -> web.StreamResponse:
    """Send what the compose form says (``POST /api/messages``); then show the message."""
    page = page_of(request)
    form = await request.post()
    values: dict[str, Any] = {k: _text(form, k) for k in _FORM_TEXT}
    values.update(
        to=_all(form, "to"), restrictions=_all(form, "restrictions"),
        attachments=_all(form, "attachment"),
    )  # fmt: skip
    try:
        body = {
            "to": values["to"], "subject": values["subject"], "body": values["body"],
            "kind": values["kind"] or None, "language": values["language"] or None,
            "urgency": values["urgency"] or None, "tlp": values["tlp"] or None,
            "restrictions": values["restrictions"], "case": values["case"] or None,
            "deadline": parse_moment(values["deadline"], "deadline"),
            "attachments": values["attachments"],
        }  # fmt: skip
        created = await page.api.json("POST", "/api/messages", body=body)
    except GlobeError as exc:
        return await _compose_page(request, page, form=values, error=exc)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{created['id']}")


async def upload(request: web.Request) -> web.StreamResponse:
    """Stage a file's bytes for a message (``POST /api/uploads``, streamed by the API's own
    handler); ``app.js`` sends each chosen file here and puts the id in the form."""
    page = page_of(request)
    staged = await page.api.json(
        "POST", "/api/uploads",
        query={"name": request.query.get("name"), "media_type": request.query.get("media_type")},
    )  # fmt: skip
    return web.json_response(staged, status=201)


# --- the request workflow --------------------------------------------------------------------


async def _message_page(
    request: web.Request, page: Page, mid: str, *, error: GlobeError, form: dict[str, Any]
) -> web.Response:
    held = await page.api.json("GET", "/api/messages/{id}", params={"id": mid})
    return request.app[UI_KEY].render(
        page.language, "message.html", status=error.status,
        page=page, csrf=page.session.csrf, m=held, mid=mid,
        restricted=restricted(held["content"]), may_send=True, error=error, form=form,
    )  # fmt: skip


async def status(request: web.Request) -> web.StreamResponse:
    """A status update on a request (``POST /api/messages/{id}/status``): acknowledge,
    progress, decline; or close, withdraw, extend."""
    page = page_of(request)
    mid = request.match_info["id"]
    form = await request.post()
    values = {k: _text(form, k) for k in ("state", "expected", "reason", "deadline", "body")}
    try:
        body = {
            "state": values["state"] or None,
            "expected": parse_moment(values["expected"], "expected"),
            "reason": values["reason"] or None,
            "deadline": parse_moment(values["deadline"], "deadline"),
            "body": values["body"] or None,
        }
        await page.api.json("POST", "/api/messages/{id}/status", params={"id": mid}, body=body)
    except GlobeError as exc:
        return await _message_page(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{mid}")


async def reply(request: web.Request) -> web.StreamResponse:
    """Answer a received request, or send further information to its sender
    (``POST /api/messages/{id}/reply``)."""
    page = page_of(request)
    mid = request.match_info["id"]
    form = await request.post()
    values: dict[str, Any] = {k: _text(form, k) for k in ("kind", "body")}
    values["attachments"] = _all(form, "attachment")
    try:
        body = {"kind": values["kind"] or None, "body": values["body"],
                "attachments": values["attachments"]}  # fmt: skip
        await page.api.json("POST", "/api/messages/{id}/reply", params={"id": mid}, body=body)
    except GlobeError as exc:
        return await _message_page(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{mid}")


#: (method, path, handler, name) of the writing pages, under the UI's prefix.
WORK: Final = (
    ("GET", "/compose", compose, "compose"),
    ("POST", "/compose", send, "send"),
    ("POST", "/uploads", upload, "upload"),
    ("POST", "/messages/{id}/status", status, "status"),
    ("POST", "/messages/{id}/reply", reply, "reply"),
)

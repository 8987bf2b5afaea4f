"""The investigator's writing pages: compose (with directory search), attachment uploads,
the request workflow on a message (acknowledge with an expected date, report progress,
decline or answer a received request; close, withdraw or extend one's own), filing a
message under a case, and forwarding it with its originator's consent: asking for that
consent, and, on the originator's node, granting or refusing it.

Each form is turned into the body of a local API route and sent through it
(:class:`~globe_node.webui.bridge.LocalApi`): the route's own parser decides what is
valid, and its refusal comes back on the form, with what the user typed.  A forward the
originator has not consented to is refused by the API (``consent-required``); the
message's page then offers to ask for that consent, for the same recipients.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from globe_io.webui.i18n import LANGUAGES
from globe_node.webui.app import PREFIX, UI_KEY, Page, page_of
from globe_node.webui.messagepage import render_message
from globe_node.webui.screens import field, fields, parse_moment, render, status_of
from protocol.errors import GlobeError
from protocol.membership import AUTHORITY_KINDS
from protocol.messages import Restriction, Tlp, Urgency
from protocol.profile import OFFENCE_AREAS

__all__ = ["WORK"]

#: The directory search's fields, as the compose page names them.
SEARCH_FIELDS: Final = ("country", "kind", "offence", "q")
_FORM_TEXT: Final = ("subject", "body", "kind", "language", "urgency", "tlp", "case", "deadline")


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
    return render(
        request, page, "compose.html", status=status_of(error),
        search=search, results=results, chosen=chosen,
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
    values: dict[str, Any] = {k: field(form, k) for k in _FORM_TEXT}
    values.update(
        to=fields(form, "to"), restrictions=fields(form, "restrictions"),
        attachments=fields(form, "attachment"),
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


async def status(request: web.Request) -> web.StreamResponse:
    """A status update on a request (``POST /api/messages/{id}/status``): acknowledge,
    progress, decline; or close, withdraw, extend."""
    page = page_of(request)
    mid = request.match_info["id"]
    form = await request.post()
    values = {k: field(form, k) for k in ("state", "expected", "reason", "deadline", "body")}
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
        return await render_message(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{mid}")


async def reply(request: web.Request) -> web.StreamResponse:
    """Answer a received request, or send further information to its sender
    (``POST /api/messages/{id}/reply``)."""
    page = page_of(request)
    mid = request.match_info["id"]
    form = await request.post()
    values: dict[str, Any] = {k: field(form, k) for k in ("kind", "body")}
    values["attachments"] = fields(form, "attachment")
    try:
        body = {"kind": values["kind"] or None, "body": values["body"],
                "attachments": values["attachments"]}  # fmt: skip
        await page.api.json("POST", "/api/messages/{id}/reply", params={"id": mid}, body=body)
    except GlobeError as exc:
        return await render_message(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{mid}")


async def file(request: web.Request) -> web.StreamResponse:
    """File a message that names no case under a case (``POST /api/messages/{id}/file``)."""
    page = page_of(request)
    mid = request.match_info["id"]
    values = {"case": field(await request.post(), "case")}
    try:
        await page.api.json(
            "POST", "/api/messages/{id}/file", params={"id": mid}, body={"case": values["case"]}
        )
    except GlobeError as exc:
        return await render_message(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{mid}")


# --- forwarding and the originator's consent -------------------------------------------------


async def forward(request: web.Request) -> web.StreamResponse:
    """Forward a held message with its proof of origin (``POST /api/messages/{id}/forward``);
    then show the forward.  Refused without the originator's consent: the page then offers
    to ask for it, for the same recipients."""
    page = page_of(request)
    mid = request.match_info["id"]
    form = await request.post()
    values: dict[str, Any] = {"to": fields(form, "to"), "note": field(form, "note")}
    try:
        body = {"to": values["to"], "note": values["note"] or None}
        sent = await page.api.json(
            "POST", "/api/messages/{id}/forward", params={"id": mid}, body=body
        )
    except GlobeError as exc:
        return await render_message(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{sent['id']}")


async def request_consent(request: web.Request) -> web.StreamResponse:
    """Ask a message's originator to consent to its going to other members
    (``POST /api/messages/{id}/request-consent``); the message's page shows it pending."""
    page = page_of(request)
    mid = request.match_info["id"]
    form = await request.post()
    values: dict[str, Any] = {"to": fields(form, "to"), "purpose": field(form, "purpose")}
    try:
        await page.api.json(
            "POST", "/api/messages/{id}/request-consent", params={"id": mid},
            body={"to": values["to"], "purpose": values["purpose"]},
        )  # fmt: skip
    except GlobeError as exc:
        return await render_message(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{mid}#consent")


async def decide_consent(request: web.Request) -> web.StreamResponse:
    """The originator's answer to a consent request it received
    (``POST /api/messages/{id}/consent``): granted (to the members ticked) or refused (with
    a reason)."""
    page = page_of(request)
    mid = request.match_info["id"]
    form = await request.post()
    values: dict[str, Any] = {
        "decision": field(form, "decision"), "granted": fields(form, "to"),
        "reason": field(form, "reason"),
    }  # fmt: skip
    granting = values["decision"] == "granted"
    try:
        body = {"decision": values["decision"] or None,
                "to": values["granted"] if granting else None,
                "reason": values["reason"] or None}  # fmt: skip
        await page.api.json("POST", "/api/messages/{id}/consent", params={"id": mid}, body=body)
    except GlobeError as exc:
        return await render_message(request, page, mid, error=exc, form=values)
    raise web.HTTPSeeOther(f"{PREFIX}/messages/{mid}#consent")


#: (method, path, handler, name) of the writing pages, under the UI's prefix.
WORK: Final = (
    ("GET", "/compose", compose, "compose"),
    ("POST", "/compose", send, "send"),
    ("POST", "/uploads", upload, "upload"),
    ("POST", "/messages/{id}/status", status, "status"),
    ("POST", "/messages/{id}/reply", reply, "reply"),
    ("POST", "/messages/{id}/file", file, "file"),
    ("POST", "/messages/{id}/forward", forward, "forward"),
    ("POST", "/messages/{id}/request-consent", request_consent, "request_consent"),
    ("POST", "/messages/{id}/consent", decide_consent, "decide_consent"),
)

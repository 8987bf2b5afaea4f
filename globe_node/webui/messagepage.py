"""A message's page: its content, handling, attachments, deliveries and request workflow,
and what can be done with it here: answer or update a request, file it under a case,
forward it, and the consent its originator gives or refuses to that.

Everything comes from the local API: the message (``GET /api/messages/{id}``, which
marks a received one read, as the API does), the consent about its onward use
(``GET /api/messages/{id}/consents``), the members it could go to and the open cases
it could be filed under.  A message whose origin cannot be proven any more (purged,
or stored before signatures were kept) cannot be forwarded: the page says why, from
the API's own refusal.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from globe_node.webui.app import UI_KEY, Page, page_of
from globe_node.webui.screens import members, render, restricted, status_of
from protocol.errors import GlobeError

__all__ = ["message", "render_message"]

#: Open cases a message can be filed under, at most (the most recently active).
FILING_LIMIT = 200


def _resolved_id(held: dict[str, Any], consent: dict[str, Any] | None, given: str) -> str:
    """The full id of a message asked for by a prefix (the API resolved it)."""
    if consent is not None:
        return str(consent["message"])
    for row in held["requests"]:
        return str(row["message"])
    return given


async def render_message(
    request: web.Request,
    page: Page,
    mid: str,
    *,
    error: GlobeError | None = None,
    form: dict[str, Any] | None = None,
) -> web.Response:
    """The page of message ``mid`` (an id or a unique prefix), with ``error`` shown on it
    and the forms filled with ``form`` (what the user typed, after a refusal)."""
    held = await page.api.json("GET", "/api/messages/{id}", params={"id": mid})
    consent: dict[str, Any] | None = None
    unforwardable: GlobeError | None = None
    try:
        consent = await page.api.json("GET", "/api/messages/{id}/consents", params={"id": mid})
    except GlobeError as exc:  # purged, or kept before signatures: the API says which
        unforwardable = exc
    may_send = page.api.may("POST", "/api/messages/{id}/status")
    others: list[dict[str, Any]] = []
    cases: list[str] = []
    if may_send:
        others = await members(request, page, inactive=False)
        if held["case"] is None:
            listed = await page.api.json(
                "GET", "/api/cases", query={"state": "open", "limit": str(FILING_LIMIT)}
            )
            cases = [c["case"] for c in listed["cases"]]
    return render(
        request, page, "message.html", status=status_of(error), m=held,
        mid=_resolved_id(held, consent, mid), restricted=restricted(held["content"]),
        may_send=may_send, error=error, form=form or {}, consent=consent,
        unforwardable=unforwardable, members=others, cases=cases,
        me=str(request.app[UI_KEY].node.me),
    )  # fmt: skip


async def message(request: web.Request) -> web.StreamResponse:
    """A message (opening a received one marks it read, audited, as the API does)."""
    return await render_message(request, page_of(request), request.match_info["id"])

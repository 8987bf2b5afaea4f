"""What the investigator's pages share: rendering a signed-in page, and reading the
values a form or a query gives (days, times, lists) before they become an API route's
inputs.

A value the route itself checks (a case reference, an authority id, a text's length)
is passed on as typed: the route's own parser decides and its refusal is shown.  Only
what a browser sends in another form than the API takes (a date picker's day, a
``datetime-local``) is turned into the API's form here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web
from multidict import MultiDictProxy

from globe_node.apiparams import JsonBody
from globe_node.webui.app import UI_KEY, Page
from globe_node.webui.bridge import route_for
from protocol.errors import GlobeError, UsageError

__all__ = [
    "RESTRICTED_TLP",
    "day_end",
    "day_start",
    "field",
    "fields",
    "form_body",
    "members",
    "parse_moment",
    "render",
    "restricted",
    "status_of",
]

#: Handling codes shown with a banner: everything but TLP:CLEAR and TLP:GREEN.
RESTRICTED_TLP: Final = frozenset({"AMBER", "AMBER+STRICT", "RED"})


def restricted(content: dict[str, Any]) -> bool:
    """Whether a message's content carries a handling code that needs its banner."""
    return content["tlp"] in RESTRICTED_TLP or bool(content["restrictions"])


def render(
    request: web.Request, page: Page, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """A signed-in page: ``template`` in the user's language, with the page and the
    session's form token besides its own data."""
    return request.app[UI_KEY].render(
        page.language, template, status=status, page=page, csrf=page.session.csrf, **context
    )


def directory_stale(status: dict[str, Any]) -> bool:
    """Whether ``GET /api/status`` says no hub checkpoint confirmed the directory recently
    enough to send (never, or longer ago than the node's limit)."""
    age = status["directory"]["age_s"]
    return age is None or age > status["directory"]["max_age_s"]


def directory_confirmed(request: web.Request, status: dict[str, Any]) -> int | None:
    """When a hub checkpoint last confirmed the directory (``None``: never), from
    ``GET /api/status``."""
    age = status["directory"]["age_s"]
    return None if age is None else request.app[UI_KEY].node.now() - age


async def members(request: web.Request, page: Page, *, inactive: bool) -> list[dict[str, Any]]:
    """The directory's members but this node, by authority id: the active ones, or every
    one (``inactive``: suspended and revoked too, whose messages stay)."""
    found = await page.api.json(
        "GET", "/api/directory/search", query={"inactive": "1" if inactive else None}
    )
    me = str(request.app[UI_KEY].node.me)
    return sorted((m for m in found["results"] if m["authority"] != me),
                  key=lambda m: str(m["authority"]))  # fmt: skip


def status_of(error: GlobeError | None) -> int:
    """The status of a page that shows ``error`` on its form (200 without one)."""
    return error.status if error is not None else 200


def field(form: MultiDictProxy[Any], name: str) -> str:
    """A form's text field, trimmed (``""`` when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def fields(form: MultiDictProxy[Any], name: str) -> list[str]:
    """Every non-empty value of a repeated field (checkboxes, a multiple select)."""
    return [v.strip() for v in form.getall(name, []) if isinstance(v, str) and v.strip()]


def form_body(method: str, path: str, values: Mapping[str, str]) -> dict[str, object]:
    """A form's text fields as the body of the route ``method path``: an empty field is
    left out (the route's default applies), unless the route requires it, whose own
    refusal then says what it takes."""
    body = route_for(method, path).body
    required = {f.name for f in body.fields if f.required} if isinstance(body, JsonBody) else set()
    return {k: v for k, v in values.items() if v or k in required}


def parse_moment(value: str | None, name: str) -> int | None:
    """A ``datetime-local`` value (``YYYY-MM-DDTHH:MM``, read as UTC) as Unix time."""
    if not value:
        return None
    try:
        moment = datetime.strptime(value[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"'{name}' is a date and time (YYYY-MM-DDTHH:MM, UTC)") from None
    return int(moment.timestamp())


def _day(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"'{name}' is a day (YYYY-MM-DD, UTC)") from None


def day_start(value: str, name: str) -> int | None:
    """A date picker's day (``YYYY-MM-DD``, UTC) as the Unix time it starts at."""
    day = _day(value, name)
    return None if day is None else int(day.timestamp())


def day_end(value: str, name: str) -> int | None:
    """A date picker's day (``YYYY-MM-DD``, UTC) as the Unix time it ends at (the next
    day's start): a period "until" a day includes that day."""
    day = _day(value, name)
    return None if day is None else int((day + timedelta(days=1)).timestamp())

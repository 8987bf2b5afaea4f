"""The operator's pages: the node's status (membership, hub, directory, queues, disk,
alerts) with a sync, the operator users the local API lets an operator add, the signed
prekey's rotation, and the audit log.

Like every page, each one asks the local API's own routes
(:class:`~globe_node.webui.bridge.LocalApi`) as the signed-in operator: what the API
does not offer an operator, these pages do not show.  The API lists no users to an
operator (``GET /api/users`` is for those who assign cases), shows no key fingerprints
and knows nothing of backups: those stay ``globe-node`` commands on the node, and the
pages say which.  Only a role that operates the node has these pages
(:meth:`~globe_node.webui.app.WebUi.check_page`).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from globe_node.webui.app import OPERATOR_PREFIX, UI_KEY, Page, page_of
from protocol.errors import GlobeError

__all__ = ["OPERATOR", "OPERATOR_PAGES"]

#: Audit rows the audit page shows at most, newest first.
AUDIT_SHOWN: Final = 200


def _render(
    request: web.Request, page: Page, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    return request.app[UI_KEY].render(
        page.language, template, status=status, page=page, csrf=page.session.csrf, **context
    )


# --- status ----------------------------------------------------------------------------------


async def _status_page(
    request: web.Request,
    page: Page,
    *,
    synced: dict[str, Any] | None = None,
    error: GlobeError | None = None,
) -> web.Response:
    status = await page.api.json("GET", "/api/status")
    alerts = await page.api.json("GET", "/api/alerts")
    age = status["directory"]["age_s"]
    confirmed = None if age is None else request.app[UI_KEY].node.now() - age
    stale = age is None or age > status["directory"]["max_age_s"]
    return _render(
        request, page, "operator_status.html", status=error.status if error else 200,
        s=status, alerts=alerts["alerts"], confirmed=confirmed, stale=stale, synced=synced,
        error=error,
    )  # fmt: skip


async def node_status(request: web.Request) -> web.StreamResponse:
    """The node at a glance (``GET /api/status``) and its alerts (``GET /api/alerts``)."""
    return await _status_page(request, page_of(request))


async def sync(request: web.Request) -> web.StreamResponse:
    """Sync the directory and pull the mailbox now (``POST /api/sync``); the status page
    then says what came."""
    page = page_of(request)
    try:
        synced = await page.api.json("POST", "/api/sync")
    except GlobeError as exc:
        return await _status_page(request, page, error=exc)
    return await _status_page(request, page, synced=synced)


# --- users -----------------------------------------------------------------------------------


async def users(request: web.Request) -> web.StreamResponse:
    """Add an operator (the one user change the API offers an operator)."""
    return _render(request, page_of(request), "operator_users.html", added=None, error=None,
                   name="")  # fmt: skip


async def add_operator(request: web.Request) -> web.StreamResponse:
    """Add an operator user (``POST /api/users``): its token is shown this once."""
    page = page_of(request)
    form = await request.post()
    raw = form.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    try:
        added = await page.api.json("POST", "/api/users", body={"name": name, "role": "operator"})
    except GlobeError as exc:
        return _render(request, page, "operator_users.html", status=exc.status, added=None,
                       error=exc, name=name[:64])  # fmt: skip
    return _render(request, page, "operator_users.html", status=201, added=added, error=None,
                   name="")  # fmt: skip


# --- keys ------------------------------------------------------------------------------------


async def keys(request: web.Request) -> web.StreamResponse:
    """The signed prekey's rotation, and what the node's other keys need."""
    return _render(request, page_of(request), "operator_keys.html", rotated=None, error=None)


async def rotate_prekey(request: web.Request) -> web.StreamResponse:
    """Make, store and publish a new signed prekey now (``POST /api/keys/rotate``)."""
    page = page_of(request)
    try:
        rotated = await page.api.json("POST", "/api/keys/rotate")
    except GlobeError as exc:
        return _render(request, page, "operator_keys.html", status=exc.status, rotated=None,
                       error=exc)  # fmt: skip
    return _render(request, page, "operator_keys.html", rotated=rotated, error=None)


# --- audit -----------------------------------------------------------------------------------


async def audit(request: web.Request) -> web.StreamResponse:
    """The audit log's newest rows, newest first, and whether its chain verifies
    (``GET /api/audit``)."""
    page = page_of(request)
    found = await page.api.json("GET", "/api/audit")
    entries = list(reversed(found["entries"]))[:AUDIT_SHOWN]
    return _render(request, page, "operator_audit.html", entries=entries,
                   verified=found["verified"])  # fmt: skip


#: (method, path, handler, name) of the operator's pages, under the UI's prefix.
OPERATOR: Final = (
    ("GET", OPERATOR_PREFIX, node_status, "operator_status"),
    ("POST", f"{OPERATOR_PREFIX}/sync", sync, "operator_sync"),
    ("GET", f"{OPERATOR_PREFIX}/users", users, "operator_users"),
    ("POST", f"{OPERATOR_PREFIX}/users", add_operator, "operator_add_user"),
    ("GET", f"{OPERATOR_PREFIX}/keys", keys, "operator_keys"),
    ("POST", f"{OPERATOR_PREFIX}/keys/rotate", rotate_prekey, "operator_rotate_prekey"),
    ("GET", f"{OPERATOR_PREFIX}/audit", audit, "operator_audit"),
)
#: The route names of the operator's pages (what the guard keeps for operators).
OPERATOR_PAGES: Final = frozenset(name for *_, name in OPERATOR)

"""The operator's pages: the node's status (membership, hub, directory, queues, disk,
backups, alerts) with a sync, the node's users (and adding an operator), its public keys
(and the signed prekey's rotation), the backups recorded, and the audit log.

Like every page, each one asks the local API's own routes
(:class:`~globe_node.webui.bridge.LocalApi`) as the signed-in operator: what the API
does not offer an operator, these pages do not show.  The users are ``GET
/api/accounts`` (with their last use and whether a password is set), the keys ``GET
/api/keys``, the backups ``GET /api/backups``; removing users, replacing tokens, a key
update and making a backup stay ``globe-node`` commands on the node, and the pages say
which.  Only a role that operates the node has these pages
(:meth:`~globe_node.webui.app.WebUi.check_page`).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from globe_node.backup import KEEP
from globe_node.webui.app import OPERATOR_PREFIX, Page, page_of
from globe_node.webui.screens import directory_confirmed, directory_stale, render
from protocol.errors import GlobeError

__all__ = ["OPERATOR", "OPERATOR_PAGES"]

#: Audit rows the audit page shows at most, newest first.
AUDIT_SHOWN: Final = 200


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
    backups = await page.api.json("GET", "/api/backups")
    return render(
        request, page, "operator_status.html", status=error.status if error else 200,
        s=status, alerts=alerts["alerts"], confirmed=directory_confirmed(request, status),
        stale=directory_stale(status), synced=synced,
        error=error, backups=backups, last_backup=_newest(backups),
    )  # fmt: skip


def _newest(backups: dict[str, Any]) -> int | None:
    """When the newest recorded backup was made, or ``None``."""
    return backups["backups"][0]["created"] if backups["backups"] else None


async def node_status(request: web.Request) -> web.StreamResponse:
    """The node at a glance (``GET /api/status``), its alerts (``GET /api/alerts``) and
    whether its newest backup is too old (``GET /api/backups``)."""
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


async def _users_page(
    request: web.Request,
    page: Page,
    *,
    status: int = 200,
    added: dict[str, Any] | None = None,
    error: GlobeError | None = None,
    name: str = "",
) -> web.Response:
    """The node's users (``GET /api/accounts``, read after any change), and the form that
    adds an operator."""
    accounts = await page.api.json("GET", "/api/accounts")
    return render(request, page, "operator_users.html", status=status, users=accounts["users"],
                   added=added, error=error, name=name)  # fmt: skip


async def users(request: web.Request) -> web.StreamResponse:
    """The node's users: role, teams, created, last use, whether a web UI password is set;
    and adding an operator (the one user change the API offers an operator)."""
    return await _users_page(request, page_of(request))


async def add_operator(request: web.Request) -> web.StreamResponse:
    """Add an operator user (``POST /api/users``): its token is shown this once."""
    page = page_of(request)
    form = await request.post()
    raw = form.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    try:
        added = await page.api.json("POST", "/api/users", body={"name": name, "role": "operator"})
    except GlobeError as exc:
        return await _users_page(request, page, status=exc.status, error=exc, name=name[:64])
    return await _users_page(request, page, status=201, added=added)


# --- keys ------------------------------------------------------------------------------------


async def _keys_page(
    request: web.Request,
    page: Page,
    *,
    status: int = 200,
    rotated: dict[str, Any] | None = None,
    error: GlobeError | None = None,
) -> web.Response:
    """The node's public keys (``GET /api/keys``, read after any change), and the form that
    publishes a new signed prekey."""
    found = await page.api.json("GET", "/api/keys")
    return render(request, page, "operator_keys.html", status=status, k=found, rotated=rotated,
                   error=error)  # fmt: skip


async def keys(request: web.Request) -> web.StreamResponse:
    """The node's fingerprint, key ids, current signed prekey and pending key update, and
    the signed prekey's rotation."""
    return await _keys_page(request, page_of(request))


async def rotate_prekey(request: web.Request) -> web.StreamResponse:
    """Make, store and publish a new signed prekey now (``POST /api/keys/rotate``)."""
    page = page_of(request)
    try:
        rotated = await page.api.json("POST", "/api/keys/rotate")
    except GlobeError as exc:
        return await _keys_page(request, page, status=exc.status, error=exc)
    return await _keys_page(request, page, rotated=rotated)


# --- backups ---------------------------------------------------------------------------------


async def backups(request: web.Request) -> web.StreamResponse:
    """The backups ``globe-node backup`` recorded, newest first, and whether the newest is
    too old (``GET /api/backups``)."""
    page = page_of(request)
    found = await page.api.json("GET", "/api/backups")
    return render(request, page, "operator_backups.html", backups=found,
                   last_backup=_newest(found), keep=KEEP)  # fmt: skip


# --- audit -----------------------------------------------------------------------------------


async def audit(request: web.Request) -> web.StreamResponse:
    """The audit log's newest rows, newest first, and whether its chain verifies
    (``GET /api/audit``)."""
    page = page_of(request)
    found = await page.api.json("GET", "/api/audit")
    entries = list(reversed(found["entries"]))[:AUDIT_SHOWN]
    return render(request, page, "operator_audit.html", entries=entries,
                   verified=found["verified"])  # fmt: skip


#: (method, path, handler, name) of the operator's pages, under the UI's prefix.
OPERATOR: Final = (
    ("GET", OPERATOR_PREFIX, node_status, "operator_status"),
    ("POST", f"{OPERATOR_PREFIX}/sync", sync, "operator_sync"),
    ("GET", f"{OPERATOR_PREFIX}/users", users, "operator_users"),
    ("POST", f"{OPERATOR_PREFIX}/users", add_operator, "operator_add_user"),
    ("GET", f"{OPERATOR_PREFIX}/keys", keys, "operator_keys"),
    ("POST", f"{OPERATOR_PREFIX}/keys/rotate", rotate_prekey, "operator_rotate_prekey"),
    ("GET", f"{OPERATOR_PREFIX}/backups", backups, "operator_backups"),
    ("GET", f"{OPERATOR_PREFIX}/audit", audit, "operator_audit"),
)
#: The route names of the operator's pages (what the guard keeps for operators).
OPERATOR_PAGES: Final = frozenset(name for *_, name in OPERATOR)

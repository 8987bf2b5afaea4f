"""The node's web UI for its investigators, supervisors and operators, served under
``/ui`` on its local API listener.

Server-rendered pages (aiohttp and Jinja2) in Arabic, English, French and Spanish, with
a little local JavaScript for what a form cannot do: refreshing a message's delivery
and request states in place, and streaming attachments to the upload route.  Every
page's data, and every change a form makes, goes through the local API's own routes
in process (:mod:`globe_node.webui.bridge`): the same permission check, parsing and
compartments as over HTTP.  docs/ARCHITECTURE.md, "Web UI", says why it is built so.

* :mod:`~globe_node.webui.app` — the guard (host, origin, session, the page's audience,
  form token) and the security headers;
* :mod:`~globe_node.webui.auth` — signing in, with a token or a password;
* :mod:`globe_io.webui.sessions` — sign-in sessions, stored hashed, in memory;
* :mod:`globe_io.webui.i18n` and :mod:`~globe_node.webui.labels` — catalogues,
  formats and the words for the API's values;
* :mod:`~globe_node.webui.pages` — sign-out, inbox, outbox, a message;
* :mod:`~globe_node.webui.work` — compose, uploads, answers and status updates;
* :mod:`~globe_node.webui.dashboard` — the requests dashboard and a case;
* :mod:`~globe_node.webui.operator` — the operator's pages: status, users, keys, audit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

from globe_io.webui.sessions import SessionStore
from globe_io.webui.site import secure_headers
from globe_node.apiapp import AUDIT_KEY, NODE_KEY
from globe_node.audit import AuditLog
from globe_node.errors import NotFound
from globe_node.node import Node
from globe_node.webui.app import PREFIX, UI_KEY, WebUi, guard
from globe_node.webui.auth import SIGN_IN, SIGN_INS_KEY, SignIns
from globe_node.webui.dashboard import DASHBOARD
from globe_node.webui.operator import OPERATOR, OPERATOR_PAGES
from globe_node.webui.pages import PAGES
from globe_node.webui.work import WORK

__all__ = ["PREFIX", "create_webui_app", "with_webui"]

STATIC_DIR: Final = Path(__file__).parent / "static"


async def _not_found(_request: web.Request) -> web.StreamResponse:
    raise NotFound("no such page")


def create_webui_app(
    node: Node,
    audit: AuditLog,
    *,
    sessions: SessionStore | None = None,
    hosts: frozenset[str] | None = None,
) -> web.Application:
    """The web UI's application (mounted at :data:`PREFIX` by :func:`with_webui`).

    ``sessions`` and ``hosts`` replace the defaults (the node's clock and timeouts; the
    listener's own host names and ``[webui] allowed_hosts``) for tests and special
    deployments."""
    app = web.Application(middlewares=[guard])
    app[NODE_KEY] = node  # the API's handlers read these (the UI calls them in process)
    app[AUDIT_KEY] = audit
    app[UI_KEY] = WebUi(node, audit, sessions=sessions, hosts=hosts, operator_pages=OPERATOR_PAGES)
    app[SIGN_INS_KEY] = SignIns(node.now)
    app.on_response_prepare.append(secure_headers)
    for method, path, handler, name in (*SIGN_IN, *PAGES, *WORK, *DASHBOARD, *OPERATOR):
        app.router.add_route(method, path, handler, name=name)
    app.router.add_static("/static", STATIC_DIR, name="static")
    app.router.add_route("*", "/{tail:.*}", _not_found, name="not_found")
    return app


def with_webui(api: web.Application) -> web.Application:
    """``api`` (the local API's application) with the web UI mounted at ``/ui``."""
    api.add_subapp(PREFIX, create_webui_app(api[NODE_KEY], api[AUDIT_KEY]))
    return api

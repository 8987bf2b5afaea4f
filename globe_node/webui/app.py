"""The investigator's web UI: its state, its guard and its security headers.

Every request to ``/ui`` passes one guard (:func:`guard`), in this order: the ``Host``
and, for a state-changing request, the ``Origin`` checks every UI of the project makes
(:mod:`globe_io.webui.site`); then a live session (:mod:`globe_io.webui.sessions`) whose
user still exists with the same token and whose role reads case material (without one
a page redirects to sign-in); then, for a state-changing request, the session's form
token.

A refusal, the guard's or an API route's, is a page in the user's language with the
refusal's status, title and detail.  Every response carries the security headers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

from aiohttp import web

from globe_io.forwarded import TrustedProxies
from globe_io.webui.errors import CsrfRejected
from globe_io.webui.i18n import LANGUAGES, Catalogues, negotiate
from globe_io.webui.sessions import Session, SessionStore
from globe_io.webui.site import SAFE_METHODS, Site, form_token, listener_hosts
from globe_node.audit import AuditLog
from globe_node.errors import Forbidden, Unauthenticated
from globe_node.node import Node
from globe_node.roles import GRANTS, Permission
from globe_node.users import Principal
from globe_node.webui import labels
from globe_node.webui.auth import principal
from globe_node.webui.bridge import LocalApi
from globe_node.webui.prefs import Preferences
from protocol.errors import GlobeError

__all__ = [
    "LANG_COOKIE",
    "PREFIX",
    "SESSION_COOKIE",
    "UI_KEY",
    "Page",
    "WebUi",
    "guard",
]

log = logging.getLogger("globe.node.webui")

#: The UI's templates and catalogues.
UI_ROOT: Final = Path(__file__).parent
#: Where the UI is mounted on the local API's listener.
PREFIX: Final = "/ui"
SESSION_COOKIE: Final = "globe_session"
#: The sign-in form's own token (double submit: cookie and field), before any session.
SIGNIN_COOKIE: Final = "globe_signin"
#: The language chosen before signing in (the user's stored choice wins afterwards).
LANG_COOKIE: Final = "globe_lang"
#: Routes (by name) that need no session: signing in, and the scripts and styles.
PUBLIC: Final = frozenset({"sign_in", "sign_in_form", "static"})


@dataclass(frozen=True, slots=True)
class Page:
    """What a signed-in page knows: the user, its session and language, and the API."""

    who: Principal
    session: Session
    language: str
    api: LocalApi
    path: str  # the page's own path and query, for forms that come back to it


class WebUi(Site):
    """The UI's state: the node, its sessions, preferences and catalogues."""

    def __init__(
        self,
        node: Node,
        audit: AuditLog,
        *,
        sessions: SessionStore | None = None,
        hosts: frozenset[str] | None = None,
    ) -> None:
        super().__init__(
            prefix=PREFIX,
            hosts=hosts if hosts is not None else listener_hosts(node.config.api_host,
                                                                 node.config.api_port),
            proxies=TrustedProxies(node.config.http.trusted_proxies),
            catalogues=Catalogues(UI_ROOT, node.now, {"labels": labels, "prefix": PREFIX}),
            what="this node's web UI",
        )  # fmt: skip
        self.node = node
        self.audit = audit
        self.sessions = sessions or SessionStore(clock=node.now)
        self.prefs = Preferences(node.config.directory / "webui.json")

    # -- sessions ---------------------------------------------------------------------------

    async def signed_in(self, request: web.Request) -> tuple[Session, Principal] | None:
        """The request's live session and its user as the API sees it now, or ``None``
        (and the session ends) when the user is gone, was given a new token, or may no
        longer read case material."""
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.find(cookie)
        if session is None:
            return None
        who = await principal(self.node.sessions, session, intake=self.node.config.intake_team)
        if who is None or Permission.READ not in GRANTS[who.role]:
            self.sessions.close_user(session.user)
            return None
        return session, who

    def language(self, request: web.Request, who: Principal | None) -> str:
        """The page's language: the user's choice, else the browser's."""
        if who is not None:
            chosen = self.prefs.language(who.name)
            if chosen is not None:
                return chosen
        cookie = request.cookies.get(LANG_COOKIE)
        if cookie in LANGUAGES:
            return cookie
        return negotiate(request.headers.get("Accept-Language"))

    # -- pages ------------------------------------------------------------------------------

    def refusal(self, request: web.Request, exc: GlobeError) -> web.Response:
        """A refusal as a page in the user's language."""
        page = request.get(PAGE_KEY)
        language = page.language if page is not None else self.language(request, None)
        title = labels.PROBLEMS.get(exc.slug)
        shown = self.catalogues.gettext(language, title) if title else exc.title
        return self.render(
            language, "error.html", status=exc.status, title=shown, detail=exc.detail,
            slug=exc.slug, page=page,
        )  # fmt: skip


UI_KEY: Final = web.AppKey("webui", WebUi)
#: Where the guard leaves the signed-in page's :class:`Page` in the request.
PAGE_KEY: Final = web.RequestKey("webui_page", Page)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host, origin, session and form token (module docstring), and refusals as pages."""
    ui = request.app[UI_KEY]
    try:
        ui.check_host(request)
        unsafe = request.method not in SAFE_METHODS
        if unsafe:
            ui.check_origin(request)
        route = request.match_info.route
        if route.name in PUBLIC:
            return await handler(request)
        found = await ui.signed_in(request)
        if found is None:
            if not unsafe:
                target = quote(request.path_qs, safe="/?=&")
                raise web.HTTPSeeOther(f"{PREFIX}/sign-in?next={target}")
            raise Unauthenticated("your session has ended: sign in again")
        session, who = found
        if unsafe and not session.accepts(await form_token(request)):
            raise CsrfRejected("the form's token is missing or not this session's")
        language = ui.language(request, who)
        request[PAGE_KEY] = Page(who, session, language, LocalApi(request, who), request.path_qs)
        return await handler(request)
    except GlobeError as exc:
        return ui.refusal(request, exc)


def page_of(request: web.Request) -> Page:
    """The signed-in page the guard prepared."""
    return request[PAGE_KEY]


def require_reader(who: Principal) -> None:
    """:class:`Forbidden` for a role that reads no case material (an operator)."""
    if Permission.READ not in GRANTS[who.role]:
        raise Forbidden(
            f"the {who.role.value} role has no investigator's screens: operators use "
            "globe-node on the node"
        )

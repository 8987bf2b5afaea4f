"""The node's web UI: its state, its guard and its security headers.

Every request to ``/ui`` passes one guard (:func:`guard`), in this order: the ``Host``
and, for a state-changing request, the ``Origin`` checks every UI of the project makes
(:mod:`globe_io.webui.site`); then a live session (:mod:`globe_io.webui.sessions`) whose
user still exists with the credentials it signed in with (its
:attr:`~globe_node.users.Account.binding`; without one a page redirects to sign-in);
then the page's audience: the investigator's pages need a role that reads case
material, the operator's pages one that operates the node (:meth:`WebUi.check_page`);
then, for a state-changing request, the session's form token.  Each page recorded is
a use of the user, as an API request is (:func:`globe_node.users.note_use`).

A refusal, the guard's or an API route's, is a page in the user's language with the
refusal's status, title and detail.  Every response carries the security headers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
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
from globe_node.users import Principal, account, note_use
from globe_node.webui import labels
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
    "public_hosts",
    "start_page",
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
PUBLIC: Final = frozenset({"sign_in", "sign_in_password", "sign_in_form", "static"})
#: Routes (by name) of every signed-in user, whatever its role.
COMMON: Final = frozenset({"home", "sign_out", "sign_out_everywhere", "language", "not_found"})
#: The operator's pages, under the UI's prefix.
OPERATOR_PREFIX: Final = "/operator"


def start_page(who: Principal) -> str:
    """Where ``who`` starts: the requests dashboard, or the node's status for a role that
    reads no case material (an operator)."""
    if Permission.READ in GRANTS[who.role]:
        return f"{PREFIX}/requests"
    return f"{PREFIX}{OPERATOR_PREFIX}"


def public_hosts(names: Iterable[str]) -> frozenset[str]:
    """The ``Host`` values ``[webui] allowed_hosts`` lets through: each ``host:port``, and
    the bare host for port 443 or 80 (a browser leaves the scheme's own port out)."""
    out = set()
    for name in names:
        out.add(name.lower())
        host, _, port = name.lower().rpartition(":")
        if port in ("443", "80"):
            out.add(host)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Page:
    """What a signed-in page knows: the user, its session and language, and the API."""

    who: Principal
    session: Session
    language: str
    api: LocalApi
    path: str  # the page's own path and query, for forms that come back to it

    @property
    def reads(self) -> bool:
        """Whether the user has the investigator's pages (its role reads case material)."""
        return Permission.READ in GRANTS[self.who.role]

    @property
    def operates(self) -> bool:
        """Whether the user has the operator's pages (its role operates the node)."""
        return Permission.OPERATE in GRANTS[self.who.role]


class WebUi(Site):
    """The UI's state: the node, its sessions, preferences and catalogues, and which of
    its pages are the operator's (``operator_pages``, by route name)."""

    def __init__(
        self,
        node: Node,
        audit: AuditLog,
        *,
        sessions: SessionStore | None = None,
        hosts: frozenset[str] | None = None,
        operator_pages: frozenset[str] = frozenset(),
    ) -> None:
        public = public_hosts(node.config.webui.allowed_hosts)
        own = listener_hosts(node.config.api_host, node.config.api_port)
        super().__init__(
            prefix=PREFIX,
            hosts=hosts if hosts is not None else own | public,
            proxies=TrustedProxies(node.config.http.trusted_proxies),
            catalogues=Catalogues(UI_ROOT, node.now, {"labels": labels, "prefix": PREFIX}),
            what="this node's web UI",
        )  # fmt: skip
        self.public = public
        self.node = node
        self.audit = audit
        self.sessions = sessions or SessionStore(clock=node.now)
        self.prefs = Preferences(node.config.directory / "webui.json")
        self.operator_pages = operator_pages

    def check_origin(self, request: web.Request) -> None:
        """:meth:`Site.check_origin`, and behind a proxy that is not trusted (its
        ``X-Forwarded-Proto`` unheard) a browser's ``https://`` origin for a name of
        ``[webui] allowed_hosts``: the proxy ended the browser's TLS."""
        origin = request.headers.get("Origin")
        if (
            request.host.lower() in self.public
            and origin == f"https://{request.host}"
            and request.headers.get("Sec-Fetch-Site") not in ("cross-site", "same-site")
        ):
            return
        super().check_origin(request)

    # -- sessions ---------------------------------------------------------------------------

    async def signed_in(self, request: web.Request) -> tuple[Session, Principal] | None:
        """The request's live session and its user as the API sees it now, or ``None``
        (and the session ends) when the user is gone, its role is not a role, or its
        token or password changed since it signed in.  Otherwise the page is a use of the
        user (``last_used``, at most once a minute)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.find(cookie)
        if session is None:
            return None
        node = self.node
        found = await account(node.sessions, session.user, intake=node.config.intake_team)
        if found is None or not hmac.compare_digest(found.binding, session.token_hash):
            # this session only: another one, opened since with the new credentials, holds
            self.sessions.close(cookie)
            return None
        await note_use(node.store, found, node.now())
        return session, found.who

    def check_page(self, who: Principal, name: str | None) -> None:
        """:class:`Forbidden` unless ``who``'s role has the page of route ``name``: the
        operator's pages need the operator's permission, the others (but the pages of
        every user) a role that reads case material."""
        if name in COMMON:
            return
        if name in self.operator_pages:
            if Permission.OPERATE not in GRANTS[who.role]:
                raise Forbidden(
                    f"the {who.role.value} role has no operator's screens: the node's "
                    "operators run it"
                )
        elif Permission.READ not in GRANTS[who.role]:
            raise Forbidden(
                f"the {who.role.value} role has no investigator's screens: its pages are "
                f"under {PREFIX}{OPERATOR_PREFIX}"
            )

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
        ui.check_page(who, route.name)  # refused with the user's own sections around it
        return await handler(request)
    except GlobeError as exc:
        return ui.refusal(request, exc)


def page_of(request: web.Request) -> Page:
    """The signed-in page the guard prepared."""
    return request[PAGE_KEY]

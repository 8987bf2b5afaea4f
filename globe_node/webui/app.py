"""The web UI's application: its state, its guard and its security headers.

Every request to ``/ui`` passes one guard (:func:`guard`), in this order:

1. **Host.**  The ``Host`` header must name this node's API listener (its configured
   host, or a loopback name, with its port), unless the connection comes from a
   trusted proxy (``[http] trusted_proxies``), which answers for the name it serves: a
   page of another site that rebinds its DNS name to 127.0.0.1 reaches nothing.
2. **Origin.**  A state-changing request (anything but ``GET``/``HEAD``) that the
   browser marks as sent by another site (``Sec-Fetch-Site``), or whose ``Origin`` is
   not this page's own, is refused (``csrf-rejected``).  ``Origin: null`` (what a browser
   sends with a form under ``Referrer-Policy: no-referrer``) passes only with
   ``Sec-Fetch-Site: same-origin``.
3. **Session.**  Every page but sign-in and the static files needs a live session
   (:mod:`globe_node.webui.sessions`) whose user still exists with the same token and
   whose role reads case material; without one a page redirects to sign-in.
4. **Form token.**  A state-changing request must carry the session's token, in the
   form (``csrf``) or in the ``X-CSRF-Token`` header (the upload script).

A refusal, the guard's or an API route's, is a page in the user's language with the
refusal's status, title and detail.  Every response carries the security headers
(:data:`SECURITY_HEADERS`): a strict Content-Security-Policy (no inline script or
style anywhere in the UI), no framing, no referrer, no sniffing, and no caching of
pages.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from globe_io.forwarded import TrustedProxies
from globe_node.audit import AuditLog
from globe_node.errors import Forbidden, Unauthenticated
from globe_node.node import Node
from globe_node.roles import GRANTS, Permission
from globe_node.users import Principal
from globe_node.webui import labels
from globe_node.webui.bridge import LocalApi
from globe_node.webui.errors import CsrfRejected, MisdirectedHost
from globe_node.webui.i18n import LANGUAGES, Catalogues, negotiate
from globe_node.webui.prefs import Preferences
from globe_node.webui.sessions import Session, SessionStore, principal
from protocol.errors import GlobeError

__all__ = [
    "CSP",
    "LANG_COOKIE",
    "PREFIX",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "UI_KEY",
    "Page",
    "WebUi",
    "guard",
    "secure_headers",
]

log = logging.getLogger("globe.node.webui")

#: Where the UI is mounted on the local API's listener.
PREFIX: Final = "/ui"
SESSION_COOKIE: Final = "globe_session"
#: The sign-in form's own token (double submit: cookie and field), before any session.
SIGNIN_COOKIE: Final = "globe_signin"
#: The language chosen before signing in (the user's stored choice wins afterwards).
LANG_COOKIE: Final = "globe_lang"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
CSP: Final = (
    "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_SAFE: Final = frozenset({"GET", "HEAD"})
#: Routes (by name) that need no session: signing in, and the scripts and styles.
PUBLIC: Final = frozenset({"sign_in", "sign_in_form", "static"})
_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True, slots=True)
class Page:
    """What a signed-in page knows: the user, its session and language, and the API."""

    who: Principal
    session: Session
    language: str
    api: LocalApi
    path: str  # the page's own path and query, for forms that come back to it


class WebUi:
    """The UI's state: the node, its sessions, preferences and catalogues."""

    def __init__(
        self,
        node: Node,
        audit: AuditLog,
        *,
        sessions: SessionStore | None = None,
        hosts: frozenset[str] | None = None,
    ) -> None:
        self.node = node
        self.audit = audit
        self.sessions = sessions or SessionStore(clock=node.now)
        self.prefs = Preferences(node.config.directory / "webui.json")
        self.catalogues = Catalogues(node.now, {"labels": labels, "prefix": PREFIX})
        self.proxies = TrustedProxies(node.config.http.trusted_proxies)
        self.hosts = hosts if hosts is not None else _hosts(node.config.api_host,
                                                             node.config.api_port)  # fmt: skip

    # -- the connection ---------------------------------------------------------------------

    def via_proxy(self, request: web.Request) -> bool:
        """Whether the connection comes from a trusted proxy."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer[0])
        except ValueError:
            return False
        return self.proxies.trusts(address)

    def secure(self, request: web.Request) -> bool:
        """Whether the browser reached the page over TLS: the connection itself, or a
        trusted proxy that says so (``X-Forwarded-Proto: https``)."""
        if request.secure:
            return True
        return self.via_proxy(request) and request.headers.get("X-Forwarded-Proto") == "https"

    def check_host(self, request: web.Request) -> None:
        """:class:`MisdirectedHost` unless the ``Host`` header names this listener."""
        if "*" in self.hosts or self.via_proxy(request):
            return
        if request.host.lower() not in self.hosts:
            raise MisdirectedHost(f"this node's web UI does not answer to {request.host[:80]!r}")

    def check_origin(self, request: web.Request) -> None:
        """:class:`CsrfRejected` if the browser says another site sent this request."""
        origin = request.headers.get("Origin")
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site in ("cross-site", "same-site"):
            raise CsrfRejected("the browser says another site sent this request")
        scheme = "https" if self.secure(request) else "http"
        # Under "Referrer-Policy: no-referrer" a browser sends "Origin: null" with the
        # forms of this very site: its Sec-Fetch-Site then says where the form was.
        if origin == "null" and fetch_site == "same-origin":
            return
        if origin is not None and origin != f"{scheme}://{request.host}":
            raise CsrfRejected(f"the request came from {origin[:80]!r}, not from this node")

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

    def set_cookie(self, request: web.Request, resp: web.StreamResponse, name: str,
                   value: str, *, max_age: int | None = None) -> None:  # fmt: skip
        """Set a cookie of the UI: ``Path=/ui``, ``HttpOnly``, ``SameSite=Strict``, and
        ``Secure`` whenever the page came over TLS."""
        resp.set_cookie(
            name, value, path=PREFIX, httponly=True, samesite="Strict",
            secure=self.secure(request), max_age=max_age,
        )  # fmt: skip

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

    def render(self, language: str, template: str, *, status: int = 200,
               **context: Any) -> web.Response:  # fmt: skip
        """A page."""
        html = self.catalogues.render(language, template, **context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

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


def _hosts(api_host: str, port: int) -> frozenset[str]:
    """The ``Host`` values this listener answers to: its own host and the loopback names
    with its port; any for a listener bound to every address (its names are unknown)."""
    if api_host in ("0.0.0.0", "::", ""):  # noqa: S104 - a configured value, compared
        return frozenset({"*"})
    own = f"[{api_host}]" if ":" in api_host else api_host
    return frozenset(f"{name}:{port}".lower() for name in (own, *_LOOPBACK_NAMES))


async def _form_token(request: web.Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token is not None:
        return token
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host, origin, session and form token (module docstring), and refusals as pages."""
    ui = request.app[UI_KEY]
    try:
        ui.check_host(request)
        unsafe = request.method not in _SAFE
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
        if unsafe and not session.accepts(await _form_token(request)):
            raise CsrfRejected("the form's token is missing or not this session's")
        language = ui.language(request, who)
        request[PAGE_KEY] = Page(who, session, language, LocalApi(request, who), request.path_qs)
        return await handler(request)
    except GlobeError as exc:
        return ui.refusal(request, exc)


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response of the UI, streamed ones included: the security headers, and no
    caching of anything but the static files."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers.setdefault("Cache-Control", "no-store")


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

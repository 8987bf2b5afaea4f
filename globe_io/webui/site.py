"""What every web UI of the project does to each request and response, whatever it shows.

* **Host.**  The ``Host`` header must name the listener (its configured host, or a
  loopback name, with its port), unless the connection comes from a trusted proxy,
  which answers for the name it serves: a page of another site that rebinds its DNS
  name to 127.0.0.1 reaches nothing (:meth:`Site.check_host`).
* **Origin.**  A state-changing request (anything but ``GET``/``HEAD``) that the browser
  marks as sent by another site (``Sec-Fetch-Site``), or whose ``Origin`` is not this
  page's own, is refused (:meth:`Site.check_origin`).  ``Origin: null`` (what a browser
  sends with a form under ``Referrer-Policy: no-referrer``) passes only with
  ``Sec-Fetch-Site: same-origin``.
* **Form token.**  A state-changing request carries the session's token in the form
  (``csrf``) or in the ``X-CSRF-Token`` header (:func:`form_token`).
* **Headers.**  Every response carries :data:`SECURITY_HEADERS` (a strict
  Content-Security-Policy with no inline script or style, no framing, no referrer, no
  sniffing) and no caching of pages (:func:`secure_headers`); cookies are ``HttpOnly``,
  ``SameSite=Strict``, scoped to the UI's path, and ``Secure`` whenever the page came
  over TLS (:meth:`Site.set_cookie`).

The node's investigator UI (:mod:`globe_node.webui`) and the administrators' console
(:mod:`globe_admin.console`) are both built on :class:`Site`.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final

from aiohttp import web

from globe_io.forwarded import TrustedProxies
from globe_io.webui.errors import CsrfRejected, MisdirectedHost
from globe_io.webui.i18n import Catalogues

__all__ = [
    "CSP",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "SECURITY_HEADERS",
    "Site",
    "form_token",
    "listener_hosts",
    "secure_headers",
]

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
#: Methods that change nothing: they need neither an origin check nor a form token.
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")


def listener_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` values a listener answers to: its own host and the loopback names
    with its port; any (``*``) for a listener bound to every address (its names are
    unknown)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a configured value, compared
        return frozenset({"*"})
    own = f"[{host}]" if ":" in host else host
    return frozenset(f"{name}:{port}".lower() for name in (own, *_LOOPBACK_NAMES))


async def form_token(request: web.Request) -> str | None:
    """The form token a state-changing request carries (header, or form field)."""
    token = request.headers.get(CSRF_HEADER)
    if token is not None:
        return token
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.post()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def secure_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """Every response of a UI, streamed ones included: the security headers, and no
    caching of anything but the static files."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers.setdefault("Cache-Control", "no-store")


class Site:
    """A web UI's checks of the connection, its cookies and its pages.

    ``prefix`` is where the UI is mounted (its cookies' path), ``hosts`` the ``Host``
    values it answers to (:func:`listener_hosts`), ``proxies`` the proxies whose
    ``X-Forwarded-Proto`` and host it believes, ``what`` how a refusal names the site
    ("this node", "this console")."""

    def __init__(
        self,
        *,
        prefix: str,
        hosts: frozenset[str],
        proxies: TrustedProxies,
        catalogues: Catalogues,
        what: str,
    ) -> None:
        self.prefix = prefix
        self.hosts = hosts
        self.proxies = proxies
        self.catalogues = catalogues
        self.what = what

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
            raise MisdirectedHost(f"{self.what} does not answer to {request.host[:80]!r}")

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
            raise CsrfRejected(f"the request came from {origin[:80]!r}, not from {self.what}")

    def set_cookie(self, request: web.Request, resp: web.StreamResponse, name: str,
                   value: str, *, max_age: int | None = None) -> None:  # fmt: skip
        """Set a cookie of the UI: on its path, ``HttpOnly``, ``SameSite=Strict``, and
        ``Secure`` whenever the page came over TLS."""
        resp.set_cookie(
            name, value, path=self.prefix, httponly=True, samesite="Strict",
            secure=self.secure(request), max_age=max_age,
        )  # fmt: skip

    def render(self, language: str, template: str, *, status: int = 200,
               **context: Any) -> web.Response:  # fmt: skip
        """A page."""
        html = self.catalogues.render(language, template, **context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

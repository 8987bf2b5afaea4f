"""The console's state, its guard and its refusals.

Every request to ``/console`` passes one guard (:func:`guard`), in this order: the
``Host`` and, for a state-changing request, the ``Origin`` checks every UI of the project
makes (:mod:`globe_io.webui.site`); then a live session, opened with the one-time sign-in
link (without one a page is refused); then, for a state-changing request, the session's
form token.  A refusal, the guard's, the hub's or the signing code's, is a page in the
admin's language with the refusal's status, title and detail.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from globe_admin.console import labels
from globe_admin.console.errors import NotSignedIn
from globe_admin.console.reading import Reading, read_hub
from globe_admin.console.workstation import Workstation
from globe_admin.session import Admin
from globe_io.forwarded import TrustedProxies
from globe_io.hubclient import HubClient
from globe_io.webui.errors import CsrfRejected
from globe_io.webui.i18n import LANGUAGES, Catalogues, negotiate
from globe_io.webui.sessions import Session, SessionStore, new_secret
from globe_io.webui.site import SAFE_METHODS, Site, form_token
from protocol.errors import GlobeError

__all__ = [
    "CONSOLE_KEY",
    "LANG_COOKIE",
    "PREFIX",
    "ROOT",
    "SESSION_COOKIE",
    "Console",
    "Page",
    "guard",
    "page_of",
    "safe_next",
]

#: The console's templates, catalogues and static files.
ROOT: Final = Path(__file__).parent
#: Where the console is mounted on its listener.
PREFIX: Final = "/console"
SESSION_COOKIE: Final = "globe_console"
LANG_COOKIE: Final = "globe_console_lang"
#: Routes (by name) that need no session: the sign-in link, the style sheet, and the
#: answer to an address that is no page (it reveals nothing).
PUBLIC: Final = frozenset({"sign_in", "static", "not_found"})


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def safe_next(value: object, default: str = f"{PREFIX}/") -> str:
    """Where to go after a form: a page of the console only (never another site)."""
    if isinstance(value, str) and value.startswith(f"{PREFIX}/") and "//" not in value:
        return value
    return default


@dataclass(frozen=True, slots=True)
class Page:
    """What a signed-in page knows: its session, language and own path."""

    session: Session
    language: str
    path: str  # the page's own path and query, for forms that come back to it


class Console(Site):
    """The console: its workstation, sessions, sign-in link, catalogues and last reading."""

    def __init__(
        self,
        workstation: Workstation,
        *,
        hosts: frozenset[str],
        reading: Reading | None = None,
        sessions: SessionStore | None = None,
        clock: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        super().__init__(
            prefix=PREFIX,
            hosts=hosts,
            proxies=TrustedProxies(()),  # a loopback listener: no proxy stands in front
            catalogues=Catalogues(ROOT, clock, {"labels": labels, "prefix": PREFIX}),
            what="this console",
        )
        self.workstation = workstation
        self.clock = clock
        self.sessions = sessions or SessionStore(clock=clock)
        self.reading = reading
        self._link: bytes | None = None

    # -- the one-time sign-in link ----------------------------------------------------------

    def new_link(self) -> str:
        """A new sign-in secret (32 random bytes, URL-safe); only its SHA-256 is kept, and
        any earlier link stops working."""
        secret = new_secret()
        self._link = _digest(secret)
        return secret

    def redeem(self, secret: str) -> str | None:
        """Exchange the sign-in secret for a session once: the session cookie, or ``None``
        for a secret that is not the link's or was used already."""
        if self._link is None or not hmac.compare_digest(_digest(secret), self._link):
            return None
        token_hash, self._link = self._link, None
        cookie, _session = self.sessions.open(self.workstation.name, token_hash)
        return cookie

    # -- reading the hub's admin routes -------------------------------------------------------

    async def read(self, typed: str | None, *, also: str | None = None) -> Reading:
        """Open the key, read the hub's admin routes (:func:`read_hub`), keep and return
        the reading."""

        async def work(_admin: Admin, hub: HubClient) -> Reading:
            return await read_hub(hub, now=self.clock(), also=also)

        self.reading = await self.workstation.with_key(typed, work)
        return self.reading

    async def current(self, *, also: str | None = None) -> Reading | None:
        """The reading a page shows: a fresh one when the passphrase is pre-supplied, else
        the last one (``None``: none yet)."""
        if self.workstation.presupplied:
            return await self.read(None, also=also)
        return self.reading

    # -- pages ------------------------------------------------------------------------------

    def language(self, request: web.Request) -> str:
        """The page's language: the one chosen in this browser, else the browser's."""
        chosen = request.cookies.get(LANG_COOKIE)
        if chosen in LANGUAGES:
            return chosen
        return negotiate(request.headers.get("Accept-Language"))

    def page(self, request: web.Request, template: str, *, status: int = 200,
             **context: Any) -> web.Response:  # fmt: skip
        """A signed-in page: ``template`` with the page, the workstation and ``context``."""
        page = page_of(request)
        return self.render(
            page.language, template, status=status, page=page, csrf=page.session.csrf,
            me=self.workstation, **context,
        )  # fmt: skip

    def refusal(self, request: web.Request, exc: GlobeError) -> web.Response:
        """A refusal as a page in the admin's language."""
        page = request.get(PAGE_KEY)
        language = page.language if page is not None else self.language(request)
        title = labels.PROBLEMS.get(exc.slug)
        shown = self.catalogues.gettext(language, title) if title else exc.title
        return self.render(
            language, "error.html", status=exc.status, title=shown, detail=exc.detail,
            slug=exc.slug, page=page, csrf=page.session.csrf if page else "",
            me=self.workstation,
        )  # fmt: skip


CONSOLE_KEY: Final = web.AppKey("console", Console)
#: Where the guard leaves the signed-in page's :class:`Page` in the request.
PAGE_KEY: Final = web.RequestKey("console_page", Page)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host, origin, session and form token (module docstring), and refusals as pages."""
    console = request.app[CONSOLE_KEY]
    try:
        console.check_host(request)
        unsafe = request.method not in SAFE_METHODS
        if unsafe:
            console.check_origin(request)
        if request.match_info.route.name in PUBLIC:
            return await handler(request)
        session = console.sessions.find(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise NotSignedIn(
                "open the sign-in link globe-admin ui printed; if it was used and this "
                "session ended, start globe-admin ui again for a new link"
            )
        if unsafe and not session.accepts(await form_token(request)):
            raise CsrfRejected("the form's token is missing or not this session's")
        request[PAGE_KEY] = Page(session, console.language(request), request.path_qs)
        return await handler(request)
    except GlobeError as exc:
        return console.refusal(request, exc)


def page_of(request: web.Request) -> Page:
    """The signed-in page the guard prepared."""
    return request[PAGE_KEY]


def console_of(request: web.Request) -> Console:
    """The console serving ``request``."""
    return request.app[CONSOLE_KEY]

"""Signing in to the web UI: with the user's API token, or with its name and the password
set for it with ``globe-node users password``.

Both forms carry the sign-in page's own token, also set as a cookie (double submit:
another site cannot sign a browser in as someone else).  A token is checked by the
local API's own check (:func:`globe_node.users.authenticate`).  A password is checked
against its Argon2id hash, with the same work whether or not the user exists or has a
password (a hash made once for the purpose stands in), so that neither the answer nor
its time tells who the node's users are: every failure is the same refusal.  Password
tries are throttled by user name and address (:data:`SIGN_IN_TRIES` a minute, then
``429`` with ``Retry-After``); a token, 32 random bytes, needs no throttle.

A session keeps its user's :attr:`~globe_node.users.Account.binding`, the digest of its
token hash and password hash: a rotated token or a new or cleared password ends every
session the user had (:meth:`~globe_node.webui.app.WebUi.signed_in`).  Any role signs
in; what it then sees is its role's (:meth:`~globe_node.webui.app.WebUi.check_page`).
Signing in is audited (``ui-sign-in``, with the method); a refused password is logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web
from multidict import MultiDictProxy

from globe_io.errors import RateLimited
from globe_io.web import TokenBuckets
from globe_io.webui.errors import CsrfRejected
from globe_io.webui.i18n import LANGUAGES
from globe_io.webui.sessions import new_secret
from globe_io.webui.site import CSRF_FIELD
from globe_node.errors import Unauthenticated
from globe_node.users import (
    MAX_PASSWORD,
    USER_NAME,
    Account,
    account,
    authenticate,
    hash_password,
    note_use,
    password_bytes,
    token_hash,
)
from globe_node.webui.app import LANG_COOKIE, PREFIX, SESSION_COOKIE, SIGNIN_COOKIE, UI_KEY
from globe_node.webui.pages import safe_next
from protocol import crypto
from protocol.errors import GlobeError, MalformedError

__all__ = ["PARALLEL_CHECKS", "SIGN_IN", "SIGN_INS_KEY", "SIGN_IN_TRIES", "SignIns"]

log = logging.getLogger("globe.node.webui")

#: Password tries one user name may have from one address: this many at once, then one
#: more every 60/N seconds.
SIGN_IN_TRIES: Final = 5
#: Password hashes checked at once: each holds 64 MiB for about 0.1 s.
PARALLEL_CHECKS: Final = 2
#: (user name, address) pairs the throttle remembers at most.
THROTTLE_KEYS: Final = 10_000
#: The one refusal of a password sign-in, whatever went wrong.
REFUSED: Final = "unknown user name or wrong password"


class SignIns:
    """What password sign-ins share: the throttle of tries by user name and address, and
    the checks of passwords (at most :data:`PARALLEL_CHECKS` at once, off the event loop)."""

    def __init__(
        self,
        clock: Callable[[], int],
        *,
        tries: int = SIGN_IN_TRIES,
        parallel: int = PARALLEL_CHECKS,
    ) -> None:
        self.throttle = TokenBuckets(
            rate=tries / 60, burst=tries, clock=clock, max_keys=THROTTLE_KEYS
        )
        self._checks = asyncio.Semaphore(parallel)
        self._stand_in: str | None = None

    def take(self, name: str, address: str | None) -> None:
        """Count one try of ``name`` from ``address``; :class:`RateLimited` when there were
        too many lately."""
        try:
            self.throttle.take(f"{name[:64]}\x00{address}")
        except RateLimited as exc:
            raise RateLimited(
                f"too many sign-in attempts for this user from this address: try again in "
                f"{exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None

    async def check(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored`` (``None``: the user has no password, or
        does not exist), with the same Argon2id work either way."""
        async with self._checks:
            return await asyncio.to_thread(self._verify, stored, password_bytes(password))

    def _verify(self, stored: str | None, given: bytes) -> bool:
        if self._stand_in is None:  # made once, at the first sign-in that needs it
            self._stand_in = hash_password(secrets.token_bytes(32))
        try:
            matches = crypto.password_verify(given, stored or self._stand_in)
        except MalformedError as exc:  # a row edited by hand: refused after the same work
            log.warning("a stored web UI password hash is unusable: %s", exc.detail)
            crypto.password_verify(given, self._stand_in)
            return False
        return matches and stored is not None


SIGN_INS_KEY: Final = web.AppKey("webui_sign_ins", SignIns)


# --- the page ---------------------------------------------------------------------------------


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    """The sign-in page (its own form token set as a cookie: double submit)."""
    ui = request.app[UI_KEY]
    chosen = request.query.get("lang")
    language = chosen if chosen in LANGUAGES else ui.language(request, None)
    return _sign_in_page(request, language, status=200, error=None)


def _sign_in_page(
    request: web.Request, language: str, *, status: int, error: GlobeError | None, user: str = ""
) -> web.Response:
    ui = request.app[UI_KEY]
    token = new_secret()
    resp = ui.render(
        language, "sign_in.html", status=status, csrf=token, error=error, page=None,
        next=safe_next(request.query.get("next")), user=user,
    )  # fmt: skip
    if isinstance(error, RateLimited):
        resp.headers["Retry-After"] = str(error.retry_after)
    ui.set_cookie(request, resp, SIGNIN_COOKIE, token)
    if request.query.get("lang") in LANGUAGES:
        ui.set_cookie(request, resp, LANG_COOKIE, language, max_age=365 * 86400)
    return resp


def _text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _form(request: web.Request) -> MultiDictProxy[Any]:
    """The sign-in form, if it carries the token this browser was given with the page."""
    form = await request.post()
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    given = form.get(CSRF_FIELD)
    if not expected or not isinstance(given, str) or not hmac.compare_digest(given, expected):
        raise CsrfRejected("the sign-in form expired: sign in again from this page")
    return form


async def _open(
    request: web.Request, form: MultiDictProxy[Any], found: Account,
    method: str,
) -> web.StreamResponse:  # fmt: skip
    """A session for ``found``, audited; then the page the form came for."""
    ui = request.app[UI_KEY]
    cookie, _ = ui.sessions.open(found.who.name, found.binding)
    subject = f"web UI session opened ({method})"
    await ui.audit.append(ui.node.now(), found.who.name, "ui-sign-in", subject)
    resp = web.HTTPSeeOther(safe_next(form.get("next")))
    ui.set_cookie(request, resp, SESSION_COOKIE, cookie)
    resp.del_cookie(SIGNIN_COOKIE, path=PREFIX)
    raise resp


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Sign in with the user's API token (the local API's own check)."""
    ui = request.app[UI_KEY]
    node = ui.node
    language = ui.language(request, None)
    try:
        form = await _form(request)
        token = _text(form, "token").strip()
        who = await authenticate(
            node.store, f"Bearer {token}", intake=node.config.intake_team, now=node.now()
        )
        found = await account(node.sessions, who.name, intake=node.config.intake_team)
        # the token may have been rotated between the two reads: bind only the one shown
        if found is None or not hmac.compare_digest(found.token_hash, token_hash(token)):
            raise Unauthenticated("unknown token")
    except (CsrfRejected, Unauthenticated) as exc:
        return _sign_in_page(request, language, status=exc.status, error=exc)
    return await _open(request, form, found, "token")


async def sign_in_password(request: web.Request) -> web.StreamResponse:
    """Sign in with a user name and password: throttled by name and address, refused the
    same way (and after the same work) whatever was wrong."""
    ui = request.app[UI_KEY]
    node = ui.node
    language = ui.language(request, None)
    name = ""
    try:
        form = await _form(request)
        name, password = _text(form, "user").strip(), _text(form, "password")
        request.app[SIGN_INS_KEY].take(name, request.remote)
        found = None
        if USER_NAME.match(name) and 0 < len(password) <= MAX_PASSWORD:
            found = await account(node.sessions, name, intake=node.config.intake_team)
        stored = found.password_hash if found is not None else None
        matches = await request.app[SIGN_INS_KEY].check(stored, password[:MAX_PASSWORD])
        if found is None or not matches:
            log.info("web UI password sign-in refused: %r from %s", name[:64], request.remote)
            raise Unauthenticated(REFUSED)
    except (CsrfRejected, RateLimited, Unauthenticated) as exc:
        return _sign_in_page(request, language, status=exc.status, error=exc, user=name[:64])
    await note_use(node.store, found, node.now())
    return await _open(request, form, found, "password")


#: (method, path, handler, name) of signing in, under the UI's prefix.
SIGN_IN: Final = (
    ("GET", "/sign-in", sign_in_form, "sign_in_form"),
    ("POST", "/sign-in", sign_in, "sign_in"),
    ("POST", "/sign-in/password", sign_in_password, "sign_in_password"),
)

"""The console's reading pages: the sign-in link, the language and sign-out forms, the
applications queue and an application, the open proposals, and "Read from the hub".

Each handler reads the signed-in page the guard prepared, takes the hub's answers from
the console's reading (:mod:`~globe_admin.console.reading`), verifies them again, and
renders a template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from globe_admin.console.app import (
    LANG_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    console_of,
    page_of,
    safe_next,
)
from globe_admin.console.errors import SignInRefused
from globe_admin.console.reading import application_view, proposal_views
from globe_admin.members import read_log
from globe_io.errors import NotFound
from globe_io.hubapi import APPLICATION_STATES
from globe_io.webui.i18n import LANGUAGES

__all__ = ["PAGES", "field"]

_APP_ID: Final = re.compile(r"[0-9a-f]{32}\Z")


def field(form: Mapping[str, object], name: str) -> str | None:
    """A text field of a posted form (``None`` if absent or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


# --- signing in and out ----------------------------------------------------------------------


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Exchange the one-time link's secret for a session, then go to the console (the
    secret is not in the address it redirects to)."""
    console = console_of(request)
    cookie = console.redeem(request.query.get("secret", ""))
    if cookie is None:
        raise SignInRefused(
            "this sign-in link is not this console's, or was used already: start "
            "globe-admin ui again for a new link"
        )
    resp = web.HTTPSeeOther(f"{PREFIX}/applications")
    console.set_cookie(request, resp, SESSION_COOKIE, cookie)
    raise resp


async def sign_out(request: web.Request) -> web.StreamResponse:
    """End this browser's session (the link was used: a new one needs a restart)."""
    console, page = console_of(request), page_of(request)
    console.sessions.close(request.cookies.get(SESSION_COOKIE))
    resp = console.render(
        page.language, "signed_out.html", page=None, csrf="", me=console.workstation
    )
    resp.del_cookie(SESSION_COOKIE, path=PREFIX)
    return resp


async def set_language(request: web.Request) -> web.StreamResponse:
    """Keep the console's language in this browser, then go back to the page."""
    form = await request.post()
    language = field(form, "language")
    resp = web.HTTPSeeOther(safe_next(field(form, "next")))
    if language in LANGUAGES:
        console_of(request).set_cookie(request, resp, LANG_COOKIE, language, max_age=365 * 86400)
    raise resp


async def home(_request: web.Request) -> web.StreamResponse:
    """The start page: the applications queue."""
    raise web.HTTPSeeOther(f"{PREFIX}/applications")


async def refresh(request: web.Request) -> web.StreamResponse:
    """Open the key with the passphrase typed, read the hub's admin routes, go back."""
    form = await request.post()
    also = field(form, "application")
    await console_of(request).read(
        field(form, "passphrase"), also=also if also and _APP_ID.match(also) else None
    )
    raise web.HTTPSeeOther(safe_next(field(form, "next")))


# --- applications --------------------------------------------------------------------------


async def applications(request: web.Request) -> web.StreamResponse:
    """The applications the hub lists, newest first, by status, each verified again where
    the reading holds its bytes."""
    console = console_of(request)
    ws = console.workstation
    wanted = request.query.get("status", "")
    wanted = wanted if wanted in APPLICATION_STATES else ""
    reading = await console.current()
    listed = reading.applications if reading is not None else ()
    counts = {s: sum(1 for a in listed if a.status == s) for s in APPLICATION_STATES}
    rows = [
        application_view(reading, a, ws.genesis, ws.key_id)
        for a in listed
        if reading is not None and (not wanted or a.status == wanted)
    ]
    return console.page(
        request, "applications.html", reading=reading, rows=rows, wanted=wanted, counts=counts,
        states=APPLICATION_STATES,
    )  # fmt: skip


async def application(request: web.Request) -> web.StreamResponse:
    """An application: what the hub lists, what the console verified (the fingerprint to
    compare, the draft's verdict), exactly what an approval signs, and the forms."""
    console = console_of(request)
    ws = console.workstation
    app = request.match_info["id"]
    reading = await console.current(also=app)
    summary = reading.summary(app) if reading is not None else None
    if reading is not None and summary is None:
        raise NotFound(f"the hub lists no application {app}")
    view = (
        application_view(reading, summary, ws.genesis, ws.key_id)
        if reading is not None and summary is not None
        else None
    )
    return console.page(request, "application.html", reading=reading, app=app, v=view)


# --- proposals -------------------------------------------------------------------------------


async def proposals(request: web.Request) -> web.StreamResponse:
    """The open proposals: who signed each (verified), how many more the quorum needs, and
    this admin's signature where the console can check what it signs."""
    console = console_of(request)
    ws = console.workstation
    reading = await console.current()
    views = []
    if reading is not None:
        async with ws.public_hub() as hub:
            state, _rows, _cp, _rel = await read_log(ws.genesis, hub)
        apps = [application_view(reading, a, ws.genesis, ws.key_id) for a in reading.applications]
        views = proposal_views(reading, state, apps, ws.key_id)
    return console.page(request, "proposals.html", reading=reading, proposals=views)


#: (method, path, handler, name) of the reading pages, under the console's prefix.
PAGES: Final = (
    ("GET", "/sign-in", sign_in, "sign_in"),
    ("POST", "/sign-out", sign_out, "sign_out"),
    ("POST", "/language", set_language, "language"),
    ("POST", "/read", refresh, "read"),
    ("GET", "/", home, "home"),
    ("GET", "/applications", applications, "applications"),
    ("GET", "/applications/{id:[0-9a-f]{32}}", application, "application"),
    ("GET", "/proposals", proposals, "proposals"),
)

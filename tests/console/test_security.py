"""The console's guard over raw HTTP, against a real hub: the one-time sign-in link, the
session's cookie, the Host and Origin checks, the form token, and the security headers
on every kind of response.  Each refusal is asserted exactly: its status and the problem
slug the page shows, and that nothing reached the hub."""

from __future__ import annotations

import re

import pytest

from tests.admin.desk import Desk
from tests.console.conftest import ConsoleFactory, Running
from tests.webui.test_security import assert_secured

SIGN_IN_REFUSED = (
    "this sign-in link is not this console's, or was used already: start globe-admin ui again "
    "for a new link"
)


def sha256_of(text: str) -> str:
    """The SHA-256 an approval form carries (the action its page shows)."""
    found = re.search(r'name="sha256" value="([0-9a-f]{64})"', text)
    assert found is not None, text[:500]
    return found.group(1)


async def test_the_sign_in_link_works_once_and_leaves_no_secret_in_the_address(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    running = await open_console()
    path = running.link.removeprefix(running.base)
    assert re.fullmatch(r"/console/sign-in\?secret=[A-Za-z0-9_-]{43}", path)
    first = client(running)
    before = await first.get("/console/applications")
    assert (before.status, before.problem) == (401, "not-signed-in")
    signed = await first.get(path)
    assert (signed.status, signed.headers["Location"]) == (303, "/console/applications")
    assert_secured(signed)
    cookie = signed.headers["Set-Cookie"]
    assert cookie.startswith("globe_console=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert flags == {"httponly", "path", "samesite"}  # no Secure over plain loopback HTTP
    assert "Path=/console" in cookie
    assert "SameSite=Strict" in cookie
    page = await first.get("/console/applications")
    assert page.status == 200
    assert "Admin alice of globe-desk" in page.plain
    # the link again, from another browser (or an attacker who read it): refused
    second = client(running)
    again = await second.get(path)
    assert (again.status, again.problem) == (401, "sign-in-refused")
    assert SIGN_IN_REFUSED in again.plain
    assert "Set-Cookie" not in again.headers
    assert (await second.get("/console/applications")).status == 401
    assert (await first.get("/console/applications")).status == 200  # the first session lives


@pytest.mark.parametrize("secret", ["", "x" * 43, "not-the-secret"], ids=["empty", "43", "short"])
async def test_a_wrong_secret_is_refused_and_the_link_still_works(
    open_console: ConsoleFactory, client, secret: str
) -> None:
    running = await open_console()
    c = client(running)
    wrong = await c.get(f"/console/sign-in?secret={secret}")
    assert (wrong.status, wrong.problem) == (401, "sign-in-refused")
    assert_secured(wrong)
    assert (await c.get("/console/applications")).status == 401
    await c.signed_in()
    assert (await c.get("/console/applications")).status == 200


async def test_a_foreign_host_is_refused_before_anything_else(
    open_console: ConsoleFactory, client
) -> None:
    running = await open_console()
    c = client(running)
    path = running.link.removeprefix(running.base)
    answer = await c.get(path, Host="attacker.example")
    assert (answer.status, answer.problem) == (421, "misdirected-host")
    assert "this console does not answer to 'attacker.example'" in answer.plain
    assert_secured(answer)
    port = running.base.rsplit(":", 1)[1]
    assert (await c.get(path, Host=f"attacker.example:{port}")).status == 421
    signed = await c.get(path, Host=f"localhost:{port}")  # the link was not spent above
    assert signed.status == 303


@pytest.mark.parametrize(
    ("token", "origin", "extra", "detail"),
    [
        (None, "same", {}, "the form's token is missing or not this session's"),
        ("wrong", "same", {}, "the form's token is missing or not this session's"),
        ("right", "http://evil.example", {}, "the request came from 'http://evil.example'"),
        ("right", "null", {}, "the request came from 'null'"),
        ("right", None, {"Sec-Fetch-Site": "cross-site"}, "the browser says another site"),
        ("right", None, {"Sec-Fetch-Site": "same-site"}, "the browser says another site"),
    ],
    ids=["missing-token", "wrong-token", "foreign-origin", "null-origin", "cross-site",
         "same-site"],
)  # fmt: skip
async def test_a_signature_form_without_the_token_or_from_another_site_signs_nothing(
    desk: Desk, open_console: ConsoleFactory, client, *, token: str | None,
    origin: str | None, extra: dict[str, str], detail: str,
) -> None:  # fmt: skip
    member = await desk.apply("FR-PNF")
    running = await open_console(presupplied=True)
    c = await client(running).signed_in()
    page = await c.get(f"/console/applications/{member.app_id}")
    form = {"sha256": sha256_of(page.text)}
    if token is not None:
        form["csrf"] = page.csrf if token == "right" else token  # noqa: S105
    answer = await c.post(
        f"/console/applications/{member.app_id}/approve", form, origin=origin, **extra
    )
    assert (answer.status, answer.problem) == (403, "csrf-rejected")
    assert detail in answer.plain
    assert_secured(answer)
    assert await desk.proposals() == []
    # the same form, from the console's own page: signed
    ok = await c.post(f"/console/applications/{member.app_id}/approve",
                      {**form, "csrf": page.csrf})  # fmt: skip
    assert ok.status == 200
    assert [len(p.signed.signatures) for p in await desk.proposals()] == [1]


async def test_every_kind_of_response_carries_the_security_headers(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    await desk.admit("BR-PF")
    running = await open_console(presupplied=True)
    c = await client(running).signed_in()
    for path, status in [
        ("/console/", 303),
        ("/console/applications", 200),
        ("/console/applications?status=pending", 200),
        (f"/console/applications/{member.app_id}", 200),
        (f"/console/applications/{'0' * 32}", 404),
        ("/console/proposals", 200),
        ("/console/members", 200),
        ("/console/log", 200),
        ("/console/network", 200),
        ("/console/no/such/page", 404),
        ("/elsewhere", 404),
        ("/console/static/app.css", 200),
        ("/console/static/favicon.svg", 200),
    ]:
        answer = await c.get(path)
        assert answer.status == status, path
        assert_secured(answer)
        if status == 404:
            assert answer.problem == "not-found", path
    css = await c.get("/console/static/app.css")
    assert css.headers["Content-Type"].startswith("text/css")
    assert "inset-inline-start" in css.text  # logical properties: the Arabic pages mirror


async def test_no_page_has_an_inline_script_or_style(
    desk: Desk, open_console: ConsoleFactory, client
) -> None:
    member = await desk.apply("FR-PNF")
    running = await open_console(presupplied=True)
    c = await client(running).signed_in()
    for path in (
        "/console/applications",
        f"/console/applications/{member.app_id}",
        "/console/proposals",
        "/console/members",
        "/console/log",
        "/console/network",
    ):
        text = (await c.get(path)).text
        assert "<script" not in text, path
        assert "style=" not in text, path
        assert "<style" not in text, path


async def test_signing_out_ends_the_session(open_console: ConsoleFactory, client) -> None:
    running: Running = await open_console()
    c = await client(running).signed_in()
    out = await c.post("/console/sign-out", {"csrf": await c.token()})
    assert out.status == 200
    assert "The sign-in link works once" in out.plain
    assert out.headers["Set-Cookie"].startswith('globe_console=""; expires=Thu, 01 Jan 1970')
    assert out.headers["Set-Cookie"].endswith("Max-Age=0; Path=/console")
    after = await c.get("/console/applications")
    assert (after.status, after.problem) == (401, "not-signed-in")
    assert (await c.get(running.link.removeprefix(running.base))).problem == "sign-in-refused"


async def test_the_language_is_the_browsers_then_the_one_chosen(
    open_console: ConsoleFactory, client
) -> None:
    running = await open_console()
    c = await client(running).signed_in()
    french = await c.get("/console/applications", **{"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr" dir="ltr">' in french.text
    assert "<h1>Demandes d'adhésion</h1>" in french.plain
    chosen = await c.post("/console/language", {"csrf": await c.token(), "language": "ar",
                                                 "next": "/console/log"})  # fmt: skip
    assert (chosen.status, chosen.headers["Location"]) == (303, "/console/log")
    assert "Path=/console" in chosen.headers["Set-Cookie"]
    arabic = await c.get("/console/applications", **{"Accept-Language": "fr-FR"})
    assert '<html lang="ar" dir="rtl">' in arabic.text
    elsewhere = await c.post("/console/language", {"csrf": await c.token(), "language": "de",
                                                   "next": "//evil.example/"})  # fmt: skip
    assert (elsewhere.status, elsewhere.headers["Location"]) == (303, "/console/")
    assert "Set-Cookie" not in elsewhere.headers

"""The web UI's guard over raw HTTP, against a real node: sign-in and its refusals,
sessions that die with their user's token, CSRF tokens, the Origin and Host checks,
compartments, and the security headers and cookie flags on every kind of response.

Each refusal is asserted exactly: its status, and the problem slug the page shows.
"""

from __future__ import annotations

import pytest

from globe_io.webui.site import CSP
from globe_node.users import remove_user, rotate_token
from tests.node.network import Net
from tests.webui.client import UiClient
from tests.webui.conftest import Pair, user

pytestmark = pytest.mark.slow

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def assert_secured(answer, cache: str = "no-store") -> None:
    for name, value in HEADERS.items():
        assert answer.headers.get(name) == value, name
    assert answer.headers.get("Cache-Control") == cache


# --- signing in ------------------------------------------------------------------------------


async def test_signing_in_with_the_token_opens_a_session_with_a_strict_cookie(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        form = await c.get("/ui/sign-in")
        assert form.status == 200
        assert_secured(form)
        signin = form.headers.getall("Set-Cookie")[0]
        assert signin.startswith("globe_signin=")
        answer = await c.post("/ui/sign-in", {"csrf": form.csrf, "token": pair.fr.token,
                                              "next": "/ui/inbox"})  # fmt: skip
        assert (answer.status, answer.headers["Location"]) == (303, "/ui/inbox")
        cookie = next(v for v in answer.headers.getall("Set-Cookie")
                      if v.startswith("globe_session="))  # fmt: skip
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert flags == {"httponly", "path", "samesite"}  # no Secure over plain HTTP
        assert "Path=/ui" in cookie
        assert "SameSite=Strict" in cookie
        inbox = await c.get("/ui/inbox")
        assert inbox.status == 200
        assert "alice" in inbox.text
        assert_secured(inbox)


async def test_sign_in_refuses_a_wrong_token_and_a_form_from_elsewhere(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        form = await c.get("/ui/sign-in")
        wrong = await c.post("/ui/sign-in", {"csrf": form.csrf, "token": "x" * 43})
        assert (wrong.status, wrong.problem) == (401, "unauthenticated")
        # a sign-in form whose token is not the one this browser was given
        forged = await c.post("/ui/sign-in", {"csrf": "forged", "token": pair.fr.token})
        assert (forged.status, forged.problem) == (403, "csrf-rejected")
        after = await c.get("/ui/inbox")
        assert after.status == 303  # none of these opened a session
    async with UiClient(pair.fr) as fresh:  # no sign-in cookie at all
        none = await fresh.post("/ui/sign-in", {"csrf": "", "token": pair.fr.token})
        assert (none.status, none.problem) == (403, "csrf-rejected")


async def test_without_a_session_pages_redirect_to_sign_in_and_forms_are_refused(
    pair: Pair,
) -> None:
    async with UiClient(pair.fr) as c:
        page = await c.get("/ui/outbox?kind=request")
        assert page.status == 303
        assert page.headers["Location"] == "/ui/sign-in?next=/ui/outbox?kind=request"
        assert_secured(page)
        form = await c.post("/ui/compose", {"csrf": "x", "subject": "s"})
        assert (form.status, form.problem) == (401, "unauthenticated")


async def test_next_never_leads_off_the_ui(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        form = await c.get("/ui/sign-in")
        answer = await c.post("/ui/sign-in", {"csrf": form.csrf, "token": pair.fr.token,
                                              "next": "//evil.example/ui/"})  # fmt: skip
        assert answer.headers["Location"] == "/ui/"
        home = await c.get("/ui/")
        assert (home.status, home.headers["Location"]) == (303, "/ui/requests")


# --- sessions --------------------------------------------------------------------------------


async def test_a_rotated_token_ends_its_sessions_at_once(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        assert (await c.get("/ui/inbox")).status == 200
        await rotate_token(pair.fr.n.sessions, "alice", now=pair.fr.n.now())
        gone = await c.get("/ui/inbox")
        assert (gone.status, gone.headers["Location"]) == (303, "/ui/sign-in?next=/ui/inbox")
        assert (await c.sign_in(pair.fr.token)).problem == "unauthenticated"


async def test_a_user_whose_role_is_not_a_role_loses_its_sessions(pair: Pair) -> None:
    from sqlalchemy import update  # noqa: PLC0415

    from globe_node import db  # noqa: PLC0415

    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        async with pair.fr.n.sessions.begin() as s:  # a row edited by hand
            await s.execute(update(db.User).where(db.User.name == "alice").values(role="root"))
        assert (await c.get("/ui/inbox")).status == 303


async def test_a_removed_user_loses_its_sessions(pair: Pair) -> None:
    token = await user(pair.fr, "bob", "investigator")
    async with UiClient(pair.fr) as c:
        await c.sign_in(token)
        assert (await c.get("/ui/requests")).status == 200
        await remove_user(pair.fr.n.sessions, "bob", now=pair.fr.n.now())
        assert (await c.get("/ui/requests")).status == 303


async def test_sign_out_ends_this_session_and_everywhere_ends_all(pair: Pair) -> None:
    async with UiClient(pair.fr) as one, UiClient(pair.fr) as two, UiClient(pair.fr) as three:
        for c in (one, two, three):
            await c.sign_in(pair.fr.token)
        out = await one.post("/ui/sign-out", {"csrf": await one.token()})
        assert (out.status, out.headers["Location"]) == (303, "/ui/sign-in")
        assert (await one.get("/ui/inbox")).status == 303
        assert (await two.get("/ui/inbox")).status == 200
        everywhere = await two.post("/ui/sign-out-everywhere", {"csrf": await two.token()})
        assert everywhere.status == 303
        assert (await two.get("/ui/inbox")).status == 303
        assert (await three.get("/ui/inbox")).status == 303
    entries, ok = await pair.fr.n.audit.entries()
    assert ok
    actions = [(e["user"], e["action"], e["subject"]) for e in entries if "ui-" in e["action"]]
    assert actions[-2:] == [("alice", "ui-sign-out", "this session"),
                            ("alice", "ui-sign-out", "2 session(s)")]  # fmt: skip


# --- CSRF, Origin, Host ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "origin", "extra", "detail"),
    [
        (None, "same", {}, "the form's token is missing or not this session's"),
        ("wrong", "same", {}, "the form's token is missing or not this session's"),
        ("right", "http://evil.example", {}, "the request came from 'http://evil.example'"),
        ("right", "null", {}, "the request came from 'null'"),
        ("right", None, {"Sec-Fetch-Site": "cross-site"}, "the browser says another site"),
    ],
    ids=["missing-token", "wrong-token", "foreign-origin", "null-origin", "cross-site"],
)
async def test_a_form_without_this_sessions_token_or_from_another_site_is_refused(
    pair: Pair, token: str | None, origin: str | None, extra: dict[str, str], detail: str
) -> None:
    async with UiClient(pair.fr) as c:
        await c.sign_in(pair.fr.token)
        form: dict[str, str] = {"language": "fr", "next": "/ui/inbox"}
        if token is not None:
            form["csrf"] = await c.token() if token == "right" else token  # noqa: S105
        answer = await c.post("/ui/language", form, origin=origin, **extra)
        assert (answer.status, answer.problem) == (403, "csrf-rejected")
        assert detail in answer.plain
        assert_secured(answer)
        assert pair.fr.n.config.directory.joinpath("webui.json").exists() is False
        # the same form, right: accepted, and the choice kept
        ok = await c.post("/ui/language", {**form, "csrf": await c.token()})
        assert (ok.status, ok.headers["Location"]) == (303, "/ui/inbox")
        assert 'lang="fr"' in (await c.get("/ui/inbox")).text


async def test_a_foreign_host_header_is_refused_before_anything_else(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        answer = await c.get("/ui/sign-in", Host="attacker.example")
        assert (answer.status, answer.problem) == (421, "misdirected-host")
        assert_secured(answer)
        local = "localhost:" + c.base.rsplit(":", 1)[1]
        assert (await c.get("/ui/sign-in", Host=local)).status == 200


# --- compartments ----------------------------------------------------------------------------


async def test_another_teams_case_and_message_are_not_found(pair: Pair) -> None:
    fr = pair.fr
    a = await user(fr, "anna", "investigator", "team-a")
    b = await user(fr, "boris", "investigator", "team-b")
    status, _ = await fr.api("POST", "/api/cases", {"case": "A-1", "team": "team-a"}, token=a)
    assert status == 201
    status, sent = await fr.api(
        "POST", "/api/messages",
        {"to": ["BR-PF"], "subject": "Team A only", "body": "b", "case": "A-1"}, token=a,
    )  # fmt: skip
    assert status == 201
    async with UiClient(fr) as anna, UiClient(fr) as boris:
        await anna.sign_in(a)
        await boris.sign_in(b)
        assert (await anna.get("/ui/cases/A-1")).status == 200
        assert "Team A only" in (await anna.get(f"/ui/messages/{sent['id']}")).text
        case = await boris.get("/ui/cases/A-1")
        assert (case.status, case.problem) == (404, "not-found")
        message = await boris.get(f"/ui/messages/{sent['id']}")
        assert (message.status, message.problem) == (404, "not-found")
        outbox = await boris.get("/ui/outbox")
        assert "Team A only" not in outbox.text


# --- headers on every kind of response -------------------------------------------------------


async def test_static_files_and_unknown_pages_carry_the_headers_too(pair: Pair) -> None:
    async with UiClient(pair.fr) as c:
        css = await c.get("/ui/static/app.css")
        assert css.status == 200
        assert css.headers["Content-Type"].startswith("text/css")
        assert_secured(css)
        await c.sign_in(pair.fr.token)
        missing = await c.get("/ui/no/such/page")
        assert (missing.status, missing.problem) == (404, "not-found")
        assert_secured(missing)


async def test_tls_behind_a_trusted_proxy_makes_the_cookie_secure(tmp_path) -> None:
    from globe_io.httpguard import HttpLimits  # noqa: PLC0415

    net = Net(tmp_path)
    await net.start_hub()
    try:
        rn = await net.member("FR-PNF", "PNF", http=HttpLimits(trusted_proxies=("127.0.0.1/32",)))
        async with UiClient(rn) as c:
            # the proxy answers for the public name and says the browser used TLS
            form = await c.get("/ui/sign-in", Host="globe.example.org",
                               **{"X-Forwarded-Proto": "https"})  # fmt: skip
            assert form.status == 200
            signin = form.headers["Set-Cookie"]
            assert "Secure" in signin
            c.origin = "https://globe.example.org"
            answer = await c.post(
                "/ui/sign-in", {"csrf": form.csrf, "token": rn.token},
                Host="globe.example.org", Cookie=signin.split(";")[0],
                **{"X-Forwarded-Proto": "https"},
            )  # fmt: skip
            assert answer.status == 303
            cookie = next(v for v in answer.headers.getall("Set-Cookie")
                          if v.startswith("globe_session="))  # fmt: skip
            assert "Secure" in cookie
    finally:
        await net.close()

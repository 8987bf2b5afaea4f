"""Signing in to the web UI with a user name and the password set with ``globe-node users
password``, over raw HTTP against a real node: the session it opens, the one refusal for
every wrong answer, the throttle by user and address, CSRF on the form, sessions that end
when the password (or the token) changes, and the last use a page records.  The
password check itself (the same Argon2id work whether or not the user exists) is
exercised on its own.

Each refusal is asserted exactly: its status, the problem slug the page shows, its detail.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from globe_io.httpguard import HttpLimits
from globe_node.users import hash_password, rotate_token, set_password
from globe_node.webui.auth import REFUSED, SIGN_IN_TRIES, SignIns
from protocol import crypto
from tests.node.helpers import db_rows
from tests.node.network import Net, RunningNode
from tests.webui.client import Answer, UiClient
from tests.webui.conftest import Pair, user

pytestmark = pytest.mark.slow

PASSWORD = "a correct horse, battery staple"  # noqa: S105 - a test password
OTHER = "another horse, another staple"


async def password_sign_in(
    c: UiClient, name: str, password: str, *, next_: str = "", **headers: str
) -> Answer:
    """Sign in as a browser would: load the form, post the password form with its token."""
    form = await c.get("/ui/sign-in", **headers)
    data = {"csrf": form.csrf, "user": name, "password": password, "next": next_}
    return await c.post("/ui/sign-in/password", data, **headers)


async def with_password(rn: RunningNode, name: str, password: str | None = PASSWORD) -> None:
    await set_password(rn.n.sessions, name, password, now=rn.n.now(), audit=rn.n.audit, by="test")


def refused_with(answer: Answer, status: int, slug: str, detail: str) -> None:
    assert (answer.status, answer.problem) == (status, slug)
    shown = re.search(r'<p lang="en" dir="ltr">(.*?)</p>', answer.plain)
    assert shown is not None, answer.text[:500]
    assert shown.group(1) == detail


# --- signing in ------------------------------------------------------------------------------


async def test_a_password_opens_a_session_audited_with_its_method(pair: Pair) -> None:
    await with_password(pair.fr, "alice")
    async with UiClient(pair.fr) as c:
        answer = await password_sign_in(c, "alice", PASSWORD, next_="/ui/inbox")
        assert (answer.status, answer.headers["Location"]) == (303, "/ui/inbox")
        cookie = next(v for v in answer.headers.getall("Set-Cookie")
                      if v.startswith("globe_session="))  # fmt: skip
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        inbox = await c.get("/ui/inbox")
        assert inbox.status == 200
        assert "Signed in as alice" in inbox.plain
    async with UiClient(pair.fr) as c:
        assert (await c.sign_in(pair.fr.token)).status == 303  # the token still signs in
    entries, ok = await pair.fr.n.audit.entries()
    assert ok
    assert [(e["user"], e["action"], e["subject"]) for e in entries][-3:] == [
        ("test", "set-password", "alice (investigator)"),
        ("alice", "ui-sign-in", "web UI session opened (password)"),
        ("alice", "ui-sign-in", "web UI session opened (token)"),
    ]


async def test_every_wrong_answer_is_the_same_refusal(pair: Pair) -> None:
    await with_password(pair.fr, "alice")
    await user(pair.fr, "bob", "investigator")  # no password
    async with UiClient(pair.fr) as c:
        for name, password in [
            ("alice", OTHER),  # wrong password
            ("alice", PASSWORD.upper()),  # case matters
            ("nobody", PASSWORD),  # no such user
            ("bob", PASSWORD),  # a user without a password
            ("no spaces allowed", PASSWORD),  # not a user name at all
            ("alice", ""),  # nothing typed
            ("alice", PASSWORD + "x" * 300),  # longer than any password
        ]:
            answer = await password_sign_in(c, name, password)
            refused_with(answer, 401, "unauthenticated", REFUSED)
            assert f'value="{name[:64]}"' in answer.text  # the name stays in the form
            if password:
                assert password not in answer.plain  # never sent back
        assert (await c.get("/ui/inbox")).status == 303  # no session was opened


async def test_the_password_is_read_in_its_nfkc_form(pair: Pair) -> None:
    await with_password(pair.fr, "alice", "ﬁve ligatured words here")  # U+FB01
    async with UiClient(pair.fr) as c:
        assert (await password_sign_in(c, "alice", "five ligatured words here")).status == 303


async def test_tries_are_throttled_by_user_and_address(tmp_path) -> None:
    net = Net(tmp_path)
    await net.start_hub()
    try:
        # behind a trusted proxy, X-Forwarded-For names each browser's address
        fr = await net.member("FR-PNF", "PNF", http=HttpLimits(trusted_proxies=("127.0.0.1/32",)))
        await with_password(fr, "alice")
        await user(fr, "bob", "investigator")
        await with_password(fr, "bob", OTHER)
        here = {"X-Forwarded-For": "203.0.113.7"}
        async with UiClient(fr) as c:
            for _ in range(SIGN_IN_TRIES):
                wrong = await password_sign_in(c, "alice", OTHER, **here)
                refused_with(wrong, 401, "unauthenticated", REFUSED)
            # the next try is refused before the password is looked at, even the right one
            throttled = await password_sign_in(c, "alice", PASSWORD, **here)
            wait = int(throttled.headers["Retry-After"])
            assert 1 <= wait <= 60 // SIGN_IN_TRIES
            refused_with(
                throttled, 429, "rate-limited",
                f"too many sign-in attempts for this user from this address: try again in "
                f"{wait} s",
            )  # fmt: skip
            assert "Too many attempts: wait, then try again" in throttled.plain
            assert (await c.get("/ui/inbox", **here)).status == 303
            # another user from the same address, the same user from another address
            assert (await password_sign_in(c, "bob", OTHER, **here)).status == 303
        async with UiClient(fr) as elsewhere:
            there = {"X-Forwarded-For": "198.51.100.2"}
            assert (await password_sign_in(elsewhere, "alice", PASSWORD, **there)).status == 303
    finally:
        await net.close()


@pytest.mark.parametrize("forgery", ["forged-token", "no-cookie", "foreign-origin"])
async def test_the_password_form_needs_its_own_token_and_this_sites_origin(
    pair: Pair, forgery: str
) -> None:
    await with_password(pair.fr, "alice")
    async with UiClient(pair.fr) as c:
        form = await c.get("/ui/sign-in")
        data = {"csrf": form.csrf, "user": "alice", "password": PASSWORD}
        if forgery == "forged-token":
            data["csrf"] = "forged"
        elif forgery == "no-cookie":
            c.session.cookie_jar.clear()
        origin = "http://evil.example" if forgery == "foreign-origin" else "same"
        answer = await c.post("/ui/sign-in/password", data, origin=origin)
        detail = (
            "the request came from 'http://evil.example', not from this node's web UI"
            if forgery == "foreign-origin"
            else "the sign-in form expired: sign in again from this page"
        )
        refused_with(answer, 403, "csrf-rejected", detail)
        assert (await c.get("/ui/inbox")).status == 303


# --- sessions end with the credentials -------------------------------------------------------


async def test_a_new_or_cleared_password_ends_every_session_of_the_user(pair: Pair) -> None:
    fr = pair.fr
    await with_password(fr, "alice")
    bob = await user(fr, "bob", "investigator")
    async with (
        UiClient(fr) as by_password, UiClient(fr) as by_token, UiClient(fr) as other,
    ):  # fmt: skip
        assert (await password_sign_in(by_password, "alice", PASSWORD)).status == 303
        assert (await by_token.sign_in(fr.token)).status == 303
        assert (await other.sign_in(bob)).status == 303
        await with_password(fr, "alice", OTHER)
        for c in (by_password, by_token):
            gone = await c.get("/ui/requests")
            assert (gone.status, gone.headers["Location"]) == (303, "/ui/sign-in?next=/ui/requests")
        assert (await other.get("/ui/requests")).status == 200  # another user's stays
        refused_with(
            await password_sign_in(by_password, "alice", PASSWORD), 401, "unauthenticated",
            REFUSED,
        )  # fmt: skip
        assert (await password_sign_in(by_password, "alice", OTHER)).status == 303
        # a stale session met after a new sign-in ends alone, not the new one
        assert (await by_token.get("/ui/requests")).status == 303
        assert (await by_password.get("/ui/requests")).status == 200
        await with_password(fr, "alice", None)
        assert (await by_password.get("/ui/requests")).status == 303
        refused_with(
            await password_sign_in(by_password, "alice", OTHER), 401, "unauthenticated", REFUSED
        )
        assert (await by_password.sign_in(fr.token)).status == 303  # the token still works
    entries, _ = await fr.n.audit.entries()
    assert [(e["action"], e["subject"]) for e in entries if "password" in e["action"]] == [
        ("set-password", "alice (investigator)"),
        ("set-password", "alice (investigator)"),
        ("clear-password", "alice (investigator)"),
    ]


async def test_a_rotated_token_ends_a_password_session_too(pair: Pair) -> None:
    await with_password(pair.fr, "alice")
    async with UiClient(pair.fr) as c:
        assert (await password_sign_in(c, "alice", PASSWORD)).status == 303
        await rotate_token(pair.fr.n.sessions, "alice", now=pair.fr.n.now())
        assert (await c.get("/ui/requests")).status == 303
        assert (await password_sign_in(c, "alice", PASSWORD)).status == 303  # still hers


# --- last use ----------------------------------------------------------------------------------


async def test_a_page_records_the_users_last_use_as_an_api_request_does(pair: Pair) -> None:
    fr = pair.fr
    await with_password(fr, "alice")
    query = "SELECT last_used FROM users WHERE name = 'alice'"

    async def used(when: int) -> None:
        async with fr.n.sessions.begin() as s:
            change = text("UPDATE users SET last_used = :when WHERE name = 'alice'")
            await s.execute(change, {"when": when})

    await used(1000)  # long ago
    before = fr.n.now()
    async with UiClient(fr) as c:
        assert (await password_sign_in(c, "alice", PASSWORD)).status == 303
        (signed_in,) = db_rows(fr.config.db_path, query)[0]
        assert before <= signed_in <= fr.n.now()
        await used(1000)
        assert (await c.get("/ui/requests")).status == 200
        (paged,) = db_rows(fr.config.db_path, query)[0]
        assert before <= paged <= fr.n.now()
        await used(paged - 30)  # within the minute: no write
        assert (await c.get("/ui/requests")).status == 200
        assert db_rows(fr.config.db_path, query) == [(paged - 30,)]


# --- the check on its own --------------------------------------------------------------------


async def test_the_same_argon2id_work_whether_or_not_there_is_a_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    checked: list[str] = []
    verify = crypto.password_verify

    def counted(password: bytes, encoded: str) -> bool:
        checked.append(encoded)
        return verify(password, encoded)

    monkeypatch.setattr(crypto, "password_verify", counted)
    sign_ins = SignIns(lambda: 0)
    stored = hash_password(PASSWORD.encode())
    assert await sign_ins.check(stored, PASSWORD) is True
    assert await sign_ins.check(stored, OTHER) is False
    assert await sign_ins.check(None, PASSWORD) is False
    stand_in = checked[-1]
    assert stand_in != stored
    # the stand-in costs what a real hash costs
    assert stand_in.split("$")[:4] == stored.split("$")[:4] == ["", "argon2id", "v=19",
                                                                  "m=65536,t=2,p=1"]  # fmt: skip
    assert await sign_ins.check(None, "") is False
    # a hash edited by hand is refused after the stand-in's work, and said in the log
    assert await sign_ins.check("$argon2id$garbage", PASSWORD) is False
    assert checked[-2:] == ["$argon2id$garbage", stand_in]
    assert "a stored web UI password hash is unusable: not an Argon2id password hash" in caplog.text
    assert len(checked) == 6

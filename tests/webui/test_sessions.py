"""Sign-in sessions on their own (a clock the test moves) and the language file:
idle timeout, absolute lifetime, the cap, sign-out of one and of all, tokens compared
exactly; preferences kept across restarts, a broken file ignored."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from globe_io.webui.sessions import SessionStore
from globe_node.webui.prefs import Preferences


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def store(clock: Clock, **kw: int) -> SessionStore:
    counter = iter(range(1_000_000))
    return SessionStore(clock=clock, idle=600, lifetime=3600, secret=lambda: f"s{next(counter)}",
                        **kw)  # fmt: skip


def test_a_session_is_found_by_its_cookie_and_kept_only_as_a_hash(clock: Clock) -> None:
    sessions = store(clock)
    cookie, session = sessions.open("alice", b"h" * 32)
    assert (cookie, session.csrf) == ("s0", "s1")
    assert sessions.find(cookie) is session
    assert list(sessions._open) == [hashlib.sha256(b"s0").digest()]
    assert sessions.find("s1") is None
    assert sessions.find(None) is None
    assert sessions.find("") is None


def test_a_session_ends_when_idle_and_at_its_lifetime(clock: Clock) -> None:
    sessions = store(clock)
    idle, _ = sessions.open("alice", b"h")
    busy, _ = sessions.open("alice", b"h")
    for _ in range(5):  # busy: seen every 599 s
        clock.now += 599
        assert sessions.find(busy) is not None
    assert sessions.find(idle) is None  # 2995 s without a request
    assert len(sessions) == 1
    clock.now += 599  # 3594 s after sign-in: still alive
    assert sessions.find(busy) is not None
    clock.now += 6  # 3600 s: the lifetime, however busy
    assert sessions.find(busy) is None
    assert len(sessions) == 0


def test_opening_past_the_cap_ends_the_least_recently_seen(clock: Clock) -> None:
    sessions = store(clock, limit=2)
    first, _ = sessions.open("a", b"h")
    clock.now += 1
    second, _ = sessions.open("b", b"h")
    clock.now += 1
    assert sessions.find(first) is not None  # seen after the second
    third, _ = sessions.open("c", b"h")
    assert [sessions.find(c) is not None for c in (first, second, third)] == [True, False, True]


def test_opening_sweeps_expired_sessions(clock: Clock) -> None:
    sessions = store(clock)
    sessions.open("a", b"h")
    clock.now += 600
    sessions.open("b", b"h")
    assert len(sessions) == 1


def test_sign_out_of_one_and_of_every_session_of_a_user(clock: Clock) -> None:
    sessions = store(clock)
    a1, _ = sessions.open("alice", b"h")
    a2, _ = sessions.open("alice", b"h")
    b1, _ = sessions.open("bob", b"h")
    assert sessions.of_user("alice") == 2
    sessions.close(a1)
    sessions.close(None)
    sessions.close("unknown")
    assert sessions.of_user("alice") == 1
    assert sessions.close_user("alice") == 1
    assert sessions.find(a2) is None
    assert sessions.find(b1) is not None
    assert sessions.close_user("alice") == 0


def test_the_form_token_must_be_exactly_the_sessions(clock: Clock) -> None:
    _, session = store(clock).open("alice", b"h")
    assert session.accepts(session.csrf)
    assert not session.accepts(session.csrf + "x")
    assert not session.accepts("")
    assert not session.accepts(None)


def test_languages_are_kept_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "webui.json"
    prefs = Preferences(path)
    assert prefs.language("alice") is None
    prefs.set_language("alice", "ar")
    prefs.set_language("bob", "es")
    assert json.loads(path.read_text()) == {"languages": {"alice": "ar", "bob": "es"}}
    assert path.stat().st_mode & 0o777 == 0o600
    assert Preferences(path).language("alice") == "ar"
    with pytest.raises(ValueError, match="not a UI language: 'de'"):
        prefs.set_language("alice", "de")


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"{not json", {}),
        (b'{"other": 1}', {}),
        (b'{"languages": ["ar"]}', {}),
        (b'{"languages": {"alice": "de", "bob": "fr"}}', {"bob": "fr"}),
    ],
    ids=["malformed", "no-languages", "not-a-table", "unknown-language"],
)
def test_a_broken_preferences_file_loses_preferences_not_pages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, kept: dict[str, str]
) -> None:
    path = tmp_path / "webui.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, "globe.node.webui"):
        prefs = Preferences(path)
    assert {u: prefs.language(u) for u in ("alice", "bob") if prefs.language(u)} == kept
    assert bool(caplog.records) is (not kept)


def test_the_dashboard_groups_open_requests_by_what_they_wait_for() -> None:
    from globe_node.webui.dashboard import groups  # noqa: PLC0415

    def row(
        name: str, direction: str, *, overdue: bool = False, soon: bool = False
    ) -> dict[str, object]:
        return {"message": name, "direction": direction, "overdue": overdue, "due_soon": soon}

    rows = [
        row("late-in", "in", overdue=True),
        row("soon-out", "out", soon=True),
        row("mine", "in"),
        row("theirs", "out"),
        row("late-out", "out", overdue=True),
    ]
    got = {k: [r["message"] for r in v] for k, v in groups(rows).items()}
    assert got == {"overdue": ["late-in", "late-out"], "due_soon": ["soon-out"],
                   "mine": ["mine"], "theirs": ["theirs"]}  # fmt: skip


async def test_the_bridge_refuses_a_route_the_role_does_not_hold() -> None:
    from globe_node.errors import Forbidden  # noqa: PLC0415
    from globe_node.roles import Role  # noqa: PLC0415
    from globe_node.users import Principal  # noqa: PLC0415
    from globe_node.webui.bridge import LocalApi  # noqa: PLC0415

    # the role check comes before anything reads the request: none is needed here
    api = LocalApi(None, Principal("alice", Role.INVESTIGATOR))  # type: ignore[arg-type]
    assert api.may("GET", "/api/inbox")
    assert not api.may("POST", "/api/keys/rotate")
    with pytest.raises(Forbidden, match="the investigator role may not do this"):
        await api.json("POST", "/api/keys/rotate")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", {"127.0.0.1:8450", "localhost:8450", "[::1]:8450"}),
        ("::1", {"[::1]:8450", "127.0.0.1:8450", "localhost:8450"}),
        ("Node.Example", {"node.example:8450", "127.0.0.1:8450", "localhost:8450",
                          "[::1]:8450"}),
        ("0.0.0.0", {"*"}),  # noqa: S104 - a configured host, not a bind
        ("::", {"*"}),
    ],
)  # fmt: skip
def test_the_host_names_the_ui_answers_to(host: str, expected: set[str]) -> None:
    from globe_io.webui.site import listener_hosts  # noqa: PLC0415

    assert listener_hosts(host, 8450) == expected

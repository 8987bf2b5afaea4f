"""``globe-node users password NAME``: a web UI password set from a file or asked twice on
a terminal (never from the command line), stored as an Argon2id hash only, cleared with
``--clear``, audited; and each refusal one line with exit status 1 (2 for a wrong command
line), the password never in what the command prints."""

from __future__ import annotations

import getpass as getpass_module
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol import crypto
from tests.node.helpers import Ran, db_rows, refused, usage

PASSWORD = "a correct horse, battery staple"  # noqa: S105 - a test password
HASH = "SELECT password_hash FROM users WHERE name = 'alice'"


@pytest.fixture
def alice(node: Path, run: Callable[..., Ran]) -> Path:
    """The node directory, with an investigator ``alice``."""
    assert run("users", "add", "alice", "--role", "investigator", "--dir", node).code == 0
    return node


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """A terminal: ``(asked, answers)`` — the prompts shown, the answers to give."""
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    asked: list[str] = []
    answers: list[str] = []

    def getpass(prompt: str) -> str:
        asked.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr(getpass_module, "getpass", getpass)
    return asked, answers


def audit_of(node: Path) -> list[tuple[str, str]]:
    rows = db_rows(node / "node.db", "SELECT action, subject FROM audit ORDER BY seq")
    return [r for r in rows if "password" in r[0]]


def secret_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "password.txt"
    path.write_bytes(content)
    return path


def test_a_password_from_a_file_is_stored_hashed_and_audited(
    alice: Path, run: Callable[..., Ran], tmp_path: Path
) -> None:
    path = secret_file(tmp_path, PASSWORD.encode() + b"\r\n")
    ran = run("users", "password", "alice", "--password-file", path, "--dir", alice)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == (
        "web UI password of user alice (investigator) set; its web UI sessions end at their "
        "next page\n"
    )
    [(stored,)] = db_rows(alice / "node.db", HASH)
    assert stored.startswith("$argon2id$v=19$m=65536,t=2,p=1$")
    assert crypto.password_verify(PASSWORD.encode(), stored)
    assert audit_of(alice) == [("set-password", "alice (investigator)")]
    data = run("users", "password", "alice", "--password-file", path, "--dir", alice,
               "--json").json()  # fmt: skip
    assert data == {"name": "alice", "role": "investigator", "password": "set"}
    [(again,)] = db_rows(alice / "node.db", HASH)
    assert again != stored  # a new salt each time


def test_clear_removes_the_password(alice: Path, run: Callable[..., Ran], tmp_path: Path) -> None:
    path = secret_file(tmp_path, PASSWORD.encode())
    assert run("users", "password", "alice", "--password-file", path, "--dir", alice).code == 0
    ran = run("users", "password", "alice", "--clear", "--dir", alice)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.startswith("web UI password of user alice (investigator) cleared;")
    assert db_rows(alice / "node.db", HASH) == [(None,)]
    assert audit_of(alice) == [
        ("set-password", "alice (investigator)"), ("clear-password", "alice (investigator)")
    ]  # fmt: skip
    usage(
        run("users", "password", "alice", "--clear", "--password-file", path, "--dir", alice),
        "--clear takes no --password-file",
    )


def test_on_a_terminal_it_is_asked_twice_and_never_echoed(
    alice: Path, run: Callable[..., Ran], prompts: tuple[list[str], list[str]]
) -> None:
    asked, answers = prompts
    answers[:] = [PASSWORD, PASSWORD + "!"]
    refused(run("users", "password", "alice", "--dir", alice), "the two passwords differ")
    assert asked == [
        "New web UI password for alice (15+ characters): ", "Repeat the password: "
    ]  # fmt: skip
    answers[:] = ["too short", "too short"]
    refused(run("users", "password", "alice", "--dir", alice), "a password is 15 to 256 characters")
    answers[:] = [PASSWORD, PASSWORD]
    ran = run("users", "password", "alice", "--dir", alice)
    assert (ran.code, ran.err) == (0, "")
    assert PASSWORD not in ran.out
    [(stored,)] = db_rows(alice / "node.db", HASH)
    assert crypto.password_verify(PASSWORD.encode(), stored)
    assert audit_of(alice) == [("set-password", "alice (investigator)")]  # refusals change nothing


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"short\n", "a password is 15 to 256 characters"),
        (b"x" * 257, "a password is 15 to 256 characters"),
        (b"\n", "a password is 15 to 256 characters"),
        (b"fifteen chars\tand a tab", "a password holds no control characters (line breaks, tabs)"),
        (b"\xff\xfe not utf-8 at all, really", "password file {path} is not UTF-8 text"),
    ],
    ids=["short", "long", "empty", "control", "not-utf8"],
)
def test_a_password_file_that_will_not_do_is_refused(
    alice: Path, run: Callable[..., Ran], tmp_path: Path, content: bytes, detail: str
) -> None:
    path = secret_file(tmp_path, content)
    ran = run("users", "password", "alice", "--password-file", path, "--dir", alice)
    refused(ran, detail.format(path=path))
    assert db_rows(alice / "node.db", HASH) == [(None,)]
    assert audit_of(alice) == []


def test_refusals_before_any_password_is_asked(
    alice: Path,
    run: Callable[..., Ran],
    tmp_path: Path,
    prompts: tuple[list[str], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked, _ = prompts
    refused(run("users", "password", "bob", "--dir", alice), "no user 'bob'")
    refused(
        run("users", "password", "no spaces", "--dir", alice),
        "user name 'no spaces': 1-64 of letters, digits and . _ @ - (starting alphanumeric)",
    )
    missing = tmp_path / "missing.txt"
    refused(
        run("users", "password", "alice", "--password-file", missing, "--dir", alice),
        f"cannot read password file {missing}: No such file or directory",
    )
    assert asked == []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    refused(
        run("users", "password", "alice", "--dir", alice),
        "no password: pass --password-file FILE (or run on a terminal to be asked)",
    )
    (alice / "node.db").unlink()
    refused(
        run("users", "password", "alice", "--dir", alice),
        f"{alice / 'node.db'} not found: run 'globe-node init' first",
    )


def test_the_password_never_comes_from_the_command_line(
    alice: Path, run: Callable[..., Ran]
) -> None:
    usage(
        run("users", "password", "alice", PASSWORD, "--dir", alice),
        f"Got unexpected extra argument ({PASSWORD})",
    )
    usage(
        run("users", "password", "alice", "--password", PASSWORD, "--dir", alice),
        "No such option '--password'. Did you mean '--password-file'?",
    )

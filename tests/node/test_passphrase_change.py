"""``globe-node passphrase change``: the same keys sealed under a new passphrase.

* The file is replaced atomically: the command killed (SIGKILL) at every step of the
  write leaves a key file that exactly one of the two passphrases opens, holding the
  same keys; the steps before the rename leave the old, those after it the new.
* Refusals (a wrong old passphrase, a short, empty, unreadable or unchanged new one,
  no way to ask, another change at the same time) are one line and change nothing.
* The change is audited, may run beside a running daemon (which keeps its keys), and
  the daemon's next start needs the new passphrase.
"""

from __future__ import annotations

import asyncio
import getpass as getpass_module
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest

from globe_node.keys import key_file_lock, load_keys
from protocol.errors import DecryptionFailed
from tests.node.helpers import CLI_PASSPHRASE, Ran, db_rows, refused
from tests.node.network import PASSPHRASE, Net

ACTOR = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
NEW: Final = "a new and longer passphrase"
ROOT: Final = Path(__file__).resolve().parents[2]

#: The real command in a child process whose file operations, once the key file's write
#: begins (``globe_node.keys.write_atomic``), are counted; at number ``argv[1]`` (the
#: write's return counting as one) the process sends itself SIGKILL.
KILL_AT_STEP: Final = r"""
import os, signal, sys
import globe_node.keys as keys
from globe_node.cli import main

stop_at, seen, armed = int(sys.argv[1]), [], [False]

def step(name):
    if armed[0]:
        seen.append(name)
        if len(seen) == stop_at:
            sys.stderr.write(f"killed before {name}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

def hooked(name, real):
    def call(*args, **kwargs):
        step(name)
        return real(*args, **kwargs)
    return call

for name in ("open", "fchmod", "fsync", "replace", "link", "close", "unlink"):
    setattr(os, name, hooked(name, getattr(os, name)))

write_atomic = keys.write_atomic

def counted(*args, **kwargs):
    armed[0] = True
    write_atomic(*args, **kwargs)
    step("return")
    armed[0] = False

keys.write_atomic = counted
sys.exit(main(sys.argv[2:]))
"""


def opens(path: Path, passphrase: str) -> bytes | None:
    """The encoded keys if ``passphrase`` opens the key file, else None."""
    try:
        return load_keys(path, passphrase.encode()).encode()
    except DecryptionFailed:
        return None


def new_file(tmp_path: Path, value: str = NEW, name: str = "new.pass") -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    return path


def change_args(node: Path, *extra: str | Path) -> list[str | Path]:
    return ["passphrase", "change", "--dir", node, "--kdf", "interactive", *extra]


@pytest.mark.slow
def test_killed_at_every_step_the_key_file_opens_with_exactly_one_passphrase(
    node: Path, tmp_path: Path
) -> None:
    key_file = node / "keys.sealed"
    original = key_file.read_bytes()
    keys = opens(key_file, CLI_PASSPHRASE)
    assert keys is not None
    env = {**os.environ, "GLOBE_PASSPHRASE": CLI_PASSPHRASE}
    args = [str(a) for a in change_args(node, "--new-passphrase-file", new_file(tmp_path))]
    steps: list[str] = []
    outcome: list[str] = []
    for stop_at in range(1, 40):
        key_file.write_bytes(original)  # each run starts from the old file
        ran = subprocess.run(
            [sys.executable, "-c", KILL_AT_STEP, str(stop_at), *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if ran.returncode == 0:
            break
        assert ran.returncode == -signal.SIGKILL, ran.stderr
        steps.append(ran.stderr.removeprefix("killed before ").strip())
        old, new = opens(key_file, CLI_PASSPHRASE), opens(key_file, NEW)
        assert (old is None) != (new is None), (steps[-1], old, new)
        assert (old or new) == keys
        outcome.append("old" if old is not None else "new")
    else:
        pytest.fail("the command never finished")
    # every step of the write was reached; before the rename the old file, after it the new
    assert steps[-1] == "return"
    assert steps.count("replace") == 1
    renamed = steps.index("replace") + 1
    assert outcome == ["old"] * renamed + ["new"] * (len(steps) - renamed)
    # the run that finished: the new passphrase, the same keys, no temporary file left
    # by the killed runs, one audit row
    assert (opens(key_file, CLI_PASSPHRASE), opens(key_file, NEW)) == (None, keys)
    assert sorted(p.name for p in node.iterdir() if p.name.startswith(".")) == []
    assert db_rows(node / "node.db", "SELECT user, action, subject FROM audit") == [
        (ACTOR, "change-passphrase", "keys.sealed")
    ]


def test_change_keeps_the_keys_and_is_audited(
    node: Path, tmp_path: Path, run: Callable[..., Ran]
) -> None:
    key_file = node / "keys.sealed"
    keys = opens(key_file, CLI_PASSPHRASE)
    ran = run(*change_args(node, "--new-passphrase-file", new_file(tmp_path)))
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        f"{key_file} is now sealed with the new passphrase (Argon2id interactive)",
        "a running daemon keeps its keys; its next start needs the new passphrase: update the"
        " passphrase file or systemd credential it starts with",
        "backups made before this change still need the old passphrase",
    ]
    assert (opens(key_file, CLI_PASSPHRASE), opens(key_file, NEW)) == (None, keys)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert db_rows(node / "node.db", "SELECT user, action, subject FROM audit") == [
        (ACTOR, "change-passphrase", "keys.sealed")
    ]
    # and back, the old passphrase now read from a file, the new one from GLOBE_PASSPHRASE's
    # place never: --json
    old_file = tmp_path / "old.pass"
    old_file.write_text(NEW + "\n")
    back = new_file(tmp_path, CLI_PASSPHRASE, "back.pass")
    data = run(*change_args(node, "--passphrase-file", old_file, "--new-passphrase-file", back,
                            "--json")).json()  # fmt: skip
    assert data == {"key_file": str(key_file.absolute()), "kdf": "interactive"}
    assert (opens(key_file, CLI_PASSPHRASE), opens(key_file, NEW)) == (keys, None)


def test_refusals_change_nothing(
    node: Path, tmp_path: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = node / "keys.sealed"
    before = key_file.read_bytes()
    missing = tmp_path / "missing.pass"
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    for args, detail in [
        (("--new-passphrase-file", new_file(tmp_path, "short", "short.pass")),
         "the passphrase for the node keys needs at least 8 characters"),
        (("--new-passphrase-file", new_file(tmp_path, CLI_PASSPHRASE, "same.pass")),
         "the new passphrase is the old one; nothing was changed"),
        (("--new-passphrase-file", missing),
         f"cannot read passphrase file {missing}: No such file or directory"),
        (("--new-passphrase-file", new_file(tmp_path, "", "empty.pass")),
         f"passphrase file {tmp_path / 'empty.pass'} is empty"),
        ((), "no new passphrase for the node keys: pass --new-passphrase-file FILE (or run on a"
             " terminal to be asked)"),
    ]:  # fmt: skip
        refused(run(*change_args(node, *args)), detail)
    monkeypatch.setenv("GLOBE_PASSPHRASE", "not the passphrase")
    refused(
        run(*change_args(node, "--new-passphrase-file", new_file(tmp_path))),
        f"{key_file}: wrong passphrase, or the key file was altered",
    )
    monkeypatch.setenv("GLOBE_PASSPHRASE", CLI_PASSPHRASE)
    with key_file_lock(key_file):
        refused(
            run(*change_args(node, "--new-passphrase-file", new_file(tmp_path))),
            f"{key_file}: another command (a passphrase change or a key update) is writing it;"
            " wait for it to finish",
        )
    assert key_file.read_bytes() == before
    assert db_rows(node / "node.db", "SELECT action FROM audit") == []


def test_the_new_passphrase_is_asked_twice_on_a_terminal(
    node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = node / "keys.sealed"
    keys = opens(key_file, CLI_PASSPHRASE)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers: list[str] = []
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr(getpass_module, "getpass", getpass)
    answers[:] = [NEW, NEW + "x"]
    refused(run(*change_args(node)), "the two new passphrases differ")
    assert prompts == ["New passphrase for the node keys: ", "Repeat the new passphrase: "]
    answers[:] = ["", ""]
    refused(run(*change_args(node)), "an empty passphrase cannot protect the node keys")
    answers[:] = ["short", "short"]
    refused(run(*change_args(node)), "the passphrase for the node keys needs at least 8 characters")
    assert opens(key_file, CLI_PASSPHRASE) == keys
    answers[:] = [NEW, NEW]
    assert run(*change_args(node)).code == 0
    assert answers == []
    assert (opens(key_file, CLI_PASSPHRASE), opens(key_file, NEW)) == (None, keys)


@pytest.mark.slow
async def test_a_running_daemon_keeps_its_keys_and_its_next_start_needs_the_new_passphrase(
    net: Net, tmp_path: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    monkeypatch.setenv("GLOBE_PASSPHRASE", PASSPHRASE.decode())
    args = change_args(fr.config.directory, "--new-passphrase-file", new_file(tmp_path))
    ran = await asyncio.to_thread(run, *args)
    assert (ran.code, ran.err) == (0, ""), ran.err
    assert (await fr.api("GET", "/api/status"))[0] == 200
    assert opens(fr.config.key_path, NEW) == fr.keys.encode() == fr.n.ctx.keys.encode()
    await net.stop_node(fr)
    with pytest.raises(DecryptionFailed):
        await net.start_node(fr)  # the tests' daemons start with the old passphrase

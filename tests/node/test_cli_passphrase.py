"""The passphrase of the node keys: from ``--passphrase-file``, GLOBE_PASSPHRASE or a
prompt on a terminal (twice, when keys are made); too short, empty, unreadable or
wrong, it is refused in one line -- as is a key file that is missing or damaged."""

from __future__ import annotations

import getpass as getpass_module
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from globe_node.keys import load_keys
from tests.node.helpers import Ran, init_args, refused


def test_init_passphrase_rules(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBE_PASSPHRASE", "short")
    refused(
        run(*init_args(tmp_path / "n", genesis_file)),
        "the passphrase for the node keys needs at least 8 characters",
    )
    monkeypatch.delenv("GLOBE_PASSPHRASE")
    refused(
        run(*init_args(tmp_path / "n", genesis_file)),
        "no passphrase for the node keys: pass --passphrase-file FILE or set GLOBE_PASSPHRASE",
    )
    assert not (tmp_path / "n").exists()
    pw = tmp_path / "pw"
    pw.write_text("another good passphrase\n")
    ran = run(*init_args(tmp_path / "n", genesis_file), "--passphrase-file", pw)
    assert ran.code == 0, ran.err
    load_keys(tmp_path / "n" / "keys.sealed", b"another good passphrase")


def test_passphrase_prompt_on_a_terminal(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLOBE_PASSPHRASE")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers: list[str] = []
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr(getpass_module, "getpass", getpass)
    answers[:] = ["first passphrase", "second passphrase"]
    refused(run(*init_args(tmp_path / "n", genesis_file)), "the two passphrases differ")
    assert prompts == ["Passphrase for the node keys: ", "Repeat the passphrase: "]
    assert not (tmp_path / "n").exists()
    answers[:] = ["", ""]
    refused(
        run(*init_args(tmp_path / "n", genesis_file)),
        "an empty passphrase cannot protect the node keys",
    )
    answers[:] = ["a long enough one", "a long enough one"]
    assert run(*init_args(tmp_path / "n", genesis_file)).code == 0
    assert answers == []
    load_keys(tmp_path / "n" / "keys.sealed", b"a long enough one")


def test_an_unreadable_or_empty_passphrase_file_is_refused(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    missing = tmp_path / "missing.pw"
    refused(
        run("run", "--dir", node, "--passphrase-file", missing),
        f"cannot read passphrase file {missing}: No such file or directory",
    )
    empty = tmp_path / "empty.pw"
    empty.write_text("\n")
    refused(
        run("run", "--dir", node, "--passphrase-file", empty),
        f"passphrase file {empty} is empty",
    )
    refused(
        run("run", "--dir", node, "--passphrase-file", tmp_path),
        f"cannot read passphrase file {tmp_path}: Is a directory",
    )


@pytest.mark.parametrize("command", [["run"], ["apply"]])
def test_wrong_passphrase_is_one_line(
    node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("GLOBE_PASSPHRASE", "not the passphrase")
    refused(
        run(*command, "--dir", node),
        f"{node / 'keys.sealed'}: wrong passphrase, or the key file was altered",
    )


def test_a_missing_or_damaged_key_file_is_refused(node: Path, run: Callable[..., Ran]) -> None:
    keys = node / "keys.sealed"
    keys.write_bytes(b"garbage")
    refused(
        run("run", "--dir", node),
        f"{keys}: not a valid node key file (key file: not valid UTF-8 JSON)",
    )
    keys.unlink()
    refused(run("run", "--dir", node), f"{keys} not found: not a node directory")

"""What every ``globe-node`` command shares: help without a command, the version, exit
status 2 for a wrong command line, 1 and one line on stderr for a refusal or an
unexpected error (a traceback only with GLOBE_DEBUG), 130 for an interrupt, the node
directory from ``--dir`` or GLOBE_NODE_DIR, and ``--`` ending the options."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import pytest

import globe_io.cli
import globe_io.cli.app
from globe_io.errors import CommandError
from globe_node.cli import main
from globe_node.cli import users as users_cli
from globe_node.config import load_config
from protocol.errors import GlobeError
from tests.node.helpers import Ran, init_args, refused


def test_no_command_prints_the_help(run: Callable[..., Ran]) -> None:
    ran = run()
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.startswith("usage: globe-node [OPTIONS] [COMMAND] [ARGS]...")
    ran = run("users")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.startswith("usage: globe-node users [OPTIONS] [COMMAND] [ARGS]...")


def test_version_without_an_installed_distribution(
    run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(_name: str) -> str:
        raise PackageNotFoundError(_name)

    monkeypatch.setattr(globe_io.cli.app, "version", missing)
    ran = run("--version")
    assert (ran.code, ran.out, ran.err) == (0, "globe-node unknown\n", "")


def test_usage_errors_exit_2(tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]) -> None:
    args = init_args(tmp_path / "n", genesis_file)
    i = args.index("--kind")
    del args[i : i + 4]
    ran = run(*args)
    assert ran.code == 2
    assert "the following arguments are required: --kind" in ran.err
    assert run("users", "add", "x", "--role", "admin", "--dir", tmp_path).code == 2
    assert run("inbox", "--limit", "0").code == 2


def test_interrupt_exits_130(run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(users_cli, "load_config", interrupted)
    ran = run("users", "list")
    assert (ran.code, ran.err) == (130, "globe-node: interrupted\n")


def test_unexpected_errors_are_one_line_unless_debugging(
    run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_args: object) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(users_cli, "load_config", broken)
    refused(
        run("users", "list"),
        "unexpected RuntimeError: something?broke (set GLOBE_DEBUG=1 for details)",
    )
    monkeypatch.setenv("GLOBE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="something"):
        main(["users", "list"])

    def oserror(_args: object) -> None:
        raise OSError("no space left")

    monkeypatch.delenv("GLOBE_DEBUG")
    monkeypatch.setattr(users_cli, "load_config", oserror)
    refused(run("users", "list"), "no space left")


def test_one_line_os_errors() -> None:
    assert globe_io.cli.os_error(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "/x: No such file or directory"
    )
    assert globe_io.cli.os_error(OSError()) == "OSError"
    assert isinstance(CommandError("x"), GlobeError)


def test_missing_node_directory(tmp_path: Path, run: Callable[..., Ran]) -> None:
    missing = tmp_path / "nowhere"
    ran = run("users", "list", "--dir", missing)
    refused(ran, f"{missing / 'node.toml'} not found: run 'globe-node init --dir {missing}'")


def test_dir_defaults_to_the_environment(
    node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBE_NODE_DIR", str(node))
    assert [u["name"] for u in run("users", "list", "--json").json()["users"]] == ["operator"]


def test_double_dash_ends_the_options(node: Path, run: Callable[..., Ran]) -> None:
    port = load_config(node).api_port
    ran = run("show", "--dir", node, "--", "--body")
    refused(
        ran,
        f"the node daemon is not running at http://127.0.0.1:{port}: start it with "
        "'globe-node run'",
    )


def test_a_non_string_host_in_the_configuration_is_a_clear_error(
    node: Path, run: Callable[..., Ran]
) -> None:
    text = (node / "node.toml").read_text().replace('api_host = "127.0.0.1"', "api_host = 5")
    (node / "node.toml").write_text(text)
    refused(run("status", "--dir", node), f"{node / 'node.toml'}: api_host must be a string")

"""tests.support.cli: command lines as subprocesses."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import SCRUBBED, CliResult, cli_env, run_cli, run_cli_async


def test_run_cli_captures_the_exit_status_and_both_streams() -> None:
    ran = run_cli("json.tool", stdin='{"b": 1, "a": [2]}')
    assert ran == CliResult(0, json.dumps({"b": 1, "a": [2]}, indent=4) + "\n", "")
    assert ran.json() == {"b": 1, "a": [2]}
    bad = run_cli("json.tool", stdin="{not json")
    assert bad.code == 1
    assert bad.out == ""
    assert bad.err.startswith("Expecting property name enclosed in double quotes")


async def test_run_cli_async_does_the_same_without_blocking() -> None:
    assert await run_cli_async("json.tool", stdin="[1]") == CliResult(0, "[\n    1\n]\n", "")
    ran = await run_cli_async("json.tool", "--no-such-option")
    assert ran.code == 2
    assert "unrecognized arguments: --no-such-option" in ran.err


def test_a_command_that_does_not_finish_fails_the_test(tmp_path) -> None:
    with pytest.raises(AssertionError, match=r"still running after 0\.5 s"):
        run_cli("http.server", "0", "--bind", "127.0.0.1", "--directory", str(tmp_path),
                timeout=0.5)  # fmt: skip


async def test_an_async_command_that_does_not_finish_fails_the_test(tmp_path) -> None:
    with pytest.raises(AssertionError, match=r"still running after 0\.5 s"):
        await run_cli_async(
            "http.server", "0", "--bind", "127.0.0.1", "--directory", str(tmp_path), timeout=0.5
        )


def test_the_environment_drops_the_passphrase_variables(monkeypatch) -> None:
    for name in SCRUBBED:
        monkeypatch.setenv(name, "leaked")
    monkeypatch.setenv("GLOBE_TEST_KEPT", "kept")
    env = cli_env({"GLOBE_DEBUG": "1"})
    assert not (SCRUBBED - {"GLOBE_DEBUG"}) & env.keys()
    assert env["GLOBE_DEBUG"] == "1"  # what the test passes explicitly is kept
    assert env["GLOBE_TEST_KEPT"] == "kept"


def test_json_refuses_a_failed_command() -> None:
    with pytest.raises(AssertionError):
        CliResult(1, "{}", "").json()
    with pytest.raises(AssertionError):
        CliResult(0, "{}", "warning\n").json()

"""Smoke tests for the ``globe-hub``, ``globe-node`` and ``globe-admin`` command lines, and
the behaviour of the scaffold they share (:mod:`globe_io.cli`): options of several values,
exit statuses, one-line refusals and usage errors."""

import json
import subprocess
import sys
from collections.abc import Callable

import click
import pytest

import globe_admin.cli
import globe_node.cli
import hub.cli
from globe_io import cli
from globe_io.errors import CommandError

PROGRAMS = [
    (hub.cli.main, "globe-hub"),
    (globe_node.cli.main, "globe-node"),
    (globe_admin.cli.main, "globe-admin"),
]


@pytest.mark.parametrize(("main", "prog"), PROGRAMS)
def test_help_exits_zero_and_names_program(
    main: Callable[[list[str] | None], int], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog} [OPTIONS] [COMMAND] [ARGS]...\n")


@pytest.mark.parametrize(
    ("module", "prog"),
    [("hub", "globe-hub"), ("globe_node", "globe-node"), ("globe_admin", "globe-admin")],
)
def test_version_via_python_m(module: str, prog: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{prog} 0.1.0"


@pytest.mark.parametrize(("main", "prog"), PROGRAMS)
def test_no_arguments_prints_help_and_succeeds(
    main: Callable[[list[str] | None], int], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog} [OPTIONS] [COMMAND] [ARGS]...\n")


def test_the_hub_has_no_admin_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """The admin commands moved to ``globe-admin``: no alias is left in ``globe-hub``."""
    assert hub.cli.main(["admin", "keygen", "--out", "x.key"]) == 2
    assert capsys.readouterr().err.endswith("globe-hub: error: No such command 'admin'.\n")


# --- the scaffold they share (globe_io.cli), on a program made for the test ---------------------

probe = cli.program("probe", description="A program to test the scaffold with.")


@cli.command("echo")
@cli.many("--to")
@click.option("--note")
@click.option("--wait", type=cli.Seconds(), is_flag=False, flag_value=600.0, default=None)
@click.option("--flag", is_flag=True)
@click.option("--port", type=cli.PORT)
@click.argument("rest", nargs=-1)
def echo(
    *,
    to: tuple[str, ...],
    note: str | None,
    wait: float | None,
    flag: bool,
    port: int | None,
    rest: tuple[str, ...],
) -> cli.Result:
    """Answer what it was given."""
    data = {"to": list(to), "note": note, "wait": wait, "flag": flag, "rest": list(rest)}
    return data | {"port": port}, [f"to={','.join(to)}"]


FAILURES: dict[str, BaseException] = {
    "refusal": CommandError("a\nb\u202ec"),
    "os": PermissionError(13, "Permission denied", "/srv/x"),
    "interrupt": KeyboardInterrupt(),
    "bug": RuntimeError("boom"),
    "partial": cli.RefusedWithOutput("altered", ({"entries": [1]}, ["entry 1"])),
}


@cli.command("fail")
@click.argument("what", type=click.Choice(sorted(FAILURES)))
def fail(*, what: str) -> cli.Result:
    """Fail in the way asked."""
    raise FAILURES[what]


@cli.command("status")
@click.argument("code", type=int)
def status(*, code: int) -> int:
    """Exit with ``code`` and print nothing."""
    return code


for _command in (echo, fail, status):
    probe.add_command(_command)


def run_probe(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.run(probe, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--to", "A", "B"], (["A", "B"], None, None, [])),
        (["--to", "A", "--to", "B", "C"], (["A", "B", "C"], None, None, [])),
        (["--to", "A", "B", "--note", "-x", "C"], (["A", "B"], "-x", None, ["C"])),
        (["--to", "A", "--flag", "B"], (["A"], None, None, ["B"])),
        (["--wait", "--to", "A", "B"], (["A", "B"], None, 600.0, [])),
        (["--wait", "30", "--to", "A"], (["A"], None, 30.0, [])),
        (["--to", "A", "--", "B", "--to"], (["A"], None, None, ["B", "--to"])),
        (["--note", "--see below", "--to", "-A", "B"], (["-A", "B"], "--see below", None, [])),
        (["--note", "--to"], ([], "--to", None, [])),
    ],
)
def test_options_of_several_values(
    args: list[str], expected: tuple[object, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_probe("--json", "echo", *args, capsys=capsys)
    assert (code, err) == (0, "")
    got = json.loads(out)
    assert (got["to"], got["note"], got["wait"], got["rest"]) == expected


@pytest.mark.parametrize(
    ("what", "code", "out", "err"),
    [
        ("refusal", 1, "", "probe: error: a?b?c\n"),
        ("os", 1, "", "probe: error: /srv/x: Permission denied\n"),
        ("interrupt", 130, "", "probe: interrupted\n"),
        (
            "bug",
            1,
            "",
            "probe: error: unexpected RuntimeError: boom (set GLOBE_DEBUG=1 for details)\n",
        ),
        ("partial", 1, "entry 1\n", "probe: error: altered\n"),
    ],
)
def test_failures_are_one_line_with_their_exit_status(
    what: str, code: int, out: str, err: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_probe("fail", what, capsys=capsys) == (code, out, err)


def test_a_refusal_with_output_prints_the_json_document_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_probe("--json", "fail", "partial", capsys=capsys)
    assert (code, json.loads(out), err) == (1, {"entries": [1]}, "probe: error: altered\n")


def test_a_bug_shows_its_traceback_when_debugging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOBE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli.run(probe, ["fail", "bug"])


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (
            ["echo", "--wait", "0"],
            "argument --wait: the timeout must be between 0 and 3600 seconds",
        ),
        (["echo", "--port", "0"], "argument --port: not a TCP port: '0'"),
        (["echo", "--port", "65536"], "argument --port: not a TCP port: '65536'"),
        (["echo", "--zzz"], "No such option '--zzz'."),
        (["fail"], "the following arguments are required: WHAT"),
    ],
)
def test_usage_errors_show_the_usage_and_exit_2(
    args: list[str], detail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_probe(*args, capsys=capsys)
    assert (code, out) == (2, "")
    usage, error = err.splitlines()
    assert usage.startswith(f"usage: probe {args[0]} [OPTIONS]")
    assert error == f"probe {args[0]}: error: {detail}"


def test_outputs_and_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_probe("echo", "--to", "A", "B", capsys=capsys) == (0, "to=A,B\n", "")
    assert run_probe("status", "3", capsys=capsys) == (3, "", "")

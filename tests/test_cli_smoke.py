"""Smoke tests for the ``globe-hub`` and ``globe-node`` command lines."""

import subprocess
import sys
from collections.abc import Callable

import pytest

import globe_node.cli
import hub.cli


@pytest.mark.parametrize(
    ("main", "prog"),
    [(hub.cli.main, "globe-hub"), (globe_node.cli.main, "globe-node")],
)
def test_help_exits_zero_and_names_program(
    main: Callable[[list[str] | None], int], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out
    assert prog in out


@pytest.mark.parametrize(("module", "prog"), [("hub", "globe-hub"), ("globe_node", "globe-node")])
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


@pytest.mark.parametrize(
    ("main", "prog"),
    [(hub.cli.main, "globe-hub"), (globe_node.cli.main, "globe-node")],
)
def test_no_arguments_prints_help_and_succeeds(
    main: Callable[[list[str] | None], int], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 0
    assert prog in capsys.readouterr().out

"""Running a program's ``main`` in this process with its output captured (so coverage sees
the commands): ``globe-admin`` here, ``globe-hub`` in tests/hub/test_cli.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globe_admin.cli import main as admin_main

PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test passphrase
#: Variables a developer may have set that change what the programs do.
SCRUBBED = ("GLOBE_HUB_PASSPHRASE", "GLOBE_ADMIN_PASSPHRASE", "GLOBE_DEBUG")


@dataclass
class Ran:
    """One command: exit status, what it wrote, and the program that ran it."""

    code: int
    out: str
    err: str
    prog: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        assert self.err == ""
        return json.loads(self.out)


def run_main(main: Callable[[list[str]], int], prog: str, *args: str | Path) -> Ran:
    """Run ``main(ARGS)`` in this process; what it returned and wrote."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return Ran(code, out.getvalue(), err.getvalue(), prog)


def run_process(module: str, prog: str, *args: str | Path, env: dict[str, str]) -> Ran:
    """Run ``python -m MODULE ARGS`` as a separate process (stdin is not a terminal)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *[str(a) for a in args]],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr, prog)


def admin_cli(*args: str | Path) -> Ran:
    """Run ``globe-admin ARGS`` in this process."""
    return run_main(admin_main, "globe-admin", *args)


def assert_refused(ran: Ran, detail: str) -> None:
    """Exit status 1, nothing on stdout, exactly one error line on stderr."""
    assert (ran.code, ran.out, ran.err) == (1, "", f"{ran.prog}: error: {detail}\n")

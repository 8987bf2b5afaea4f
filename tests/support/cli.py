"""Running a command line as a separate process: environment, timeout, captured output.

For tests of ``globe-hub`` and ``globe-node`` as a user runs them: a fresh
interpreter (``python -m hub ...``), standard input not a terminal, an
environment without the passphrase variables a developer may have set, and
a bound on the run so that a command waiting for input fails the test
instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: Variables that change what the command lines do (a passphrase read from the
#: environment instead of a prompt or file, debug tracebacks): never inherited.
SCRUBBED: Final = frozenset(
    {
        "GLOBE_HUB_PASSPHRASE",
        "GLOBE_ADMIN_PASSPHRASE",
        "GLOBE_PASSPHRASE",
        "GLOBE_TOKEN",
        "GLOBE_NODE_DIR",
        "GLOBE_DEBUG",
    }
)
#: Bound on one command, in seconds.
CLI_TIMEOUT: Final = 60.0


@dataclass(frozen=True, slots=True)
class CliResult:
    """One finished command: its exit status and what it wrote."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Assert success with nothing on stderr; return stdout parsed as JSON."""
        assert (self.code, self.err) == (0, ""), (self.code, self.err)
        return json.loads(self.out)


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without :data:`SCRUBBED`, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(extra or {})
    return env


def _argv(module: str, args: Sequence[str | Path]) -> list[str]:
    return [sys.executable, "-m", module, *map(str, args)]


def run_cli(
    module: str,
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = CLI_TIMEOUT,
    cwd: Path | None = None,
) -> CliResult:
    """Run ``python -m MODULE ARGS`` to completion; its exit status and output.

    ``env`` is the whole environment (default: :func:`cli_env`); ``stdin`` is
    written to its standard input (default: none, ``/dev/null``).  A command
    still running after ``timeout`` seconds is killed and the test fails.
    Blocking: from a coroutine that serves what the command talks to, use
    :func:`run_cli_async`.
    """
    argv = _argv(module, args)
    try:
        ran = subprocess.run(
            argv,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=cli_env() if env is None else dict(env),
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{argv[2:]} still running after {timeout:g} s") from exc
    return CliResult(ran.returncode, ran.stdout, ran.stderr)


async def run_cli_async(
    module: str,
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = CLI_TIMEOUT,
    cwd: Path | None = None,
) -> CliResult:
    """:func:`run_cli` without blocking the event loop (the command may call back into it)."""
    argv = _argv(module, args)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env() if env is None else dict(env),
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(None if stdin is None else stdin.encode()), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{argv[2:]} still running after {timeout:g} s") from None
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


__all__ = ["CLI_TIMEOUT", "SCRUBBED", "CliResult", "cli_env", "run_cli", "run_cli_async"]

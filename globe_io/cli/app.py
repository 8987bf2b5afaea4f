"""Programs, groups and commands, and running them: output, refusals and exit statuses
(part of the scaffold :mod:`globe_io.cli`)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

import click
import orjson

from globe_io.cli.options import JSON_KEY, expand_many, json_option
from globe_io.errors import CommandError
from protocol.errors import GlobeError

__all__ = [
    "DISTRIBUTION",
    "EXIT_INTERRUPTED",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "GlobeCommand",
    "GlobeGroup",
    "Outcome",
    "RefusedWithOutput",
    "Result",
    "command",
    "iso",
    "one_line",
    "os_error",
    "program",
    "run",
    "safe",
]

#: What a command returns: the JSON document (``--json``) and the lines for people.
Result = tuple[dict[str, Any], list[str]]
#: A :data:`Result`, or an exit status when the command printed what it had to.
Outcome = Result | int

DISTRIBUTION: Final = "globe-link"
EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class RefusedWithOutput(CommandError):
    """A refusal that still has output to show first (e.g. the audit entries of a chain
    that does not verify): :func:`run` prints ``outcome`` as usual, then the error line."""

    def __init__(self, detail: str, outcome: Result) -> None:
        super().__init__(detail)
        self.outcome = outcome


def iso(ts: object) -> str:
    """ISO 8601 UTC with a ``Z`` (``-`` when ``ts`` is not a number)."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe(value: object, *, mark: str = "?") -> str:
    """``str(value)`` with control and bidi-override characters replaced by ``mark``."""
    return _UNSAFE.sub(mark, str(value))


def one_line(text: str) -> str:
    """``text`` with every run of white space (newlines included) folded to one space."""
    return " ".join(text.split())


def os_error(exc: OSError) -> str:
    """An :class:`OSError` as one short line: ``FILE: reason`` where there is a file."""
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


# --- commands and groups ------------------------------------------------------------------------


class _Formatter(click.HelpFormatter):
    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "usage: " if prefix is None else prefix)


class _Context(click.Context):
    formatter_class = _Formatter


class GlobeCommand(click.Command):
    """A command that takes ``--json`` and options of several values (:func:`many`)."""

    context_class = _Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(json_option())

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse ``args`` after reading ``--opt A B`` as ``--opt A --opt B``."""
        return super().parse_args(ctx, expand_many(args, self.params))


def _help_without_command() -> int:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
    return 0


class GlobeGroup(click.Group):
    """A group of commands listed in the order declared; alone, it prints its help."""

    context_class = _Context
    command_class = GlobeCommand
    group_class = type  # sub-groups are GlobeGroups too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("invoke_without_command", True)
        kwargs.setdefault("callback", _help_without_command)
        super().__init__(*args, **kwargs)
        self.params.append(json_option())

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order they were added."""
        return list(self.commands)


def command(name: str, **attrs: Any) -> Callable[[Callable[..., Outcome]], GlobeCommand]:
    """Declare a :class:`GlobeCommand` (added to a group with ``group.add_command``)."""
    return click.command(name, cls=GlobeCommand, **attrs)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    try:
        number = version(DISTRIBUTION)
    except PackageNotFoundError:
        number = "unknown"
    click.echo(f"{ctx.find_root().info_name} {number}")
    ctx.exit()


def program(name: str, *, description: str, epilog: str | None = None) -> GlobeGroup:
    """The root group of a program: ``-h``/``--help``, ``--version`` and ``--json``."""
    group = GlobeGroup(
        name=name,
        help=description,
        epilog=epilog,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    group.params.insert(
        0,
        click.Option(
            ["--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help="print the program version and exit",
        ),
    )
    return group


def _emit(outcome: Outcome, *, as_json: bool) -> int:
    if isinstance(outcome, int):
        return outcome
    data, lines = outcome
    if as_json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in lines:
            print(line)
    sys.stdout.flush()
    return 0


def _usage_error(prog: str, exc: click.UsageError) -> int:
    """Like argparse: the usage line, then ``PROG COMMAND: error: <detail>``."""
    param = exc.param if isinstance(exc, click.BadParameter) else None
    name = None
    if param is not None:
        name = (
            "/".join(param.opts) if isinstance(param, click.Option) else param.human_readable_name
        )
    if isinstance(exc, click.MissingParameter) and name is not None:
        detail = f"the following arguments are required: {name}"
    elif isinstance(exc, click.BadParameter) and name is not None:
        detail = f"argument {name}: {exc.message}"
    else:
        detail = exc.format_message()
    if exc.ctx is not None:
        sys.stderr.write(exc.ctx.get_usage() + "\n")
    where = exc.ctx.command_path if exc.ctx is not None else prog
    print(f"{where}: error: {one_line(safe(detail))}", file=sys.stderr)
    return EXIT_USAGE


def _exit_status(prog: str, exc: BaseException, *, as_json: bool) -> int:
    """Say what went wrong in one line (usage errors after the usage); the exit status."""
    if isinstance(exc, click.exceptions.Exit):  # --help, --version
        return exc.exit_code
    if isinstance(exc, click.UsageError):
        return _usage_error(prog, exc)
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(exc, RefusedWithOutput):
        _emit(exc.outcome, as_json=as_json)
    if isinstance(exc, GlobeError):
        detail = exc.detail
    elif isinstance(exc, OSError):
        detail = os_error(exc)
    elif isinstance(exc, click.ClickException):
        detail = exc.format_message()
    elif os.environ.get("GLOBE_DEBUG"):
        raise exc
    else:  # a bug: still one line, never a traceback
        detail = f"unexpected {type(exc).__name__}: {exc} (set GLOBE_DEBUG=1 for details)"
    print(f"{prog}: error: {one_line(safe(detail))}", file=sys.stderr)
    return EXIT_REFUSED


def run(group: click.Group, argv: Sequence[str] | None = None) -> int:
    """Run the program ``group`` on ``argv`` (default ``sys.argv[1:]``); its exit status."""
    prog = group.name or "globe"
    meta: dict[str, Any] = {}
    try:
        with group.make_context(prog, list(sys.argv[1:] if argv is None else argv)) as ctx:
            meta = ctx.meta
            return _emit(group.invoke(ctx), as_json=bool(meta.get(JSON_KEY)))
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - each failure is one line
        return _exit_status(prog, exc, as_json=bool(meta.get(JSON_KEY)))

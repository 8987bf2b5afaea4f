"""Options and argument types shared by the programs (part of the scaffold
:mod:`globe_io.cli`): ``--json``, ``--dir``, ``--passphrase-file``, the key-file cost,
ports, seconds, counts, limits, choices taken from an enum, options of several values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from globe_io.cli.files import KDF_COSTS

__all__ = [
    "COUNT",
    "JSON_KEY",
    "LIMIT",
    "PATH",
    "PORT",
    "ManyOption",
    "Seconds",
    "Whole",
    "choice_of",
    "dir_option",
    "expand_many",
    "json_option",
    "kdf_option",
    "log_format_option",
    "log_level_option",
    "many",
    "one_of",
    "passphrase_file_option",
    "wants_json",
]

#: A file or directory name, as a :class:`~pathlib.Path` (nothing checked at parse time).
PATH: Final = click.Path(path_type=Path)
#: Where the ``--json`` flag is kept (``Context.meta`` is shared by a command and its groups).
JSON_KEY: Final = "globe.json"
_F = TypeVar("_F", bound=Callable[..., Any])
_E = TypeVar("_E", bound=Enum)


class Whole(click.ParamType[int]):
    """A whole number from ``low`` to ``high``, else ``<detail>: '<text>'`` (or ``low_detail``
    for a number below ``low``): e.g. ``Whole(1, 65535, "not a TCP port")``."""

    name = "integer"

    def __init__(self, low: int, high: int, detail: str, *, low_detail: str | None = None) -> None:
        self.low, self.high, self.detail, self.low_detail = low, high, detail, low_detail

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The number, or a usage error."""
        text = str(value)
        number = int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else -1
        if not 0 <= number <= self.high or (number < self.low and self.low_detail is None):
            self.fail(f"{self.detail}: {text!r}", param, ctx)
        if number < self.low:
            self.fail(str(self.low_detail), param, ctx)
        return number


class Seconds(click.ParamType[float]):
    """A timeout in seconds, more than 0 and at most an hour."""

    name = "seconds"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """The number of seconds, or a usage error."""
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"not a number of seconds: {value!r}", param, ctx)
        if not 0 < seconds <= 3600:
            self.fail("the timeout must be between 0 and 3600 seconds", param, ctx)
        return seconds


#: A listening port, a number of records to skip, a number of items to list.
PORT: Final = Whole(1, 65535, "not a TCP port")
COUNT: Final = Whole(0, 10**15 - 1, "not a non-negative integer")
LIMIT: Final = Whole(1, 1000, "not a count between 1 and 1000")


def choice_of(enum: type[_E], members: Iterable[_E] | None = None) -> click.Choice[str]:
    """A choice among the values of ``enum`` (or of some of its ``members``): declared once."""
    return click.Choice([m.value for m in (enum if members is None else members)])


# --- options ------------------------------------------------------------------------------------


class ManyOption(click.Option):
    """An option that takes one or more values (``--to A B``) and may be repeated.

    click options take a fixed number of values; :class:`GlobeCommand` reads
    ``--to A B`` as ``--to A --to B`` before parsing, up to the next option.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["multiple"] = True
        super().__init__(*args, **kwargs)


def many(*decls: str, **attrs: Any) -> Callable[[_F], _F]:
    """Declare a :class:`ManyOption` (its value is a tuple)."""
    return click.option(*decls, cls=ManyOption, **attrs)


def expand_many(args: Sequence[str], params: Sequence[click.Parameter]) -> list[str]:
    """``--to A B`` as ``--to A --to B``: the values after a :class:`ManyOption`, up to the
    next argument that starts with ``-`` (or ``--``, which ends the options).

    An option's value is skipped whatever it looks like (``--note --see-below``), unless
    it is the name of another option of the command: then the value was left out (an
    optional value such as ``send --wait``, or a usage error click reports).
    """
    options = {
        name: p for p in params if isinstance(p, click.Option) for name in p.opts + p.secondary_opts
    }
    out: list[str] = []
    repeat: str | None = None  # the ManyOption whose values are being read
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        option = options.get(arg)
        if arg == "--":
            out.extend(args[i - 1 :])
            break
        if option is None:
            if arg.startswith("-"):
                repeat = None
            elif repeat is not None:
                out.append(repeat)
            out.append(arg)
            continue
        out.append(arg)
        repeat = None
        if not (option.is_flag or option.count) and i < len(args) and args[i] not in options:
            out.append(args[i])  # its value
            i += 1
            repeat = arg if isinstance(option, ManyOption) else None
    return out


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[JSON_KEY] = True


def json_option() -> click.Option:
    return click.Option(
        ["--json"],
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="machine-readable JSON on stdout",
    )


def wants_json() -> bool:
    """Whether the running command was given ``--json`` (here or before the command)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and bool(ctx.meta.get(JSON_KEY))


def dir_option(
    *, help: str, required: bool = False, envvar: str | None = None, default: str | None = None
) -> Callable[[_F], _F]:
    """``--dir DIR`` (the command's ``directory``), optionally defaulting to ``$envvar``."""
    return click.option(
        "--dir",
        "directory",
        type=PATH,
        required=required,
        envvar=envvar,
        default=default,
        metavar="DIR",
        help=help,
    )


def passphrase_file_option(env: str) -> Callable[[_F], _F]:
    """``--passphrase-file FILE`` (see :func:`read_passphrase`)."""
    return click.option(
        "--passphrase-file",
        type=PATH,
        metavar="FILE",
        help=f"read the key passphrase from FILE (else ${env}, else a prompt)",
    )


def kdf_option(flag: str, *, what: str) -> Callable[[_F], _F]:
    """The Argon2id cost of a new key file (``flag`` is ``--kdf`` or ``--kdf-cost``)."""
    return click.option(
        flag,
        type=click.Choice(sorted(KDF_COSTS)),
        default="moderate",
        help=f"Argon2id cost of {what} (default: moderate)",
    )


#: ``--log-level``: the daemons' log verbosity (globe_io.logs.LEVELS).
log_level_option: Final = click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    help="log verbosity on stderr (default: info; libraries only log warnings unless debug)",
)
#: ``--log-format``: JSON lines (for a log collector) or plain text.
log_format_option: Final = click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    help="JSON lines (default, for log collectors) or plain text on stderr",
)


def one_of(options: dict[str, object], *, required: bool) -> None:
    """Refuse (usage error) more than one of ``options`` given, or none when ``required``.

    ``options`` maps each option name to its value; ``None`` and ``False`` mean not given.
    """
    given = [name for name, value in options.items() if value is not None and value is not False]
    ctx = click.get_current_context(silent=True)
    if len(given) > 1:
        raise click.UsageError(f"argument {given[1]}: not allowed with argument {given[0]}", ctx)
    if required and not given:
        raise click.UsageError(f"one of the arguments {' '.join(options)} is required", ctx)

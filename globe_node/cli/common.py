"""What the ``globe-node`` commands share: the node directory, the key passphrase, the
daemon's local API (its token, the client, commands that call it) and reading times."""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.apiclient import DEFAULT_TIMEOUT, ApiClient
from globe_node.config import NodeConfig, load_config
from globe_node.keys import NodeKeys, load_keys
from protocol.errors import DecryptionFailed, GlobeError
from protocol.ids import AuthorityId

__all__ = [
    "CASE_RE",
    "DEFAULT_DIR",
    "DIR_ENV",
    "LANG_RE",
    "PASSPHRASE_ENV",
    "TOKEN_ENV",
    "api_command",
    "authority_ids",
    "dir_option",
    "fetch",
    "items",
    "node_fingerprint",
    "obj",
    "open_keys",
    "parse_time",
    "passphrase",
    "passphrase_file_option",
    "text",
]

DIR_ENV: Final = "GLOBE_NODE_DIR"
PASSPHRASE_ENV: Final = "GLOBE_PASSPHRASE"  # noqa: S105 - a variable name
TOKEN_ENV: Final = "GLOBE_TOKEN"  # noqa: S105 - a variable name
DEFAULT_DIR: Final = "globe-node"
LANG_RE: Final = re.compile(r"[a-z]{2}\Z")
CASE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}\Z")

#: ``--dir DIR``: the node directory (default ``$GLOBE_NODE_DIR``, else ``./globe-node``).
dir_option = cli.dir_option(
    envvar=DIR_ENV,
    default=DEFAULT_DIR,
    help=f"the node directory (default: ${DIR_ENV}, else ./{DEFAULT_DIR})",
)
passphrase_file_option = cli.passphrase_file_option(PASSPHRASE_ENV)


def passphrase(passphrase_file: Path | None, *, new: bool = False) -> bytes:
    """The key passphrase: ``--passphrase-file``, then ``$GLOBE_PASSPHRASE``, then a prompt."""
    return cli.read_passphrase(passphrase_file, env=PASSPHRASE_ENV, what="the node keys", new=new)


def open_keys(key_path: Path, passphrase: bytes) -> NodeKeys:
    """Open ``keys.sealed``; one clear error for a wrong passphrase or a damaged file."""
    try:
        return load_keys(key_path, passphrase)
    except FileNotFoundError:
        raise CommandError(f"{key_path} not found: not a node directory") from None
    except DecryptionFailed:
        raise CommandError(f"{key_path}: wrong passphrase, or the key file was altered") from None
    except GlobeError as exc:
        raise CommandError(f"{key_path}: not a valid node key file ({exc.detail})") from None


def node_fingerprint(authority: AuthorityId, keys: NodeKeys) -> str:
    """The authority fingerprint of this node's keys (docs/PROTOCOL.md §3.4).

    The same value ``globe-admin show`` prints for the node's application.
    """
    return keys.fingerprint(authority)


def parse_time(value: str, what: str) -> int:
    """An ISO 8601 date or time (UTC unless it names an offset) as Unix seconds."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(f"{what}: not an ISO 8601 date or time: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def authority_ids(values: tuple[str, ...]) -> list[str]:
    """Authority ids as given (``--to``), each checked."""
    return [str(AuthorityId.parse(v)) for v in values]


def text(value: object) -> str:
    """Text from the daemon made safe to print (``-`` for none)."""
    return cli.safe("-" if value is None else value)


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The objects in the list ``data[name]`` (anything else is skipped)."""
    value = data.get(name)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# --- the daemon's local API ---------------------------------------------------------------------


def _token(token_file: Path | None, config: NodeConfig) -> str:
    if token_file is not None:
        path = token_file
    elif os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    else:
        path = config.token_path
    try:
        token = path.read_text("ascii").strip()
    except FileNotFoundError:
        raise CommandError(
            f"no API token: {path} not found (pass --token-file FILE or set {TOKEN_ENV})"
        ) from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not an API token") from None
    if not token:
        raise CommandError(f"{path} is empty")
    return token


ApiWork = Callable[..., Awaitable[cli.Outcome]]

_API_OPTIONS = (
    dir_option,
    click.option(
        "--token-file",
        type=cli.PATH,
        metavar="FILE",
        help=f"the API token (default: ${TOKEN_ENV}, else DIR/api.token)",
    ),
    click.option(
        "--timeout",
        type=cli.Seconds(),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-request timeout (default: {DEFAULT_TIMEOUT:g})",
    ),
)


def api_command(name: str, **attrs: Any) -> Callable[[ApiWork], cli.GlobeCommand]:
    """Declare a command that works through the running daemon's local API.

    The decorated coroutine function gets an :class:`ApiClient` (``Authorization: Bearer``
    with the user's token) and its own options; the command adds ``--dir``,
    ``--token-file`` and ``--timeout``.
    """

    def decorate(work: ApiWork) -> cli.GlobeCommand:
        @functools.wraps(work)
        def callback(
            *, directory: Path, token_file: Path | None, timeout: float, **options: Any
        ) -> cli.Outcome:
            config = load_config(directory)
            token = _token(token_file, config)
            host = f"[{config.api_host}]" if ":" in config.api_host else config.api_host

            async def go() -> cli.Outcome:
                async with ApiClient(
                    f"http://{host}:{config.api_port}", token, timeout=timeout
                ) as api:
                    return await work(api, **options)

            return asyncio.run(go())

        for option in reversed(_API_OPTIONS):
            option(callback)
        return cli.command(name, **attrs)(callback)

    return decorate


async def fetch(
    api: ApiClient, path: str, render: Callable[[dict[str, Any]], list[str]], **query: Any
) -> cli.Result:
    """GET ``path`` (with ``query``, ``None`` values left out) and render the answer."""
    data = await api.get(path, query)
    return data, render(data)

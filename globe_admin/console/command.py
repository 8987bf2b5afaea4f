"""``globe-admin ui``: the administrators' console, a local web application on the admin
workstation (docs/OPERATIONS.md, "Using the console").

The command checks the admin key as every workflow command does (it must be an admin key
of the pinned genesis), reads the hub's queue with it once, lets the key go, and serves
the console on a loopback address until Ctrl-C (SIGINT) or SIGTERM.  It prints the
console's address and a one-time sign-in link.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from pathlib import Path
from typing import Final

import click

from globe_admin.session import ADMIN_PASSPHRASE_ENV, WORKFLOW_OPTIONS, Admin
from globe_io import cli
from globe_io.errors import CommandError

__all__ = ["DEFAULT_HOST", "check_loopback", "ui"]

DEFAULT_HOST: Final = "127.0.0.1"
_PORT: Final = cli.Whole(0, 65535, "not a TCP port")


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback address (``127.0.0.1``, ``::1``, …): the console acts
    with the admin's key, so no other interface may reach it."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise CommandError(
            "the console listens on a loopback address only (such as 127.0.0.1 or ::1), "
            f"not {host!r}"
        )
    return host


def _loopback(_ctx: click.Context, _param: click.Parameter, host: str) -> str:
    return check_loopback(host)


def _announce(address: str, link: str) -> None:
    print(f"globe-admin: console at {address}", flush=True)
    print(f"globe-admin: sign in once with {link}", flush=True)


def _ui(
    *,
    genesis: Path,
    key: Path,
    hub: str | None,
    timeout: float,
    passphrase_file: Path | None,
    name: str | None,
    host: str,
    port: int,
) -> cli.Result:
    """Open the key once (the first reading), then serve the console without it."""
    # The web stack loads for this command only: every other globe-admin command starts
    # without aiohttp's server, Jinja and Babel.
    from globe_admin.console.app import Console  # noqa: PLC0415
    from globe_admin.console.reading import read_hub  # noqa: PLC0415
    from globe_admin.console.server import serve  # noqa: PLC0415
    from globe_admin.console.workstation import Workstation  # noqa: PLC0415

    admin = Admin.open(genesis, key, hub, timeout, passphrase_file)
    if name is not None and name != admin.name:
        raise CommandError(f"{key} is the admin key of {admin.name}, not of {name}")
    reading = admin.run(lambda client: read_hub(client, now=int(time.time())))
    workstation = Workstation.of(admin, key, passphrase_file)
    del admin  # from here on the key is opened for each piece of work only
    console = Console(workstation, hosts=frozenset(), reading=reading)
    asyncio.run(serve(console, host=host, port=port, announce=_announce))
    return {"status": "stopped", "admin": workstation.name}, ["globe-admin: console stopped"]


def _command() -> cli.GlobeCommand:
    callback = _ui
    for option in reversed(
        (
            *WORKFLOW_OPTIONS,
            click.option(
                "--name", metavar="NAME",
                help="your admin name in the pinned genesis (checked against the key)",
            ),
            click.option(
                "--host", default=DEFAULT_HOST, show_default=True, callback=_loopback,
                metavar="ADDRESS",
                help="the loopback address to listen on",
            ),
            click.option(
                "--port", type=_PORT, default=0, metavar="N",
                help="the port to listen on (default: 0, a free port)",
            ),
        )
    ):  # fmt: skip
        callback = option(callback)
    return cli.command(
        "ui",
        help="Run the administrators' console: a web application on this workstation, "
        "listening on a loopback address only, in English, French, Spanish and Arabic. It "
        "prints its address and a one-time sign-in link, and runs until Ctrl-C. The admin key "
        "is never kept open: its passphrase is asked once here, to check the key and read the "
        "hub's queue, then typed in the page for each reading of the hub and each signature. "
        f"--passphrase-file or ${ADMIN_PASSPHRASE_ENV} pre-supply it instead (automation, "
        "tests): the key is then opened for every page.",
        short_help="run the administrators' console (a local web application)",
    )(callback)


#: The ``ui`` command.
ui: Final = _command()

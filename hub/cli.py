"""Command-line interface of the GlobE Link hub operator (``globe-hub``).

``init`` creates the hub directory (sealed hub key, ``hub.pub``, ``hub.toml``, a
migrated database), ``install-genesis`` installs the genesis the admins signed, and
``serve`` runs the hub.  The administrators' commands are another program on their
own workstations, ``globe-admin`` (admin keys never reach the hub, R1).

Every command takes ``--json`` (one JSON document on stdout).  A refusal is one line
``globe-hub: error: <detail>`` on stderr and exit status 1; usage errors exit 2 and an
interrupt 130 (:mod:`globe_io.cli`).  The hub key's passphrase never comes from the
command line: ``--passphrase-file``, ``$GLOBE_HUB_PASSPHRASE`` or a prompt on a terminal.

The server, SQLAlchemy and Alembic are imported inside the commands that use them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import unicodedata
from contextlib import AbstractContextManager, nullcontext, redirect_stdout
from pathlib import Path
from typing import Final

import click

from globe_io import cli, logs
from globe_io.errors import CommandError, ConfigError
from hub.config import CONFIG_NAME, HubConfig, Limits, default_database_url, load_config
from protocol import canonical, keystore
from protocol.errors import GlobeError, ProtocolError
from protocol.genesis import Genesis
from protocol.keys import SigningKey, VerifyKey

__all__ = ["HUB_PASSPHRASE_ENV", "PROG", "group", "main"]

PROG: Final = "globe-hub"
HUB_PASSPHRASE_ENV: Final = "GLOBE_HUB_PASSPHRASE"  # noqa: S105 - a variable name
DATABASE_DRIVERS: Final = ("sqlite+aiosqlite", "postgresql+asyncpg")
_HOST: Final = re.compile(r"[A-Za-z0-9.:\-\[\]]{1,253}")

group = cli.program(
    PROG,
    description=(
        "GlobE Link hub: membership, signed directory and store-and-forward routing for the "
        "GlobE Link secure messaging network."
    ),
    epilog="The admins use globe-admin on their own workstations. See docs/OPERATIONS.md.",
)
_dir = cli.dir_option(required=True, help="the hub directory")
_passphrase_file = cli.passphrase_file_option(HUB_PASSPHRASE_ENV)


def _passphrase(passphrase_file: Path | None, *, new: bool = False) -> bytes:
    return cli.read_passphrase(passphrase_file, env=HUB_PASSPHRASE_ENV, what="the hub key", new=new)


# --- init ---------------------------------------------------------------------------------------


def _check_database_url(url: str) -> str:
    """Refuse URLs that would not round-trip through hub.toml or need a sync driver."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - SQLAlchemy only where needed
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    if any(c in url for c in '"\\') or any(unicodedata.category(c) == "Cc" for c in url):
        raise CommandError("--database-url must not contain quotes, backslashes or control chars")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CommandError(f"--database-url: not a database URL: {url!r}") from None
    if parsed.drivername not in DATABASE_DRIVERS:
        raise CommandError(
            f"--database-url: use {' or '.join(d + '://' for d in DATABASE_DRIVERS)} "
            f"(not {parsed.drivername})"
        )
    return str(parsed.render_as_string(hide_password=True))


def _db_error(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return cli.one_line(text.splitlines()[0] if text.splitlines() else text)


async def _migrate_database(url: str) -> None:
    from hub import db  # noqa: PLC0415 - SQLAlchemy and Alembic only where needed

    engine = db.make_engine(url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


def _prepare_database(url: str, shown_url: str) -> None:
    from alembic.util.exc import CommandError as AlembicError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    try:
        asyncio.run(_migrate_database(url))
    except (SQLAlchemyError, AlembicError, OSError) as exc:
        raise CommandError(f"cannot prepare the database {shown_url}: {_db_error(exc)}") from None


def _write_hub_key(
    directory: Path, config: HubConfig, passphrase: bytes, kdf_cost: str
) -> VerifyKey:
    """Seal a new hub key into DIR/hub.key, publish it in DIR/hub.pub, write hub.toml."""
    from hub.config import render_config  # noqa: PLC0415
    from hub.server import HUB_KEY_PURPOSE  # noqa: PLC0415 - the server only where needed

    key = SigningKey.generate()
    sealed = keystore.seal_secret(
        key.seed, passphrase, purpose=HUB_KEY_PURPOSE, cost=cli.KDF_COSTS[kdf_cost]
    )
    cli.write_file(config.key_path, sealed, mode=0o600, overwrite=False)
    public = canonical.b64e(bytes(key.verify_key))
    cli.write_file(directory / "hub.pub", f"{public}\n".encode(), mode=0o644, overwrite=True)
    rendered = render_config(config).encode()
    cli.write_file(directory / CONFIG_NAME, rendered, mode=0o600, overwrite=False)
    load_config(directory)  # the file we wrote must read back
    return key.verify_key


@cli.command(
    "init",
    help="Create DIR (mode 0700) with the passphrase-sealed hub key, hub.pub, hub.toml and a "
    "migrated database; print the hub public key for the genesis. The passphrase comes from "
    f"--passphrase-file, ${HUB_PASSPHRASE_ENV} or a prompt.",
    short_help="create a hub directory (key, configuration, database)",
)
@_dir
@click.option(
    "--database-url",
    metavar="URL",
    help="sqlite+aiosqlite:///PATH (default: DIR/hub.db) or postgresql+asyncpg://...",
)
@click.option("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
@click.option("--port", type=cli.PORT, default=8440, help="listen port (default: 8440)")
@_passphrase_file
@cli.kdf_option("--kdf-cost", what="the key file")
def init(
    *,
    directory: Path,
    database_url: str | None,
    host: str,
    port: int,
    passphrase_file: Path | None,
    kdf_cost: str,
) -> cli.Result:
    """Create a hub directory: sealed hub key, hub.pub, hub.toml and a migrated database."""
    for name in (CONFIG_NAME, "hub.key"):
        if (directory / name).exists():
            raise CommandError(
                f"{directory} already holds a hub ({name} exists); refusing to overwrite it"
            )
    url = database_url or default_database_url(directory)
    shown_url = _check_database_url(url)
    if not _HOST.fullmatch(host):
        raise CommandError(f"--host: not a host name or address: {host!r}")
    config = HubConfig(directory=directory, database_url=url, host=host, port=port, limits=Limits())
    passphrase = _passphrase(passphrase_file, new=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    _prepare_database(url, shown_url)
    hub_key = _write_hub_key(directory, config, passphrase, kdf_cost)
    public, key_id = canonical.b64e(bytes(hub_key)), str(hub_key.key_id)
    data = {
        "directory": str(directory.absolute()),
        "hub_key": public,
        "key_id": key_id,
        "key_file": str(config.key_path.absolute()),
        "config": str((directory / CONFIG_NAME).absolute()),
        "database_url": shown_url,
        "kdf_cost": kdf_cost,
    }
    lines = [
        f"hub initialised in {data['directory']}",
        f"hub key:     {public}",
        f"key id:      {key_id}",
        f"database:    {shown_url}",
        "next: the admins name this hub key in the genesis (globe-admin genesis "
        f"--hub-key {public} ...), then run: globe-hub install-genesis "
        f"--dir {directory} GENESIS_FILE",
    ]
    return data, lines


# --- install-genesis ----------------------------------------------------------------------------


def _read_hub_pub(directory: Path) -> VerifyKey:
    path = directory / "hub.pub"
    try:
        text = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return VerifyKey(canonical.b64d(text, what="hub.pub"))
    except GlobeError:
        raise ConfigError(f"{path}: not a base64url Ed25519 public key") from None


def _genesis_info(genesis: Genesis) -> dict[str, object]:
    return {
        "network_id": str(genesis.network_id),
        "name": genesis.name,
        "fingerprint": genesis.fingerprint(),
        "threshold": genesis.threshold,
        "admins": [{"name": a.name, "key_id": str(a.key.key_id)} for a in genesis.admins],
        "hub_key": str(genesis.hub_key.key_id),
        "hub_url": genesis.hub_url,
        "created": genesis.created,
    }


@cli.command(
    "install-genesis",
    help="Verify FILE and install it as DIR/genesis.json (only if it names this hub).",
    short_help="install the genesis that names this hub's key",
)
@_dir
@click.argument("file", type=cli.PATH, metavar="FILE")
def install_genesis(directory: Path, file: Path) -> cli.Result:
    """Verify a genesis and install it as the one this hub serves."""
    config = load_config(directory)
    genesis = cli.load_genesis(file)
    hub_key = _read_hub_pub(directory)
    if genesis.hub_key != hub_key:
        raise CommandError(
            f"{file} names another hub key ({genesis.hub_key.key_id}); this hub's key "
            f"is {hub_key.key_id}: the hub refuses to serve that genesis"
        )
    dest = config.genesis_path
    if dest.exists():
        try:
            current = dest.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {dest}: {exc.strerror}") from None
        if current != genesis.encode():
            raise CommandError(
                f"{dest} already holds another genesis; a hub serves one network for its "
                "whole life (see docs/OPERATIONS.md before moving it aside)"
            )
    else:
        cli.write_file(dest, genesis.encode(), mode=0o644, overwrite=False)
    data = {"genesis": str(dest.absolute()), **_genesis_info(genesis)}
    lines = [
        f"genesis installed: {dest}",
        f"network:     {genesis.network_id} ({genesis.name})",
        f"admins:      {len(genesis.admins)}, threshold {genesis.threshold}",
        f"hub url:     {genesis.hub_url}",
        f"fingerprint: {genesis.fingerprint()}",
        "compare this fingerprint out of band with every admin before serving.",
    ]
    return data, lines


# --- serve --------------------------------------------------------------------------------------


def _serve(
    config: HubConfig, passphrase: bytes, host: str, port: int, genesis: Path | None
) -> None:
    """Run the server; translate what stops it into one clear refusal."""
    from alembic.util.exc import CommandError as AlembicError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from hub import server  # noqa: PLC0415 - the server only for serve

    # With --json, stdout carries only the final JSON document; the banner goes to stderr.
    banner: AbstractContextManager[object] = (
        redirect_stdout(sys.stderr) if cli.wants_json() else nullcontext()
    )
    try:
        with banner:
            asyncio.run(
                server.serve(config, passphrase, host=host, port=port, genesis_path=genesis)
            )
    except (ConfigError, CommandError):
        raise
    except ProtocolError as exc:
        raise CommandError(
            f"the stored membership log does not verify against the genesis ({exc.detail}): "
            "it was changed behind the hub's back; restore the database from a backup "
            "(docs/OPERATIONS.md) and never edit log entries"
        ) from None
    except (SQLAlchemyError, AlembicError) as exc:
        raise CommandError(f"database error: {_db_error(exc)}") from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise CommandError(f"cannot serve on {host}:{port}: {reason}") from None


@cli.command(
    "serve",
    help="Run the hub until SIGTERM or SIGINT. The key passphrase comes from "
    f"--passphrase-file or ${HUB_PASSPHRASE_ENV} (never from the command line).",
    short_help="run the hub",
)
@_dir
@click.option("--host", help="listen address (default: from hub.toml)")
@click.option("--port", type=cli.PORT, help="listen port (default: from hub.toml)")
@click.option(
    "--genesis",
    type=cli.PATH,
    metavar="FILE",
    help="serve this genesis (default: DIR/genesis.json)",
)
@cli.log_level_option
@cli.log_format_option
@_passphrase_file
def serve(
    *,
    directory: Path,
    host: str | None,
    port: int | None,
    genesis: Path | None,
    log_level: str,
    log_format: str,
    passphrase_file: Path | None,
) -> cli.Result:
    """Run the hub until SIGTERM or SIGINT."""
    config = load_config(directory)
    if genesis is None and not config.genesis_path.exists():
        raise ConfigError(
            f"no genesis installed in {directory}: run 'globe-hub install-genesis --dir "
            f"{directory} FILE' or pass --genesis FILE"
        )
    passphrase = _passphrase(passphrase_file)
    logs.configure(log_level, json_lines=log_format == "json")
    host = host or config.host
    port = port or config.port
    _serve(config, passphrase, host, port, genesis)
    return {"status": "stopped", "host": host, "port": port}, []


# --- migrate and check -------------------------------------------------------------------------


@cli.command(
    "migrate",
    help="Upgrade the database to this release's schema (serve also does it at every start). "
    "--database-url connects as another role, e.g. the schema owner when the hub itself runs "
    "as a role without DDL rights (deploy/postgresql/roles.sql). Back the database up first.",
    short_help="upgrade the database schema",
)
@_dir
@click.option(
    "--database-url",
    metavar="URL",
    help="migrate through this URL instead of hub.toml's (the same database)",
)
def migrate(*, directory: Path, database_url: str | None) -> cli.Result:
    """Upgrade the database to the newest schema revision."""
    config = load_config(directory)
    url = database_url or config.database_url
    shown = _check_database_url(url)
    _prepare_database(url, shown)
    return {"database_url": shown, "status": "migrated"}, [f"database {shown} is up to date"]


@cli.command(
    "check",
    help="Report what is wrong with this hub: file permissions, the genesis, the database "
    "and its schema, the membership log, members' certificates ending within 30 days, free "
    "disk, and whether the hub answers on its address and at the genesis URL. Exit status 0: "
    "nothing found, 1: findings, 2: could not check. Needs no passphrase; changes nothing.",
    short_help="check the deployment (permissions, schema, certificates, disk, reachability)",
)
@_dir
@click.option(
    "--min-free",
    type=cli.COUNT,
    default=1 << 30,
    metavar="BYTES",
    help="free disk below this is a finding (default: 1 GiB)",
)
@click.option("--offline", is_flag=True, help="skip the reachability checks")
def check(*, directory: Path, min_free: int, offline: bool) -> int:
    """Check the hub deployment and print the findings."""
    from hub.check import check_hub  # noqa: PLC0415 - SQLAlchemy only where needed

    report = asyncio.run(check_hub(directory, min_free=min_free, network=not offline))
    return report.emit(as_json=cli.wants_json())


for _command in (init, install_genesis, serve, migrate, check):
    group.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the ``globe-hub`` command line; return the process exit status."""
    return cli.run(group, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Setting a node up, without the daemon: ``init``, ``apply`` and ``run`` (the daemon)
(docs/OPERATIONS.md §11.1-11.4)."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_node.cli.common import (
    LANG_RE,
    dir_option,
    open_keys,
    passphrase,
    passphrase_file_option,
    text,
)
from globe_node.cli.users import create_database
from globe_node.config import CONFIG_NAME, NodeConfig, load_config, render_config
from globe_node.keys import NodeKeys, save_keys, write_private
from protocol import canonical, keystore
from protocol.errors import GlobeError
from protocol.genesis import Genesis, check_url
from protocol.ids import AuthorityId
from protocol.membership import AUTHORITY_KINDS, Application, kem_pop_answer, make_application

__all__ = ["APPLICATION_FILE", "APPLICATION_ID_FILE", "apply", "init", "run"]

APPLICATION_FILE: Final = "application.json"
APPLICATION_ID_FILE: Final = "application.id"


def _check_languages(languages: Sequence[str]) -> list[str]:
    bad = [x for x in languages if not LANG_RE.match(x)]
    if bad:
        raise CommandError(
            f"--language: not an ISO 639-1 code (two lower-case letters): {bad[0]!r}"
        )
    if len(set(languages)) > 16:
        raise CommandError("--language: at most 16 languages")
    return sorted(set(languages))


def _write_node(
    config: NodeConfig,
    genesis: Genesis,
    keys: NodeKeys,
    application: Application,
    *,
    passphrase: bytes,
    cost: keystore.KdfCost,
) -> None:
    """Create the node directory's files; on any failure remove what was created."""
    directory = config.directory
    created = not directory.exists()
    written: list[Path] = []
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        write_private(config.genesis_path, genesis.encode())
        written.append(config.genesis_path)
        save_keys(config.key_path, keys, passphrase, cost)
        written.append(config.key_path)
        write_private(directory / APPLICATION_FILE, application.signed.encode())
        written.append(directory / APPLICATION_FILE)
        config.blob_dir.mkdir(mode=0o700, exist_ok=True)
        written.append(config.blob_dir)
        written += [config.db_path.with_name(config.db_path.name + s) for s in ("", "-wal", "-shm")]
        token = create_database(config.db_path)
        write_private(config.token_path, f"{token}\n".encode())
        written.append(config.token_path)
        write_private(directory / CONFIG_NAME, render_config(config).encode())
        written.append(directory / CONFIG_NAME)
        load_config(directory)  # the file we wrote must read back
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for path in written:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def _check_new_directory(directory: Path) -> None:
    for name in (CONFIG_NAME, "keys.sealed", "node.db"):
        if (directory / name).exists():
            raise CommandError(
                f"{directory} already holds a node ({name} exists); refusing to overwrite it"
            )
    if directory.exists() and not directory.is_dir():
        raise CommandError(f"{directory} exists and is not a directory")


def _init_report(
    config: NodeConfig, genesis: Genesis, keys: NodeKeys, application: Application, kdf: str
) -> cli.Result:
    directory = config.directory
    node_fp = application.fingerprint()
    data = {
        "directory": str(directory.absolute()),
        "authority": str(application.authority),
        "network_id": str(genesis.network_id),
        "genesis_fingerprint": genesis.fingerprint(),
        "fingerprint": node_fp,
        "identity_key": str(keys.identity.key_id),
        "transport_key": str(keys.transport.key_id),
        "ka_key": str(keys.ka.key_id),
        "hub_url": config.hub_url,
        "endpoint": application.endpoint,
        "api": f"http://{config.api_host}:{config.api_port}",
        "application": str((directory / APPLICATION_FILE).absolute()),
        "token_file": str(config.token_path.absolute()),
        "kdf": kdf,
    }
    lines = [
        f"node {application.authority} initialised in {data['directory']}",
        f"network:             {genesis.network_id} ({text(genesis.name)})",
        f"genesis fingerprint: {data['genesis_fingerprint']}",
        f"node fingerprint:    {node_fp}",
        f"application:         {data['application']}",
        f"operator API token:  {data['token_file']} (mode 0600)",
        "compare both fingerprints out of band with the network admins (the node "
        "fingerprint must equal the one 'globe-admin show' prints for this "
        f"application), then run: globe-node apply --dir {directory}",
    ]
    return data, lines


@cli.command(
    "init",
    help="Create DIR (mode 0700) with the pinned genesis, the passphrase-sealed keys "
    "(keys.sealed, 0600), node.toml, the database with an 'operator' API user (its token in "
    "DIR/api.token, 0600) and the signed membership application (application.json). Prints "
    "the genesis and node fingerprints to compare out of band.",
    short_help="create a node directory (keys, configuration, database, application)",
)
@dir_option
@click.option(
    "--genesis",
    type=cli.PATH,
    required=True,
    metavar="FILE",
    help="the genesis file",
)
@click.option("--authority-id", required=True, metavar="ID", help="e.g. FR-PNF")
@click.option("--name", required=True, help="the authority's official name")
@click.option("--country", required=True, metavar="CC", help="ISO 3166-1 alpha-2 code")
@click.option(
    "--kind",
    required=True,
    multiple=True,
    type=click.Choice(sorted(AUTHORITY_KINDS)),
    metavar="KIND",
    help=f"authority kind, repeatable: {', '.join(sorted(AUTHORITY_KINDS))}",
)
@click.option(
    "--language",
    multiple=True,
    metavar="xx",
    help="working language (ISO 639-1), repeatable (default: en)",
)
@click.option("--contact", required=True, metavar="TEXT", help="duty contact (for admins)")
@click.option(
    "--legal-basis", required=True, metavar="TEXT", help="the legal designation of the authority"
)
@click.option("--hub-url", metavar="URL", help="the hub (default: the genesis hub URL)")
@click.option(
    "--endpoint",
    metavar="URL",
    help="this node's public direct-delivery URL, published in the application",
)
@click.option(
    "--peer-port",
    type=cli.Whole(0, 65535, "not a TCP port"),
    default=0,
    metavar="N",
    help="direct-delivery port (0: none)",
)
@click.option(
    "--allow-private-endpoints",
    is_flag=True,
    help="deliver directly to peers at loopback or private addresses (test networks only)",
)
@click.option(
    "--api-port",
    type=cli.Whole(1, 65535, "not a TCP port", low_detail="the API needs a port (1-65535)"),
    default=8450,
    metavar="N",
    help="local API port (8450)",
)
@cli.kdf_option("--kdf", what="keys.sealed")
@passphrase_file_option
def init(
    *,
    directory: Path,
    genesis: Path,
    authority_id: str,
    name: str,
    country: str,
    kind: tuple[str, ...],
    language: tuple[str, ...],
    contact: str,
    legal_basis: str,
    hub_url: str | None,
    endpoint: str | None,
    peer_port: int,
    allow_private_endpoints: bool,
    api_port: int,
    kdf: str,
    passphrase_file: Path | None,
) -> cli.Result:
    """Create a node directory: keys, configuration, database, operator token, application."""
    _check_new_directory(directory)
    authority = AuthorityId.parse(authority_id)
    if country.upper() != authority.country:
        raise CommandError(
            f"--country {country} does not match the authority id {authority} "
            f"(country {authority.country})"
        )
    languages = _check_languages(language or ["en"])
    pinned = cli.load_genesis(genesis)
    config = NodeConfig(
        directory=directory,
        authority=str(authority),
        hub_url=check_url(hub_url or pinned.hub_url, "--hub-url"),
        peer_port=peer_port,
        allow_private_endpoints=allow_private_endpoints,
        api_port=api_port,
    )
    keys = NodeKeys.generate()
    application = make_application(
        genesis=pinned,
        authority=authority,
        name=name,
        kinds=sorted(set(kind)),
        languages=languages,
        contact=contact,
        legal_basis=legal_basis,
        endpoint=check_url(endpoint, "--endpoint") if endpoint else None,
        identity=keys.identity,
        transport=keys.transport,
        ka_key=keys.ka.public_key,
        created=int(time.time()),
    )
    if pinned.is_reserved_key(bytes(keys.identity.verify_key)):  # pragma: no cover - 2**-256
        raise CommandError("generated key collides with a reserved key; run init again")
    secret = passphrase(passphrase_file, new=True)
    _write_node(config, pinned, keys, application, passphrase=secret, cost=cli.KDF_COSTS[kdf])
    return _init_report(config, pinned, keys, application, kdf)


# --- apply --------------------------------------------------------------------------------------


def _stored_application(config: NodeConfig, genesis: Genesis) -> tuple[bytes, Application]:
    path = config.directory / APPLICATION_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{path} not found: this node has no application to submit") from None
    try:
        return data, Application.decode(data, genesis)
    except GlobeError as exc:
        raise CommandError(f"{path}: not a valid application ({exc.detail})") from None


def _application_status(config: NodeConfig, genesis: Genesis) -> cli.Result:
    from globe_io.hubclient import HubClient  # noqa: PLC0415 - only apply talks to the hub

    id_path = config.directory / APPLICATION_ID_FILE
    try:
        app_id = id_path.read_text("ascii").strip()
    except FileNotFoundError:
        raise CommandError(
            f"{id_path} not found: submit the application first with 'globe-node apply'"
        ) from None

    async def status() -> dict[str, Any]:
        async with HubClient(config.hub_url, network=genesis.digest) as hub:
            return await hub.application_status(app_id)

    data = asyncio.run(status())
    line = f"application {text(data.get('id', app_id))} for {text(data.get('authority'))}"
    line += f": {text(data.get('status'))}"
    if data.get("reason"):
        line += f" ({text(data.get('reason'))})"
    return data, [line]


def _submit(
    config: NodeConfig, genesis: Genesis, raw: bytes, application: Application, keys: NodeKeys
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit the application and answer the hub's KEM challenge; both answers."""
    from globe_io.hubclient import HubClient  # noqa: PLC0415 - only apply talks to the hub

    async def submit() -> tuple[dict[str, Any], dict[str, Any]]:
        async with HubClient(config.hub_url, network=genesis.digest) as hub:
            first = await hub.submit_application(raw)
            app_id, challenge = first.get("id"), first.get("challenge")
            if not isinstance(app_id, str) or not isinstance(challenge, str):
                raise CommandError("the hub's answer has no application id and challenge")
            write_private(config.directory / APPLICATION_ID_FILE, f"{app_id}\n".encode())
            answer = kem_pop_answer(
                keys.ka, application.digest, canonical.b64d(challenge, what="challenge")
            )
            return first, await hub.answer_challenge(app_id, answer)

    return asyncio.run(submit())


@cli.command(
    "apply",
    help="Submit DIR/application.json to the hub and answer its key-agreement challenge "
    "(needs the passphrase); --status shows the public status of the stored application.",
    short_help="submit the membership application to the hub",
)
@dir_option
@click.option("--status", is_flag=True, help="show the application's status")
@passphrase_file_option
def apply(*, directory: Path, status: bool, passphrase_file: Path | None) -> cli.Result:
    """Submit the stored application to the hub and prove possession of the KEM key."""
    config = load_config(directory)
    genesis = cli.load_genesis(config.genesis_path)
    if status:
        return _application_status(config, genesis)
    raw, application = _stored_application(config, genesis)
    keys = open_keys(config.key_path, passphrase(passphrase_file))
    if application.identity_key != keys.identity.verify_key or (
        application.ka_key != keys.ka.public_key
    ):
        raise CommandError(f"{APPLICATION_FILE} was not made with this node's keys")
    first, proof = _submit(config, genesis, raw, application, keys)
    data = {
        "id": first["id"],
        "authority": str(application.authority),
        "status": proof.get("status"),
        "hub_url": config.hub_url,
        "fingerprint": application.fingerprint(),
    }
    lines = [
        f"application {data['id']} for {application.authority} submitted to {config.hub_url}",
        f"status: {text(data['status'])}",
        f"node fingerprint: {data['fingerprint']}",
        "the admins now review it; check with: globe-node apply --status",
    ]
    return data, lines


@cli.command(
    "run",
    help="Run the node until SIGTERM or SIGINT (the passphrase opens keys.sealed). Under "
    "systemd it serves the sockets of a .socket unit (named api, peer, metrics) and reports "
    "readiness (Type=notify); see deploy/systemd/.",
    short_help="run the node daemon",
)
@dir_option
@cli.log_level_option
@cli.log_format_option
@passphrase_file_option
def run(*, directory: Path, log_level: str, log_format: str, passphrase_file: Path | None) -> int:
    """Run the node daemon until SIGTERM or SIGINT."""
    config = load_config(directory)
    secret = passphrase(passphrase_file)
    open_keys(config.key_path, secret)  # a wrong passphrase: one clear line, before startup
    server = importlib.import_module("globe_node.server")
    return int(server.run(config, secret, log_level=log_level, log_format=log_format) or 0)

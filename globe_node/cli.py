"""Command-line interface of a GlobE Link node (``globe-node``).

Two kinds of commands share this program (docs/OPERATIONS.md, "Running a node"):

* **without the daemon**, working on the node directory itself: ``init``,
  ``apply``, ``run`` (the daemon), ``backup``, ``restore`` and ``users``;
* **through the running daemon's local API** (``http://api_host:api_port/api``,
  ``Authorization: Bearer <token>``): ``status``, ``inbox``, ``outbox``,
  ``show``, ``send``, ``reply``, ``status-update``, ``forward``,
  ``request-consent``, ``consent``, ``retry``, ``cases``, ``case``, ``stats``,
  ``directory search``, ``ping``, ``keys rotate``, ``sync``, ``alerts`` and ``audit``.

Every command takes ``--dir DIR`` (default ``$GLOBE_NODE_DIR``, else
``./globe-node``) and ``--json`` (one JSON object on stdout).  A refusal is one
line ``globe-node: error: <detail>`` on stderr and exit status 1; usage errors
exit 2 and an interrupt 130.  The key passphrase never comes from the command
line: ``--passphrase-file``, ``$GLOBE_PASSPHRASE`` or a prompt on a terminal.
The API token comes from ``--token-file``, ``$GLOBE_TOKEN`` or ``DIR/api.token``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import hashlib
import importlib
import mimetypes
import os
import re
import secrets
import shutil
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import orjson

from globe_io.errors import CommandError
from globe_node.apiclient import DEFAULT_TIMEOUT, ApiClient, segment
from globe_node.config import CONFIG_NAME, NodeConfig, load_config, render_config
from globe_node.keys import NodeKeys, load_keys, save_keys, write_private
from globe_node.roles import Role
from protocol import canonical, keystore
from protocol.errors import DecryptionFailed, GlobeError
from protocol.genesis import Genesis, check_url
from protocol.ids import AuthorityId
from protocol.membership import (
    AUTHORITY_KINDS,
    Application,
    authority_fingerprint,
    kem_pop_answer,
    make_application,
)

__all__ = ["DISTRIBUTION", "PROG", "CommandError", "build_parser", "main"]

PROG: Final = "globe-node"
DISTRIBUTION: Final = "globe-link"
DIR_ENV: Final = "GLOBE_NODE_DIR"
PASSPHRASE_ENV: Final = "GLOBE_PASSPHRASE"  # noqa: S105 - a variable name
TOKEN_ENV: Final = "GLOBE_TOKEN"  # noqa: S105 - a variable name
DEFAULT_DIR: Final = "globe-node"
APPLICATION_FILE: Final = "application.json"
APPLICATION_ID_FILE: Final = "application.id"
KDF_COSTS: Final = {"interactive": keystore.INTERACTIVE, "moderate": keystore.MODERATE}
#: A new key file's passphrase must have at least this many characters.
MIN_PASSPHRASE: Final = 8
ROLES: Final = tuple(r.value for r in Role)
SEND_KINDS: Final = ("request", "information", "bulletin")
URGENCIES: Final = ("urgent", "priority", "routine")
TLPS: Final = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")
RESTRICTIONS: Final = ("intelligence-only", "no-onward-dissemination")
STATES: Final = ("acknowledged", "in-progress", "declined", "answered", "closed")
_USER_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
_LANG_RE: Final = re.compile(r"[a-z]{2}\Z")
_CASE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}\Z")

Result = tuple[dict[str, Any], list[str]]


def _version() -> str:
    """Return the installed distribution version, or ``unknown`` if not installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


# --- small helpers ------------------------------------------------------------------------------


def _iso(ts: object) -> str:
    """ISO 8601 UTC with a ``Z`` (``-`` when there is no time)."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _safe(value: object) -> str:
    """Text from the daemon, with control and bidi-override characters made visible."""
    return _UNSAFE.sub("?", "-" if value is None else str(value))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _dir(args: argparse.Namespace) -> Path:
    """The node directory: ``--dir``, else ``$GLOBE_NODE_DIR``, else ``./globe-node``."""
    given: Path | None = args.dir
    if given is not None:
        return given
    return Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)


def _read_passphrase_file(path: Path) -> bytes:
    try:
        value = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise CommandError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if not value:
        raise CommandError(f"passphrase file {path} is empty")
    return value


def _passphrase(passphrase_file: Path | None, *, new: bool = False) -> bytes:
    """The key passphrase: ``--passphrase-file``, then ``$GLOBE_PASSPHRASE``, then a prompt."""
    what = "the node keys"
    if passphrase_file is not None:
        value = _read_passphrase_file(passphrase_file)
    elif os.environ.get(PASSPHRASE_ENV):
        value = os.environ[PASSPHRASE_ENV].encode()
    elif sys.stdin.isatty():
        value = getpass.getpass(f"Passphrase for {what}: ").encode()
        if new and getpass.getpass("Repeat the passphrase: ").encode() != value:
            raise CommandError("the two passphrases differ")
    else:
        raise CommandError(
            f"no passphrase for {what}: pass --passphrase-file FILE or set {PASSPHRASE_ENV}"
        )
    if not value:
        raise CommandError(f"an empty passphrase cannot protect {what}")
    if new and len(value.decode("utf-8", "replace")) < MIN_PASSPHRASE:
        raise CommandError(f"the passphrase for {what} needs at least {MIN_PASSPHRASE} characters")
    return value


def _open_keys(key_path: Path, passphrase: bytes) -> NodeKeys:
    """Open ``keys.sealed``; one clear error for a wrong passphrase or a damaged file."""
    try:
        return load_keys(key_path, passphrase)
    except FileNotFoundError:
        raise CommandError(f"{key_path} not found: not a node directory") from None
    except DecryptionFailed:
        raise CommandError(f"{key_path}: wrong passphrase, or the key file was altered") from None
    except GlobeError as exc:
        raise CommandError(f"{key_path}: not a valid node key file ({exc.detail})") from None


def _load_genesis(path: Path) -> Genesis:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read genesis {path}: {exc.strerror}") from None
    try:
        return Genesis.decode(data)
    except GlobeError as exc:
        raise CommandError(f"{path}: not a valid genesis ({exc.detail})") from None


def _new_token() -> tuple[str, bytes]:
    """A fresh API token (32 random bytes, base64url) and its SHA-256."""
    token = canonical.b64e(secrets.token_bytes(32))
    return token, hashlib.sha256(token.encode("ascii")).digest()


def _parse_time(text: str, what: str) -> int:
    """An ISO 8601 date or time (UTC unless it names an offset) as Unix seconds."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"{what}: not an ISO 8601 date or time: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _node_fingerprint(authority: AuthorityId, keys: NodeKeys) -> str:
    """The authority fingerprint of this node's keys (docs/PROTOCOL.md §3.4).

    The same value ``globe-hub admin show`` prints for the node's application.
    """
    return authority_fingerprint(
        authority=authority,
        identity=keys.identity.verify_key,
        transport=keys.transport.verify_key,
        ka=keys.ka.public_key,
    )


# --- the users table (direct database access; SQLite WAL lets the daemon run meanwhile) ----------


def _users_table() -> str:
    from globe_node import db  # noqa: PLC0415 - SQLAlchemy only where needed

    return str(db.User.__tablename__)


def _connect(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise CommandError(f"{db_path} not found: run 'globe-node init' first")
    conn = sqlite3.connect(db_path, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _add_user(db_path: Path, name: str, role: str, *, replace: bool = False) -> str:
    """Store a user with a fresh token (only its SHA-256); return the token."""
    token, digest = _new_token()
    table = _users_table()
    conn = _connect(db_path)
    try:
        with conn:
            if replace:
                conn.execute(f"DELETE FROM {table} WHERE name = ?", (name,))  # noqa: S608
            conn.execute(
                f"INSERT INTO {table} (name, role, token_hash, created) VALUES (?, ?, ?, ?)",  # noqa: S608
                (name, role, digest, int(time.time())),
            )
    except sqlite3.IntegrityError:
        raise CommandError(f"user {name!r} already exists") from None
    except sqlite3.Error as exc:
        raise CommandError(f"database {db_path}: {exc}") from None
    finally:
        conn.close()
    return token


def _list_users(db_path: Path) -> list[dict[str, Any]]:
    table = _users_table()
    conn = _connect(db_path)
    try:
        rows = conn.execute(
            f"SELECT name, role, created FROM {table} ORDER BY name"  # noqa: S608
        ).fetchall()
    except sqlite3.Error as exc:
        raise CommandError(f"database {db_path}: {exc}") from None
    finally:
        conn.close()
    return [{"name": n, "role": r, "created": c} for n, r, c in rows]


async def _migrate(db_path: Path) -> None:
    from globe_node import db  # noqa: PLC0415 - SQLAlchemy and Alembic only where needed

    engine = db.make_engine(db_path)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


def _create_database(db_path: Path) -> None:
    from alembic.util.exc import CommandError as AlembicError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    try:
        asyncio.run(_migrate(db_path))
    except (SQLAlchemyError, AlembicError, ImportError) as exc:
        text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
        raise CommandError(f"cannot create the database {db_path}: {_one_line(text)}") from None
    _private_db_files(db_path)


def _private_db_files(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path = db_path.with_name(db_path.name + suffix)
        if path.exists():
            os.chmod(path, 0o600)


# --- init, apply, run ---------------------------------------------------------------------------


def _check_languages(languages: Sequence[str]) -> list[str]:
    bad = [x for x in languages if not _LANG_RE.match(x)]
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
        app_path = directory / APPLICATION_FILE
        write_private(app_path, application.signed.encode())
        written.append(app_path)
        config.blob_dir.mkdir(mode=0o700, exist_ok=True)
        written.append(config.blob_dir)
        written += [config.db_path.with_name(config.db_path.name + s) for s in ("", "-wal", "-shm")]
        _create_database(config.db_path)
        token = _add_user(config.db_path, "operator", "operator")
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


def cmd_init(args: argparse.Namespace) -> Result:
    """Create a node directory: keys, configuration, database, operator token, application."""
    directory = _dir(args)
    for name in (CONFIG_NAME, "keys.sealed", "node.db"):
        if (directory / name).exists():
            raise CommandError(
                f"{directory} already holds a node ({name} exists); refusing to overwrite it"
            )
    if directory.exists() and not directory.is_dir():
        raise CommandError(f"{directory} exists and is not a directory")
    authority = AuthorityId.parse(args.authority_id)
    country = str(args.country).upper()
    if country != authority.country:
        raise CommandError(
            f"--country {args.country} does not match the authority id {authority} "
            f"(country {authority.country})"
        )
    languages = _check_languages(args.language or ["en"])
    kinds = sorted(set(args.kind))
    genesis = _load_genesis(args.genesis)
    hub_url = check_url(args.hub_url or genesis.hub_url, "--hub-url")
    endpoint = check_url(args.endpoint, "--endpoint") if args.endpoint else None
    config = NodeConfig(
        directory=directory,
        authority=str(authority),
        hub_url=hub_url,
        peer_port=args.peer_port,
        allow_private_endpoints=args.allow_private_endpoints,
        api_port=args.api_port,
    )
    keys = NodeKeys.generate()
    application = make_application(
        genesis=genesis,
        authority=authority,
        name=args.name,
        kinds=kinds,
        languages=languages,
        contact=args.contact,
        legal_basis=args.legal_basis,
        endpoint=endpoint,
        identity=keys.identity,
        transport=keys.transport,
        ka_key=keys.ka.public_key,
        created=int(time.time()),
    )
    if genesis.is_reserved_key(bytes(keys.identity.verify_key)):  # pragma: no cover - 2**-256
        raise CommandError("generated key collides with a reserved key; run init again")
    passphrase = _passphrase(args.passphrase_file, new=True)
    _write_node(config, genesis, keys, application, passphrase=passphrase, cost=KDF_COSTS[args.kdf])
    node_fp = application.fingerprint()
    data = {
        "directory": str(directory.absolute()),
        "authority": str(authority),
        "network_id": str(genesis.network_id),
        "genesis_fingerprint": genesis.fingerprint(),
        "fingerprint": node_fp,
        "identity_key": str(keys.identity.key_id),
        "transport_key": str(keys.transport.key_id),
        "ka_key": str(keys.ka.key_id),
        "hub_url": hub_url,
        "endpoint": endpoint,
        "api": f"http://{config.api_host}:{config.api_port}",
        "application": str((directory / APPLICATION_FILE).absolute()),
        "token_file": str(config.token_path.absolute()),
        "kdf": args.kdf,
    }
    lines = [
        f"node {authority} initialised in {data['directory']}",
        f"network:             {genesis.network_id} ({_safe(genesis.name)})",
        f"genesis fingerprint: {data['genesis_fingerprint']}",
        f"node fingerprint:    {node_fp}",
        f"application:         {data['application']}",
        f"operator API token:  {data['token_file']} (mode 0600)",
        "compare both fingerprints out of band with the network admins (the node "
        "fingerprint must equal the one 'globe-hub admin show' prints for this "
        f"application), then run: globe-node apply --dir {directory}",
    ]
    return data, lines


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


def cmd_apply(args: argparse.Namespace) -> Result:
    """Submit the stored application to the hub and prove possession of the KEM key."""
    from globe_io.hubclient import HubClient  # noqa: PLC0415 - only this command talks to the hub

    config = load_config(_dir(args))
    genesis = _load_genesis(config.genesis_path)
    id_path = config.directory / APPLICATION_ID_FILE
    if args.status:
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
        line = f"application {_safe(data.get('id', app_id))} for {_safe(data.get('authority'))}"
        line += f": {_safe(data.get('status'))}"
        if data.get("reason"):
            line += f" ({_safe(data.get('reason'))})"
        return data, [line]
    raw, application = _stored_application(config, genesis)
    keys = _open_keys(config.key_path, _passphrase(args.passphrase_file))
    if application.identity_key != keys.identity.verify_key or (
        application.ka_key != keys.ka.public_key
    ):
        raise CommandError(f"{APPLICATION_FILE} was not made with this node's keys")

    async def submit() -> tuple[dict[str, Any], dict[str, Any]]:
        async with HubClient(config.hub_url, network=genesis.digest) as hub:
            first = await hub.submit_application(raw)
            app_id, challenge = first.get("id"), first.get("challenge")
            if not isinstance(app_id, str) or not isinstance(challenge, str):
                raise CommandError("the hub's answer has no application id and challenge")
            write_private(id_path, f"{app_id}\n".encode())
            answer = kem_pop_answer(
                keys.ka, application.digest, canonical.b64d(challenge, what="challenge")
            )
            return first, await hub.answer_challenge(app_id, answer)

    first, proof = asyncio.run(submit())
    data = {
        "id": first["id"],
        "authority": str(application.authority),
        "status": proof.get("status"),
        "hub_url": config.hub_url,
        "fingerprint": application.fingerprint(),
    }
    lines = [
        f"application {data['id']} for {application.authority} submitted to {config.hub_url}",
        f"status: {_safe(data['status'])}",
        f"node fingerprint: {data['fingerprint']}",
        "the admins now review it; check with: globe-node apply --status",
    ]
    return data, lines


def cmd_run(args: argparse.Namespace) -> int:
    """Run the node daemon until SIGTERM or SIGINT."""
    config = load_config(_dir(args))
    passphrase = _passphrase(args.passphrase_file)
    _open_keys(config.key_path, passphrase)  # a wrong passphrase: one clear line, before startup
    server = importlib.import_module("globe_node.server")
    code = server.run(config, passphrase)
    return int(code or 0)


# --- backup, restore, users ---------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> Result:
    """Write a backup archive of the node directory."""
    from globe_node.backup import create_backup  # noqa: PLC0415

    data = create_backup(_dir(args), args.out)
    lines = [
        f"backup of {data['authority']} written to {data['out']} "
        f"({data['files']} files, {data['archive_bytes']} bytes, mode 0600)",
        "keys.sealed stays sealed with the passphrase and message content stays encrypted "
        "under the storage key; keep the passphrase apart from the archive.",
    ]
    return data, lines


def cmd_restore(args: argparse.Namespace) -> Result:
    """Restore a backup archive into a new directory and check the passphrase opens its keys."""
    from globe_node.backup import restore_backup  # noqa: PLC0415

    dest = _dir(args)
    passphrase = _passphrase(args.passphrase_file)
    found: dict[str, Any] = {}

    def check(directory: Path) -> None:
        config = load_config(directory)
        _load_genesis(config.genesis_path)
        try:
            keys = _open_keys(config.key_path, passphrase)
        except CommandError:
            raise CommandError(
                f"{args.file}: the passphrase does not open the archived keys.sealed (wrong "
                "passphrase, or the archive was altered); nothing was restored"
            ) from None
        token = _add_user(config.db_path, "operator", "operator", replace=True)
        write_private(config.token_path, f"{token}\n".encode())
        _private_db_files(config.db_path)
        found.update(
            authority=config.authority,
            fingerprint=_node_fingerprint(AuthorityId.parse(config.authority), keys),
        )

    data = restore_backup(args.file, dest, check=check)
    data.update(found, token_file=str((dest / "api.token").absolute()))
    lines = [
        f"node {found['authority']} restored into {data['directory']} ({data['files']} files "
        "verified against the manifest; the passphrase opens keys.sealed)",
        f"node fingerprint: {found['fingerprint']}",
        f"a new operator API token is in {data['token_file']}; other users' tokens still work",
        "stop the old node for good before running this one: one node per authority.",
    ]
    return data, lines


def cmd_users_add(args: argparse.Namespace) -> Result:
    """Add a local API user and print its token once."""
    name: str = args.name
    if not _USER_RE.match(name):
        raise CommandError(
            f"user name {name!r}: 1-64 of letters, digits and . _ @ - (starting alphanumeric)"
        )
    config = load_config(_dir(args))
    token = _add_user(config.db_path, name, args.role)
    data = {"name": name, "role": args.role, "token": token}
    lines = [
        f"user {name} ({args.role}) added; token (shown only this once):",
        token,
    ]
    return data, lines


def cmd_users_list(args: argparse.Namespace) -> Result:
    """List the local API users."""
    config = load_config(_dir(args))
    users = _list_users(config.db_path)
    lines = [f"{_safe(u['name']):<24} {_safe(u['role']):<13} {_iso(u['created'])}" for u in users]
    return {"users": users}, lines or ["no users"]


# --- commands through the daemon's local API ----------------------------------------------------


def _token(args: argparse.Namespace, config: NodeConfig) -> str:
    token_file: Path | None = args.token_file
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


def _api(args: argparse.Namespace, work: Callable[[ApiClient], Awaitable[Result]]) -> Result:
    config = load_config(_dir(args))
    token = _token(args, config)
    host = f"[{config.api_host}]" if ":" in config.api_host else config.api_host
    base = f"http://{host}:{config.api_port}"

    async def go() -> Result:
        async with ApiClient(base, token, timeout=args.timeout) as api:
            return await work(api)

    return asyncio.run(go())


def _get(
    path: str, render: Callable[[dict[str, Any]], list[str]], **params: Any
) -> Callable[[argparse.Namespace], Result]:
    """A command that GETs ``path`` and renders the answer."""

    def command(args: argparse.Namespace) -> Result:
        async def work(api: ApiClient) -> Result:
            query = {k: (v(args) if callable(v) else v) for k, v in params.items()}
            data = await api.get(path, query)
            return data, render(data)

        return _api(args, work)

    return command


def _obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = data.get(name)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _render_status(d: dict[str, Any]) -> list[str]:
    directory, hub, outbox = _obj(d.get("directory")), _obj(d.get("hub")), _obj(d.get("outbox"))
    head = _safe(directory.get("head"))
    reachable = hub.get("reachable")
    reach = "not tried yet" if reachable is None else "reachable" if reachable else "unreachable"
    push = "push connected" if hub.get("push_connected") else "push not connected"
    queue = ", ".join(f"{_safe(k)} {_safe(v)}" for k, v in sorted(outbox.items())) or "empty"
    alerts = d.get("alerts")
    n_alerts = len(alerts) if isinstance(alerts, list) else alerts
    return [
        f"authority:  {_safe(d.get('authority'))} (membership: {_safe(d.get('membership'))})",
        f"directory:  entry {_safe(directory.get('seq'))}, head {head[:16]}, "
        f"{_safe(directory.get('age_s'))} s old (limit {_safe(directory.get('max_age_s'))} s), "
        f"{_safe(directory.get('members'))} members",
        f"hub:        {_safe(hub.get('url'))} {reach}, {push}",
        f"outbox:     {queue}",
        f"inbox:      {_safe(d.get('inbox_unread'))} unread",
        f"requests:   {_safe(d.get('requests_open'))} open, "
        f"{_safe(d.get('requests_overdue'))} overdue",
        f"alerts:     {_safe(n_alerts)}",
        *_behind_lines(_obj(directory.get("behind_peer"))),
    ]


def _behind_lines(behind: dict[str, Any]) -> list[str]:
    if not behind:
        return []
    return [
        f"WARNING:    {_safe(behind.get('peer'))} has seen a membership log of"
        f" {_safe(behind.get('seq'))} entries that the hub does not serve (since"
        f" {_iso(behind.get('since'))}); messages received meanwhile are marked suspect"
        " (see: globe-node alerts)"
    ]


def _render_inbox(d: dict[str, Any]) -> list[str]:
    lines = []
    for m in _items(d, "messages"):
        unread = " " if m.get("read") else "*"
        atts = m.get("attachments")
        clip = f" [{len(atts)} att]" if isinstance(atts, list) and atts else ""
        lines.append(
            f"{unread} {_safe(m.get('id')):<32} {_iso(m.get('received'))} "
            f"{_safe(m.get('from')):<12} {_safe(m.get('kind')):<16} {_safe(m.get('urgency')):<8} "
            f"TLP:{_safe(m.get('tlp')):<12} {_safe(m.get('case'))} {_safe(m.get('subject'))}{clip}"
            + (" [SUSPECT]" if m.get("suspect") else "")
        )
    return lines or ["no messages"]


def _render_outbox(d: dict[str, Any]) -> list[str]:
    lines = []
    for m in _items(d, "messages"):
        states = []
        for rid, value in sorted(_obj(m.get("recipients")).items()):
            r = _obj(value)
            state = f"{_safe(rid)}:{_safe(r.get('state'))}"
            if r.get("via"):
                state += f" via {_safe(r.get('via'))}"
            if r.get("error"):
                state += f" ({_safe(r.get('error'))}, {_safe(r.get('attempts'))} attempts)"
            states.append(state)
        lines.append(
            f"{_safe(m.get('id')):<32} {_iso(m.get('created'))} {_safe(m.get('kind')):<16} "
            f"{_safe(m.get('case'))}  {'; '.join(states)}"
        )
    return lines or ["no messages"]


def _render_message(d: dict[str, Any]) -> list[str]:
    c, meta = _obj(d.get("content")), _obj(d.get("meta"))
    restrictions = c.get("restrictions") or []
    handling = f"TLP:{_safe(c.get('tlp'))}"
    if isinstance(restrictions, list) and restrictions:
        handling += " " + ", ".join(_safe(r) for r in restrictions)
    lines = []
    if d.get("direction") == "in":
        lines.append(
            f"from:      {_safe(meta.get('sender'))} (received {_iso(meta.get('received'))}"
            f" via {_safe(meta.get('via'))}, {_safe(meta.get('order'))})"
        )
        if meta.get("suspect"):
            lines.append(f"SUSPECT:   {_safe(meta.get('suspect'))}")
    else:
        to = ", ".join(
            f"{_safe(k)} ({_safe(_obj(v).get('state'))})"
            for k, v in sorted(_obj(meta.get("recipients")).items())
        )
        lines.append(f"to:        {to} (created {_iso(meta.get('created'))})")
    lines += [
        f"kind:      {_safe(c.get('kind'))}   urgency: {_safe(c.get('urgency'))}   {handling}",
        f"subject:   {_safe(c.get('subject'))}",
    ]
    for label, key in (("case", "case"), ("reply to", "in_reply_to"), ("language", "language")):
        if c.get(key):
            lines.append(f"{label + ':':<10} {_safe(c.get(key))}")
    if c.get("deadline"):
        lines.append(f"deadline:  {_iso(c.get('deadline'))}")
    for key in ("status", "consent"):
        if c.get(key):
            text = orjson.dumps(c.get(key), option=orjson.OPT_SORT_KEYS).decode()
            lines.append(f"{key + ':':<10} {_safe(text)}")
    for n, att in enumerate(_items(c, "attachments"), start=1):
        lines.append(
            f"attachment {n}: {_safe(att.get('name'))} ({_safe(att.get('size'))} bytes, "
            f"{_safe(att.get('media_type'))})"
        )
    body = c.get("body")
    lines.append("")
    # the body keeps its line breaks; other control characters are made visible
    lines += [_safe(line) for line in str(body or "").split("\n")]
    fwd = _obj(c.get("forwarded"))
    if fwd:
        lines += [
            "",
            f"--- forwarded: written by {_safe(fwd.get('originator'))} (message"
            f" {_safe(fwd.get('message'))}, {_iso(fwd.get('created'))}), signature verified ---",
        ]
        grants = [g for g in fwd.get("consents") or [] if isinstance(g, dict)]
        for g in grants:
            to = ", ".join(_safe(x) for x in g.get("to") or [])
            lines.append(f"consent:   {_safe(g.get('from'))} granted onward use to {to}")
        lines += _render_message({"direction": "out", "content": fwd.get("content"), "meta": {
            "recipients": {str(r): {} for r in fwd.get("recipients") or []},
            "created": fwd.get("created")}})  # fmt: skip
    return lines


def _safe_filename(name: object, n: int) -> str:
    text = _UNSAFE.sub("_", str(name or "")).replace("/", "_").replace("\\", "_")
    text = text.strip().lstrip(".")[:200]
    return text or f"attachment-{n}"


def _progress(label: str) -> Callable[[int, int | None], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        if total:
            sys.stderr.write(f"\r{label}: {done * 100 // total:3d}% of {total} bytes")
        else:
            sys.stderr.write(f"\r{label}: {done} bytes")
        if total is not None and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def cmd_show(args: argparse.Namespace) -> Result:
    """Show one message; optionally save its attachments."""

    async def work(api: ApiClient) -> Result:
        path = f"/api/messages/{segment(args.msg)}"
        data = await api.get(path)
        lines = _render_message(data)
        save: Path | None = args.save_attachments
        if save is None:
            return data, lines
        atts = _items(_obj(data.get("content")), "attachments")
        save.mkdir(mode=0o700, parents=True, exist_ok=True)
        targets = [save / _safe_filename(a.get("name"), n) for n, a in enumerate(atts, start=1)]
        for target in targets:
            if target.exists():
                raise CommandError(f"{target} already exists; refusing to overwrite it")
        saved = []
        for n, target in enumerate(targets, start=1):
            size = await api.download(f"{path}/attachments/{n}", target, _progress(target.name))
            saved.append({"path": str(target.absolute()), "size": size})
            lines.append(f"saved attachment {n} to {target} ({size} bytes)")
        return {**data, "saved": saved}, lines

    return _api(args, work)


def _body(args: argparse.Namespace, *, required: bool = True) -> str | None:
    body_file: Path | None = getattr(args, "body_file", None)
    if body_file is not None:
        try:
            raw = sys.stdin.buffer.read() if str(body_file) == "-" else body_file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {body_file}: {exc.strerror}") from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"{body_file} is not UTF-8 text") from None
    body: str | None = args.body
    if body is None and required:
        raise CommandError("give the message text with --body TEXT or --body-file FILE")
    return body


def _attachments(paths: Sequence[Path] | None) -> list[tuple[Path, str, str]]:
    """The files to attach (path, name shown, media type), checked before any upload."""
    out = []
    for given in paths or []:
        path = given.expanduser().absolute()
        if not path.is_file():
            raise CommandError(f"--attach {given}: not a file")
        if not os.access(path, os.R_OK):
            raise CommandError(f"--attach {given}: not readable")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        out.append((path, path.name, media_type))
    return out


async def _upload(api: ApiClient, files: Sequence[tuple[Path, str, str]]) -> list[str]:
    """Stream each file to the daemon (read here, with this user's rights); the upload ids.

    The daemon never opens a path it is given (THREAT-MODEL.md): the bytes travel.
    """
    ids: list[str] = []
    try:
        for path, name, media_type in files:
            info = await api.upload(
                path, name=name, media_type=media_type, progress=_progress(f"upload {name}")
            )
            ids.append(str(info["id"]))
    except BaseException:
        await _discard(api, ids)
        raise
    return ids


async def _discard(api: ApiClient, ids: Sequence[str]) -> None:
    """Best effort: staged uploads a refused message did not take (they expire anyway)."""
    for upload_id in ids:
        with contextlib.suppress(GlobeError):
            await api.request("DELETE", f"/api/uploads/{segment(upload_id)}")


async def _post_with_files(
    api: ApiClient, path: str, payload: dict[str, Any], files: Sequence[tuple[Path, str, str]]
) -> dict[str, Any]:
    """Upload ``files``, then POST ``payload`` naming them; discard them if it is refused."""
    ids = await _upload(api, files)
    try:
        return await api.post(path, {**payload, "attachments": ids} if ids else payload)
    except BaseException:
        await _discard(api, ids)
        raise


def _queued(verb: str) -> Callable[[dict[str, Any]], list[str]]:
    def render(d: dict[str, Any]) -> list[str]:
        return [f"{verb}: message {_safe(d.get('id'))} queued for delivery"]

    return render


def _post(
    path: Callable[[argparse.Namespace], str],
    body: Callable[[argparse.Namespace], dict[str, Any]],
    render: Callable[[dict[str, Any]], list[str]],
) -> Callable[[argparse.Namespace], Result]:
    """A command that POSTs ``body(args)`` to ``path(args)`` and renders the answer."""

    def command(args: argparse.Namespace) -> Result:
        payload = body(args)  # local checks first: a refusal needs no daemon

        async def work(api: ApiClient) -> Result:
            data = await api.post(path(args), payload)
            return data, render(data)

        return _api(args, work)

    return command


def _ids(values: Sequence[str] | None) -> list[str]:
    return [str(AuthorityId.parse(v)) for v in values or []]


def _send_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": _ids(args.to),
        "kind": args.kind,
        "subject": args.subject,
        "body": _body(args),
        "urgency": args.urgency,
        "tlp": args.tlp,
        "restrictions": sorted(set(args.restriction or [])),
        "language": args.language,
    }
    if not _LANG_RE.match(args.language):
        raise CommandError(f"--language: not an ISO 639-1 code: {args.language!r}")
    if args.deadline is not None:
        deadline = _parse_time(args.deadline, "--deadline")
        if deadline <= time.time():
            raise CommandError(f"--deadline {args.deadline} is not in the future")
        body["deadline"] = deadline
    if args.case is not None:
        if not _CASE_RE.match(args.case):
            raise CommandError(f"--case: not a case reference: {args.case!r}")
        body["case"] = args.case
    return body


def _render_sent(d: dict[str, Any]) -> list[str]:
    return [f"message {_safe(d.get('id'))} queued for delivery (see: globe-node outbox)"]


def cmd_send(args: argparse.Namespace) -> Result:
    """Send; with ``--wait``, follow the delivery (upload progress on a terminal)."""
    payload = _send_body(args)
    files = _attachments(args.attach)

    async def work(api: ApiClient) -> Result:
        sent = await _post_with_files(api, "/api/messages", payload, files)
        if not args.wait:
            return sent, _render_sent(sent)
        mid = segment(str(sent.get("id")))
        show = _progress("uploading attachments")
        deadline = time.monotonic() + args.wait
        while True:
            state = await api.get(f"/api/outbox/{mid}")
            upload = _obj(state.get("upload"))
            if show is not None and upload:
                show(int(upload.get("done") or 0), int(upload.get("total") or 0) or None)
            recipients = _obj(state.get("recipients"))
            if all(_obj(v).get("state") != "queued" for v in recipients.values()):
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"message {mid} is still queued after {args.wait:g} s;"
                    " it stays in the outbox and is retried (see: globe-node outbox)"
                )
            await asyncio.sleep(0.2)
        lines = [f"message {mid}:"] + [
            f"  {_safe(who)}: {_safe(_obj(v).get('state'))}"
            + (f" via {_safe(_obj(v).get('via'))}" if _obj(v).get("via") else "")
            + (f" ({_safe(_obj(v).get('error'))})" if _obj(v).get("error") else "")
            for who, v in sorted(recipients.items())
        ]
        return {"id": mid, "recipients": recipients}, lines

    return _api(args, work)


def _reply_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": args.kind, "body": _body(args)}
    if args.subject is not None:
        body["subject"] = args.subject
    return body


def cmd_reply(args: argparse.Namespace) -> Result:
    """Answer a received message, with attachments uploaded first."""
    payload = _reply_body(args)
    files = _attachments(args.attach)

    async def work(api: ApiClient) -> Result:
        data = await _post_with_files(api, _msg_path("reply")(args), payload, files)
        return data, _queued("reply")(data)

    return _api(args, work)


def _status_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"state": args.state}
    if args.expected is not None:
        body["expected"] = _parse_time(args.expected, "--expected")
    if args.reason is not None:
        body["reason"] = args.reason
    text = _body(args, required=False)
    if text is not None:
        body["body"] = text
    return body


def _forward_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"to": _ids(args.to)}
    if args.note is not None:
        body["note"] = args.note
    return body


def _consent_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"decision": "granted" if args.grant else "refused"}
    if args.to:
        body["to"] = _ids(args.to)
    if args.reason is not None:
        body["reason"] = args.reason
    return body


def _msg_path(suffix: str) -> Callable[[argparse.Namespace], str]:
    return lambda args: f"/api/messages/{segment(args.msg)}/{suffix}"


def _render_cases(d: dict[str, Any]) -> list[str]:
    lines = []
    for c in _items(d, "cases"):
        parts = c.get("counterparts")
        counterparts = ",".join(map(_safe, parts)) if isinstance(parts, list) else _safe(parts)
        lines.append(
            f"{_safe(c.get('case')):<24} {_safe(c.get('messages')):>4} msgs  "
            f"{_safe(c.get('open')):>3} open  {_safe(c.get('overdue')):>3} overdue  "
            f"last {_iso(c.get('last'))}  {counterparts}"
        )
    return lines or ["no cases"]


def _render_case(d: dict[str, Any]) -> list[str]:
    lines = [f"case {_safe(d.get('case'))}"]
    requests = _items(d, "requests")
    if requests:
        lines.append("requests:")
    for r in requests:
        overdue = " OVERDUE" if r.get("overdue") else ""
        lines.append(
            f"  {_safe(r.get('message_id', r.get('id'))):<32} {_safe(r.get('direction')):<3} "
            f"{_safe(r.get('counterpart')):<12} {_safe(r.get('urgency')):<8} "
            f"{_safe(r.get('state')):<12} deadline {_iso(r.get('deadline'))}{overdue}"
        )
    messages = _items(d, "messages")
    if messages:
        lines.append("messages:")
    for m in messages:
        who = m.get("from") or m.get("sender") or m.get("counterpart")
        when = m.get("received") or m.get("created") or m.get("time")
        lines.append(
            f"  {_safe(m.get('id')):<32} {_iso(when)} {_safe(m.get('direction')):<3} "
            f"{_safe(who):<12} {_safe(m.get('kind')):<16} {_safe(m.get('subject'))}"
        )
    return lines


def _secs(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    value = float(value)
    if value >= 86400:
        return f"{value / 86400:.1f} d"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    return f"{value:.0f} s"


def _render_stats(d: dict[str, Any]) -> list[str]:
    lines = []
    for cid, value in sorted(_obj(d.get("counterparts")).items()):
        s = _obj(value)
        lines.append(
            f"{_safe(cid):<20} {_safe(s.get('requests')):>4} requests  "
            f"{_safe(s.get('answered')):>4} answered  first response "
            f"{_secs(s.get('mean_first_response_s'))}  answer {_secs(s.get('mean_answer_s'))}"
        )
    return lines or ["no requests yet"]


def _render_search(d: dict[str, Any]) -> list[str]:
    lines = []
    for r in _items(d, "results"):
        kinds, langs = r.get("kinds"), r.get("languages")
        lines.append(
            f"{_safe(r.get('authority')):<20} {_safe(r.get('status')):<10} "
            f"{','.join(map(_safe, kinds)) if isinstance(kinds, list) else '-':<28} "
            f"{','.join(map(_safe, langs)) if isinstance(langs, list) else '-':<10} "
            f"{_safe(r.get('name'))}"
        )
        lines.append(
            f"{'':<20} fingerprint {_safe(r.get('fingerprint'))}"
            + (f"  endpoint {_safe(r.get('endpoint'))}" if r.get("endpoint") else "")
        )
    return lines or ["no matching members"]


def _render_ping(d: dict[str, Any]) -> list[str]:
    def leg(name: str) -> str:
        r = _obj(d.get(name))
        if r.get("ok"):
            ms = r.get("ms")
            return f"{name}: ok" + (f" in {ms:.1f} ms" if isinstance(ms, int | float) else "")
        return f"{name}: failed" + (f" ({_safe(r.get('error'))})" if r.get("error") else "")

    return [f"{_safe(d.get('authority'))}: {leg('direct')}; {leg('hub')}"]


def _render_alerts(d: dict[str, Any]) -> list[str]:
    lines = [
        f"{_safe(a.get('id')):>5} {_iso(a.get('time'))} {_safe(a.get('kind')):<20} "
        f"{_safe(a.get('detail'))}"
        for a in _items(d, "alerts")
    ]
    return lines or ["no alerts"]


def _render_audit(d: dict[str, Any]) -> list[str]:
    lines = [
        f"{_safe(e.get('seq')):>6} {_iso(e.get('time'))} {_safe(e.get('user')):<16} "
        f"{_safe(e.get('action')):<16} {_safe(e.get('subject'))}"
        for e in _items(d, "entries")
    ]
    if d.get("verified") is True:
        lines.append("audit chain verified")
    else:
        lines.append("AUDIT CHAIN DOES NOT VERIFY: the audit log was altered")
    return lines


def cmd_audit(args: argparse.Namespace) -> Result:
    """Print the local audit log; exit 1 if its hash chain does not verify."""
    data, lines = _get("/api/audit", _render_audit)(args)
    if data.get("verified") is not True:
        if args.json or args.json_top:
            sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            print("\n".join(lines[:-1]))
        raise CommandError("the audit log's hash chain does not verify: it was altered")
    return data, lines


# --- argument parsing ---------------------------------------------------------------------------


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _api_port(text: str) -> int:
    port = _port(text)
    if port == 0:
        raise argparse.ArgumentTypeError("the API needs a port (1-65535)")
    return port


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"not a count between 1 and 1000: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("the timeout must be between 0 and 3600 seconds")
    return value


def _add_body(p: argparse.ArgumentParser, *, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--body", metavar="TEXT", help="the message text")
    group.add_argument(
        "--body-file",
        type=Path,
        metavar="FILE",
        help="read the message text from FILE ('-': stdin)",
    )


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one flat declaration
    """Build the argument parser for ``globe-node``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "GlobE Link node: an authority's endpoint on the GlobE Link secure "
            "messaging network (end-to-end encryption, signing, send and receive)."
        ),
        epilog=(
            f"Every command takes --dir DIR (default: ${DIR_ENV}, else ./{DEFAULT_DIR}) and "
            "--json. See docs/OPERATIONS.md, 'Running a node'."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} {_version()}",
        help="print the program version and exit",
    )
    parser.add_argument(
        "--json", dest="json_top", action="store_true", help="machine-readable JSON on stdout"
    )
    parser.set_defaults(func=None, help_parser=parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    common.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help=f"the node directory (default: ${DIR_ENV}, else ./{DEFAULT_DIR})",
    )
    pass_file = argparse.ArgumentParser(add_help=False)
    pass_file.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help=f"read the key passphrase from FILE (else ${PASSPHRASE_ENV}, else a prompt)",
    )
    api = argparse.ArgumentParser(add_help=False, parents=[common])
    api.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help=f"the API token (default: ${TOKEN_ENV}, else DIR/api.token)",
    )
    api.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-request timeout (default: {DEFAULT_TIMEOUT:g})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # -- without the daemon ------------------------------------------------------------------
    p = sub.add_parser(
        "init",
        parents=[common, pass_file],
        help="create a node directory (keys, configuration, database, application)",
        description=(
            "Create DIR (mode 0700) with the pinned genesis, the passphrase-sealed keys "
            "(keys.sealed, 0600), node.toml, the database with an 'operator' API user (its "
            "token in DIR/api.token, 0600) and the signed membership application "
            "(application.json). Prints the genesis and node fingerprints to compare out of band."
        ),
    )
    p.add_argument("--genesis", type=Path, required=True, metavar="FILE", help="the genesis file")
    p.add_argument("--authority-id", required=True, metavar="ID", help="e.g. FR-PNF")
    p.add_argument("--name", required=True, help="the authority's official name")
    p.add_argument("--country", required=True, metavar="CC", help="ISO 3166-1 alpha-2 code")
    p.add_argument(
        "--kind",
        required=True,
        action="append",
        choices=sorted(AUTHORITY_KINDS),
        metavar="KIND",
        help=f"authority kind, repeatable: {', '.join(sorted(AUTHORITY_KINDS))}",
    )
    p.add_argument(
        "--language",
        action="append",
        metavar="xx",
        help="working language (ISO 639-1), repeatable (default: en)",
    )
    p.add_argument("--contact", required=True, metavar="TEXT", help="duty contact (for admins)")
    p.add_argument(
        "--legal-basis",
        required=True,
        metavar="TEXT",
        help="the legal designation of the authority",
    )
    p.add_argument("--hub-url", metavar="URL", help="the hub (default: the genesis hub URL)")
    p.add_argument(
        "--endpoint",
        metavar="URL",
        help="this node's public direct-delivery URL, published in the application",
    )
    p.add_argument(
        "--peer-port", type=_port, default=0, metavar="N", help="direct-delivery port (0: none)"
    )
    p.add_argument(
        "--allow-private-endpoints",
        action="store_true",
        help="deliver directly to peers at loopback or private addresses (test networks only)",
    )
    p.add_argument(
        "--api-port", type=_api_port, default=8450, metavar="N", help="local API port (8450)"
    )
    p.add_argument(
        "--kdf",
        choices=sorted(KDF_COSTS),
        default="moderate",
        help="Argon2id cost of keys.sealed (default: moderate)",
    )
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "apply",
        parents=[common, pass_file],
        help="submit the membership application to the hub",
        description=(
            "Submit DIR/application.json to the hub and answer its key-agreement challenge "
            "(needs the passphrase); --status shows the public status of the stored application."
        ),
    )
    p.add_argument("--status", action="store_true", help="show the application's status")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser(
        "run",
        parents=[common, pass_file],
        help="run the node daemon",
        description="Run the node until SIGTERM or SIGINT (the passphrase opens keys.sealed).",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "backup",
        parents=[common],
        help="write a backup archive of the node",
        description=(
            "Write a tar.gz (mode 0600, atomically) of node.toml, genesis.json, keys.sealed, "
            "the application, a consistent snapshot of node.db (safe while the daemon runs) "
            "and blobs/, with a MANIFEST.json of SHA-256 digests. Message content stays "
            "encrypted under the storage key inside the database and keys.sealed stays sealed "
            "with the passphrase: the archive holds no usable key without the passphrase. "
            "api.token is not included (restore issues a new one)."
        ),
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the new archive")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "restore",
        parents=[common, pass_file],
        help="restore a backup archive into a new directory",
        description=(
            "Restore FILE into --dir (new or empty): every member is checked against the "
            "manifest, links, devices, absolute paths and '..' are refused, and the passphrase "
            "must open keys.sealed; on any failure nothing is left behind. The archive holds "
            "no usable key without the passphrase. A new operator API token is issued."
        ),
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the backup archive")
    p.set_defaults(func=cmd_restore)

    users = sub.add_parser("users", help="local API users (investigators, supervisors, operators)")
    users.set_defaults(func=None, help_parser=users)
    usub = users.add_subparsers(dest="users_command", metavar="COMMAND")
    p = usub.add_parser(
        "add",
        parents=[common],
        help="add a user and print its token once",
        description="Add a user directly in the database (with or without the daemon running).",
    )
    p.add_argument("name", metavar="NAME", help="the user name")
    p.add_argument("--role", required=True, choices=ROLES, help="the user's role")
    p.set_defaults(func=cmd_users_add)
    p = usub.add_parser("list", parents=[common], help="list the users")
    p.set_defaults(func=cmd_users_list)

    # -- through the daemon ------------------------------------------------------------------
    p = sub.add_parser("status", parents=[api], help="node, directory, hub and queue status")
    p.set_defaults(func=_get("/api/status", _render_status))

    p = sub.add_parser("inbox", parents=[api], help="received messages")
    p.add_argument("--unread", action="store_true", help="only unread messages")
    p.add_argument("--limit", type=_limit, default=50, metavar="N", help="at most N (50)")
    p.set_defaults(
        func=_get(
            "/api/inbox",
            _render_inbox,
            limit=lambda a: a.limit,
            unread=lambda a: 1 if a.unread else None,
        )
    )

    p = sub.add_parser("outbox", parents=[api], help="sent messages and their delivery state")
    p.add_argument("--limit", type=_limit, default=50, metavar="N", help="at most N (50)")
    p.set_defaults(func=_get("/api/outbox", _render_outbox, limit=lambda a: a.limit))

    p = sub.add_parser("show", parents=[api], help="show a message")
    p.add_argument("msg", metavar="MSG", help="the message id")
    p.add_argument(
        "--save-attachments", type=Path, metavar="DIR", help="decrypt the attachments into DIR"
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("send", parents=[api], help="send a request or information")
    p.add_argument("--to", required=True, action="extend", nargs="+", metavar="ID")
    p.add_argument("--kind", required=True, choices=SEND_KINDS)
    p.add_argument("--subject", required=True, metavar="S")
    _add_body(p, required=True)
    p.add_argument("--attach", type=Path, action="extend", nargs="+", metavar="FILE")
    p.add_argument("--urgency", choices=URGENCIES, default="routine")
    p.add_argument("--deadline", metavar="ISO-8601", help="answer deadline (UTC unless given)")
    p.add_argument("--tlp", choices=TLPS, default="AMBER", help="handling (default: AMBER)")
    p.add_argument("--restriction", action="append", choices=RESTRICTIONS)
    p.add_argument("--case", metavar="CASE", help="the case reference")
    p.add_argument("--language", default="en", metavar="xx", help="ISO 639-1 (default: en)")
    p.add_argument(
        "--wait",
        type=_seconds,
        nargs="?",
        const=600.0,
        default=None,
        metavar="SECONDS",
        help="wait until every recipient is reached or the hub holds the message (default"
        " 600 s), showing attachment upload progress on a terminal",
    )
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("reply", parents=[api], help="answer or inform the sender of a message")
    p.add_argument("msg", metavar="MSG")
    _add_body(p, required=True)
    p.add_argument("--kind", choices=("answer", "information"), default="answer")
    p.add_argument("--subject", metavar="S", help="default: Re: the original subject")
    p.add_argument("--attach", type=Path, action="extend", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_reply)

    p = sub.add_parser("status-update", parents=[api], help="report progress on a request")
    p.add_argument("msg", metavar="MSG")
    p.add_argument("--state", required=True, choices=STATES)
    p.add_argument("--expected", metavar="DATE", help="expected answer date (ISO 8601)")
    p.add_argument("--reason", metavar="R")
    _add_body(p, required=False)
    p.set_defaults(func=_post(_msg_path("status"), _status_body, _queued("status update")))

    p = sub.add_parser("forward", parents=[api], help="forward a message (consent rules apply)")
    p.add_argument("msg", metavar="MSG")
    p.add_argument("--to", required=True, action="extend", nargs="+", metavar="ID")
    p.add_argument("--note", metavar="S")
    p.set_defaults(func=_post(_msg_path("forward"), _forward_body, _queued("forward")))

    p = sub.add_parser("request-consent", parents=[api], help="ask the originator to consent")
    p.add_argument("msg", metavar="MSG")
    p.add_argument("--to", required=True, action="extend", nargs="+", metavar="ID")
    p.add_argument("--purpose", required=True, metavar="S")
    p.set_defaults(
        func=_post(
            _msg_path("request-consent"),
            lambda a: {"to": _ids(a.to), "purpose": a.purpose},
            _queued("consent request"),
        )
    )

    p = sub.add_parser("consent", parents=[api], help="grant or refuse a consent request")
    p.add_argument("msg", metavar="MSG")
    decision = p.add_mutually_exclusive_group(required=True)
    decision.add_argument("--grant", action="store_true")
    decision.add_argument("--refuse", action="store_true")
    p.add_argument("--to", action="extend", nargs="+", metavar="ID")
    p.add_argument("--reason", metavar="R")
    p.set_defaults(func=_post(_msg_path("consent"), _consent_body, _queued("consent decision")))

    p = sub.add_parser("retry", parents=[api], help="retry delivery of a message now")
    p.add_argument("msg", metavar="MSG")
    p.set_defaults(
        func=_post(
            _msg_path("retry"),
            lambda a: {},
            lambda d: [f"{_safe(d.get('queued'))} recipient(s) queued for another attempt"],
        )
    )

    p = sub.add_parser("cases", parents=[api], help="cases and their open requests")
    p.set_defaults(func=_get("/api/cases", _render_cases))

    p = sub.add_parser("case", parents=[api], help="one case: requests and messages")
    p.add_argument("case", metavar="CASE")

    def case_cmd(args: argparse.Namespace) -> Result:
        return _get(f"/api/cases/{segment(args.case)}", _render_case)(args)

    p.set_defaults(func=case_cmd)

    p = sub.add_parser("stats", parents=[api], help="response times by counterpart")
    p.set_defaults(func=_get("/api/stats", _render_stats))

    directory = sub.add_parser("directory", help="the verified member directory")
    directory.set_defaults(func=None, help_parser=directory)
    dsub = directory.add_subparsers(dest="directory_command", metavar="COMMAND")
    p = dsub.add_parser("search", parents=[api], help="search the verified directory")
    p.add_argument("--country", metavar="CC")
    p.add_argument("--kind", choices=sorted(AUTHORITY_KINDS))
    p.add_argument("--language", metavar="L")
    p.add_argument("--query", metavar="Q", help="text in the name or id")
    p.add_argument("--inactive", action="store_true", help="include suspended and revoked")
    p.set_defaults(
        func=_get(
            "/api/directory/search",
            _render_search,
            country=lambda a: a.country.upper() if a.country else None,
            kind=lambda a: a.kind,
            language=lambda a: a.language,
            q=lambda a: a.query,
            inactive=lambda a: 1 if a.inactive else None,
        )
    )

    p = sub.add_parser("ping", parents=[api], help="test the direct and hub paths to a member")
    p.add_argument("authority", metavar="ID")
    p.set_defaults(
        func=_post(
            lambda a: f"/api/ping/{segment(str(AuthorityId.parse(a.authority)))}",
            lambda a: {},
            _render_ping,
        )
    )

    keys = sub.add_parser("keys", help="key management")
    keys.set_defaults(func=None, help_parser=keys)
    ksub = keys.add_subparsers(dest="keys_command", metavar="COMMAND")
    p = ksub.add_parser("rotate", parents=[api], help="publish a fresh signed prekey now")
    p.set_defaults(
        func=_post(
            lambda a: "/api/keys/rotate",
            lambda a: {},
            lambda d: [f"new prekey {_safe(d.get('prekey'))} published"],
        )
    )

    p = sub.add_parser("sync", parents=[api], help="sync the directory from the hub now")
    p.set_defaults(
        func=_post(
            lambda a: "/api/sync",
            lambda a: {},
            lambda d: [f"{_safe(d.get('added'))} new log entries verified"],
        )
    )

    p = sub.add_parser("alerts", parents=[api], help="alerts an operator must see")
    p.set_defaults(func=_get("/api/alerts", _render_alerts))

    p = sub.add_parser("audit", parents=[api], help="the local audit log and its verification")
    p.set_defaults(func=cmd_audit)
    return parser


# --- entry point --------------------------------------------------------------------------------


def _fail(detail: str) -> int:
    print(f"{PROG}: error: {_one_line(_safe(detail))}", file=sys.stderr)
    return 1


#: Options that always take exactly one value, which may start with ``-``: ``--opt VALUE``
#: is read as ``--opt=VALUE``.
_ONE_VALUE: Final = frozenset(
    {"--body", "--subject", "--note", "--reason", "--purpose", "--contact", "--legal-basis",
     "--name", "--query"}
)  # fmt: skip


def _glue_values(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            out.append(arg)
            out.extend(args)
            break
        value = next(args, None) if arg in _ONE_VALUE else None
        out.append(arg if value is None else f"{arg}={value}")
    return out


def _emit(args: argparse.Namespace, outcome: Result | int) -> int:
    """Print a command's result (JSON or lines); its exit status."""
    if isinstance(outcome, int):
        return outcome
    data, lines = outcome
    if args.json or args.json_top:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for line in lines:
            print(line)
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``globe-node`` command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(_glue_values(sys.argv[1:] if argv is None else argv))
    func: Callable[[argparse.Namespace], Result | int] | None = args.func
    if func is None:  # no command: show what the program (or a command group) offers
        args.help_parser.print_help()
        return 0
    try:
        return _emit(args, func(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except GlobeError as exc:
        return _fail(exc.detail)
    except OSError as exc:
        return _fail(_os_error(exc))
    except Exception as exc:  # a bug: still one line, never a traceback
        if os.environ.get("GLOBE_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (set GLOBE_DEBUG=1 for details)")


if __name__ == "__main__":
    raise SystemExit(main())

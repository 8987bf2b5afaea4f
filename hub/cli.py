"""Command-line interface of the GlobE Link hub (``globe-hub``).

Two audiences share this program (docs/OPERATIONS.md):

* the **hub operator**: ``init``, ``install-genesis``, ``serve``;
* the **membership administrators**, on their own workstations (admin keys
  never reach the hub, R1): ``admin keygen``, ``admin genesis``,
  ``admin sign-genesis`` and the workflow commands ``admin applications``,
  ``show``, ``approve``, ``reject``, ``suspend``, ``reinstate``, ``revoke``,
  ``proposals``, ``log`` and ``audit``.

The admin commands trust only the genesis the admin pinned: applications are
re-verified locally, a draft admission is signed only if it is exactly the
certificate the application asks for, and the log is verified from the
genesis before any suspension, reinstatement or revocation names its ``prev``.

Every command takes ``--json`` (one JSON document on stdout).  A refusal is
one line ``globe-hub: error: <detail>`` on stderr and exit status 1; usage
errors exit 2 and an interrupt 130.  Passphrases never come from the command
line: ``--passphrase-file``, an environment variable, or a prompt on a
terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import logging
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import orjson

from globe_io.errors import CommandError, ConfigError
from globe_io.hubclient import DEFAULT_TIMEOUT, HubClient
from hub.config import CONFIG_NAME, HubConfig, Limits, default_database_url, load_config
from hub.logs import configure as configure_logging
from hub.server import HUB_KEY_PURPOSE, load_genesis, load_signing_key
from protocol import canonical, keystore, labels
from protocol.directory import TRANSITIONS, DirectoryState, HeadRelation, MemberStatus
from protocol.errors import (
    AuthError,
    GlobeError,
    MembershipError,
    ProtocolError,
    QuorumNotMet,
    RollbackDetected,
    StaleError,
)
from protocol.genesis import MAX_GENESIS_SIZE, Genesis, check_url
from protocol.ids import AuthorityId, KeyId, NetworkId
from protocol.keys import SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Application,
    Certificate,
    Checkpoint,
    MembershipAction,
    make_action,
)
from protocol.signed import SignedObject, sign_object, verify_quorum

__all__ = [
    "ADMIN_KEY_PURPOSE",
    "DISTRIBUTION",
    "PROG",
    "CommandError",
    "build_parser",
    "check_draft",
    "main",
]

PROG: Final = "globe-hub"
DISTRIBUTION: Final = "globe-link"
#: Purpose bound into sealed admin key files (a hub key file cannot pass for one).
ADMIN_KEY_PURPOSE: Final = "admin-signing-key"
HUB_PASSPHRASE_ENV: Final = "GLOBE_HUB_PASSPHRASE"  # noqa: S105 - a variable name
ADMIN_PASSPHRASE_ENV: Final = "GLOBE_ADMIN_PASSPHRASE"  # noqa: S105 - a variable name
KDF_COSTS: Final = {"interactive": keystore.INTERACTIVE, "moderate": keystore.MODERATE}
#: A new key's passphrase must have at least this many characters.
MIN_PASSPHRASE: Final = 8
DAY: Final = 86_400
#: A draft admission may start at most this long before now (admins review for days)...
MAX_DRAFT_AGE: Final = 30 * DAY
#: ...and at most this long after now (clock differences).
MAX_DRAFT_AHEAD: Final = DAY
#: The longest certificate an admin signs (five years, leap days included).
MAX_CERT_LIFETIME: Final = 1827 * DAY
APPLICATION_STATES: Final = ("awaiting-pop", "pending", "approved", "rejected")
PROPOSAL_STATES: Final = ("open", "appended", "superseded")
DATABASE_DRIVERS: Final = ("sqlite+aiosqlite", "postgresql+asyncpg")
_HEX32: Final = re.compile(r"[0-9a-f]{32}\Z")
_PAST: Final = {
    Action.ADMIT: "admitted",
    Action.UPDATE_KEYS: "re-keyed",
    Action.SUSPEND: "suspended",
    Action.REINSTATE: "reinstated",
    Action.REVOKE: "revoked",
}

Result = tuple[dict[str, Any], list[str]]


def _version() -> str:
    """Return the installed distribution version, or ``unknown`` if not installed."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


# --- small helpers ------------------------------------------------------------------------------


def _iso(ts: int | float) -> str:
    """ISO 8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _safe(value: object) -> str:
    """Text received from the hub, with control and bidi-override characters made visible."""
    return _UNSAFE.sub("?", str(value))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, *, mode: int, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file, fsync, then link or rename.

    A crash leaves either no file or the whole file, never half of one.  With
    ``overwrite=False`` an existing file is never replaced (the final step is
    a hard link, which fails if the name exists).
    """
    path = path.absolute()
    parent = path.parent
    if not parent.is_dir():
        raise CommandError(f"directory {parent} does not exist")
    if not overwrite and path.exists():
        raise CommandError(f"{path} already exists; refusing to overwrite it")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise CommandError(f"{path} already exists; refusing to overwrite it") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                if path.exists():  # pragma: no cover - file systems without hard links
                    raise CommandError(f"{path} already exists; refusing to overwrite it") from None
                os.replace(tmp, path)  # pragma: no cover
        _fsync_dir(parent)
    finally:
        tmp.unlink(missing_ok=True)


def _read_passphrase_file(path: Path) -> bytes:
    try:
        value = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise CommandError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    if not value:
        raise CommandError(f"passphrase file {path} is empty")
    return value


def _passphrase(passphrase_file: Path | None, env: str, *, what: str, new: bool = False) -> bytes:
    """A passphrase from ``--passphrase-file``, then ``$env``, then a terminal prompt."""
    if passphrase_file is not None:
        value = _read_passphrase_file(passphrase_file)
    elif os.environ.get(env):
        value = os.environ[env].encode()
    elif sys.stdin.isatty():
        value = getpass.getpass(f"Passphrase for {what}: ").encode()
        if new and getpass.getpass("Repeat the passphrase: ").encode() != value:
            raise CommandError("the two passphrases differ")
    else:
        raise CommandError(f"no passphrase for {what}: pass --passphrase-file FILE or set {env}")
    if not value:
        raise CommandError(f"an empty passphrase cannot protect {what}")
    if new and len(value.decode("utf-8", "replace")) < MIN_PASSPHRASE:
        raise CommandError(f"the passphrase for {what} needs at least {MIN_PASSPHRASE} characters")
    return value


def _parse_public_key(text: str, what: str) -> VerifyKey:
    """A base64url Ed25519 public key, given inline or as a file holding it (e.g. hub.pub)."""
    value = text.strip()
    candidate = Path(value)
    if ("/" in value or value.endswith(".pub")) and candidate.is_file():
        try:
            value = candidate.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{what}: cannot read {candidate}: {exc}") from None
    try:
        return VerifyKey(canonical.b64d(value, what=what))
    except GlobeError:
        raise CommandError(f"{what}: not a base64url Ed25519 public key") from None


def _key_info(key: VerifyKey) -> dict[str, str]:
    """The public key and its key id: what the genesis names the hub and admin keys by."""
    return {"public_key": canonical.b64e(bytes(key)), "key_id": str(key.key_id)}


def load_admin_key(path: Path, passphrase: bytes) -> SigningKey:
    """Open a sealed admin key file."""
    return load_signing_key(path, passphrase, purpose=ADMIN_KEY_PURPOSE, what="admin key")


def _genesis_info(genesis: Genesis) -> dict[str, Any]:
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


# --- init, install-genesis, serve ---------------------------------------------------------------


def _check_database_url(url: str) -> str:
    """Refuse URLs that would not round-trip through hub.toml or need a sync driver."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - keep admin commands light
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
    orig = getattr(exc, "orig", None)
    text = str(orig or exc) or type(exc).__name__
    return _one_line(text.splitlines()[0] if text.splitlines() else text)


async def _migrate_database(url: str) -> None:
    from hub import db  # noqa: PLC0415 - SQLAlchemy and Alembic only where needed

    engine = db.make_engine(url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


def cmd_init(args: argparse.Namespace) -> Result:
    """Create a hub directory: sealed hub key, hub.pub, hub.toml and a migrated database."""
    from alembic.util.exc import CommandError as AlembicError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from hub.config import render_config  # noqa: PLC0415

    directory: Path = args.dir
    for name in (CONFIG_NAME, "hub.key"):
        if (directory / name).exists():
            raise CommandError(
                f"{directory} already holds a hub ({name} exists); refusing to overwrite it"
            )
    database_url: str = args.database_url or default_database_url(directory)
    shown_url = _check_database_url(database_url)
    host: str = args.host
    if not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]{1,253}", host):
        raise CommandError(f"--host: not a host name or address: {host!r}")
    config = HubConfig(
        directory=directory, database_url=database_url, host=host, port=args.port, limits=Limits()
    )
    passphrase = _passphrase(args.passphrase_file, HUB_PASSPHRASE_ENV, what="the hub key", new=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    try:
        asyncio.run(_migrate_database(database_url))
    except (SQLAlchemyError, AlembicError, OSError) as exc:
        raise CommandError(f"cannot prepare the database {shown_url}: {_db_error(exc)}") from None
    key = SigningKey.generate()
    sealed = keystore.seal_secret(
        key.seed, passphrase, purpose=HUB_KEY_PURPOSE, cost=KDF_COSTS[args.kdf_cost]
    )
    write_file(config.key_path, sealed, mode=0o600, overwrite=False)
    public = canonical.b64e(bytes(key.verify_key))
    write_file(directory / "hub.pub", f"{public}\n".encode(), mode=0o644, overwrite=True)
    write_file(directory / CONFIG_NAME, render_config(config).encode(), mode=0o600, overwrite=False)
    load_config(directory)  # the file we wrote must read back
    info = _key_info(key.verify_key)
    data = {
        "directory": str(directory.absolute()),
        "hub_key": info["public_key"],
        "key_id": info["key_id"],
        "key_file": str(config.key_path.absolute()),
        "config": str((directory / CONFIG_NAME).absolute()),
        "database_url": shown_url,
        "kdf_cost": args.kdf_cost,
    }
    lines = [
        f"hub initialised in {data['directory']}",
        f"hub key:     {info['public_key']}",
        f"key id:      {info['key_id']}",
        f"database:    {shown_url}",
        "next: the admins name this hub key in the genesis (globe-hub admin genesis "
        f"--hub-key {info['public_key']} ...), then run: globe-hub install-genesis "
        f"--dir {directory} GENESIS_FILE",
    ]
    return data, lines


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


def cmd_install_genesis(args: argparse.Namespace) -> Result:
    """Verify a genesis and install it as the one this hub serves."""

    directory: Path = args.dir
    config = load_config(directory)
    genesis = load_genesis(args.file)
    hub_key = _read_hub_pub(directory)
    if genesis.hub_key != hub_key:
        raise CommandError(
            f"{args.file} names another hub key ({genesis.hub_key.key_id}); this hub's key "
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
        write_file(dest, genesis.encode(), mode=0o644, overwrite=False)
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


def cmd_serve(args: argparse.Namespace) -> Result:
    """Run the hub until SIGTERM or SIGINT."""
    from alembic.util.exc import CommandError as AlembicError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from hub import server  # noqa: PLC0415

    directory: Path = args.dir
    config = load_config(directory)
    genesis_path: Path | None = args.genesis
    if genesis_path is None and not config.genesis_path.exists():
        raise ConfigError(
            f"no genesis installed in {directory}: run 'globe-hub install-genesis --dir "
            f"{directory} FILE' or pass --genesis FILE"
        )
    passphrase = _passphrase(args.passphrase_file, HUB_PASSPHRASE_ENV, what="the hub key")
    configure_logging(
        getattr(logging, args.log_level.upper()), json_lines=args.log_format == "json"
    )
    if args.log_level != "debug":  # Alembic's per-start banner is noise at info level
        logging.getLogger("alembic").setLevel(logging.WARNING)
    host: str = args.host or config.host
    port: int = args.port or config.port
    # With --json, stdout carries only the final JSON document; the banner goes to stderr.
    banner: AbstractContextManager[object] = (
        redirect_stdout(sys.stderr) if args.json or args.json_top else nullcontext()
    )
    try:
        with banner:
            asyncio.run(
                server.serve(config, passphrase, host=host, port=port, genesis_path=genesis_path)
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
    return {"status": "stopped", "host": host, "port": port}, []


# --- admin keys and the genesis ceremony ---------------------------------------------------------


def cmd_admin_keygen(args: argparse.Namespace) -> Result:
    """Generate an admin signing key, sealed under a passphrase."""
    out: Path = args.out
    if out.exists():
        raise CommandError(f"{out} already exists; refusing to overwrite a key file")
    if not out.absolute().parent.is_dir():
        raise CommandError(f"directory {out.absolute().parent} does not exist")
    passphrase = _passphrase(
        args.passphrase_file, ADMIN_PASSPHRASE_ENV, what="the admin key", new=True
    )
    key = SigningKey.generate()
    sealed = keystore.seal_secret(
        key.seed, passphrase, purpose=ADMIN_KEY_PURPOSE, cost=KDF_COSTS[args.kdf_cost]
    )
    write_file(out, sealed, mode=0o600, overwrite=False)
    info = _key_info(key.verify_key)
    data = {"key_file": str(out.absolute()), **info}
    lines = [
        f"admin key written to {out} (keep it and its passphrase on this workstation)",
        f"public key:  {info['public_key']}",
        f"key id:      {info['key_id']}",
        "send the public key to the genesis coordinator; check that the genesis names this key id.",
    ]
    return data, lines


@dataclass(frozen=True, slots=True)
class _GenesisDraft:
    """A genesis container, structurally valid, possibly short of its quorum."""

    signed: SignedObject
    genesis: Genesis | None
    network_id: str
    name: str
    admins: dict[KeyId, str]
    threshold: int
    signers: frozenset[KeyId]


def _inspect_genesis(signed: SignedObject, what: str) -> _GenesisDraft:
    """Check every field of a (partially signed) genesis and every signature on it."""
    genesis: Genesis | None
    try:
        genesis = Genesis.from_signed(signed)
    except QuorumNotMet:
        genesis = None  # every field check precedes the quorum check: the payload is sound
    payload = signed.payload_json(what="genesis")
    raw_admins = payload["admins"]
    assert isinstance(raw_admins, list)  # noqa: S101 - checked by Genesis.from_signed
    admins: dict[KeyId, str] = {}
    keys: dict[KeyId, VerifyKey] = {}
    for item in raw_admins:
        assert isinstance(item, dict)  # noqa: S101
        key = VerifyKey(canonical.b64d(str(item["key"]), what="genesis admin key"))
        admins[key.key_id] = str(item["name"])
        keys[key.key_id] = key
    for sig in signed.signatures:
        if sig.key_id not in keys or not keys[sig.key_id].verifies(
            labels.GENESIS, signed.payload, sig.sig
        ):
            raise CommandError(f"{what}: the signature by {sig.key_id} does not verify")
    threshold = payload["threshold"]
    assert isinstance(threshold, int)  # noqa: S101
    signers = verify_quorum(signed, labels.GENESIS, keys, 0)
    return _GenesisDraft(
        signed,
        genesis,
        str(payload["network_id"]),
        str(payload["name"]),
        admins,
        threshold,
        signers,
    )


def _genesis_report(draft: _GenesisDraft, path: Path, verb: str) -> Result:
    n, k = len(draft.signers), draft.threshold
    data: dict[str, Any] = {
        "file": str(path.absolute()),
        "network_id": draft.network_id,
        "name": draft.name,
        "signatures": n,
        "threshold": k,
        "signed_by": sorted(draft.admins[s] for s in draft.signers),
        "valid": draft.genesis is not None,
        "fingerprint": draft.genesis.fingerprint() if draft.genesis is not None else None,
        "admins": [{"name": name, "key_id": str(kid)} for kid, name in draft.admins.items()],
    }
    lines = [f"genesis {verb} {path}"]
    if draft.genesis is None:
        lines.append(
            f"{n} of {k} signatures; run `globe-hub admin sign-genesis {path} --key KEY` "
            "on the other admins' workstations"
        )
    else:
        lines += [
            f"{n} of {k} signatures; the genesis is valid: network {draft.network_id} "
            f"({draft.name})",
            f"fingerprint: {data['fingerprint']}",
            "compare this fingerprint out of band with every admin and the hub operator, "
            f"then install it on the hub: globe-hub install-genesis --dir DIR {path}",
        ]
    return data, lines


def _load_signers(paths: Sequence[Path], passphrase_file: Path | None) -> list[SigningKey]:
    keys: list[SigningKey] = []
    shared: bytes | None = None
    if passphrase_file is not None or os.environ.get(ADMIN_PASSPHRASE_ENV):
        shared = _passphrase(passphrase_file, ADMIN_PASSPHRASE_ENV, what="the admin keys")
    for path in paths:
        passphrase = shared or _passphrase(None, ADMIN_PASSPHRASE_ENV, what=str(path))
        keys.append(load_admin_key(path, passphrase))
    return keys


def cmd_admin_genesis(args: argparse.Namespace) -> Result:
    """Build a genesis, signed by the admin keys given with ``--sign`` (possibly fewer than k)."""
    out: Path = args.out
    network_id = NetworkId.parse(args.network_id)
    admins: list[tuple[str, VerifyKey]] = []
    for i, spec in enumerate(args.admin, start=1):
        name, sep, pub = spec.rpartition("=")
        if not sep:
            name, pub = f"admin-{i}", spec
        admins.append((name, _parse_public_key(pub, f"--admin {spec}")))
    names = [n for n, _ in admins]
    if len(set(names)) != len(names):
        raise CommandError("--admin: every admin needs a distinct name")
    if len({bytes(k) for _, k in admins}) != len(admins):
        raise CommandError("--admin: every admin needs a distinct key")
    if not 1 <= args.threshold <= len(admins):
        raise CommandError(f"--threshold must be between 1 and {len(admins)} (the admins named)")
    hub_key = _parse_public_key(args.hub_key, "--hub-key")
    hub_url = check_url(args.hub_url, "--hub-url")
    if out.exists():
        raise CommandError(f"{out} already exists; refusing to overwrite it")
    signers = _load_signers(args.sign or [], args.passphrase_file)
    named = {k.key_id for _, k in admins}
    for path, key in zip(args.sign or [], signers, strict=True):
        if key.key_id not in named:
            raise CommandError(f"{path} is not one of the admins named with --admin")
    payload = {
        "type": "genesis",
        "v": 1,
        "network_id": str(network_id),
        "name": args.name,
        "admins": [{"name": n, "key": canonical.b64e(bytes(k))} for n, k in admins],
        "threshold": args.threshold,
        "hub_key": canonical.b64e(bytes(hub_key)),
        "hub_url": hub_url,
        "created": int(time.time()),
    }
    signed = sign_object(payload, labels.GENESIS, signers)
    draft = _inspect_genesis(signed, "genesis")
    write_file(out, signed.encode(), mode=0o644, overwrite=False)
    return _genesis_report(draft, out, "written to")


def cmd_admin_sign_genesis(args: argparse.Namespace) -> Result:
    """Add this admin's signature to a genesis file."""
    path: Path = args.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read genesis {path}: {exc.strerror}") from None
    try:
        signed = SignedObject.decode(data, max_size=MAX_GENESIS_SIZE, what="genesis")
        before = _inspect_genesis(signed, str(path))
    except CommandError:
        raise
    except GlobeError as exc:
        raise CommandError(f"{path}: not a genesis ({exc.detail})") from None
    key = _load_signers([args.key], args.passphrase_file)[0]
    if key.key_id not in before.admins:
        raise CommandError(f"{args.key} is not one of the admins named in {path}")
    if key.key_id in before.signers:
        return _genesis_report(before, path, "already signed by you:")
    after = _inspect_genesis(signed.with_signature(labels.GENESIS, key), str(path))
    write_file(path, after.signed.encode(), mode=0o644, overwrite=True)
    return _genesis_report(after, path, f"signed by {before.admins[key.key_id]}:")


# --- admin workflow (talks to the hub) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Admin:
    """What every admin workflow command works from."""

    genesis: Genesis
    key: SigningKey
    name: str
    hub_url: str
    timeout: float

    def client(self) -> HubClient:
        return HubClient(
            self.hub_url, network=self.genesis.digest, key=self.key, timeout=self.timeout
        )

    def admin_name(self, key_id: KeyId) -> str:
        for a in self.genesis.admins:
            if a.key.key_id == key_id:
                return a.name
        return str(key_id)


def _admin_context(args: argparse.Namespace) -> _Admin:
    genesis = load_genesis(args.genesis)
    hub_url = check_url(args.hub or genesis.hub_url, "--hub")
    passphrase = _passphrase(args.passphrase_file, ADMIN_PASSPHRASE_ENV, what=str(args.key))
    key = load_admin_key(args.key, passphrase)
    names = {a.key.key_id: a.name for a in genesis.admins}
    if key.key_id not in names:
        raise CommandError(
            f"{args.key} is not an admin key of the pinned genesis {genesis.network_id}"
        )
    return _Admin(genesis, key, names[key.key_id], hub_url, args.timeout)


def _run_admin(
    args: argparse.Namespace, work: Callable[[_Admin, HubClient], Awaitable[Result]]
) -> Result:
    ctx = _admin_context(args)

    async def run() -> Result:
        async with ctx.client() as client:
            try:
                return await work(ctx, client)
            except StaleError as exc:
                raise StaleError(
                    f"{exc.detail}: check this workstation's clock against the hub's"
                ) from None
            except AuthError as exc:
                raise await _explain_auth(ctx, client, exc) from None

    return asyncio.run(run())


async def _explain_auth(ctx: _Admin, client: HubClient, exc: AuthError) -> GlobeError:
    """An authentication refusal is uniform on the wire; find the likely cause."""
    try:
        served = await client.genesis()
    except GlobeError:
        return exc
    if served != ctx.genesis.encode():
        return AuthError(
            f"the hub at {ctx.hub_url} serves another genesis than the pinned one "
            f"({ctx.genesis.fingerprint()}); check --genesis and --hub"
        )
    return exc


def _app_id(text: str) -> str:
    if not _HEX32.match(text):
        raise CommandError(f"application id must be 32 lower-case hex digits, not {text!r}")
    return text


def _field(obj: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CommandError(f"the hub's {what} has no valid {name!r}")
    return value


def check_draft(app: Application, draft: bytes, genesis: Genesis, now: int) -> MembershipAction:
    """Refuse a draft admission unless it certifies exactly what ``app`` asks for.

    The draft must be an admit of the application's authority, without
    ``prev`` or reason, whose certificate equals
    :meth:`Certificate.from_application` with the draft's serial and validity,
    whose payload is byte for byte what :func:`make_action` builds from it,
    and whose validity is sane: it starts between :data:`MAX_DRAFT_AGE` before
    and :data:`MAX_DRAFT_AHEAD` after ``now``, ends after ``now`` and lasts at
    most :data:`MAX_CERT_LIFETIME`.
    """
    action = MembershipAction.from_signed(SignedObject(draft, ()), genesis)
    cert = action.certificate
    if (
        action.action is not Action.ADMIT
        or action.authority != app.authority
        or action.prev is not None
        or action.reason is not None
        or cert is None
    ):
        raise MembershipError(f"the draft is not a plain admission of {app.authority}")
    expected = Certificate.from_application(
        app, serial=cert.serial, not_before=cert.not_before, not_after=cert.not_after
    )
    if cert != expected:
        raise MembershipError("the draft certificate does not match the application")
    rebuilt = make_action(
        genesis=genesis,
        action=Action.ADMIT,
        authority=app.authority,
        prev=None,
        issued=action.issued,
        certificate=expected,
    )
    if rebuilt.signed.payload != draft:  # pragma: no cover - defence in depth (strict decoding)
        raise MembershipError("the draft admission carries more than the application asks for")
    if not now - MAX_DRAFT_AGE <= cert.not_before <= now + MAX_DRAFT_AHEAD:
        raise MembershipError(
            f"the draft certificate starts {_iso(cert.not_before)}: not within "
            f"{MAX_DRAFT_AGE // DAY} days before and one day after now"
        )
    if not now - MAX_DRAFT_AGE <= action.issued <= now + MAX_DRAFT_AHEAD:
        raise MembershipError(f"the draft admission is dated {_iso(action.issued)}")
    if cert.not_after <= now or cert.not_after - cert.not_before > MAX_CERT_LIFETIME:
        raise MembershipError(
            f"the draft certificate's validity ({_iso(cert.not_before)} to "
            f"{_iso(cert.not_after)}) is not a current validity of at most five years"
        )
    return action


def _decode_application(info: dict[str, Any], genesis: Genesis) -> Application:
    raw = _field(info, "application", str, "application")
    return Application.decode(canonical.b64d(raw, what="application"), genesis)


def _outcome(result: dict[str, Any], action: Action, authority: AuthorityId) -> list[str]:
    status = _field(result, "status", str, "answer")
    if status == "appended":
        seq = _field(result, "seq", int, "answer")
        return [f"{authority} {_PAST[action]} at log entry {seq}"]
    n = _field(result, "signatures", int, "answer")
    k = _field(result, "threshold", int, "answer")
    return [f"{authority}: {action.value} signature {n} of {k}; {k - n} more admin(s) must sign"]


def cmd_admin_applications(args: argparse.Namespace) -> Result:
    """List applications (optionally by status)."""

    async def work(ctx: _Admin, hub: HubClient) -> Result:
        apps = await hub.admin_applications(args.status)
        lines = [
            f"{_safe(a.get('id'))}  {_safe(a.get('authority')):<12} {_safe(a.get('status')):<12} "
            f"{_iso(a['created']) if isinstance(a.get('created'), int) else '?':<20}  "
            f"{_safe(a.get('name'))}"
            for a in apps
        ]
        return {"applications": apps}, lines or ["no applications"]

    return _run_admin(args, work)


def cmd_admin_show(args: argparse.Namespace) -> Result:
    """Show an application, verified locally, and whether its draft admission matches it."""
    app_id = _app_id(args.app)

    async def work(ctx: _Admin, hub: HubClient) -> Result:
        info = await hub.admin_application(app_id)
        app = _decode_application(info, ctx.genesis)
        status = _safe(_field(info, "status", str, "application"))
        draft_raw = info.get("draft")
        draft: dict[str, Any] = {"present": draft_raw is not None, "matches": False}
        if isinstance(draft_raw, str):
            try:
                action = check_draft(
                    app, canonical.b64d(draft_raw, what="draft"), ctx.genesis, int(time.time())
                )
            except GlobeError as exc:
                draft["detail"] = exc.detail
            else:
                assert action.certificate is not None  # noqa: S101 - an admit carries one
                draft |= {
                    "matches": True,
                    "detail": "the draft admission certifies exactly this application",
                    "serial": action.certificate.serial,
                    "not_before": action.certificate.not_before,
                    "not_after": action.certificate.not_after,
                }
        else:
            draft["detail"] = "no draft yet: the applicant has not proven its key-agreement key"
        data: dict[str, Any] = {
            "id": app_id,
            "authority": str(app.authority),
            "name": app.name,
            "country": app.authority.country,
            "kinds": list(app.kinds),
            "languages": list(app.languages),
            "contact": app.contact,
            "legal_basis": app.legal_basis,
            "endpoint": app.endpoint,
            "created": app.created,
            "identity_key": str(app.identity_key.key_id),
            "transport_key": str(app.transport_key.key_id),
            "ka_key": str(app.ka_key.key_id),
            "fingerprint": app.fingerprint(),
            "status": status,
            "reason": info.get("reason"),
            "draft": draft,
        }
        lines = [
            f"application  {app_id}",
            f"authority    {app.authority} ({app.name})",
            f"kinds        {', '.join(app.kinds)}",
            f"languages    {', '.join(app.languages)}",
            f"contact      {app.contact}".replace("\n", "\n             "),
            f"legal basis  {app.legal_basis}".replace("\n", "\n             "),
            f"endpoint     {app.endpoint or '-'}",
            f"created      {_iso(app.created)}",
            f"identity key {app.identity_key.key_id}",
            f"transport    {app.transport_key.key_id}",
            f"ka key       {app.ka_key.key_id}",
            f"fingerprint  {data['fingerprint']}",
            f"status       {status}"
            + (f" ({_safe(info['reason'])})" if isinstance(info.get("reason"), str) else ""),
        ]
        if draft["matches"]:
            lines.append(
                f"draft        matches the application (serial {draft['serial']}, valid "
                f"{_iso(draft['not_before'])} to {_iso(draft['not_after'])})"
            )
        else:
            lines.append(f"draft        DOES NOT MATCH: {draft['detail']}")
        return data, lines

    return _run_admin(args, work)


def cmd_admin_approve(args: argparse.Namespace) -> Result:
    """Sign the draft admission of an application (after checking it locally)."""
    app_id = _app_id(args.app)

    async def work(ctx: _Admin, hub: HubClient) -> Result:
        info = await hub.admin_application(app_id)
        app = _decode_application(info, ctx.genesis)
        status = _field(info, "status", str, "application")
        draft_raw = info.get("draft")
        if status != "pending" or not isinstance(draft_raw, str):
            raise CommandError(f"application {app_id} is {_safe(status)}, not pending approval")
        draft = canonical.b64d(draft_raw, what="draft")
        check_draft(app, draft, ctx.genesis, int(time.time()))
        container = SignedObject(draft, ()).with_signature(labels.MEMBERSHIP_ACTION, ctx.key)
        result = await hub.admin_submit_action(container.encode())
        data = {
            "application": app_id,
            "fingerprint": app.fingerprint(),
            **result,
        }
        return data, _outcome(result, Action.ADMIT, app.authority)

    return _run_admin(args, work)


def cmd_admin_reject(args: argparse.Namespace) -> Result:
    """Reject an application, with a reason the applicant can read."""
    app_id = _app_id(args.app)
    reason = _check_reason(args.reason)

    async def work(ctx: _Admin, hub: HubClient) -> Result:
        result = await hub.admin_reject(app_id, reason)
        authority = _safe(result.get("authority"))
        return result, [f"application {app_id} ({authority}) rejected"]

    return _run_admin(args, work)


def _check_reason(reason: str) -> str:
    if not reason.strip():
        raise CommandError("--reason must not be empty")
    if canonical.has_hidden_chars(reason) or len(reason) > 2000:
        raise CommandError("--reason: at most 2000 characters, no control or bidi characters")
    return reason


async def _verified_log(
    ctx: _Admin, hub: HubClient
) -> tuple[DirectoryState, list[dict[str, Any]], Checkpoint, HeadRelation]:
    """Fetch the checkpoint and the whole log; verify both from the pinned genesis."""
    checkpoint = Checkpoint.decode(await hub.checkpoint(), ctx.genesis)
    state = DirectoryState(ctx.genesis)  # what verify_log does, keeping each entry
    admins = ctx.genesis.admin_keys
    rows: list[dict[str, Any]] = []
    for raw in await hub.log_entries():
        entry = state.apply(raw)
        action = entry.action
        signers = verify_quorum(action.signed, labels.MEMBERSHIP_ACTION, admins, 0)
        rows.append(
            {
                "seq": entry.seq,
                "time": entry.time,
                "action": action.action.value,
                "authority": str(action.authority),
                "signers": sorted(ctx.admin_name(k) for k in signers),
                "reason": action.reason,
                "hash": entry.hash.hex(),
            }
        )
    relation = state.check_checkpoint(checkpoint)
    if relation is HeadRelation.PEER_AHEAD:
        raise RollbackDetected(
            f"the hub's checkpoint names {checkpoint.seq} entries but it served {state.seq}"
        )
    return state, rows, checkpoint, relation


def _member_action(action: Action) -> Callable[[argparse.Namespace], Result]:
    def command(args: argparse.Namespace) -> Result:
        authority = AuthorityId.parse(args.authority)
        reason = _check_reason(args.reason)

        async def work(ctx: _Admin, hub: HubClient) -> Result:
            state, _rows, _cp, _rel = await _verified_log(ctx, hub)
            member = state.member(authority)
            if (member.status, action) not in TRANSITIONS:
                raise CommandError(
                    f"cannot {action.value} {authority}: it is {member.status.value}"
                )
            prev = member.last_action
            chosen: tuple[SignedObject, MembershipAction] | None = None
            best = -1
            for p in await hub.admin_proposals("open"):
                if p.get("authority") != str(authority) or p.get("action") != action.value:
                    continue
                try:
                    signed = SignedObject.from_json(p.get("signed", {}), what="proposal")
                    proposed = MembershipAction.from_signed(signed, ctx.genesis)
                except GlobeError:
                    continue
                if (
                    proposed.action is action
                    and proposed.authority == authority
                    and proposed.prev == prev
                ):
                    count = len(
                        verify_quorum(signed, labels.MEMBERSHIP_ACTION, ctx.genesis.admin_keys, 0)
                    )
                    if count > best:
                        chosen, best = (signed, proposed), count
            if chosen is not None:
                proposed = chosen[1]
                container = SignedObject(chosen[0].payload, ()).with_signature(
                    labels.MEMBERSHIP_ACTION, ctx.key
                )
            else:
                proposed = make_action(
                    genesis=ctx.genesis,
                    action=action,
                    authority=authority,
                    prev=prev,
                    issued=int(time.time()),
                    reason=reason,
                    signers=[ctx.key],
                )
                container = proposed.signed
            result = await hub.admin_submit_action(container.encode())
            data = {
                **result,
                "co_signed": chosen is not None,
                "reason": proposed.reason,
                "prev": prev.hex(),
            }
            lines = []
            if chosen is not None:
                lines.append(
                    f"co-signed the open {action.value} proposal for {authority} "
                    f"(reason: {proposed.reason})"
                )
            return data, lines + _outcome(result, action, authority)

        return _run_admin(args, work)

    command.__doc__ = f"{action.value.capitalize()} a member (admin quorum)."
    return command


def cmd_admin_proposals(args: argparse.Namespace) -> Result:
    """List membership actions collecting signatures."""

    async def work(ctx: _Admin, hub: HubClient) -> Result:
        proposals = await hub.admin_proposals(args.status)
        lines = []
        for p in proposals:
            signed = p.get("signed")
            sigs = signed.get("sigs") if isinstance(signed, dict) else None
            count = len(sigs) if isinstance(sigs, list) else 0
            seq = p.get("seq")
            created = p.get("created")
            lines.append(
                f"{_safe(p.get('proposal'))[:16]}  {_safe(p.get('action')):<11} "
                f"{_safe(p.get('authority')):<12} {_safe(p.get('status')):<10} "
                f"{count} of {ctx.genesis.threshold}  "
                f"{_iso(created) if isinstance(created, int) else '?'}"
                + (f"  entry {seq}" if isinstance(seq, int) else "")
            )
        return {"proposals": proposals}, lines or ["no proposals"]

    return _run_admin(args, work)


def cmd_admin_log(args: argparse.Namespace) -> Result:
    """Fetch the whole membership log, verify it and the hub's checkpoint, and print it."""

    async def work(ctx: _Admin, hub: HubClient) -> Result:
        state, rows, cp, relation = await _verified_log(ctx, hub)
        counts = {s.value: 0 for s in MemberStatus}
        for m in state.members.values():
            counts[m.status.value] += 1
        data = {
            "network_id": str(ctx.genesis.network_id),
            "genesis_fingerprint": ctx.genesis.fingerprint(),
            "entries": rows,
            "head": {"seq": state.seq, "hash": state.head.hex(), "time": state.time},
            "checkpoint": {"seq": cp.seq, "head": cp.head.hex(), "time": cp.time},
            "members": counts,
        }
        lines = [
            f"{r['seq']:>6}  {_iso(r['time'])}  {r['action']:<11} {r['authority']:<12} "
            f"signed by {', '.join(r['signers'])}"
            + (f"  ({r['reason']})" if r["reason"] is not None else "")
            for r in rows
        ]
        lines.append(
            f"head: entry {state.seq}, hash {state.head.hex()}; verified from genesis "
            f"{ctx.genesis.network_id}; hub checkpoint at entry {cp.seq} "
            f"({_iso(cp.time)}) {'matches' if relation is HeadRelation.SAME else 'is a prefix'}"
        )
        return data, lines

    return _run_admin(args, work)


def cmd_admin_audit(args: argparse.Namespace) -> Result:
    """Print the hub's audit trail; ``--out`` also writes it as a JSON export."""
    page = 1000

    async def work(ctx: _Admin, hub: HubClient) -> Result:
        records: list[dict[str, Any]] = []
        since: int = args.since
        while True:
            batch = await hub.admin_audit(since, page)
            records.extend(batch)
            ids = [r.get("id") for r in batch]
            last = ids[-1] if ids else None
            if len(batch) < page or not isinstance(last, int) or last <= since:
                break
            since = last
        lines = [
            f"{_safe(r.get('id')):>6}  "
            f"{_iso(r['time']) if isinstance(r.get('time'), int) else '?':<20}  "
            f"{_safe(r.get('actor')):<16} {_safe(r.get('action')):<20} "
            f"{_safe(r.get('subject')):<12} "
            f"{_safe(orjson.dumps(r.get('detail'), option=orjson.OPT_SORT_KEYS).decode())}"
            for r in records
        ]
        data: dict[str, Any] = {"records": records}
        if args.out is not None:
            export = {
                "type": "globe-hub-audit-export",
                "network_id": str(ctx.genesis.network_id),
                "genesis_fingerprint": ctx.genesis.fingerprint(),
                "hub_url": ctx.hub_url,
                "exported": int(time.time()),
                "exported_by": ctx.name,
                "records": records,
            }
            body = orjson.dumps(export, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
            write_file(args.out, body + b"\n", mode=0o600, overwrite=True)
            data["out"] = str(args.out.absolute())
            lines.append(f"{len(records)} records written to {args.out}")
        return data, lines or ["no audit records"]

    return _run_admin(args, work)


# --- argument parsing ---------------------------------------------------------------------------


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or len(text) > 15:
        raise argparse.ArgumentTypeError(f"not a non-negative integer: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("the timeout must be between 0 and 3600 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one flat declaration
    """Build the argument parser for ``globe-hub``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "GlobE Link hub: membership, signed directory and store-and-forward "
            "routing for the GlobE Link secure messaging network."
        ),
        epilog="See docs/OPERATIONS.md for the genesis ceremony and the admin workflow.",
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
    pass_file = argparse.ArgumentParser(add_help=False)
    pass_file.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help="read the key passphrase from FILE (else the environment, else a prompt)",
    )
    kdf = argparse.ArgumentParser(add_help=False)
    kdf.add_argument(
        "--kdf-cost",
        choices=sorted(KDF_COSTS),
        default="moderate",
        help="Argon2id cost of the key file (default: moderate)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "init",
        parents=[common, pass_file, kdf],
        help="create a hub directory (key, configuration, database)",
        description=(
            "Create DIR (mode 0700) with the passphrase-sealed hub key, hub.pub, hub.toml "
            f"and a migrated database; print the hub public key for the genesis. The "
            f"passphrase comes from --passphrase-file or ${HUB_PASSPHRASE_ENV}."
        ),
    )
    p.add_argument("--dir", type=Path, required=True, help="the hub directory")
    p.add_argument(
        "--database-url",
        metavar="URL",
        help="sqlite+aiosqlite:///PATH (default: DIR/hub.db) or postgresql+asyncpg://...",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8440, help="listen port (default: 8440)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "install-genesis",
        parents=[common],
        help="install the genesis that names this hub's key",
        description="Verify FILE and install it as DIR/genesis.json (only if it names this hub).",
    )
    p.add_argument("--dir", type=Path, required=True, help="the hub directory")
    p.add_argument("file", type=Path, metavar="FILE", help="the genesis file")
    p.set_defaults(func=cmd_install_genesis)

    p = sub.add_parser(
        "serve",
        parents=[common, pass_file],
        help="run the hub",
        description=(
            "Run the hub until SIGTERM or SIGINT. The key passphrase comes from "
            f"--passphrase-file or ${HUB_PASSPHRASE_ENV} (never from the command line)."
        ),
    )
    p.add_argument("--dir", type=Path, required=True, help="the hub directory")
    p.add_argument("--host", help="listen address (default: from hub.toml)")
    p.add_argument("--port", type=_port, help="listen port (default: from hub.toml)")
    p.add_argument(
        "--genesis",
        type=Path,
        metavar="FILE",
        help="serve this genesis (default: DIR/genesis.json)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="log verbosity on stderr (default: info)",
    )
    p.add_argument(
        "--log-format",
        choices=["json", "text"],
        default="json",
        help="JSON lines (default, for log collectors) or plain text on stderr",
    )
    p.set_defaults(func=cmd_serve)

    admin = sub.add_parser(
        "admin",
        help="membership administrator commands (run on an admin workstation)",
        description=(
            "Admin keys stay on admin workstations. Key passphrases come from "
            f"--passphrase-file, ${ADMIN_PASSPHRASE_ENV} or a prompt."
        ),
    )
    admin.set_defaults(func=None, help_parser=admin)
    asub = admin.add_subparsers(dest="admin_command", metavar="COMMAND")

    p = asub.add_parser(
        "keygen",
        parents=[common, pass_file, kdf],
        help="generate an admin signing key",
        description="Generate an admin signing key sealed under a passphrase (file mode 0600).",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the new key file")
    p.set_defaults(func=cmd_admin_keygen)

    p = asub.add_parser(
        "genesis",
        parents=[common, pass_file],
        help="build (and sign) the network genesis",
        description=(
            "Build the genesis and sign it with the --sign key files. With fewer than K "
            "signatures the file is written partially signed; the other admins add theirs "
            "with 'admin sign-genesis'."
        ),
    )
    p.add_argument("--network-id", required=True, metavar="ID", help="e.g. globe-link")
    p.add_argument("--name", required=True, help="the network's display name")
    p.add_argument(
        "--admin",
        required=True,
        action="extend",
        nargs="+",
        metavar="[NAME=]PUB",
        help="an admin's display name and base64url public key (a key alone gets the name "
        "admin-N; name it when the key starts with '-')",
    )
    p.add_argument("--threshold", type=int, required=True, metavar="K", help="approvals needed")
    p.add_argument("--hub-url", required=True, metavar="URL", help="the hub's public URL")
    p.add_argument(
        "--hub-key", required=True, metavar="PUB", help="the hub's public key (or its hub.pub)"
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the genesis file")
    p.add_argument(
        "--sign", type=Path, action="extend", nargs="+", metavar="KEYFILE", help="admin key files"
    )
    p.set_defaults(func=cmd_admin_genesis)

    p = asub.add_parser(
        "sign-genesis",
        parents=[common, pass_file],
        help="add your signature to a genesis file",
        description="Add this admin's signature to FILE (in place).",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the genesis file")
    p.add_argument("--key", type=Path, required=True, metavar="KEYFILE", help="your admin key")
    p.set_defaults(func=cmd_admin_sign_genesis)

    work = argparse.ArgumentParser(add_help=False, parents=[common, pass_file])
    work.add_argument(
        "--genesis", type=Path, required=True, metavar="FILE", help="the pinned genesis"
    )
    work.add_argument("--key", type=Path, required=True, metavar="FILE", help="your admin key")
    work.add_argument("--hub", metavar="URL", help="the hub URL (default: the genesis hub_url)")
    work.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-request timeout (default: {DEFAULT_TIMEOUT:g})",
    )

    p = asub.add_parser("applications", parents=[work], help="list membership applications")
    p.add_argument("--status", choices=APPLICATION_STATES, help="only applications in this state")
    p.set_defaults(func=cmd_admin_applications)

    p = asub.add_parser("show", parents=[work], help="show and check one application")
    p.add_argument("app", metavar="APP", help="the application id")
    p.set_defaults(func=cmd_admin_show)

    p = asub.add_parser(
        "approve",
        parents=[work],
        help="sign the admission of an application",
        description=(
            "Verify the application and its draft admission against the pinned genesis, "
            "then sign the draft. The member is admitted when K distinct admins have signed."
        ),
    )
    p.add_argument("app", metavar="APP", help="the application id")
    p.set_defaults(func=cmd_admin_approve)

    p = asub.add_parser("reject", parents=[work], help="reject an application")
    p.add_argument("app", metavar="APP", help="the application id")
    p.add_argument("--reason", required=True, help="why (the applicant sees it)")
    p.set_defaults(func=cmd_admin_reject)

    for action in (Action.SUSPEND, Action.REINSTATE, Action.REVOKE):
        p = asub.add_parser(
            action.value,
            parents=[work],
            help=f"{action.value} a member (admin quorum)",
            description=(
                f"Verify the whole log from the pinned genesis, then sign a {action.value} "
                "action on AUTHORITY (or co-sign the open proposal for the same action)."
            ),
        )
        p.add_argument("authority", metavar="AUTHORITY", help="the authority id, e.g. FR-PNF")
        p.add_argument("--reason", required=True, help="why (recorded in the log)")
        p.set_defaults(func=_member_action(action))

    p = asub.add_parser("proposals", parents=[work], help="list actions collecting signatures")
    p.add_argument("--status", choices=PROPOSAL_STATES, help="only proposals in this state")
    p.set_defaults(func=cmd_admin_proposals)

    p = asub.add_parser("log", parents=[work], help="verify and print the membership log")
    p.set_defaults(func=cmd_admin_log)

    p = asub.add_parser("audit", parents=[work], help="print the hub's audit trail")
    p.add_argument("--since", type=_count, default=0, metavar="N", help="records after id N")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write a JSON export to FILE")
    p.set_defaults(func=cmd_admin_audit)
    return parser


# --- entry point --------------------------------------------------------------------------------


def _fail(detail: str) -> int:
    print(f"{PROG}: error: {_one_line(_safe(detail))}", file=sys.stderr)
    return 1


#: Options that always take exactly one value, which may start with ``-`` (a base64url
#: key does one time in 64, a reason may): ``--opt VALUE`` is read as ``--opt=VALUE``.
_ONE_VALUE: Final = frozenset({"--hub-key", "--reason", "--name"})


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


def main(argv: list[str] | None = None) -> int:
    """Run the ``globe-hub`` command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(_glue_values(sys.argv[1:] if argv is None else argv))
    func: Callable[[argparse.Namespace], Result] | None = args.func
    if func is None:  # no command: show what the program (or ``admin``) offers
        args.help_parser.print_help()
        return 0
    try:
        data, lines = func(args)
        if args.json or args.json_top:
            sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            for line in lines:
                print(line)
        sys.stdout.flush()
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

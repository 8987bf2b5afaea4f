"""Admin keys and the genesis ceremony: ``keygen``, ``genesis``, ``sign-genesis``
(docs/OPERATIONS.md §3).  Nothing here talks to the hub."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from globe_admin.session import (
    ADMIN_KEY_PURPOSE,
    ADMIN_PASSPHRASE_ENV,
    admin_passphrase,
    load_admin_key,
)
from globe_io import cli
from globe_io.errors import CommandError
from protocol import canonical, keystore, labels
from protocol.errors import GlobeError, QuorumNotMet
from protocol.genesis import MAX_GENESIS_SIZE, Genesis, check_url
from protocol.ids import KeyId, NetworkId
from protocol.keys import SigningKey, VerifyKey
from protocol.signed import SignedObject, sign_object, verify_quorum

__all__ = ["genesis", "keygen", "sign_genesis"]

_passphrase_file = cli.passphrase_file_option(ADMIN_PASSPHRASE_ENV)


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


@cli.command(
    "keygen",
    help="Generate an admin signing key sealed under a passphrase (file mode 0600).",
    short_help="generate an admin signing key",
)
@click.option("--out", type=cli.PATH, required=True, metavar="FILE", help="the new key file")
@_passphrase_file
@cli.kdf_option("--kdf-cost", what="the key file")
def keygen(*, out: Path, passphrase_file: Path | None, kdf_cost: str) -> cli.Result:
    """Generate an admin signing key, sealed under a passphrase."""
    if out.exists():
        raise CommandError(f"{out} already exists; refusing to overwrite a key file")
    if not out.absolute().parent.is_dir():
        raise CommandError(f"directory {out.absolute().parent} does not exist")
    passphrase = admin_passphrase(passphrase_file, what="the admin key", new=True)
    key = SigningKey.generate()
    sealed = keystore.seal_secret(
        key.seed, passphrase, purpose=ADMIN_KEY_PURPOSE, cost=cli.KDF_COSTS[kdf_cost]
    )
    cli.write_file(out, sealed, mode=0o600, overwrite=False)
    public, key_id = canonical.b64e(bytes(key.verify_key)), str(key.key_id)
    data = {"key_file": str(out.absolute()), "public_key": public, "key_id": key_id}
    lines = [
        f"admin key written to {out} (keep it and its passphrase on this workstation)",
        f"public key:  {public}",
        f"key id:      {key_id}",
        "send the public key to the genesis coordinator; check that the genesis names this key id.",
    ]
    return data, lines


# --- the genesis --------------------------------------------------------------------------------


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
    network_id, name = str(payload["network_id"]), str(payload["name"])
    return _GenesisDraft(signed, genesis, network_id, name, admins, threshold, signers)


def _genesis_report(draft: _GenesisDraft, path: Path, verb: str) -> cli.Result:
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
            f"{n} of {k} signatures; run `globe-admin sign-genesis {path} --key KEY` "
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
    """Open each key file: one passphrase for all from a file or the environment, else a
    prompt per key."""
    keys: list[SigningKey] = []
    shared: bytes | None = None
    if passphrase_file is not None or os.environ.get(ADMIN_PASSPHRASE_ENV):
        shared = admin_passphrase(passphrase_file, what="the admin keys")
    for path in paths:
        passphrase = shared or admin_passphrase(None, what=str(path))
        keys.append(load_admin_key(path, passphrase))
    return keys


def _admins(specs: Sequence[str]) -> list[tuple[str, VerifyKey]]:
    """``[NAME=]PUB`` specifications: distinct names, distinct keys."""
    admins: list[tuple[str, VerifyKey]] = []
    for i, spec in enumerate(specs, start=1):
        name, sep, pub = spec.rpartition("=")
        if not sep:
            name, pub = f"admin-{i}", spec
        admins.append((name, _parse_public_key(pub, f"--admin {spec}")))
    names = [n for n, _ in admins]
    if len(set(names)) != len(names):
        raise CommandError("--admin: every admin needs a distinct name")
    if len({bytes(k) for _, k in admins}) != len(admins):
        raise CommandError("--admin: every admin needs a distinct key")
    return admins


@cli.command(
    "genesis",
    help="Build the genesis and sign it with the --sign key files. With fewer than K "
    "signatures the file is written partially signed; the other admins add theirs with "
    "'globe-admin sign-genesis'.",
    short_help="build (and sign) the network genesis",
)
@click.option("--network-id", required=True, metavar="ID", help="e.g. globe-link")
@click.option("--name", required=True, help="the network's display name")
@cli.many(
    "--admin",
    required=True,
    metavar="[NAME=]PUB",
    help="an admin's display name and base64url public key (a key alone gets the name "
    "admin-N; name it when the key starts with '-')",
)
@click.option("--threshold", type=int, required=True, metavar="K", help="approvals needed")
@click.option("--hub-url", required=True, metavar="URL", help="the hub's public URL")
@click.option(
    "--hub-key", required=True, metavar="PUB", help="the hub's public key (or its hub.pub)"
)
@click.option("--out", type=cli.PATH, required=True, metavar="FILE", help="the genesis file")
@cli.many("--sign", type=cli.PATH, metavar="KEYFILE", help="admin key files")
@_passphrase_file
def genesis(
    *,
    network_id: str,
    name: str,
    admin: tuple[str, ...],
    threshold: int,
    hub_url: str,
    hub_key: str,
    out: Path,
    sign: tuple[Path, ...],
    passphrase_file: Path | None,
) -> cli.Result:
    """Build a genesis, signed by the admin keys given with --sign (possibly fewer than k)."""
    network = NetworkId.parse(network_id)
    admins = _admins(admin)
    if not 1 <= threshold <= len(admins):
        raise CommandError(f"--threshold must be between 1 and {len(admins)} (the admins named)")
    hub = _parse_public_key(hub_key, "--hub-key")
    url = check_url(hub_url, "--hub-url")
    if out.exists():
        raise CommandError(f"{out} already exists; refusing to overwrite it")
    signers = _load_signers(sign, passphrase_file)
    named = {k.key_id for _, k in admins}
    for path, key in zip(sign, signers, strict=True):
        if key.key_id not in named:
            raise CommandError(f"{path} is not one of the admins named with --admin")
    payload = {
        "type": "genesis",
        "v": 1,
        "network_id": str(network),
        "name": name,
        "admins": [{"name": n, "key": canonical.b64e(bytes(k))} for n, k in admins],
        "threshold": threshold,
        "hub_key": canonical.b64e(bytes(hub)),
        "hub_url": url,
        "created": int(time.time()),
    }
    draft = _inspect_genesis(sign_object(payload, labels.GENESIS, signers), "genesis")
    cli.write_file(out, draft.signed.encode(), mode=0o644, overwrite=False)
    return _genesis_report(draft, out, "written to")


@cli.command(
    "sign-genesis",
    help="Add this admin's signature to FILE (in place).",
    short_help="add your signature to a genesis file",
)
@click.argument("file", type=cli.PATH, metavar="FILE")
@click.option(
    "--key",
    type=cli.PATH,
    required=True,
    metavar="KEYFILE",
    help="your admin key",
)
@_passphrase_file
def sign_genesis(*, file: Path, key: Path, passphrase_file: Path | None) -> cli.Result:
    """Add this admin's signature to a genesis file."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read genesis {file}: {exc.strerror}") from None
    try:
        signed = SignedObject.decode(data, max_size=MAX_GENESIS_SIZE, what="genesis")
        before = _inspect_genesis(signed, str(file))
    except CommandError:
        raise
    except GlobeError as exc:
        raise CommandError(f"{file}: not a genesis ({exc.detail})") from None
    signing_key = _load_signers([key], passphrase_file)[0]
    if signing_key.key_id not in before.admins:
        raise CommandError(f"{key} is not one of the admins named in {file}")
    if signing_key.key_id in before.signers:
        return _genesis_report(before, file, "already signed by you:")
    after = _inspect_genesis(signed.with_signature(labels.GENESIS, signing_key), str(file))
    cli.write_file(file, after.signed.encode(), mode=0o644, overwrite=True)
    return _genesis_report(after, file, f"signed by {before.admins[signing_key.key_id]}:")

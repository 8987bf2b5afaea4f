"""``globe-node keys update``: ask the admins to certify new keys (docs/PROTOCOL.md §6.8;
docs/OPERATIONS.md, "Replace the node's keys").

Works on the node directory itself, like ``apply`` (the passphrase opens ``keys.sealed``;
the daemon may run).  New identity, transport and key-agreement keys (``--keep`` keeps a
current one) are written beside the current ones in ``keys.sealed`` — one atomic
replacement, under the key file's lock — and a key-update request signed by the current
identity key and the new signing keys goes to the hub, with the answer to its KEM
challenge.  The admins compare the new fingerprint with the authority out of band and
sign the ``update-keys``; the running daemon switches when its verified log certifies the
new keys (:mod:`globe_node.rekey`).  Running the command again with a request pending
submits the same request again (the same bytes: a lost answer is harmless).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from globe_io import cli
from globe_io.errors import CommandError
from globe_io.hubapi import KeyUpdateStatus
from globe_io.hubclient import HubClient
from globe_node.cli.common import dir_option, open_keys, passphrase, passphrase_file_option
from globe_node.config import NodeConfig, load_config
from globe_node.keys import ROLES, NextKeys, NodeKeys, file_cost, key_file_lock, save_keys
from protocol.errors import GlobeError
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.keyupdate import make_key_update
from protocol.membership import kem_pop_answer
from protocol.signed import SignedObject

__all__ = ["update"]

#: The roles as the request names them (PROTOCOL.md §6.8), by ``--keep`` name.
_NAMES = {"identity": "identity", "transport": "transport", "ka": "key-agreement"}


def _request(genesis: Genesis, authority: AuthorityId, keys: NodeKeys) -> SignedObject:
    """The request for ``keys.next``: the same bytes every time (Ed25519 is deterministic)."""
    nxt = keys.next
    assert nxt is not None  # noqa: S101 - callers check
    return make_key_update(
        genesis=genesis, authority=authority, current=keys.identity, identity=nxt.identity,
        transport=nxt.transport, ka_key=nxt.ka.public_key, created=nxt.created,
    )  # fmt: skip


def _fingerprint(authority: AuthorityId, nxt: NextKeys) -> str:
    return nxt.fingerprint(authority)


async def _status(config: NodeConfig, genesis: Genesis, ku_id: str) -> KeyUpdateStatus | None:
    async with HubClient(config.hub_url, network=genesis.digest) as hub:
        try:
            return await hub.key_update_status(ku_id)
        except GlobeError as exc:
            if exc.slug == "not-found":
                return None
            raise


async def _submit(
    config: NodeConfig, genesis: Genesis, request: SignedObject, nxt: NextKeys
) -> dict[str, Any]:
    """Submit the request and answer its KEM challenge; what the hub says of it."""
    ku_id = request.digest()[:16].hex()
    async with HubClient(config.hub_url, network=genesis.digest) as hub:
        try:
            created = await hub.submit_key_update(request.encode())
        except GlobeError as exc:
            if (
                exc.slug != "state-conflict"
                or (known := await _status(config, genesis, ku_id)) is None
            ):
                raise
            return {"id": ku_id, "status": known.status, "reason": known.reason}
        answer = kem_pop_answer(nxt.ka, request.digest(), created.challenge)
        proven = await hub.answer_key_update(created.id, answer)
        return {"id": created.id, "status": proven.status, "reason": None}


def _lines(data: dict[str, Any]) -> list[str]:
    lines = [
        f"key update {data['id']} for {data['authority']}: {cli.safe(data['status'])}"
        + (f" ({cli.safe(data['reason'])})" if data.get("reason") else ""),
        f"replaces: {', '.join(data['replaced'])}",
        f"new node fingerprint: {data['fingerprint']}",
    ]
    status = data["status"]
    if status == "pending":
        lines.append(
            "read the fingerprint to the admins by telephone or in person; once they sign, "
            "the running daemon switches to the new keys by itself"
        )
    elif status == "approved":
        lines.append("approved: the daemon switches to the new keys at its next sync")
    elif status == "rejected":
        lines.append("rejected: 'globe-node keys update --discard' drops these keys")
    return lines


@cli.command(
    "update",
    help="Make new identity, transport and key-agreement keys (--keep ROLE keeps one), keep "
    "them beside the current ones in keys.sealed (same passphrase, one atomic replacement), "
    "and ask the admins to certify them: a key-update request signed by the current identity "
    "key and the new signing keys, and the answer to the hub's key-agreement challenge. The "
    "daemon may run; it switches when its log certifies the new keys. Run again to submit "
    "the pending request again; --status shows it, --discard drops rejected keys.",
    short_help="ask the admins to certify new keys for this node",
)
@dir_option
@passphrase_file_option
@click.option(
    "--keep",
    type=click.Choice(ROLES),
    multiple=True,
    help="keep this current key (identity, transport or ka; repeatable)",
)
@click.option("--status", "show", is_flag=True, help="show the pending key update")
@click.option("--discard", is_flag=True, help="drop the pending keys (once rejected)")
def update(
    *,
    directory: Path,
    passphrase_file: Path | None,
    keep: tuple[str, ...],
    show: bool,
    discard: bool,
) -> cli.Result:
    """Ask the admins to certify new keys for this node."""
    config = load_config(directory)
    genesis = cli.load_genesis(config.genesis_path)
    authority = AuthorityId.parse(config.authority)
    secret = passphrase(passphrase_file)
    if show or discard:
        if keep:
            raise CommandError("--keep makes a new key update; not with --status or --discard")
        return _pending(config, genesis, authority, secret, discard=discard)
    if set(keep) == set(ROLES):
        raise CommandError("--keep names every key: nothing would be replaced")
    with key_file_lock(config.key_path):
        keys = open_keys(config.key_path, secret)
        if keys.next is None:
            keys = keys.with_next(
                NextKeys.generate(keys, keep=frozenset(keep), created=int(time.time()))
            )
            save_keys(config.key_path, keys, secret, file_cost(config.key_path))
        elif keep:
            raise CommandError(
                "a key update is pending already: --keep applies to a new one (see --status)"
            )
    nxt = keys.next
    assert nxt is not None  # noqa: S101 - set above
    request = _request(genesis, authority, keys)
    answer = asyncio.run(_submit(config, genesis, request, nxt))
    data = {
        **answer,
        "authority": str(authority),
        "replaced": [_NAMES[r] for r in ROLES if _differs(keys, nxt, r)],
        "fingerprint": _fingerprint(authority, nxt),
        "hub_url": config.hub_url,
    }
    return data, _lines(data)


def _differs(keys: NodeKeys, nxt: NextKeys, role: str) -> bool:
    if role == "identity":
        return nxt.identity.seed != keys.identity.seed
    if role == "transport":
        return nxt.transport.seed != keys.transport.seed
    return nxt.ka.raw != keys.ka.raw


def _pending(
    config: NodeConfig, genesis: Genesis, authority: AuthorityId, secret: bytes, *, discard: bool
) -> cli.Result:
    """``--status`` and ``--discard``."""
    with key_file_lock(config.key_path):
        keys = open_keys(config.key_path, secret)
        nxt = keys.next
        if nxt is None:
            if discard:
                raise CommandError("no key update is pending: nothing to discard")
            return {"pending": False}, ["no key update is pending"]
        request = _request(genesis, authority, keys)
        ku_id = request.digest()[:16].hex()
        known = asyncio.run(_status(config, genesis, ku_id))
        status = "unknown to the hub" if known is None else known.status
        if discard:
            if known is not None and known.status != "rejected":
                raise CommandError(
                    f"key update {ku_id} is {status}: only rejected keys are discarded "
                    "(ask the admins to reject it first)"
                )
            save_keys(config.key_path, keys.with_next(None), secret, file_cost(config.key_path))
    data = {
        "pending": not discard,
        "id": ku_id,
        "status": status,
        "reason": None if known is None else known.reason,
        "authority": str(authority),
        "replaced": [_NAMES[r] for r in ROLES if _differs(keys, nxt, r)],
        "fingerprint": _fingerprint(authority, nxt),
    }
    if discard:
        return data, [f"key update {ku_id} ({status}): its keys were discarded"]
    return data, _lines(data)

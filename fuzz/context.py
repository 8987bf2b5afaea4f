"""What the fuzz targets verify against, read once from ``tests/vectors/*.json``.

The vectors are a complete development network (genesis, a six-entry log, four
members) with every private key published for testing, so a target can check a
fuzzed structure against the same directory, and re-sign a fuzzed payload with
the key the real signer would use: the mutated bytes then pass the signature
and reach the checks that come after it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from protocol.directory import DirectoryState, verify_log
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey, VerifyKey

__all__ = ["VECTORS", "Context", "RequestCase", "context", "load_vectors"]

#: The vector files: the seed corpus and the targets' context come from here.
VECTORS: Final = Path(__file__).resolve().parent.parent / "tests" / "vectors"


def load_vectors(name: str) -> Any:
    """One vector file, parsed (its binary values are lower-case hex strings)."""
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))


def _hex(value: str) -> bytes:
    return bytes.fromhex(value)


@dataclass(frozen=True, slots=True)
class RequestCase:
    """A signed request of ``request_auth.json``: what its verifier is told."""

    transport: SigningKey
    audience: str
    now: int


@dataclass(frozen=True, slots=True)
class Context:
    """The development network of the vectors, with its private keys."""

    genesis: Genesis
    #: The log of ``log.json`` (the first ``base`` entries), continued by ``directory.json``.
    entries: tuple[bytes, ...]
    base: int
    now: int
    hub: SigningKey
    admins: tuple[SigningKey, ...]
    #: authority -> (identity, transport) signing keys, from the applications.
    members: dict[str, tuple[SigningKey, SigningKey]]
    #: ``key_update.json``'s entries 7-10, another continuation of ``log.json``'s six.
    key_update_entries: tuple[bytes, ...]
    #: The signing keys certified after the applications (``key_update.json``'s requests,
    #: ``directory.json``'s rotations), so key-update payloads can be signed as a member would.
    new_keys: tuple[SigningKey, ...]
    #: authority -> (identity key that signs its prekey, the prekey's private half).
    prekeys: dict[str, tuple[VerifyKey, KemPrivateKey]]
    attachment_key: bytes
    attachment_blob_id: str
    forwarder: AuthorityId
    forward_recipient: AuthorityId
    request: RequestCase

    def directory(self, entries: int | None = None) -> DirectoryState:
        """A fresh directory verified from the first ``entries`` log entries.

        By default the ``base`` entries of ``log.json``: the directory the other vectors
        (envelopes, receipts, forwards) were made against.
        """
        return verify_log(self.genesis, self.entries[: self.base if entries is None else entries])

    def signer(self, authority: str) -> SigningKey:
        """The identity key of a member of the vectors."""
        return self.members[authority][0]


@functools.cache
def context() -> Context:
    """The context, built once per process."""
    genesis_v = load_vectors("genesis")
    genesis = Genesis.decode(_hex(genesis_v["genesis"]))
    log = load_vectors("log")
    entries = [_hex(e["entry"]) for e in log["entries"]]
    more = [_hex(e["entry"]) for e in load_vectors("directory")["entries"]]
    members = {
        a["authority"]: (
            SigningKey(_hex(a["identity_seed"])),
            SigningKey(_hex(a["transport_seed"])),
        )
        for a in load_vectors("application")["applications"]
    }
    prekeys = {
        p["authority"]: (VerifyKey(_hex(p["identity_key"])), KemPrivateKey(_hex(p["private_key"])))
        for p in load_vectors("prekey")["prekeys"]
    }
    key_update = load_vectors("key_update")
    directory = load_vectors("directory")["keys"]
    new_keys = [
        *(
            SigningKey(_hex(r[seed]))
            for r in key_update["requests"].values()
            for seed in ("identity_seed", "transport_seed")
        ),
        SigningKey(_hex(directory["fr_pnf_identity_seed"])),
        SigningKey(_hex(directory["de_bka_transport_seed"])),
    ]
    attachment = load_vectors("attachment")
    forward = load_vectors("forward")
    request = load_vectors("request_auth")["cases"][0]
    return Context(
        genesis=genesis,
        entries=(*entries, *more),
        base=len(entries),
        now=int(log["now"]),
        hub=SigningKey(_hex(genesis_v["hub"]["seed"])),
        admins=tuple(SigningKey(_hex(a["seed"])) for a in genesis_v["admins"]),
        members=members,
        key_update_entries=tuple(_hex(e["entry"]) for e in key_update["entries"]),
        new_keys=tuple(new_keys),
        prekeys=prekeys,
        attachment_key=_hex(attachment["key"]),
        attachment_blob_id=attachment["blob_id"],
        forwarder=AuthorityId.parse(forward["forwarder"]),
        forward_recipient=AuthorityId.parse(forward["recipient"]),
        request=RequestCase(
            transport=SigningKey(_hex(request["transport_seed"])),
            audience=request["audience"],
            now=int(request["now"]),
        ),
    )

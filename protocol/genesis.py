"""The network genesis: the root of trust every node pins (R1, docs/PROTOCOL.md §6).

A genesis names the network, its admin signing keys, the approval threshold
``k`` of ``n``, the hub's signing key and URL.  It is a signed object whose
payload carries ``"type": "genesis"``, signed under ``globe/v1/genesis`` by at
least ``k`` of the admins it names (so each admin proved possession of their
key).  Its digest identifies the network in every other structure, and its
fingerprint is what operators compare out of band before pinning it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from protocol import canonical, crypto, labels
from protocol.errors import MalformedError, UnsupportedVersion, UsageError
from protocol.ids import KeyId, NetworkId
from protocol.keys import SigningKey, VerifyKey
from protocol.signed import SignedObject, sign_object, verify_quorum

__all__ = [
    "MAX_ADMINS",
    "MAX_GENESIS_SIZE",
    "AdminKey",
    "Genesis",
    "check_url",
    "make_genesis",
]

MAX_ADMINS: Final = 32
MAX_GENESIS_SIZE: Final = 16 * 1024
_URL_RE: Final = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?\Z")


def check_url(url: str, what: str) -> str:
    """Refuse anything but a plain ``http(s)://host[:port][/path]`` URL."""
    if len(url) > 2048 or not _URL_RE.match(url):
        raise MalformedError(f"{what}: must be an http(s) URL without query or credentials")
    return url


@dataclass(frozen=True, slots=True)
class AdminKey:
    """An admin signing key and a display name."""

    name: str
    key: VerifyKey


@dataclass(frozen=True, slots=True)
class Genesis:
    """A verified genesis.  Build with :func:`make_genesis` or :meth:`decode`."""

    signed: SignedObject
    network_id: NetworkId
    name: str
    admins: tuple[AdminKey, ...]
    threshold: int
    hub_key: VerifyKey
    hub_url: str
    created: int
    #: The 32-byte network digest bound into every other structure.
    digest: bytes
    #: ``digest`` in base64url, as it appears in ``network`` fields.
    network_b64: str
    _reserved: frozenset[bytes]

    @property
    def admin_keys(self) -> dict[KeyId, VerifyKey]:
        """Admin keys by key id (a fresh dict)."""
        return {a.key.key_id: a.key for a in self.admins}

    def fingerprint(self) -> str:
        """Twelve groups of five digits, to compare out of band before pinning."""
        return crypto.fingerprint_digits(labels.GENESIS_FINGERPRINT, self.digest)

    def encode(self) -> bytes:
        """Canonical container bytes (the genesis file)."""
        return self.signed.encode()

    def is_reserved_key(self, raw: bytes) -> bool:
        """Whether ``raw`` is the hub's key or an admin's (R4: members may not use them)."""
        return raw in self._reserved

    @classmethod
    def decode(cls, data: bytes) -> Genesis:
        """Strictly decode and verify a genesis file (quorum of its own admins)."""
        signed = SignedObject.decode(data, max_size=MAX_GENESIS_SIZE, what="genesis")
        return cls.from_signed(signed)

    @classmethod
    def from_signed(cls, signed: SignedObject) -> Genesis:
        """Verify a genesis container."""
        reader = canonical.ObjectReader(signed.payload_json(what="genesis"), "genesis")
        if reader.string("type", max_len=32) != "genesis":
            raise MalformedError("genesis: type must be 'genesis'")
        if reader.integer("v") != 1:
            raise UnsupportedVersion("genesis: only version 1 is supported")
        network_id = NetworkId.parse(reader.string("network_id", max_len=63))
        name = reader.text("name", max_len=200)
        admins: list[AdminKey] = []
        for item in reader.objects("admins", min_items=1, max_items=MAX_ADMINS):
            admin_name = item.text("name", max_len=200)
            key = VerifyKey(item.blob("key", length=crypto.ED25519_PUBLIC_LEN))
            item.done()
            admins.append(AdminKey(admin_name, key))
        threshold = reader.integer("threshold", lo=1, hi=len(admins))
        hub_key = VerifyKey(reader.blob("hub_key", length=crypto.ED25519_PUBLIC_LEN))
        hub_url = check_url(reader.string("hub_url", max_len=2048), "genesis.hub_url")
        created = reader.integer("created")
        reader.done()
        raw_keys = [bytes(a.key) for a in admins]
        if len(set(raw_keys)) != len(raw_keys):
            raise MalformedError("genesis: admin keys must be distinct")
        if bytes(hub_key) in raw_keys:
            raise MalformedError("genesis: the hub key must not be an admin key")
        admin_map = {a.key.key_id: a.key for a in admins}
        verify_quorum(signed, labels.GENESIS, admin_map, threshold)
        reserved = frozenset([bytes(hub_key), *raw_keys])
        return cls(
            signed, network_id, name, tuple(admins), threshold, hub_key, hub_url, created,
            signed.digest(), canonical.b64e(signed.digest()), reserved,
        )  # fmt: skip


def make_genesis(
    *,
    network_id: str,
    name: str,
    admins: list[tuple[str, VerifyKey]],
    threshold: int,
    hub_key: VerifyKey,
    hub_url: str,
    created: int,
    signers: list[SigningKey],
) -> Genesis:
    """Build and sign a genesis; ``signers`` must include at least ``threshold`` admins."""
    if not 1 <= threshold <= len(admins):
        raise UsageError("threshold must be between 1 and the number of admins")
    payload = {
        "type": "genesis",
        "v": 1,
        "network_id": network_id,
        "name": name,
        "admins": [{"name": n, "key": canonical.b64e(bytes(k))} for n, k in admins],
        "threshold": threshold,
        "hub_key": canonical.b64e(bytes(hub_key)),
        "hub_url": hub_url,
        "created": created,
    }
    return Genesis.from_signed(sign_object(payload, labels.GENESIS, signers))

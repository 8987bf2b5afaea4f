"""The node's long-term secrets, sealed with the passphrase (R12; PROTOCOL.md §3.5).

One key file, ``DIR/keys.sealed`` (mode 0600), holds the identity signing key,
the transport signing key, the certified key-agreement (KEM) key and the
storage key that encrypts message content at rest.  Prekey private halves live
in the database, sealed under the storage key, so erasing one is a row update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from globe_io.files import write_atomic
from protocol import canonical, crypto
from protocol.canonical import ObjectReader
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keystore import MODERATE, KdfCost, open_secret, seal_secret

__all__ = ["PURPOSE", "NodeKeys", "load_keys", "save_keys", "write_private"]

PURPOSE: Final = "node-keys"


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """Everything secret a node holds besides its prekeys."""

    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey
    storage: bytes  # 32 bytes: the at-rest key of message content

    @classmethod
    def generate(cls, rng: crypto.Rng = crypto.system_rng) -> NodeKeys:
        """Fresh keys."""
        return cls(
            SigningKey.generate(rng), SigningKey.generate(rng), KemPrivateKey.generate(rng), rng(32)
        )

    def encode(self) -> bytes:
        """Canonical JSON of the secrets (only ever sealed)."""
        return canonical.encode(
            {
                "type": "node-keys",
                "v": 1,
                "identity": canonical.b64e(self.identity.seed),
                "transport": canonical.b64e(self.transport.seed),
                "ka": canonical.b64e(self.ka.raw),
                "storage": canonical.b64e(self.storage),
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> NodeKeys:
        """Strictly decode what :meth:`encode` wrote."""
        r = ObjectReader(canonical.decode(data, max_size=16 * 1024, what="node keys"), "node keys")
        r.string("type", max_len=16)
        r.integer("v", lo=1, hi=1)
        out = cls(
            SigningKey(r.blob("identity", length=32)),
            SigningKey(r.blob("transport", length=32)),
            KemPrivateKey(r.blob("ka", length=crypto.KEM_PRIVATE_LEN)),
            r.blob("storage", length=32),
        )
        r.done()
        return out


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600."""
    write_atomic(path, data, mode=0o600)


def save_keys(path: Path, keys: NodeKeys, passphrase: bytes, cost: KdfCost = MODERATE) -> None:
    """Seal ``keys`` with the passphrase into ``path``."""
    write_private(path, seal_secret(keys.encode(), passphrase, purpose=PURPOSE, cost=cost))


def load_keys(path: Path, passphrase: bytes) -> NodeKeys:
    """Open the key file; :class:`DecryptionFailed` for a wrong passphrase."""
    return NodeKeys.decode(open_secret(path.read_bytes(), passphrase, purpose=PURPOSE))

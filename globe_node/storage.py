"""Encryption at rest under the node storage key (R12).

The storage key is 32 random bytes kept in the passphrase-sealed key file
(:mod:`globe_node.keys`); it never touches the database.  Each sealed value is
``nonce (12) || ChaCha20-Poly1305(storage key, nonce, value, aad)`` with a
random nonce and associated data ``"globe-node/v1/storage" || 0x00 || what``,
so a value cannot be moved to a column of another meaning (``what`` names the
column and, where it matters, the row).
"""

from __future__ import annotations

from typing import Final

from protocol import crypto
from protocol.errors import DecryptionFailed

__all__ = ["StorageCipher"]

_LABEL: Final = b"globe-node/v1/storage"


class StorageCipher:
    """Seal and open values under the storage key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != crypto.AEAD_KEY_LEN:
            raise ValueError("a storage key is 32 bytes")
        self._key = key

    def seal(self, value: bytes, what: str) -> bytes:
        """Encrypt ``value``; ``what`` binds it to its place."""
        nonce = crypto.system_rng(crypto.AEAD_NONCE_LEN)
        aad = crypto.labelled(_LABEL, what.encode())
        return nonce + crypto.aead_encrypt(self._key, nonce, value, aad)

    def open(self, sealed: bytes, what: str) -> bytes:
        """Decrypt a value sealed for ``what``; :class:`DecryptionFailed` otherwise."""
        if len(sealed) < crypto.AEAD_NONCE_LEN + crypto.AEAD_TAG_LEN:
            raise DecryptionFailed(f"stored {what} is truncated")
        nonce, ct = sealed[: crypto.AEAD_NONCE_LEN], sealed[crypto.AEAD_NONCE_LEN :]
        return crypto.aead_decrypt(self._key, nonce, ct, crypto.labelled(_LABEL, what.encode()))

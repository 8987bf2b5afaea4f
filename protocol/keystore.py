"""Secrets at rest: passphrase-encrypted key files (R12; docs/PROTOCOL.md §3.5).

A sealed secret is a canonical JSON object::

    {"type":"sealed-secret","v":1,"kdf":"argon2id13","ops":<int>,"mem":<int>,
     "salt":"<16 bytes b64url>","nonce":"<12 bytes b64url>","ct":"<b64url>","purpose":"<text>"}

The key is Argon2id(passphrase, salt, ops, mem) (32 bytes); ``ct`` is
ChaCha20-Poly1305 of the secret under that key and ``nonce`` with associated
data ``"globe/v1/keystore" || 0x00 || purpose``, so a hub key file cannot be
passed off as an admin key file.  The costs are stored in the file and bounded
on reading (:data:`protocol.crypto.ARGON2_MAX_OPSLIMIT`, 1 GiB memory), so an
edited file cannot make the reader burn unbounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import canonical, crypto, labels
from protocol.canonical import ObjectReader
from protocol.errors import DecryptionFailed, MalformedError, UnsupportedVersion, UsageError

__all__ = ["INTERACTIVE", "MODERATE", "KdfCost", "open_secret", "seal_secret"]

_AAD_LABEL: Final = labels.KEYSTORE


@dataclass(frozen=True, slots=True)
class KdfCost:
    """Argon2id cost parameters."""

    ops: int
    mem: int


#: libsodium's "interactive" costs: about 0.1 s and 64 MiB here.
INTERACTIVE: Final = KdfCost(2, 64 << 20)
#: libsodium's "moderate" costs: about 0.7 s and 256 MiB; the default for key files.
MODERATE: Final = KdfCost(3, 256 << 20)


def seal_secret(
    secret: bytes,
    passphrase: bytes,
    *,
    purpose: str,
    cost: KdfCost = MODERATE,
    rng: crypto.Rng = crypto.system_rng,
) -> bytes:
    """Encrypt ``secret`` under a passphrase; returns the file bytes."""
    if not passphrase:
        raise UsageError("an empty passphrase cannot protect a key")
    salt = rng(16)
    nonce = rng(crypto.AEAD_NONCE_LEN)
    key = crypto.argon2id(passphrase, salt, opslimit=cost.ops, memlimit=cost.mem)
    ct = crypto.aead_encrypt(key, nonce, secret, crypto.labelled(_AAD_LABEL, purpose.encode()))
    return canonical.encode(
        {
            "type": "sealed-secret",
            "v": 1,
            "kdf": "argon2id13",
            "ops": cost.ops,
            "mem": cost.mem,
            "salt": canonical.b64e(salt),
            "nonce": canonical.b64e(nonce),
            "ct": canonical.b64e(ct),
            "purpose": purpose,
        }
    )


def open_secret(data: bytes, passphrase: bytes, *, purpose: str) -> bytes:
    """Decrypt a sealed secret; :class:`DecryptionFailed` for a wrong passphrase or file."""
    what = "key file"
    r = ObjectReader(canonical.decode(data, max_size=64 * 1024, what=what), what)
    if r.string("type", max_len=32) != "sealed-secret":
        raise MalformedError("key file: not a sealed secret")
    if r.integer("v") != 1:
        raise UnsupportedVersion("key file: only version 1 is supported")
    if r.string("kdf", max_len=16) != "argon2id13":
        raise UnsupportedVersion("key file: unknown key derivation")
    ops = r.integer("ops", lo=1, hi=crypto.ARGON2_MAX_OPSLIMIT)
    mem = r.integer("mem", lo=8192, hi=crypto.ARGON2_MAX_MEMLIMIT)
    salt = r.blob("salt", length=16)
    nonce = r.blob("nonce", length=crypto.AEAD_NONCE_LEN)
    ct = r.blob("ct", max_len=32 * 1024)
    stored_purpose = r.string("purpose", max_len=64)
    r.done()
    if stored_purpose != purpose:
        raise MalformedError(f"key file holds a {stored_purpose!r} key, not a {purpose!r} key")
    key = crypto.argon2id(passphrase, salt, opslimit=ops, memlimit=mem)
    try:
        return crypto.aead_decrypt(key, nonce, ct, crypto.labelled(_AAD_LABEL, purpose.encode()))
    except DecryptionFailed:
        raise DecryptionFailed("wrong passphrase, or the key file was altered") from None

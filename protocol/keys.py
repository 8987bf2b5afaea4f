"""Typed keys (docs/PROTOCOL.md §3).

* :class:`SigningKey` / :class:`VerifyKey`: Ed25519, used for identity
  (envelopes, receipts, prekeys), transport (signed HTTP requests), admin and
  hub signatures.  Which purpose a key serves is fixed by where it is
  certified; every signature carries a context label (R3).
* :class:`KemPrivateKey` / :class:`KemPublicKey`: the hybrid ML-KEM-768 +
  X25519 key used with HPKE for key agreement and signed prekeys.

Public keys compare in constant time, are hashable, and give their raw
encoding with ``bytes(key)``.  Private keys never appear in ``repr``.
"""

from __future__ import annotations

from protocol import crypto
from protocol.crypto import Rng, system_rng
from protocol.errors import BadSignature, InvalidKey, UsageError
from protocol.ids import KEY_ALG_ED25519, KEY_ALG_KEM, KeyId

__all__ = [
    "KemPrivateKey",
    "KemPublicKey",
    "SigningKey",
    "VerifyKey",
]


class VerifyKey:
    """An Ed25519 public key, validated (canonical, prime order) on construction."""

    __slots__ = ("_raw", "key_id")

    def __init__(self, raw: bytes) -> None:
        crypto.validate_ed25519_public(raw)
        self._raw = bytes(raw)
        self.key_id = KeyId.of(KEY_ALG_ED25519, self._raw)

    @classmethod
    def from_certified(cls, raw: bytes) -> VerifyKey:
        """A key taken from an admin-quorum-signed certificate or the genesis.

        Skips the prime-order-subgroup check (about as costly as a signature
        verification): the key was fully validated when it was admitted, and
        libsodium still refuses small-order and non-canonical keys at every
        verification.  Use the constructor for keys from any other source.
        """
        if len(raw) != crypto.ED25519_PUBLIC_LEN:
            raise InvalidKey("an Ed25519 public key is 32 bytes")
        obj = cls.__new__(cls)
        obj._raw = bytes(raw)
        obj.key_id = KeyId.of(KEY_ALG_ED25519, obj._raw)
        return obj

    def verify(self, label: bytes, message: bytes, signature: bytes) -> None:
        """Check ``signature`` over ``label || 0x00 || message``; raise :class:`BadSignature`."""
        crypto.ed25519_verify_labelled(self._raw, label, message, signature)

    def verifies(self, label: bytes, message: bytes, signature: bytes) -> bool:
        """Like :meth:`verify` but returns a boolean."""
        try:
            self.verify(label, message, signature)
        except BadSignature:
            return False
        return True

    def __bytes__(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return crypto.constant_time_equal(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash((VerifyKey, self._raw))

    def __repr__(self) -> str:
        return f"VerifyKey({self.key_id})"


class SigningKey:
    """An Ed25519 private key."""

    __slots__ = ("_secret", "_seed", "verify_key")

    def __init__(self, seed: bytes) -> None:
        self._secret, public = crypto.ed25519_keypair(seed)
        self._seed = bytes(seed)
        self.verify_key = VerifyKey(public)

    @classmethod
    def generate(cls, rng: Rng = system_rng) -> SigningKey:
        """A fresh key from ``rng``."""
        return cls(rng(crypto.ED25519_SEED_LEN))

    @property
    def seed(self) -> bytes:
        """The 32-byte private seed (for the encrypted keystore only)."""
        return self._seed

    @property
    def key_id(self) -> KeyId:
        """The key id of the public half."""
        return self.verify_key.key_id

    def sign(self, label: bytes, message: bytes) -> bytes:
        """Sign ``label || 0x00 || message``."""
        return crypto.ed25519_sign(self._secret, crypto.labelled(label, message))

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id})"


class KemPublicKey:
    """A hybrid ML-KEM-768 + X25519 public key (1,216 bytes), validated."""

    __slots__ = ("_parsed", "key_id")

    def __init__(self, raw: bytes) -> None:
        self._parsed = crypto.kem_public_from_bytes(bytes(raw))
        self.key_id = KeyId.of(KEY_ALG_KEM, self._parsed.raw)

    @classmethod
    def _from_parsed(cls, parsed: crypto.KemPublic) -> KemPublicKey:
        obj = cls.__new__(cls)
        obj._parsed = parsed
        obj.key_id = KeyId.of(KEY_ALG_KEM, parsed.raw)
        return obj

    def seal(self, plaintext: bytes, info: bytes) -> bytes:
        """HPKE-seal ``plaintext`` to this key with ``info``."""
        return crypto.hpke_seal(self._parsed, plaintext, info)

    def __bytes__(self) -> bytes:
        return self._parsed.raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KemPublicKey):
            return NotImplemented
        return crypto.constant_time_equal(self._parsed.raw, other._parsed.raw)

    def __hash__(self) -> int:
        return hash((KemPublicKey, self._parsed.raw))

    def __repr__(self) -> str:
        return f"KemPublicKey({self.key_id})"


class KemPrivateKey:
    """A hybrid private key: ML-KEM-768 seed (64 bytes) || X25519 scalar (32 bytes)."""

    __slots__ = ("_parsed", "public_key")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != crypto.KEM_PRIVATE_LEN:
            raise UsageError(f"a hybrid private key is {crypto.KEM_PRIVATE_LEN} bytes")
        self._parsed = crypto.kem_private_from_bytes(bytes(raw))
        self.public_key = KemPublicKey._from_parsed(self._parsed.public)

    @classmethod
    def generate(cls, rng: Rng = system_rng) -> KemPrivateKey:
        """A fresh key from ``rng``."""
        return cls(rng(crypto.KEM_PRIVATE_LEN))

    @property
    def raw(self) -> bytes:
        """The private encoding (for the encrypted keystore only)."""
        return self._parsed.raw

    @property
    def key_id(self) -> KeyId:
        """The key id of the public half."""
        return self.public_key.key_id

    def open(self, sealed: bytes, info: bytes) -> bytes:
        """Open an HPKE ciphertext sealed to this key; :class:`DecryptionFailed` otherwise."""
        return crypto.hpke_open(self._parsed, sealed, info)

    def __repr__(self) -> str:
        return f"KemPrivateKey({self.key_id})"

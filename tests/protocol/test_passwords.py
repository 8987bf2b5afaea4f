"""Password hashes (``crypto.password_hash`` / ``password_verify``): the PHC string
libsodium's ``crypto_pwhash_str`` writes, checked against libsodium itself both ways,
pinned with a fixed salt, and every string that is not such a hash refused."""

from __future__ import annotations

import nacl.bindings as sodium
import pytest

from protocol import crypto
from protocol.errors import MalformedError, UsageError

#: The least costs libsodium accepts: the tests stay fast; the format is the same.
OPS = sodium.crypto_pwhash_argon2id_OPSLIMIT_MIN
MEM = sodium.crypto_pwhash_argon2id_MEMLIMIT_MIN
#: The hash of b"correct horse battery staple" with the salt 00 01 .. 0f at those costs.
PINNED = (
    "$argon2id$v=19$m=8,t=1,p=1$AAECAwQFBgcICQoLDA0ODw$0X6mNBypPaYHnqL2TcSqMd0ar5yqZ/tCrEr9BxRwbyY"
)
PASSWORD = b"correct horse battery staple"


def fixed_salt(n: int) -> bytes:
    return bytes(range(n))


def test_a_hash_is_the_phc_string_with_its_costs_and_a_pinned_salt() -> None:
    made = crypto.password_hash(PASSWORD, opslimit=OPS, memlimit=MEM, rng=fixed_salt)
    assert made == PINNED
    assert crypto.password_verify(PASSWORD, made) is True
    assert crypto.password_verify(PASSWORD + b" ", made) is False
    assert crypto.password_verify(b"", made) is False


def test_libsodium_verifies_our_hashes_and_we_verify_its() -> None:
    ours = crypto.password_hash(PASSWORD, opslimit=2, memlimit=64 << 20)
    assert ours.startswith("$argon2id$v=19$m=65536,t=2,p=1$")
    assert sodium.crypto_pwhash_str_verify(ours.encode(), PASSWORD) is True
    theirs = sodium.crypto_pwhash_str_alg(PASSWORD, OPS, MEM, sodium.crypto_pwhash_ALG_ARGON2ID13)
    text = theirs.rstrip(b"\x00").decode()
    assert crypto.password_verify(PASSWORD, text) is True
    assert crypto.password_verify(b"wrong", text) is False


def test_each_hash_has_its_own_salt() -> None:
    one = crypto.password_hash(PASSWORD, opslimit=OPS, memlimit=MEM)
    two = crypto.password_hash(PASSWORD, opslimit=OPS, memlimit=MEM)
    assert one != two
    assert crypto.password_verify(PASSWORD, one)
    assert crypto.password_verify(PASSWORD, two)


def test_memory_not_in_whole_kib_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="counts its memory in whole KiB"):
        crypto.password_hash(PASSWORD, opslimit=OPS, memlimit=MEM + 1)


_SALT = "AAECAwQFBgcICQoLDA0ODw"
_HASH = "0X6mNBypPaYHnqL2TcSqMd0ar5yqZ/tCrEr9BxRwbyY"


@pytest.mark.parametrize(
    ("encoded", "detail"),
    [
        ("", "not an Argon2id password hash"),
        ("correct horse battery staple", "not an Argon2id password hash"),
        (f"$argon2i$v=19$m=8,t=1,p=1${_SALT}${_HASH}", "not an Argon2id password hash"),
        (f"$argon2id$v=16$m=8,t=1,p=1${_SALT}${_HASH}", "not an Argon2id password hash"),
        (f"$argon2id$v=19$m=8,t=1,p=2${_SALT}${_HASH}", "not an Argon2id password hash"),
        (f"$argon2id$v=19$m=08,t=1,p=1${_SALT}${_HASH}", "not an Argon2id password hash"),
        (f"$argon2id$v=19$m=8,t=1,p=1${_SALT}AA${_HASH}", "not an Argon2id password hash"),
        (f"$argon2id$v=19$m=8,t=1,p=1${_SALT}${_HASH}A", "not an Argon2id password hash"),
        (f"$argon2id$v=19$m=8,t=1,p=1${_SALT}${_HASH}\n", "not an Argon2id password hash"),
        (f"$argon2id$v=19$m=8,t=1,p=1${_SALT[:-1]}-${_HASH}", "not an Argon2id password hash"),
        (f"$argon2id$v=19$m=8,t=1,p=1${_SALT[:-1]}x${_HASH}", "not in canonical base64"),
        (f"$argon2id$v=19$m=8,t=1,p=1${_SALT}${_HASH[:-1]}Z", "not in canonical base64"),
        (f"$argon2id$v=19$m=8,t=17,p=1${_SALT}${_HASH}", "more than the Argon2id bounds"),
        (f"$argon2id$v=19$m=1048577,t=1,p=1${_SALT}${_HASH}", "more than the Argon2id bounds"),
        (f"$argon2id$v=19$m=7,t=1,p=1${_SALT}${_HASH}", "less than Argon2id's least memory"),
    ],
    ids=[
        "empty", "plain-text", "argon2i", "version-16", "two-lanes", "leading-zero",
        "long-salt", "long-hash", "newline", "url-alphabet", "salt-padding-bits",
        "hash-padding-bits", "passes", "memory", "too-little-memory",
    ],
)  # fmt: skip
def test_what_is_not_a_canonical_hash_within_bounds_is_refused(encoded: str, detail: str) -> None:
    with pytest.raises(MalformedError, match=detail):
        crypto.password_verify(PASSWORD, encoded)

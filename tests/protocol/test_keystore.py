"""Passphrase-sealed key files (R12)."""

from __future__ import annotations

import orjson
import pytest

from protocol import canonical, crypto
from protocol.errors import (
    DecodeError,
    DecryptionFailed,
    MalformedError,
    UnsupportedVersion,
    UsageError,
)
from protocol.keystore import INTERACTIVE, KdfCost, open_secret, seal_secret

CHEAP = KdfCost(1, 8192)  # the minimum costs: these tests check the format, not the KDF
SECRET = bytes(range(32))


def _sealed(**kw: object) -> bytes:
    args: dict[str, object] = {"purpose": "hub-signing-key", "cost": CHEAP}
    args.update(kw)
    return seal_secret(SECRET, b"correct horse", **args)  # type: ignore[arg-type]


def _edit(data: bytes, **fields: object) -> bytes:
    obj = orjson.loads(data)
    obj.update(fields)
    return canonical.encode(obj)


def test_round_trip_and_format():
    data = _sealed(rng=crypto.deterministic_rng(b"ks"))
    assert open_secret(data, b"correct horse", purpose="hub-signing-key") == SECRET
    obj = orjson.loads(data)
    assert sorted(obj) == ["ct", "kdf", "mem", "nonce", "ops", "purpose", "salt", "type", "v"]
    assert (obj["kdf"], obj["ops"], obj["mem"]) == ("argon2id13", 1, 8192)
    assert SECRET not in data
    # Same inputs and randomness, same bytes.
    assert _sealed(rng=crypto.deterministic_rng(b"ks")) == data


def test_costs_are_recorded_in_the_file():
    obj = orjson.loads(_sealed(cost=INTERACTIVE))
    assert (obj["ops"], obj["mem"]) == (2, 64 << 20)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"ct": None}, DecryptionFailed),  # flipped ciphertext byte (filled in below)
        ({"salt": canonical.b64e(bytes(16))}, DecryptionFailed),
        ({"nonce": canonical.b64e(bytes(12))}, DecryptionFailed),
        ({"purpose": "admin-signing-key"}, MalformedError),
        ({"kdf": "scrypt"}, UnsupportedVersion),
        ({"v": 2}, UnsupportedVersion),
        ({"type": "other"}, MalformedError),
        ({"ops": 17}, MalformedError),  # above the bound: refused before any work
        ({"mem": (1 << 30) + 1}, MalformedError),
        ({"mem": 8191}, MalformedError),
        ({"extra": 1}, DecodeError),
    ],
)
def test_edited_files_are_refused(change, error):
    data = _sealed()
    if change == {"ct": None}:
        ct = bytearray(canonical.b64d(orjson.loads(data)["ct"], what="ct"))
        ct[0] ^= 1
        change = {"ct": canonical.b64e(bytes(ct))}
    with pytest.raises(error):
        open_secret(_edit(data, **change), b"correct horse", purpose="hub-signing-key")


def test_wrong_passphrase_and_wrong_purpose():
    data = _sealed()
    with pytest.raises(DecryptionFailed, match="wrong passphrase"):
        open_secret(data, b"wrong", purpose="hub-signing-key")
    with pytest.raises(MalformedError, match="holds a 'hub-signing-key' key"):
        open_secret(data, b"correct horse", purpose="admin-signing-key")


def test_empty_passphrase_is_refused():
    with pytest.raises(UsageError):
        seal_secret(SECRET, b"", purpose="x", cost=CHEAP)


def test_truncated_file_is_refused_cleanly():
    data = _sealed()
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            open_secret(data[:cut], b"correct horse", purpose="hub-signing-key")

"""Neither half of the hybrid KEM opens a wrapped key alone (protocol/crypto.py, keys.py).

The hybrid key is ML-KEM-768 + X25519 under HPKE (RFC 9180, KEM MLKEM768-X25519):

* private key, 96 bytes: the ML-KEM-768 seed ``d || z`` (64), then the X25519 scalar (32);
* public key, 1,216 bytes: the ML-KEM-768 encapsulation key (1,184), then the X25519
  public key (32);
* a sealed key: HPKE ``enc`` — the ML-KEM ciphertext (1,088), then the X25519 ephemeral
  public key (32) — followed by the AEAD ciphertext of the 32-byte key and its tag.

The shared secret must depend on both halves: a private key whose ML-KEM half is right
and X25519 half wrong fails, and so does the opposite; a sealed key whose ML-KEM part
or X25519 part is replaced fails.  Every refusal is exactly
:class:`~protocol.errors.DecryptionFailed`; the right key opens every case's original.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from protocol import crypto
from protocol.devnet import DevNetwork
from protocol.envelope import SealTo, open_envelope, parse_envelope, seal_envelope
from protocol.errors import DecryptionFailed
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey

SEED = crypto.MLKEM768_SEED_LEN  # 64: the ML-KEM half of a private key
EK = crypto.MLKEM768_PUBLIC_LEN  # 1,184: the ML-KEM half of a public key
CT = 1088  # the ML-KEM-768 ciphertext at the start of HPKE enc
ENC = CT + crypto.X25519_LEN
INFO = b"globe/v1/wrap\x00test_kem_halves"
SECRET = bytes(range(32))
PAIRS = [b"pair one", b"pair two", b"pair three"]


def key(seed: bytes) -> KemPrivateKey:
    return KemPrivateKey(crypto.deterministic_rng(seed)(crypto.KEM_PRIVATE_LEN))


def keys(seed: bytes) -> tuple[KemPrivateKey, KemPrivateKey]:
    """Two unrelated hybrid keys: the recipient's and another one."""
    return key(seed + b" recipient"), key(seed + b" other")


def open_with(private: KemPrivateKey, sealed: bytes) -> None:
    with pytest.raises(DecryptionFailed) as info:
        private.open(sealed, INFO)
    assert info.type is DecryptionFailed


def test_the_key_halves_are_laid_out_as_documented() -> None:
    raw = crypto.deterministic_rng(b"layout")(crypto.KEM_PRIVATE_LEN)
    ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:SEED])
    xk = x25519.X25519PrivateKey.from_private_bytes(raw[SEED:])
    public = bytes(KemPrivateKey(raw).public_key)
    assert len(public) == crypto.KEM_PUBLIC_LEN == EK + crypto.X25519_LEN
    assert public == ml.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()


@pytest.mark.parametrize("pair", PAIRS)
def test_the_whole_key_opens_and_the_sealed_key_has_the_documented_size(pair: bytes) -> None:
    right, _ = keys(pair)
    sealed = right.public_key.seal(SECRET, INFO)
    assert len(sealed) == crypto.WRAPPED_KEY_LEN == ENC + 32 + crypto.AEAD_TAG_LEN
    assert right.open(sealed, INFO) == SECRET


@pytest.mark.parametrize("pair", PAIRS)
def test_the_mlkem_half_alone_cannot_open(pair: bytes) -> None:
    right, other = keys(pair)
    mixed = KemPrivateKey(right.raw[:SEED] + other.raw[SEED:])
    # the mixed key really shares the ML-KEM half and only that half
    assert bytes(mixed.public_key)[:EK] == bytes(right.public_key)[:EK]
    assert bytes(mixed.public_key)[EK:] == bytes(other.public_key)[EK:]
    assert bytes(mixed.public_key)[EK:] != bytes(right.public_key)[EK:]
    open_with(mixed, right.public_key.seal(SECRET, INFO))


@pytest.mark.parametrize("pair", PAIRS)
def test_the_x25519_half_alone_cannot_open(pair: bytes) -> None:
    right, other = keys(pair)
    mixed = KemPrivateKey(other.raw[:SEED] + right.raw[SEED:])
    assert bytes(mixed.public_key)[EK:] == bytes(right.public_key)[EK:]
    assert bytes(mixed.public_key)[:EK] == bytes(other.public_key)[:EK]
    assert bytes(mixed.public_key)[:EK] != bytes(right.public_key)[:EK]
    open_with(mixed, right.public_key.seal(SECRET, INFO))


def _mlkem_part(right: KemPrivateKey, other: KemPrivateKey, sealed: bytes, name: str) -> bytes:
    return {
        "from another sealing to the same key": right.public_key.seal(SECRET, INFO)[:CT],
        "from a sealing to another key": other.public_key.seal(SECRET, INFO)[:CT],
        "zeros": bytes(CT),
        "one bit flipped": bytes([sealed[0] ^ 0x01]) + sealed[1:CT],
    }[name]


MLKEM_REPLACEMENTS = [
    "from another sealing to the same key",
    "from a sealing to another key",
    "zeros",
    "one bit flipped",
]


@pytest.mark.parametrize("replacement", MLKEM_REPLACEMENTS)
@pytest.mark.parametrize("pair", PAIRS)
def test_a_sealed_key_with_its_mlkem_part_replaced_does_not_open(
    pair: bytes, replacement: str
) -> None:
    right, other = keys(pair)
    sealed = right.public_key.seal(SECRET, INFO)
    part = _mlkem_part(right, other, sealed, replacement)
    assert len(part) == CT
    assert part != sealed[:CT]
    open_with(right, part + sealed[CT:])
    assert right.open(sealed, INFO) == SECRET


def _x25519_part(right: KemPrivateKey, other: KemPrivateKey, name: str) -> bytes:
    return {
        "from another sealing to the same key": right.public_key.seal(SECRET, INFO)[CT:ENC],
        "from a sealing to another key": other.public_key.seal(SECRET, INFO)[CT:ENC],
        "the recipient's own X25519 public key": bytes(right.public_key)[EK:],
        "the base point": (9).to_bytes(32, "little"),
        "zero (low order)": bytes(32),
    }[name]


X25519_REPLACEMENTS = [
    "from another sealing to the same key",
    "from a sealing to another key",
    "the recipient's own X25519 public key",
    "the base point",
    "zero (low order)",
]


@pytest.mark.parametrize("replacement", X25519_REPLACEMENTS)
@pytest.mark.parametrize("pair", PAIRS)
def test_a_sealed_key_with_its_x25519_part_replaced_does_not_open(
    pair: bytes, replacement: str
) -> None:
    right, other = keys(pair)
    sealed = right.public_key.seal(SECRET, INFO)
    part = _x25519_part(right, other, replacement)
    assert len(part) == crypto.X25519_LEN
    assert part != sealed[CT:ENC]
    open_with(right, sealed[:CT] + part + sealed[ENC:])
    assert right.open(sealed, INFO) == SECRET


@pytest.mark.parametrize("wrong", ["x25519", "mlkem"])
def test_an_envelope_does_not_open_with_one_half_of_the_prekey(
    net: DevNetwork, now: int, wrong: str
) -> None:
    """End to end: a recipient holding only one right half of its prekey learns nothing."""
    sender, recipient = net.members["FR-PNF"], net.members["DE-BKA"]
    data = seal_envelope(
        genesis=net.genesis, sender=sender.authority, identity=sender.identity,
        recipients=[SealTo(recipient.authority, 1, recipient.prekey.public_key)],
        content=b'{"x":1}', created=now, expires=now + 3600,
        dir_seq=net.directory.seq, dir_head=net.directory.head,
    )  # fmt: skip
    env = parse_envelope(data)
    other = key(b"not the prekey")
    right = recipient.prekey.raw
    half = right[:SEED] + other.raw[SEED:] if wrong == "x25519" else other.raw[:SEED] + right[SEED:]

    def opener(private: KemPrivateKey) -> bytes:
        return open_envelope(
            env, directory=net.directory, me=AuthorityId.parse("DE-BKA"),
            private_key=lambda _kid: private, now=now,
        ).content  # fmt: skip

    assert opener(recipient.prekey) == b'{"x":1}'
    with pytest.raises(DecryptionFailed) as info:
        opener(KemPrivateKey(half))
    assert info.type is DecryptionFailed

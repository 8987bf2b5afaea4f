"""Streaming attachment encryption (protocol/attachments.py; docs/PROTOCOL.md §8.4.2).

Round trips at every size around a chunk boundary, fed in arbitrary slices;
each way of tampering with a stream refused with its exact error; the chunk
bytes rebuilt from the specification alone; constant memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import tracemalloc
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import crypto, labels
from protocol.attachments import (
    DEFAULT_CHUNK_SIZE,
    HEADER_LEN,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    TAG_LEN,
    AttachmentDecryptor,
    AttachmentEncryptor,
    encrypted_size,
)
from protocol.errors import (
    DecryptionFailed,
    GlobeError,
    MalformedError,
    Truncated,
    UnsupportedSuite,
    UnsupportedVersion,
    UsageError,
)

KEY = crypto.deterministic_rng(b"test_attachments key")(32)
OTHER_KEY = crypto.deterministic_rng(b"test_attachments other key")(32)
BLOB = "0123456789abcdef0123456789abcdef"
OTHER_BLOB = "fedcba9876543210fedcba9876543210"
C = MIN_CHUNK_SIZE  # 4096: small chunks keep the streams short
FULL = C + TAG_LEN
SIZES = [0, 1, C - 1, C, C + 1, 3 * C + 5]


@contextlib.contextmanager
def raises_exactly(cls: type[GlobeError]) -> Iterator[None]:
    """Like ``pytest.raises`` but a subclass of ``cls`` does not count."""
    with pytest.raises(cls) as info:
        yield
    assert info.type is cls, f"expected exactly {cls.__name__}, got {info.type.__name__}"


def plaintext(n: int, seed: bytes = b"plain") -> bytes:
    return crypto.deterministic_rng(seed)(n) if n else b""


def slices(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes, cycling; the rest in the last piece."""
    pos, i = 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)] if sizes else len(data)
        yield data[pos : pos + step]
        pos += step
        i += 1


def encrypt(
    data: bytes,
    *,
    key: bytes = KEY,
    blob_id: str = BLOB,
    chunk_size: int = C,
    sizes: Sequence[int] = (),
) -> bytes:
    enc = AttachmentEncryptor(key, blob_id, chunk_size)
    out = [enc.header()]
    out += [enc.update(piece) for piece in slices(data, sizes)]
    out.append(enc.finalize())
    assert enc.size == len(data)
    assert enc.sha256 == hashlib.sha256(data).digest()
    return b"".join(out)


def decrypt(
    blob: bytes, *, key: bytes = KEY, blob_id: str = BLOB, sizes: Sequence[int] = ()
) -> bytes:
    dec = AttachmentDecryptor(key, blob_id)
    out = [dec.update(piece) for piece in slices(blob, sizes)]
    out.append(dec.finalize())
    data = b"".join(out)
    assert dec.size == len(data)
    assert dec.sha256 == hashlib.sha256(data).digest()
    return data


def chunks_of(blob: bytes, chunk_size: int = C) -> tuple[bytes, list[bytes]]:
    """Header and ciphertext chunks of a well-formed blob."""
    full = chunk_size + TAG_LEN
    body = blob[HEADER_LEN:]
    return blob[:HEADER_LEN], [body[i : i + full] for i in range(0, len(body), full)]


def spec_chunk(
    index: int, piece: bytes, *, final: bool, header: bytes, key: bytes = KEY, blob_id: str = BLOB
) -> bytes:
    """One chunk built from the text of §8.4.2, not through protocol.attachments."""
    nonce = bytes(4) + index.to_bytes(8, "big")
    aad = crypto.labelled(
        labels.ATTACHMENT, header, blob_id.encode("ascii"), index.to_bytes(8, "big"),
        b"\x01" if final else b"\x00",
    )  # fmt: skip
    return crypto.aead_encrypt(key, nonce, piece, aad)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_round_trip_at_chunk_boundaries(n: int) -> None:
    data = plaintext(n)
    blob = encrypt(data)
    assert len(blob) == encrypted_size(n, C)
    assert decrypt(blob) == data
    # One chunk per started chunk_size bytes, and one (empty) chunk for an empty file.
    _header, chunks = chunks_of(blob)
    assert len(chunks) == max(1, -(-n // C))
    assert all(len(c) == FULL for c in chunks[:-1])
    assert len(chunks[-1]) == TAG_LEN + (n - C * (len(chunks) - 1))


@settings(max_examples=60, deadline=None)
@given(
    n=st.sampled_from(SIZES),
    enc_sizes=st.lists(st.integers(1, 3 * C), max_size=8),
    dec_sizes=st.lists(st.integers(1, 3 * C), max_size=8),
)
def test_round_trip_in_random_slices(n: int, enc_sizes: list[int], dec_sizes: list[int]) -> None:
    data = plaintext(n)
    blob = encrypt(data, sizes=enc_sizes)
    assert blob == encrypt(data)  # the slicing never changes the bytes
    assert decrypt(blob, sizes=dec_sizes) == data


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 5 * C), dec_sizes=st.lists(st.integers(1, 2 * C), max_size=6))
def test_round_trip_any_size(n: int, dec_sizes: list[int]) -> None:
    data = plaintext(n)
    blob = encrypt(data)
    assert len(blob) == encrypted_size(n, C)
    assert decrypt(blob, sizes=dec_sizes) == data


def test_byte_by_byte_feeding() -> None:
    data = plaintext(C + 7)
    blob = encrypt(data, sizes=[1])
    assert decrypt(blob, sizes=[1]) == data


def test_default_and_maximum_chunk_sizes() -> None:
    data = plaintext(2 * DEFAULT_CHUNK_SIZE + 3)
    enc = AttachmentEncryptor(KEY, BLOB)
    assert enc.chunk_size == DEFAULT_CHUNK_SIZE
    assert enc.header()[8:12] == DEFAULT_CHUNK_SIZE.to_bytes(4, "big")
    blob = enc.header() + enc.update(data) + enc.finalize()
    assert len(blob) == encrypted_size(len(data))
    assert AttachmentDecryptor(KEY, BLOB).chunk_size is None  # until the header is read
    dec = AttachmentDecryptor(KEY, BLOB)
    assert dec.update(blob) + dec.finalize() == data
    assert dec.chunk_size == DEFAULT_CHUNK_SIZE
    big = plaintext(MAX_CHUNK_SIZE + 1)
    assert decrypt(encrypt(big, chunk_size=MAX_CHUNK_SIZE)) == big


def test_chunks_follow_the_specification() -> None:
    data = plaintext(3 * C + 5)
    blob = encrypt(data)
    header, chunks = chunks_of(blob)
    assert header == b"GLBA" + bytes([1, 1, 0, 0]) + C.to_bytes(4, "big") + bytes(4)
    pieces = [data[i : i + C] for i in range(0, len(data), C)]
    assert chunks == [
        spec_chunk(i, p, final=i == len(pieces) - 1, header=header) for i, p in enumerate(pieces)
    ]
    empty = encrypt(b"")
    assert empty == empty[:HEADER_LEN] + spec_chunk(0, b"", final=True, header=empty[:HEADER_LEN])


def test_encrypted_size() -> None:
    assert encrypted_size(0) == 32
    assert encrypted_size(1) == 33
    assert encrypted_size(DEFAULT_CHUNK_SIZE) == 16 + DEFAULT_CHUNK_SIZE + 16
    assert encrypted_size(DEFAULT_CHUNK_SIZE + 1) == 16 + DEFAULT_CHUNK_SIZE + 1 + 32
    two_gib = 2 << 30
    assert encrypted_size(two_gib) == 16 + two_gib + 16 * (two_gib // DEFAULT_CHUNK_SIZE)
    assert [encrypted_size(n, C) for n in SIZES] == [
        32, 33, 16 + C - 1 + 16, 16 + C + 16, 16 + C + 1 + 32, 16 + 3 * C + 5 + 64,
    ]  # fmt: skip
    for bad in (-1, True, 1.0):
        with raises_exactly(UsageError):
            encrypted_size(bad)  # type: ignore[arg-type]
    for chunk in (MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1):
        with raises_exactly(UsageError):
            encrypted_size(10, chunk)


# --- plaintext is released only when authenticated -----------------------------------------


def test_a_full_chunk_waits_for_the_next_byte() -> None:
    data = plaintext(2 * C)
    blob = encrypt(data)
    dec = AttachmentDecryptor(KEY, BLOB)
    assert dec.update(blob[: HEADER_LEN + FULL]) == b""  # could still be the final chunk
    assert dec.update(blob[HEADER_LEN + FULL : HEADER_LEN + FULL + 1]) == data[:C]
    assert dec.size == C
    assert dec.update(blob[HEADER_LEN + FULL + 1 :]) == b""  # the final chunk: finalize only
    assert dec.finalize() == data[C:]


def test_a_tampered_chunk_releases_nothing() -> None:
    data = plaintext(3 * C)
    blob = bytearray(encrypt(data))
    blob[HEADER_LEN + FULL + 5] ^= 0x80  # inside chunk 1
    dec = AttachmentDecryptor(KEY, BLOB)
    assert dec.update(blob[: HEADER_LEN + FULL + 1]) == data[:C]
    with raises_exactly(DecryptionFailed):
        dec.update(blob[HEADER_LEN + FULL + 1 :])
    assert dec.size == C
    # A failed decryptor refuses further use.
    with raises_exactly(UsageError):
        dec.update(b"")
    with raises_exactly(UsageError):
        dec.finalize()
    with raises_exactly(UsageError):
        _ = dec.sha256


# --- adversarial streams -------------------------------------------------------------------


def valid() -> tuple[bytes, bytes, list[bytes]]:
    """A 3-chunk blob (two full chunks and 5 bytes), its header and chunks."""
    blob = encrypt(plaintext(2 * C + 5))
    header, chunks = chunks_of(blob)
    return blob, header, chunks


def refuse(
    cls: type[GlobeError],
    blob: bytes,
    *,
    key: bytes = KEY,
    blob_id: str = BLOB,
    sizes: Sequence[int] = (),
) -> None:
    for feed in (sizes, [1], [FULL + 1]):  # whole, byte by byte, misaligned
        with raises_exactly(cls):
            decrypt(blob, key=key, blob_id=blob_id, sizes=feed)


def test_truncation() -> None:
    blob, header, (c0, c1, c2) = valid()
    refuse(Truncated, b"")
    refuse(Truncated, blob[:10])  # inside the header
    refuse(Truncated, header)  # no chunk at all
    refuse(Truncated, header + c0 + c1)  # cut at a chunk boundary: the final chunk dropped
    refuse(Truncated, header + c0)
    refuse(Truncated, header + c0 + c1 + c2[:10])  # less than a tag left
    refuse(DecryptionFailed, header + c0 + c1[:2000])  # inside a chunk
    refuse(DecryptionFailed, blob[:-1])  # the final chunk one byte short


def test_reordering_duplication_and_dropping() -> None:
    _blob, header, (c0, c1, c2) = valid()
    refuse(DecryptionFailed, header + c1 + c0 + c2)
    refuse(DecryptionFailed, header + c0 + c0 + c1 + c2)
    refuse(DecryptionFailed, header + c0 + c1 + c1 + c2)
    refuse(DecryptionFailed, header + c0 + c2)  # a middle chunk dropped
    refuse(DecryptionFailed, header + c1 + c2)  # the first chunk dropped


def test_a_full_final_chunk_cannot_move_or_be_extended() -> None:
    data = plaintext(3 * C)  # the final chunk is full-size: same length as the others
    blob = encrypt(data)
    header, (c0, c1, c2) = chunks_of(blob)
    assert len(c2) == FULL
    refuse(DecryptionFailed, header + c0 + c2 + c1)
    refuse(DecryptionFailed, header + c0 + c1 + c2 + c2)
    refuse(Truncated, header + c0 + c1)


def test_a_corrupted_full_final_chunk_fails_to_authenticate() -> None:
    """A full-size last chunk that authenticates neither as final nor as a middle
    chunk is corrupt, not a truncation: DecryptionFailed, and no plaintext of it."""
    data = plaintext(3 * C)
    header, (c0, c1, c2) = chunks_of(encrypt(data))
    assert len(c2) == FULL
    corrupt = c2[:100] + bytes([c2[100] ^ 0x01]) + c2[101:]
    refuse(DecryptionFailed, header + c0 + c1 + corrupt)
    dec = AttachmentDecryptor(KEY, BLOB)
    assert dec.update(header + c0 + c1 + corrupt) == data[: 2 * C]  # the good chunks only
    with raises_exactly(DecryptionFailed):
        dec.finalize()


def test_extension_after_the_final_chunk() -> None:
    blob, _header, (c0, c1, _c2) = valid()
    for extra in (b"\x00", bytes(TAG_LEN), c1, c0, encrypt(b"")[HEADER_LEN:], blob):
        refuse(DecryptionFailed, blob + extra)


def test_chunks_cannot_move_between_blobs() -> None:
    data = plaintext(2 * C + 5)
    blob = encrypt(data)
    header, (c0, _c1, c2) = chunks_of(blob)
    # Same key and plaintext, another blob id: the chunks are bound to their blob.
    _h, (_o0, o1, _o2) = chunks_of(encrypt(data, blob_id=OTHER_BLOB))
    refuse(DecryptionFailed, header + c0 + o1 + c2)
    # Another key (as attachments have), same blob id.
    _h, (_k0, k1, _k2) = chunks_of(encrypt(data, key=OTHER_KEY))
    refuse(DecryptionFailed, header + c0 + k1 + c2)
    refuse(DecryptionFailed, blob, blob_id=OTHER_BLOB)
    refuse(DecryptionFailed, blob, key=OTHER_KEY)


def test_header_checks() -> None:
    blob, header, _chunks = valid()

    def patched(offset: int, patch: bytes) -> bytes:
        return blob[:offset] + patch + blob[offset + len(patch) :]

    refuse(MalformedError, patched(0, b"GLBE"))
    refuse(UnsupportedVersion, patched(4, b"\x02"))
    refuse(UnsupportedVersion, patched(4, b"\x00"))
    refuse(UnsupportedSuite, patched(5, b"\x02"))
    refuse(MalformedError, patched(6, b"\x00\x01"))
    refuse(MalformedError, patched(12, b"\x80\x00\x00\x00"))
    refuse(MalformedError, patched(8, (MIN_CHUNK_SIZE - 1).to_bytes(4, "big")))
    refuse(MalformedError, patched(8, (MAX_CHUNK_SIZE + 1).to_bytes(4, "big")))
    # A chunk size in range but not the one used: the header is authenticated.
    refuse(DecryptionFailed, patched(8, (2 * C).to_bytes(4, "big")))
    refuse(DecryptionFailed, patched(8, (C + 16).to_bytes(4, "big")))
    # The header is checked as soon as it is complete, before any chunk arrives.
    dec = AttachmentDecryptor(KEY, BLOB)
    with raises_exactly(UnsupportedVersion):
        dec.update(patched(4, b"\x07")[:HEADER_LEN])
    assert AttachmentDecryptor(KEY, BLOB).update(header) == b""


def test_an_empty_final_chunk_after_others_is_not_canonical() -> None:
    data = plaintext(2 * C)
    header, (c0, c1) = chunks_of(encrypt(data))
    c1_not_final = spec_chunk(1, data[C:], final=False, header=header)
    assert c1_not_final != c1
    empty = spec_chunk(2, b"", final=True, header=header)
    refuse(MalformedError, header + c0 + c1_not_final + empty)
    # ... and a full last chunk not marked final is a truncated stream.
    refuse(Truncated, header + c0 + c1_not_final)
    # A non-final chunk shorter than chunk_size does not authenticate as final.
    short = spec_chunk(0, data[:100], final=False, header=header)
    refuse(DecryptionFailed, header + short)


def test_every_single_bit_flip_is_refused() -> None:
    blob = encrypt(plaintext(C + 100))  # two chunks: one full, one final of 100 bytes
    assert len(chunks_of(blob)[1]) == 2
    seen: set[type[GlobeError]] = set()
    for offset in range(len(blob)):
        for bit in range(8):
            bad = bytearray(blob)
            bad[offset] ^= 1 << bit
            with pytest.raises(GlobeError) as info:
                decrypt(bytes(bad))
            seen.add(info.type)
    assert seen == {
        MalformedError, UnsupportedVersion, UnsupportedSuite, DecryptionFailed,
    }  # fmt: skip


# --- misuse --------------------------------------------------------------------------------


def test_misuse_is_a_usage_error() -> None:
    for key in (b"", bytes(31), bytes(33)):
        with raises_exactly(UsageError):
            AttachmentEncryptor(key, BLOB)
        with raises_exactly(UsageError):
            AttachmentDecryptor(key, BLOB)
    for blob_id in ("", BLOB.upper(), BLOB[:-1], BLOB + "0", "g" * 32):
        with raises_exactly(UsageError):
            AttachmentEncryptor(KEY, blob_id)
        with raises_exactly(UsageError):
            AttachmentDecryptor(KEY, blob_id)
    for chunk in (0, MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1):
        with raises_exactly(UsageError):
            AttachmentEncryptor(KEY, BLOB, chunk)
    enc = AttachmentEncryptor(KEY, BLOB, C)
    enc.update(b"abc")
    with raises_exactly(UsageError):
        _ = enc.sha256  # known only at the end
    enc.finalize()
    assert enc.sha256 == hashlib.sha256(b"abc").digest()
    with raises_exactly(UsageError):
        enc.update(b"more")
    with raises_exactly(UsageError):
        enc.finalize()
    dec = AttachmentDecryptor(KEY, BLOB)
    dec.update(encrypt(b"abc"))
    with raises_exactly(UsageError):
        _ = dec.sha256
    assert dec.finalize() == b"abc"
    with raises_exactly(UsageError):
        dec.update(b"")


# --- memory ----------------------------------------------------------------------------------


def test_constant_memory_for_a_large_stream() -> None:
    """64 MiB through encryptor and decryptor in 1 MiB slices, never held whole."""
    piece = plaintext(1 << 20, b"piece")
    total = 64
    enc = AttachmentEncryptor(KEY, BLOB)
    dec = AttachmentDecryptor(KEY, BLOB)
    check = hashlib.sha256()
    tracemalloc.start()
    try:
        check.update(dec.update(enc.header()))
        for _ in range(total):
            check.update(dec.update(enc.update(piece)))
        check.update(dec.update(enc.finalize()))
        check.update(dec.finalize())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dec.size == enc.size == total << 20
    assert dec.sha256 == enc.sha256 == check.digest()
    assert peak < 8 << 20, peak

"""Chunked streaming encryption of attachment blobs (docs/PROTOCOL.md §8.4.2).

An attachment travels as a blob on the hub (§8.4.1), encrypted under the
32-byte ``key`` of its manifest entry (random per attachment, inside the
signed and encrypted message content) and bound to its blob id.  The blob is
a 16-byte header followed by chunks::

    header = "GLBA" || version u8 (1) || suite u8 (1) || reserved u16 (0)
             || chunk_size u32 || reserved u32 (0)
    chunk i = ChaCha20-Poly1305(key, nonce_i, plaintext_i, aad_i)     (i = 0, 1, ...)
    nonce_i = u32 0 || u64 i
    aad_i   = labelled("globe/v1/attachment", header, ascii(blob_id), u64 i, final_i)

All integers are big-endian; ``final_i`` is one byte, 1 for the last chunk and
0 for every other.  Every chunk but the last carries exactly ``chunk_size``
plaintext bytes; the last carries 1..``chunk_size`` bytes, or 0 when the
whole plaintext is empty (then it is the only chunk).  The sizes are thus a
function of the plaintext size alone (:func:`encrypted_size`).

Because the index is in the nonce and the index, the final flag, the header
and the blob id are in the associated data, a reader detects reordered,
duplicated, dropped or foreign chunks (each fails to authenticate), a stream
cut at a chunk boundary (the last chunk does not authenticate as final) and
bytes after the final chunk (the final chunk does not authenticate as a
non-final one, and nothing authenticates as final with extra bytes).

Both directions are sans-IO and use constant memory for any size: the caller
feeds bytes as they come from disk or the network and writes what comes out.
:class:`AttachmentDecryptor` releases a chunk's plaintext only once its tag has
verified, but a stream is whole only when :meth:`AttachmentDecryptor.finalize`
returns: until then, keep the output aside (a ``.part`` file) and discard it
on any error.  The caller then compares :attr:`~AttachmentDecryptor.size` and
:attr:`~AttachmentDecryptor.sha256` with the manifest (§8.4).
"""

from __future__ import annotations

import re
from typing import Final

from protocol import crypto, labels
from protocol.errors import (
    DecryptionFailed,
    MalformedError,
    Truncated,
    UnsupportedSuite,
    UnsupportedVersion,
    UsageError,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_LEN",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "SUITE",
    "TAG_LEN",
    "VERSION",
    "AttachmentDecryptor",
    "AttachmentEncryptor",
    "encrypted_size",
]

MAGIC: Final = b"GLBA"
VERSION: Final = 1
#: Suite 1: ChaCha20-Poly1305 (RFC 8439), the nonce and associated data of this module.
SUITE: Final = 1
HEADER_LEN: Final = 16
TAG_LEN: Final = crypto.AEAD_TAG_LEN
DEFAULT_CHUNK_SIZE: Final = 64 * 1024
MIN_CHUNK_SIZE: Final = 4096
MAX_CHUNK_SIZE: Final = 4 * 1024 * 1024
_MAX_CHUNKS: Final = 1 << 64
_BLOB_ID_RE: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)


def _check_chunk_size(chunk_size: int) -> None:
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE
    ):
        raise UsageError(f"chunk_size must be an integer in {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}")


def encrypted_size(plain_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """The exact size of the blob that encrypts ``plain_size`` bytes in chunks of ``chunk_size``.

    ``16 + plain_size + 16 * max(1, ceil(plain_size / chunk_size))``.
    """
    _check_chunk_size(chunk_size)
    if isinstance(plain_size, bool) or not isinstance(plain_size, int) or plain_size < 0:
        raise UsageError("plain_size must be a non-negative integer")
    chunks = max(1, -(-plain_size // chunk_size))
    return HEADER_LEN + plain_size + TAG_LEN * chunks


def _header(chunk_size: int) -> bytes:
    return b"".join(
        (
            MAGIC,
            VERSION.to_bytes(1, "big"),
            SUITE.to_bytes(1, "big"),
            bytes(2),
            chunk_size.to_bytes(4, "big"),
            bytes(4),
        )
    )


def _parse_header(header: bytes) -> int:
    """The chunk size of a 16-byte header, checked in the order of §8.4.2."""
    if header[:4] != MAGIC:
        raise MalformedError("attachment blob: not a GlobE attachment (bad magic)")
    if header[4] != VERSION:
        raise UnsupportedVersion(f"attachment blob: version {header[4]} is not supported")
    if header[5] != SUITE:
        raise UnsupportedSuite(f"attachment blob: suite {header[5]} is not supported")
    if header[6:8] != bytes(2) or header[12:16] != bytes(4):
        raise MalformedError("attachment blob: reserved header bytes are not zero")
    chunk_size = int.from_bytes(header[8:12], "big")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise MalformedError(
            f"attachment blob: chunk size {chunk_size} is outside "
            f"{MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE}"
        )
    return chunk_size


class _Chunks:
    """Nonce and associated data of each chunk of one blob."""

    __slots__ = ("_aad_prefix", "aead")

    def __init__(self, key: bytes, blob_id: str, header: bytes) -> None:
        if len(key) != crypto.AEAD_KEY_LEN:
            raise UsageError(f"an attachment key is {crypto.AEAD_KEY_LEN} bytes")
        self.aead = crypto.Aead(key)
        self._aad_prefix = crypto.labelled(labels.ATTACHMENT, header, blob_id.encode("ascii"))

    @staticmethod
    def nonce(index: int) -> bytes:
        if index >= _MAX_CHUNKS:  # pragma: no cover - 2**64 chunks of at least 4 KiB
            raise UsageError("attachment blob: too many chunks")
        return bytes(4) + index.to_bytes(8, "big")

    def aad(self, index: int, *, final: bool) -> bytes:
        return self._aad_prefix + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def _check_blob_id(blob_id: str) -> None:
    if not isinstance(blob_id, str) or not _BLOB_ID_RE.match(blob_id):
        raise UsageError("a blob id is 32 lower-case hex digits")


class AttachmentEncryptor:
    """Encrypt one attachment as a stream: :meth:`header`, then :meth:`update` as data
    comes, then :meth:`finalize`; concatenate everything they return, in order.

    Memory is bounded by one chunk plus what one :meth:`update` is given.
    """

    __slots__ = (
        "_buffer",
        "_chunk_size",
        "_chunks",
        "_done",
        "_hash",
        "_header",
        "_index",
        "_size",
    )

    def __init__(self, key: bytes, blob_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        _check_chunk_size(chunk_size)
        _check_blob_id(blob_id)
        self._chunk_size = chunk_size
        self._header = _header(chunk_size)
        self._chunks = _Chunks(key, blob_id, self._header)
        self._buffer = bytearray()
        self._index = 0
        self._size = 0
        self._hash = crypto.Sha256()
        self._done = False

    @property
    def chunk_size(self) -> int:
        """Plaintext bytes per chunk."""
        return self._chunk_size

    def header(self) -> bytes:
        """The 16-byte header: the first bytes of the blob."""
        return self._header

    def _seal(self, plaintext: crypto.BytesLike, *, final: bool) -> bytes:
        index = self._index
        self._index += 1
        chunks = self._chunks
        return chunks.aead.encrypt(chunks.nonce(index), plaintext, chunks.aad(index, final=final))

    def update(self, data: crypto.BytesLike) -> bytes:
        """Take more plaintext; return the chunks it completes (possibly ``b""``).

        A full chunk is held back until more data or :meth:`finalize` tells
        whether it is the last one.
        """
        if self._done:
            raise UsageError("the attachment encryptor is finalized")
        self._hash.update(data)
        self._size += len(data)
        buffer = self._buffer
        buffer += data
        size = self._chunk_size
        if len(buffer) <= size:
            return b""
        out: list[bytes] = []
        start = 0
        with memoryview(buffer) as view:
            while len(buffer) - start > size:
                out.append(self._seal(view[start : start + size], final=False))
                start += size
        del buffer[:start]
        return b"".join(out)

    def finalize(self) -> bytes:
        """The final chunk (the remaining 0..chunk_size bytes of plaintext)."""
        if self._done:
            raise UsageError("the attachment encryptor is finalized")
        self._done = True
        last = self._seal(bytes(self._buffer), final=True)
        self._buffer = bytearray()
        return last

    @property
    def size(self) -> int:
        """Plaintext bytes taken so far."""
        return self._size

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the whole plaintext (after :meth:`finalize`): the manifest's ``sha256``."""
        if not self._done:
            raise UsageError("the plaintext digest is known after finalize()")
        return self._hash.digest()


class AttachmentDecryptor:
    """Decrypt one blob as a stream: :meth:`update` with any slices of it (header
    included), then :meth:`finalize`; concatenate what they return, in order.

    Plaintext is released only from chunks whose tag verified; the final
    chunk's only by :meth:`finalize`, which also refuses a stream without a
    final chunk or with bytes after it.  After any error the decryptor refuses
    further use (:class:`UsageError`); discard everything it returned.
    Memory is bounded by one chunk plus what one :meth:`update` is given.
    """

    __slots__ = (
        "_blob_id",
        "_buffer",
        "_chunk_size",
        "_chunks",
        "_failed",
        "_finished",
        "_hash",
        "_index",
        "_key",
        "_size",
    )

    def __init__(self, key: bytes, blob_id: str) -> None:
        _check_blob_id(blob_id)
        if len(key) != crypto.AEAD_KEY_LEN:
            raise UsageError(f"an attachment key is {crypto.AEAD_KEY_LEN} bytes")
        self._key = key
        self._blob_id = blob_id
        self._chunk_size: int | None = None
        self._chunks: _Chunks | None = None
        self._buffer = bytearray()
        self._index = 0
        self._size = 0
        self._hash = crypto.Sha256()
        self._failed = False
        self._finished = False

    @property
    def chunk_size(self) -> int | None:
        """The header's chunk size, once the header has been read."""
        return self._chunk_size

    def _usable(self) -> None:
        if self._failed:
            raise UsageError("the attachment decryptor failed earlier; discard its output")
        if self._finished:
            raise UsageError("the attachment decryptor is finalized")

    def _open(self, ciphertext: crypto.BytesLike, *, final: bool) -> bytes:
        chunks = self._chunks
        assert chunks is not None  # noqa: S101 - called once the header is read
        index = self._index
        return chunks.aead.decrypt(chunks.nonce(index), ciphertext, chunks.aad(index, final=final))

    def _release(self, plaintext: bytes) -> bytes:
        self._index += 1
        self._size += len(plaintext)
        self._hash.update(plaintext)
        return plaintext

    def update(self, data: crypto.BytesLike) -> bytes:
        """Take more of the blob; return the plaintext of the chunks it authenticated."""
        self._usable()
        try:
            return self._update(data)
        except BaseException:
            self._failed = True
            raise

    def _update(self, data: crypto.BytesLike) -> bytes:
        buffer = self._buffer
        buffer += data
        if self._chunks is None:
            if len(buffer) < HEADER_LEN:
                return b""
            header = bytes(buffer[:HEADER_LEN])
            self._chunk_size = _parse_header(header)
            self._chunks = _Chunks(self._key, self._blob_id, header)
            del buffer[:HEADER_LEN]
        assert self._chunk_size is not None  # noqa: S101 - set with the header
        full = self._chunk_size + TAG_LEN
        # A full-size chunk followed by at least one more byte cannot be the last one.
        if len(buffer) <= full:
            return b""
        out: list[bytes] = []
        start = 0
        with memoryview(buffer) as view:
            while len(buffer) - start > full:
                try:
                    plaintext = self._open(view[start : start + full], final=False)
                except DecryptionFailed:
                    raise DecryptionFailed(
                        f"attachment blob: chunk {self._index} does not authenticate"
                    ) from None
                out.append(self._release(plaintext))
                start += full
        del buffer[:start]
        return b"".join(out)

    def finalize(self) -> bytes:
        """The final chunk's plaintext; refuses a stream that is not complete and exact.

        :class:`Truncated`: the stream ends inside the header, inside a tag, or
        at a chunk boundary without a final chunk; :class:`DecryptionFailed`:
        the last chunk does not authenticate as the final one (tampered, cut
        inside a chunk, or followed by extra bytes); :class:`MalformedError`:
        an empty final chunk after other chunks (not the canonical form).
        """
        self._usable()
        try:
            last = self._finalize()
        except BaseException:
            self._failed = True
            raise
        self._finished = True
        return last

    def _finalize(self) -> bytes:
        if self._chunks is None:
            raise Truncated("attachment blob: the stream ends inside its header")
        assert self._chunk_size is not None  # noqa: S101 - set with the header
        buffer = bytes(self._buffer)
        self._buffer = bytearray()
        if len(buffer) < TAG_LEN:
            raise Truncated("attachment blob: the stream ends without its final chunk")
        try:
            plaintext = self._open(buffer, final=True)
        except DecryptionFailed:
            if len(buffer) == self._chunk_size + TAG_LEN:
                try:
                    self._open(buffer, final=False)
                except DecryptionFailed:
                    pass
                else:
                    raise Truncated(
                        "attachment blob: the stream ends without its final chunk"
                    ) from None
            raise DecryptionFailed(
                f"attachment blob: chunk {self._index} does not authenticate as the final chunk"
            ) from None
        if not plaintext and self._index > 0:
            raise MalformedError("attachment blob: empty final chunk after other chunks")
        return self._release(plaintext)

    @property
    def size(self) -> int:
        """Plaintext bytes released so far."""
        return self._size

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the whole plaintext (after a successful :meth:`finalize`)."""
        if not self._finished:
            raise UsageError("the plaintext digest is known after finalize()")
        return self._hash.digest()

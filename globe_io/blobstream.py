"""Streaming a blob between a file and the hub: hashing, chunked upload with the file
checked against its digest as it goes, the ``Repr-Digest`` header (RFC 9530) and a
download into a ``.part`` file (:mod:`globe_io.files`).  The hub client
(:mod:`globe_io.hubclient`) does the HTTP; these do the bytes."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

import aiohttp

from globe_io.files import create_part, finish_part
from protocol.errors import GlobeError, MalformedError, SizeLimitExceeded, StorageError

__all__ = ["BLOB_CHUNK", "download_to_part", "hash_file", "repr_digest", "upload_chunks"]

#: Bytes read from disk or from the network at a time when streaming a blob.
BLOB_CHUNK: Final = 1 << 20


def hash_file(path: Path) -> tuple[bytes, int]:
    """SHA-256 and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(BLOB_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.digest(), size


async def upload_chunks(
    path: Path,
    size: int,
    digest: bytes,
    progress: Callable[[int, int], None] | None,
    failure: list[GlobeError],
) -> AsyncIterator[bytes]:
    """The first ``size`` bytes of the file, in chunks, checked against ``digest``.

    A local failure is recorded in ``failure`` (aiohttp wraps what a body raises).
    """
    check = hashlib.sha256()
    sent = 0
    try:
        file = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        failure.append(StorageError(f"cannot read {path}: {exc.strerror or exc}"))
        raise
    try:
        if progress is not None:
            progress(0, size)
        while sent < size:
            try:
                chunk = await asyncio.to_thread(file.read, min(BLOB_CHUNK, size - sent))
            except OSError as exc:
                failure.append(StorageError(f"cannot read {path}: {exc.strerror or exc}"))
                raise
            if not chunk:
                break
            check.update(chunk)
            sent += len(chunk)
            yield chunk
            if progress is not None:
                progress(sent, size)
    finally:
        file.close()
    if sent != size or check.digest() != digest:
        failure.append(StorageError(f"{path} changed while it was being uploaded"))
        raise failure[-1]


def repr_digest(value: str | None) -> bytes:
    """The SHA-256 in a ``Repr-Digest`` header (RFC 9530): ``sha-256=:<base64>:``."""
    for member in (value or "").split(","):
        name, _, item = member.strip().partition("=")
        if name.strip() != "sha-256":
            continue
        item = item.strip()
        if len(item) < 2 or item[0] != ":" or item[-1] != ":":
            break
        try:
            digest = base64.b64decode(item[1:-1], validate=True)
        except (binascii.Error, ValueError):
            break
        if len(digest) == 32:
            return digest
        break
    raise MalformedError("the hub's answer has no valid Repr-Digest sha-256")


async def download_to_part(
    resp: aiohttp.ClientResponse,
    part: Path,
    max_size: int,
    total: int | None,
    progress: Callable[[int, int], None] | None,
) -> bytes:
    """Stream the body to ``part`` (fsynced, not renamed); return its SHA-256."""
    try:
        file = await asyncio.to_thread(create_part, part)
    except OSError as exc:
        raise StorageError(f"cannot write {part}: {exc.strerror or exc}") from None
    digest = hashlib.sha256()
    received = 0
    pending = bytearray()
    try:
        if progress is not None:
            progress(0, total or 0)
        async for chunk in resp.content.iter_chunked(64 * 1024):
            received += len(chunk)
            if received > max_size:
                raise SizeLimitExceeded(f"blob exceeds the cap of {max_size} bytes")
            digest.update(chunk)
            pending += chunk
            if len(pending) >= BLOB_CHUNK:
                await asyncio.to_thread(file.write, pending)
                pending.clear()
            if progress is not None:
                progress(received, total or 0)
        if total is not None and received != total:  # pragma: no cover - aiohttp raises first
            raise MalformedError("the blob is not Content-Length bytes long")
        await asyncio.to_thread(finish_part, file, bytes(pending))
    except OSError as exc:
        if isinstance(exc, aiohttp.ClientError):
            raise
        raise StorageError(f"cannot write {part}: {exc.strerror or exc}") from None
    finally:
        file.close()
    return digest.digest()

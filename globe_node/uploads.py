"""Staged uploads: the only way a file's bytes reach the node daemon.

The daemon never opens a path its caller names (THREAT-MODEL.md: the insider
with a token).  A client — the CLI, reading a file with its user's own
rights, or the web UI — streams the bytes to ``POST /api/uploads``; the daemon
encrypts them as they arrive, in the attachment blob format (PROTOCOL.md
§8.4.2) under a fresh key, into its own spool (``DIR/blobs``), and keeps the
key sealed under the storage key.  A message then names the upload by its id.
An upload belongs to the user who made it, is used by at most one message
(taken in the message's own transaction), and is erased after
``upload_lifetime`` if no message took it.

Memory stays constant whatever the size: one chunk at a time, encrypted and
written off the event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import Connection

from globe_io.errors import Conflict, NotFound, PayloadTooLarge
from globe_io.files import create_part, finish_part, rename_durably
from globe_node import db
from globe_node.storage import StorageCipher
from globe_node.store import Store
from protocol import canonical, crypto
from protocol.attachments import AttachmentDecryptor, AttachmentEncryptor
from protocol.errors import DecryptionFailed, MalformedError, StorageError, UsageError
from protocol.ids import AuthorityId
from protocol.messages import Attachment, check_attachment_name, check_media_type

__all__ = ["MAX_ATTACHMENT", "UploadInfo", "UploadQuotaExceeded", "Uploads"]

#: The largest attachment (plaintext bytes).
MAX_ATTACHMENT: Final = 2 << 30
_ID_RE: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)


class UploadQuotaExceeded(StorageError):
    """The staged uploads would exceed the node's ``upload_quota``; send or discard some."""

    slug = "upload-quota-exceeded"
    status = 507
    title = "Upload quota exceeded"


@dataclass(frozen=True, slots=True)
class UploadInfo:
    """A staged upload as its owner sees it."""

    id: str
    name: str
    media_type: str
    size: int
    sha256: bytes
    created: int
    expires: int

    def to_json(self) -> dict[str, object]:
        """The local API's form."""
        return {
            "id": self.id,
            "name": self.name,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": canonical.b64e(self.sha256),
            "created": self.created,
            "expires": self.expires,
        }


def parse_upload_id(value: object) -> str:
    """An upload id (32 lower-case hex digits), else :class:`UsageError`."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise UsageError("an upload id is 32 lower-case hex digits")
    return value


class Uploads:
    """Stage, list, take and discard uploads; files live as ``blob_path(me, blob)``."""

    def __init__(
        self,
        *,
        me: AuthorityId,
        store: Store,
        cipher: StorageCipher,
        blob_path: Callable[[AuthorityId | str, str], Path],
        lifetime: int,
        quota: int,
        clock: Callable[[], int],
    ) -> None:
        self.me = me
        self.store = store
        self.cipher = cipher
        self.blob_path = blob_path
        self.lifetime = lifetime
        self.quota = quota
        self.clock = clock
        self._reserved = 0  # bytes of uploads still arriving

    def _info(self, row: db.UploadRow) -> UploadInfo:
        return UploadInfo(
            row.id, row.name, row.media_type, row.size, row.sha256, row.created,
            row.created + self.lifetime,
        )  # fmt: skip

    async def receive(
        self,
        chunks: AsyncIterable[bytes],
        *,
        user: str,
        name: str,
        media_type: str,
        size: int,
    ) -> UploadInfo:
        """Encrypt ``size`` bytes from ``chunks`` into the spool; the upload is then staged.

        Nothing is staged unless exactly ``size`` bytes arrived: a short or long
        body leaves no file and no row behind.
        """
        try:
            check_attachment_name(name)
            check_media_type(media_type)
        except MalformedError as exc:
            raise UsageError(exc.detail) from None
        if not 0 <= size <= MAX_ATTACHMENT:
            raise PayloadTooLarge(f"an attachment is at most {MAX_ATTACHMENT} bytes")
        staged = await self._staged_bytes()
        if staged + self._reserved + size > self.quota:
            raise UploadQuotaExceeded(
                f"staged uploads would take {staged + self._reserved + size} bytes of the"
                f" {self.quota} allowed: send or discard some first"
            )
        self._reserved += size
        try:
            return await self._receive(chunks, user=user, name=name, media=media_type, size=size)
        finally:
            self._reserved -= size

    async def _receive(
        self, chunks: AsyncIterable[bytes], *, user: str, name: str, media: str, size: int
    ) -> UploadInfo:
        key = crypto.system_rng(crypto.AEAD_KEY_LEN)
        blob = crypto.system_rng(16).hex()
        upload_id = crypto.system_rng(16).hex()
        enc = AttachmentEncryptor(key, blob)
        path = self.blob_path(self.me, blob)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        part = path.with_name(path.name + ".part")
        out = await asyncio.to_thread(create_part, part)
        try:
            await asyncio.to_thread(out.write, enc.header())
            received = 0
            async for chunk in chunks:
                received += len(chunk)
                if received > size:
                    raise PayloadTooLarge(f"the body is longer than the {size} bytes announced")
                await asyncio.to_thread(_encrypt_write, out, enc, chunk)
            if received != size:
                raise MalformedError(f"the body ended after {received} of {size} bytes")
            await asyncio.to_thread(finish_part, out, enc.finalize())
            out.close()
            await asyncio.to_thread(rename_durably, part, path)
        except BaseException:
            out.close()
            part.unlink(missing_ok=True)
            raise
        now = self.clock()
        row = db.UploadRow(
            id=upload_id, user=user, blob=blob, key=self.cipher.seal(key, f"upload:{upload_id}"),
            name=name, media_type=media, size=enc.size, sha256=enc.sha256, created=now,
        )  # fmt: skip
        try:
            async with self.store.write() as s:
                s.add(row)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self._info(row)

    async def _staged_bytes(self) -> int:
        async with self.store.read() as s:
            total = (await s.execute(select(func.sum(db.UploadRow.size)))).scalar()
        return int(total or 0)

    async def staged(self, user: str) -> list[UploadInfo]:
        """``user``'s staged uploads, oldest first."""
        async with self.store.read() as s:
            rows = (
                await s.execute(
                    select(db.UploadRow)
                    .where(db.UploadRow.user == user)
                    .order_by(db.UploadRow.created, db.UploadRow.id)
                )
            ).scalars()
            return [self._info(r) for r in rows]

    async def manifests(self, user: str, ids: Sequence[str]) -> list[Attachment]:
        """The attachment manifests of ``user``'s uploads ``ids`` (in that order)."""
        if len(set(ids)) != len(ids):
            raise UsageError("an upload is attached once")
        if not ids:
            return []
        async with self.store.read() as s:
            rows = {
                r.id: r
                for r in (
                    await s.execute(
                        select(db.UploadRow)
                        .where(db.UploadRow.id.in_(list(ids)))
                        .where(db.UploadRow.user == user)
                    )
                ).scalars()
            }
        out = []
        for upload_id in ids:
            row = rows.get(upload_id)
            if row is None:  # another user's upload is as unknown as a made-up id
                raise NotFound(f"no staged upload {upload_id} of yours")
            key = self.cipher.open(row.key, f"upload:{upload_id}")
            out.append(Attachment(row.name, row.size, row.media_type, row.sha256, key, row.blob))
        return out

    @staticmethod
    def take(c: Connection, user: str, ids: Sequence[str]) -> None:
        """Remove uploads ``ids`` from the staging area in the transaction of ``c`` (the
        message that uses them commits in it); refuse if one was taken meanwhile."""
        if not ids:
            return
        done = c.execute(_TAKE, {"ids": list(ids), "user": user})
        if int(done.rowcount or 0) != len(ids):
            raise Conflict("an upload was used by another message meanwhile; upload it again")

    async def discard(self, user: str, upload_id: str) -> None:
        """Erase one of ``user``'s staged uploads and its file."""
        async with self.store.write() as s:
            row = await s.get(db.UploadRow, upload_id)
            if row is None or row.user != user:
                raise NotFound(f"no staged upload {upload_id} of yours")
            await s.delete(row)
        self.blob_path(self.me, row.blob).unlink(missing_ok=True)

    async def purge(self) -> int:
        """Erase uploads no message took within ``lifetime``; return how many."""
        limit = self.clock() - self.lifetime
        async with self.store.write() as s:
            rows = (
                (await s.execute(select(db.UploadRow).where(db.UploadRow.created < limit)))
                .scalars()
                .all()
            )
            for r in rows:
                await s.delete(r)
        for r in rows:
            self.blob_path(self.me, r.blob).unlink(missing_ok=True)
        return len(rows)

    async def copy(self, source: Path, manifest: Attachment, *, user: str) -> UploadInfo:
        """Stage a copy of a stored attachment re-encrypted under a fresh key and blob id
        (a forward carries its attachments to the new recipients, PROTOCOL.md §8.3).

        ``source`` is a file of this node's own spool; its plaintext must match the
        manifest's digest and size, or nothing is staged.
        """
        dec = AttachmentDecryptor(manifest.key, manifest.blob)

        async def plaintext() -> AsyncIterable[bytes]:
            f = await asyncio.to_thread(source.open, "rb")
            try:
                while chunk := await asyncio.to_thread(f.read, 1 << 20):
                    if plain := dec.update(chunk):
                        yield plain
                if last := dec.finalize():
                    yield last
            finally:
                f.close()
            if dec.sha256 != manifest.sha256 or dec.size != manifest.size:
                raise DecryptionFailed(f"attachment {manifest.name!r} does not match its digest")

        try:
            return await self.receive(
                plaintext(), user=user, name=manifest.name, media_type=manifest.media_type,
                size=manifest.size,
            )  # fmt: skip
        except FileNotFoundError:
            raise Conflict(
                f"attachment {manifest.name!r} is no longer on this node; the forward would be"
                " partial"
            ) from None


def _encrypt_write(out: IO[bytes], enc: AttachmentEncryptor, chunk: bytes) -> None:
    out.write(enc.update(chunk))


_UPLOADS: Final = db.Base.metadata.tables[db.UploadRow.__tablename__]
_TAKE: Final = (
    delete(_UPLOADS)
    .where(_UPLOADS.c.id.in_(bindparam("ids", expanding=True)))
    .where(_UPLOADS.c.user == bindparam("user"))
)

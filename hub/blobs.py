"""Attachment blobs: ``PUT`` and ``GET /v1/blobs/{id}`` (docs/PROTOCOL.md §8.4).

A blob is the ciphertext of an attachment; its format is the nodes' business
(§8.4) and the hub never reads it.  It lives in a file ``<directory>/<id>``
with a row in ``blobs`` (owner, size, SHA-256 of the ciphertext); accepted
envelopes that list it in their header's ``blobs`` are linked to it in
``message_blobs`` by the router.

**Upload** (``PUT``, the owner is the authenticated member).  Before a byte
of the body is read: the id is 32 lower-case hex (400), a ``Content-Length``
is given (411) and within ``max_blob`` (413), the ``Globe-Auth`` header names
a key of an active member with a fresh timestamp (401), and that member's
stored and in-flight blobs plus this one fit ``quota_bytes`` and the disk
(507).  The body is then streamed in chunks to ``<id>.<random>.part`` and
hashed as it arrives, with constant memory; each read waits at most
``read_timeout`` seconds and the whole body must arrive within
``read_timeout + size / min_rate`` (408).  The part file is fsynced, and only
then is the request signature checked, against the SHA-256 of the streamed
body (the signature covers it, §10): a bad signature is 401.  The row is
inserted (an id already used: 409) and the part file renamed into place in
one transaction, so a blob exists only when complete and durable.  Any
refusal or failure deletes the part file.

**Download** (``GET``).  Only a recipient of an accepted envelope that lists
the blob, sent by the blob's owner, whose copy is still waiting for it or was
delivered to it; anyone else, and an unknown id, gets the same 404, so a
non-recipient learns nothing about a blob's existence.  The file is streamed
in chunks with constant memory; ``Repr-Digest`` carries the ciphertext's
SHA-256 (RFC 9530).

**Removal.**  A blob goes once no envelope that lists it still has a copy
waiting for a recipient: every recipient receipted or its copy expired.  The
router calls :meth:`BlobStore.released` after receipts and expiry, with the
messages among them that list blobs (the statement that finds the released
envelopes tells it, by an index lookup in ``message_blobs``), so releasing an
envelope without attachments, the common case, costs the store nothing; a
periodic sweep catches up after failures and restarts.  A blob no envelope lists goes
after ``grace`` seconds.  Links and row are deleted in one transaction whose
statements re-check that nothing waits (the foreign key from ``message_blobs``
refuses the row's deletion if an envelope was linked concurrently), then the
file is unlinked: a crash in between leaves an orphan file that the sweep
removes, as it removes stale part files.

Quotas count the database plus this process's uploads in flight: several hub
processes on one database may together overshoot an owner's quota by their
concurrent uploads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Final, cast

from aiohttp import web
from sqlalchemy import CursorResult, delete, func, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import aliased

from globe_io.errors import (
    BlobQuotaExceeded,
    Conflict,
    LengthRequired,
    NotFound,
    PayloadTooLarge,
    UploadTimeout,
)
from globe_io.files import create_part, finish_part, rename_durably
from globe_io.hubapi import BlobStored
from hub import db
from hub.routing import ENVELOPE, Router
from hub.service import HubService
from hub.web import answer, authenticate, read_body, verify_auth
from protocol.errors import (
    AuthError,
    GlobeError,
    InvalidIdentifier,
    MalformedError,
    StaleError,
    StorageError,
    UsageError,
)
from protocol.requestauth import HEADER, parse_request_auth

__all__ = [
    "BLOBS_KEY",
    "BlobQuotaExceeded",
    "BlobStore",
    "LengthRequired",
    "UploadTimeout",
]

log = logging.getLogger("globe.hub.blobs")

GIB: Final = 1 << 30
#: Default cap on one blob, and on the blobs one authority may have stored at once.
MAX_BLOB: Final = 2 * GIB
QUOTA: Final = 16 * GIB
#: Bytes read from the request, and written to or read from disk, at a time.
READ_CHUNK: Final = 64 * 1024
WRITE_CHUNK: Final = 1 << 20
COMPLETE: Final = "complete"
_ID_RE: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)
_PART_RE: Final = re.compile(r"([0-9a-f]{32})\.[0-9a-f]{16}\.part\Z", re.ASCII)
_PATH: Final = "/v1/blobs/{blob_id}"


class BlobStore:
    """Attachment blobs in ``directory``, indexed in the hub database."""

    def __init__(
        self,
        service: HubService,
        directory: Path,
        *,
        max_blob: int = MAX_BLOB,
        quota_bytes: int = QUOTA,
        read_timeout: float = 30.0,
        min_rate: float = 16 * 1024,
        grace: int = 86400,
        orphan_age: float = 3600.0,
        sweep_interval: float = 300.0,
        sweep_limit: int = 1000,
    ) -> None:
        """``grace``: seconds (hub clock) an unreferenced blob is kept; ``orphan_age``:
        seconds (file time) before a file without a row, or a part file nobody
        writes, is deleted; ``read_timeout`` and ``min_rate`` bound a slow upload."""
        if max_blob < 1 or quota_bytes < 1 or read_timeout <= 0 or min_rate <= 0:
            raise UsageError("blob limits must be positive")
        self.service = service
        self.directory = directory
        self.max_blob = max_blob
        self.quota_bytes = quota_bytes
        self.read_timeout = read_timeout
        self.min_rate = min_rate
        self.grace = grace
        self.orphan_age = orphan_age
        self.sweep_interval = sweep_interval
        self.sweep_limit = sweep_limit
        self._in_flight: dict[str, int] = {}  # owner -> bytes being uploaded
        self._parts: set[str] = set()  # part file names this process is writing

    def path(self, blob_id: str) -> Path:
        """Where a complete blob's file lives."""
        return self.directory / blob_id

    # -- wiring ----------------------------------------------------------------------------

    def install(self, app: web.Application, router: Router) -> None:
        """Serve the blob routes on ``app``; remove blobs as ``router`` releases messages."""
        app[BLOBS_KEY] = self
        app.router.add_put(_PATH, put_blob)
        app.router.add_get(_PATH, get_blob, allow_head=False)
        router.on_release = self.released
        app.cleanup_ctx.append(self._context)

    async def _context(self, _app: web.Application) -> AsyncIterator[None]:
        await self.start()

        async def sweeper() -> None:
            while True:
                await asyncio.sleep(self.sweep_interval)
                try:
                    await self.sweep()
                except Exception:  # pragma: no cover - sweep() reports its own failures
                    log.exception("blob sweep crashed; retried next round")

        task = asyncio.create_task(sweeper(), name="globe-blob-sweep")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def start(self) -> None:
        """Create the directory (owner-only) and run one sweep."""
        await asyncio.to_thread(self.directory.mkdir, mode=0o700, parents=True, exist_ok=True)
        await self.sweep()

    # -- upload ----------------------------------------------------------------------------

    async def upload(self, request: web.Request, blob_id: str) -> BlobStored:
        """Stream the request body into a new blob (checks in the module docstring)."""
        if not _ID_RE.match(blob_id):
            raise InvalidIdentifier("a blob id is 32 lower-case hex digits")
        size = request.content_length
        if size is None:
            raise LengthRequired("an upload states its size in Content-Length")
        if size > self.max_blob:
            raise PayloadTooLarge(f"a blob of {size} bytes exceeds the cap of {self.max_blob}")
        owner = self._claimed_owner(request)
        await self._reserve(owner, size)
        part = self.directory / f"{blob_id}.{secrets.token_hex(8)}.part"
        self._parts.add(part.name)
        try:
            digest = await self._receive(request, part, size)
            # The signature covers the body's SHA-256: check it only now, over what was stored.
            who = await verify_auth(
                request.app, request.headers.get(HEADER), admin=False, method=request.method,
                target=request.raw_path, body=b"", body_digest=digest, durable=False,
            )  # fmt: skip
            if str(who.authority) != owner:  # pragma: no cover - the same key was looked up
                raise AuthError("request authentication failed")
            await self._commit(blob_id, owner, size, digest, part)
        finally:
            self._unreserve(owner, size)  # after the commit: the row counts from now on
            self._parts.discard(part.name)
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(part.unlink)
        log.info("blob %s stored: %d bytes from %s", blob_id, size, owner)
        return BlobStored(id=blob_id, size=size, sha256=digest)

    def _claimed_owner(self, request: web.Request) -> str:
        """The member the ``Globe-Auth`` header names, before the body is read.

        Only the header's syntax, its time window and the key's owner: the
        signature is checked after the body arrived (:func:`verify_auth`)."""
        auth = parse_request_auth(request.headers.get(HEADER))
        if abs(self.service.now() - auth.created) > self.service.clock_skew:
            raise StaleError("request timestamp outside the accepted window")
        member = self.service.member_transport_key(auth.key_id)
        if member is None:
            raise AuthError("request authentication failed")
        return str(member[0])

    async def _reserve(self, owner: str, size: int) -> None:
        """Count ``size`` against the owner's quota while the upload runs.

        The reservation is made before the stored total is read and dropped only
        after the row is committed, so an upload finishing meanwhile is counted
        at least once; of two concurrent checks, the later sees the earlier.
        """
        others = self._in_flight.get(owner, 0)
        self._in_flight[owner] = others + size
        try:
            async with self.service.unit() as s:
                stored = (
                    await s.execute(
                        select(func.coalesce(func.sum(db.Blob.size), 0)).where(
                            db.Blob.owner == owner
                        )
                    )
                ).scalar_one()
            if int(stored) + others + size > self.quota_bytes:
                raise BlobQuotaExceeded(f"the blob quota of {owner} has no room for {size} bytes")
            free = (await asyncio.to_thread(shutil.disk_usage, self.directory)).free
            if sum(self._in_flight.values()) > free:
                raise BlobQuotaExceeded("the hub has no disk space for this blob; retry later")
        except BaseException:
            self._unreserve(owner, size)
            raise

    def _unreserve(self, owner: str, size: int) -> None:
        left = self._in_flight[owner] - size
        if left:
            self._in_flight[owner] = left
        else:
            del self._in_flight[owner]

    async def _receive(self, request: web.Request, part: Path, size: int) -> bytes:
        """Stream the body to ``part`` (fsynced); return its SHA-256."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout + size / self.min_rate
        digest = hashlib.sha256()
        received = 0
        pending = bytearray()
        try:
            file = await asyncio.to_thread(create_part, part, exclusive=True)
        except OSError as exc:
            raise _storage(exc) from exc
        try:
            while True:
                wait = min(self.read_timeout, deadline - loop.time())
                if wait <= 0:
                    raise UploadTimeout("the body did not arrive in time")
                try:
                    chunk = await asyncio.wait_for(request.content.read(READ_CHUNK), wait)
                except TimeoutError:
                    raise UploadTimeout("the body did not arrive in time") from None
                if not chunk:
                    break
                received += len(chunk)
                digest.update(chunk)
                pending += chunk
                if len(pending) >= WRITE_CHUNK:
                    await asyncio.to_thread(file.write, pending)
                    pending.clear()
            if received != size:  # pragma: no cover - aiohttp delivers exactly Content-Length
                raise MalformedError("the body is not Content-Length bytes long")
            await asyncio.to_thread(finish_part, file, bytes(pending))
        except ConnectionError:  # the client went away: nobody to answer
            raise MalformedError("the connection closed before the body was complete") from None
        except OSError as exc:
            raise _storage(exc) from exc
        finally:
            file.close()
        return digest.digest()

    async def _commit(self, blob_id: str, owner: str, size: int, digest: bytes, part: Path) -> None:
        row = db.Blob(
            id=blob_id, owner=owner, size=size, sha256=digest, created=self.service.now(),
            state=COMPLETE,
        )  # fmt: skip
        try:
            async with self.service.unit() as s:
                s.add(row)
                await s.flush()  # a used id fails here, before the file is touched
                await asyncio.to_thread(rename_durably, part, self.path(blob_id))
        except IntegrityError:
            raise Conflict(f"blob {blob_id} already exists; upload under a new id") from None
        except OSError as exc:
            raise _storage(exc) from exc

    # -- download --------------------------------------------------------------------------

    async def readable(self, blob_id: str, reader: str) -> db.Blob | None:
        """The blob, if ``reader`` may fetch it (see the module docstring); else ``None``."""
        if not _ID_RE.match(blob_id):
            return None
        waiting = (
            select(db.MailboxItem.seq)
            .where(db.MailboxItem.message == db.Message.id)
            .where(db.MailboxItem.recipient == reader)
            .where(db.MailboxItem.kind == ENVELOPE)
            .exists()
        )
        delivered = (
            select(db.Delivery.id)
            .where(db.Delivery.message == db.Message.id)
            .where(db.Delivery.recipient == reader)
            .where(db.Delivery.outcome == "delivered")
            .exists()
        )
        referenced = (
            select(db.MessageBlob.message)
            .join(db.Message, db.Message.id == db.MessageBlob.message)
            .where(db.MessageBlob.blob == db.Blob.id)
            .where(db.Message.sender == db.Blob.owner)
            .where(or_(waiting, delivered))
            .exists()
        )
        async with self.service.unit() as s:
            found = await s.execute(
                select(db.Blob)
                .where(db.Blob.id == blob_id)
                .where(db.Blob.state == COMPLETE)
                .where(referenced)
            )
            return found.scalars().first()

    # -- removal ---------------------------------------------------------------------------

    async def released(self, messages: list[tuple[str, str]]) -> None:
        """Remove the blobs of these (sender, message id) that nobody waits for any more.

        Called by the router after receipts and expiry, only for messages that list
        blobs (an empty call is free: no transaction); never raises (the periodic
        sweep retries what fails here).
        """
        wanted = set(messages)
        if not wanted:
            return
        try:
            async with self.service.unit() as s:
                rows = (
                    await s.execute(
                        select(db.MessageBlob.blob, db.Message.sender, db.Message.message_id)
                        .join(db.Message, db.Message.id == db.MessageBlob.message)
                        .where(db.Message.message_id.in_({m for _, m in wanted}))
                    )
                ).all()
            await self._remove_all(
                sorted({r.blob for r in rows if (r.sender, r.message_id) in wanted})
            )
        except (GlobeError, SQLAlchemyError, OSError) as exc:
            log.warning("blob removal failed (the sweep retries): %s", type(exc).__name__)

    async def sweep(self) -> int:
        """Remove blobs nobody needs, unreferenced blobs past the grace, orphans.

        Returns the number of blobs removed; never raises.
        """
        try:
            linked, waiting = _linked_and_waiting()
            async with self.service.unit() as s:
                done = (
                    await s.execute(
                        select(db.Blob.id).where(linked).where(~waiting).limit(self.sweep_limit)
                    )
                ).scalars()
                ids = list(done)
                stale = (
                    await s.execute(
                        select(db.Blob.id)
                        .where(~linked)
                        .where(db.Blob.created < self.service.now() - self.grace)
                        .limit(self.sweep_limit)
                    )
                ).scalars()
                ids += list(stale)
            removed = await self._remove_all(ids)
            await self._remove_orphans()
        except (GlobeError, SQLAlchemyError, OSError) as exc:
            log.warning("blob sweep failed (retried next round): %s", type(exc).__name__)
            return 0
        return removed

    async def _remove_all(self, blob_ids: Iterable[str]) -> int:
        removed = 0
        for blob_id in blob_ids:
            try:
                removed += await self._remove(blob_id)
            except IntegrityError:  # an envelope was linked to it meanwhile: it stays
                continue
        return removed

    async def _remove(self, blob_id: str) -> bool:
        """Delete one blob if no envelope listing it waits, or none lists it past the grace."""
        waiting = (
            select(db.MailboxItem.seq)
            .join(_MB, _MB.message == db.MailboxItem.message)
            .where(_MB.blob == blob_id)
            .where(db.MailboxItem.kind == ENVELOPE)
            .exists()
        )
        linked = select(_MB.message).where(_MB.blob == blob_id).exists()
        async with self.service.unit() as s:
            # Each statement sees one state: the links go only if no copy waits, the row
            # only if no link is left (and the foreign key catches a link made meanwhile).
            unlinked = await s.execute(
                delete(db.MessageBlob).where(db.MessageBlob.blob == blob_id).where(~waiting)
            )
            row = delete(db.Blob).where(db.Blob.id == blob_id).where(~linked)
            if cast(CursorResult[Any], unlinked).rowcount == 0:  # never listed: the grace
                row = row.where(db.Blob.created < self.service.now() - self.grace)
            if (await s.execute(row.returning(db.Blob.id))).first() is None:
                return False
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path(blob_id).unlink)
        log.info("blob %s removed", blob_id)
        return True

    async def _remove_orphans(self) -> None:
        """Files without a row, and part files nobody writes, older than ``orphan_age``."""
        cutoff = time.time() - self.orphan_age
        names = await asyncio.to_thread(_old_files, self.directory, cutoff)
        parts = [n for n in names if _PART_RE.match(n) and n not in self._parts]
        files = [n for n in names if _ID_RE.match(n)]
        if files:
            async with self.service.unit() as s:
                known = set(
                    (await s.execute(select(db.Blob.id).where(db.Blob.id.in_(files)))).scalars()
                )
            parts += [n for n in files if n not in known]
        for name in parts:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread((self.directory / name).unlink)
            log.info("blob directory: removed orphan %s", name)


BLOBS_KEY: Final = web.AppKey("blobs", BlobStore)
#: ``message_blobs`` again, for the "does an envelope still wait" subquery.
_MB = aliased(db.MessageBlob)


def _linked_and_waiting() -> tuple[Any, Any]:
    """Correlated conditions on ``blobs``: an envelope lists it / a copy still waits."""
    linked = select(db.MessageBlob.message).where(db.MessageBlob.blob == db.Blob.id).exists()
    waiting = (
        select(db.MailboxItem.seq)
        .join(_MB, _MB.message == db.MailboxItem.message)
        .where(_MB.blob == db.Blob.id)
        .where(db.MailboxItem.kind == ENVELOPE)
        .exists()
    )
    return linked, waiting


# --- files -------------------------------------------------------------------------------------


def _storage(exc: OSError) -> StorageError:
    log.error("blob storage failure: %s", exc)
    return StorageError("the hub could not store the blob; retry later")


def _old_files(directory: Path, cutoff: float) -> list[str]:
    out = []
    with os.scandir(directory) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    out.append(entry.name)
    return out


# --- handlers ----------------------------------------------------------------------------------


async def put_blob(request: web.Request) -> web.Response:
    """Upload a blob (the signed request covers the body's SHA-256)."""
    store = request.app[BLOBS_KEY]
    return answer(await store.upload(request, request.match_info["blob_id"]), status=201)


async def get_blob(request: web.Request) -> web.StreamResponse:
    """Download a blob, as a recipient of an envelope that lists it."""
    store = request.app[BLOBS_KEY]
    who = await authenticate(request, await read_body(request), admin=False)
    blob_id = request.match_info["blob_id"]
    gone = NotFound("no such blob")  # unknown and forbidden look the same
    row = await store.readable(blob_id, str(who.authority))
    if row is None:
        raise gone
    try:
        file = await asyncio.to_thread(open, store.path(blob_id), "rb")
    except FileNotFoundError:
        raise gone from None
    try:
        if os.fstat(file.fileno()).st_size != row.size:
            log.error("blob %s: the file does not have the recorded size", blob_id)
            raise StorageError("the blob cannot be read; retry later")
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Repr-Digest": f"sha-256=:{base64.b64encode(row.sha256).decode()}:",
                "Cache-Control": "no-store",
            }
        )
        response.content_length = row.size
        await response.prepare(request)
        try:
            while chunk := await asyncio.to_thread(file.read, WRITE_CHUNK):
                await response.write(chunk)
            await response.write_eof()
        except ConnectionError:  # the reader went away
            log.info("blob %s: download to %s interrupted", blob_id, who)
        return response
    finally:
        file.close()

"""An asynchronous client for the hub's HTTP API v1 (``hub/web.py``).

One :class:`HubClient` method per endpoint.  Requests to the admin endpoints,
``PUT /v1/prekeys`` and the member endpoints carry a ``Globe-Auth`` header made with
:func:`protocol.requestauth.sign_request` (audience ``"hub"``, network = the
pinned genesis digest, target = the path and query exactly as sent).

The member endpoints (messages, mailbox, acknowledgements, attachment blobs)
are signed with the member's transport key.  Blobs are streamed: an upload
is read from disk in chunks, after a first streaming pass that computes the
SHA-256 its signature covers (§10); a download is written in chunks to a
``.part`` file next to its destination, checked against the hub's
``Repr-Digest`` and the caller's size cap, fsynced and only then renamed into
place.  Memory use is constant whatever the blob's size.

Failures are translated at this boundary:

* the hub cannot be reached (DNS, refused connection, reset, timeout):
  :class:`~protocol.errors.TransportError`;
* the hub answers with an RFC 9457 problem whose ``type`` names an error of
  the project (registered in ``protocol.errors``): that error class, with
  the hub's ``detail``;
* any other refusal (another problem type, or a non-problem error page from a
  proxy): :class:`RemoteError`, carrying the HTTP status and detail.

The client trusts nothing it receives: callers verify log entries and
checkpoints against their own pinned genesis.  The admin endpoints, search
and readiness answer with the typed results of :mod:`globe_io.hubapi`, the
classes the hub itself answers with, read strictly: an answer of another shape
is a :class:`~protocol.errors.MalformedError` (an unknown field an
:class:`~protocol.errors.UnknownField`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from yarl import URL

from globe_io.blobstream import (
    download_to_part,
    hash_file,
    repr_digest,
    upload_chunks,
)
from globe_io.errors import RemoteError
from globe_io.files import rename_durably
from globe_io.hubapi import (
    BATCH_MAX_BODY,
    BATCH_MAX_ITEMS,
    ActionResult,
    ApplicationDetail,
    ApplicationList,
    ApplicationState,
    AuditRecords,
    KeyUpdateCreated,
    KeyUpdateDetail,
    KeyUpdateList,
    KeyUpdateState,
    KeyUpdateStatus,
    LogPage,
    MailboxItem,
    ProfilePublished,
    ProposalList,
    Readiness,
    SearchResults,
    Submissions,
)
from globe_io.problems import error_for_problem, refusal
from globe_io.wire import WireResult
from protocol import canonical
from protocol.errors import (
    GlobeError,
    InvalidIdentifier,
    MalformedError,
    SizeLimitExceeded,
    StorageError,
    TransportError,
    UsageError,
)
from protocol.genesis import check_url
from protocol.ids import AuthorityId
from protocol.keys import SigningKey
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE",
    "HubClient",
    "LogPage",
    "MailboxItem",
    "RemoteError",
    "request_payload",
]

#: Seconds for a whole request (connect, send, receive).
DEFAULT_TIMEOUT: Final = 30.0
#: Cap on a response body: a full log page (500 entries of at most 24 KiB) fits.
MAX_RESPONSE: Final = 32 * 1024 * 1024
_PROBLEM_TYPE: Final = "application/problem+json"
_BLOB_ID_RE: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)
_KIND_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,31}\Z", re.ASCII)
_MAX_CURSOR: Final = 2**53 - 1
_R = TypeVar("_R", bound=WireResult)


def request_payload(body: bytes) -> bytes | io.BytesIO | None:
    """A request body as aiohttp should send it: large ones as a stream it writes in
    chunks (a bytes body over 1 MiB would block the event loop while it is written)."""
    if not body:
        return None
    return io.BytesIO(body) if len(body) > 256 * 1024 else body


def _unreachable(exc: aiohttp.ClientError | OSError, timeout: float) -> str:
    """Why a request got no HTTP answer, in words."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        if isinstance(err, socket.gaierror):
            return f"cannot resolve the host name ({err.strerror or err})".lower()
        if err.errno is not None and err.errno > 0:
            return os.strerror(err.errno).lower()
        return str(err) or "connection failed"
    return str(exc) or type(exc).__name__


def _target(path: str, params: Mapping[str, str | int | None] | None) -> str:
    query = {k: str(v) for k, v in (params or {}).items() if v is not None}
    return f"{path}?{urlencode(query, quote_via=quote)}" if query else path


class HubClient:
    """Asynchronous client of one hub.  Use as ``async with HubClient(...) as hub:``.

    ``network`` is the digest of the pinned genesis; ``key`` is the admin key
    (admin endpoints) or the member's transport key (``put_prekey`` and the
    member endpoints: messages, mailbox, acknowledgements, blobs).
    """

    def __init__(
        self,
        base_url: str,
        *,
        network: bytes | None = None,
        key: SigningKey | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = check_url(base_url.rstrip("/"), "hub URL")
        self._base = URL(self.base_url)
        self._prefix = self._base.path.rstrip("/")
        self.network = network
        self.key = key
        self.timeout = timeout
        self.clock = clock
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._session is not None and self._own_session:
            await self._session.close()
            self._session = None

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=min(10.0, self.timeout)),
                raise_for_status=False,
            )
        return self._session

    # -- transport -----------------------------------------------------------------------------

    def _auth(
        self, method: str, target: str, body: bytes = b"", *, body_digest: bytes | None = None
    ) -> str:
        """The ``Globe-Auth`` value for a request to ``target`` (path and query as sent)."""
        if self.key is None or self.network is None:
            raise UsageError(f"{method} {target} needs a signing key and the pinned genesis")
        return sign_request(
            key=self.key,
            network=self.network,
            audience=HUB_AUDIENCE,
            method=method,
            target=target,
            body=body,
            created=int(self.clock()),
            body_digest=body_digest,
        )

    def _url(self, target: str) -> URL:
        return URL(str(self._base.origin()) + target, encoded=True)

    def _transport_error(self, exc: aiohttp.ClientError | OSError) -> TransportError:
        return TransportError(
            f"cannot reach the hub at {self.base_url}: {_unreachable(exc, self.timeout)}"
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: bytes = b"",
        signed: bool = False,
        content_type: str = "application/json",
    ) -> tuple[bytes, str]:
        """Send one request; return the body and content type of a 2xx answer.

        Raises the translated error otherwise (see the module docstring).
        """
        _status, data, ctype = await self._exchange(
            method, path, params=params, body=body, signed=signed, content_type=content_type
        )
        return data, ctype

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: bytes = b"",
        signed: bool = False,
        content_type: str = "application/json",
    ) -> tuple[int, bytes, str]:
        """:meth:`request`, also returning the (2xx) HTTP status."""
        target = self._prefix + _target(path, params)
        headers = {"Accept": "application/json, application/problem+json"}
        if body or method in ("POST", "PUT"):
            headers["Content-Type"] = content_type
        if signed:
            headers[HEADER] = self._auth(method, target, body)
        session = self._session_or_new()
        try:
            async with session.request(
                method, self._url(target), data=request_payload(body), headers=headers
            ) as resp:
                data = await self._read(resp)
                ctype = resp.content_type
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError) as exc:
            raise self._transport_error(exc) from None
        if 200 <= status < 300:
            return status, data, ctype
        raise self._refusal(
            method, path, status=status, ctype=ctype, data=data, retry_after=retry_after
        )

    def _refusal(
        self,
        method: str,
        path: str,
        *,
        status: int,
        ctype: str,
        data: bytes,
        retry_after: str | None,
    ) -> GlobeError:
        """The error a non-2xx answer stands for."""
        return refusal(
            status, ctype, data, retry_after=retry_after,
            otherwise=lambda: RemoteError(
                f"the hub at {self.base_url} answered HTTP {status} to {method} {path}",
                http_status=status,
            ),
        )  # fmt: skip

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        if resp.content_length is not None and resp.content_length > MAX_RESPONSE:
            raise MalformedError(f"hub response of {resp.content_length} bytes is too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > MAX_RESPONSE:
                raise MalformedError(f"hub response exceeds {MAX_RESPONSE} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: bytes = b"",
        signed: bool = False,
    ) -> dict[str, Any]:
        data, _ctype = await self.request(method, path, params=params, body=body, signed=signed)
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise MalformedError(f"hub response to {method} {path} is not JSON") from None
        if not isinstance(value, dict):
            raise MalformedError(f"hub response to {method} {path} is not a JSON object")
        return value

    async def _result(
        self,
        result: type[_R],
        what: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: bytes = b"",
        signed: bool = False,
    ) -> _R:
        """A JSON answer read strictly as ``result`` (:meth:`WireResult.from_json`)."""
        value = await self._json(method, path, params=params, body=body, signed=signed)
        return result.from_json(value, what=f"hub response {what}")

    @staticmethod
    def _list(obj: Mapping[str, Any], name: str, what: str) -> list[Any]:
        value = obj.get(name)
        if not isinstance(value, list):
            raise MalformedError(f"hub response {what}: field {name!r} missing or not a list")
        return value

    # -- public endpoints ----------------------------------------------------------------------

    async def healthz(self) -> dict[str, Any]:
        """``GET /healthz``: liveness."""
        return await self._json("GET", "/healthz")

    async def readyz(self) -> Readiness:
        """``GET /readyz``: the database answers and the directory is loaded."""
        return await self._result(Readiness, "readiness", "GET", "/readyz")

    async def openapi(self) -> dict[str, Any]:
        """``GET /v1/openapi.json``: the API description."""
        return await self._json("GET", "/v1/openapi.json")

    async def genesis(self) -> bytes:
        """``GET /v1/directory/genesis``: the exact bytes of the genesis the hub serves."""
        data, _ = await self.request("GET", "/v1/directory/genesis")
        return data

    async def submit_application(self, application: bytes) -> dict[str, Any]:
        """``POST /v1/applications``: id, status and the KEM challenge (base64url)."""
        return await self._json("POST", "/v1/applications", body=application)

    async def application_status(self, app_id: str) -> dict[str, Any]:
        """``GET /v1/applications/{id}``: public status of an application."""
        return await self._json("GET", f"/v1/applications/{quote(app_id, safe='')}")

    async def answer_challenge(self, app_id: str, answer: bytes) -> dict[str, Any]:
        """``POST /v1/applications/{id}/proof``: prove possession of the key-agreement key."""
        body = orjson.dumps({"answer": canonical.b64e(answer)})
        return await self._json(
            "POST", f"/v1/applications/{quote(app_id, safe='')}/proof", body=body
        )

    async def submit_key_update(self, request: bytes) -> KeyUpdateCreated:
        """``POST /v1/key-updates``: id, replaced roles, fingerprint and the KEM challenge."""
        return await self._result(
            KeyUpdateCreated, "key update", "POST", "/v1/key-updates", body=request
        )

    async def key_update_status(self, ku_id: str) -> KeyUpdateStatus:
        """``GET /v1/key-updates/{id}``: public status of a key-update request."""
        return await self._result(
            KeyUpdateStatus, "key update", "GET", f"/v1/key-updates/{quote(ku_id, safe='')}"
        )

    async def answer_key_update(self, ku_id: str, answer: bytes) -> KeyUpdateState:
        """``POST /v1/key-updates/{id}/proof``: prove possession of the new key-agreement key."""
        return await self._result(
            KeyUpdateState, "proof", "POST", f"/v1/key-updates/{quote(ku_id, safe='')}/proof",
            body=orjson.dumps({"answer": canonical.b64e(answer)}),
        )  # fmt: skip

    async def log_page(self, since: int = 0, limit: int | None = None) -> LogPage:
        """``GET /v1/directory/log``: entries after ``since`` (unverified exact bytes)."""
        page = await self._json("GET", "/v1/directory/log", params={"since": since, "limit": limit})
        raw = self._list(page, "entries", "log page")
        entries = []
        for item in raw:
            if not isinstance(item, str):
                raise MalformedError("hub response log page: entries must be strings")
            entries.append(canonical.b64d(item, what="log entry"))
        nxt = page.get("next")
        if nxt is not None and (not isinstance(nxt, int) or isinstance(nxt, bool) or nxt <= since):
            raise MalformedError("hub response log page: bad 'next' cursor")
        return LogPage(entries=tuple(entries), next=nxt)

    async def log_entries(self, since: int = 0) -> list[bytes]:
        """Every log entry after ``since``, following the pages (unverified exact bytes)."""
        out: list[bytes] = []
        cursor: int | None = since
        while cursor is not None:
            page = await self.log_page(cursor)
            out.extend(page.entries)
            if page.next is not None and not page.entries:
                raise MalformedError("hub response log page: empty page with a next cursor")
            cursor = page.next
        return out

    async def checkpoint(self) -> bytes:
        """``GET /v1/directory/checkpoint``: a hub-signed checkpoint (unverified bytes)."""
        data, _ = await self.request("GET", "/v1/directory/checkpoint")
        return data

    async def search(
        self,
        *,
        country: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        text: str | None = None,
        include_inactive: bool = False,
        limit: int | None = None,
        offence: str | None = None,
    ) -> SearchResults:
        """``GET /v1/directory/search``: directory entries (check them against the log)."""
        params: dict[str, str | int | None] = {
            "country": country,
            "kind": kind,
            "offence": offence,
            "language": language,
            "q": text,
            "inactive": "1" if include_inactive else None,
            "limit": limit,
        }
        return await self._result(
            SearchResults, "search", "GET", "/v1/directory/search", params=params
        )

    async def publish_profile(self, profile: bytes) -> ProfilePublished:
        """``PUT /v1/profile``: append the member's signed profile to the log (PROTOCOL.md §6.7)."""
        return await self._result(
            ProfilePublished, "profile", "PUT", "/v1/profile", body=profile, signed=True
        )

    async def put_prekey(self, prekey: bytes) -> dict[str, Any]:
        """``PUT /v1/prekeys``: publish a signed prekey (signed with the transport key)."""
        return await self._json("PUT", "/v1/prekeys", body=prekey, signed=True)

    async def get_prekeys(self, authority: AuthorityId) -> list[bytes]:
        """``GET /v1/prekeys/{authority}``: a member's prekey containers (unverified)."""
        out = await self._json("GET", f"/v1/prekeys/{authority}")
        items = self._list(out, "prekeys", "prekeys")
        if not all(isinstance(i, str) for i in items):
            raise MalformedError("hub response prekeys: items must be strings")
        return [canonical.b64d(i, what="prekey") for i in items]

    # -- admin endpoints (signed with an admin key) --------------------------------------------

    async def admin_applications(self, status: str | None = None) -> ApplicationList:
        """``GET /v1/admin/applications``: applications, newest first."""
        return await self._result(
            ApplicationList, "applications", "GET", "/v1/admin/applications",
            params={"status": status}, signed=True,
        )  # fmt: skip

    async def admin_application(self, app_id: str) -> ApplicationDetail:
        """``GET /v1/admin/applications/{id}``: the application bytes and the draft admission."""
        return await self._result(
            ApplicationDetail, "application", "GET",
            f"/v1/admin/applications/{quote(app_id, safe='')}", signed=True,
        )  # fmt: skip

    async def admin_reject(self, app_id: str, reason: str) -> ApplicationState:
        """``POST /v1/admin/applications/{id}/reject`` with a reason."""
        return await self._result(
            ApplicationState, "rejection", "POST",
            f"/v1/admin/applications/{quote(app_id, safe='')}/reject",
            body=orjson.dumps({"reason": reason}), signed=True,
        )  # fmt: skip

    async def admin_key_updates(self, status: str | None = None) -> KeyUpdateList:
        """``GET /v1/admin/key-updates``: key-update requests, newest first."""
        return await self._result(
            KeyUpdateList, "key updates", "GET", "/v1/admin/key-updates",
            params={"status": status}, signed=True,
        )  # fmt: skip

    async def admin_key_update(self, ku_id: str) -> KeyUpdateDetail:
        """``GET /v1/admin/key-updates/{id}``: the request bytes and the draft update-keys."""
        return await self._result(
            KeyUpdateDetail, "key update", "GET",
            f"/v1/admin/key-updates/{quote(ku_id, safe='')}", signed=True,
        )  # fmt: skip

    async def admin_reject_key_update(self, ku_id: str, reason: str) -> KeyUpdateState:
        """``POST /v1/admin/key-updates/{id}/reject`` with a reason."""
        return await self._result(
            KeyUpdateState, "rejection", "POST",
            f"/v1/admin/key-updates/{quote(ku_id, safe='')}/reject",
            body=orjson.dumps({"reason": reason}), signed=True,
        )  # fmt: skip

    async def admin_submit_action(self, container: bytes) -> ActionResult:
        """``POST /v1/admin/actions``: add signatures to a membership action."""
        return await self._result(
            ActionResult, "action", "POST", "/v1/admin/actions", body=container, signed=True
        )

    async def admin_proposals(self, status: str | None = None) -> ProposalList:
        """``GET /v1/admin/proposals``: actions collecting signatures, newest first."""
        return await self._result(
            ProposalList, "proposals", "GET", "/v1/admin/proposals",
            params={"status": status}, signed=True,
        )  # fmt: skip

    async def admin_audit(self, since: int = 0, limit: int | None = None) -> AuditRecords:
        """``GET /v1/admin/audit``: audit records with id greater than ``since``, oldest first."""
        return await self._result(
            AuditRecords, "audit", "GET", "/v1/admin/audit",
            params={"since": since, "limit": limit}, signed=True,
        )  # fmt: skip

    # -- member endpoints (signed with the member's transport key) -----------------------------

    async def submit_message(self, envelope: bytes) -> tuple[int, bytes]:
        """``POST /v1/messages``: submit an envelope; the HTTP status and the hub's evidence.

        201: accepted now; 200: an exact resubmission, answered with the evidence of
        the first acceptance.  The evidence bytes are unverified (check them with
        :meth:`protocol.receipts.Evidence.decode` against the pinned genesis).
        """
        status, data, _ctype = await self._exchange(
            "POST",
            "/v1/messages",
            body=envelope,
            signed=True,
            content_type="application/octet-stream",
        )
        if status not in (200, 201):
            raise MalformedError(f"hub answered HTTP {status} to POST /v1/messages")
        return status, data

    async def submit_messages(
        self, envelopes: Sequence[bytes]
    ) -> list[tuple[int, bytes] | GlobeError]:
        """``POST /v1/messages/batch`` (PROTOCOL.md §10.6): submit several envelopes in one
        signed request; per envelope, in order, what :meth:`submit_message` would have
        returned — (status, evidence) — or the error it would have raised.

        A refusal of the request as a whole (authentication, shape, size; 404 from a hub
        without the route) is raised.  Evidence is unverified, as for :meth:`submit_message`.
        """
        if not 0 < len(envelopes) <= BATCH_MAX_ITEMS:
            raise UsageError(f"a batch holds 1 to {BATCH_MAX_ITEMS} envelopes")
        body = canonical.encode({"envelopes": [canonical.b64e(e) for e in envelopes]})
        if len(body) > BATCH_MAX_BODY:
            raise UsageError(f"a batch body of {len(body)} bytes exceeds {BATCH_MAX_BODY}")
        answer = await self._result(
            Submissions, "batch", "POST", "/v1/messages/batch", body=body, signed=True
        )
        if len(answer.results) != len(envelopes):
            raise MalformedError(
                f"hub response batch: {len(answer.results)} results for {len(envelopes)} envelopes"
            )
        out: list[tuple[int, bytes] | GlobeError] = []
        for i, r in enumerate(answer.results):
            if r.status in (200, 201):
                if r.evidence is None or (r.type, r.detail, r.retry_after) != (None, None, None):
                    raise MalformedError(f"hub response batch.results[{i}]: not an acceptance")
                out.append((r.status, r.evidence))
                continue
            if not 400 <= r.status <= 599 or r.type is None or r.detail is None:
                raise MalformedError(f"hub response batch.results[{i}]: not a refusal")
            problem: dict[str, object] = {"type": r.type, "detail": r.detail, "status": r.status}
            if r.evidence is not None:
                problem["evidence"] = canonical.b64e(r.evidence)
            wait = None if r.retry_after is None else str(r.retry_after)
            out.append(error_for_problem(r.status, problem, retry_after=wait))
        return out

    async def mailbox(
        self, after: int = 0, limit: int | None = None
    ) -> tuple[list[MailboxItem], int]:
        """``GET /v1/mailbox``: items after the cursor ``after``, oldest first, and the
        cursor to pass next (``after`` itself when nothing waits)."""
        what = "hub response mailbox"
        page = await self._json(
            "GET", "/v1/mailbox", params={"after": after, "limit": limit}, signed=True
        )
        reader = canonical.ObjectReader(page, what)
        items: list[MailboxItem] = []
        last = after
        for item in reader.objects("items", max_items=limit if limit is not None else 1 << 20):
            cursor = item.integer("cursor", lo=last + 1, hi=_MAX_CURSOR)
            kind = item.string("kind", max_len=32, min_len=1)
            if not _KIND_RE.match(kind):
                raise MalformedError(f"{what}: bad item kind")
            raw = item.string("data", max_len=MAX_RESPONSE)
            items.append(MailboxItem(cursor, kind, canonical.b64d(raw, what=f"{what} item")))
            last = cursor
        nxt = reader.integer("cursor", lo=after, hi=_MAX_CURSOR)
        if nxt != last:
            raise MalformedError(f"{what}: the next cursor is not the last item's")
        return items, nxt

    async def ack(
        self, receipts: Sequence[bytes] = (), notices: Sequence[int] = ()
    ) -> dict[str, Any]:
        """``POST /v1/mailbox/ack``: signed receipts release envelopes, notice cursors drop
        receipts and non-delivery notices.  The hub's answer: ``released`` (message
        ids), ``refused`` (problems, one per receipt not accepted) and ``notices``
        (how many were dropped)."""
        body = canonical.encode(
            {"receipts": [canonical.b64e(r) for r in receipts], "notices": list(notices)}
        )
        return await self._json("POST", "/v1/mailbox/ack", body=body, signed=True)

    def _blob_timeout(self) -> aiohttp.ClientTimeout:
        """No cap on a whole blob transfer, but on connecting and on each read."""
        return aiohttp.ClientTimeout(
            total=None, connect=min(10.0, self.timeout), sock_read=self.timeout
        )

    async def put_blob(
        self,
        blob_id: str,
        path: Path,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """``PUT /v1/blobs/{id}``: upload the file at ``path``, streamed from disk.

        The file is read twice: once to compute the SHA-256 the request signature
        covers, once to send it (with its exact ``Content-Length``);
        ``progress(sent, total)`` is called as chunks go.  Returns the hub's answer
        ``{"id", "size", "sha256"}`` after checking that it names this blob, size
        and digest (:class:`MalformedError` otherwise).  A file that cannot be
        read, or that changes between the two passes, is a :class:`StorageError`.
        """
        if not _BLOB_ID_RE.match(blob_id):
            raise InvalidIdentifier("a blob id is 32 lower-case hex digits")
        try:
            digest, size = await asyncio.to_thread(hash_file, path)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
        method, where = "PUT", f"/v1/blobs/{blob_id}"
        target = self._prefix + where
        headers = {
            "Accept": "application/json, application/problem+json",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            HEADER: self._auth(method, target, body_digest=digest),
        }
        failure: list[GlobeError] = []  # what went wrong on our side while sending
        session = self._session_or_new()
        try:
            async with session.put(
                self._url(target),
                data=upload_chunks(path, size, digest, progress, failure),
                headers=headers,
                timeout=self._blob_timeout(),
            ) as resp:
                data = await self._read(resp)
                status, ctype = resp.status, resp.content_type
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError, GlobeError) as exc:
            if failure:
                raise failure[0] from None
            if isinstance(exc, GlobeError):
                raise
            raise self._transport_error(exc) from None
        if failure:  # pragma: no cover - a failed body never gets an answer
            raise failure[0]
        if not 200 <= status < 300:
            raise self._refusal(
                method, where, status=status, ctype=ctype, data=data, retry_after=retry_after
            )
        what = "hub response blob upload"
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise MalformedError(f"{what}: not JSON") from None
        reader = canonical.ObjectReader(answer, what)
        if (
            status != 201
            or reader.string("id", max_len=32) != blob_id
            or reader.integer("size") != size
            or reader.blob("sha256", length=32) != digest
        ):
            raise MalformedError(f"{what}: the hub did not store this file's exact bytes")
        result: dict[str, Any] = answer
        return result

    async def get_blob(
        self,
        blob_id: str,
        out: Path,
        *,
        max_size: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> bytes:
        """``GET /v1/blobs/{id}``: download a blob to ``out``; return its SHA-256.

        The body is streamed to ``out`` + ``.part``, hashed as it arrives, fsynced
        and renamed to ``out`` only once its SHA-256 equals the hub's
        ``Repr-Digest`` and it holds at most ``max_size`` bytes.
        ``progress(received, total)`` is called as chunks arrive (``total`` is the
        announced ``Content-Length``, or 0 if none was announced).  On any failure
        nothing is left at ``out`` or the part file, and the error is typed:
        :class:`SizeLimitExceeded` (over ``max_size``), :class:`MalformedError`
        (no or a wrong ``Repr-Digest``), :class:`StorageError` (the local disk),
        :class:`TransportError` (no answer, or the connection dropped before the
        announced length) or the hub's refusal (:func:`globe_io.problems.refusal`).
        An existing file at ``out`` is replaced only on success.
        """
        if not _BLOB_ID_RE.match(blob_id):
            raise InvalidIdentifier("a blob id is 32 lower-case hex digits")
        if max_size < 0:
            raise UsageError("max_size must not be negative")
        method, where = "GET", f"/v1/blobs/{blob_id}"
        target = self._prefix + where
        headers = {
            "Accept": "application/octet-stream, application/problem+json",
            HEADER: self._auth(method, target),
        }
        part = out.with_name(out.name + ".part")
        session = self._session_or_new()
        try:
            async with session.get(
                self._url(target), headers=headers, timeout=self._blob_timeout()
            ) as resp:
                if not 200 <= resp.status < 300:
                    data = await self._read(resp)
                    raise self._refusal(
                        method, where, status=resp.status, ctype=resp.content_type, data=data,
                        retry_after=resp.headers.get("Retry-After"),
                    )  # fmt: skip
                expected = repr_digest(resp.headers.get("Repr-Digest"))
                total = resp.content_length
                if total is not None and total > max_size:
                    raise SizeLimitExceeded(f"blob of {total} bytes exceeds the cap of {max_size}")
                try:
                    digest = await download_to_part(resp, part, max_size, total, progress)
                    if digest != expected:
                        raise MalformedError(f"blob {blob_id} does not match its Repr-Digest")
                    await asyncio.to_thread(rename_durably, part, out)
                except BaseException:
                    with contextlib.suppress(OSError):
                        await asyncio.to_thread(part.unlink, missing_ok=True)
                    raise
        except (aiohttp.ClientError, OSError) as exc:
            raise self._transport_error(exc) from None
        return digest

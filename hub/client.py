"""An asynchronous client for the hub's HTTP API v1 (``hub/web.py``).

One :class:`HubClient` method per endpoint.  Requests to the admin endpoints
and ``PUT /v1/prekeys`` carry a ``Globe-Auth`` header made with
:func:`protocol.requestauth.sign_request` (audience ``"hub"``, network = the
pinned genesis digest, target = the path and query exactly as sent).

Failures are translated at this boundary:

* the hub cannot be reached (DNS, refused connection, reset, timeout):
  :class:`~protocol.errors.TransportError`;
* the hub answers with an RFC 9457 problem whose ``type`` names an error of
  the project (``protocol.errors`` or ``hub.errors``): that error class, with
  the hub's ``detail``;
* any other refusal (another problem type, or a non-problem error page from a
  proxy): :class:`RemoteError`, carrying the HTTP status and detail.

The client trusts nothing it receives: callers verify log entries and
checkpoints against their own pinned genesis.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from yarl import URL

from hub import errors as hub_errors
from protocol import canonical
from protocol import errors as protocol_errors
from protocol.errors import GlobeError, MalformedError, TransportError, UsageError
from protocol.genesis import check_url
from protocol.ids import AuthorityId
from protocol.keys import SigningKey
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE",
    "HubClient",
    "LogPage",
    "RemoteError",
    "error_for_problem",
]

#: Seconds for a whole request (connect, send, receive).
DEFAULT_TIMEOUT: Final = 30.0
#: Cap on a response body: a full log page (500 entries of at most 24 KiB) fits.
MAX_RESPONSE: Final = 32 * 1024 * 1024
_PROBLEM_TYPE: Final = "application/problem+json"


class RemoteError(GlobeError):
    """The hub (or a proxy in front of it) refused a request with an unknown problem type."""

    slug = "remote"
    status = 502
    title = "The hub refused the request"

    def __init__(self, detail: str, *, http_status: int, type_uri: str | None = None) -> None:
        super().__init__(detail)
        self.http_status = http_status
        self.type_uri_received = type_uri


def _error_classes() -> dict[str, type[GlobeError]]:
    """Every error class of the project with its own slug, by slug."""
    found: dict[str, type[GlobeError]] = {}
    for module in (protocol_errors, hub_errors):
        for name in module.__all__:
            obj = getattr(module, name)
            if (
                isinstance(obj, type)
                and issubclass(obj, GlobeError)
                and obj is not GlobeError
                and obj.slug != GlobeError.slug
            ):
                found[obj.slug] = obj
    return found


_ERRORS: Final = _error_classes()


def error_for_problem(
    status: int, problem: Mapping[str, Any], *, retry_after: str | None = None
) -> GlobeError:
    """The :class:`GlobeError` a problem+json body stands for."""
    type_uri = problem.get("type")
    raw_detail = problem.get("detail")
    detail = raw_detail if isinstance(raw_detail, str) and raw_detail else f"HTTP {status}"
    detail = " ".join(detail.split())[:500]  # one line, bounded
    cls = None
    if isinstance(type_uri, str) and type_uri.startswith(protocol_errors.PROBLEM_BASE):
        cls = _ERRORS.get(type_uri[len(protocol_errors.PROBLEM_BASE) :])
    if cls is hub_errors.RateLimited:
        wait = int(retry_after) if retry_after is not None and retry_after.isdigit() else 1
        return hub_errors.RateLimited(detail, retry_after=wait)
    if cls is not None:
        try:
            return cls(detail)
        except TypeError:  # pragma: no cover - every mapped class takes a detail
            pass
    return RemoteError(
        detail, http_status=status, type_uri=type_uri if isinstance(type_uri, str) else None
    )


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


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of the membership log: exact entry bytes and the cursor of the next page."""

    entries: list[bytes]
    next: int | None


def _target(path: str, params: Mapping[str, str | int | None] | None) -> str:
    query = {k: str(v) for k, v in (params or {}).items() if v is not None}
    return f"{path}?{urlencode(query, quote_via=quote)}" if query else path


class HubClient:
    """Asynchronous client of one hub.  Use as ``async with HubClient(...) as hub:``.

    ``network`` is the digest of the pinned genesis; ``key`` is the admin key
    (admin endpoints) or the member's transport key (``put_prekey``).
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
        target = self._prefix + _target(path, params)
        headers = {"Accept": "application/json, application/problem+json"}
        if body or method in ("POST", "PUT"):
            headers["Content-Type"] = content_type
        if signed:
            if self.key is None or self.network is None:
                raise UsageError(f"{method} {path} needs a signing key and the pinned genesis")
            headers[HEADER] = sign_request(
                key=self.key,
                network=self.network,
                audience=HUB_AUDIENCE,
                method=method,
                target=target,
                body=body,
                created=int(self.clock()),
            )
        url = URL(str(self._base.origin()) + target, encoded=True)
        session = self._session_or_new()
        try:
            async with session.request(method, url, data=body or None, headers=headers) as resp:
                data = await self._read(resp)
                ctype = resp.content_type
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(
                f"cannot reach the hub at {self.base_url}: {_unreachable(exc, self.timeout)}"
            ) from None
        if 200 <= status < 300:
            return data, ctype
        if ctype == _PROBLEM_TYPE:
            try:
                problem = orjson.loads(data)
            except orjson.JSONDecodeError:
                problem = None
            if isinstance(problem, dict):
                raise error_for_problem(status, problem, retry_after=retry_after)
        raise RemoteError(
            f"the hub at {self.base_url} answered HTTP {status} to {method} {path}",
            http_status=status,
        )

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

    @staticmethod
    def _list(obj: Mapping[str, Any], name: str, what: str) -> list[Any]:
        value = obj.get(name)
        if not isinstance(value, list):
            raise MalformedError(f"hub response {what}: field {name!r} missing or not a list")
        return value

    @classmethod
    def _objects(cls, obj: Mapping[str, Any], name: str, what: str) -> list[dict[str, Any]]:
        items = cls._list(obj, name, what)
        if not all(isinstance(i, dict) for i in items):
            raise MalformedError(f"hub response {what}: {name!r} must hold objects")
        return items

    # -- public endpoints ----------------------------------------------------------------------

    async def healthz(self) -> dict[str, Any]:
        """``GET /healthz``: liveness."""
        return await self._json("GET", "/healthz")

    async def readyz(self) -> dict[str, Any]:
        """``GET /readyz``: the database answers and the directory is loaded."""
        return await self._json("GET", "/readyz")

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
        return LogPage(entries, nxt)

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
    ) -> list[dict[str, Any]]:
        """``GET /v1/directory/search``: directory entries (check them against the log)."""
        params: dict[str, str | int | None] = {
            "country": country,
            "kind": kind,
            "language": language,
            "q": text,
            "inactive": "1" if include_inactive else None,
            "limit": limit,
        }
        out = await self._json("GET", "/v1/directory/search", params=params)
        return self._objects(out, "results", "search")

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

    async def admin_applications(self, status: str | None = None) -> list[dict[str, Any]]:
        """``GET /v1/admin/applications``: applications, newest first."""
        out = await self._json(
            "GET", "/v1/admin/applications", params={"status": status}, signed=True
        )
        return self._objects(out, "applications", "applications")

    async def admin_application(self, app_id: str) -> dict[str, Any]:
        """``GET /v1/admin/applications/{id}``: the application bytes and the draft admission."""
        return await self._json(
            "GET", f"/v1/admin/applications/{quote(app_id, safe='')}", signed=True
        )

    async def admin_reject(self, app_id: str, reason: str) -> dict[str, Any]:
        """``POST /v1/admin/applications/{id}/reject`` with a reason."""
        body = orjson.dumps({"reason": reason})
        return await self._json(
            "POST",
            f"/v1/admin/applications/{quote(app_id, safe='')}/reject",
            body=body,
            signed=True,
        )

    async def admin_submit_action(self, container: bytes) -> dict[str, Any]:
        """``POST /v1/admin/actions``: add signatures to a membership action."""
        return await self._json("POST", "/v1/admin/actions", body=container, signed=True)

    async def admin_proposals(self, status: str | None = None) -> list[dict[str, Any]]:
        """``GET /v1/admin/proposals``: actions collecting signatures."""
        out = await self._json("GET", "/v1/admin/proposals", params={"status": status}, signed=True)
        return self._objects(out, "proposals", "proposals")

    async def admin_audit(self, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /v1/admin/audit``: audit records with id greater than ``since``."""
        out = await self._json(
            "GET", "/v1/admin/audit", params={"since": since, "limit": limit}, signed=True
        )
        return self._objects(out, "records", "audit")

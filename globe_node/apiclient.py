"""A small client of the node daemon's local API (what ``globe-node`` commands talk to).

The daemon (``globe-node run``) serves JSON on ``http://{api_host}:{api_port}/api/...``
and authenticates every request with ``Authorization: Bearer <token>``.  Every
failure becomes one :class:`~protocol.errors.GlobeError` with a one-line detail:

* no daemon listening: :class:`DaemonNotRunning` ("start it with 'globe-node run'");
* a problem+json answer (RFC 9457): :class:`ApiError` carrying its ``detail``;
* anything else that is not a 2xx JSON object: :class:`ApiError` naming the request.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from globe_io.hubclient import request_payload
from globe_io.problems import one_line, refusal
from protocol.errors import GlobeError

__all__ = ["DEFAULT_TIMEOUT", "ApiClient", "ApiError", "DaemonNotRunning", "Progress", "segment"]

DEFAULT_TIMEOUT: Final = 60.0
MAX_JSON: Final = 64 << 20
CHUNK: Final = 1 << 16
#: Bytes read from a file at a time when uploading it.
UPLOAD_CHUNK: Final = 1 << 20

#: Download progress: (bytes done, bytes total or None when unknown).
Progress = Callable[[int, int | None], None]


class DaemonNotRunning(GlobeError):
    """Nothing answers on the node's local API address."""

    slug = "daemon-not-running"
    status = 503
    title = "The node daemon is not running"


class ApiError(GlobeError):
    """The daemon refused a request (its problem detail) or answered something unexpected."""

    slug = "api"
    status = 502
    title = "The node daemon refused the request"

    def __init__(self, detail: str, *, http_status: int = 0) -> None:
        super().__init__(detail)
        self.http_status = http_status


def segment(value: str) -> str:
    """``value`` quoted as one URL path segment."""
    return quote(value, safe="")


class ApiClient:
    """Asynchronous client of one node daemon.  Use as ``async with ApiClient(...) as api:``."""

    def __init__(self, base_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

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
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=min(10.0, self.timeout), sock_read=self.timeout
                ),
                headers={"Authorization": f"Bearer {self.token}"},
                raise_for_status=False,
            )
        return self._session

    def _url(self, path: str, params: Mapping[str, str | int | None] | None) -> str:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        return self.base_url + path + (f"?{urlencode(query)}" if query else "")

    def _unreachable(self, exc: BaseException) -> GlobeError:
        if isinstance(exc, TimeoutError):
            return ApiError(
                f"the node daemon at {self.base_url} did not answer within {self.timeout:g} s"
            )
        if isinstance(exc, aiohttp.ClientConnectorError | ConnectionError):
            return DaemonNotRunning(
                f"the node daemon is not running at {self.base_url}: start it with 'globe-node run'"
            )
        reason = str(exc) or type(exc).__name__
        return ApiError(f"cannot talk to the node daemon at {self.base_url}: {one_line(reason)}")

    @staticmethod
    async def _body(resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > MAX_JSON:
                raise ApiError(f"the node daemon's answer exceeds {MAX_JSON} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _refusal(method: str, path: str, status: int, ctype: str, data: bytes) -> GlobeError:
        """The error a refusal stands for: the class its problem type names (with the
        problem's detail), else an :class:`ApiError` naming the request."""
        return refusal(
            status, ctype, data,
            unknown=lambda detail, _uri: ApiError(detail, http_status=status),
            otherwise=lambda: ApiError(
                f"the node daemon answered HTTP {status} to {method} {path}", http_status=status
            ),
        )  # fmt: skip

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One JSON request; the JSON object of a 2xx answer, or the translated error."""
        headers = {"Accept": "application/json, application/problem+json"}
        data: bytes | None = None
        if body is not None or method == "POST":
            data = orjson.dumps(body if body is not None else {})
            headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(
                method,
                self._url(path, params),
                data=request_payload(data) if data else data,
                headers=headers,
            ) as resp:
                raw = await self._body(resp)
                status, ctype = resp.status, resp.content_type
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        if not 200 <= status < 300:
            raise self._refusal(method, path, status, ctype, raw)
        try:
            value = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise ApiError(f"the node daemon's answer to {method} {path} is not JSON") from None
        if not isinstance(value, dict):
            raise ApiError(f"the node daemon's answer to {method} {path} is not a JSON object")
        return value

    async def get(
        self, path: str, params: Mapping[str, str | int | None] | None = None
    ) -> dict[str, Any]:
        """``GET path``."""
        return await self.request("GET", path, params=params)

    async def get_text(
        self, path: str, params: Mapping[str, str | int | None] | None = None
    ) -> str:
        """``GET path`` of a text answer (an export): its UTF-8 text, or the refusal."""
        try:
            async with self._http().get(
                self._url(path, params), headers={"Accept": "text/*, application/problem+json"}
            ) as resp:
                raw = await self._body(resp)
                status, ctype = resp.status, resp.content_type
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._unreachable(exc) from None
        if not 200 <= status < 300:
            raise self._refusal("GET", path, status, ctype, raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(f"the node daemon's answer to GET {path} is not UTF-8 text") from None

    async def post(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``POST path`` with a JSON body."""
        return await self.request("POST", path, body=body or {})

    async def upload(
        self,
        source: Path,
        *,
        name: str,
        media_type: str,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Stream the regular file ``source`` to ``POST /api/uploads``; the staged upload.

        The file is opened here, with the rights of whoever runs the client: the
        daemon never opens a path it is given.
        """
        try:
            f = source.open("rb")
        except OSError as exc:
            raise ApiError(f"cannot read {source}: {exc.strerror}") from None
        with f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ApiError(f"{source} is not a regular file")
            total = info.st_size

            async def chunks() -> AsyncIterator[bytes]:
                done = 0
                while done < total:
                    chunk = await asyncio.to_thread(f.read, min(UPLOAD_CHUNK, total - done))
                    if not chunk:
                        raise ApiError(f"{source} shrank while it was read")
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                    yield chunk

            query = {"name": name, "media_type": media_type}
            headers = {
                "Accept": "application/json, application/problem+json",
                "Content-Type": "application/octet-stream",
                "Content-Length": str(total),
            }
            try:
                async with self._http().post(
                    self._url("/api/uploads", query), data=chunks(), headers=headers
                ) as resp:
                    raw = await self._body(resp)
                    status, ctype = resp.status, resp.content_type
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise self._unreachable(exc) from None
        if not 200 <= status < 300:
            raise self._refusal("POST", "/api/uploads", status, ctype, raw)
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise ApiError("the node daemon's answer to an upload names no upload id")
        return value

    async def download(self, path: str, out: Path, progress: Progress | None = None) -> int:
        """Stream ``GET path`` into the new file ``out`` (mode 0600); return its size.

        The file is written under a temporary name and renamed when complete; an
        existing ``out`` is never replaced.
        """
        part = out.with_name(f".{out.name}.part")
        try:
            async with self._http().get(
                self._url(path, None), headers={"Accept": "application/octet-stream"}
            ) as resp:
                if not 200 <= resp.status < 300:
                    raw = await self._body(resp)
                    raise self._refusal("GET", path, resp.status, resp.content_type, raw)
                total = resp.content_length
                done = 0
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                try:
                    with os.fdopen(fd, "wb") as f:
                        async for chunk in resp.content.iter_chunked(CHUNK):
                            f.write(chunk)
                            done += len(chunk)
                            if progress is not None:
                                progress(done, total)
                        f.flush()
                        os.fsync(f.fileno())
                    if total is not None and done != total:
                        raise ApiError(f"the download of {path} stopped after {done} of {total}")
                    os.link(part, out)
                finally:
                    part.unlink(missing_ok=True)
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise self._unreachable(exc) from None
        return done

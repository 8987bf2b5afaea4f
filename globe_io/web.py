"""What every HTTP listener of the project shares (hub API, node peer listener, node
local API): one problem+json renderer, one refusal middleware, one capped body
reader, one strict JSON body reader and per-key token buckets.

Every answer that is not a success is an RFC 9457 problem
(``application/problem+json``) whose ``type`` names a registered error class
(:func:`protocol.errors.error_class`).  Nothing a client sent is echoed into a
log line: refusals are counted and, at most, logged as one rate-limited line
naming the route pattern and the slug.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import quote

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from globe_io.errors import NotFound, PayloadTooLarge, RateLimited
from protocol import strictjson
from protocol.errors import GlobeError, MalformedError, StorageError, TransportError

__all__ = [
    "PROBLEM_TYPE",
    "HttpRefusal",
    "LogLimiter",
    "MethodNotAllowed",
    "TokenBuckets",
    "instance_of",
    "json_object",
    "json_response",
    "problem",
    "problem_middleware",
    "read_body",
    "read_json",
    "route_of",
]

PROBLEM_TYPE: Final = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refused = Callable[[GlobeError], None]

#: Characters a path may keep unescaped in a URI reference (RFC 3986 ``pchar`` and ``/``).
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~"


class MethodNotAllowed(GlobeError):
    """The route exists but not with this method; ``Allow`` names the methods it takes."""

    slug = "method-not-allowed"
    status = 405
    title = "Method not allowed"


class HttpRefusal(GlobeError):
    """Any other refusal made by the HTTP layer, with the status it chose."""

    slug = "http"
    status = 400
    title = "Request refused by the HTTP layer"

    def __init__(self, detail: str, *, http_status: int) -> None:
        super().__init__(detail)
        self.http_status = http_status

    def to_problem(self) -> dict[str, object]:
        """The problem object, with this refusal's own status."""
        out = super().to_problem()
        out["status"] = self.http_status
        return out


def instance_of(request: web.BaseRequest) -> str:
    """The request path as a valid URI reference (RFC 3986): percent-encoded, bounded."""
    return quote(request.path[:1024], safe=_PATH_SAFE)


def route_of(request: web.BaseRequest) -> str:
    """The route pattern that matched (``unmatched`` if none): safe for logs and metrics."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


def problem(exc: GlobeError, *, instance: str) -> web.Response:
    """Render an error as RFC 9457 problem+json."""
    body = exc.to_problem()
    body["instance"] = instance
    status = body.get("status")
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, StorageError | TransportError):
        headers["Retry-After"] = "1"  # retryable: nothing was stored or acknowledged
    return web.Response(
        status=status if isinstance(status, int) else exc.status,
        body=orjson.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def refusal_for(exc: web.HTTPException) -> GlobeError:
    """The project's error for a refusal aiohttp made itself (no route, wrong method, …)."""
    if exc.status == 404:
        return NotFound("no such resource")
    if exc.status == 405:
        return MethodNotAllowed("this resource does not take that method")
    if exc.status == 413:
        return PayloadTooLarge("the request body is too large")
    return HttpRefusal(exc.reason, http_status=exc.status)


class LogLimiter:
    """At most one log line per key per ``interval`` seconds; counts what it held back."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._next: dict[str, tuple[float, int]] = {}

    def allow(self, key: str) -> int | None:
        """``None`` to stay quiet, else how many lines were held back since the last one."""
        now = self.clock()
        due, held = self._next.get(key, (0.0, 0))
        if now < due:
            self._next[key] = (due, held + 1)
            return None
        if len(self._next) >= self.max_keys:
            self._next = {k: v for k, v in self._next.items() if v[0] > now}
        self._next[key] = (now + self.interval, 0)
        return held

    def warning(self, key: str, message: str, *args: object) -> None:
        """Log ``message`` at WARNING unless ``key`` was logged within the interval."""
        held = self.allow(key)
        if held is not None:
            suffix = f" ({held} more since the last report)" if held else ""
            self.logger.warning(message + suffix, *args)

    def exception(self, key: str, message: str, *args: object) -> None:
        """Log ``message`` with the current traceback at ERROR, rate-limited per ``key``."""
        held = self.allow(key)
        if held is not None:
            suffix = f" ({held} more since the last report)" if held else ""
            self.logger.error(message + suffix, *args, exc_info=True)


def problem_middleware(*, logger: logging.Logger, refused: Refused | None = None) -> Middleware:
    """Turn every refusal into problem+json; never a traceback on the wire.

    ``refused`` is told of each refusal (for metrics).  A client's error is not
    logged at all; an unexpected exception (a bug of ours) is logged with its
    traceback at most once a minute per route and exception type.
    """
    internal = LogLimiter(logger)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except GlobeError as exc:
            err = exc
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            err = refusal_for(exc)
            resp = _render(err, request, refused)
            if "Allow" in exc.headers:  # a 405 names the allowed methods (RFC 9110 §15.5.6)
                resp.headers["Allow"] = exc.headers["Allow"]
            return resp
        except Exception as exc:  # noqa: BLE001 - a bug of ours: logged, answered 500
            route = route_of(request)
            internal.exception(
                f"{route}:{type(exc).__name__}",
                "internal error on %s %s (%s)",
                request.method,
                route,
                type(exc).__name__,
            )
            err = GlobeError("internal error; nothing was applied")
        return _render(err, request, refused)

    return middleware


def _render(err: GlobeError, request: web.Request, refused: Refused | None) -> web.Response:
    if refused is not None:
        refused(err)
    return problem(err, instance=instance_of(request))


async def read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The request body, refused before buffering if it exceeds ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes exceeds {limit}")
    # StreamReader.read(n) returns what has arrived so far (at most n bytes), not
    # the whole body: keep reading until end of body or one byte past the cap.
    data = bytearray()
    while len(data) <= limit:
        chunk = await request.content.read(limit + 1 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise PayloadTooLarge(f"body exceeds {limit} bytes")
    return bytes(data)


async def read_json(
    request: web.BaseRequest, limit: int, *, empty_ok: bool = False
) -> dict[str, Any]:
    """A JSON object body through the one strict decoder (PROTOCOL.md §2.8).

    ``empty_ok``: an empty body stands for ``{}`` (else it is not JSON).
    """
    data = await read_body(request, limit)
    return json_object(data, limit=limit, empty_ok=empty_ok)


def json_object(data: bytes, *, limit: int, empty_ok: bool = False) -> dict[str, Any]:
    """``data`` strictly decoded, which must be one JSON object."""
    if not data and empty_ok:
        return {}
    value = strictjson.loads(data, max_size=limit)
    if not isinstance(value, dict):
        raise MalformedError("the body is a JSON object")
    return value


def json_response(data: object, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


class TokenBuckets:
    """Per-key token buckets; memory bounded by dropping full (idle) buckets."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float], max_keys: int = 100_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> None:
        """Spend one token or raise :class:`RateLimited` with the wait in seconds."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            self._buckets[key] = (tokens, now)
            raise RateLimited(f"too many requests; retry in {wait} s", retry_after=wait)
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_keys:  # keep only buckets still drained by now
            self._buckets = {
                k: (t, last)
                for k, (t, last) in self._buckets.items()
                if t + (now - last) * self.rate < self.burst - 1
            }

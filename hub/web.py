"""The hub's HTTP API v1 (aiohttp).  Handlers are thin: parse, call the service, respond.

Every error is an RFC 9457 problem (``application/problem+json``) with a
stable ``type``.  Bodies are capped before they are buffered, signed
requests are checked before any work (R9), and each key and each address
has a token bucket (429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web

from hub.errors import NotFound, PayloadTooLarge, RateLimited
from hub.metrics import Metrics
from hub.openapi import openapi_document
from hub.routing import Router
from hub.service import Clock, HubService, Principal
from protocol import canonical
from protocol.envelope import parse_envelope, verify_envelope
from protocol.errors import (
    AuthError,
    GlobeError,
    MalformedError,
    StaleError,
    StorageError,
    TransportError,
    UsageError,
)
from protocol.ids import AuthorityId
from protocol.receipts import EvidenceKind, make_evidence
from protocol.requestauth import HEADER, HUB_AUDIENCE, parse_request_auth, verify_request

if TYPE_CHECKING:
    from hub.blobs import BlobStore

__all__ = ["PROBLEM_TYPE", "SERVICE_KEY", "TokenBuckets", "create_app"]

log = logging.getLogger("globe.hub.http")

PROBLEM_TYPE: Final = "application/problem+json"
SERVICE_KEY: Final = web.AppKey("service", HubService)
ROUTER_KEY: Final = web.AppKey("router", Router)
METRICS_KEY: Final = web.AppKey("metrics", Metrics)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HEX32: Final = re.compile(r"[0-9a-f]{32}\Z")


class TokenBuckets:
    """Per-key token buckets; memory bounded by dropping full (idle) buckets."""

    def __init__(self, *, rate: float, burst: int, clock: Clock, max_keys: int = 100_000) -> None:
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


BUCKETS_KEY: Final = web.AppKey("buckets", TokenBuckets)
LIMITS_KEY: Final = web.AppKey("limits", dict[str, int])


def problem(exc: GlobeError, *, instance: str) -> web.Response:
    """Render an error as RFC 9457 problem+json."""
    body = exc.to_problem()
    body["instance"] = instance
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, StorageError | TransportError):
        headers["Retry-After"] = "1"  # retryable: nothing was stored or acknowledged
    return web.Response(
        status=exc.status, body=orjson.dumps(body), content_type=PROBLEM_TYPE, headers=headers
    )


class _HttpProblem(GlobeError):
    """An HTTP-level refusal from aiohttp (unknown route, wrong method)."""

    def __init__(self, status: int, title: str) -> None:
        super().__init__(title)
        self._status = status
        self._title = title

    def to_problem(self) -> dict[str, object]:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(self._status, "http")
        return {
            "type": f"https://globe-link.invalid/problems/{slug}",
            "title": self._title,
            "status": self._status,
            "detail": self._title,
        }


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every refusal into problem+json; never leak a traceback."""
    started = time.perf_counter()
    metrics = request.app[METRICS_KEY]
    try:
        request.app[BUCKETS_KEY].take(f"addr:{request.remote}")
        return await handler(request)
    except GlobeError as exc:
        metrics.refuse(exc.slug)
        if isinstance(exc, _HttpProblem):
            resp = problem(exc, instance=request.path)
            resp.set_status(exc._status)
            return resp
        return problem(exc, instance=request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        metrics.refuse({404: "not-found", 405: "method-not-allowed"}.get(exc.status, "http"))
        resp = problem(_HttpProblem(exc.status, exc.reason), instance=request.path)
        resp.set_status(exc.status)
        if "Allow" in exc.headers:  # a 405 must name the allowed methods (RFC 9110 §15.5.6)
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        metrics.refuse("error")
        err = GlobeError("internal error; the request was not applied")
        return problem(err, instance=request.path)
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.request(route, time.perf_counter() - started)


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The request body, refused before buffering if it exceeds the cap."""
    if limit is None:
        limit = request.app[LIMITS_KEY]["max_body"]
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


async def authenticate(request: web.Request, body: bytes, *, admin: bool) -> Principal:
    """Check the ``Globe-Auth`` signature (PROTOCOL.md §10) before any work.

    Unknown keys, keys of suspended or revoked members and bad signatures all
    get the same refusal.
    """
    return await verify_auth(
        request.app,
        request.headers.get(HEADER),
        admin=admin,
        method=request.method,
        target=request.raw_path,
        body=body,
        # Admin and prekey requests: durable nonces; the message path: in memory (see
        # HubService.consume_nonce for why that is safe).
        durable=admin or request.path == "/v1/prekeys",
    )


async def verify_auth(
    app: web.Application,
    value: str | None,
    *,
    admin: bool,
    method: str,
    target: str,
    body: bytes,
    durable: bool,
    body_digest: bytes | None = None,
) -> Principal:
    """Check a ``Globe-Auth`` value over (method, target, body); rate-limit and spend its nonce.

    ``body_digest`` (with ``body=b""``): the SHA-256 of a body streamed to disk.
    """
    service = app[SERVICE_KEY]
    auth = parse_request_auth(value)
    now = service.now()
    if abs(now - auth.created) > service.clock_skew:  # before the key lookup: reveals nothing
        raise StaleError("request timestamp outside the accepted window")
    principal: Principal
    if admin:
        found = service.admin_key(auth.key_id)
        if found is None:
            raise AuthError("request authentication failed")
        name, key = found
        principal = Principal(auth.key_id, admin=name)
    else:
        member = service.member_transport_key(auth.key_id)
        if member is None:
            raise AuthError("request authentication failed")
        authority, key = member
        principal = Principal(auth.key_id, authority=authority)
    verify_request(
        auth,
        key=key,
        network=service.genesis.digest,
        audience=HUB_AUDIENCE,
        method=method,
        target=target,
        body=body,
        now=now,
        max_skew=service.clock_skew,
        body_digest=body_digest,
    )
    app[BUCKETS_KEY].take(f"key:{auth.key_id}")
    await service.consume_nonce(auth.key_id, auth.nonce, auth.created, durable=durable)
    return principal


def json_response(data: object, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15 or not lo <= int(raw) <= hi:
        raise MalformedError(f"query parameter {name} must be an integer in {lo}..{hi}")
    return int(raw)


def _text_param(request: web.Request, name: str, max_len: int) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len or canonical.has_hidden_chars(raw):
        raise MalformedError(f"query parameter {name} is not acceptable")
    return raw


def _app_id(request: web.Request) -> str:
    app_id = request.match_info["app_id"]
    if not _HEX32.match(app_id):
        raise NotFound("no such application")
    return app_id


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedError("request body is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedError("request body must be a JSON object")
    return value


# --- handlers ------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and the directory is loaded."""
    service = request.app[SERVICE_KEY]
    await service.refresh()
    return json_response({"status": "ready", "seq": service.state.seq})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    return json_response(openapi_document())


async def genesis_file(request: web.Request) -> web.Response:
    """The genesis this hub serves (nodes pin their own copy and compare)."""
    return web.Response(
        body=request.app[SERVICE_KEY].genesis.encode(), content_type="application/json"
    )


async def post_application(request: web.Request) -> web.Response:
    """Submit a membership application (signed by both of the applicant's keys)."""
    body = await read_body(request)
    return json_response(await request.app[SERVICE_KEY].submit_application(body), status=201)


async def get_application(request: web.Request) -> web.Response:
    """Public status of an application."""
    return json_response(await request.app[SERVICE_KEY].application_status(_app_id(request)))


async def post_proof(request: web.Request) -> web.Response:
    """Answer the KEM challenge: proof of possession of the key-agreement key."""
    body = _json_body(await read_body(request))
    reader = canonical.ObjectReader(body, "proof")
    answer = reader.blob("answer", length=32)
    reader.done()
    service = request.app[SERVICE_KEY]
    return json_response(await service.answer_challenge(_app_id(request), answer))


async def get_log(request: web.Request) -> web.Response:
    """Log entries after ``since`` (exact bytes, base64url), paged."""
    service = request.app[SERVICE_KEY]
    page_size: int = request.app[LIMITS_KEY]["page_size"]
    since = _int_param(request, "since", 0, 0, 2**53 - 1)
    limit = _int_param(request, "limit", page_size, 1, page_size)
    return json_response(await service.log_page(since, limit))


async def get_checkpoint(request: web.Request) -> web.Response:
    """A fresh hub-signed checkpoint of the log head."""
    body = request.app[SERVICE_KEY].checkpoint()
    return web.Response(body=body, content_type="application/json")


async def search(request: web.Request) -> web.Response:
    """Directory search by country, kind, language and free text."""
    service = request.app[SERVICE_KEY]
    page_size: int = request.app[LIMITS_KEY]["page_size"]
    results = service.search(
        country=_text_param(request, "country", 2),
        kind=_text_param(request, "kind", 32),
        language=_text_param(request, "language", 2),
        text=_text_param(request, "q", 200),
        include_inactive=request.query.get("inactive") == "1",
        limit=_int_param(request, "limit", page_size, 1, page_size),
    )
    return json_response({"results": results})


async def put_prekey(request: web.Request) -> web.Response:
    """A member publishes a signed prekey (authenticated with its transport key)."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=False)
    return json_response(await request.app[SERVICE_KEY].put_prekey(body, who), status=201)


async def get_prekeys(request: web.Request) -> web.Response:
    """A member's current signed prekeys."""
    authority = AuthorityId.parse(request.match_info["authority"])
    return json_response(
        {
            "authority": str(authority),
            "prekeys": await request.app[SERVICE_KEY].get_prekeys(authority),
        }
    )


async def admin_applications(request: web.Request) -> web.Response:
    """Applications, optionally filtered by status (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    status = _text_param(request, "status", 16)
    return json_response({"applications": await request.app[SERVICE_KEY].list_applications(status)})


async def admin_application(request: web.Request) -> web.Response:
    """One application with its draft admission (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    return json_response(await request.app[SERVICE_KEY].get_application(_app_id(request)))


async def admin_reject(request: web.Request) -> web.Response:
    """Reject an application with a reason (admin)."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=True)
    reader = canonical.ObjectReader(_json_body(body), "rejection")
    reason = reader.text("reason", max_len=2000, multiline=True)
    reader.done()
    service = request.app[SERVICE_KEY]
    return json_response(await service.reject_application(_app_id(request), reason, who))


async def admin_action(request: web.Request) -> web.Response:
    """Submit admin signatures on a membership action (appended at quorum)."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=True)
    return json_response(await request.app[SERVICE_KEY].submit_action(body, who))


async def admin_proposals(request: web.Request) -> web.Response:
    """Membership actions collecting signatures (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    status = _text_param(request, "status", 16)
    return json_response({"proposals": await request.app[SERVICE_KEY].list_proposals(status)})


async def admin_audit(request: web.Request) -> web.Response:
    """The audit trail of admin actions (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    since = _int_param(request, "since", 0, 0, 2**53 - 1)
    limit = _int_param(request, "limit", 1000, 1, 10_000)
    return json_response({"records": await request.app[SERVICE_KEY].audit(since, limit)})


async def post_message(request: web.Request) -> web.Response:
    """Submit an envelope (its sender's transport key signs the request)."""
    router = request.app[ROUTER_KEY]
    body = await read_body(request, router.limits.max_envelope)
    who = await authenticate(request, body, admin=False)
    started = time.perf_counter()
    try:
        status, evidence = await router.submit(body, who)
    except GlobeError as exc:
        exc.evidence = _rejection(router, body, who, exc)
        raise
    if status == 201:
        router.metrics.accepted += 1
        router.metrics.accept_latency.observe(time.perf_counter() - started)
    else:
        router.metrics.duplicates += 1
    return web.Response(status=status, body=evidence, content_type="application/json")


def _rejection(router: Router, body: bytes, who: Principal, exc: GlobeError) -> bytes | None:
    """Hub-signed ``rejected`` evidence for a genuine envelope refused for good (R11).

    Only for an envelope that parses, comes from the authenticated member and
    carries a valid outer signature: the hub attests what that sender sent.
    Retryable refusals (429, 503, 507: nothing is decided) get none.
    """
    if exc.status in (429, 503, 507) or exc.status >= 500 or exc.evidence is not None:
        return exc.evidence
    svc = router.service
    now = svc.now()
    try:
        env = parse_envelope(body, max_size=router.limits.max_envelope)
        if env.header.sender != who.authority:
            return None
        verify_envelope(env, svc.state, now)
    except GlobeError:
        return None
    return make_evidence(
        genesis=svc.genesis, hub=svc.hub_key, kind=EvidenceKind.REJECTED,
        message_id=env.header.message_id, envelope_hash=env.hash, sender=env.header.sender,
        recipients=[r.authority for r in env.header.recipients], time=now, reason=exc.slug,
    ).signed.encode()  # fmt: skip


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition (restrict access at the reverse proxy)."""
    return web.Response(
        text=request.app[METRICS_KEY].render(), content_type="text/plain", charset="utf-8"
    )


async def get_mailbox(request: web.Request) -> web.Response:
    """Items waiting for the authenticated member after ``after``, oldest first."""
    router = request.app[ROUTER_KEY]
    who = await authenticate(request, await read_body(request), admin=False)
    after = _int_param(request, "after", 0, 0, 2**53 - 1)
    limit = _int_param(request, "limit", router.limits.page_size, 1, router.limits.page_size)
    return json_response(await router.pull(who, after, limit))


async def post_ack(request: web.Request) -> web.Response:
    """Signed receipts release envelopes; notice cursors drop receipts and non-delivery notices."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=False)
    reader = canonical.ObjectReader(_json_body(body), "ack")
    receipts = [
        canonical.b64d(str(x), what="ack.receipts") if isinstance(x, str) else b""
        for x in reader.array("receipts", max_items=500)
    ]
    notices = reader.array("notices", max_items=500)
    reader.done()
    if any(not r for r in receipts) or any(type(n) is not int or n < 0 for n in notices):
        raise MalformedError("ack: receipts are base64url strings, notices are cursors")
    result = await request.app[ROUTER_KEY].ack(who, receipts, [int(str(n)) for n in notices])
    return json_response(result)


def create_app(
    service: HubService,
    *,
    clock: Clock,
    max_body: int = 64 * 1024,
    rate_per_second: float = 20.0,
    burst: int = 100,
    page_size: int = 500,
    router: Router | None = None,
    expiry_interval: float = 30.0,
    blobs: BlobStore | None = None,
) -> web.Application:
    """The aiohttp application around a started :class:`HubService`.

    With a ``router``, the message routes are served and the router's writer
    and the expiry sweep run for the application's lifetime.  With ``blobs``
    (and a ``router``), so are the attachment blob routes (:mod:`hub.blobs`).
    """
    if max_body < 1024 or page_size < 1:
        raise UsageError("max_body must be at least 1 KiB and page_size at least 1")
    if blobs is not None and router is None:
        raise UsageError("attachment blobs need the router (messages reference them)")
    app = web.Application(middlewares=[problem_middleware], client_max_size=max_body)
    app[SERVICE_KEY] = service
    metrics = Metrics()
    app[METRICS_KEY] = metrics
    metrics.gauge("globe_hub_log_entries", "Membership log length.", lambda: service.state.seq)
    app[BUCKETS_KEY] = TokenBuckets(rate=rate_per_second, burst=burst, clock=clock)
    app[LIMITS_KEY] = {"max_body": max_body, "page_size": page_size}
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", get_metrics)
    r.add_get("/readyz", readyz)
    r.add_get("/v1/openapi.json", openapi)
    r.add_get("/v1/directory/genesis", genesis_file)
    r.add_post("/v1/applications", post_application)
    r.add_get("/v1/applications/{app_id}", get_application)
    r.add_post("/v1/applications/{app_id}/proof", post_proof)
    r.add_get("/v1/directory/log", get_log)
    r.add_get("/v1/directory/checkpoint", get_checkpoint)
    r.add_get("/v1/directory/search", search)
    r.add_put("/v1/prekeys", put_prekey)
    r.add_get("/v1/prekeys/{authority}", get_prekeys)
    r.add_get("/v1/admin/applications", admin_applications)
    r.add_get("/v1/admin/applications/{app_id}", admin_application)
    r.add_post("/v1/admin/applications/{app_id}/reject", admin_reject)
    r.add_post("/v1/admin/actions", admin_action)
    r.add_get("/v1/admin/proposals", admin_proposals)
    r.add_get("/v1/admin/audit", admin_audit)
    if router is not None:
        app[ROUTER_KEY] = router
        router.metrics = metrics
        metrics.gauge(
            "globe_hub_mailbox_items",
            "Items waiting in mailboxes (this process's count).",
            lambda: sum(c for c, _b in router.depth().values()),
        )
        metrics.gauge(
            "globe_hub_mailbox_bytes",
            "Bytes waiting in mailboxes (this process's count).",
            lambda: sum(b for _c, b in router.depth().values()),
        )
        r.add_post("/v1/messages", post_message)
        r.add_get("/v1/mailbox", get_mailbox)
        r.add_post("/v1/mailbox/ack", post_ack)
        app.cleanup_ctx.append(_routing_context(router, expiry_interval))
        if blobs is not None:
            blobs.install(app, router)
    return app


def _routing_context(
    router: Router, interval: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_app: web.Application) -> AsyncIterator[None]:
        await router.start()

        async def sweep() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await router.expire()
                except GlobeError as exc:  # storage trouble: try again next round
                    log.warning("expiry sweep failed: %s", exc.detail)

        task = asyncio.create_task(sweep(), name="globe-expiry")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await router.stop()

    return context

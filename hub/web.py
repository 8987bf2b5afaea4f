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
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from globe_io.errors import NotFound, PayloadTooLarge, RateLimited
from globe_io.httpguard import GUARD_REFUSALS
from globe_io.hubapi import (
    BATCH_MAX_BODY,
    BATCH_MAX_ITEMS,
    Health,
    Readiness,
    Submission,
    Submissions,
)
from globe_io.web import (
    PROBLEM_TYPE,
    TokenBuckets,
    json_object,
    json_response,
    problem_middleware,
    route_of,
)
from globe_io.web import read_body as _read_body
from globe_io.wire import WireResult
from hub.config import Limits
from hub.metrics import Metrics
from hub.routing import Router
from hub.service import Clock, HubService, Principal
from protocol import canonical
from protocol.canonical import MAX_INT
from protocol.dirsearch import Query
from protocol.envelope import parse_envelope, verify_envelope
from protocol.errors import (
    AuthError,
    GlobeError,
    MalformedError,
    StaleError,
    StorageError,
    UsageError,
)
from protocol.ids import AuthorityId
from protocol.membership import AUTHORITY_KINDS
from protocol.profile import OFFENCE_AREAS
from protocol.receipts import MAX_RECEIPT_SIZE, EvidenceKind, make_evidence
from protocol.requestauth import HEADER, HUB_AUDIENCE, parse_request_auth, verify_request

if TYPE_CHECKING:
    from hub.blobs import BlobStore

__all__ = [
    "ACK_MAX_BODY",
    "ACK_MAX_ITEMS",
    "ACK_RECEIPT_CHARS",
    "ADMIN_STATUS",
    "AUDIT_MAX",
    "AUDIT_PAGE",
    "BATCH_MAX_BODY",
    "BATCH_MAX_ITEMS",
    "CURSOR_MAX",
    "POP_ANSWER_BYTES",
    "PROBLEM_TYPE",
    "REJECTION_REASON_MAX",
    "SEARCH_COUNTRY",
    "SEARCH_KIND",
    "SEARCH_LANGUAGE",
    "SEARCH_OFFENCE",
    "SEARCH_TEXT",
    "SERVICE_KEY",
    "TextQuery",
    "TokenBuckets",
    "answer",
    "create_app",
    "json_response",
    "read_body",
]

log = logging.getLogger("globe.hub.http")

SERVICE_KEY: Final = web.AppKey("service", HubService)
ROUTER_KEY: Final = web.AppKey("router", Router)
METRICS_KEY: Final = web.AppKey("metrics", Metrics)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HEX32: Final = re.compile(r"[0-9a-f]{32}\Z")


BUCKETS_KEY: Final = web.AppKey("buckets", TokenBuckets)
LIMITS_KEY: Final = web.AppKey("limits", dict[str, int])
#: ``GET /v1/openapi.json``: the document, serialized once per application.
DOCUMENT_KEY: Final = web.AppKey("openapi", bytes)
_DEFAULTS: Final = Limits()

# --- request rules (``hub/openapi.py`` documents these same values) --------------------------

#: Largest ``since`` / ``after`` a query takes: cursors and log positions are at most 2^53 - 1.
CURSOR_MAX: Final = MAX_INT
#: Default and largest page of ``GET /v1/admin/audit``.
AUDIT_PAGE: Final = 1000
AUDIT_MAX: Final = 10_000
#: Receipts, and notice cursors, in one acknowledgement.
ACK_MAX_ITEMS: Final = 500
#: Characters of base64url in one acknowledged receipt (a container of at most MAX_RECEIPT_SIZE).
ACK_RECEIPT_CHARS: Final = (4 * MAX_RECEIPT_SIZE + 2) // 3
#: The body cap of ``POST /v1/mailbox/ack`` (when larger than ``max_body``): room for the largest
#: valid acknowledgement (every receipt at its cap, every cursor at 2^53 - 1, 16 bytes of JSON
#: punctuation and whitespace per item), so that the item limit, not the body cap, decides.
ACK_MAX_BODY: Final = 4096 + ACK_MAX_ITEMS * (ACK_RECEIPT_CHARS + 16 + len(str(MAX_INT)) + 16)
#: Characters in an admin's rejection reason.
REJECTION_REASON_MAX: Final = 2000
#: Bytes of the secret that answers the KEM proof-of-possession challenge.
POP_ANSWER_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class TextQuery:
    """A text query parameter as the handlers read it and ``hub/openapi.py`` documents it.

    Given at most once; empty is the same as absent.  Otherwise at most ``max_len``
    characters, none of them a control, bidi or zero-width character, and one of
    ``choices`` or a full match of ``pattern`` where those are set; anything else is
    a 400 ``malformed`` problem.
    """

    name: str
    max_len: int
    choices: frozenset[str] | None = None
    pattern: re.Pattern[str] | None = None

    def read(self, request: web.Request) -> str | None:
        """The value, or ``None`` when absent or empty."""
        raw = _single(request, self.name)
        if not raw:
            return None
        if (
            len(raw) > self.max_len
            or canonical.has_hidden_chars(raw)
            or (self.choices is not None and raw not in self.choices)
            or (self.pattern is not None and self.pattern.fullmatch(raw) is None)
        ):
            raise MalformedError(f"query parameter {self.name} is not acceptable")
        return raw


#: ``GET /v1/directory/search`` (protocol.dirsearch): a country by code or name, free text
#: (ranked), and exact filters from the protocol's vocabularies.
SEARCH_COUNTRY: Final = TextQuery("country", 100)
SEARCH_KIND: Final = TextQuery("kind", max(map(len, AUTHORITY_KINDS)), choices=AUTHORITY_KINDS)
SEARCH_OFFENCE: Final = TextQuery(
    "offence", max(map(len, OFFENCE_AREAS)), choices=frozenset(OFFENCE_AREAS)
)
SEARCH_LANGUAGE: Final = TextQuery("language", 2, pattern=re.compile("[a-z]{2}", re.ASCII))
SEARCH_TEXT: Final = TextQuery("q", 200)
#: ``status`` of the admin lists (unknown values match nothing).
ADMIN_STATUS: Final = TextQuery("status", 16)


def _count(metrics: Metrics, exc: GlobeError) -> None:
    """Count a refusal by slug; the HTTP guard counts its own (GuardedRunner ``refused``)."""
    if not isinstance(exc, GUARD_REFUSALS):
        metrics.refuse(exc.slug)


def _limits_middleware() -> Middleware:
    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        """A token bucket per remote address, before anything is read (429)."""
        request.app[BUCKETS_KEY].take(f"addr:{request.remote}")
        return await handler(request)

    return limits


def _timing_middleware() -> Middleware:
    @web.middleware
    async def timing(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Handling time per route pattern (refusals included)."""
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            request.app[METRICS_KEY].request(route_of(request), time.perf_counter() - started)

    return timing


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The request body, capped at ``limit`` (default: the hub's ``max_body``)."""
    cap: int = request.app[LIMITS_KEY]["max_body"] if limit is None else limit
    return await _read_body(request, cap)


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
        # Admin, prekey and profile requests: durable nonces; the message path: in memory (see
        # HubService.consume_nonce for why that is safe).
        durable=admin or request.path in ("/v1/prekeys", "/v1/profile"),
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


def _single(request: web.Request, name: str) -> str | None:
    """A query parameter given at most once (a repeated one is refused, not half-read)."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise MalformedError(f"query parameter {name} is given more than once")
    return values[0] if values else None


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """Decimal digits only (no sign), ``lo..hi``; digits beyond ``hi``'s are refused unparsed."""
    raw = _single(request, name)
    if raw is None:
        return default
    if (
        not (raw.isascii() and raw.isdigit())
        or len(raw.lstrip("0")) > len(str(hi))
        or not lo <= int(raw) <= hi
    ):
        raise MalformedError(f"query parameter {name} must be an integer in {lo}..{hi}")
    return int(raw)


def _app_id(request: web.Request) -> str:
    app_id = request.match_info["app_id"]
    if not _HEX32.match(app_id):
        raise NotFound("no such application")
    return app_id


def _key_update_id(request: web.Request) -> str:
    ku_id = request.match_info["ku_id"]
    if not _HEX32.match(ku_id):
        raise NotFound("no such key update")
    return ku_id


def _json_body(request: web.Request, body: bytes) -> dict[str, Any]:
    """An unsigned JSON body, through the strict decoder (PROTOCOL.md §2.8)."""
    return json_object(body, limit=request.app[LIMITS_KEY]["max_body"])


# --- handlers ------------------------------------------------------------------------------


def answer(result: WireResult, *, status: int = 200) -> web.Response:
    """A typed result as the JSON response (results become JSON only in the handlers)."""
    return json_response(result.to_json(), status=status)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return answer(Health())


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers and the directory is loaded."""
    service = request.app[SERVICE_KEY]
    await service.refresh()
    return answer(Readiness(seq=service.state.seq))


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API, with this hub's configured limits."""
    return web.Response(body=request.app[DOCUMENT_KEY], content_type="application/json")


async def genesis_file(request: web.Request) -> web.Response:
    """The genesis this hub serves (nodes pin their own copy and compare)."""
    return web.Response(
        body=request.app[SERVICE_KEY].genesis.encode(), content_type="application/json"
    )


async def post_application(request: web.Request) -> web.Response:
    """Submit a membership application (signed by both of the applicant's keys)."""
    body = await read_body(request)
    return answer(await request.app[SERVICE_KEY].applications.submit(body), status=201)


async def get_application(request: web.Request) -> web.Response:
    """Public status of an application."""
    return answer(await request.app[SERVICE_KEY].applications.status(_app_id(request)))


async def post_proof(request: web.Request) -> web.Response:
    """Answer the KEM challenge: proof of possession of the key-agreement key."""
    app_id = _app_id(request)  # an id that cannot exist is a 404, whatever the body
    reader = canonical.ObjectReader(_json_body(request, await read_body(request)), "proof")
    secret = reader.blob("answer", length=POP_ANSWER_BYTES)
    reader.done()
    return answer(await request.app[SERVICE_KEY].applications.answer(app_id, secret))


async def post_key_update(request: web.Request) -> web.Response:
    """Submit a key-update request (PROTOCOL.md §6.8): signed by the member's current
    identity key and its new identity and transport keys."""
    body = await read_body(request)
    return answer(await request.app[SERVICE_KEY].key_updates.submit(body), status=201)


async def get_key_update(request: web.Request) -> web.Response:
    """Public status of a key-update request."""
    return answer(await request.app[SERVICE_KEY].key_updates.status(_key_update_id(request)))


async def post_key_update_proof(request: web.Request) -> web.Response:
    """Answer the KEM challenge: possession of the new key-agreement key."""
    ku_id = _key_update_id(request)  # an id that cannot exist is a 404, whatever the body
    reader = canonical.ObjectReader(_json_body(request, await read_body(request)), "proof")
    secret = reader.blob("answer", length=POP_ANSWER_BYTES)
    reader.done()
    return answer(await request.app[SERVICE_KEY].key_updates.answer(ku_id, secret))


async def get_log(request: web.Request) -> web.Response:
    """Log entries after ``since`` (exact bytes, base64url), paged."""
    service = request.app[SERVICE_KEY]
    page_size: int = request.app[LIMITS_KEY]["page_size"]
    since = _int_param(request, "since", 0, 0, CURSOR_MAX)
    limit = _int_param(request, "limit", page_size, 1, page_size)
    return answer(await service.log_page(since, limit))


async def get_checkpoint(request: web.Request) -> web.Response:
    """A fresh hub-signed checkpoint of the log head."""
    body = request.app[SERVICE_KEY].checkpoint()
    return web.Response(body=body, content_type="application/json")


async def search(request: web.Request) -> web.Response:
    """Directory search by country (code or name), kind, offence area, language and text."""
    service = request.app[SERVICE_KEY]
    page_size: int = request.app[LIMITS_KEY]["page_size"]
    query = Query(
        country=SEARCH_COUNTRY.read(request),
        text=SEARCH_TEXT.read(request),
        kind=SEARCH_KIND.read(request),
        offence=SEARCH_OFFENCE.read(request),
        language=SEARCH_LANGUAGE.read(request),
        include_inactive=_single(request, "inactive") == "1",
    )
    limit = _int_param(request, "limit", page_size, 1, page_size)
    return answer(service.search(query, limit=limit))


async def put_profile(request: web.Request) -> web.Response:
    """A member publishes its profile (signed by its identity key; the request by its
    transport key), appended to the membership log."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=False)
    return answer(await request.app[SERVICE_KEY].profiles.submit(body, who), status=201)


async def put_prekey(request: web.Request) -> web.Response:
    """A member publishes a signed prekey (authenticated with its transport key)."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=False)
    return answer(await request.app[SERVICE_KEY].put_prekey(body, who), status=201)


async def get_prekeys(request: web.Request) -> web.Response:
    """A member's current signed prekeys."""
    authority = AuthorityId.parse(request.match_info["authority"])
    return answer(await request.app[SERVICE_KEY].get_prekeys(authority))


async def admin_applications(request: web.Request) -> web.Response:
    """Applications, optionally filtered by status (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    status = ADMIN_STATUS.read(request)
    return answer(await request.app[SERVICE_KEY].applications.listing(status))


async def admin_application(request: web.Request) -> web.Response:
    """One application with its draft admission (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    return answer(await request.app[SERVICE_KEY].applications.get(_app_id(request)))


async def admin_reject(request: web.Request) -> web.Response:
    """Reject an application with a reason (admin)."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=True)
    app_id = _app_id(request)
    reader = canonical.ObjectReader(_json_body(request, body), "rejection")
    reason = reader.text("reason", max_len=REJECTION_REASON_MAX, multiline=True)
    reader.done()
    service = request.app[SERVICE_KEY]
    return answer(await service.applications.reject(app_id, reason, who))


async def admin_key_updates(request: web.Request) -> web.Response:
    """Key-update requests, optionally filtered by status (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    status = ADMIN_STATUS.read(request)
    return answer(await request.app[SERVICE_KEY].key_updates.listing(status))


async def admin_key_update(request: web.Request) -> web.Response:
    """One key-update request with its draft update-keys (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    return answer(await request.app[SERVICE_KEY].key_updates.get(_key_update_id(request)))


async def admin_reject_key_update(request: web.Request) -> web.Response:
    """Reject a key-update request with a reason (admin)."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=True)
    ku_id = _key_update_id(request)
    reader = canonical.ObjectReader(_json_body(request, body), "rejection")
    reason = reader.text("reason", max_len=REJECTION_REASON_MAX, multiline=True)
    reader.done()
    return answer(await request.app[SERVICE_KEY].key_updates.reject(ku_id, reason, who))


async def admin_action(request: web.Request) -> web.Response:
    """Submit admin signatures on a membership action (appended at quorum)."""
    body = await read_body(request)
    who = await authenticate(request, body, admin=True)
    return answer(await request.app[SERVICE_KEY].actions.submit(body, who))


async def admin_proposals(request: web.Request) -> web.Response:
    """Membership actions collecting signatures (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    status = ADMIN_STATUS.read(request)
    return answer(await request.app[SERVICE_KEY].actions.proposals(status))


async def admin_audit(request: web.Request) -> web.Response:
    """The audit trail of admin actions (admin)."""
    await authenticate(request, await read_body(request), admin=True)
    since = _int_param(request, "since", 0, 0, CURSOR_MAX)
    limit = _int_param(request, "limit", AUDIT_PAGE, 1, AUDIT_MAX)
    return answer(await request.app[SERVICE_KEY].audit(since, limit))


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
    _count_accepted(router, status, started)
    return web.Response(status=status, body=evidence, content_type="application/json")


async def post_messages_batch(request: web.Request) -> web.Response:
    """Submit up to BATCH_MAX_ITEMS envelopes in one signed request (PROTOCOL.md §10.6).

    The request as a whole is read, authenticated and checked for shape first; any
    defect refuses it and submits nothing.  Then each envelope is submitted as
    ``POST /v1/messages`` would submit it alone — its own checks, its own token of the
    sender's rate limit, its own group-committed write — concurrently, so that one
    commit holds them all; the answer (200) lists each one's outcome in request order.
    """
    router = request.app[ROUTER_KEY]
    body = await read_body(request, BATCH_MAX_BODY)
    who = await authenticate(request, body, admin=False)  # spends the first envelope's token
    reader = canonical.ObjectReader(json_object(body, limit=BATCH_MAX_BODY), "batch")
    raw = reader.array("envelopes", max_items=BATCH_MAX_ITEMS, min_items=1)
    reader.done()
    envelopes = [_batch_item(x) for x in raw]
    buckets = request.app[BUCKETS_KEY]

    async def one(index: int, data: bytes) -> Submission:
        started = time.perf_counter()
        try:
            if index:
                buckets.take(f"key:{who.key_id}")
            if len(data) > router.limits.max_envelope:  # as the single route's body cap
                raise PayloadTooLarge(
                    f"envelope of {len(data)} bytes exceeds {router.limits.max_envelope}"
                )
            status, evidence = await router.submit(data, who)
        except GlobeError as exc:
            _count(router.metrics, exc)
            retry = exc.retry_after if isinstance(exc, RateLimited) else None
            if isinstance(exc, StorageError):
                retry = 1
            return Submission(
                status=exc.status, evidence=_rejection(router, data, who, exc),
                type=exc.type_uri(), detail=exc.detail, retry_after=retry,
            )  # fmt: skip
        _count_accepted(router, status, started)
        return Submission(status=status, evidence=evidence)

    results = await asyncio.gather(*(one(i, e) for i, e in enumerate(envelopes)))
    return answer(Submissions(results=tuple(results)))


def _batch_item(item: object) -> bytes:
    """One envelope of a batch: canonical base64url of at least one byte."""
    if not isinstance(item, str) or not item:
        raise MalformedError("batch.envelopes: base64url strings of at least one byte")
    return canonical.b64d(item, what="batch.envelopes")


def _count_accepted(router: Router, status: int, started: float) -> None:
    if status == 201:
        router.metrics.accepted += 1
        router.metrics.accept_latency.observe(time.perf_counter() - started)
    else:
        router.metrics.duplicates += 1


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
    after = _int_param(request, "after", 0, 0, CURSOR_MAX)
    limit = _int_param(request, "limit", router.limits.page_size, 1, router.limits.page_size)
    return answer(await router.pull(who, after, limit))


async def post_ack(request: web.Request) -> web.Response:
    """Signed receipts release envelopes; notice cursors drop receipts and non-delivery notices."""
    cap = max(request.app[LIMITS_KEY]["max_body"], ACK_MAX_BODY)
    body = await read_body(request, cap)
    who = await authenticate(request, body, admin=False)
    reader = canonical.ObjectReader(json_object(body, limit=cap), "ack")
    receipts = [_receipt(x) for x in reader.array("receipts", max_items=ACK_MAX_ITEMS)]
    notices = [_cursor(x) for x in reader.array("notices", max_items=ACK_MAX_ITEMS)]
    reader.done()
    return answer(await request.app[ROUTER_KEY].ack(who, receipts, notices))


def _receipt(item: object) -> bytes:
    """One acknowledged receipt: canonical base64url of 1..MAX_RECEIPT_SIZE bytes."""
    if not isinstance(item, str) or not 0 < len(item) <= ACK_RECEIPT_CHARS:
        raise MalformedError(f"ack.receipts: base64url strings of 1..{MAX_RECEIPT_SIZE} bytes")
    return canonical.b64d(item, what="ack.receipts")


def _cursor(item: object) -> int:
    """One notice cursor: an integer in 0..2^53 - 1."""
    if type(item) is not int or not 0 <= item <= CURSOR_MAX:
        raise MalformedError(f"ack.notices: cursors, integers in 0..{CURSOR_MAX}")
    return item


def create_app(
    service: HubService,
    *,
    clock: Clock,
    max_body: int = _DEFAULTS.max_body,
    rate_per_second: float = _DEFAULTS.rate_per_second,
    burst: int = _DEFAULTS.burst,
    page_size: int = _DEFAULTS.page_size,
    router: Router | None = None,
    expiry_interval: float = 30.0,
    blobs: BlobStore | None = None,
) -> web.Application:
    """The aiohttp application around a started :class:`HubService`.

    With a ``router``, the message routes are served and the router's writer
    and the expiry sweep run for the application's lifetime.  With ``blobs``
    (and a ``router``), so are the attachment blob routes (:mod:`hub.blobs`).
    ``/v1/openapi.json`` states the limits given here, the router's and the blob store's.
    """
    # The document describes this module (its request rules): imported here, not at the top.
    from hub.openapi import ApiLimits, openapi_document  # noqa: PLC0415

    if max_body < 1024 or page_size < 1:
        raise UsageError("max_body must be at least 1 KiB and page_size at least 1")
    if blobs is not None and router is None:
        raise UsageError("attachment blobs need the router (messages reference them)")
    metrics = Metrics()
    app = web.Application(
        middlewares=[
            _timing_middleware(),
            problem_middleware(logger=log, refused=lambda exc: _count(metrics, exc)),
            _limits_middleware(),
        ],
        client_max_size=max_body,
    )
    app[SERVICE_KEY] = service
    app[METRICS_KEY] = metrics
    metrics.gauge("globe_hub_log_entries", "Membership log length.", lambda: service.state.seq)
    app[BUCKETS_KEY] = TokenBuckets(rate=rate_per_second, burst=burst, clock=clock)
    app[LIMITS_KEY] = {"max_body": max_body, "page_size": page_size}
    limits = ApiLimits(max_body=max_body, page_size=page_size)
    if router is not None:
        limits = replace(
            limits, mailbox_page=router.limits.page_size, max_envelope=router.limits.max_envelope
        )
    if blobs is not None:
        limits = replace(limits, max_blob=blobs.max_blob)
    app[DOCUMENT_KEY] = orjson.dumps(openapi_document(limits))
    _add_membership_routes(app.router)
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
        r = app.router
        r.add_post("/v1/messages", post_message)
        r.add_post("/v1/messages/batch", post_messages_batch)
        r.add_get("/v1/mailbox", get_mailbox)
        r.add_post("/v1/mailbox/ack", post_ack)
        app.cleanup_ctx.append(_routing_context(router, expiry_interval))
        if blobs is not None:
            blobs.install(app, router)
    return app


def _add_membership_routes(r: web.UrlDispatcher) -> None:
    """The routes every hub serves: health, directory, applications, key updates, prekeys,
    admin."""
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", get_metrics)
    r.add_get("/readyz", readyz)
    r.add_get("/v1/openapi.json", openapi)
    r.add_get("/v1/directory/genesis", genesis_file)
    r.add_post("/v1/applications", post_application)
    r.add_get("/v1/applications/{app_id}", get_application)
    r.add_post("/v1/applications/{app_id}/proof", post_proof)
    r.add_post("/v1/key-updates", post_key_update)
    r.add_get("/v1/key-updates/{ku_id}", get_key_update)
    r.add_post("/v1/key-updates/{ku_id}/proof", post_key_update_proof)
    r.add_get("/v1/directory/log", get_log)
    r.add_get("/v1/directory/checkpoint", get_checkpoint)
    r.add_get("/v1/directory/search", search)
    r.add_put("/v1/prekeys", put_prekey)
    r.add_put("/v1/profile", put_profile)
    r.add_get("/v1/prekeys/{authority}", get_prekeys)
    r.add_get("/v1/admin/applications", admin_applications)
    r.add_get("/v1/admin/applications/{app_id}", admin_application)
    r.add_post("/v1/admin/applications/{app_id}/reject", admin_reject)
    r.add_get("/v1/admin/key-updates", admin_key_updates)
    r.add_get("/v1/admin/key-updates/{ku_id}", admin_key_update)
    r.add_post("/v1/admin/key-updates/{ku_id}/reject", admin_reject_key_update)
    r.add_post("/v1/admin/actions", admin_action)
    r.add_get("/v1/admin/proposals", admin_proposals)
    r.add_get("/v1/admin/audit", admin_audit)


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

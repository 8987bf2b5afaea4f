"""The node daemon's two HTTP faces and ``globe-node run``.

* **Peer listener** (``peer_host:peer_port``; the certificate's ``endpoint``
  points here through the operator's TLS proxy): ``POST /v1/inbox`` takes an
  envelope from its sender, authenticated by a Globe-Auth signature (§10) with
  the sender's certified transport key and this node's authority id as the
  audience; the answer is this node's signed delivery receipt.  ``POST
  /v1/ping`` is a signed connectivity test.  Every refusal is problem+json.
* **Local API** (``api_host:api_port``, 127.0.0.1 by default): what the CLI and
  the web UI use, authenticated by per-user bearer tokens with roles
  (investigator, supervisor, operator); every send, read, forward and export is
  written to the hash-chained audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web
from sqlalchemy import select

from globe_node import db
from globe_node.audit import AuditLog
from globe_node.config import NodeConfig
from globe_node.errors import Forbidden, NotFound, Unauthenticated
from globe_node.keys import load_keys
from globe_node.node import Node, OutgoingAttachment
from hub.web import TokenBuckets, problem, read_body
from protocol import canonical
from protocol.envelope import MAX_ENVELOPE_SIZE
from protocol.errors import AuthError, GlobeError, MalformedError, StaleError, UsageError
from protocol.ids import AuthorityId
from protocol.keys import fingerprint
from protocol.messages import (
    Consent,
    ConsentDecision,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
)
from protocol.replay import NonceWindow
from protocol.requestauth import HEADER, MAX_SKEW, parse_request_auth, verify_request

__all__ = ["ROLES", "create_api_app", "create_peer_app", "run", "serve"]

log = logging.getLogger("globe.node.server")

NODE_KEY: Final = web.AppKey("node", Node)
USER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
AUDIT_KEY: Final = web.AppKey("audit", AuditLog)
NONCES_KEY: Final = web.AppKey("nonces", NonceWindow)
PEER_BUCKETS_KEY: Final = web.AppKey("peer_buckets", TokenBuckets)
#: A local API request body: room for the largest message text (about 1 MiB) as JSON,
#: escapes included; the content rules then decide (§8).
API_MAX_BODY: Final = 4 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: What each role may do.  Operators run the node but do not read case material.
ROLES: Final = {
    "investigator": {"read", "send", "status"},
    "supervisor": {"read", "send", "status", "audit"},
    "operator": {"status", "operate", "audit"},
}


class _HttpError(GlobeError):
    """An HTTP-level refusal from aiohttp (unknown route, wrong method), with its status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.http_status = status

    def to_problem(self) -> dict[str, object]:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(self.http_status, "http")
        return {
            "type": f"https://globe-link.invalid/problems/{slug}",
            "title": self.detail,
            "status": self.http_status,
            "detail": self.detail,
        }


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GlobeError as exc:
        return problem(exc, instance=request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        resp = problem(_HttpError(exc.status, exc.reason), instance=request.path)
        resp.set_status(exc.status)
        if "Allow" in exc.headers:  # a 405 names the allowed methods (RFC 9110 §15.5.6)
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return problem(GlobeError("internal error; nothing was applied"), instance=request.path)


# -- peer listener --------------------------------------------------------------------------


async def _peer_auth(request: web.Request, body: bytes) -> AuthorityId:
    """The active member whose transport key signed this request for us."""
    node = request.app[NODE_KEY]
    auth = parse_request_auth(request.headers.get(HEADER))
    now = node.now()
    if abs(now - auth.created) > MAX_SKEW:  # before any lookup (§10.3)
        raise StaleError("request timestamp outside the accepted window")
    sender = node.transport_owner(auth.key_id)
    if sender is None:
        raise AuthError("request authentication failed")
    try:
        member = node.state.active_member(sender, now)
    except GlobeError:
        raise AuthError("request authentication failed") from None
    verify_request(
        auth, key=member.certificate.transport_key, network=node.genesis.digest,
        audience=str(node.me), method=request.method, target=request.raw_path, body=body, now=now,
    )  # fmt: skip
    request.app[NONCES_KEY].check_and_add(auth.key_id, auth.nonce, auth.created, now)
    request.app[PEER_BUCKETS_KEY].take(f"member:{sender}")
    return sender


@web.middleware
async def _peer_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A token bucket per remote address, before anything is read (429 + Retry-After)."""
    request.app[PEER_BUCKETS_KEY].take(f"addr:{request.remote}")
    return await handler(request)


async def peer_inbox(request: web.Request) -> web.Response:
    """Direct delivery: the same checks as the hub path, then this node's receipt."""
    node = request.app[NODE_KEY]
    body = await read_body(request, MAX_ENVELOPE_SIZE)
    sender = await _peer_auth(request, body)
    from protocol.envelope import parse_envelope  # noqa: PLC0415

    if parse_envelope(body).header.sender != sender:
        raise MalformedError("an envelope is delivered by its sender")
    receipt = await node.receive(body, via="direct")
    return web.Response(body=receipt, content_type="application/json")


async def peer_ping(request: web.Request) -> web.Response:
    """Signed connectivity test: who answered and when."""
    node = request.app[NODE_KEY]
    body = await read_body(request, 1024)
    sender = await _peer_auth(request, body)
    return _json({"authority": str(node.me), "time": node.now(), "from": str(sender)})


def create_peer_app(node: Node) -> web.Application:
    """The direct-delivery listener."""
    app = web.Application(
        middlewares=[_problems, _peer_limits], client_max_size=MAX_ENVELOPE_SIZE + 1
    )
    app[NODE_KEY] = node
    app[NONCES_KEY] = NonceWindow(window=120)
    app[PEER_BUCKETS_KEY] = TokenBuckets(
        rate=node.config.peer_rate, burst=node.config.peer_burst, clock=time.monotonic
    )
    app.router.add_post("/v1/inbox", peer_inbox)
    app.router.add_post("/v1/ping", peer_ping)
    app.router.add_get("/healthz", _healthz)
    return app


# -- local API ------------------------------------------------------------------------------


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def _healthz(_request: web.Request) -> web.Response:
    return _json({"status": "ok"})


def token_hash(token: str) -> bytes:
    """What the users table stores of a token."""
    return hashlib.sha256(token.encode()).digest()


async def _user(request: web.Request, need: str) -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or len(header) > 200:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    digest = token_hash(header[7:].strip())
    node = request.app[NODE_KEY]
    async with node.sessions() as s:
        user = (
            await s.execute(select(db.User).where(db.User.token_hash == digest))
        ).scalar_one_or_none()
    if user is None:
        raise Unauthenticated("unknown token")
    if need not in ROLES.get(user.role, set()):
        raise Forbidden(f"the {user.role} role may not do this")
    return user.name


async def _obj(request: web.Request) -> dict[str, Any]:
    data = await read_body(request, API_MAX_BODY)
    try:
        obj = orjson.loads(data or b"{}")
    except orjson.JSONDecodeError:
        raise MalformedError("the body is not JSON") from None
    if not isinstance(obj, dict):
        raise MalformedError("the body is a JSON object")
    return obj


def _str(obj: dict[str, Any], name: str, *, default: str | None = None) -> str:
    value = obj.get(name, default)
    if not isinstance(value, str):
        raise UsageError(f"'{name}' is a string")
    return value


def _opt_int(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is not None and (type(value) is not int or value < 0):
        raise UsageError(f"'{name}' is a non-negative integer")
    return value


def _ids(obj: dict[str, Any], name: str) -> list[AuthorityId]:
    value = obj.get(name)
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise UsageError(f"'{name}' is a non-empty list of authority ids")
    return [AuthorityId.parse(x) for x in value]


def _enum(cls: Any, value: object, name: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise UsageError(f"'{name}': unknown value {value!r}") from None


def _attachments(obj: dict[str, Any], node_dir: Path) -> list[OutgoingAttachment]:
    items = obj.get("attachments", [])
    if not isinstance(items, list):
        raise UsageError("'attachments' is a list")
    out = []
    for a in items:
        if not isinstance(a, dict) or not isinstance(a.get("path"), str):
            raise UsageError("an attachment is {path, name?, media_type?}")
        path = Path(a["path"])
        if not path.is_absolute() or not path.is_file():
            raise UsageError(f"attachment {path} is not an absolute path to a readable file")
        if path.resolve().is_relative_to(node_dir):
            raise UsageError("files of the node directory cannot be attached")
        out.append(
            OutgoingAttachment(
                path, a.get("name") or path.name, a.get("media_type") or "application/octet-stream"
            )
        )
    return out


def _content_json(c: MessageContent) -> dict[str, Any]:
    return {
        "kind": c.kind.value, "subject": c.subject, "body": c.body, "language": c.language,
        "urgency": c.urgency.value, "tlp": c.handling.tlp.value,
        "restrictions": sorted(r.value for r in c.handling.restrictions), "case": c.case,
        "in_reply_to": str(c.in_reply_to) if c.in_reply_to else None, "deadline": c.deadline,
        "attachments": [
            {"name": a.name, "size": a.size, "media_type": a.media_type} for a in c.attachments
        ],
        "status": c.status.to_json() if c.status else None,
        "consent": c.consent.to_json() if c.consent else None,
    }  # fmt: skip


async def api_status(request: web.Request) -> web.Response:
    await _user(request, "status")
    return _json(await request.app[NODE_KEY].status())


async def api_inbox(request: web.Request) -> web.Response:
    await _user(request, "read")
    limit = _query_int(request, "limit", 50)
    unread = request.query.get("unread") == "1"
    return _json({"messages": await request.app[NODE_KEY].inbox(limit=limit, unread=unread)})


async def api_outbox(request: web.Request) -> web.Response:
    await _user(request, "read")
    limit = _query_int(request, "limit", 50)
    return _json({"messages": await request.app[NODE_KEY].outbox(limit=limit)})


def _query_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise UsageError(f"'{name}' is an integer 1-1000")
    return int(raw)


async def api_delivery(request: web.Request) -> web.Response:
    await _user(request, "read")
    return _json(await request.app[NODE_KEY].delivery(request.match_info["id"]))


async def api_message(request: web.Request) -> web.Response:
    user = await _user(request, "read")
    node = request.app[NODE_KEY]
    mid = request.match_info["id"]
    direction, content, meta = await node.content_of(mid)
    if direction == "in":
        await node.mark_read(mid, user)
    return _json({"direction": direction, "content": _content_json(content), "meta": meta})


async def api_attachment(request: web.Request) -> web.StreamResponse:
    user = await _user(request, "read")
    node = request.app[NODE_KEY]
    mid = request.match_info["id"]
    n = int(request.match_info["n"])
    _, content, _ = await node.content_of(mid)
    if not 1 <= n <= len(content.attachments):
        raise NotFound(f"message {mid} has no attachment {n}")
    att = content.attachments[n - 1]
    # Audited before the first byte leaves; decrypted as it streams, never to a file.
    await request.app[AUDIT_KEY].append(node.now(), user, "export", f"{mid} attachment {n}")
    resp = web.StreamResponse(
        headers={
            "Content-Type": att.media_type,
            "Content-Length": str(att.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(att.name)}",
        }
    )
    await resp.prepare(request)
    async for chunk in node.attachment_chunks(mid, n - 1):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


def _quote(name: str) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    return quote(name, safe="")


async def api_send(request: web.Request) -> web.Response:
    user = await _user(request, "send")
    node = request.app[NODE_KEY]
    obj = await _obj(request)
    kind = _enum(Kind, obj.get("kind", "information"), "kind")
    if kind not in (Kind.INFORMATION, Kind.REQUEST, Kind.BULLETIN):
        raise UsageError("send starts an information, request or bulletin; use reply for others")
    restrictions = obj.get("restrictions", [])
    if not isinstance(restrictions, list):
        raise UsageError("'restrictions' is a list")
    content = MessageContent(
        kind=kind,
        subject=_str(obj, "subject"),
        body=_str(obj, "body"),
        language=_str(obj, "language", default="en"),
        urgency=_enum(Urgency, obj.get("urgency", "routine"), "urgency"),
        handling=Handling(
            _enum(Tlp, obj.get("tlp", "AMBER"), "tlp"),
            frozenset(_enum(Restriction, r, "restrictions") for r in restrictions),
        ),
        case=obj.get("case"),
        deadline=_opt_int(obj, "deadline"),
    )
    if content.deadline is not None and content.deadline <= node.now():
        raise UsageError("'deadline' is in the past")
    mid = await node.send(
        _ids(obj, "to"),
        content,
        user=user,
        attachments=_attachments(obj, node.config.directory.resolve()),
    )
    return _json({"id": str(mid)}, status=201)


async def api_reply(request: web.Request) -> web.Response:
    user = await _user(request, "send")
    obj = await _obj(request)
    kind = _enum(Kind, obj.get("kind", "answer"), "kind")
    if kind not in (Kind.ANSWER, Kind.INFORMATION):
        raise UsageError("a reply is an answer or information")
    node = request.app[NODE_KEY]
    mid = await node.reply(
        request.match_info["id"], kind=kind, body=_str(obj, "body"),
        subject=obj.get("subject"), user=user,
        attachments=_attachments(obj, node.config.directory.resolve()),
    )  # fmt: skip
    return _json({"id": str(mid)}, status=201)


async def api_status_update(request: web.Request) -> web.Response:
    user = await _user(request, "send")
    obj = await _obj(request)
    state = _enum(StatusState, obj.get("state"), "state")
    reason = obj.get("reason")
    status = StatusUpdate(state, _opt_int(obj, "expected"), reason)
    body = obj.get("body") or f"Status: {state.value}" + (f" ({reason})" if reason else "")
    mid = await request.app[NODE_KEY].reply(
        request.match_info["id"], kind=Kind.STATUS, body=str(body), status=status, user=user
    )
    return _json({"id": str(mid)}, status=201)


async def api_forward(request: web.Request) -> web.Response:
    user = await _user(request, "send")
    obj = await _obj(request)
    mid = await request.app[NODE_KEY].forward(
        request.match_info["id"], _ids(obj, "to"), user=user, note=str(obj.get("note") or "")
    )
    return _json({"id": str(mid)}, status=201)


async def api_request_consent(request: web.Request) -> web.Response:
    user = await _user(request, "send")
    obj = await _obj(request)
    mid = await request.app[NODE_KEY].request_consent(
        request.match_info["id"], _ids(obj, "to"), _str(obj, "purpose"), user=user
    )
    return _json({"id": str(mid)}, status=201)


async def api_consent(request: web.Request) -> web.Response:
    user = await _user(request, "send")
    node = request.app[NODE_KEY]
    obj = await _obj(request)
    decision = _enum(ConsentDecision, obj.get("decision"), "decision")
    asked_id = request.match_info["id"]
    _, asked, _ = await node.content_of(asked_id)
    if asked.kind is not Kind.CONSENT_REQUEST or asked.consent is None:
        raise UsageError(f"message {asked_id} is not a consent request")
    to = tuple(sorted(_ids(obj, "to"), key=str)) if obj.get("to") else asked.consent.to
    reason = obj.get("reason")
    consent = Consent(asked.consent.message, to, None, decision, reason)
    body = f"Consent {decision.value} for message {asked.consent.message}" + (
        f": {reason}" if reason else ""
    )
    mid = await node.reply(
        asked_id, kind=Kind.CONSENT_DECISION, body=body, consent=consent, user=user
    )
    return _json({"id": str(mid)}, status=201)


async def api_retry(request: web.Request) -> web.Response:
    user = await _user(request, "send")
    n = await request.app[NODE_KEY].retry(request.match_info["id"], user)
    return _json({"queued": n})


async def api_cases(request: web.Request) -> web.Response:
    await _user(request, "read")
    return _json({"cases": await request.app[NODE_KEY].cases()})


async def api_case(request: web.Request) -> web.Response:
    await _user(request, "read")
    node = request.app[NODE_KEY]
    case = request.match_info["case"]
    reqs = await node.requests(case=case)
    async with node.sessions() as s:
        ins = (
            await s.execute(
                select(db.InMessage.message_id, db.InMessage.sender, db.InMessage.kind,
                       db.InMessage.received, db.InMessage.in_reply_to)
                .where(db.InMessage.case == case)
            )
        ).all()  # fmt: skip
        outs = (
            await s.execute(
                select(db.OutMessage.message_id, db.OutMessage.kind, db.OutMessage.created,
                       db.OutMessage.in_reply_to)
                .where(db.OutMessage.case == case)
            )
        ).all()  # fmt: skip
    if not ins and not outs:
        raise NotFound(f"no case {case}")
    messages = [
        {"id": m, "direction": "in", "from": s_, "kind": k, "time": t, "in_reply_to": r}
        for m, s_, k, t, r in ins
    ] + [
        {"id": m, "direction": "out", "from": str(node.me), "kind": k, "time": t,
         "in_reply_to": r}
        for m, k, t, r in outs
    ]  # fmt: skip
    # Time has whole seconds: within one second, what opens a thread comes first.
    messages.sort(key=lambda m: (m["time"], m["in_reply_to"] is not None, m["id"]))
    return _json({"case": case, "requests": reqs, "messages": messages})


async def api_stats(request: web.Request) -> web.Response:
    await _user(request, "read")
    return _json({"counterparts": await request.app[NODE_KEY].response_stats()})


async def api_search(request: web.Request) -> web.Response:
    await _user(request, "status")
    node = request.app[NODE_KEY]
    q = request.query
    results = node.state.search(
        country=q.get("country") or None, kind=q.get("kind") or None,
        language=q.get("language") or None, text=q.get("q") or None,
        include_inactive=q.get("inactive") == "1",
    )  # fmt: skip
    return _json(
        {
            "results": [
                {
                    "authority": str(m.authority),
                    "name": m.certificate.name,
                    "country": m.authority.country,
                    "kinds": list(m.certificate.kinds),
                    "languages": list(m.certificate.languages),
                    "status": m.status.value,
                    "endpoint": m.certificate.endpoint,
                    "fingerprint": fingerprint(
                        m.certificate.identity_key,
                        m.certificate.transport_key,
                        m.certificate.ka_key(),
                    ),
                }
                for m in results[:200]
            ]
        }
    )


async def api_ping(request: web.Request) -> web.Response:
    await _user(request, "status")
    node = request.app[NODE_KEY]
    peer = AuthorityId.parse(request.match_info["authority"])
    return _json(await node.ping(peer))


async def api_rotate(request: web.Request) -> web.Response:
    user = await _user(request, "operate")
    node = request.app[NODE_KEY]
    kid = await node.rotate_prekey()
    await request.app[AUDIT_KEY].append(node.now(), user, "rotate-prekey", kid)
    return _json({"prekey": kid})


async def api_sync(request: web.Request) -> web.Response:
    await _user(request, "status")
    node = request.app[NODE_KEY]
    added = await node.sync_directory()
    try:
        pulled: int | None = await node.pull()
    except GlobeError as exc:  # e.g. this node was suspended: the directory still synced
        log.info("mailbox pull after sync refused: %s", exc.detail)
        pulled = None
    return _json({"added": added, "pulled": pulled})


async def api_alerts(request: web.Request) -> web.Response:
    await _user(request, "status")
    return _json({"alerts": await request.app[NODE_KEY].alerts()})


async def api_audit(request: web.Request) -> web.Response:
    await _user(request, "audit")
    entries, ok = await request.app[AUDIT_KEY].entries()
    return _json({"entries": entries, "verified": ok})


async def api_add_user(request: web.Request) -> web.Response:
    user = await _user(request, "operate")
    node = request.app[NODE_KEY]
    obj = await _obj(request)
    name, role = _str(obj, "name"), _str(obj, "role")
    if role not in ROLES:
        raise UsageError(f"role is one of {', '.join(sorted(ROLES))}")
    token = await add_user(node, name, role)
    await request.app[AUDIT_KEY].append(node.now(), user, "add-user", f"{name} ({role})")
    return _json({"name": name, "role": role, "token": token}, status=201)


async def add_user(node: Node, name: str, role: str) -> str:
    """Create a user; return its token (shown once, stored only as a hash)."""
    if not USER_NAME.match(name):
        raise UsageError(
            "a user name is 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"
        )
    token = canonical.b64e(secrets.token_bytes(32))
    async with node.sessions.begin() as s:
        if await s.get(db.User, name) is not None:
            raise UsageError(f"user {name} exists")
        s.add(db.User(name=name, role=role, token_hash=token_hash(token), created=node.now()))
    return token


def create_api_app(node: Node, audit: AuditLog) -> web.Application:
    """The local API."""
    app = web.Application(middlewares=[_problems], client_max_size=API_MAX_BODY + 1)
    app[NODE_KEY] = node
    app[AUDIT_KEY] = audit
    r = app.router
    r.add_get("/api/status", api_status)
    r.add_get("/api/inbox", api_inbox)
    r.add_get("/api/outbox", api_outbox)
    r.add_get("/api/outbox/{id}", api_delivery)
    r.add_post("/api/messages", api_send)
    r.add_get("/api/messages/{id}", api_message)
    r.add_get("/api/messages/{id}/attachments/{n:[0-9]{1,3}}", api_attachment)
    r.add_post("/api/messages/{id}/reply", api_reply)
    r.add_post("/api/messages/{id}/status", api_status_update)
    r.add_post("/api/messages/{id}/forward", api_forward)
    r.add_post("/api/messages/{id}/request-consent", api_request_consent)
    r.add_post("/api/messages/{id}/consent", api_consent)
    r.add_post("/api/messages/{id}/retry", api_retry)
    r.add_get("/api/cases", api_cases)
    r.add_get("/api/cases/{case}", api_case)
    r.add_get("/api/stats", api_stats)
    r.add_get("/api/directory/search", api_search)
    r.add_post("/api/ping/{authority}", api_ping)
    r.add_post("/api/keys/rotate", api_rotate)
    r.add_post("/api/sync", api_sync)
    r.add_get("/api/alerts", api_alerts)
    r.add_get("/api/audit", api_audit)
    r.add_post("/api/users", api_add_user)
    return app


# -- the daemon -----------------------------------------------------------------------------


async def serve(
    config: NodeConfig,
    passphrase: bytes,
    *,
    ready: Callable[[Node], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the node until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    keys = load_keys(config.key_path, passphrase)
    node = await Node.open(config, keys)
    audit = node.audit
    runners: list[web.AppRunner] = []
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        api = web.AppRunner(create_api_app(node, audit), access_log=None)
        await api.setup()
        await web.TCPSite(api, config.api_host, config.api_port).start()
        runners.append(api)
        if config.peer_port:
            peer = web.AppRunner(create_peer_app(node), access_log=None)
            await peer.setup()
            await web.TCPSite(peer, config.peer_host, config.peer_port).start()
            runners.append(peer)
        await node.start()
        log.info("node %s running (api %s:%d)", node.me, config.api_host, config.api_port)
        if ready is not None:
            ready(node)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        for runner in runners:
            await runner.cleanup()
        await node.close()


def run(config: NodeConfig, passphrase: bytes) -> int:
    """``globe-node run``: serve until SIGTERM; 0 on a clean shutdown."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    started = time.monotonic()
    asyncio.run(serve(config, passphrase, ready=lambda n: print(
        f"globe-node: {n.me} running; api http://{config.api_host}:{config.api_port}"
        + (f", peer listener {config.peer_host}:{config.peer_port}" if config.peer_port else ""),
        flush=True,
    )))  # fmt: skip
    log.info("stopped after %.0f s", time.monotonic() - started)
    return 0

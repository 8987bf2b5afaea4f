"""The node's local API: what the CLI and the web UI use (``api_host:api_port``).

Every route is declared once in :data:`ROUTES` with the permission it needs;
:func:`create_api_app` registers each handler behind one check that
authenticates the bearer token and compares the user's role with that
permission (:mod:`globe_node.roles`).  A handler cannot forget the check, and
the table is the permission matrix the tests walk cell by cell.

The daemon never opens a path, URL or file its caller names: attachments
arrive as bytes (``POST /api/uploads``) and a message refers to them by
upload id.  Every JSON body goes through the one strict decoder
(PROTOCOL.md §2.8) and every field is read by name: an unknown field is
refused, never ignored.  Every send, read, forward and export is written to
the hash-chained audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeVar
from urllib.parse import quote

from aiohttp import web

from globe_io.errors import LengthRequired
from globe_io.web import json_response, problem_middleware, read_json
from globe_node.audit import AuditLog
from globe_node.errors import Forbidden, NotFound
from globe_node.node import Node
from globe_node.roles import GRANTS, Permission, Role, may_create
from globe_node.uploads import parse_upload_id
from globe_node.users import Principal, add_user, authenticate
from protocol.envelope import decode_header
from protocol.errors import UsageError
from protocol.ids import AuthorityId
from protocol.messages import (
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    StatusState,
    StatusUpdate,
    Tlp,
    Urgency,
)

__all__ = ["API_MAX_BODY", "ROUTES", "ApiRoute", "create_api_app"]

log = logging.getLogger("globe.node.api")

NODE_KEY: Final = web.AppKey("node", Node)
AUDIT_KEY: Final = web.AppKey("audit", AuditLog)
#: A local API request body: room for the largest message text (about 1 MiB) as JSON,
#: escapes included; the content rules then decide (§8).
API_MAX_BODY: Final = 4 * 1024 * 1024
#: Items of a list query (inbox, outbox).
MAX_LIMIT: Final = 1000
_E = TypeVar("_E", bound=Enum)

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One route of the local API and the permission it needs."""

    method: str
    path: str
    permission: Permission
    handler: Handler


# --- reading requests ------------------------------------------------------------------------


class Body:
    """The fields of a JSON body, read by name; :meth:`done` refuses any left unread."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj
        self._read: set[str] = set()

    def get(self, name: str) -> Any:
        """A field's raw value (``None`` when absent)."""
        self._read.add(name)
        return self._obj.get(name)

    def has(self, name: str) -> bool:
        """Whether the field is present (and not null)."""
        return self.get(name) is not None

    def string(self, name: str, *, default: str | None = None) -> str:
        """A string field (``default`` when absent)."""
        value = self.get(name)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise UsageError(f"'{name}' is a string")
        return value

    def opt_string(self, name: str) -> str | None:
        """An optional string field."""
        return None if self.get(name) is None else self.string(name)

    def opt_int(self, name: str) -> int | None:
        """An optional non-negative integer field."""
        value = self.get(name)
        if value is not None and (type(value) is not int or value < 0):
            raise UsageError(f"'{name}' is a non-negative integer")
        return value

    def enum(self, cls: type[_E], name: str, *, default: str | None = None) -> _E:
        """A field naming one value of ``cls``."""
        value = self.get(name)
        return _enum_value(cls, default if value is None else value, name)

    def authorities(self, name: str) -> list[AuthorityId]:
        """A non-empty list of authority ids."""
        value = self.get(name)
        if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
            raise UsageError(f"'{name}' is a non-empty list of authority ids")
        return [AuthorityId.parse(x) for x in value]

    def uploads(self) -> list[str]:
        """``attachments``: upload ids from ``POST /api/uploads`` (never a file path)."""
        value = self.get("attachments")
        if value is None:
            return []
        if not isinstance(value, list):
            raise UsageError("'attachments' is a list of upload ids")
        if any(isinstance(item, dict) for item in value):
            raise UsageError(
                "'attachments' lists upload ids: the node never reads a file named in a request;"
                " upload the bytes with POST /api/uploads first"
            )
        return [parse_upload_id(item) for item in value]

    def done(self) -> None:
        """Refuse fields nobody read (a typo must not silently drop a restriction)."""
        extra = sorted(set(self._obj) - self._read)
        if extra:
            raise UsageError(f"unknown field(s): {', '.join(_shown(x) for x in extra[:5])}")


def _enum_value(cls: type[_E], value: object, name: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        raise UsageError(f"'{name}': unknown value {_shown(value)}") from None


def _shown(value: object) -> str:
    """A client's value in an error message: bounded and on one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


async def _body(request: web.Request) -> Body:
    return Body(await read_json(request, API_MAX_BODY, empty_ok=True))


def _query_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or not 1 <= int(raw) <= MAX_LIMIT:
        raise UsageError(f"'{name}' is an integer 1-{MAX_LIMIT}")
    return int(raw)


def _node(request: web.Request) -> Node:
    return request.app[NODE_KEY]


def _created(data: dict[str, Any]) -> web.Response:
    return json_response(data, status=201)


# --- messages --------------------------------------------------------------------------------


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
        "forwarded": _forwarded_json(c.forwarded) if c.forwarded else None,
    }  # fmt: skip


def _forwarded_json(f: Forwarded) -> dict[str, Any]:
    """Who originated a forwarded message and what it said (verified when it arrived)."""
    header = decode_header(f.origin.header)
    consents = []
    for proof in f.consents:
        c = MessageContent.decode(proof.content).consent
        consents.append({
            "from": str(decode_header(proof.header).sender),
            "to": sorted(str(a) for a in c.to) if c else [],
        })  # fmt: skip
    return {
        "originator": str(header.sender), "message": str(header.message_id),
        "created": header.created, "recipients": [str(r.authority) for r in header.recipients],
        "content": _content_json(MessageContent.decode(f.origin.content)), "consents": consents,
    }  # fmt: skip


async def api_status(request: web.Request, _who: Principal) -> web.Response:
    return json_response((await _node(request).status()).to_json())


async def api_inbox(request: web.Request, _who: Principal) -> web.Response:
    limit = _query_int(request, "limit", 50)
    unread = request.query.get("unread") == "1"
    items = await _node(request).inbox(limit=limit, unread=unread)
    return json_response({"messages": [m.to_json() for m in items]})


async def api_outbox(request: web.Request, _who: Principal) -> web.Response:
    limit = _query_int(request, "limit", 50)
    items = await _node(request).outbox(limit=limit)
    return json_response({"messages": [m.to_json() for m in items]})


async def api_delivery(request: web.Request, _who: Principal) -> web.Response:
    return json_response((await _node(request).delivery(request.match_info["id"])).to_json())


async def api_message(request: web.Request, who: Principal) -> web.Response:
    node = _node(request)
    mid = request.match_info["id"]
    direction, content, meta = await node.content_of(mid)
    if direction == "in":
        await node.mark_read(mid, who.name)
    return json_response({"direction": direction, "content": _content_json(content), "meta": meta})


async def api_attachment(request: web.Request, who: Principal) -> web.StreamResponse:
    node = _node(request)
    mid = request.match_info["id"]
    n = int(request.match_info["n"])
    _, content, _ = await node.content_of(mid)
    if not 1 <= n <= len(content.attachments):
        raise NotFound(f"message {mid} has no attachment {n}")
    att = content.attachments[n - 1]
    # Audited before the first byte leaves; decrypted as it streams, never to a file.
    await request.app[AUDIT_KEY].append(node.now(), who.name, "export", f"{mid} attachment {n}")
    resp = web.StreamResponse(
        headers={
            "Content-Type": att.media_type,
            "Content-Length": str(att.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(att.name, safe='')}",
        }
    )
    await resp.prepare(request)
    async for chunk in node.attachment_chunks(mid, n - 1):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def api_send(request: web.Request, who: Principal) -> web.Response:
    node = _node(request)
    body = await _body(request)
    kind = body.enum(Kind, "kind", default="information")
    if kind not in (Kind.INFORMATION, Kind.REQUEST, Kind.BULLETIN):
        raise UsageError("send starts an information, request or bulletin; use reply for others")
    restrictions = body.get("restrictions") or []
    if not isinstance(restrictions, list):
        raise UsageError("'restrictions' is a list")
    handling = Handling(
        body.enum(Tlp, "tlp", default="AMBER"),
        frozenset(_enum_value(Restriction, r, "restrictions") for r in restrictions),
    )
    content = MessageContent(
        kind=kind,
        subject=body.string("subject"),
        body=body.string("body"),
        language=body.string("language", default="en"),
        urgency=body.enum(Urgency, "urgency", default="routine"),
        handling=handling,
        case=body.opt_string("case"),
        deadline=body.opt_int("deadline"),
    )
    to = body.authorities("to")
    uploads = body.uploads()
    body.done()
    if content.deadline is not None and content.deadline <= node.now():
        raise UsageError("'deadline' is in the past")
    mid = await node.send(to, content, user=who.name, uploads=uploads)
    return _created({"id": str(mid)})


async def api_reply(request: web.Request, who: Principal) -> web.Response:
    body = await _body(request)
    kind = body.enum(Kind, "kind", default="answer")
    if kind not in (Kind.ANSWER, Kind.INFORMATION):
        raise UsageError("a reply is an answer or information")
    text, subject, uploads = body.string("body"), body.opt_string("subject"), body.uploads()
    body.done()
    mid = await _node(request).reply(
        request.match_info["id"], kind=kind, body=text, subject=subject, user=who.name,
        uploads=uploads,
    )  # fmt: skip
    return _created({"id": str(mid)})


async def api_status_update(request: web.Request, who: Principal) -> web.Response:
    body = await _body(request)
    state = body.enum(StatusState, "state")
    reason = body.opt_string("reason")
    status = StatusUpdate(state, body.opt_int("expected"), reason)
    text = body.opt_string("body") or f"Status: {state.value}" + (f" ({reason})" if reason else "")
    body.done()
    mid = await _node(request).reply(
        request.match_info["id"], kind=Kind.STATUS, body=text, status=status, user=who.name
    )
    return _created({"id": str(mid)})


async def api_forward(request: web.Request, who: Principal) -> web.Response:
    body = await _body(request)
    to, note = body.authorities("to"), body.opt_string("note") or ""
    body.done()
    mid = await _node(request).forward(request.match_info["id"], to, user=who.name, note=note)
    return _created({"id": str(mid)})


async def api_request_consent(request: web.Request, who: Principal) -> web.Response:
    body = await _body(request)
    to, purpose = body.authorities("to"), body.string("purpose")
    body.done()
    mid = await _node(request).request_consent(request.match_info["id"], to, purpose, user=who.name)
    return _created({"id": str(mid)})


async def api_consent(request: web.Request, who: Principal) -> web.Response:
    node = _node(request)
    body = await _body(request)
    decision = body.enum(ConsentDecision, "decision")
    to_given = body.has("to")
    to = body.authorities("to") if to_given else []
    reason = body.opt_string("reason")
    body.done()
    asked_id = request.match_info["id"]
    _, asked, _ = await node.content_of(asked_id)
    if asked.kind is not Kind.CONSENT_REQUEST or asked.consent is None:
        raise UsageError(f"message {asked_id} is not a consent request")
    names = tuple(sorted(to, key=str)) if to_given else asked.consent.to
    consent = Consent(asked.consent.message, names, None, decision, reason)
    text = f"Consent {decision.value} for message {asked.consent.message}" + (
        f": {reason}" if reason else ""
    )
    mid = await node.reply(
        asked_id, kind=Kind.CONSENT_DECISION, body=text, consent=consent, user=who.name
    )
    return _created({"id": str(mid)})


async def api_retry(request: web.Request, who: Principal) -> web.Response:
    n = await _node(request).retry(request.match_info["id"], who.name)
    return json_response({"queued": n})


# --- uploads ---------------------------------------------------------------------------------


async def api_upload(request: web.Request, who: Principal) -> web.Response:
    """Stage a file's bytes (the body); the answer's ``id`` goes in a message's ``attachments``."""
    if request.content_length is None:
        raise LengthRequired("an upload states its size in Content-Length")
    name = request.query.get("name")
    if not name:
        raise UsageError("name the file: POST /api/uploads?name=FILE&media_type=TYPE")
    media_type = request.query.get("media_type") or "application/octet-stream"
    info = await _node(request).staging.receive(
        request.content.iter_chunked(1 << 20), user=who.name, name=name,
        media_type=media_type, size=request.content_length,
    )  # fmt: skip
    return _created(info.to_json())


async def api_uploads(request: web.Request, who: Principal) -> web.Response:
    staged = await _node(request).staging.staged(who.name)
    return json_response({"uploads": [u.to_json() for u in staged]})


async def api_discard_upload(request: web.Request, who: Principal) -> web.Response:
    await _node(request).staging.discard(who.name, parse_upload_id(request.match_info["id"]))
    return web.Response(status=204)


# --- cases, directory, node ------------------------------------------------------------------


async def api_cases(request: web.Request, _who: Principal) -> web.Response:
    return json_response({"cases": [c.to_json() for c in await _node(request).cases()]})


async def api_case(request: web.Request, _who: Principal) -> web.Response:
    return json_response((await _node(request).case_thread(request.match_info["case"])).to_json())


async def api_stats(request: web.Request, _who: Principal) -> web.Response:
    stats = await _node(request).response_stats()
    return json_response({"counterparts": {k: v.to_json() for k, v in stats.items()}})


async def api_search(request: web.Request, _who: Principal) -> web.Response:
    q = request.query
    results = _node(request).state.search(
        country=q.get("country") or None, kind=q.get("kind") or None,
        language=q.get("language") or None, text=q.get("q") or None,
        include_inactive=q.get("inactive") == "1",
    )  # fmt: skip
    return json_response(
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
                    "fingerprint": m.certificate.fingerprint(),
                }
                for m in results[:200]
            ]
        }
    )


async def api_ping(request: web.Request, _who: Principal) -> web.Response:
    peer = AuthorityId.parse(request.match_info["authority"])
    return json_response(await _node(request).ping(peer))


async def api_rotate(request: web.Request, who: Principal) -> web.Response:
    node = _node(request)
    kid = await node.rotate_prekey()
    await request.app[AUDIT_KEY].append(node.now(), who.name, "rotate-prekey", kid)
    return json_response({"prekey": kid})


async def api_sync(request: web.Request, _who: Principal) -> web.Response:
    added, pulled = await _node(request).sync_now()
    return json_response({"added": added, "pulled": pulled})


async def api_alerts(request: web.Request, _who: Principal) -> web.Response:
    return json_response({"alerts": [a.to_json() for a in await _node(request).alerts()]})


async def api_audit(request: web.Request, _who: Principal) -> web.Response:
    entries, ok = await request.app[AUDIT_KEY].entries()
    return json_response({"entries": entries, "verified": ok})


async def api_add_user(request: web.Request, who: Principal) -> web.Response:
    """Create an operator user.  Message roles are made only on the node, by the CLI."""
    node = _node(request)
    body = await _body(request)
    name, role = body.string("name"), body.enum(Role, "role")
    body.done()
    if not may_create(who.role, role):
        raise Forbidden(
            f"a {who.role.value} may not create a {role.value} user over the API: investigators"
            " and supervisors are added with 'globe-node users add' on the node itself"
        )
    token = await add_user(node.sessions, name, role, now=node.now())
    await request.app[AUDIT_KEY].append(node.now(), who.name, "add-user", f"{name} ({role.value})")
    return _created({"name": name, "role": role.value, "token": token})


#: The permission matrix: every route of the local API, once.
ROUTES: Final[tuple[ApiRoute, ...]] = (
    ApiRoute("GET", "/api/status", Permission.STATUS, api_status),
    ApiRoute("GET", "/api/inbox", Permission.READ, api_inbox),
    ApiRoute("GET", "/api/outbox", Permission.READ, api_outbox),
    ApiRoute("GET", "/api/outbox/{id}", Permission.READ, api_delivery),
    ApiRoute("POST", "/api/messages", Permission.SEND, api_send),
    ApiRoute("GET", "/api/messages/{id}", Permission.READ, api_message),
    ApiRoute("GET", "/api/messages/{id}/attachments/{n:[0-9]{1,3}}", Permission.READ,
             api_attachment),
    ApiRoute("POST", "/api/messages/{id}/reply", Permission.SEND, api_reply),
    ApiRoute("POST", "/api/messages/{id}/status", Permission.SEND, api_status_update),
    ApiRoute("POST", "/api/messages/{id}/forward", Permission.SEND, api_forward),
    ApiRoute("POST", "/api/messages/{id}/request-consent", Permission.SEND, api_request_consent),
    ApiRoute("POST", "/api/messages/{id}/consent", Permission.SEND, api_consent),
    ApiRoute("POST", "/api/messages/{id}/retry", Permission.SEND, api_retry),
    ApiRoute("POST", "/api/uploads", Permission.SEND, api_upload),
    ApiRoute("GET", "/api/uploads", Permission.SEND, api_uploads),
    ApiRoute("DELETE", "/api/uploads/{id}", Permission.SEND, api_discard_upload),
    ApiRoute("GET", "/api/cases", Permission.READ, api_cases),
    ApiRoute("GET", "/api/cases/{case}", Permission.READ, api_case),
    ApiRoute("GET", "/api/stats", Permission.READ, api_stats),
    ApiRoute("GET", "/api/directory/search", Permission.STATUS, api_search),
    ApiRoute("POST", "/api/ping/{authority}", Permission.STATUS, api_ping),
    ApiRoute("POST", "/api/keys/rotate", Permission.OPERATE, api_rotate),
    ApiRoute("POST", "/api/sync", Permission.STATUS, api_sync),
    ApiRoute("GET", "/api/alerts", Permission.STATUS, api_alerts),
    ApiRoute("GET", "/api/audit", Permission.AUDIT, api_audit),
    ApiRoute("POST", "/api/users", Permission.OPERATE, api_add_user),
)  # fmt: skip


def _guarded(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``route.handler`` behind authentication and the role check, in that order."""

    async def handler(request: web.Request) -> web.StreamResponse:
        who = await authenticate(_node(request).sessions, request.headers.get("Authorization"))
        if route.permission not in GRANTS[who.role]:
            raise Forbidden(f"the {who.role.value} role may not do this")
        return await route.handler(request, who)

    handler.__name__ = route.handler.__name__
    return handler


def create_api_app(
    node: Node, audit: AuditLog, *, routes: Sequence[ApiRoute] = ROUTES
) -> web.Application:
    """The local API."""
    app = web.Application(
        middlewares=[problem_middleware(logger=log)], client_max_size=API_MAX_BODY + 1
    )
    app[NODE_KEY] = node
    app[AUDIT_KEY] = audit
    for route in routes:
        app.router.add_route(route.method, route.path, _guarded(route))
    return app

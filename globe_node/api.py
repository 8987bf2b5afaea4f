"""The node's local API: what the CLI and the web UI use (``api_host:api_port``).

Every route is declared once in :data:`ROUTES`: the permission it needs, its
path and query parameters, its body, its answer and its refusals
(:class:`~globe_node.apiparams.ApiRoute`; the inputs are declared in
:mod:`globe_node.apimodels`, the answers in :mod:`globe_node.apiresults`).
:func:`create_api_app` registers each handler behind one guard that
authenticates the bearer token, compares the user's role with the permission
(:mod:`globe_node.roles`), parses the request with the route's declarations and
resolves every message id (a unique prefix is enough) and case reference of the
path against what the user may see (:mod:`globe_node.compartments`: another
team's material is not found): a handler cannot forget the check, reads its
inputs already parsed, and the table is both the permission matrix the tests
walk cell by cell and the source of the OpenAPI document served at
``GET /api/openapi.json`` (:mod:`globe_node.apidoc`).  The routes of the
investigator's work (requests, cases, search, statistics) are declared in
:mod:`globe_node.apiworkroutes` and take their place in the table.

The daemon never opens a path, URL or file its caller names: attachments
arrive as bytes (``POST /api/uploads``) and a message refers to them by
upload id.  Every JSON body goes through the one strict decoder
(PROTOCOL.md §2.8) and only its declared fields are accepted: an unknown field
is refused, never ignored.  Every send, read, forward and export is written to
the hash-chained audit log.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final
from urllib.parse import quote

import orjson
from aiohttp import web

from globe_io.errors import Conflict, RemoteError
from globe_io.web import json_response, problem_middleware
from globe_node import apimodels as m
from globe_node import apiprofile as p
from globe_node import apiresults as r
from globe_node import apiwork as w
from globe_node.apiapp import AUDIT_KEY, NODE_KEY
from globe_node.apidoc import openapi_document
from globe_node.apiparams import ApiRoute, Call, Handler, Param, RawBody, Reply, parse_request
from globe_node.apiworkroutes import WORK_ROUTES, status_update
from globe_node.audit import AuditLog
from globe_node.backup import recorded
from globe_node.bundles import Bundles
from globe_node.errors import (
    AmbiguousId,
    ConsentRequired,
    DirectoryStale,
    Forbidden,
    NotFound,
)
from globe_node.node import Node
from globe_node.queries import MessageFilter
from globe_node.roles import GRANTS, Permission, may_create
from globe_node.uploads import MAX_ATTACHMENT, UploadQuotaExceeded
from globe_node.users import Principal, add_user, authenticate, user_records
from protocol.dirsearch import Query
from protocol.errors import (
    BadSignature,
    ExpiredError,
    GlobeError,
    LogError,
    LogStale,
    MalformedError,
    MemberNotActive,
    NotCertified,
    NotYetValid,
    ReplayError,
    TransportError,
    UnknownMember,
    UsageError,
)
from protocol.messages import Consent, Handling, Kind, MessageContent

__all__ = ["API_MAX_BODY", "MAX_LIMIT", "ROUTES", "ApiRoute", "Handler", "create_api_app"]

log = logging.getLogger("globe.node.api")

#: ``GET /api/openapi.json``: the document of this app's routes, serialized once.
DOCUMENT_KEY: Final = web.AppKey("openapi", bytes)
API_MAX_BODY: Final = m.API_MAX_BODY
MAX_LIMIT: Final = m.MAX_LIMIT

#: What the hub can answer when a route asks it something (its problem types come back).
_HUB: Final[tuple[type[GlobeError], ...]] = (TransportError, RemoteError, MalformedError)
#: What sealing and committing a message can refuse, beyond its declared inputs.
_SENDING: Final[tuple[type[GlobeError], ...]] = (
    DirectoryStale, MemberNotActive, UnknownMember, NotYetValid, ExpiredError, Conflict,
    NotFound, *_HUB,
)  # fmt: skip


def _node(request: web.Request) -> Node:
    return request.app[NODE_KEY]


def _created(data: dict[str, Any]) -> web.Response:
    return json_response(data, status=201)


# --- messages --------------------------------------------------------------------------------


async def api_status(request: web.Request, who: Principal, _call: Call) -> web.Response:
    """The node at a glance: membership, directory, hub, queues, requests and alerts, and
    the reminders addressed to this user."""
    return json_response((await _node(request).status(who)).to_json())


def _wanted(node: Node, call: Call) -> MessageFilter:
    """The filters the inbox and the outbox share, as the request gives them."""
    text = call[w.TEXT_FILTER]
    return MessageFilter(
        counterpart=call[w.COUNTERPART], kind=call[w.MESSAGE_KIND],
        urgency=call[w.URGENCY_FILTER], tlp=call[w.TLP_FILTER], state=call[w.REQUEST_STATE],
        case=call[w.CASE_FILTER], since=call[w.SINCE], until=call[w.UNTIL],
        within=None if text is None else node.searcher.messages(text),
    )  # fmt: skip


async def api_inbox(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Received messages this user sees, newest first, one page of them: by counterpart,
    kind, urgency, handling code, request state, case, time and text (reading the list
    marks nothing read)."""
    node = _node(request)
    want = dataclasses.replace(_wanted(node, call), unread=call[m.UNREAD])
    page = await node.queries.inbox_page(who, want, limit=call[m.LIMIT], after=call[w.CURSOR])
    return json_response(page.to_json())


async def api_outbox(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Sent messages this user sees, newest first, one page of them, with their subject,
    urgency and handling code and each recipient's delivery state: by counterpart, kind,
    urgency, handling code, request state, delivery state, case, time and text."""
    node = _node(request)
    want = dataclasses.replace(_wanted(node, call), delivery=call[w.DELIVERY_FILTER])
    page = await node.queries.outbox_page(who, want, limit=call[m.LIMIT], after=call[w.CURSOR])
    return json_response(page.to_json())


async def api_delivery(request: web.Request, _who: Principal, call: Call) -> web.Response:
    """One sent message's delivery: each recipient's state and the attachment upload."""
    return json_response((await _node(request).delivery(call[m.MESSAGE])).to_json())


async def api_message(request: web.Request, who: Principal, call: Call) -> web.Response:
    """A stored message, received or sent.

    Opening a received message marks it read by this user, in the audit log.
    """
    node = _node(request)
    mid = call[m.MESSAGE]
    held = await node.content_of(mid)
    if held.direction == "in":
        await node.mark_read(mid, who.name)
    requests = await node.worklists.of_message(mid)
    return json_response(
        {"direction": held.direction, "content": r.content_json(held.content),
         "meta": held.meta.to_json(), "case": held.place.case,
         "requests": [x.to_json() for x in requests]}
    )  # fmt: skip


async def api_attachment(request: web.Request, who: Principal, call: Call) -> web.StreamResponse:
    """An attachment's bytes, decrypted as they stream (audited as an export first)."""
    node = _node(request)
    mid, n = call[m.MESSAGE], int(call[m.NUMBER])
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


async def api_send(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Send a new message: information, a request or a bulletin.

    The message is sealed and committed to the outbox (with its audit row)
    before the answer; delivery, directly or through the hub, follows.
    """
    node = _node(request)
    content = MessageContent(
        kind=call[m.SEND_KIND], subject=call[m.SUBJECT], body=call[m.BODY],
        language=call[m.LANGUAGE], urgency=call[m.URGENCY],
        handling=Handling(call[m.TLP], call[m.RESTRICTIONS]), case=call[m.CASE],
        deadline=call[m.DEADLINE],
    )  # fmt: skip
    if content.deadline is not None and content.deadline <= node.now():
        raise UsageError("'deadline' is in the past")
    mid = await node.send(
        call[m.TO], content, user=who.name, uploads=call[m.ATTACHMENTS], who=who,
        team=call[m.SEND_TEAM],
    )  # fmt: skip
    return _created({"id": str(mid)})


async def api_reply(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Reply to the sender of a received message (an answer moves its request)."""
    mid = await _node(request).reply(
        call[m.MESSAGE], kind=call[m.REPLY_KIND], body=call[m.REPLY_BODY],
        subject=call[m.REPLY_SUBJECT], user=who.name, uploads=call[m.ATTACHMENTS],
    )  # fmt: skip
    return _created({"id": str(mid)})


async def api_forward(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Forward a held message with its proof of origin and attachments.

    Restricted material (TLP:AMBER and above, or `no-onward-dissemination`) needs
    its originator's consent for every new recipient: refused (403
    `consent-required`, audited) without it.
    """
    mid = await _node(request).forward(
        call[m.MESSAGE], call[m.TO], user=who.name, note=call[m.NOTE] or ""
    )
    return _created({"id": str(mid)})


async def api_request_consent(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Ask the originator of a held message to consent to its onward use."""
    mid = await _node(request).request_consent(
        call[m.MESSAGE], call[m.CONSENT_TO], call[m.PURPOSE], user=who.name
    )
    return _created({"id": str(mid)})


async def api_consent(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Answer a consent request this node received about a message it originated."""
    node = _node(request)
    decision, to, reason = call[m.DECISION], call[m.GRANTED_TO], call[m.DECISION_REASON]
    asked_id = call[m.MESSAGE]
    _, asked, _ = await node.content_of(asked_id)
    if asked.kind is not Kind.CONSENT_REQUEST or asked.consent is None:
        raise UsageError(f"message {asked_id} is not a consent request")
    names = tuple(sorted(to, key=str)) if to is not None else asked.consent.to
    consent = Consent(asked.consent.message, names, None, decision, reason)
    text = f"Consent {decision.value} for message {asked.consent.message}" + (
        f": {reason}" if reason else ""
    )
    mid = await node.reply(
        asked_id, kind=Kind.CONSENT_DECISION, body=text, consent=consent, user=who.name
    )
    return _created({"id": str(mid)})


async def api_consents(request: web.Request, who: Principal, call: Call) -> web.Response:
    """The consent about a held message's onward use: its originator, whether forwarding it
    to anyone the originator did not name or grant needs the originator's consent, the
    consent requests this node sent about it with their answers, and, for a consent
    request this node received, the answers it gave."""
    return json_response((await _node(request).workflow.consents(call[m.MESSAGE], who)).to_json())


async def api_retry(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Queue a sent message's failed or waiting deliveries for another attempt, now."""
    return json_response({"queued": await _node(request).retry(call[m.MESSAGE], who.name)})


# --- uploads ---------------------------------------------------------------------------------


async def api_upload(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Stage a file's bytes; the answer's `id` goes in a message's `attachments`.

    The bytes are encrypted into the node's spool as they arrive; the upload
    belongs to this user and is erased if no message takes it in time.
    """
    media_type = call[m.MEDIA] or "application/octet-stream"
    info = await _node(request).staging.receive(
        request.content.iter_chunked(1 << 20), user=who.name, name=call[m.UPLOAD_NAME],
        media_type=media_type, size=request.content_length or 0,
    )  # fmt: skip
    return _created(info.to_json())


async def api_uploads(request: web.Request, who: Principal, _call: Call) -> web.Response:
    """This user's staged uploads, oldest first."""
    staged = await _node(request).staging.staged(who.name)
    return json_response({"uploads": [u.to_json() for u in staged]})


async def api_discard_upload(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Erase one of this user's staged uploads."""
    await _node(request).staging.discard(who.name, call[m.UPLOAD])
    return web.Response(status=204)


# --- evidence bundles (PROTOCOL.md §9.3) -----------------------------------------------------


async def api_bundle(request: web.Request, who: Principal, call: Call) -> web.StreamResponse:
    """The case's evidence bundle (or one exchange's: `message` and its replies), a ZIP file
    that `globe-verify` checks offline.  Gathered, checked with the verifier's own code and
    audited before a byte is sent; restricted material of another authority needs its
    consent to the export (403 `consent-required`, audited)."""
    node = _node(request)
    message = call[m.BUNDLE_MESSAGE]
    if message is not None:
        message = await node.resolve_message(message, who)
    bundles = Bundles(ctx=node.ctx, directory=node.directory, audit=request.app[AUDIT_KEY])
    export = await bundles.export(
        call[m.CASE_REF], message=message, included=call[m.BUNDLE_ATTACHMENTS] != "digests",
        user=who.name,
    )  # fmt: skip
    disposition = f"attachment; filename*=UTF-8''{quote(export.filename, safe='')}"
    resp = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Length": str(export.size),
            "Content-Disposition": disposition,
        }
    )
    await resp.prepare(request)
    async for chunk in bundles.stream(export):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


# --- cases, directory, node ------------------------------------------------------------------


async def api_search(request: web.Request, _who: Principal, call: Call) -> web.Response:
    """Members of the verified directory matching every filter given, best first, each with
    the reasons it matched (never asks the hub)."""
    hits = _node(request).directory.search(
        Query(
            country=call[m.COUNTRY], text=call[m.TEXT], kind=call[m.KIND],
            offence=call[m.OFFENCE], language=call[m.SEARCH_LANGUAGE],
            include_inactive=call[m.INACTIVE],
        )
    )  # fmt: skip
    results = [r.member_json(h.member, h.reasons) for h in hits[: m.SEARCH_MAX]]
    return json_response({"results": results})


def _own_profile(node: Node) -> dict[str, Any]:
    current = node.directory.profile()
    shown = None if current is None else p.profile_json(*current)
    return {"authority": str(node.me), "profile": shown}


async def api_profile(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """This node's profile as its verified directory has it."""
    return json_response(_own_profile(_node(request)))


async def api_publish_profile(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Publish this node's whole profile: signed with the identity key, appended to the
    membership log by the hub, verified back from the log (audited)."""
    node = _node(request)
    profile = await node.directory.publish_profile(
        offences=call[p.OFFENCES], time_zone=call[p.TIME_ZONE], contacts=call[p.CONTACTS],
        note=call[p.NOTE],
    )  # fmt: skip
    await request.app[AUDIT_KEY].append(node.now(), who.name, "publish-profile", str(profile.seq))
    return json_response(_own_profile(node))


async def api_ping(request: web.Request, _who: Principal, call: Call) -> web.Response:
    """Try the direct path to a member and the path to the hub."""
    return json_response(await _node(request).ping(call[m.AUTHORITY]))


async def api_rotate(request: web.Request, who: Principal, _call: Call) -> web.Response:
    """Make, store and publish a new signed prekey now."""
    node = _node(request)
    kid = await node.rotate_prekey()
    await request.app[AUDIT_KEY].append(node.now(), who.name, "rotate-prekey", kid)
    return json_response({"prekey": kid})


async def api_sync(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """Sync the directory from the hub, then pull the mailbox."""
    added, pulled = await _node(request).sync_now()
    return json_response({"added": added, "pulled": pulled})


async def api_alerts(request: web.Request, who: Principal, _call: Call) -> web.Response:
    """What this user must see, newest first: the node's alerts, and the reminders of the
    requests it sees that are addressed to it (the evidence stays in the database)."""
    alerts = await _node(request).alerts(who)
    return json_response({"alerts": [a.to_json() for a in alerts]})


async def api_keys(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """This node's public key information (nothing secret).

    Its authority fingerprint, the key ids of its identity, transport and key-agreement
    keys and whether its verified log certifies them, the current signed prekey (its id,
    whether the hub holds it, until when it is valid), and a pending key update (the next
    keys' fingerprint and ids, and whether the log certifies them yet).
    """
    return json_response((await _node(request).rotation.view()).to_json())


async def api_backups(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """The backups `globe-node backup` recorded, and whether the newest is too old.

    The last ones, newest first (time, archive file name, size, SHA-256, authority), the
    newest one's age, and whether it is older than `stale_after_s` (none recorded is too
    old too).
    """
    node = _node(request)
    return json_response((await recorded(node.ctx.store, node.now())).to_json())


async def api_accounts(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """The node's users as operators review them, by name.

    Role, teams, created, last use (to the minute) and whether a web UI password is set;
    never a token or a password's hash.
    """
    accounts = await user_records(_node(request).sessions)
    return json_response({"users": [a.to_json() for a in accounts]})


async def api_audit(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """The audit log's newest entries, and whether its hash chain verifies."""
    entries, ok = await request.app[AUDIT_KEY].entries()
    return json_response({"entries": entries, "verified": ok})


async def api_add_user(request: web.Request, who: Principal, call: Call) -> web.Response:
    """Create an operator user; its token is in the answer, once."""
    node = _node(request)
    name, role = call[m.USER], call[m.ROLE]
    if not may_create(who.role, role):
        raise Forbidden(
            f"a {who.role.value} may not create a {role.value} user over the API: investigators"
            " and supervisors are added with 'globe-node users add' on the node itself"
        )
    token = await add_user(node.sessions, name, role, now=node.now())
    await request.app[AUDIT_KEY].append(node.now(), who.name, "add-user", f"{name} ({role.value})")
    return _created({"name": name, "role": role.value, "token": token})


async def api_openapi(request: web.Request, _who: Principal, _call: Call) -> web.Response:
    """This document: the OpenAPI 3.1 description of the local API."""
    return web.Response(body=request.app[DOCUMENT_KEY], content_type="application/json")


# --- the table -------------------------------------------------------------------------------

#: A message this node sent: what may be done with any of them.
_SENT: Final = {
    "message": api_message, "delivery": api_delivery, "retry": api_retry,
    "forward": api_forward,
}  # fmt: skip
_ID: Final = Reply(
    201, "Committed to the outbox; delivery follows.", r.MESSAGE_CREATED, links=_SENT
)
_UPLOAD_BODY: Final = RawBody(
    f"The file's bytes (0 to {MAX_ATTACHMENT}), with a `Content-Length` (never chunked).",
    MAX_ATTACHMENT, "an upload",
)  # fmt: skip
_BYTES: Final = Reply(
    200,
    "The attachment's bytes, with its own media type.",
    media_type="*/*",
    headers={
        "Content-Disposition": {"type": "string", "pattern": "^attachment; filename\\*=UTF-8''"},
        "Content-Length": {"type": "string", "pattern": "^[0-9]+$"},
    },
)
_MSG: Final = (m.MESSAGE,)

_BUNDLE: Final = Reply(
    200,
    "The evidence bundle: a ZIP file (PROTOCOL.md §9.3) to verify with `globe-verify`.",
    media_type="application/zip",
    headers={
        "Content-Disposition": {"type": "string", "pattern": "^attachment; filename\\*=UTF-8''"},
        "Content-Length": {"type": "string", "pattern": "^[0-9]+$"},
    },
)
#: The permission matrix and the API's description: every route of the local API, once.
ROUTES: Final[tuple[ApiRoute, ...]] = (
    ApiRoute("GET", "/api/status", Permission.STATUS, api_status,
             Reply(200, "The status.", r.NODE_STATUS)),
    ApiRoute("GET", "/api/inbox", Permission.READ, api_inbox,
             Reply(200, "One page of received messages.", r.INBOX), query=w.INBOX_QUERY),
    ApiRoute("GET", "/api/outbox", Permission.READ, api_outbox,
             Reply(200, "One page of sent messages.", r.OUTBOX), query=w.OUTBOX_QUERY),
    ApiRoute("GET", "/api/outbox/{id}", Permission.READ, api_delivery,
             Reply(200, "The delivery.", r.DELIVERY), path_params=_MSG),
    ApiRoute("POST", "/api/messages", Permission.SEND, api_send, _ID, body=m.NEW_MESSAGE,
             refusals=_SENDING),
    ApiRoute("GET", "/api/messages/{id}", Permission.READ, api_message,
             Reply(200, "The message.", r.MESSAGE), path_params=_MSG),
    ApiRoute("GET", f"/api/messages/{{id}}/attachments/{{n:{m.ATTACHMENT_NUMBER}}}",
             Permission.READ, api_attachment, _BYTES, path_params=(m.MESSAGE, m.NUMBER)),
    ApiRoute("POST", "/api/messages/{id}/reply", Permission.SEND, api_reply, _ID,
             path_params=_MSG, body=m.REPLY, refusals=_SENDING),
    ApiRoute("POST", "/api/messages/{id}/status", Permission.SEND, status_update, _ID,
             path_params=_MSG, body=m.NEW_STATUS, refusals=_SENDING),
    ApiRoute("POST", "/api/messages/{id}/forward", Permission.SEND, api_forward, _ID,
             path_params=_MSG, body=m.FORWARD, refusals=(*_SENDING, ConsentRequired)),
    ApiRoute("POST", "/api/messages/{id}/request-consent", Permission.SEND,
             api_request_consent, _ID, path_params=_MSG, body=m.ASK_CONSENT,
             refusals=_SENDING),
    ApiRoute("POST", "/api/messages/{id}/consent", Permission.SEND, api_consent, _ID,
             path_params=_MSG, body=m.DECIDE, refusals=_SENDING),
    ApiRoute("GET", "/api/messages/{id}/consents", Permission.READ, api_consents,
             Reply(200, "What stands of the consent.", r.CONSENTS), path_params=_MSG,
             refusals=(Conflict, MalformedError, BadSignature, UnknownMember)),
    ApiRoute("POST", "/api/messages/{id}/retry", Permission.SEND, api_retry,
             Reply(200, "Queued again.", r.QUEUED), path_params=_MSG, body=m.NOTHING),
    ApiRoute("POST", "/api/uploads", Permission.SEND, api_upload,
             Reply(201, "Staged.", r.UPLOAD), query=(m.UPLOAD_NAME, m.MEDIA),
             body=_UPLOAD_BODY, refusals=(UploadQuotaExceeded, MalformedError)),
    ApiRoute("GET", "/api/uploads", Permission.SEND, api_uploads,
             Reply(200, "The staged uploads.", r.UPLOADS)),
    ApiRoute("DELETE", "/api/uploads/{id}", Permission.SEND, api_discard_upload,
             Reply(204, "Erased."), path_params=(m.UPLOAD,)),
    *WORK_ROUTES,
    ApiRoute("GET", "/api/cases/{case}/bundle", Permission.READ, api_bundle, _BUNDLE,
             path_params=(m.CASE_REF,), query=(m.BUNDLE_MESSAGE, m.BUNDLE_ATTACHMENTS),
             refusals=(ConsentRequired, Conflict, LogStale, LogError, MalformedError,
                       AmbiguousId)),
    ApiRoute("GET", "/api/directory/search", Permission.STATUS, api_search,
             Reply(200, "The matches.", r.SEARCH), query=m.SEARCH_QUERY),
    ApiRoute("GET", "/api/profile", Permission.STATUS, api_profile,
             Reply(200, "This node's profile.", p.PROFILE_VIEW)),
    ApiRoute("PUT", "/api/profile", Permission.OPERATE, api_publish_profile,
             Reply(200, "Published and verified from the log.", p.PROFILE_VIEW),
             body=p.PROFILE_BODY,
             refusals=(*_HUB, MemberNotActive, NotCertified, ReplayError, ExpiredError,
                       NotYetValid, Conflict, LogError)),
    ApiRoute("POST", "/api/ping/{authority}", Permission.STATUS, api_ping,
             Reply(200, "Both paths, tried.", r.PING), path_params=(m.AUTHORITY,),
             body=m.NOTHING, refusals=(UnknownMember,)),
    # Operators' (not the status every role holds): running the node, nothing an
    # investigator acts on; the certified fingerprint is in the directory for everyone.
    ApiRoute("GET", "/api/keys", Permission.OPERATE, api_keys,
             Reply(200, "The node's public keys.", r.KEYS)),
    ApiRoute("POST", "/api/keys/rotate", Permission.OPERATE, api_rotate,
             Reply(200, "Published.", r.PREKEY), body=m.NOTHING,
             refusals=(*_HUB, Conflict, MemberNotActive)),
    ApiRoute("POST", "/api/sync", Permission.STATUS, api_sync,
             Reply(200, "Synced.", r.SYNCED), body=m.NOTHING, refusals=(*_HUB, LogError)),
    ApiRoute("GET", "/api/alerts", Permission.STATUS, api_alerts,
             Reply(200, "The alerts.", r.ALERTS)),
    ApiRoute("GET", "/api/audit", Permission.AUDIT, api_audit,
             Reply(200, "The audit log.", r.AUDIT)),
    ApiRoute("POST", "/api/users", Permission.OPERATE, api_add_user,
             Reply(201, "Created.", r.USER_CREATED), body=m.NEW_USER,
             refusals=(Forbidden, Conflict)),
    # Apart from GET /api/users (colleagues' names and teams, to assign cases): the last
    # use and the password flag are for those who run the node, not for every colleague.
    ApiRoute("GET", "/api/accounts", Permission.OPERATE, api_accounts,
             Reply(200, "The users.", r.ACCOUNTS)),
    ApiRoute("GET", "/api/backups", Permission.OPERATE, api_backups,
             Reply(200, "The backups recorded.", r.BACKUPS)),
    # Any user may read the document (STATUS is every role's): it names no case material.
    ApiRoute("GET", "/api/openapi.json", Permission.STATUS, api_openapi,
             Reply(200, "The document.", r.OPENAPI)),
)  # fmt: skip


def _guarded(route: ApiRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``route.handler`` behind authentication, the role check and the route's parser."""

    async def handler(request: web.Request) -> web.StreamResponse:
        node = _node(request)
        who = await authenticate(
            node.store,
            request.headers.get("Authorization"),
            intake=node.config.intake_team,
            now=node.now(),
        )
        if route.permission not in GRANTS[who.role]:
            raise Forbidden(f"the {who.role.value} role may not do this")
        call = await parse_request(route, request)
        return await route.handler(request, who, await _resolved(node, route, call, who))

    handler.__name__ = route.handler.__name__
    return handler


async def _resolved(node: Node, route: ApiRoute, call: Call, who: Principal) -> Call:
    """``call`` with each message id of the path resolved (a unique prefix is enough) and
    each message and case checked against what ``who`` sees: the one place where an id in
    a path meets the compartments (anything else is not found)."""
    values: dict[Param[Any], object] = {}
    for param in route.path_params:
        if param is m.MESSAGE:
            values[param] = await node.resolve_message(call[param], who)
        elif param is m.CASE_REF:
            await node.cases.require_visible(call[param], who)
    return call.with_values(values) if values else call


def create_api_app(
    node: Node, audit: AuditLog, *, routes: Sequence[ApiRoute] = ROUTES
) -> web.Application:
    """The local API, serving ``routes`` and their document."""
    app = web.Application(
        middlewares=[problem_middleware(logger=log)], client_max_size=API_MAX_BODY + 1
    )
    app[NODE_KEY] = node
    app[AUDIT_KEY] = audit
    app[DOCUMENT_KEY] = orjson.dumps(openapi_document(routes))
    for route in routes:
        app.router.add_route(route.method, route.path, _guarded(route))
    return app

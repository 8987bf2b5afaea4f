"""What each route of the local API answers: the schema of every result, declared once.

Results that are typed views (:mod:`globe_node.views` and their kin) get a
schema derived from the dataclass's fields (:func:`~globe_node.apischema.view_schema`),
with the enumerations their strings hold; results the API builds itself
(message content, directory members) get their schema beside the function that
builds them.  ``tests/node/test_api_openapi.py`` validates ``to_json`` output and
live answers against these, so a field added to a view without its schema, or the
other way round, fails a test.
"""

from __future__ import annotations

from typing import Any, Final

from globe_node.alerts import AlertView
from globe_node.apimodels import AUTHORITY_ID, MAX_LIMIT, MESSAGE_ID, SEARCH_MAX, UPLOAD_ID
from globe_node.apiprofile import MATCH_REASON, PROFILE, profile_json, reason_json
from globe_node.apischema import (
    Component,
    JsonObject,
    anchored,
    closed_object,
    enum_of,
    nullable,
    view_schema,
)
from globe_node.apiwork import REQUEST, CursorQuery
from globe_node.backup import KEEP, BackupRecord, BackupsView
from globe_node.peerheads import Behind
from globe_node.roles import Role
from globe_node.states import Delivery
from globe_node.uploads import UploadInfo
from globe_node.users import UserInfo
from globe_node.views import (
    DeliveryView,
    InboxItem,
    InMeta,
    KeysView,
    KeyUpdateState,
    KeyUpdateView,
    OutboxItem,
    OutMeta,
    PrekeyView,
    RecipientState,
)
from globe_node.workviews import (
    ConsentAnswer,
    ConsentAsked,
    ConsentView,
    InboxPage,
    OutboxPage,
)
from protocol.directory import HeadRelation, Member, MemberStatus
from protocol.dirsearch import Reason
from protocol.envelope import decode_header
from protocol.ids import ISO_COUNTRIES, KEY_ALG_ED25519, KEY_ALG_KEM
from protocol.messages import (
    ConsentDecision,
    Forwarded,
    Kind,
    MessageContent,
    Restriction,
    StatusState,
    Tlp,
    Urgency,
)

__all__ = [
    "ACCOUNT", "ACCOUNTS", "ALERT", "ALERTS", "AUDIT", "BACKUP", "BACKUPS", "CONSENT", "CONSENTS",
    "CONTENT", "DELIVERY", "FORWARDED", "INBOX", "INBOX_ITEM", "IN_META", "KEYS", "KEY_UPDATE",
    "MEMBER", "MESSAGE", "MESSAGE_CREATED", "NODE_STATUS", "OPENAPI", "OUTBOX", "OUTBOX_ITEM",
    "OUT_META", "PING", "PREKEY", "QUEUED", "RECIPIENT_STATE", "SEARCH", "SIGNED_PREKEY",
    "STATUS_UPDATE", "SYNCED", "UPLOAD", "UPLOADS", "USER_CREATED", "content_json",
    "member_json",
]  # fmt: skip

_ENUMS: Final[dict[str, JsonObject]] = {
    "kind": enum_of(Kind),
    "urgency": enum_of(Urgency),
    "tlp": enum_of(Tlp),
    "direction": enum_of(["in", "out"]),
}

MESSAGE_CREATED = Component(
    "MessageCreated",
    lambda: closed_object("The message is committed; delivery follows.", {"id": MESSAGE_ID}),
)
RECIPIENT_STATE = Component(
    "RecipientState",
    lambda: view_schema(RecipientState, props={"state": enum_of(Delivery)}),
)
_RECIPIENTS: Final[dict[type, Component]] = {RecipientState: RECIPIENT_STATE}
INBOX_ITEM = Component(
    "InboxItem",
    lambda: view_schema(
        InboxItem, rename={"sender": "from"},
        props={k: _ENUMS[k] for k in ("kind", "urgency", "tlp")},
    ),
)  # fmt: skip
OUTBOX_ITEM = Component(
    "OutboxItem",
    lambda: view_schema(
        OutboxItem, props={k: _ENUMS[k] for k in ("kind", "urgency", "tlp")}, refs=_RECIPIENTS
    ),
)


def _page(cls: type, item: Component) -> JsonObject:
    """A page of the inbox or the outbox: its messages, and the cursor of the next page."""
    return view_schema(
        cls,
        props={
            "messages": {"type": "array", "items": item, "maxItems": MAX_LIMIT},
            "next": nullable({"type": "string", "pattern": anchored(CursorQuery.pattern),
                              "description": "The `cursor` of the next page; null: no more."}),
        },
    )  # fmt: skip


INBOX = Component("Inbox", lambda: _page(InboxPage, INBOX_ITEM))
OUTBOX = Component("Outbox", lambda: _page(OutboxPage, OUTBOX_ITEM))
DELIVERY = Component(
    "Delivery",
    lambda: view_schema(
        DeliveryView,
        refs=_RECIPIENTS,
        props={
            "upload": nullable(
                closed_object(
                    "Attachment bytes sent to the hub so far, while the upload runs.",
                    {"done": {"type": "integer"}, "total": {"type": "integer"}},
                )
            )
        },
    ),
)
IN_META = Component(
    "InMeta",
    lambda: view_schema(InMeta, props={"head_relation": enum_of(HeadRelation)}),
)  # fmt: skip
OUT_META = Component("OutMeta", lambda: view_schema(OutMeta, refs=_RECIPIENTS))
STATUS_UPDATE = Component(
    "StatusUpdate",
    lambda: closed_object(
        "A request's new workflow state (PROTOCOL.md §8.2.1).",
        {
            "state": enum_of(StatusState),
            "expected": {"type": "integer", "description": "Expected answer time (Unix)."},
            "deadline": {"type": "integer", "description": "An extension's new deadline."},
            "reason": {"type": "string"},
        },
        optional=("expected", "deadline", "reason"),
    ),
)
CONSENT = Component(
    "Consent",
    lambda: closed_object(
        "A consent request, or the originator's decision on one (PROTOCOL.md §8.5).",
        {
            "message": MESSAGE_ID,
            "to": {"type": "array", "items": AUTHORITY_ID},
            "purpose": {"type": "string"},
            "decision": enum_of(ConsentDecision),
            "reason": {"type": "string"},
        },
        optional=("purpose", "decision", "reason"),
    ),
)
FORWARDED = Component(
    "Forwarded",
    lambda: closed_object(
        "Who originated a forwarded message and what it said (verified when it arrived).",
        {
            "originator": AUTHORITY_ID,
            "message": MESSAGE_ID,
            "created": {"type": "integer"},
            "recipients": {"type": "array", "items": AUTHORITY_ID},
            "content": CONTENT,
            "consents": {
                "type": "array",
                "items": closed_object(
                    "A consent decision the forward carries.",
                    {"from": AUTHORITY_ID, "to": {"type": "array", "items": AUTHORITY_ID}},
                ),
            },
        },
    ),
)
CONTENT: Component = Component(
    "MessageContent",
    lambda: closed_object(
        "A message's content as its sender wrote it (PROTOCOL.md §8).",
        {
            **{k: _ENUMS[k] for k in ("kind", "urgency", "tlp")},
            "subject": {"type": "string"},
            "body": {"type": "string"},
            "language": {"type": "string"},
            "restrictions": {"type": "array", "items": enum_of(Restriction)},
            "case": nullable({"type": "string"}),
            "in_reply_to": nullable(MESSAGE_ID),
            "deadline": nullable({"type": "integer"}),
            "attachments": {
                "type": "array",
                "items": closed_object(
                    "An attachment: fetch it with `GET .../attachments/{n}` (from 1).",
                    {
                        "name": {"type": "string"},
                        "size": {"type": "integer"},
                        "media_type": {"type": "string"},
                        "sha256": {
                            "type": "string",
                            "pattern": "^[0-9a-f]{64}$",
                            "description": "SHA-256 of the file as its sender attached it, "
                            "64 lower-case hex digits (as `sha256sum` prints it).",
                        },
                    },
                ),
            },
            "status": nullable(STATUS_UPDATE),
            "consent": nullable(CONSENT),
            "forwarded": nullable(FORWARDED),
        },
    ),
)
MESSAGE = Component(
    "Message",
    lambda: closed_object(
        "A stored message: received (`in`) or sent (`out`), its content, what the node "
        "knows of it, and for a request its workflow rows (one per counterpart: state, "
        "deadline, expected answer date).",
        {"direction": _ENUMS["direction"], "content": CONTENT,
         "meta": {"oneOf": [IN_META, OUT_META]}, "case": nullable({"type": "string"}),
         "requests": {"type": "array", "items": REQUEST}},
    ),
)  # fmt: skip


_AUTHORITIES: Final = {"type": "array", "items": AUTHORITY_ID}
CONSENT_ANSWER = Component(
    "ConsentDecision",
    lambda: view_schema(
        ConsentAnswer,
        props={"id": MESSAGE_ID, "decision": enum_of(ConsentDecision), "to": _AUTHORITIES},
    ),
)
CONSENT_ASKED = Component(
    "ConsentAsked",
    lambda: view_schema(
        ConsentAsked, props={"id": MESSAGE_ID, "to": _AUTHORITIES},
        refs={ConsentAnswer: CONSENT_ANSWER},
    ),
)  # fmt: skip
CONSENTS = Component(
    "Consents",
    lambda: view_schema(
        ConsentView,
        props={"message": MESSAGE_ID, "originator": AUTHORITY_ID, "origin": MESSAGE_ID,
               "allowed": _AUTHORITIES},
        refs={ConsentAsked: CONSENT_ASKED, ConsentAnswer: CONSENT_ANSWER},
    ),
)  # fmt: skip


def content_json(c: MessageContent) -> dict[str, Any]:
    """A message's content as the local API shows it (:data:`CONTENT`)."""
    return {
        "kind": c.kind.value, "subject": c.subject, "body": c.body, "language": c.language,
        "urgency": c.urgency.value, "tlp": c.handling.tlp.value,
        "restrictions": sorted(r.value for r in c.handling.restrictions), "case": c.case,
        "in_reply_to": str(c.in_reply_to) if c.in_reply_to else None, "deadline": c.deadline,
        "attachments": [
            {"name": a.name, "size": a.size, "media_type": a.media_type,
             "sha256": a.sha256.hex()}
            for a in c.attachments
        ],
        "status": c.status.to_json() if c.status else None,
        "consent": c.consent.to_json() if c.consent else None,
        "forwarded": _forwarded_json(c.forwarded) if c.forwarded else None,
    }  # fmt: skip


def _forwarded_json(f: Forwarded) -> dict[str, Any]:
    """:data:`FORWARDED`."""
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
        "content": content_json(MessageContent.decode(f.origin.content)), "consents": consents,
    }  # fmt: skip


QUEUED = Component(
    "Queued",
    lambda: closed_object(
        "Deliveries queued for another attempt.",
        {"queued": {"type": "integer", "minimum": 0}},
    ),
)
UPLOAD = Component(
    "Upload",
    lambda: view_schema(
        UploadInfo,
        props={
            "id": UPLOAD_ID,
            "sha256": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$",
                       "description": "SHA-256 of the bytes, unpadded base64url."},
        },
    ),
)  # fmt: skip
UPLOADS = Component(
    "Uploads",
    lambda: closed_object(
        "The user's staged uploads, oldest first.",
        {"uploads": {"type": "array", "items": UPLOAD}},
    ),
)
#: An authority fingerprint (PROTOCOL.md §3.4): twelve groups of five digits.
_FINGERPRINT: Final = {"type": "string", "pattern": "^[0-9]{5}( [0-9]{5}){11}$"}
MEMBER = Component(
    "Member",
    lambda: closed_object(
        "A member of the verified directory.",
        {
            "authority": AUTHORITY_ID,
            "name": {"type": "string"},
            "country": {"type": "string", "enum": sorted(ISO_COUNTRIES)},
            "kinds": {"type": "array", "items": {"type": "string"}},
            "languages": {"type": "array", "items": {"type": "string"}},
            "status": enum_of(MemberStatus),
            "endpoint": nullable({"type": "string"}),
            "fingerprint": _FINGERPRINT,
            "profile": nullable(PROFILE),
            "reasons": {"type": "array", "items": MATCH_REASON},
        },
    ),
)
SEARCH = Component(
    "SearchResults",
    lambda: closed_object(
        f"Members matching every filter, best first (at most {SEARCH_MAX}): ranked by "
        "`country`, then `q`, then by authority id.",
        {"results": {"type": "array", "items": MEMBER, "maxItems": SEARCH_MAX}},
    ),
)


def member_json(m: Member, reasons: tuple[Reason, ...] = ()) -> dict[str, Any]:
    """A directory member as the local API shows it (:data:`MEMBER`), with why it matched."""
    return {
        "authority": str(m.authority), "name": m.certificate.name,
        "country": m.authority.country, "kinds": list(m.certificate.kinds),
        "languages": list(m.certificate.languages), "status": m.status.value,
        "endpoint": m.certificate.endpoint, "fingerprint": m.certificate.fingerprint(),
        "profile": None if m.profile is None else profile_json(m.profile, m.profile_time),
        "reasons": [reason_json(r) for r in reasons],
    }  # fmt: skip


_MS: Final = nullable({"type": "number", "minimum": 0, "description": "Round trip, ms."})
PING = Component(
    "Ping",
    lambda: closed_object(
        "The direct path to the member and the path to the hub, each tried once.",
        {
            "authority": AUTHORITY_ID,
            "direct": closed_object(
                "A signed ping to the member's certified endpoint.",
                {"ok": {"type": "boolean"}, "ms": _MS, "error": nullable({"type": "string"})},
            ),
            "hub": closed_object("The hub's health check.", {"ok": {"type": "boolean"}, "ms": _MS}),
        },
    ),
)
PREKEY = Component(
    "Prekey",
    lambda: closed_object(
        "The new signed prekey, published at the hub.",
        {"prekey": {"type": "string", "description": "Its key id."}},
    ),
)
SYNCED = Component(
    "Synced",
    lambda: closed_object(
        "Directory entries added, then mailbox items pulled (`null`: the hub refused the "
        "pull, e.g. because this node is suspended).",
        {"added": {"type": "integer", "minimum": 0}, "pulled": nullable({"type": "integer"})},
    ),
)
ALERT = Component("Alert", lambda: view_schema(AlertView))
ALERTS = Component(
    "Alerts",
    lambda: closed_object(
        "Recorded alerts, newest first.",
        {"alerts": {"type": "array", "items": ALERT}},
    ),
)
AUDIT = Component(
    "Audit",
    lambda: closed_object(
        "The newest audit rows (oldest first) and whether the whole hash chain verifies.",
        {
            "entries": {
                "type": "array",
                "items": closed_object(
                    "Who did what, when.",
                    {
                        "seq": {"type": "integer", "minimum": 1},
                        "time": {"type": "integer"},
                        "user": {"type": "string"},
                        "action": {"type": "string"},
                        "subject": {"type": "string"},
                    },
                ),
            },
            "verified": {"type": "boolean"},
        },
    ),
)
USER_CREATED = Component(
    "UserCreated",
    lambda: closed_object(
        "The new user; its token is shown this once.",
        {"name": {"type": "string"}, "role": enum_of(Role), "token": {"type": "string"}},
    ),
)
ACCOUNT = Component(
    "Account",
    lambda: closed_object(
        "A user of the node as an operator reviews it: never its token or password hash.",
        {
            **view_schema(UserInfo, props={"role": enum_of(Role)})["properties"],
            "last_used": nullable({"type": "integer", "description": "Its last authenticated "
                                   "request (Unix time, to the minute); null: never."}),
            "password": {"type": "boolean", "description": "Whether it has a web UI password "
                         "(else it signs in with its token only)."},
        },
    ),
)  # fmt: skip
ACCOUNTS = Component(
    "Accounts",
    lambda: closed_object(
        "The node's users, by name: never a token or a password's hash.",
        {"users": {"type": "array", "items": ACCOUNT}},
    ),
)


def _key_id(alg: str) -> JsonObject:
    return {"type": "string", "pattern": f"^{alg}:[0-9a-f]{{32}}$", "description": "A key id."}


_KEY_IDS: Final = {
    "identity_key": _key_id(KEY_ALG_ED25519), "transport_key": _key_id(KEY_ALG_ED25519),
    "ka_key": _key_id(KEY_ALG_KEM),
}  # fmt: skip
SIGNED_PREKEY = Component(
    "SignedPrekey", lambda: view_schema(PrekeyView, props={"id": _key_id(KEY_ALG_KEM)})
)
KEY_UPDATE = Component(
    "KeyUpdate",
    lambda: view_schema(
        KeyUpdateView,
        props={"state": enum_of(KeyUpdateState), "fingerprint": _FINGERPRINT, **_KEY_IDS},
    ),
)
KEYS = Component(
    "Keys",
    lambda: view_schema(
        KeysView,
        props={"authority": AUTHORITY_ID, "fingerprint": _FINGERPRINT, **_KEY_IDS},
        refs={PrekeyView: SIGNED_PREKEY, KeyUpdateView: KEY_UPDATE},
    ),
)
BACKUP = Component(
    "Backup",
    lambda: view_schema(
        BackupRecord,
        props={
            "size": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                       "description": "SHA-256 of the archive file, as `sha256sum` prints it."},
            "authority": AUTHORITY_ID,
        },
    ),
)  # fmt: skip
BACKUPS = Component(
    "Backups",
    lambda: view_schema(
        BackupsView,
        props={"backups": {"type": "array", "items": BACKUP, "maxItems": KEEP}},
    ),
)
_BEHIND = Component("Behind", lambda: view_schema(Behind))
NODE_STATUS = Component(
    "NodeStatus",
    lambda: closed_object(
        "Membership, directory, hub, queues, requests and alerts at a glance.",
        {
            "authority": AUTHORITY_ID,
            "membership": enum_of(MemberStatus, "not admitted"),
            "directory": closed_object(
                "The verified membership log.",
                {
                    "seq": {"type": "integer"},
                    "head": {"type": "string"},
                    "age_s": nullable({"type": "integer"}),
                    "max_age_s": {"type": "integer"},
                    "members": {"type": "integer"},
                    "behind_peer": nullable(_BEHIND),
                },
            ),
            "hub": closed_object(
                "The hub this node uses.",
                {
                    "url": {"type": "string"},
                    "reachable": nullable({"type": "boolean"}),
                    "push_connected": {"type": "boolean"},
                },
            ),
            "outbox": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "Recipient copies by delivery state.",
            },
            "inbox_unread": {"type": "integer"},
            "requests_open": {"type": "integer"},
            "requests_overdue": {"type": "integer"},
            "alerts": {"type": "integer"},
            "reminders": closed_object(
                "The reminders addressed to this user (newest first, at most 20), and how "
                "the reminder command fared since the node started.",
                {
                    "notices": {"type": "array", "items": ALERT},
                    "hook": closed_object(
                        "Runs of `reminder_command`, and those that failed.",
                        {"runs": {"type": "integer"}, "failures": {"type": "integer"}},
                    ),
                },
            ),
            "disk": closed_object(
                "Bytes of the node database (with its WAL), of attachment files, of staged"
                " uploads, and bytes free on the node directory's file system.",
                {
                    "database_bytes": {"type": "integer"},
                    "blob_bytes": {"type": "integer"},
                    "upload_bytes": {"type": "integer"},
                    "free_bytes": {"type": "integer"},
                },
            ),
        },
    ),
)
OPENAPI = Component(
    "OpenApiDocument",
    lambda: {"type": "object", "description": "An OpenAPI 3.1 document: this one."},
)

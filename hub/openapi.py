"""The OpenAPI 3.1 document of the hub API v1, served at ``/v1/openapi.json``.

The document describes :func:`hub.web.create_app` and :class:`hub.service.HubService`.
Where it can, it is built from the code it describes rather than restating it:
problem types come from the :class:`~protocol.errors.GlobeError` class tree,
request rules from :mod:`hub.web` (query parameters, item counts, text lengths),
configurable limits from the application that serves it (:class:`ApiLimits`,
defaults from :class:`hub.config.Limits`), enumerations and caps from the
protocol.  ``tests/hub/test_openapi.py`` checks that it names exactly the routes
the application registers and that live responses match the documented schemas;
``tests/hub/test_schemathesis.py`` generates requests from it against a live hub.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

from globe_io.errors import (
    BlobQuotaExceeded,
    Conflict,
    LengthRequired,
    MailboxFull,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UploadTimeout,
)
from hub.config import Limits
from hub.push import STREAM_PATH
from hub.routing import ENVELOPE, NON_DELIVERY, RECEIPT
from hub.service import APPROVED, AWAITING_POP, MAX_PREKEYS, PENDING, REJECTED
from hub.web import (
    ACK_MAX_BODY,
    ACK_MAX_ITEMS,
    ADMIN_STATUS,
    AUDIT_MAX,
    AUDIT_PAGE,
    CURSOR_MAX,
    POP_ANSWER_BYTES,
    REJECTION_REASON_MAX,
    SEARCH_COUNTRY,
    SEARCH_KIND,
    SEARCH_LANGUAGE,
    SEARCH_TEXT,
    TextQuery,
)
from protocol.canonical import HIDDEN_CHARS_RE as HIDDEN_CHAR
from protocol.directory import MemberStatus
from protocol.envelope import MAX_LIFETIME
from protocol.envelope import MAX_SKEW as ENVELOPE_SKEW
from protocol.errors import (
    PROBLEM_BASE,
    AuthError,
    BadSignature,
    ConflictError,
    DecodeError,
    DecryptionFailed,
    ExpiredError,
    GlobeError,
    InvalidIdentifier,
    LogError,
    MalformedError,
    MemberNotActive,
    NotCertified,
    NotYetValid,
    ReplayError,
    SizeLimitExceeded,
    StaleError,
    StorageError,
    Truncated,
    UnknownMember,
    UnsupportedSuite,
    UnsupportedVersion,
)
from protocol.ids import ISO_COUNTRIES
from protocol.membership import (
    AUTHORITY_KINDS,
    MAX_ACTION_SIZE,
    MAX_APPLICATION_SIZE,
    MAX_ENTRY_SIZE,
    Action,
)
from protocol.prekeys import MAX_PREKEY_LIFETIME, MAX_PREKEY_SIZE
from protocol.receipts import MAX_RECEIPT_SIZE
from protocol.requestauth import HEADER, HUB_AUDIENCE, MAX_SKEW
from protocol.signed import MAX_SIGNATURES

__all__ = ["ApiLimits", "openapi_document", "problem_types"]

JsonObject = dict[str, Any]

#: Modules whose error classes the hub can render (others in the process are not ours).
_ERROR_PACKAGES: Final = frozenset({"protocol", "globe_io", "hub"})
_DEFAULTS: Final = Limits()
#: Size caps of signed objects the hub decodes (bytes of the canonical container).
_ACTION_CONTAINER_CAP: Final = 64 * 1024
_KEM_CHALLENGE_BYTES: Final = 1168


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The configurable limits the document states, as the serving application has them.

    :func:`hub.web.create_app` fills these from its own arguments, its router's
    and its blob store's limits; the defaults are :class:`hub.config.Limits`'.
    """

    max_body: int = _DEFAULTS.max_body
    page_size: int = _DEFAULTS.page_size
    mailbox_page: int = _DEFAULTS.page_size
    max_envelope: int = _DEFAULTS.max_envelope
    max_blob: int = _DEFAULTS.max_blob


# --- problem types -------------------------------------------------------------------------


def problem_types() -> list[dict[str, Any]]:
    """Every problem type the hub can render, sorted by ``type`` URI.

    Walks :class:`~protocol.errors.GlobeError` and its subclasses recursively
    (those defined in ``protocol`` and ``hub``; each class that sets its own
    ``slug``), the HTTP-level refusals of :mod:`globe_io.web` included.
    """
    import globe_io.web  # noqa: F401, PLC0415 - registers the HTTP-layer refusals

    found: dict[str, dict[str, Any]] = {}
    stack: list[type[GlobeError]] = [GlobeError]
    seen: set[type[GlobeError]] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if cls.__module__.partition(".")[0] not in _ERROR_PACKAGES or "slug" not in vars(cls):
            continue
        found.setdefault(
            cls.type_uri(),
            {
                "type": cls.type_uri(),
                "slug": cls.slug,
                "status": cls.status,
                "title": cls.title,
                "class": cls.__name__,
            },
        )
    return [found[uri] for uri in sorted(found)]


def _slugs_with_status(types: list[dict[str, Any]], status: int) -> str:
    return ", ".join(f"`{t['slug']}`" for t in types if t.get("status") == status)


# --- small builders ------------------------------------------------------------------------


def _ref(kind: str, name: str) -> JsonObject:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schema(name: str) -> JsonObject:
    return _ref("schemas", name)


#: The base64url alphabet in value order (RFC 4648 §5).
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_CHAR: Final = "[A-Za-z0-9_-]"
#: Canonical last characters (unused bits zero, ``canonical.b64d``) of a final group of
#: 2 characters (4 unused bits) and of 3 characters (2 unused bits).
_B64_LAST: Final = {
    2: "[" + "".join(c for i, c in enumerate(_B64_ALPHABET) if i & 0x0F == 0) + "]",
    3: "[" + "".join(c for i, c in enumerate(_B64_ALPHABET) if i & 0x03 == 0) + "]",
}


def _b64_chars(size: int) -> int:
    """Characters of unpadded base64url for ``size`` bytes."""
    return (4 * size + 2) // 3


def _b64(
    description: str,
    *,
    size: int | None = None,
    max_bytes: int | None = None,
    min_bytes: int = 0,
) -> JsonObject:
    """Canonical unpadded base64url (as ``canonical.b64d`` takes it) of ``size`` bytes
    exactly, or of ``min_bytes`` to ``max_bytes``."""
    out: JsonObject = {"type": "string", "contentEncoding": "base64url"}
    if size is not None:
        chars = _b64_chars(size)
        tail = chars % 4
        body = f"{_B64_CHAR}{{{chars - 1}}}{_B64_LAST[tail]}" if tail else f"{_B64_CHAR}{{{chars}}}"
        out["pattern"] = f"^{body}$"
        out["minLength"] = out["maxLength"] = chars
    else:
        out["pattern"] = (
            f"^(?:{_B64_CHAR}{{4}})*(?:{_B64_CHAR}{_B64_LAST[2]}|{_B64_CHAR}{{2}}{_B64_LAST[3]})?$"
        )
        if min_bytes:
            out["minLength"] = _b64_chars(min_bytes)
        if max_bytes is not None:
            out["maxLength"] = _b64_chars(max_bytes)
    out["description"] = description
    return out


def _escape(text: str) -> str:
    """Characters outside printable ASCII as ``\\uXXXX`` (ECMA-262 and Python regex alike)."""
    return "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in text)


#: The characters ``canonical.has_hidden_chars`` finds (control, bidi, zero-width), as a class body.
_HIDDEN: Final = _escape(HIDDEN_CHAR.pattern.removeprefix("[").removesuffix("]"))
#: Text without them (tab and newline are not hidden: single-line fields refuse them apart).
_VISIBLE_TEXT: Final = f"^[^{_HIDDEN}]*$"


@functools.cache
def _not_blank_text() -> str:
    """Visible text (newlines and tabs allowed) with a character ``str.strip()`` keeps."""
    space = _escape("".join(chr(c) for c in range(0x110000) if chr(c).isspace()))
    return f"^[^{_HIDDEN}]*[^{_HIDDEN}{space}][^{_HIDDEN}]*$"


def _int(description: str, *, minimum: int = 0, maximum: int = CURSOR_MAX) -> JsonObject:
    return {
        "type": "integer",
        "format": "int64",
        "minimum": minimum,
        "maximum": maximum,
        "description": description,
    }


def _object(
    description: str, properties: JsonObject, *, optional: tuple[str, ...] = ()
) -> JsonObject:
    """A closed object: every property is required unless listed in ``optional``."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": [p for p in properties if p not in optional],
        "additionalProperties": False,
    }


def _json_content(schema: JsonObject) -> JsonObject:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: JsonObject) -> JsonObject:
    return {"description": description, "content": _json_content(schema)}


def _err(name: str, description: str | None = None) -> JsonObject:
    """A reference to a shared error response, optionally saying what it means here."""
    out = _ref("responses", name)
    if description is not None:
        out["description"] = description
    return out


_STATUS_RESPONSES: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    409: "Conflict",
    410: "Gone",
    411: "LengthRequired",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    507: "InsufficientStorage",
}


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: JsonObject,
    *,
    errors: dict[int, str | None],
    parameters: list[JsonObject] | None = None,
    body: JsonObject | None = None,
    signed: bool = False,
) -> JsonObject:
    """An operation; every one can also be rate limited (429) or fail unexpectedly (500).

    The responses are closed: no ``default``, every status the hub can answer the
    operation with is listed (405 for a method the path does not take is the only
    refusal that belongs to no operation).
    """
    out: JsonObject = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
    }
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = body
    all_errors: dict[int, str | None] = {**errors}
    all_errors.setdefault(429, None)
    all_errors.setdefault(500, None)
    out["responses"] = {
        **responses,
        **{str(s): _err(_STATUS_RESPONSES[s], d) for s, d in sorted(all_errors.items())},
    }
    if signed:
        out["security"] = [{"GlobeAuth": []}]
    return out


_ONCE: Final = (
    f"Given at most once; anything the schema excludes is a 400 `{MalformedError.slug}` problem."
)


def _query(name: str, description: str, schema: JsonObject) -> JsonObject:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _int_query(name: str, description: str, *, default: int, lo: int, hi: int) -> JsonObject:
    """A query integer as ``web._int_param`` reads it: decimal digits only, ``lo..hi``."""
    return _query(
        name,
        f"{description} Decimal digits only (no sign), {lo}..{hi}.  {_ONCE}",
        {
            "type": "integer",
            "format": "int64",
            "minimum": lo,
            "maximum": hi,
            "default": default,
        },
    )


def _text_query(param: TextQuery, description: str) -> JsonObject:
    """A query string as :meth:`hub.web.TextQuery.read` reads it; empty means absent."""
    schema: JsonObject = {"type": "string"}
    if param.choices is not None:
        schema["enum"] = ["", *sorted(param.choices)]
    else:
        schema["maxLength"] = param.max_len
        schema["pattern"] = (
            _VISIBLE_TEXT if param.pattern is None else f"^(?:{param.pattern.pattern})?$"
        )
    rules = (
        "one of the listed values"
        if param.choices is not None
        else f"at most {param.max_len} characters, no control, bidi or zero-width character"
    )
    return _query(
        param.name,
        f"{description} {rules.capitalize()}; empty is the same as absent.  {_ONCE}",
        schema,
    )


# --- components ----------------------------------------------------------------------------


def _schemas(types: list[dict[str, Any]], limits: ApiLimits) -> JsonObject:
    app_status = [AWAITING_POP, PENDING, APPROVED, REJECTED]
    actions = [a.value for a in Action]
    statuses = [s.value for s in MemberStatus]
    app_summary_props: JsonObject = {
        "id": _schema("ApplicationId"),
        "authority": _schema("AuthorityId"),
        "name": {"type": "string", "maxLength": 200, "description": "The authority's name."},
        "country": _schema("Country"),
        "kinds": {
            "type": "array",
            "items": {"type": "string", "enum": sorted(AUTHORITY_KINDS)},
            "minItems": 1,
            "maxItems": len(AUTHORITY_KINDS),
            "uniqueItems": True,
        },
        "languages": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z]{2}$"},
            "minItems": 1,
            "maxItems": 16,
            "uniqueItems": True,
        },
        "status": {"type": "string", "enum": app_status},
        "reason": {
            "type": ["string", "null"],
            "description": "The rejection reason, once rejected.",
        },
        "created": _schema("Timestamp"),
        "fingerprint": _schema("Fingerprint"),
    }
    return {
        "Problem": {
            "type": "object",
            "description": (
                "An RFC 9457 problem, served as `application/problem+json` with `status` as "
                "the HTTP status.  `type` is a stable identifier (not a link) "
                f"`{PROBLEM_BASE}<slug>`; slugs and statuses are part of the contract, "
                "`title` and `detail` are for humans.  Clients must tolerate types not "
                "listed here.  The types are (from the error class tree, see "
                "`x-problem-types` for status and title): "
                + ", ".join(t["type"] for t in types)
                + "."
            ),
            "properties": {
                "type": {
                    "type": "string",
                    "format": "uri",
                    "description": "The problem type.",
                    "examples": [t["type"] for t in types[:3]],
                },
                "title": {"type": "string", "description": "Short summary of the type."},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string", "description": "Free text; not part of the contract."},
                "instance": {
                    "type": "string",
                    "format": "uri-reference",
                    "description": "The request path.",
                },
                "evidence": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]+$",
                    "description": (
                        "Only on a final refusal of `POST /v1/messages` whose body is a "
                        "genuine envelope of the authenticated member: base64url of the "
                        "hub-signed `rejected` evidence (PROTOCOL.md §9.2)."
                    ),
                },
            },
            "required": ["type", "title", "status", "detail", "instance"],
            "x-problem-types": types,
        },
        "ApplicationId": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": "An application id: 32 lower-case hex digits (128 random bits).",
        },
        "Country": {
            "type": "string",
            "enum": sorted(ISO_COUNTRIES),
            "description": "An ISO 3166-1 alpha-2 country code (the protocol's list).",
        },
        "AuthorityId": {
            "type": "string",
            "pattern": f"^(?:{'|'.join(sorted(ISO_COUNTRIES))})-[A-Z0-9]{{2,16}}$",
            "maxLength": 19,
            "description": (
                "A member authority: ISO 3166-1 alpha-2 country, `-`, 2-16 of `A-Z0-9` "
                "(PROTOCOL.md §3.1), e.g. `FR-PNF`."
            ),
        },
        "KeyId": {
            "type": "string",
            "pattern": "^(ed25519|mlkem768x25519):[0-9a-f]{32}$",
            "description": "A key id (PROTOCOL.md §3.2): `<alg>:<32 hex>`.",
        },
        "Fingerprint": {
            "type": "string",
            "pattern": "^[0-9]{5}( [0-9]{5}){11}$",
            "description": "Twelve groups of five digits for out-of-band comparison (§3.4).",
        },
        "Timestamp": _int("Unix time in seconds."),
        "Signature": _object(
            "One detached Ed25519 signature.",
            {
                "kid": {
                    "type": "string",
                    "maxLength": 64,
                    "description": "Key id of the signer (§3.1).",
                },
                "sig": _b64("The 64-byte signature.", size=64),
            },
        ),
        "SignedObject": _object(
            "A signed-object container (PROTOCOL.md §5.1): the exact canonical payload "
            "bytes, base64url, and detached signatures over `label || 0x00 || payload`.  "
            "On input the container must itself be canonical JSON (§2: sorted keys, no "
            "whitespace) and `sigs` sorted by `kid`, each key once.",
            {
                "payload": _b64(
                    "The payload bytes: a canonical JSON object with `type` and `v`.",
                    max_bytes=3 * (1 << 22) // 4,
                ),
                "sigs": {
                    "type": "array",
                    "items": _schema("Signature"),
                    "maxItems": MAX_SIGNATURES,
                },
            },
        ),
        "ApplicationCreated": _object(
            "An accepted application and its proof-of-possession challenge for the "
            "key-agreement key (PROTOCOL.md §6.2).",
            {
                "id": _schema("ApplicationId"),
                "authority": _schema("AuthorityId"),
                "status": {"type": "string", "const": AWAITING_POP},
                "challenge": _b64(
                    "HPKE ciphertext sealed to the application's `ka_key` with info "
                    "`globe/v1/kem-pop || 0x00 || application digest`; open it and send the "
                    "32-byte secret to `POST /v1/applications/{app_id}/proof`.",
                    size=_KEM_CHALLENGE_BYTES,
                ),
            },
        ),
        "ApplicationStatus": _object(
            "Public status of an application.",
            {
                "id": _schema("ApplicationId"),
                "authority": _schema("AuthorityId"),
                "status": {"type": "string", "enum": app_status},
                "reason": {
                    "type": ["string", "null"],
                    "description": "The rejection reason, once rejected.",
                },
            },
        ),
        "ApplicationState": _object(
            "An application after a transition (proof accepted, or rejected).",
            {
                "id": _schema("ApplicationId"),
                "authority": _schema("AuthorityId"),
                "status": {"type": "string", "enum": [PENDING, REJECTED]},
            },
        ),
        "Proof": _object(
            "The answer to the KEM challenge.",
            {
                "answer": _b64(
                    f"The {POP_ANSWER_BYTES}-byte secret opened from the challenge.",
                    size=POP_ANSWER_BYTES,
                )
            },
        ),
        "Rejection": _object(
            "An admin's rejection of an open application.",
            {
                "reason": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": REJECTION_REASON_MAX,
                    "pattern": _not_blank_text(),
                    "description": (
                        "Why (text; newlines and tabs allowed, no other control, bidi or "
                        "zero-width characters; not blank)."
                    ),
                }
            },
        ),
        "AdminApplicationSummary": _object(
            "An application as the admins see it in a list.", app_summary_props
        ),
        "AdminApplication": _object(
            "Everything an admin needs to check an application before signing its admission.",
            {
                **app_summary_props,
                "application": _b64(
                    "The exact application container bytes (a SignedObject, §6.2).",
                    max_bytes=MAX_APPLICATION_SIZE,
                ),
                "contact": {"type": "string", "maxLength": 1000},
                "draft": {
                    **_b64(
                        "Once possession is proven: the exact payload bytes of the draft "
                        "`admit` action the hub prepared (with the certificate).  Admins sign "
                        "these bytes under `globe/v1/membership-action` and submit the "
                        "container to `POST /v1/admin/actions`; null before the proof.",
                        max_bytes=MAX_ACTION_SIZE,
                    ),
                    "type": ["string", "null"],
                },
            },
        ),
        "AdminApplicationList": _object(
            "Applications, newest first (at most 1000).",
            {
                "applications": {
                    "type": "array",
                    "items": _schema("AdminApplicationSummary"),
                    "maxItems": 1000,
                }
            },
        ),
        "ActionResult": _object(
            "The state of a membership action after adding signatures.",
            {
                "proposal": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "The action digest (§5.3) in hex.",
                },
                "action": {"type": "string", "enum": actions},
                "authority": _schema("AuthorityId"),
                "signatures": _int("Distinct admin signatures that verify so far."),
                "threshold": _int("Signatures the genesis requires.", minimum=1),
                "status": {"type": "string", "enum": ["open", "appended"]},
                "seq": _int("The log position, once appended.", minimum=1),
            },
            optional=("seq",),
        ),
        "Proposal": _object(
            "A membership action collecting admin signatures.",
            {
                "proposal": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "authority": _schema("AuthorityId"),
                "action": {"type": "string", "enum": actions},
                "status": {"type": "string", "enum": ["open", "appended", "superseded"]},
                "seq": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "The log position once appended, else null.",
                },
                "signed": _schema("SignedObject"),
                "created": _schema("Timestamp"),
            },
        ),
        "ProposalList": _object(
            "Proposals, newest first (at most 1000).",
            {"proposals": {"type": "array", "items": _schema("Proposal"), "maxItems": 1000}},
        ),
        "LogPage": _object(
            "A page of the membership log (PROTOCOL.md §6.4), verified by the client.",
            {
                "entries": {
                    "type": "array",
                    "items": _b64(
                        "The exact bytes of one log entry (canonical JSON).",
                        max_bytes=MAX_ENTRY_SIZE,
                    ),
                    "description": "Entries with `seq` greater than `since`, in order.",
                },
                "next": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": (
                        "If more entries follow, the `seq` of the last one here: pass it as "
                        "`since`.  Null at the end of the log."
                    ),
                },
            },
        ),
        "MemberSummary": _object(
            "A directory entry.",
            {
                "authority": _schema("AuthorityId"),
                "name": {"type": "string", "maxLength": 200},
                "country": _schema("Country"),
                "kinds": app_summary_props["kinds"],
                "languages": app_summary_props["languages"],
                "status": {"type": "string", "enum": statuses},
                "identity_key": _schema("KeyId"),
                "fingerprint": _schema("Fingerprint"),
                "not_after": _schema("Timestamp"),
                "endpoint": {
                    "type": "string",
                    "maxLength": 2048,
                    "description": "The member's direct endpoint, if certified.",
                },
                "reason": {
                    "type": "string",
                    "description": "Why the member is suspended or revoked (inactive only).",
                },
            },
            optional=("endpoint", "reason"),
        ),
        "SearchResults": _object(
            "Members matching every filter, sorted by authority id.",
            {"results": {"type": "array", "items": _schema("MemberSummary")}},
        ),
        "PrekeyPut": _object(
            "The stored prekey.",
            {
                "authority": _schema("AuthorityId"),
                "key_id": _schema("KeyId"),
                "not_after": _schema("Timestamp"),
            },
        ),
        "Prekeys": _object(
            "A member's current signed prekeys, newest first.",
            {
                "authority": _schema("AuthorityId"),
                "prekeys": {
                    "type": "array",
                    "items": _b64(
                        "The exact signed-prekey container bytes (§6.6); verify them with the "
                        "member's certified identity key.",
                        max_bytes=MAX_PREKEY_SIZE,
                    ),
                    "maxItems": MAX_PREKEYS,
                },
            },
        ),
        "AuditRecord": _object(
            "One audit record.",
            {
                "id": _int("Record id, increasing.", minimum=1),
                "time": _schema("Timestamp"),
                "actor": {"type": "string", "maxLength": 80},
                "action": {"type": "string", "maxLength": 40},
                "subject": {"type": "string", "maxLength": 80},
                "detail": {"type": "object", "description": "Action-specific details."},
            },
        ),
        "AuditRecords": _object(
            "Audit records with id greater than `since`, oldest first.",
            {"records": {"type": "array", "items": _schema("AuditRecord")}},
        ),
        "MessageId": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": "A message id (PROTOCOL.md §3.1): 32 lower-case hex digits, unique "
            "per sender.",
        },
        "MailboxItem": _object(
            "One item waiting for the member.",
            {
                "cursor": _int(
                    "The item's position: increasing in the order items were stored; pass "
                    "the last one seen as `after` to continue.",
                    minimum=1,
                ),
                "kind": {
                    "type": "string",
                    "enum": [ENVELOPE, RECEIPT, NON_DELIVERY],
                    "description": (
                        f"`{ENVELOPE}`: an envelope addressed to the member, released only "
                        "by its signed receipt.  Notices, dropped by cursor once read: "
                        f"`{RECEIPT}` (a recipient's receipt for an envelope the member sent, "
                        f"with the hub's `delivered` evidence) and `{NON_DELIVERY}` (the "
                        "hub's `non-delivery` evidence: a recipient did not acknowledge before "
                        "expiry)."
                    ),
                },
                "data": _b64(
                    f"`{ENVELOPE}`: the exact envelope bytes as accepted.  `{RECEIPT}`: "
                    'canonical JSON `{"evidence": b64(evidence container), "receipt": '
                    f"b64(receipt container)}}`.  `{NON_DELIVERY}`: the evidence container "
                    "(canonical JSON).",
                    max_bytes=limits.max_envelope,
                ),
            },
        ),
        "MailboxPage": _object(
            "Items after `after`, oldest first.",
            {
                "items": {
                    "type": "array",
                    "items": _schema("MailboxItem"),
                    "maxItems": limits.mailbox_page,
                },
                "cursor": _int(
                    "The cursor of the last item here, or `after` if there is none: pass it "
                    "as `after` for the next page."
                ),
            },
        ),
        "Ack": _object(
            "Signed receipts for envelopes received, and cursors of notices read.",
            {
                "receipts": {
                    "type": "array",
                    "items": _b64(
                        "The exact bytes of a delivery receipt container (PROTOCOL.md §9) "
                        "signed by the member's identity key.",
                        min_bytes=1,
                        max_bytes=MAX_RECEIPT_SIZE,
                    ),
                    "maxItems": ACK_MAX_ITEMS,
                },
                "notices": {
                    "type": "array",
                    "items": _int("The cursor of a notice to drop."),
                    "maxItems": ACK_MAX_ITEMS,
                },
            },
        ),
        "AckResult": _object(
            "What the acknowledgement did.",
            {
                "released": {
                    "type": "array",
                    "items": _schema("MessageId"),
                    "description": "Ids of the envelopes released, in the order of the receipts.",
                },
                "refused": {
                    "type": "array",
                    "items": _object(
                        "A receipt that released nothing.",
                        {
                            "type": {
                                "type": "string",
                                "format": "uri",
                                "description": "A problem type (see `Problem`).",
                            },
                            "detail": {"type": "string"},
                        },
                    ),
                    "description": "One entry per receipt that released nothing.",
                },
                "notices": _int("Notices dropped."),
            },
        ),
        "BlobStored": _object(
            "A stored attachment blob.",
            {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "size": _int("Bytes stored.", maximum=limits.max_blob),
                "sha256": _b64("SHA-256 of the ciphertext.", size=32),
            },
        ),
        "Health": _object("Liveness.", {"status": {"type": "string", "const": "ok"}}),
        "Readiness": _object(
            "Readiness: the database answers and the directory is verified.",
            {
                "status": {"type": "string", "const": "ready"},
                "seq": _int("Length of the verified membership log."),
            },
        ),
        "OpenApiDocument": {
            "type": "object",
            "description": "This document.",
            "required": ["openapi", "info", "paths"],
        },
    }


def _responses(types: list[dict[str, Any]], limits: ApiLimits) -> JsonObject:
    def problem(description: str, status: int | None = None) -> JsonObject:
        if status is not None:
            description += f"  Types with this status: {_slugs_with_status(types, status)}."
        return {
            "description": description,
            "content": {"application/problem+json": {"schema": _schema("Problem")}},
        }

    def retry_after(response: JsonObject, minimum: int) -> JsonObject:
        response["headers"] = {
            "Retry-After": {
                "description": f"Seconds to wait before retrying (at least {minimum}).",
                "required": True,
                "schema": {"type": "integer", "minimum": minimum},
            }
        }
        return response

    return {
        "BadRequest": problem("The request is malformed or breaks a protocol rule.", 400),
        "Unauthorized": problem(
            f"The `{HEADER}` signature was refused (uniform `{AuthError.slug}`), the "
            f"timestamp is outside the window (`{StaleError.slug}`), or a signature in the "
            f"body does not verify (`{BadSignature.slug}`).",
            401,
        ),
        "Forbidden": problem("A membership check failed.", 403),
        "RequestTimeout": problem("The body did not arrive in time; nothing was stored.", 408),
        "LengthRequired": problem("A streamed upload must declare its Content-Length.", 411),
        "NotFound": problem("No such resource.", 404),
        "MethodNotAllowed": {
            **problem(
                "The path exists but not with this method (any route; not listed per operation).",
                405,
            ),
            "headers": {
                "Allow": {
                    "description": "The methods the path takes (RFC 9110 §15.5.6).",
                    "required": True,
                    "schema": {"type": "string", "examples": ["GET,HEAD"]},
                }
            },
        },
        "Conflict": problem("The request conflicts with the current state.", 409),
        "Gone": problem("The envelope has expired.", 410),
        "PayloadTooLarge": problem(
            f"The body exceeds the route's cap (refused before it is buffered, "
            f"`{PayloadTooLarge.slug}`; `max_body`, {limits.max_body} bytes on this hub, "
            f"unless the operation states another) or the cap of the structure it carries "
            f"(`{SizeLimitExceeded.slug}`).",
            413,
        ),
        "TooManyRequests": retry_after(
            problem(
                "Rate limited: a token bucket per client address (every request) and per key "
                "(authenticated requests, after the signature verified) is empty.",
                429,
            ),
            1,
        ),
        "InternalError": problem(
            "An unexpected failure; the request was not applied (no traceback is sent).", 500
        ),
        "ServiceUnavailable": retry_after(
            problem(
                f"The database is unavailable (`{StorageError.slug}`); nothing was "
                "half-written, retry later.",
                503,
            ),
            1,
        ),
        "InsufficientStorage": problem(
            "A recipient's mailbox, or the uploader's blob quota or the hub's disk, is full; "
            "nothing was stored.  Retry once the recipient has drained its mailbox (or the "
            "uploader's blobs were released).",
            507,
        ),
    }


_SECURITY_DESCRIPTION: Final = f"""\
A signed request (PROTOCOL.md §10), in the style of RFC 9421.  Members sign with their \
certified **transport** key (`PUT /v1/prekeys` and the message routes `POST /v1/messages`, \
`GET /v1/mailbox`, `POST /v1/mailbox/ack`), admins with their genesis **admin** key \
(`/v1/admin/*`); never with an identity key.  One header, matching exactly:

    {HEADER}: v1;kid=ed25519:<32 hex>;created=<unix seconds>;nonce=<22 base64url>;sig=<86 base64url>

`nonce` is 16 random bytes and `sig` the 64-byte Ed25519 signature, both unpadded canonical \
base64url.  The signature is over `"globe/v1/request-auth" || 0x00 || base`, where `base` is \
the canonical JSON object (keys in this order, no whitespace)

    {{"audience":"{HUB_AUDIENCE}","body":b64(SHA-256(exact body bytes)),"created":created,\
"kid":kid,"method":"GET|POST|PUT","network":b64(network digest),"nonce":nonce,\
"target":path and query exactly as sent}}

with audience `"{HUB_AUDIENCE}"` for every request to the hub, `network` the digest of the \
pinned genesis and `body` the hash of the empty string for a request without a body.  The \
hub refuses a `created` more than {MAX_SKEW} s (configurable `clock_skew`) from its clock \
(401 `{StaleError.slug}`), any other defect with the same 401 `{AuthError.slug}` (unknown, \
suspended or revoked key included), and a `(kid, nonce)` pair seen inside the window with 409 \
`{ReplayError.slug}`.  The nonce is recorded only after the signature verified: durably for \
admin and prekey requests, in the hub process's memory for the message routes (which are \
idempotent: a replayed submission gets the same evidence, a replayed receipt releases nothing \
new).
"""


def _info_description(limits: ApiLimits) -> str:
    return f"""\
The GlobE Link hub: membership applications, quorum-signed membership actions, the \
hash-chained membership log and its signed checkpoints, the directory, members' signed \
prekeys, and store-and-forward delivery of encrypted envelopes (per-recipient mailboxes, \
signed receipts, hub-signed evidence).  The hub stores and sequences; it never decides \
membership nor reads content, and clients verify everything it serves against their pinned \
genesis (PROTOCOL.md §6).

**Signed requests.**  `PUT /v1/prekeys`, the message routes and every `/v1/admin/*` route \
need the `{HEADER}` header (security scheme `GlobeAuth`), checked before any work.  Bodies \
that carry signed objects (applications, actions, prekeys) are the exact canonical JSON bytes \
of a signed-object container (PROTOCOL.md §2, §5.1): signatures cover those bytes, so send \
them unchanged.  An envelope is sent as its exact binary bytes (PROTOCOL.md §7).

**Errors.**  Every refusal is an RFC 9457 problem served as `application/problem+json` with \
`type`, `title`, `status`, `detail` and `instance` (the request path, percent-encoded: a \
URI reference); the type URIs are listed in the `Problem` schema (`x-problem-types`).  Each \
operation lists every status it can answer.  An unknown path is a 404 `{NotFound.slug}` and \
a known path with another method a 405 `method-not-allowed` problem with `Allow` (not \
repeated under each operation).  Every route may answer 429 `{RateLimited.slug}` with \
`Retry-After` and 500 `error` (unexpected failure, nothing applied); routes that touch the \
database may answer 503 `{StorageError.slug}` with `Retry-After`.

**JSON bodies** are read by the protocol's one strict decoder (PROTOCOL.md §2.8, I-JSON \
narrowed): integers are written without fraction or exponent (`2`, never `2.0`, although \
JSON Schema's `integer` cannot tell them apart), keys once, no lone surrogate escapes; \
anything else is a 400 problem.

**Query parameters** are each given at most once; one given twice, or outside its schema, \
is a 400 `{MalformedError.slug}` problem.  Unknown query parameters are ignored.

**Limits** (this hub's configuration).  Request bodies are capped before they are buffered \
(413): `max_body` = {limits.max_body} bytes, envelopes `max_envelope` = \
{limits.max_envelope} bytes, attachment blobs `max_blob` = {limits.max_blob} bytes.  Pages \
hold at most `page_size` = {limits.page_size} items (mailbox pages {limits.mailbox_page}).  \
Mailboxes have quotas (items and bytes waiting per recipient; 507 when over).  `HEAD` is \
accepted on every `GET` route but `GET /v1/blobs/{{blob_id}}`.
"""


def _paths(limits: ApiLimits) -> JsonObject:
    app_id = {
        "name": "app_id",
        "in": "path",
        "required": True,
        "description": (
            f"The application id; anything but 32 lower-case hex digits is a 404 `{NotFound.slug}`."
        ),
        "schema": _schema("ApplicationId"),
    }
    signed_body = "Signed-object container (exact canonical bytes; see the `SignedObject` schema)."
    auth_401 = f"`{AuthError.slug}` or `{StaleError.slug}`: the `{HEADER}` header was refused."
    replay_409 = f"`{ReplayError.slug}`: the request nonce was already used."
    too_large = f"`{PayloadTooLarge.slug}`: the body exceeds `max_body` ({limits.max_body} bytes)."
    admin_status = _text_query(
        ADMIN_STATUS, "Only items with this status (unknown values match nothing)."
    )

    def admin_get(
        operation_id: str,
        summary: str,
        description: str,
        ok: JsonObject,
        *,
        parameters: list[JsonObject] | None = None,
        extra: dict[int, str | None] | None = None,
    ) -> JsonObject:
        errors: dict[int, str | None] = {
            401: auth_401,
            409: replay_409,
            413: too_large,
            503: None,
            **(extra or {}),
        }
        return _operation(
            operation_id,
            "admin",
            summary,
            description + "  Signed with an admin key; the signed body is usually empty.",
            {"200": ok},
            errors=errors,
            parameters=parameters,
            signed=True,
        )

    return {
        "/metrics": {
            "get": _operation(
                "metrics",
                "operations",
                "Prometheus metrics",
                "Counters (accepted, duplicates, receipts, expired, refused by problem type), "
                "gauges (mailbox items and bytes, log length) and histograms (accept latency, "
                "group-commit batch size, request time by route) in the Prometheus text format. "
                "Restrict access at the reverse proxy.",
                {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                errors={},
            )
        },
        "/healthz": {
            "get": _operation(
                "healthz",
                "operations",
                "Liveness",
                "The process answers.",
                {"200": _ok("Alive.", _schema("Health"))},
                errors={},
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "operations",
                "Readiness",
                "The database answers and the directory is loaded; entries another hub "
                "process appended are verified first.",
                {"200": _ok("Ready.", _schema("Readiness"))},
                errors={
                    409: f"`{LogError.slug}` and its subtypes: a stored entry fails verification.",
                    503: None,
                },
            )
        },
        "/v1/openapi.json": {
            "get": _operation(
                "getOpenApi",
                "operations",
                "This document",
                "The OpenAPI 3.1 description of this API.",
                {"200": _ok("The document.", _schema("OpenApiDocument"))},
                errors={},
            )
        },
        "/v1/directory/genesis": {
            "get": _operation(
                "getGenesis",
                "directory",
                "The genesis",
                "The genesis container this hub serves (PROTOCOL.md §6.1).  Nodes pin their "
                "own copy, obtained out of band, and compare.",
                {"200": _ok("The genesis: exact container bytes.", _schema("SignedObject"))},
                errors={},
            )
        },
        "/v1/directory/log": {
            "get": _operation(
                "getLog",
                "directory",
                "Membership log entries",
                "Log entries after `since`, as exact bytes, read from the database.",
                {"200": _ok("A page of entries.", _schema("LogPage"))},
                errors={400: None, 503: None},
                parameters=[
                    _int_query(
                        "since",
                        "Return entries with a greater `seq`.",
                        default=0,
                        lo=0,
                        hi=CURSOR_MAX,
                    ),
                    _int_query(
                        "limit",
                        "Page size (at most `page_size`).",
                        default=limits.page_size,
                        lo=1,
                        hi=limits.page_size,
                    ),
                ],
            )
        },
        "/v1/directory/checkpoint": {
            "get": _operation(
                "getCheckpoint",
                "directory",
                "A signed checkpoint",
                "A fresh checkpoint of the log head signed by the hub key (PROTOCOL.md §6.4).",
                {"200": _ok("The checkpoint container.", _schema("SignedObject"))},
                errors={},
            )
        },
        "/v1/directory/search": {
            "get": _operation(
                "searchDirectory",
                "directory",
                "Search the directory",
                "Members matching every given filter, over the verified directory.",
                {"200": _ok("The matches.", _schema("SearchResults"))},
                errors={400: None},
                parameters=[
                    _text_query(SEARCH_COUNTRY, "ISO 3166-1 alpha-2 code, exact."),
                    _text_query(SEARCH_KIND, "Authority kind, exact."),
                    _text_query(SEARCH_LANGUAGE, "ISO 639-1 code (two lower-case letters), exact."),
                    _text_query(SEARCH_TEXT, "Case-insensitive substring of the id or name."),
                    _query(
                        "inactive",
                        "`1` includes suspended and revoked members; any other value does not.  "
                        + _ONCE,
                        {"type": "string", "examples": ["1"]},
                    ),
                    _int_query(
                        "limit",
                        "Maximum results (at most `page_size`).",
                        default=limits.page_size,
                        lo=1,
                        hi=limits.page_size,
                    ),
                ],
            )
        },
        "/v1/applications": {
            "post": _operation(
                "submitApplication",
                "applications",
                "Apply for membership",
                "Submit an application (PROTOCOL.md §6.2) signed by both the identity and the "
                "transport key.  The answer carries a challenge proving possession of the "
                "key-agreement key.",
                {"201": _ok("Accepted; answer the challenge.", _schema("ApplicationCreated"))},
                errors={
                    400: f"Not a valid application (`{DecodeError.slug}` family, ...).",
                    401: f"`{BadSignature.slug}`: the two signatures are not both there and valid.",
                    409: f"`{Conflict.slug}`: already a member, an application for the authority "
                    "or one of its keys is open, or a key is the hub's, an admin's or a member's.",
                    413: f"`{PayloadTooLarge.slug}`, or `{SizeLimitExceeded.slug}` over "
                    f"{MAX_APPLICATION_SIZE} bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": f"The application. {signed_body}",
                    "content": _json_content(_schema("SignedObject")),
                },
            )
        },
        "/v1/applications/{app_id}": {
            "get": _operation(
                "getApplicationStatus",
                "applications",
                "Application status",
                "Public status of an application.",
                {"200": _ok("The status.", _schema("ApplicationStatus"))},
                errors={404: None, 503: None},
                parameters=[app_id],
            )
        },
        "/v1/applications/{app_id}/proof": {
            "post": _operation(
                "answerChallenge",
                "applications",
                "Prove possession of the key-agreement key",
                "Answer the KEM challenge.  On success the application awaits the admins.",
                {"200": _ok("Possession proven.", _schema("ApplicationState"))},
                errors={
                    400: f"`{MalformedError.slug}` body, or `{DecryptionFailed.slug}`: the "
                    "answer does not open the challenge.",
                    404: None,
                    409: f"`{Conflict.slug}`: the application does not await a proof.",
                    413: too_large,
                    503: None,
                },
                parameters=[app_id],
                body={
                    "required": True,
                    "content": _json_content(_schema("Proof")),
                },
            )
        },
        "/v1/prekeys": {
            "put": _operation(
                "putPrekey",
                "prekeys",
                "Publish a signed prekey",
                "An active member publishes a prekey signed by its identity key "
                f"(PROTOCOL.md §6.6), authenticating the request with its transport key.  At "
                f"most {MAX_PREKEYS} unexpired prekeys per member; expired ones are dropped.",
                {"201": _ok("Stored.", _schema("PrekeyPut"))},
                errors={
                    400: "Not a valid prekey of the authenticated member, or already expired.",
                    401: f"{auth_401}  Or `{BadSignature.slug}`: the prekey is not signed by "
                    "the member's identity key.",
                    403: f"`{MemberNotActive.slug}`: suspended or revoked meanwhile.",
                    409: f"{replay_409}  Or `{Conflict.slug}`: already published, or "
                    f"{MAX_PREKEYS} unexpired prekeys already.",
                    413: f"{too_large}  Or `{SizeLimitExceeded.slug}` over {MAX_PREKEY_SIZE} "
                    "bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": (
                        f"The signed prekey. {signed_body}  Its validity is at most "
                        f"{MAX_PREKEY_LIFETIME // 86400} days."
                    ),
                    "content": _json_content(_schema("SignedObject")),
                },
                signed=True,
            )
        },
        "/v1/prekeys/{authority}": {
            "get": _operation(
                "getPrekeys",
                "prekeys",
                "A member's prekeys",
                "The member's prekeys valid now (or within the clock skew), newest first.  "
                "Verify each with the member's certified identity key; if there is none, "
                "senders may wrap to the certified key-agreement key.",
                {"200": _ok("The prekeys.", _schema("Prekeys"))},
                errors={
                    400: f"`{InvalidIdentifier.slug}`: not an authority id.",
                    403: f"`{UnknownMember.slug}`: not in the directory.",
                    404: "The id holds a `/` (no such route).",
                    503: None,
                },
                parameters=[
                    {
                        "name": "authority",
                        "in": "path",
                        "required": True,
                        "schema": _schema("AuthorityId"),
                    }
                ],
            )
        },
        **_message_paths(auth_401, replay_409, limits),
        **_stream_and_blob_paths(auth_401, limits),
        "/v1/admin/applications": {
            "get": admin_get(
                "adminListApplications",
                "List applications",
                "Applications, newest first, optionally filtered by status "
                f"({', '.join(f'`{s}`' for s in (AWAITING_POP, PENDING, APPROVED, REJECTED))}).",
                _ok("The applications.", _schema("AdminApplicationList")),
                parameters=[admin_status],
                extra={400: None},
            )
        },
        "/v1/admin/applications/{app_id}": {
            "get": admin_get(
                "adminGetApplication",
                "One application",
                "An application with its draft admission.",
                _ok("The application.", _schema("AdminApplication")),
                parameters=[app_id],
                extra={404: None},
            )
        },
        "/v1/admin/applications/{app_id}/reject": {
            "post": _operation(
                "adminRejectApplication",
                "admin",
                "Reject an application",
                "An admin refuses an open application (no quorum is needed to say no).",
                {"200": _ok("Rejected.", _schema("ApplicationState"))},
                errors={
                    400: f"`{MalformedError.slug}`: not a rejection, or a blank reason.",
                    401: auth_401,
                    404: None,
                    409: f"{replay_409}  Or `{Conflict.slug}`: the application is not open.",
                    413: too_large,
                    503: None,
                },
                parameters=[app_id],
                body={"required": True, "content": _json_content(_schema("Rejection"))},
                signed=True,
            )
        },
        "/v1/admin/actions": {
            "post": _operation(
                "adminSubmitAction",
                "admin",
                "Sign a membership action",
                "Add admin signatures to a membership action (PROTOCOL.md §6.3).  Signatures "
                "are merged with those collected before; once the genesis quorum verifies, the "
                "action is appended to the log.  An `admit` must sign exactly the draft the "
                "hub prepared for a pending application.",
                {
                    "200": _ok(
                        "Signatures recorded (and appended at quorum).", _schema("ActionResult")
                    )
                },
                errors={
                    400: "Not a valid membership action.",
                    401: f"{auth_401}  Or `{BadSignature.slug}`: a signature in the container "
                    "is not a valid admin signature.",
                    409: f"{replay_409}  Or `{LogError.slug}`: the action does not apply to the "
                    f"directory; or `{Conflict.slug}`: no matching pending application, the "
                    "proposal is closed, or the log moved on.",
                    413: f"{too_large}  Or `{SizeLimitExceeded.slug}`: container over "
                    f"{_ACTION_CONTAINER_CAP} or payload over {MAX_ACTION_SIZE} bytes.",
                    503: None,
                },
                body={
                    "required": True,
                    "description": f"The action. {signed_body}",
                    "content": _json_content(_schema("SignedObject")),
                },
                signed=True,
            )
        },
        "/v1/admin/proposals": {
            "get": admin_get(
                "adminListProposals",
                "List proposals",
                "Membership actions collecting signatures, newest first, optionally filtered "
                "by status (`open`, `appended`, `superseded`).",
                _ok("The proposals.", _schema("ProposalList")),
                parameters=[admin_status],
                extra={400: None},
            )
        },
        "/v1/admin/audit": {
            "get": admin_get(
                "adminAudit",
                "Audit trail",
                "Audit records of applications and admin actions, oldest first.",
                _ok("The records.", _schema("AuditRecords")),
                parameters=[
                    _int_query(
                        "since", "Return records with a greater id.", default=0, lo=0, hi=CURSOR_MAX
                    ),
                    _int_query("limit", "Maximum records.", default=AUDIT_PAGE, lo=1, hi=AUDIT_MAX),
                ],
                extra={400: None},
            )
        },
    }


def _message_paths(auth_401: str, replay_409: str, limits: ApiLimits) -> JsonObject:
    """Store-and-forward: submission, the mailbox and acknowledgements."""
    member_409 = f"{replay_409}  (Per hub process: these routes are idempotent.)"
    too_large = f"`{PayloadTooLarge.slug}`: the body exceeds `max_body` ({limits.max_body} bytes)."
    return {
        "/v1/messages": {
            "post": _operation(
                "submitMessage",
                "messages",
                "Submit an envelope",
                "The sender submits an envelope (PROTOCOL.md §7), authenticating the request "
                "with its transport key.  Checked in this order (R9): size cap, strict parse, "
                "sender certified and active, outer signature, every recipient active, "
                "idempotency, every recipient's mailbox quota.  The hub answers only after the "
                "envelope and one mailbox item per recipient are durably committed (R10; "
                "submissions are group-committed), with its signed `accepted` evidence "
                "(PROTOCOL.md §9).  The envelope waits in each recipient's mailbox until that "
                "recipient's signed receipt releases it, or until it expires (the sender then "
                "gets `non-delivery` evidence).",
                {
                    "201": _ok(
                        "Accepted: the hub's `accepted` evidence container (canonical JSON) "
                        "naming the message id, the envelope hash, the sender and the "
                        "recipients.",
                        _schema("SignedObject"),
                    ),
                    "200": _ok(
                        "These exact bytes were accepted before: the original evidence, "
                        "byte for byte (resubmitting is safe).",
                        _schema("SignedObject"),
                    ),
                },
                errors={
                    400: f"`{Truncated.slug}`, `{MalformedError.slug}` (bad magic, trailing "
                    "bytes, made for another network, or not submitted by its sender), "
                    f"`{UnsupportedVersion.slug}`, `{UnsupportedSuite.slug}`, or "
                    f"`{NotYetValid.slug}`: created more than {ENVELOPE_SKEW} s in the "
                    "future.",
                    401: f"{auth_401}  Or `{BadSignature.slug}`: the envelope's signature does "
                    "not verify under the sender's certified identity key.",
                    403: f"`{UnknownMember.slug}` or `{MemberNotActive.slug}`: a recipient is "
                    f"not an active member; `{NotCertified.slug}`: signed with a key that is "
                    "not the sender's certified identity key.",
                    409: f"{member_409}  Or `{ConflictError.slug}`: the sender used this "
                    "message id before for other bytes; both are kept as evidence.",
                    410: f"`{ExpiredError.slug}`: the envelope's expiry has passed (lifetime "
                    f"at most {MAX_LIFETIME // 86400} days).",
                    413: f"`{PayloadTooLarge.slug}`: the body exceeds `max_envelope` "
                    f"({limits.max_envelope} bytes).",
                    503: None,
                    507: f"`{MailboxFull.slug}`: a recipient's mailbox is over its quota; "
                    "nothing was stored for any recipient.",
                },
                body={
                    "required": True,
                    "description": (
                        "The envelope's exact bytes (binary, PROTOCOL.md §7), at most "
                        f"`max_envelope` ({limits.max_envelope}) bytes."
                    ),
                    "content": {
                        "application/octet-stream": {
                            "schema": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            }
                        }
                    },
                },
                signed=True,
            )
        },
        "/v1/mailbox": {
            "get": _operation(
                "pullMailbox",
                "messages",
                "Pull the mailbox",
                "Items waiting for the authenticated member after `after`, oldest first.  "
                "Pulling does not remove anything: envelopes stay until a receipt releases "
                "them (`POST /v1/mailbox/ack`), notices until they are dropped by cursor.",
                {"200": _ok("A page of items.", _schema("MailboxPage"))},
                errors={401: auth_401, 409: member_409, 413: too_large, 400: None, 503: None},
                parameters=[
                    _int_query(
                        "after",
                        "Return items with a greater cursor.",
                        default=0,
                        lo=0,
                        hi=CURSOR_MAX,
                    ),
                    _int_query(
                        "limit",
                        "Page size (at most the router's `page_size`).",
                        default=limits.mailbox_page,
                        lo=1,
                        hi=limits.mailbox_page,
                    ),
                ],
                signed=True,
            )
        },
        "/v1/mailbox/ack": {
            "post": _operation(
                "acknowledgeMailbox",
                "messages",
                "Acknowledge envelopes and notices",
                "Each receipt, signed by the authenticated member's identity key over the "
                "exact bytes of an envelope waiting in its mailbox, releases that envelope: "
                "the hub records the receipt and puts it, with its `delivered` evidence, in "
                "the sender's mailbox.  Any other receipt releases nothing and is listed in "
                "`refused` (e.g. `bad-signature`, `malformed` when presented by another "
                f"member than its signer, `{NotFound.slug}` for no such envelope waiting).  "
                "`notices` drops the member's own receipt and non-delivery notices by cursor; "
                "envelopes are never dropped by cursor.",
                {"200": _ok("What was released and dropped.", _schema("AckResult"))},
                errors={
                    400: f"`{MalformedError.slug}` or `{DecodeError.slug}` family: not an "
                    "acknowledgement (receipts are canonical base64url of 1 to "
                    f"{MAX_RECEIPT_SIZE} bytes, notices cursors, at most {ACK_MAX_ITEMS} each).",
                    401: auth_401,
                    409: member_409,
                    413: f"`{PayloadTooLarge.slug}`: the body exceeds "
                    f"{max(limits.max_body, ACK_MAX_BODY)} bytes (the larger of `max_body` and "
                    "the largest acknowledgement the item limits allow, so that a body within "
                    "them is never refused for its size).",
                    503: None,
                },
                body={
                    "required": True,
                    "description": (
                        f"At most {max(limits.max_body, ACK_MAX_BODY)} bytes (see 413).  A "
                        "node acknowledges a whole mailbox page in one request."
                    ),
                    "content": _json_content(_schema("Ack")),
                },
                signed=True,
            )
        },
    }


def _stream_and_blob_paths(auth_401: str, limits: ApiLimits) -> JsonObject:
    """Push delivery (WebSocket) and attachment blobs."""
    blob_id = {
        "name": "blob_id",
        "in": "path",
        "required": True,
        "description": "32 lower-case hex digits, chosen by the uploader (PROTOCOL.md §8.4.1).",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    }
    octets = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    return {
        STREAM_PATH: {
            "get": _operation(
                "stream",
                "messages",
                "Push delivery over a WebSocket",
                "A WebSocket opening handshake (RFC 6455 §4.1: `Upgrade: websocket`, "
                "`Connection: Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`; "
                "connection machinery, not parameters).  The hub sends "
                '`{"type":"challenge","nonce":<b64url 32 bytes>}`; the member answers with one '
                f'message `{{"type":"auth","auth":<{HEADER} value>,"after":<cursor>}}` whose '
                f"signature covers method `GET`, target `{STREAM_PATH}` and the raw challenge "
                "as the body (audience `hub`, its transport key).  The hub then sends every "
                'mailbox item after the cursor as `{"type":"item","cursor","kind","data"}` '
                "and each new one as soon as its commit is done (across hub processes on "
                "PostgreSQL via LISTEN/NOTIFY).  Acknowledgements go to `POST /v1/mailbox/ack`.  "
                'A refusal is sent as `{"type":"error","problem":<RFC 9457>}` and the socket '
                "closes (4401 authentication, 1008 protocol, 1013 slow reader, 4409 replaced).",
                {"101": {"description": "Switching Protocols: the WebSocket is open."}},
                errors={
                    400: f"`{MalformedError.slug}`: not a WebSocket opening handshake (a plain "
                    "HTTP request, or an incomplete handshake); nothing is upgraded.",
                },
            )
        },
        "/v1/blobs/{blob_id}": {
            "put": _operation(
                "putBlob",
                "messages",
                "Upload an encrypted attachment",
                "The sender streams an attachment's ciphertext before submitting the "
                "envelope that lists its id.  The body is hashed while it is written to "
                f"disk, and the `{HEADER}` signature is checked against that digest before "
                "the blob is kept.",
                {"201": _ok("Stored.", _schema("BlobStored"))},
                errors={
                    400: f"`{InvalidIdentifier.slug}`: the blob id is not 32 lower-case hex "
                    "digits.",
                    401: auth_401,
                    404: "The id holds a `/` (no such route).",
                    408: f"`{UploadTimeout.slug}`.",
                    409: f"`{Conflict.slug}`: this blob id is already used; or "
                    f"`{ReplayError.slug}`: the request nonce was already used.",
                    411: f"`{LengthRequired.slug}`.",
                    413: f"`{PayloadTooLarge.slug}`: larger than `max_blob` "
                    f"({limits.max_blob} bytes).",
                    503: None,
                    507: f"`{BlobQuotaExceeded.slug}`: the uploader's quota or the hub's disk "
                    "is full.",
                },
                parameters=[blob_id],
                body={
                    # No body is an empty blob: HTTP cannot tell the two apart.
                    "required": False,
                    "description": f"The ciphertext: 0 to {limits.max_blob} bytes, with a "
                    "`Content-Length` (no chunked upload); no body is an empty blob.",
                    "content": octets,
                },
                signed=True,
            ),
            "get": _operation(
                "getBlob",
                "messages",
                "Download an encrypted attachment",
                "Only a recipient of an accepted envelope that lists the blob may fetch it; "
                "everyone else gets the same 404.  Streamed from disk.",
                {
                    "200": {
                        "description": "The ciphertext.",
                        "headers": {
                            "Repr-Digest": {
                                "description": "SHA-256 of the ciphertext (RFC 9530).",
                                "required": True,
                                "schema": {
                                    "type": "string",
                                    "pattern": "^sha-256=:[A-Za-z0-9+/]{43}=:$",
                                },
                            }
                        },
                        "content": octets,
                    }
                },
                errors={
                    401: auth_401,
                    404: "No such blob for this member.",
                    409: f"`{ReplayError.slug}`: the request nonce was already used.",
                    413: f"`{PayloadTooLarge.slug}`: the (signed) body exceeds `max_body` "
                    f"({limits.max_body} bytes).",
                    503: None,
                },
                parameters=[blob_id],
                signed=True,
            ),
        },
    }


def openapi_document(limits: ApiLimits | None = None) -> dict[str, Any]:
    """The OpenAPI document for a hub with ``limits`` (default: the default configuration)."""
    limits = limits or ApiLimits()
    types = problem_types()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "GlobE Link hub API",
            "version": "1",
            "description": _info_description(limits),
        },
        "servers": [{"url": "/", "description": "This hub."}],
        "tags": [
            {"name": "operations", "description": "Health and this document."},
            {"name": "directory", "description": "Genesis, log, checkpoints and search."},
            {"name": "applications", "description": "Applying for membership."},
            {"name": "prekeys", "description": "Members' signed prekeys."},
            {
                "name": "messages",
                "description": "Envelopes, mailboxes, receipts and evidence (signed).",
            },
            {"name": "admin", "description": "Admin review and quorum signing (signed)."},
        ],
        "paths": _paths(limits),
        "components": {
            "schemas": _schemas(types, limits),
            "responses": _responses(types, limits),
            "securitySchemes": {
                "GlobeAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": HEADER,
                    "description": _SECURITY_DESCRIPTION,
                }
            },
        },
    }

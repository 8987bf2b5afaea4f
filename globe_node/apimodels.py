"""What each route of the local API takes, declared once (:mod:`globe_node.apiparams`).

Each JSON body's fields, the query parameters and the path parameters, with
their types, bounds, patterns and defaults: the guard in :mod:`globe_node.api`
parses every request with these objects (a handler reads its inputs from them
and nothing else) and :mod:`globe_node.apidoc` describes them.  Where a rule is
the protocol's or another module's, its own definition is used (the hidden
characters, case and language patterns, user names, upload ids, recipients per
envelope); the limits the message content imposes (PROTOCOL.md §8) are named
here once, and ``tests/node/test_api_openapi.py`` checks them against the
protocol's decoder.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Final

from globe_node.apiparams import (
    Choice,
    ChoiceSet,
    Integer,
    JsonBody,
    Key,
    PathParam,
    QFlag,
    QInt,
    QRequired,
    QText,
    Query,
    QueryShape,
    Shape,
    Text,
    defaulted,
    optional,
    required,
)
from globe_node.apischema import (
    HEX32,
    Component,
    JsonObject,
    anchored,
    compiled,
    ecma,
    multiline_text,
    one_line_text,
    visible,
)
from globe_node.errors import AmbiguousId, NotFound
from globe_node.roles import NAME_RE, Role
from globe_node.uploads import parse_upload_id
from globe_node.users import USER_NAME, check_name
from protocol.canonical import MAX_INT
from protocol.envelope import MAX_RECIPIENTS
from protocol.errors import GlobeError, InvalidIdentifier, UsageError
from protocol.ids import AUTHORITY_RE, ISO_COUNTRIES, AuthorityId
from protocol.membership import AUTHORITY_KINDS
from protocol.messages import (
    CASE_RE,
    LANGUAGE_RE,
    MAX_ATTACHMENTS,
    MAX_CONTENT_SIZE,
    MEDIA_TYPE_RE,
    ConsentDecision,
    Kind,
    Restriction,
    StatusState,
    Tlp,
    Urgency,
)
from protocol.profile import OFFENCE_AREAS

__all__ = [
    "API_MAX_BODY", "ASK_CONSENT", "ATTACHMENTS", "ATTACHMENT_NAME", "ATTACHMENT_NUMBER",
    "AUTHORITY", "AUTHORITY_ID", "BODY", "BODY_TEXT", "BUNDLE_ATTACHMENTS", "BUNDLE_MESSAGE",
    "CASE", "CASE_REF", "CASE_TEXT", "CONSENT_TO", "COUNTRY", "DEADLINE", "DECIDE", "DECISION",
    "DECISION_REASON", "EXPECTED", "FORWARD", "GRANTED_TO", "INACTIVE", "KIND", "LANGUAGE",
    "LANGUAGE_TEXT", "LIMIT", "MAX_ATTACHMENT_NAME", "MAX_CONSENT_TO", "MAX_COUNTRY_TEXT",
    "MAX_LIMIT", "MAX_MEDIA_TYPE", "MAX_SEARCH_TEXT", "MAX_SUBJECT", "MAX_TEXT", "MEDIA",
    "MEDIA_TYPE", "MESSAGE", "MESSAGE_ID", "NEW_DEADLINE", "NEW_MESSAGE", "NEW_STATUS", "NEW_USER",
    "NOTE", "NOTHING", "NUMBER", "OFFENCE", "PURPOSE", "REASON_TEXT", "REPLY", "REPLY_BODY",
    "REPLY_KIND", "REPLY_SUBJECT", "RESTRICTIONS", "ROLE", "SEARCH_LANGUAGE", "SEARCH_MAX",
    "SEARCH_QUERY", "SEND_KIND", "SEND_KINDS", "SEND_TEAM", "STATE", "STATUS_BODY", "STATUS_REASON",
    "SUBJECT", "SUBJECT_TEXT", "TEXT", "TLP", "TO", "UNREAD", "UPLOAD", "UPLOAD_ID", "UPLOAD_NAME",
    "URGENCY", "USER", "Authorities", "AuthorityKey", "MessageKey", "MessageRefQuery", "UploadIds",
    "UserName",
]  # fmt: skip

#: A local API request body: room for the largest message text (about 1 MiB) as JSON,
#: escapes included; the content rules then decide (§8).
API_MAX_BODY: Final = 4 * 1024 * 1024
#: Items of a list query (inbox, outbox).
MAX_LIMIT: Final = 1000
#: Results of a directory search.
SEARCH_MAX: Final = 200
#: A message's subject, in code points (PROTOCOL.md §8: ``subject``).
MAX_SUBJECT: Final = 300
#: A status reason, consent purpose or consent reason (§8.2, §8.5).
MAX_TEXT: Final = 2000
#: Authorities one consent names (§8.5: ``consent.to``).
MAX_CONSENT_TO: Final = 64
#: Text of a directory search (``q``), in code points.
MAX_SEARCH_TEXT: Final = 200
#: A country of a directory search: a code or a name (the longest is 42 code points).
MAX_COUNTRY_TEXT: Final = 100
#: An attachment's name (``protocol.messages.check_attachment_name``: 1-255 code points).
MAX_ATTACHMENT_NAME: Final = 255
#: A media type: a type and a subtype of up to 64 characters each (``MEDIA_TYPE_RE``).
MAX_MEDIA_TYPE: Final = 64 + 1 + 64


# --- identifiers -----------------------------------------------------------------------------

#: ``CC-NAME``: an ISO 3166-1 country of the protocol's list, then the name part of
#: ``protocol.ids``' own pattern.
_AUTHORITY: Final = f"(?:{'|'.join(sorted(ISO_COUNTRIES))})-{ecma(AUTHORITY_RE).partition(')-')[2]}"

AUTHORITY_ID = Component(
    "AuthorityId",
    lambda: {
        "type": "string",
        "pattern": anchored(_AUTHORITY),
        "description": "A member authority: ISO 3166-1 alpha-2 country, `-`, 2-16 of `A-Z0-9` "
        "(PROTOCOL.md §3.1), e.g. `FR-PNF`.",
    },
)
MESSAGE_ID = Component(
    "MessageId",
    lambda: {
        "type": "string",
        "pattern": anchored(HEX32),
        "description": "A message id: 32 lower-case hex digits (PROTOCOL.md §3.1).",
    },
)
UPLOAD_ID = Component(
    "UploadId",
    lambda: {
        "type": "string",
        "pattern": anchored(HEX32),
        "description": "A staged upload: 32 lower-case hex digits, from `POST /api/uploads`.",
    },
)


@dataclasses.dataclass(frozen=True, slots=True)
class Authorities(Shape[list[AuthorityId]]):
    """A list of 1 to ``max_items`` distinct authority ids."""

    refusals: ClassVar[tuple[type[GlobeError], ...]] = (UsageError, InvalidIdentifier)

    max_items: int

    def schema(self) -> JsonObject:
        """A non-empty array of distinct authority ids."""
        return {
            "type": "array",
            "items": AUTHORITY_ID,
            "minItems": 1,
            "maxItems": self.max_items,
            "uniqueItems": True,
        }

    def parse(self, value: object, name: str) -> list[AuthorityId]:
        """The ids, parsed strictly (a malformed one is an ``invalid-identifier`` problem)."""
        if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
            raise UsageError(f"'{name}' is a non-empty list of authority ids")
        if len(value) > self.max_items or len(set(value)) != len(value):
            raise UsageError(f"'{name}' names 1 to {self.max_items} authorities, each once")
        return [AuthorityId.parse(x) for x in value]


@dataclasses.dataclass(frozen=True, slots=True)
class UploadIds(Shape[tuple[str, ...]]):
    """``attachments``: ids of the user's staged uploads (never a file path)."""

    max_items: int

    def schema(self) -> JsonObject:
        """An array of distinct upload ids."""
        return {
            "type": "array",
            "items": UPLOAD_ID,
            "maxItems": self.max_items,
            "uniqueItems": True,
        }

    def parse(self, value: object, name: str) -> tuple[str, ...]:
        """The ids; an object (a path in any form) is refused with the reason."""
        if not isinstance(value, list):
            raise UsageError(f"'{name}' is a list of upload ids")
        if any(isinstance(item, dict) for item in value):
            raise UsageError(
                f"'{name}' lists upload ids: the node never reads a file named in a request;"
                " upload the bytes with POST /api/uploads first"
            )
        ids = tuple(parse_upload_id(item) for item in value)
        if len(ids) > self.max_items:
            raise UsageError(f"'{name}' lists at most {self.max_items} upload ids")
        if len(set(ids)) != len(ids):
            raise UsageError("an upload is attached once")
        return ids


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorityKey(Shape[AuthorityId]):
    """An authority id in a path: parsed strictly (``invalid-identifier`` otherwise)."""

    refusals: ClassVar[tuple[type[GlobeError], ...]] = (InvalidIdentifier,)

    def schema(self) -> Component:
        """The authority id component."""
        return AUTHORITY_ID

    def parse(self, value: object, name: str) -> AuthorityId:
        """The id."""
        return AuthorityId.parse(value)


@dataclasses.dataclass(frozen=True, slots=True)
class UserName(Shape[str]):
    """A user name, checked by :func:`globe_node.users.check_name` (its pattern, once)."""

    def schema(self) -> JsonObject:
        """The pattern of :data:`globe_node.users.USER_NAME`."""
        return {"type": "string", "pattern": anchored(ecma(USER_NAME))}

    def parse(self, value: object, name: str) -> str:
        """The name."""
        if not isinstance(value, str):
            raise UsageError(f"'{name}' is a string")
        return check_name(value)


@dataclasses.dataclass(frozen=True, slots=True)
class MessageKey(Key):
    """A message id or a prefix of one; the guard resolves it (``ambiguous-id`` when several
    messages share the prefix)."""

    refusals: ClassVar[tuple[type[GlobeError], ...]] = (NotFound, AmbiguousId)


# --- message text ----------------------------------------------------------------------------

SUBJECT_TEXT: Final = Text(
    f"1-{MAX_SUBJECT} characters on one line, without control, bidi or zero-width characters",
    min_len=1, max_len=MAX_SUBJECT, pattern=one_line_text(),
)  # fmt: skip
#: The message text.  The sealed content as a whole (UTF-8, JSON-escaped, with every
#: other field) must also fit ``MAX_CONTENT_SIZE`` bytes: a 400 ``usage`` problem beyond.
BODY_TEXT: Final = Text(f"at most {MAX_CONTENT_SIZE} characters", max_len=MAX_CONTENT_SIZE)
REASON_TEXT: Final = Text(
    f"1-{MAX_TEXT} characters without control, bidi or zero-width characters (tab and"
    " newline allowed)",
    min_len=1, max_len=MAX_TEXT, pattern=multiline_text(),
)  # fmt: skip
LANGUAGE_TEXT: Final = Text("an ISO 639-1 code (two lower-case letters)", pattern=ecma(LANGUAGE_RE))
CASE_TEXT: Final = Text(
    "a case reference: 1-64 of A-Z a-z 0-9 . _ / - (starting with a letter or digit)",
    pattern=ecma(CASE_RE),
)
#: An attachment's display name (``protocol.messages.check_attachment_name``).
ATTACHMENT_NAME: Final = "(?!\\.\\.?$)" + visible("\\t\\n/\\\\") + "+"
MEDIA_TYPE: Final = ecma(MEDIA_TYPE_RE)

# --- bodies ----------------------------------------------------------------------------------

#: Kinds a new message may have; the others answer a message (reply, status, consent).
SEND_KINDS: Final = (Kind.INFORMATION, Kind.REQUEST, Kind.BULLETIN)
_NEW_TO = "Recipients: active members other than this node (1 to {n}, each once)."

TO = required("to", Authorities(MAX_RECIPIENTS), _NEW_TO.format(n=MAX_RECIPIENTS))
SUBJECT = required("subject", SUBJECT_TEXT, "One line.")
BODY = required("body", BODY_TEXT, "The message text.")
SEND_KIND = defaulted(
    "kind",
    Choice(Kind, SEND_KINDS, "send starts an information, request or bulletin; use reply for "
           "others"),
    Kind.INFORMATION,
    "What the message is; answers, status updates and consent go through their own routes.",
)  # fmt: skip
LANGUAGE = defaulted("language", LANGUAGE_TEXT, "en", "ISO 639-1 code of the text.")
URGENCY = defaulted(
    "urgency", Choice(Urgency), Urgency.ROUTINE, "Sets a request's default deadline."
)
TLP = defaulted("tlp", Choice(Tlp), Tlp.AMBER, "Traffic Light Protocol 2.0 handling.")
RESTRICTIONS = defaulted(
    "restrictions", ChoiceSet(Restriction), frozenset(), "Use restrictions beyond TLP."
)
CASE = optional("case", CASE_TEXT, "The case the message belongs to.")
DEADLINE = optional(
    "deadline",
    Integer(0, MAX_INT),
    "Answer deadline (Unix time) of a request: in the future, and only with kind `request` "
    "(a 400 `usage` problem otherwise); without it the urgency decides.",
)
ATTACHMENTS = defaulted(
    "attachments",
    UploadIds(MAX_ATTACHMENTS),
    (),
    "Ids of the user's staged uploads (`POST /api/uploads`), each once; the message takes "
    "them.  Never a file path: the node opens no file a request names.",
)
SEND_TEAM = optional(
    "team",
    Text(
        "a team name: 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)",
        pattern=ecma(NAME_RE),
    ),
    "The team a message in no case (or in a new case) goes to: one of yours (a supervisor: "
    "any); default: your first team, or none (the intake team's).  A known case decides "
    "for itself.",
)
NEW_MESSAGE = JsonBody(
    "NewMessage",
    "A new message.  The sealed content as a whole (UTF-8 JSON with every field) must fit "
    f"{MAX_CONTENT_SIZE} bytes (PROTOCOL.md §8): a 400 `usage` problem otherwise.",
    (TO, SUBJECT, BODY, SEND_KIND, LANGUAGE, URGENCY, TLP, RESTRICTIONS, CASE, DEADLINE,
     ATTACHMENTS, SEND_TEAM),
    API_MAX_BODY,
)  # fmt: skip

REPLY_KIND = defaulted(
    "kind",
    Choice(Kind, (Kind.ANSWER, Kind.INFORMATION), "a reply is an answer or information"),
    Kind.ANSWER,
    "An answer (moves the request it replies to) or further information.",
)
REPLY_BODY = required("body", BODY_TEXT, "The reply's text.")
REPLY_SUBJECT = optional("subject", SUBJECT_TEXT, "Default: `Re:` the original subject.")
REPLY = JsonBody(
    "Reply",
    "A reply to the sender of a received message, with its language, urgency, handling and case.",
    (REPLY_KIND, REPLY_BODY, REPLY_SUBJECT, ATTACHMENTS),
    API_MAX_BODY,
)

STATE = required(
    "state",
    Choice(StatusState),
    "The request's new state (PROTOCOL.md §8.2.1): a recipient of the request reports "
    "`acknowledged`, `in-progress`, `declined` or `answered`; its requester `closed`, "
    "`withdrawn` or `extended` (to every recipient).",
)
EXPECTED = optional(
    "expected",
    Integer(0, MAX_INT),
    "Expected answer date (Unix time, in the future): required with `acknowledged`, allowed "
    "with `in-progress` (a 400 `usage` problem saying what to pass otherwise).",
)
NEW_DEADLINE = optional(
    "deadline",
    Integer(0, MAX_INT),
    "The new deadline (Unix time) of `extended`, later than the current one; with no other "
    "state (a 400 `usage` problem otherwise).",
)
STATUS_REASON = optional(
    "reason",
    REASON_TEXT,
    "Why; required with `declined` and `withdrawn` (a 400 `usage` problem otherwise).",
)
STATUS_BODY = optional("body", BODY_TEXT, "The text; default: `Status: <state> (<reason>)`.")
NEW_STATUS = JsonBody(
    "NewStatus",
    "A status update on a request, to its other party or parties (PROTOCOL.md §8.2.1).",
    (STATE, EXPECTED, STATUS_REASON, NEW_DEADLINE, STATUS_BODY),
    API_MAX_BODY,
)

NOTE = optional("note", BODY_TEXT, "A note to the new recipients (the forward's text).")
FORWARD = JsonBody(
    "Forward",
    "A forward of a held message with its proof of origin and attachments.",
    (TO, NOTE),
    API_MAX_BODY,
)

CONSENT_TO = required(
    "to",
    Authorities(MAX_CONSENT_TO),
    f"Who the message would go to (1 to {MAX_CONSENT_TO}, each once).",
)
PURPOSE = required("purpose", REASON_TEXT, "Why the message should go further.")
ASK_CONSENT = JsonBody(
    "ConsentRequest",
    "A request to the originator of a held message to consent to its onward use.",
    (CONSENT_TO, PURPOSE),
    API_MAX_BODY,
)

DECISION = required("decision", Choice(ConsentDecision), "Grant or refuse.")
GRANTED_TO = optional(
    "to",
    Authorities(MAX_CONSENT_TO),
    "Grant to these only (default: everyone the request named).",
)
DECISION_REASON = optional(
    "reason", REASON_TEXT, "Why; required to refuse (a 400 `usage` problem otherwise)."
)
DECIDE = JsonBody(
    "ConsentAnswer",
    "The originator's answer to a consent request it received.",
    (DECISION, GRANTED_TO, DECISION_REASON),
    API_MAX_BODY,
)

USER = required("name", UserName(), "The user's name.")
ROLE = required(
    "role",
    Choice(Role),
    "Only `operator` may be created over the API (by an operator); investigators and "
    "supervisors are added with `globe-node users add` on the node itself (403 otherwise).",
)
NEW_USER = JsonBody("NewUser", "A new local API user.", (USER, ROLE), API_MAX_BODY)

#: What a route that takes no input accepts: ``{}``, or nothing at all.
NOTHING = JsonBody("Empty", "No fields: `{}`, or no body at all.", (), API_MAX_BODY)


# --- queries and paths -----------------------------------------------------------------------

LIMIT = Query("limit", QInt(1, MAX_LIMIT, 50), "How many, newest first.")
UNREAD = Query("unread", QFlag(), "`1`: unread messages only; any other value: all.")
UPLOAD_NAME = Query(
    "name",
    QRequired(
        QText(
            f"1-{MAX_ATTACHMENT_NAME} characters without path separators, control, bidi or"
            " zero-width characters",
            MAX_ATTACHMENT_NAME, ATTACHMENT_NAME,
        ),
        "name the file: POST /api/uploads?name=FILE&media_type=TYPE",
    ),
    "The file's display name (never a path: nothing is read or written under it).",
)  # fmt: skip
MEDIA = Query(
    "media_type",
    QText("a lower-case media type, type/subtype", MAX_MEDIA_TYPE, MEDIA_TYPE),
    "Its media type; default `application/octet-stream`.",
)
COUNTRY = Query(
    "country",
    QText(
        f"at most {MAX_COUNTRY_TEXT} characters without control, bidi or zero-width characters",
        MAX_COUNTRY_TEXT, one_line_text(),
    ),
    "Members of this country: its ISO 3166-1 alpha-2 code (any case), or its name, the "
    "beginning or a part of it, in Arabic, English, French or Spanish (case, accents and Arabic "
    "letter variants ignored).  Ranks the results.",
)  # fmt: skip
KIND = Query(
    "kind",
    QText("an authority kind", max(map(len, AUTHORITY_KINDS)), choices=AUTHORITY_KINDS),
    "Members of this competence (authority kind).",
)
OFFENCE = Query(
    "offence",
    QText("an offence area", max(map(len, OFFENCE_AREAS)), choices=frozenset(OFFENCE_AREAS)),
    "Members whose profile names this offence area (PROTOCOL.md §6.7).",
)
SEARCH_LANGUAGE = Query(
    "language",
    QText("an ISO 639-1 code (two lower-case letters)", 2, ecma(LANGUAGE_RE)),
    "Members working in this language.",
)
TEXT = Query(
    "q",
    QText(
        f"at most {MAX_SEARCH_TEXT} characters without control, bidi or zero-width characters",
        MAX_SEARCH_TEXT, multiline_text(),
    ),
    "The authority id, the name, or the country as `country` takes it (whole, beginning or "
    "part; case and accents ignored).  Ranks the results after `country`.",
)  # fmt: skip
INACTIVE = Query("inactive", QFlag(), "`1`: suspended and revoked members too.")
SEARCH_QUERY: Final = (COUNTRY, KIND, OFFENCE, SEARCH_LANGUAGE, TEXT, INACTIVE)

MESSAGE = PathParam(
    "id",
    MessageKey("[0-9a-f]{4,32}", "message"),
    "A message id (32 lower-case hex digits), or a unique prefix of at least 4 of them (as "
    "git takes one): a prefix that matches several messages is a 409 `ambiguous-id` naming "
    "them.  A message the user may not see does not exist for it (404).",
)
#: The attachment number as the route's path matches it (1-3 digits; from 1).
ATTACHMENT_NUMBER: Final = "[0-9]{1,3}"
NUMBER = PathParam("n", Key(ATTACHMENT_NUMBER, "attachment"), "The attachment's position, from 1.")
UPLOAD = PathParam("id", Key(HEX32, "upload"), "An upload id (32 lower-case hex digits).")
CASE_REF = PathParam("case", Key(ecma(CASE_RE), "case"), "A case reference.")
AUTHORITY = PathParam("authority", AuthorityKey(), "A member's authority id.")


# --- evidence bundles (PROTOCOL.md §9.3) -------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class MessageRefQuery(QueryShape[str | None]):
    """A message id or a unique prefix of at least 4 hex digits, as a query parameter;
    absent or empty is ``None``."""

    pattern: ClassVar[str] = "[0-9a-f]{4,32}"

    def schema(self) -> JsonObject:
        """``type: string``, the id's pattern (empty allowed: absent)."""
        return {"type": "string", "pattern": f"^(?:{self.pattern})?$"}

    def parse(self, raw: str | None, name: str) -> str | None:
        """The reference, or ``None``."""
        if not raw:
            return None
        if not compiled(self.pattern).fullmatch(raw):
            raise UsageError(f"'{name}' is a message id, or a unique prefix of 4 or more of it")
        return raw


BUNDLE_MESSAGE = Query(
    "message",
    MessageRefQuery(),
    "Only this message of the case and the messages that reply to it, at any depth (one"
    " exchange); default: the whole case.",
)
BUNDLE_ATTACHMENTS = Query(
    "attachments",
    QText("`included` or `digests`", 8, choices=frozenset({"included", "digests"})),
    "`digests`: the bundle lists each attachment's SHA-256 without the file; default: the"
    " files are included.",
)

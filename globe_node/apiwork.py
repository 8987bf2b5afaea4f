"""What the local API's routes of the investigator's work take and answer, declared once
(:mod:`globe_node.apiparams`): the filters of the inbox and the outbox, request lists,
cases and notes, filing, text search, statistics and users.  The handlers and route rows
are :mod:`globe_node.apiworkroutes` (the inbox's and the outbox's, :mod:`globe_node.api`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Final

from globe_node.apimodels import (
    AUTHORITY_ID,
    CASE_TEXT,
    LIMIT,
    MAX_LIMIT,
    MESSAGE_ID,
    UNREAD,
)
from globe_node.apiparams import (
    JsonBody,
    QFlag,
    QInt,
    QOptInt,
    QRequired,
    QText,
    Query,
    QueryShape,
    Text,
    optional,
    required,
)
from globe_node.apischema import (
    Component,
    JsonObject,
    closed_object,
    compiled,
    ecma,
    enum_of,
    multiline_text,
    nullable,
    one_line_text,
    view_schema,
)
from globe_node.cases import CaseState
from globe_node.holds import HoldView
from globe_node.queries import Cursor
from globe_node.roles import NAME_RE, Role
from globe_node.states import Delivery, RequestState
from globe_node.users import UserInfo
from globe_node.workviews import (
    CaseInfo,
    CasePage,
    NoteView,
    RequestPage,
    RequestView,
    SearchHit,
    SearchPage,
    StatsReport,
    StatsRow,
    ThreadItem,
)
from protocol.canonical import MAX_INT
from protocol.errors import UsageError
from protocol.ids import AUTHORITY_RE
from protocol.messages import CASE_RE, Kind, Restriction, Tlp, Urgency

__all__ = [
    "ASSIGN",
    "ASSIGNEE",
    "ASSIGNEE_FILTER",
    "ASSIGN_TEAM",
    "CASES",
    "CASES_QUERY",
    "CASE_FIELD",
    "CASE_FILTER",
    "CASE_INFO",
    "CASE_STATE",
    "CASE_VIEW",
    "COUNTERPART",
    "CURSOR",
    "DELIVERY_FILTER",
    "DIRECTION",
    "DUE_WITHIN",
    "FILE",
    "FILED",
    "FILE_CASE",
    "FROM",
    "HOLD",
    "HOLDS",
    "HOLD_REASON",
    "INBOX_QUERY",
    "MAX_HOLD_REASON",
    "MAX_NOTE",
    "MAX_OFFSET",
    "MAX_TITLE",
    "MESSAGE_KIND",
    "NEW_CASE",
    "NEW_HOLD",
    "NEW_NOTE",
    "NEW_TITLE",
    "NOTE",
    "NOTE_BODY",
    "OFFSET",
    "OUTBOX_QUERY",
    "OVERDUE",
    "RENAME",
    "REQUEST",
    "REQUESTS",
    "REQUESTS_QUERY",
    "REQUEST_STATE",
    "REQUEST_STATUS",
    "RESTRICTION",
    "SEARCH_QUERY",
    "SINCE",
    "STATS",
    "STATS_QUERY",
    "STATS_ROW",
    "TEAM",
    "TEAM_FILTER",
    "TEXT_FILTER",
    "TEXT_HIT",
    "TEXT_SEARCH",
    "TITLE",
    "TLP_FILTER",
    "TO",
    "UNCASED",
    "UNTIL",
    "URGENCY_FILTER",
    "USERS",
    "CursorQuery",
    "Q",
    "case_schema",
]  # fmt: skip

#: How far into a list a page may start.
MAX_OFFSET: Final = 1_000_000
#: A case's title, in code points (one line).
MAX_TITLE: Final = 200
#: A note's text, in code points.
MAX_NOTE: Final = 20_000
#: Days ahead a request list may look (``due_within``).
MAX_DAYS: Final = 3650
#: A legal hold's reason, in code points.
MAX_HOLD_REASON: Final = 2000

_NAME: Final = ecma(NAME_RE)
_NAME_RULE: Final = "1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"

# --- queries ---------------------------------------------------------------------------------

OFFSET = Query("offset", QInt(0, MAX_OFFSET, 0), "How many to skip (paging), from 0.")
DIRECTION = Query(
    "direction",
    QText("in or out", 3, choices=frozenset({"in", "out"})),
    "`out`: requests this node sent (awaiting their answer); `in`: requests it received "
    "(awaiting ours).  Both when absent.",
)
REQUEST_STATUS = Query(
    "status",
    QText("open, ended or all", 5, choices=frozenset({"open", "ended", "all"})),
    "`open` (the default: sent, received, acknowledged, in progress), `ended` (answered, "
    "declined, closed, withdrawn) or `all`.",
)
OVERDUE = Query("overdue", QFlag(), "`1`: open requests past their deadline only.")
DUE_WITHIN = Query(
    "due_within",
    QOptInt(0, MAX_DAYS),
    "Open requests whose deadline is between now and this many days ahead.",
)
COUNTERPART = Query(
    "counterpart",
    QText("an authority id (CC-NAME)", 19, ecma(AUTHORITY_RE)),
    "Only those exchanged with this authority.",
)
CASE_FILTER = Query(
    "case", QText("a case reference", 64, ecma(CASE_RE)), "Only those filed under this case."
)
UNCASED = Query("uncased", QFlag(), "`1`: only those filed under no case.")
URGENCY_FILTER = Query(
    "urgency",
    QText("urgent, priority or routine", 8, choices=frozenset(u.value for u in Urgency)),
    "Only this urgency.",
)
TLP_FILTER = Query(
    "tlp",
    QText("a TLP level", 12, choices=frozenset(t.value for t in Tlp)),
    "Only this TLP level (`AMBER%2BSTRICT` in a URL).",
)
RESTRICTION = Query(
    "restriction",
    QText("a use restriction", 23, choices=frozenset(r.value for r in Restriction)),
    "Only those carrying this use restriction.",
)
REQUESTS_QUERY: Final = (
    DIRECTION, REQUEST_STATUS, OVERDUE, DUE_WITHIN, COUNTERPART, CASE_FILTER, UNCASED,
    URGENCY_FILTER, TLP_FILTER, RESTRICTION, LIMIT, OFFSET,
)  # fmt: skip

CASE_STATE = Query(
    "state",
    QText("open or closed", 6, choices=frozenset(s.value for s in CaseState)),
    "Only open or only closed cases.",
)
TEAM_FILTER = Query("team", QText(f"a team name: {_NAME_RULE}", 64, _NAME), "Only this team's.")
ASSIGNEE_FILTER = Query(
    "assignee", QText(f"a user name: {_NAME_RULE}", 64, _NAME), "Only those assigned to this user."
)
CASES_QUERY: Final = (CASE_STATE, TEAM_FILTER, ASSIGNEE_FILTER, LIMIT, OFFSET)

#: What a text search takes: its words (globe_node/search.py counts them).
_WORDS: Final = QText(
    "at most 200 characters without control, bidi or zero-width characters", 200,
    multiline_text(),
)  # fmt: skip
_WORDS_RULE: Final = (
    "Words that must all occur (a word ending in `*` matches as a prefix); case and accents "
    "are ignored."
)
Q = Query("q", QRequired(_WORDS, "say what to search for: ?q=WORDS"), _WORDS_RULE)
SEARCH_QUERY: Final = (Q, LIMIT, OFFSET)


@dataclasses.dataclass(frozen=True, slots=True)
class CursorQuery(QueryShape[Cursor | None]):
    """Where a page of a list starts: the ``next`` of the page before it; absent or empty
    is the first page."""

    pattern: ClassVar[str] = "[0-9]{1,16}\\.[0-9a-f]{1,32}"

    def schema(self) -> JsonObject:
        """``type: string`` and the cursor's form (empty allowed: the first page)."""
        return {"type": "string", "pattern": f"^(?:{self.pattern})?$"}

    def parse(self, raw: str | None, name: str) -> Cursor | None:
        """The cursor, or ``None``."""
        if not raw:
            return None
        if not compiled(self.pattern).fullmatch(raw):
            raise UsageError(f"'{name}' is the 'next' of a previous page (TIME.KEY)")
        return Cursor.decode(raw)


_KINDS: Final = frozenset(k.value for k in Kind)
_STATES: Final = frozenset(r.value for r in RequestState)
MESSAGE_KIND = Query(
    "kind", QText("a message kind", max(map(len, _KINDS)), choices=_KINDS),
    "Only messages of this kind.",
)  # fmt: skip
REQUEST_STATE = Query(
    "state", QText("a request's state", max(map(len, _STATES)), choices=_STATES),
    "Only requests in this workflow state (a sent one: with any of its counterparts).",
)  # fmt: skip
DELIVERY_FILTER = Query(
    "delivery",
    QText("queued, sent, delivered or failed", 9, choices=frozenset(d.value for d in Delivery)),
    "Only messages with a recipient in this delivery state.",
)
SINCE = Query("since", QOptInt(0, MAX_INT), "Received or sent at or after this time (Unix).")
UNTIL = Query(
    "until",
    QOptInt(0, MAX_INT),
    "Received or sent before this time (Unix; excluded): none at all when it is not after `since`.",
)
TEXT_FILTER = Query(
    "q",
    _WORDS,
    f"Only messages whose text (subject, body, attachment names) holds these words. {_WORDS_RULE}",
)
CURSOR = Query(
    "cursor",
    CursorQuery(),
    "The `next` of the previous page, to read on from there; absent: the newest.",
)
#: The inbox's and the outbox's filters (docs/ARCHITECTURE.md §11): each narrows the list.
INBOX_QUERY: Final = (
    COUNTERPART, MESSAGE_KIND, URGENCY_FILTER, TLP_FILTER, REQUEST_STATE, CASE_FILTER, SINCE,
    UNTIL, TEXT_FILTER, UNREAD, LIMIT, CURSOR,
)  # fmt: skip
OUTBOX_QUERY: Final = (
    COUNTERPART, MESSAGE_KIND, URGENCY_FILTER, TLP_FILTER, REQUEST_STATE, DELIVERY_FILTER,
    CASE_FILTER, SINCE, UNTIL, TEXT_FILTER, LIMIT, CURSOR,
)  # fmt: skip

FROM = Query("from", QOptInt(0, MAX_INT), "Start of the period, Unix time (default: 0).")
TO = Query("to", QOptInt(0, MAX_INT), "End of the period, Unix time, excluded (default: now).")
STATS_QUERY: Final = (FROM, TO)

# --- bodies ----------------------------------------------------------------------------------

TITLE_TEXT: Final = Text(
    f"1-{MAX_TITLE} characters on one line, without control, bidi or zero-width characters",
    min_len=1, max_len=MAX_TITLE, pattern=one_line_text(),
)  # fmt: skip
CASE_FIELD = required("case", CASE_TEXT, "The case reference (new on this node for a new case).")
TITLE = optional("title", TITLE_TEXT, "A title, for this node only (never sent).")
TEAM = optional(
    "team",
    Text(f"a team name: {_NAME_RULE}", pattern=_NAME),
    "The team whose case it is: one of yours (a supervisor: any); default: your first team, "
    "or none (the intake team's) when you are in none.",
)
ASSIGNEE = optional(
    "assignee",
    Text(f"a user name: {_NAME_RULE}", pattern=_NAME),
    "The user the case is assigned to: one who sees the case's team.",
)
NEW_CASE = JsonBody("NewCase", "A new case record.", (CASE_FIELD, TITLE, TEAM, ASSIGNEE), 64 * 1024)
NEW_TITLE = required("title", TITLE_TEXT, "The new title.")
RENAME = JsonBody("CaseTitle", "A case's new title.", (NEW_TITLE,), 64 * 1024)
ASSIGN_TEAM = dataclasses.replace(TEAM, description="The team to give the case to.")
ASSIGN = JsonBody(
    "Assignment",
    "Give the case to a team (its messages, requests and reminders follow), a user, or both.",
    (ASSIGN_TEAM, ASSIGNEE),
    64 * 1024,
)
NOTE_BODY = required(
    "body",
    Text(
        f"1-{MAX_NOTE} characters without control, bidi or zero-width characters (tab and "
        "newline allowed)",
        min_len=1, max_len=MAX_NOTE, pattern=multiline_text(),
    ),
    "The note: kept on this node, sealed, never sent.",
)  # fmt: skip
NEW_NOTE = JsonBody("NewNote", "A note on a case.", (NOTE_BODY,), 256 * 1024)
HOLD_REASON = required(
    "reason",
    Text(
        f"1-{MAX_HOLD_REASON} characters without control, bidi or zero-width characters (tab"
        " and newline allowed)",
        min_len=1, max_len=MAX_HOLD_REASON, pattern=multiline_text(),
    ),
    "Why the case is held (a court order, an investigation): kept on this node, sealed.",
)  # fmt: skip
NEW_HOLD = JsonBody(
    "NewHold",
    "A legal hold: nothing filed under the case is purged until it is released.",
    (HOLD_REASON,),
    64 * 1024,
)
FILE_CASE = dataclasses.replace(CASE_FIELD, description="The case (one you see).")
FILE = JsonBody(
    "Filing",
    "File a message that names no case under a case of this node.",
    (FILE_CASE,),
    64 * 1024,
)

# --- answers ---------------------------------------------------------------------------------

_DIRECTION: Final = enum_of(["in", "out"])
REQUEST = Component(
    "Request",
    lambda: view_schema(
        RequestView,
        props={
            "direction": _DIRECTION, "urgency": enum_of(Urgency),
            "state": enum_of(RequestState), "tlp": nullable(enum_of(Tlp)),
            "restrictions": {"type": "array", "items": enum_of(Restriction)},
            "counterpart": AUTHORITY_ID, "message": MESSAGE_ID,
        },
    ),
)  # fmt: skip
REQUESTS = Component(
    "Requests",
    lambda: view_schema(
        RequestPage,
        props={"requests": {"type": "array", "items": REQUEST, "maxItems": MAX_LIMIT}},
    ),
)
CASE_INFO = Component(
    "CaseInfo", lambda: view_schema(CaseInfo, props={"state": enum_of(CaseState)})
)
CASES = Component(
    "Cases",
    lambda: view_schema(
        CasePage, props={"cases": {"type": "array", "items": CASE_INFO, "maxItems": MAX_LIMIT}}
    ),
)
THREAD_ITEM = Component(
    "ThreadItem",
    lambda: view_schema(
        ThreadItem, rename={"sender": "from"},
        props={"direction": _DIRECTION, "kind": enum_of(Kind), "id": MESSAGE_ID},
    ),
)  # fmt: skip
NOTE = Component("Note", lambda: view_schema(NoteView))


def case_schema() -> JsonObject:
    """A case: the record's fields, then its requests, messages and notes."""
    info = view_schema(CaseInfo, props={"state": enum_of(CaseState)})
    return closed_object(
        "A case: its record, its requests, every message in thread order and its notes.",
        {
            **info["properties"],
            "requests": {"type": "array", "items": REQUEST},
            "messages": {"type": "array", "items": THREAD_ITEM},
            "notes": {"type": "array", "items": NOTE},
        },
    )


CASE_VIEW = Component("Case", case_schema)
FILED = Component(
    "Filed",
    lambda: closed_object(
        "Where the message is filed now.",
        {"message": MESSAGE_ID, "case": {"type": "string"}, "team": nullable({"type": "string"})},
    ),
)
HOLD = Component("Hold", lambda: view_schema(HoldView))
HOLDS = Component(
    "Holds",
    lambda: closed_object(
        "The legal holds standing now, by case.",
        {"holds": {"type": "array", "items": HOLD}},
    ),
)
TEXT_HIT = Component(
    "TextHit",
    lambda: view_schema(SearchHit, props={"kind": enum_of(["message", "case", "note"])}),
)
TEXT_SEARCH = Component(
    "TextSearch",
    lambda: view_schema(
        SearchPage, props={"hits": {"type": "array", "items": TEXT_HIT, "maxItems": MAX_LIMIT}}
    ),
)
STATS_ROW = Component(
    "StatsRow",
    lambda: view_schema(
        StatsRow,
        props={"direction": enum_of(["sent", "received"]), "kind": enum_of(Kind)},
    ),
)
STATS = Component(
    "Stats",
    lambda: view_schema(
        StatsReport, rename={"start": "from", "end": "to"},
        props={"rows": {"type": "array", "items": STATS_ROW}},
    ),
)  # fmt: skip
USERS = Component(
    "Users",
    lambda: closed_object(
        "The node's users, by name, with their teams.",
        {
            "users": {
                "type": "array",
                "items": view_schema(UserInfo, props={"role": enum_of(Role)}),
            }
        },
    ),
)

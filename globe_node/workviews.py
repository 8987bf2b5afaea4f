"""Typed results of the investigator's work: message lists, requests, cases, notes, search
hits, statistics and the consent about a message's onward use, serialised only at the
local API (``to_json``), as in :mod:`globe_node.views`.

The shapes are what the CLI renders and what a web UI builds its screens on; lists
come in pages (``total``, ``offset``, ``limit``; the inbox and the outbox, which grow at
their top, with a cursor to the next page instead) so a screen can page through them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from globe_node.views import InboxItem, OutboxItem

__all__ = [
    "CaseInfo",
    "CasePage",
    "CaseView",
    "ConsentAnswer",
    "ConsentAsked",
    "ConsentView",
    "InboxPage",
    "NoteView",
    "OutboxPage",
    "RequestPage",
    "RequestView",
    "SearchHit",
    "SearchPage",
    "StatsReport",
    "StatsRow",
    "ThreadItem",
]


@dataclass(frozen=True, slots=True)
class RequestView:
    """An assistance request as one counterpart's workflow row: its state, the deadline
    (after extensions, and as first asked), the acknowledged expected answer date, when
    it was first responded to, answered or ended, and whether it is overdue or due soon."""

    message: str
    direction: str
    counterpart: str
    case: str | None
    team: str | None
    subject: str
    urgency: str
    tlp: str | None
    restrictions: tuple[str, ...]
    state: str
    created: int
    deadline: int
    asked: int | None
    expected: int | None
    first_response: int | None
    answered: int | None
    ended: int | None
    overdue: bool
    due_soon: bool

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "message": self.message, "direction": self.direction,
            "counterpart": self.counterpart, "case": self.case, "team": self.team,
            "subject": self.subject, "urgency": self.urgency, "tlp": self.tlp,
            "restrictions": list(self.restrictions), "state": self.state,
            "created": self.created, "deadline": self.deadline, "asked": self.asked,
            "expected": self.expected, "first_response": self.first_response,
            "answered": self.answered, "ended": self.ended, "overdue": self.overdue,
            "due_soon": self.due_soon,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class RequestPage:
    """One page of a request list, with how many match in all."""

    requests: tuple[RequestView, ...]
    total: int
    offset: int
    limit: int

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"requests": [r.to_json() for r in self.requests], "total": self.total,
                "offset": self.offset, "limit": self.limit}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """A case record with its counterparts, message count and open and overdue requests."""

    case: str
    title: str | None
    team: str | None
    assignee: str | None
    state: str
    created: int
    created_by: str
    updated: int
    counterparts: tuple[str, ...]
    message_count: int
    open: int
    overdue: int

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "case": self.case, "title": self.title, "team": self.team,
            "assignee": self.assignee, "state": self.state, "created": self.created,
            "created_by": self.created_by, "updated": self.updated,
            "counterparts": list(self.counterparts), "message_count": self.message_count,
            "open": self.open, "overdue": self.overdue,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class CasePage:
    """One page of the case list."""

    cases: tuple[CaseInfo, ...]
    total: int
    offset: int
    limit: int

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"cases": [c.to_json() for c in self.cases], "total": self.total,
                "offset": self.offset, "limit": self.limit}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ThreadItem:
    """One message of a case, with its subject and, for a status update, what it said."""

    id: str
    direction: str
    sender: str
    kind: str
    subject: str
    time: int
    in_reply_to: str | None
    status: str | None
    expected: int | None
    deadline: int | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form (the sender is ``from``)."""
        return {
            "id": self.id, "direction": self.direction, "from": self.sender, "kind": self.kind,
            "subject": self.subject, "time": self.time, "in_reply_to": self.in_reply_to,
            "status": self.status, "expected": self.expected, "deadline": self.deadline,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class NoteView:
    """A note on a case: local to this node, never sent."""

    id: str
    case: str
    user: str
    time: int
    body: str

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"id": self.id, "case": self.case, "user": self.user, "time": self.time,
                "body": self.body}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case: its record, its requests, every message in thread order and its notes."""

    info: CaseInfo
    requests: tuple[RequestView, ...]
    messages: tuple[ThreadItem, ...]
    notes: tuple[NoteView, ...]

    def to_json(self) -> dict[str, Any]:
        """The local API's form: the record's fields, then the three lists."""
        return {**self.info.to_json(), "requests": [r.to_json() for r in self.requests],
                "messages": [m.to_json() for m in self.messages],
                "notes": [n.to_json() for n in self.notes]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A match of a text search: a message, a case's title or a note."""

    kind: str
    id: str
    case: str | None
    time: int
    snippet: str

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"kind": self.kind, "id": self.id, "case": self.case, "time": self.time,
                "snippet": self.snippet}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of the matches a user may see, best first."""

    hits: tuple[SearchHit, ...]
    total: int
    offset: int
    limit: int

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"hits": [h.to_json() for h in self.hits], "total": self.total,
                "offset": self.offset, "limit": self.limit}  # fmt: skip


@dataclass(frozen=True, slots=True)
class StatsRow:
    """Messages of one kind exchanged with one counterpart (``None``: all of them) in one
    direction over the period; for requests, how they were handled and how fast."""

    direction: str
    counterpart: str | None
    kind: str
    count: int
    answered: int
    declined: int
    withdrawn: int
    open: int
    first_response_median_s: int | None
    first_response_p90_s: int | None
    answer_median_s: int | None
    answer_p90_s: int | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "direction": self.direction, "counterpart": self.counterpart, "kind": self.kind,
            "count": self.count, "answered": self.answered, "declined": self.declined,
            "withdrawn": self.withdrawn, "open": self.open,
            "first_response_median_s": self.first_response_median_s,
            "first_response_p90_s": self.first_response_p90_s,
            "answer_median_s": self.answer_median_s, "answer_p90_s": self.answer_p90_s,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class StatsReport:
    """Statistics of a period ``[start, end)``: one row per direction, counterpart and kind,
    then one per direction and kind over every counterpart (``counterpart`` null)."""

    start: int
    end: int
    rows: tuple[StatsRow, ...]

    def to_json(self) -> dict[str, Any]:
        """The local API's form (the period is ``from`` and ``to``)."""
        return {"from": self.start, "to": self.end, "rows": [r.to_json() for r in self.rows]}


@dataclass(frozen=True, slots=True)
class InboxPage:
    """One page of the inbox, newest first, and the cursor of the next page (or ``None``)."""

    messages: tuple[InboxItem, ...]
    next: str | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"messages": [m.to_json() for m in self.messages], "next": self.next}


@dataclass(frozen=True, slots=True)
class OutboxPage:
    """One page of the outbox, newest first, and the cursor of the next page (or ``None``)."""

    messages: tuple[OutboxItem, ...]
    next: str | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"messages": [m.to_json() for m in self.messages], "next": self.next}


@dataclass(frozen=True, slots=True)
class ConsentAnswer:
    """An originator's decision on a consent request: granted or refused, to whom, why."""

    id: str  # the decision's message id
    decision: str
    to: tuple[str, ...]
    reason: str | None
    time: int  # when it was received (an answer to this node) or sent (by this node)

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {"id": self.id, "decision": self.decision, "to": list(self.to),
                "reason": self.reason, "time": self.time}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConsentAsked:
    """A consent request this node sent to a message's originator, and its answer so far
    (``None``: pending)."""

    id: str  # the request's message id
    to: tuple[str, ...]
    purpose: str | None
    time: int
    answer: ConsentAnswer | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "id": self.id, "to": list(self.to), "purpose": self.purpose, "time": self.time,
            "answer": self.answer.to_json() if self.answer else None,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConsentView:
    """The consent about a held message's onward use: its originator (and the originator's
    own id of it), whether forwarding it to anyone outside ``allowed`` needs the
    originator's consent, the consent requests this node sent about it with their answers,
    and, for a consent request this node received, the answers this node gave."""

    message: str
    originator: str
    origin: str
    required: bool
    allowed: tuple[str, ...]
    asked: tuple[ConsentAsked, ...]
    answers: tuple[ConsentAnswer, ...]

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "message": self.message, "originator": self.originator, "origin": self.origin,
            "required": self.required, "allowed": list(self.allowed),
            "asked": [a.to_json() for a in self.asked],
            "answers": [a.to_json() for a in self.answers],
        }  # fmt: skip

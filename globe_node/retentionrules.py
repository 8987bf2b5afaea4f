"""What the retention rules of ``node.toml`` say about one stored message, and what is
left of a message once they purged it: no I/O, no clock (the time is an argument).

A rule looks at a message when its kind, TLP level and case are among those it names
(none named: every one) and it carries one of the restrictions the rule names (if it
names any).  Its days count from the message's time here (``since = "message"``:
received, or created for a sent one) or from the closing of the case the message is
filed under, while it is closed (``since = "case-closed"``).  Of the rules whose days
have passed, the first ``content`` rule wins over any ``attachments`` rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from globe_node.config import CaseScope, PurgeScope, RetentionRule, Since
from protocol.errors import UsageError
from protocol.messages import MessageContent

__all__ = ["DAY", "PURGED", "Facts", "due_purge", "is_due", "matches", "tombstone",
           "without_attachments"]  # fmt: skip

DAY: Final = 86_400
#: The reason a purged status or consent keeps in place of its text.
PURGED: Final = "(purged)"


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class Facts:
    """A stored message as the rules see it."""

    direction: str  # in | out
    content: MessageContent
    case: str | None
    time: int  # received here, or created for a sent message
    purged_what: PurgeScope | None


def matches(rule: RetentionRule, m: Facts) -> bool:
    """Whether ``rule`` looks at ``m``: its kind, TLP level, restrictions and case."""
    h = m.content.handling
    return (
        (not rule.kinds or m.content.kind in rule.kinds)
        and (not rule.tlp or h.tlp in rule.tlp)
        and (not rule.restrictions or bool(rule.restrictions & h.restrictions))
        and (rule.cases is CaseScope.ANY or (rule.cases is CaseScope.NONE) == (m.case is None))
    )


def is_due(rule: RetentionRule, m: Facts, closed: int | None, now: int) -> bool:
    """Whether ``rule``'s days have passed for ``m`` (``closed``: its case's closing)."""
    start = m.time if rule.since is Since.MESSAGE else closed if m.case is not None else None
    return start is not None and start + rule.after_days * DAY <= now


def due_purge(
    rules: Sequence[RetentionRule], m: Facts, *, closed: int | None, now: int
) -> tuple[RetentionRule, PurgeScope] | None:
    """What the rules purge of ``m`` now (``closed``: when its case closed, if it is
    closed): its content under the first due ``content`` rule; else its attachments under
    the first due ``attachments`` rule, if it has any; else nothing."""
    due = [r for r in rules if matches(r, m) and is_due(r, m, closed, now)]
    if m.purged_what is not PurgeScope.CONTENT:
        for r in due:
            if r.purge is PurgeScope.CONTENT:
                return r, PurgeScope.CONTENT
    if m.purged_what is None and m.content.attachments:
        for r in due:
            if r.purge is PurgeScope.ATTACHMENTS:
                return r, PurgeScope.ATTACHMENTS
    return None


def tombstone(c: MessageContent, *, rule: str, when: int) -> MessageContent:
    """What is left of ``c`` once its content is purged: its kind, handling, case, thread
    and workflow facts, and a text saying when and under which rule the rest went."""
    said = f"purged on {_date(when)} under rule {rule}"
    body = (
        f"The content of this message was {said} ([retention] of node.toml). This node"
        " keeps its ids, times, counterparts, envelope hash, receipts and delivery evidence."
    )
    if c.attachments:
        digests = "; ".join(f"{a.size} bytes, sha256 {a.sha256.hex()}" for a in c.attachments)
        body += f"\nIts {len(c.attachments)} attachment(s): {digests}."
    st, co = c.status, c.consent
    return MessageContent(
        kind=c.kind, subject=f"[{said}]", body=body, language=c.language, urgency=c.urgency,
        handling=c.handling, case=c.case, in_reply_to=c.in_reply_to, deadline=c.deadline,
        status=None if st is None else dataclasses.replace(st, reason=st.reason and PURGED),
        consent=None if co is None else dataclasses.replace(
            co, purpose=co.purpose and PURGED, reason=co.reason and PURGED
        ),
    )  # fmt: skip


def without_attachments(c: MessageContent, *, rule: str, when: int) -> MessageContent:
    """``c`` without its attachments (their keys gone), its body saying which went when."""
    said = f"{len(c.attachments)} attachment(s) purged on {_date(when)} under rule {rule}"
    listed = "; ".join(f"{a.name} ({a.size} bytes, sha256 {a.sha256.hex()})" for a in c.attachments)

    def noted(note: str) -> MessageContent:
        return dataclasses.replace(
            c, body=f"{c.body}\n\n{note}" if c.body else note, attachments=()
        )

    try:
        out = noted(f"[{said}: {listed}]")
        out.encode()
    except UsageError:  # too long with the names: the note is shorter than a manifest entry
        out = noted(f"[{said}]")
    return out

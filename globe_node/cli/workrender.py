"""How the investigator's work reads for people: request lists, cases and a case, text
search, statistics, and the lines a request or a status update takes wherever it is shown.

Each renderer takes the JSON object the local API answered (and tolerates any shape:
the daemon is not trusted to be well-formed) and returns lines, with control and bidi
characters made visible.  A request always shows its deadline and, once acknowledged,
the expected answer date.
"""

from __future__ import annotations

from typing import Any

from globe_io.cli import iso
from globe_node.cli.common import items
from globe_node.cli.common import text as _t

__all__ = [
    "case",
    "cases",
    "page_note",
    "request_line",
    "requests",
    "search",
    "stats",
    "status_text",
]


def status_text(status: dict[str, Any]) -> str:
    """A status update in words: ``acknowledged, answer expected 2026-…``."""
    state = _t(status.get("state"))
    parts = [state]
    if status.get("expected") is not None:
        parts.append(f"answer expected {iso(status.get('expected'))}")
    if status.get("deadline") is not None:
        parts.append(f"new deadline {iso(status.get('deadline'))}")
    line = ", ".join(parts)
    if status.get("reason"):
        line += f": {_t(status.get('reason'))}"
    return line


def request_line(r: dict[str, Any]) -> str:
    """One request row: who, state, deadline (flags), expected date, case, subject."""
    flags = " OVERDUE" if r.get("overdue") else " due soon" if r.get("due_soon") else ""
    expected = f", expected {iso(r.get('expected'))}" if r.get("expected") is not None else ""
    way = "to" if r.get("direction") == "out" else "from"
    return (
        f"{_t(r.get('message'))} {way} {_t(r.get('counterpart')):<12} "
        f"{_t(r.get('state')):<12} {_t(r.get('urgency')):<8} "
        f"deadline {iso(r.get('deadline'))}{flags}{expected}  "
        f"case {_t(r.get('case'))}  {_t(r.get('subject'))}"
    )


def page_note(d: dict[str, Any], name: str) -> list[str]:
    """``N-M of T`` under a page that does not hold every match."""
    shown = len(items(d, name))
    total, offset = d.get("total"), d.get("offset")
    if not isinstance(total, int) or not isinstance(offset, int) or shown >= total:
        return []
    return [f"({offset + 1}-{offset + shown} of {total}: --offset {offset + shown} for more)"]


def requests(d: dict[str, Any]) -> list[str]:
    """``globe-node requests``."""
    lines = [request_line(r) for r in items(d, "requests")]
    return lines + page_note(d, "requests") if lines else ["no requests"]


def _case_head(c: dict[str, Any]) -> str:
    return (
        f"{_t(c.get('case')):<24} {_t(c.get('state')):<6} team {_t(c.get('team')):<12} "
        f"assignee {_t(c.get('assignee')):<12} {_t(c.get('message_count')):>4} msgs "
        f"{_t(c.get('open')):>3} open {_t(c.get('overdue')):>3} overdue  "
        f"last {iso(c.get('updated'))}"
    )


def cases(d: dict[str, Any]) -> list[str]:
    """``globe-node cases``."""
    lines = []
    for c in items(d, "cases"):
        parts = c.get("counterparts")
        counterparts = ",".join(map(_t, parts)) if isinstance(parts, list) else _t(parts)
        title = f"  {_t(c.get('title'))}" if c.get("title") else ""
        lines.append(f"{_case_head(c)}  {counterparts}{title}")
    return lines + page_note(d, "cases") if lines else ["no cases"]


def _thread_line(m: dict[str, Any]) -> str:
    status = ""
    if m.get("status"):
        status = " [" + status_text({**m, "state": m.get("status")}) + "]"
    return (
        f"  {_t(m.get('id'))} {iso(m.get('time'))} {_t(m.get('direction')):<3} "
        f"{_t(m.get('from')):<12} {_t(m.get('kind')):<16} {_t(m.get('subject'))}{status}"
    )


def case(d: dict[str, Any]) -> list[str]:
    """``globe-node case show``: the record, its requests, messages and notes."""
    title = f": {_t(d.get('title'))}" if d.get("title") else ""
    parts = d.get("counterparts")
    lines = [
        f"case {_t(d.get('case'))}{title}",
        f"  {_t(d.get('state'))}, team {_t(d.get('team'))}, assignee {_t(d.get('assignee'))};"
        f" opened {iso(d.get('created'))} by {_t(d.get('created_by'))}",
        "  counterparts: "
        + (", ".join(map(_t, parts)) if isinstance(parts, list) and parts else "-"),
    ]
    sections = (
        ("requests:", [f"  {request_line(r)}" for r in items(d, "requests")]),
        ("messages:", [_thread_line(m) for m in items(d, "messages")]),
        ("notes:", [
            f"  {iso(n.get('time'))} {_t(n.get('user'))}: "
            + "\n      ".join(_t(x) for x in str(n.get("body") or "").split("\n"))
            for n in items(d, "notes")
        ]),
    )  # fmt: skip
    for heading, rows in sections:
        if rows:
            lines += [heading, *rows]
    return lines


def search(d: dict[str, Any]) -> list[str]:
    """``globe-node search``."""
    lines = [
        f"{_t(h.get('kind')):<7} {_t(h.get('id'))} {iso(h.get('time'))} case "
        f"{_t(h.get('case'))}: {_t(h.get('snippet'))}"
        for h in items(d, "hits")
    ]
    return lines + page_note(d, "hits") if lines else ["nothing found"]


def _span(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    seconds = float(value)
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"


def stats(d: dict[str, Any]) -> list[str]:
    """``globe-node stats``: one line per direction, counterpart and kind."""
    lines = [f"period {iso(d.get('from'))} to {iso(d.get('to'))}"]
    for r in items(d, "rows"):
        line = (
            f"{_t(r.get('direction')):<8} {_t(r.get('counterpart') or 'all'):<12} "
            f"{_t(r.get('kind')):<16} {_t(r.get('count')):>5}"
        )
        if r.get("kind") == "request":
            line += (
                f"  answered {_t(r.get('answered'))}, declined {_t(r.get('declined'))},"
                f" withdrawn {_t(r.get('withdrawn'))}, open {_t(r.get('open'))};"
                f" first response {_span(r.get('first_response_median_s'))}"
                f" (p90 {_span(r.get('first_response_p90_s'))}),"
                f" answer {_span(r.get('answer_median_s'))}"
                f" (p90 {_span(r.get('answer_p90_s'))})"
            )
        lines.append(line)
    return lines if len(lines) > 1 else [*lines, "nothing exchanged in this period"]

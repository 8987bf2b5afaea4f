"""How the daemon's answers read for people: one renderer per view, each taking the JSON
object the local API answered (and tolerating any shape: the daemon is not trusted to be
well-formed) and returning lines, with control and bidi characters made visible."""

from __future__ import annotations

from typing import Any

import orjson

from globe_io.cli import iso
from globe_node.cli.common import items, obj
from globe_node.cli.common import text as _t

__all__ = [
    "alerts",
    "audit",
    "case",
    "cases",
    "inbox",
    "message",
    "outbox",
    "ping",
    "search",
    "stats",
    "status",
]


def status(d: dict[str, Any]) -> list[str]:
    """``globe-node status``."""
    directory, hub, queue = obj(d.get("directory")), obj(d.get("hub")), obj(d.get("outbox"))
    head = _t(directory.get("head"))
    reachable = hub.get("reachable")
    reach = "not tried yet" if reachable is None else "reachable" if reachable else "unreachable"
    push = "push connected" if hub.get("push_connected") else "push not connected"
    waiting = ", ".join(f"{_t(k)} {_t(v)}" for k, v in sorted(queue.items())) or "empty"
    found = d.get("alerts")
    n_alerts = len(found) if isinstance(found, list) else found
    return [
        f"authority:  {_t(d.get('authority'))} (membership: {_t(d.get('membership'))})",
        f"directory:  entry {_t(directory.get('seq'))}, head {head[:16]}, "
        f"{_t(directory.get('age_s'))} s old (limit {_t(directory.get('max_age_s'))} s), "
        f"{_t(directory.get('members'))} members",
        f"hub:        {_t(hub.get('url'))} {reach}, {push}",
        f"outbox:     {waiting}",
        f"inbox:      {_t(d.get('inbox_unread'))} unread",
        f"requests:   {_t(d.get('requests_open'))} open, {_t(d.get('requests_overdue'))} overdue",
        f"alerts:     {_t(n_alerts)}",
        *_behind(obj(directory.get("behind_peer"))),
    ]


def _behind(behind: dict[str, Any]) -> list[str]:
    if not behind:
        return []
    return [
        f"WARNING:    {_t(behind.get('peer'))} has seen a membership log of"
        f" {_t(behind.get('seq'))} entries that the hub does not serve (since"
        f" {iso(behind.get('since'))}); messages received meanwhile are marked suspect"
        " (see: globe-node alerts)"
    ]


def inbox(d: dict[str, Any]) -> list[str]:
    """``globe-node inbox``."""
    lines = []
    for m in items(d, "messages"):
        unread = " " if m.get("read") else "*"
        atts = m.get("attachments")
        clip = f" [{len(atts)} att]" if isinstance(atts, list) and atts else ""
        lines.append(
            f"{unread} {_t(m.get('id')):<32} {iso(m.get('received'))} "
            f"{_t(m.get('from')):<12} {_t(m.get('kind')):<16} {_t(m.get('urgency')):<8} "
            f"TLP:{_t(m.get('tlp')):<12} {_t(m.get('case'))} {_t(m.get('subject'))}{clip}"
            + (" [SUSPECT]" if m.get("suspect") else "")
        )
    return lines or ["no messages"]


def outbox(d: dict[str, Any]) -> list[str]:
    """``globe-node outbox``."""
    lines = []
    for m in items(d, "messages"):
        states = []
        for rid, value in sorted(obj(m.get("recipients")).items()):
            r = obj(value)
            state = f"{_t(rid)}:{_t(r.get('state'))}"
            if r.get("via"):
                state += f" via {_t(r.get('via'))}"
            if r.get("error"):
                state += f" ({_t(r.get('error'))}, {_t(r.get('attempts'))} attempts)"
            states.append(state)
        lines.append(
            f"{_t(m.get('id')):<32} {iso(m.get('created'))} {_t(m.get('kind')):<16} "
            f"{_t(m.get('case'))}  {'; '.join(states)}"
        )
    return lines or ["no messages"]


def _header(d: dict[str, Any], c: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    restrictions = c.get("restrictions") or []
    handling = f"TLP:{_t(c.get('tlp'))}"
    if isinstance(restrictions, list) and restrictions:
        handling += " " + ", ".join(_t(r) for r in restrictions)
    lines = []
    if d.get("direction") == "in":
        lines.append(
            f"from:      {_t(meta.get('sender'))} (received {iso(meta.get('received'))}"
            f" via {_t(meta.get('via'))}, {_t(meta.get('order'))})"
        )
        if meta.get("suspect"):
            lines.append(f"SUSPECT:   {_t(meta.get('suspect'))}")
    else:
        to = ", ".join(
            f"{_t(k)} ({_t(obj(v).get('state'))})"
            for k, v in sorted(obj(meta.get("recipients")).items())
        )
        lines.append(f"to:        {to} (created {iso(meta.get('created'))})")
    return [
        *lines,
        f"kind:      {_t(c.get('kind'))}   urgency: {_t(c.get('urgency'))}   {handling}",
        f"subject:   {_t(c.get('subject'))}",
    ]


def message(d: dict[str, Any]) -> list[str]:
    """``globe-node show``: headers, attachments, the body, a forwarded original."""
    c, meta = obj(d.get("content")), obj(d.get("meta"))
    lines = _header(d, c, meta)
    for label, key in (("case", "case"), ("reply to", "in_reply_to"), ("language", "language")):
        if c.get(key):
            lines.append(f"{label + ':':<10} {_t(c.get(key))}")
    if c.get("deadline"):
        lines.append(f"deadline:  {iso(c.get('deadline'))}")
    for key in ("status", "consent"):
        if c.get(key):
            dumped = orjson.dumps(c.get(key), option=orjson.OPT_SORT_KEYS).decode()
            lines.append(f"{key + ':':<10} {_t(dumped)}")
    for n, att in enumerate(items(c, "attachments"), start=1):
        lines.append(
            f"attachment {n}: {_t(att.get('name'))} ({_t(att.get('size'))} bytes, "
            f"{_t(att.get('media_type'))})"
        )
    lines.append("")
    # the body keeps its line breaks; other control characters are made visible
    lines += [_t(line) for line in str(c.get("body") or "").split("\n")]
    fwd = obj(c.get("forwarded"))
    if fwd:
        lines += [
            "",
            f"--- forwarded: written by {_t(fwd.get('originator'))} (message"
            f" {_t(fwd.get('message'))}, {iso(fwd.get('created'))}), signature verified ---",
        ]
        for g in (g for g in fwd.get("consents") or [] if isinstance(g, dict)):
            to = ", ".join(_t(x) for x in g.get("to") or [])
            lines.append(f"consent:   {_t(g.get('from'))} granted onward use to {to}")
        lines += message({"direction": "out", "content": fwd.get("content"), "meta": {
            "recipients": {str(r): {} for r in fwd.get("recipients") or []},
            "created": fwd.get("created")}})  # fmt: skip
    return lines


def cases(d: dict[str, Any]) -> list[str]:
    """``globe-node cases``."""
    lines = []
    for c in items(d, "cases"):
        parts = c.get("counterparts")
        counterparts = ",".join(map(_t, parts)) if isinstance(parts, list) else _t(parts)
        lines.append(
            f"{_t(c.get('case')):<24} {_t(c.get('messages')):>4} msgs  "
            f"{_t(c.get('open')):>3} open  {_t(c.get('overdue')):>3} overdue  "
            f"last {iso(c.get('last'))}  {counterparts}"
        )
    return lines or ["no cases"]


def case(d: dict[str, Any]) -> list[str]:
    """``globe-node case``: its requests, then its messages."""
    lines = [f"case {_t(d.get('case'))}"]
    requests = items(d, "requests")
    if requests:
        lines.append("requests:")
    for r in requests:
        overdue = " OVERDUE" if r.get("overdue") else ""
        lines.append(
            f"  {_t(r.get('message_id', r.get('id'))):<32} {_t(r.get('direction')):<3} "
            f"{_t(r.get('counterpart')):<12} {_t(r.get('urgency')):<8} "
            f"{_t(r.get('state')):<12} deadline {iso(r.get('deadline'))}{overdue}"
        )
    messages = items(d, "messages")
    if messages:
        lines.append("messages:")
    for m in messages:
        who = m.get("from") or m.get("sender") or m.get("counterpart")
        when = m.get("received") or m.get("created") or m.get("time")
        lines.append(
            f"  {_t(m.get('id')):<32} {iso(when)} {_t(m.get('direction')):<3} "
            f"{_t(who):<12} {_t(m.get('kind')):<16} {_t(m.get('subject'))}"
        )
    return lines


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
    """``globe-node stats``."""
    lines = []
    for cid, value in sorted(obj(d.get("counterparts")).items()):
        s = obj(value)
        lines.append(
            f"{_t(cid):<20} {_t(s.get('requests')):>4} requests  "
            f"{_t(s.get('answered')):>4} answered  first response "
            f"{_span(s.get('mean_first_response_s'))}  answer {_span(s.get('mean_answer_s'))}"
        )
    return lines or ["no requests yet"]


def search(d: dict[str, Any]) -> list[str]:
    """``globe-node directory search``."""
    lines = []
    for r in items(d, "results"):
        kinds, langs = r.get("kinds"), r.get("languages")
        lines.append(
            f"{_t(r.get('authority')):<20} {_t(r.get('status')):<10} "
            f"{','.join(map(_t, kinds)) if isinstance(kinds, list) else '-':<28} "
            f"{','.join(map(_t, langs)) if isinstance(langs, list) else '-':<10} "
            f"{_t(r.get('name'))}"
        )
        lines.append(
            f"{'':<20} fingerprint {_t(r.get('fingerprint'))}"
            + (f"  endpoint {_t(r.get('endpoint'))}" if r.get("endpoint") else "")
        )
    return lines or ["no matching members"]


def ping(d: dict[str, Any]) -> list[str]:
    """``globe-node ping``: the direct path and the hub path."""

    def leg(name: str) -> str:
        r = obj(d.get(name))
        if r.get("ok"):
            ms = r.get("ms")
            return f"{name}: ok" + (f" in {ms:.1f} ms" if isinstance(ms, int | float) else "")
        return f"{name}: failed" + (f" ({_t(r.get('error'))})" if r.get("error") else "")

    return [f"{_t(d.get('authority'))}: {leg('direct')}; {leg('hub')}"]


def alerts(d: dict[str, Any]) -> list[str]:
    """``globe-node alerts``."""
    lines = [
        f"{_t(a.get('id')):>5} {iso(a.get('time'))} {_t(a.get('kind')):<20} {_t(a.get('detail'))}"
        for a in items(d, "alerts")
    ]
    return lines or ["no alerts"]


def audit(d: dict[str, Any]) -> list[str]:
    """``globe-node audit``: the entries, then the verdict on the hash chain."""
    lines = [
        f"{_t(e.get('seq')):>6} {iso(e.get('time'))} {_t(e.get('user')):<16} "
        f"{_t(e.get('action')):<16} {_t(e.get('subject'))}"
        for e in items(d, "entries")
    ]
    if d.get("verified") is True:
        lines.append("audit chain verified")
    else:
        lines.append("AUDIT CHAIN DOES NOT VERIFY: the audit log was altered")
    return lines

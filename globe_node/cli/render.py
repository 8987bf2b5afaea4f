"""How the daemon's answers read for people: one renderer per view, each taking the JSON
object the local API answered (and tolerating any shape: the daemon is not trusted to be
well-formed) and returning lines, with control and bidi characters made visible."""

from __future__ import annotations

from typing import Any

from globe_io.cli import iso
from globe_node.cli import workrender
from globe_node.cli.common import items, obj
from globe_node.cli.common import text as _t

__all__ = [
    "alerts",
    "audit",
    "inbox",
    "message",
    "outbox",
    "ping",
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
        *_reminders(obj(d.get("reminders"))),
        *_disk(d.get("disk")),
        *_inactive(d.get("membership")),
        *_behind(obj(directory.get("behind_peer"))),
    ]


def _reminders(r: dict[str, Any]) -> list[str]:
    """The reminders addressed to the user, and the reminder command's failures."""
    notices = items(r, "notices")
    lines = [f"reminders:  {len(notices)} for you" if notices else "reminders:  none for you"]
    lines += [f"  {iso(n.get('time'))} {_t(n.get('kind'))}: {_t(n.get('detail'))}" for n in notices]
    hook = obj(r.get("hook"))
    if hook.get("failures"):
        lines.append(
            f"WARNING:    the reminder command failed {_t(hook.get('failures'))} of"
            f" {_t(hook.get('runs'))} times (see the daemon's log)"
        )
    return lines


def _disk(disk: object) -> list[str]:
    """The node directory's disk use (globe_node/diskuse.py), when the daemon says it."""
    if not isinstance(disk, dict):
        return []

    def size(key: str) -> str:
        value = disk.get(key)
        return _t(value) if not isinstance(value, int) else f"{value / 1e6:.1f} MB"

    return [
        f"disk:       database {size('database_bytes')}, attachments {size('blob_bytes')},"
        f" staged uploads {size('upload_bytes')}; {size('free_bytes')} free"
    ]


def _inactive(membership: object) -> list[str]:
    if membership not in ("suspended", "revoked"):
        return []
    return [
        f"WARNING:    this node is {membership}: the hub and every peer refuse what it sends"
        " and it receives nothing; 'globe-node alerts' says at which log entry and why"
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
        atts = m.get("attachments")  # how many the message carries
        clip = f" [{atts} att]" if type(atts) is int and atts > 0 else ""
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
        states = {k: obj(v).get("state") for k, v in obj(meta.get("recipients")).items()}
        # a forwarded original's recipients come without a state: their names alone
        to = ", ".join(
            _t(k) + (f" ({_t(state)})" if state is not None else "")
            for k, state in sorted(states.items())
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
    if c.get("case"):
        lines.append(f"case:      {_t(c.get('case'))}")
    elif d.get("case"):  # a message that names no case, filed under one on this node
        lines.append(f"case:      {_t(d.get('case'))} (filed here)")
    for label, key in (("reply to", "in_reply_to"), ("language", "language")):
        if c.get(key):
            lines.append(f"{label + ':':<10} {_t(c.get(key))}")
    if c.get("deadline"):
        lines.append(f"deadline:  {iso(c.get('deadline'))}")
    if c.get("status"):
        lines.append(f"status:    {workrender.status_text(obj(c.get('status')))}")
    if c.get("consent"):
        lines.append(f"consent:   {_consent(obj(c.get('consent')))}")
    for r in items(d, "requests"):
        lines.append(f"request:   {workrender.request_line(r)}")
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


def _consent(c: dict[str, Any]) -> str:
    """A consent request or decision in words."""
    to = ", ".join(_t(x) for x in c.get("to") or []) if isinstance(c.get("to"), list) else "-"
    about = f"message {_t(c.get('message'))} to {to}"
    if c.get("decision"):
        why = f": {_t(c.get('reason'))}" if c.get("reason") else ""
        return f"{_t(c.get('decision'))} for {about}{why}"
    return f"asked for {about}: {_t(c.get('purpose'))}"


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
        + (f" (for {_t(a.get('to'))})" if a.get("to") else "")
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

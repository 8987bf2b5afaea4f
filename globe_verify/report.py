"""The human-readable chain of custody of a verified bundle (``globe-verify`` without ``--json``).

Per message, in time order: what it is and its handling code, who signed it (authority,
certified name, certificate serial, key, authority fingerprint) and when, to whom, the
hub's acceptance and delivery, each recipient's receipt and the attachments; then the
membership facts the verification relied on, what the bundle does not prove, and every
failure.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from protocol.bundle import BundleReport, Provenance
from protocol.custody import MemberFacts, MessageFacts

__all__ = ["render"]

_TLP_ORDER: Final = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")
_NOT_PROVEN: Final = (
    "What this bundle does not prove: that no other message of the case exists (it shows",
    "what the exporter chose to include), what the encrypted bodies say beyond the signed",
    "contents, or, without a pinned fingerprint, that this is the real network's genesis.",
)


def iso(t: int) -> str:
    """UTC time, ISO 8601."""
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe(value: object) -> str:
    return _UNSAFE.sub("?", str(value))


def render(report: BundleReport, *, source: str) -> list[str]:
    """The report as lines for people."""
    p = report.provenance
    verdict = "VERIFIED" if report.ok else f"REFUSED ({len(report.failures)} failure(s))"
    lines = [f"GlobE Link evidence bundle: {verdict}", f"file       {_safe(source)}"]
    if p is not None:
        lines += _provenance(p, report.messages)
    for n, m in enumerate(report.messages, start=1):
        lines += ["", *_message(n, m)]
    if report.members:
        lines += ["", "Membership facts relied on (the log, as of the hub's checkpoint)"]
        lines += [line for m in report.members for line in _member(m)]
    lines += ["", *_NOT_PROVEN]
    if report.failures:
        lines += ["", "Failures (each one line: reason: item: detail)"]
        lines += [f"  {_safe(f.line())}" for f in report.failures]
    return lines


def _provenance(p: Provenance, messages: tuple[MessageFacts, ...]) -> list[str]:
    pin = (
        "pinned: it matches"
        if p.pinned
        else "NOT PINNED: compare it with the fingerprint the network's secretariat publishes"
    )
    scope = f"case {_safe(p.case)}" if p.case else "no case"
    if p.message:
        scope += f", the exchange of message {p.message}"
    files = "attachments included" if p.attachments_included else "attachment digests only"
    lines = [
        f"network    {_safe(p.network_name)} ({p.network_id})",
        f"genesis    fingerprint {p.genesis_fingerprint}",
        f"           {pin}",
        f"exported   by {p.exporter} at {iso(p.exported)}: {scope}; {files}",
        f"log        entries 1-{p.log_seq}, head {p.log_head[:16]}..., hub checkpoint"
        f" {iso(p.checkpoint_time)}",
        f"manifest   {p.manifest_digest}",
    ]
    if messages:
        top = max((m.tlp for m in messages), key=_TLP_ORDER.index)
        lines += [
            "",
            f"HANDLING   this bundle holds TLP:{top} material: keep and pass the file on"
            " at that level",
        ]
    return lines


def _message(n: int, m: MessageFacts) -> list[str]:
    restrictions = "".join(f", {r}" for r in m.restrictions)
    lines = [
        f"{n}. {m.kind} {m.message_id}  [TLP:{m.tlp}{restrictions}]",
        f"   subject    {_safe(m.subject)}",
    ]
    signer = (
        f"{m.signer.authority} ({_safe(m.signer.name)}), certificate {m.signer.serial},"
        f" key {m.signer.key}, fingerprint {m.signer.fingerprint}"
        if m.signer is not None
        else f"{m.sender} (NOT a certified, active member then: see the failures)"
    )
    lines += [
        f"   signed     {iso(m.created)} by {signer}",
        f"   to         {', '.join(m.recipients)}",
    ]
    if m.in_reply_to:
        lines.append(f"   replies to {m.in_reply_to}")
    if m.case:
        lines.append(f"   case       {_safe(m.case)}")
    for e in m.evidence:
        why = f" ({e.reason})" if e.reason else ""
        lines.append(f"   hub        {e.kind} at {iso(e.time)}{why} for {', '.join(e.recipients)}")
    if not m.evidence:
        lines.append("   hub        no hub evidence in the bundle (delivered directly, or held by"
                     " its sender)")  # fmt: skip
    lines += [f"   receipt    {r.recipient} at {iso(r.time)} (key {r.key})" for r in m.receipts]
    for a in m.attachments:
        where = f"included as {a.item}" if a.item else f"NOT included, SHA-256 {a.sha256}"
        lines.append(f"   attachment {a.index}: {_safe(a.name)} ({a.media_type}, {a.size} bytes),"
                     f" {where}")  # fmt: skip
    if m.forwarded is not None:
        f = m.forwarded
        who = f.signer.fingerprint if f.signer else "NOT certified then"
        lines.append(f"   forwards   {f.message_id} of {f.sender}, {iso(f.created)}, TLP:{f.tlp}"
                     f" (fingerprint {who})")  # fmt: skip
    if m.basis:
        lines.append(f"   exported   on the basis of: {m.basis}")
    if "intelligence-only" in m.restrictions:
        lines.append("   !          INTELLIGENCE ONLY: not evidence without a formal MLA request")
    return lines


def _member(m: MemberFacts) -> list[str]:
    lines = [f"  {m.authority}  {_safe(m.name)}"]
    for seq, time, action, status, serial, key in m.stages:
        lines.append(f"    entry {seq} at {iso(time)}: {action} -> {status} (certificate {serial},"
                     f" key {key})")  # fmt: skip
    return lines

"""The console's pages of the membership log, verified from the pinned genesis: the
members by country and competence, the log with the hub's checkpoint, and the network's
statistics (the hub's readiness and, if the hub lets this workstation read it, its
Prometheus metrics).

The log is public: these pages need no admin key.  Each one fetches the whole log and
verifies it as ``globe-admin log`` does (:func:`globe_admin.members.read_log`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from globe_admin.console import labels
from globe_admin.console.app import console_of, page_of
from globe_admin.members import read_log
from globe_io.hubapi import Readiness
from globe_io.webui.i18n import Formats
from protocol.directory import DirectoryState, HeadRelation, Member, MemberStatus
from protocol.errors import GlobeError
from protocol.membership import AUTHORITY_KINDS

__all__ = ["DIRECTORY", "parse_metrics"]

#: Log entries the log page shows at most, newest first.
LOG_LIMIT: Final = 500
#: One sample of the Prometheus text format: name, optional labels, value (a timestamp
#: may follow).
_SAMPLE: Final = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?[ \t]+([^ \t]+)(?:[ \t]+-?[0-9]+)?\Z"
)


def parse_metrics(text: str, names: Iterable[str]) -> dict[str, float]:
    """The value of each metric of ``names`` in a Prometheus text exposition, summed over
    its labels (a refusal counter by reason: the total); lines that are not samples, and
    values that are not finite numbers, are left out."""
    wanted = set(names)
    found: dict[str, float] = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line.strip())
        if sample is None or sample[1] not in wanted:
            continue
        try:
            value = float(sample[2])
        except ValueError:
            continue
        if math.isfinite(value):
            found[sample[1]] = found.get(sample[1], 0.0) + value
    return found


async def _log(request: web.Request) -> tuple[DirectoryState, list[dict[str, Any]], Any, Any]:
    ws = console_of(request).workstation
    async with ws.public_hub() as hub:
        return await read_log(ws.genesis, hub)


def _row(member: Member, times: dict[int, int]) -> dict[str, Any]:
    cert = member.certificate
    return {
        "authority": str(member.authority), "name": cert.name,
        "country": member.authority.country, "kinds": cert.kinds,
        "languages": cert.languages, "status": member.status.value,
        "since": times.get(member.admitted_seq), "reason": member.reason,
    }  # fmt: skip


async def members(request: web.Request) -> web.StreamResponse:
    """The members the verified log names, grouped by country (in the page's language),
    optionally only one country or competence, and how many active members hold each
    competence."""
    console, page = console_of(request), page_of(request)
    state, rows, _cp, _rel = await _log(request)
    fmt = Formats(page.language, console.clock)
    times = {r["seq"]: r["time"] for r in rows}
    kind = request.query.get("kind", "")
    kind = kind if kind in AUTHORITY_KINDS else ""
    country = request.query.get("country", "")
    everyone = sorted(
        (_row(m, times) for m in state.members.values()),
        key=lambda r: (fmt.country(r["authority"]), r["authority"]),
    )
    countries = sorted({(r["country"], fmt.country(r["authority"])) for r in everyone},
                       key=lambda c: c[1])  # fmt: skip
    shown = [
        r for r in everyone
        if (not kind or kind in r["kinds"]) and (not country or r["country"] == country)
    ]  # fmt: skip
    groups = [
        (name, list(found))
        for name, found in itertools.groupby(shown, key=lambda r: fmt.country(r["authority"]))
    ]
    by_kind = {
        k: sum(1 for r in everyone if k in r["kinds"] and r["status"] == "active")
        for k in labels.AUTHORITY_KINDS
    }
    return console.page(
        request, "members.html", groups=groups, by_kind=by_kind, total=len(everyone),
        countries=countries, kind=kind, country=country, seq=state.seq,
    )  # fmt: skip


async def log(request: web.Request) -> web.StreamResponse:
    """The membership log, verified from the pinned genesis, newest first, with its head
    and the hub's checkpoint."""
    console = console_of(request)
    state, rows, checkpoint, relation = await _log(request)
    return console.page(
        request, "log.html", rows=list(reversed(rows))[:LOG_LIMIT], total=len(rows),
        state=state, checkpoint=checkpoint, same=relation is HeadRelation.SAME,
    )  # fmt: skip


async def network(request: web.Request) -> web.StreamResponse:
    """The pinned genesis, the hub's readiness, the members by status, and the hub's
    metrics where it lets this workstation read them."""
    console = console_of(request)
    ws = console.workstation
    ready: Readiness | None = None
    ready_error = metrics_error = None
    metrics: dict[str, float] = {}
    async with ws.public_hub() as hub:
        state, _rows, _cp, _rel = await read_log(ws.genesis, hub)
        try:
            ready = await hub.readyz()
        except GlobeError as exc:
            ready_error = exc.detail
        try:
            raw, _type = await hub.request("GET", "/metrics")
            metrics = parse_metrics(raw.decode("utf-8", "replace"), labels.METRICS)
        except GlobeError as exc:
            metrics_error = exc.detail
    statuses = {s.value: 0 for s in MemberStatus}
    for m in state.members.values():
        statuses[m.status.value] += 1
    countries = len({m.authority.country for m in state.members.values()
                     if m.status is MemberStatus.ACTIVE})  # fmt: skip
    return console.page(
        request, "network.html", genesis=ws.genesis, seq=state.seq, statuses=statuses,
        countries=countries, ready=ready, ready_error=ready_error, metrics=metrics,
        metrics_error=metrics_error,
    )  # fmt: skip


#: (method, path, handler, name) of the log's pages, under the console's prefix.
DIRECTORY: Final = (
    ("GET", "/members", members, "members"),
    ("GET", "/log", log, "log"),
    ("GET", "/network", network, "network"),
)

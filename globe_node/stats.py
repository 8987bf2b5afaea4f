"""Statistics of a period: what was exchanged with whom, and how requests were handled.

For a period ``[from, to)`` (Unix seconds), in each direction (``sent``, ``received``),
per counterpart and per message kind: how many messages; for requests (counted in the
period in which they were sent, one per counterpart), how many were answered,
declined, withdrawn and are still open, and the time to the first response (any
status or answer from the recipient) and to the answer, as the median and the 90th
percentile.  Percentiles are nearest-rank (the value at rank ⌈p·n⌉ of the sorted
times), so every figure is a time that was observed; answer times count answered
requests only, so declined ones do not flatter them.  Rows with ``counterpart`` null
sum every counterpart.  Only what the user may see counts
(:mod:`globe_node.compartments`).  ``GET /api/stats`` answers JSON;
``GET /api/stats/csv`` the same rows as CSV.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from globe_node import db
from globe_node.compartments import visible
from globe_node.context import NodeContext
from globe_node.states import OPEN_REQUEST_STATES, RequestState
from globe_node.users import Principal
from globe_node.workviews import StatsReport, StatsRow
from protocol.messages import Kind

__all__ = ["CSV_COLUMNS", "Stats", "percentile", "to_csv"]

#: The CSV export's columns, in order (``StatsRow``'s fields).
CSV_COLUMNS: Final = (
    "direction", "counterpart", "kind", "count", "answered", "declined", "withdrawn", "open",
    "first_response_median_s", "first_response_p90_s", "answer_median_s", "answer_p90_s",
)  # fmt: skip
_DIRECTIONS: Final = {"out": "sent", "in": "received"}


def percentile(times: Sequence[int], p: float) -> int | None:
    """The nearest-rank ``p`` percentile (0 < p <= 1) of ``times`` (``None`` if empty)."""
    if not times:
        return None
    ordered = sorted(times)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


@dataclass
class _Tally:
    count: int = 0
    answered: int = 0
    declined: int = 0
    withdrawn: int = 0
    open: int = 0
    first: list[int] = field(default_factory=list)
    answer: list[int] = field(default_factory=list)

    def add_request(self, r: db.RequestRow) -> None:
        self.count += 1
        state = RequestState(r.state)
        self.answered += r.answered is not None
        self.declined += r.declined is not None
        self.withdrawn += state is RequestState.WITHDRAWN
        self.open += state in OPEN_REQUEST_STATES
        if r.first_response is not None:
            self.first.append(r.first_response - r.created)
        if r.answered is not None:
            self.answer.append(r.answered - r.created)

    def row(self, direction: str, counterpart: str | None, kind: str) -> StatsRow:
        requests = kind == Kind.REQUEST.value
        return StatsRow(
            direction, counterpart, kind, self.count, self.answered, self.declined,
            self.withdrawn, self.open,
            percentile(self.first, 0.5) if requests else None,
            percentile(self.first, 0.9) if requests else None,
            percentile(self.answer, 0.5) if requests else None,
            percentile(self.answer, 0.9) if requests else None,
        )  # fmt: skip


class Stats:
    """Statistics over a period, as the user sees the node."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    async def report(self, who: Principal, *, start: int, end: int) -> StatsReport:
        """The rows of ``[start, end)``: per counterpart, then over all counterparts."""
        tallies: dict[tuple[str, str | None, str], _Tally] = {}

        def tally(direction: str, counterpart: str, kind: str) -> Iterable[_Tally]:
            for who_ in (counterpart, None):
                yield tallies.setdefault((_DIRECTIONS[direction], who_, kind), _Tally())

        async with self.ctx.store.read() as s:
            for direction, counterpart, kind, n in await self._messages(s, who, start, end):
                for t in tally(direction, counterpart, kind):
                    t.count += n
            requests = (
                await s.execute(
                    select(db.RequestRow).where(
                        visible(who, db.RequestRow.team),
                        db.RequestRow.created >= start, db.RequestRow.created < end,
                    )
                )
            ).scalars()  # fmt: skip
            for r in requests:
                for t in tally(r.direction, r.counterpart, Kind.REQUEST.value):
                    t.add_request(r)
        rows = sorted(
            tallies.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or "", kv[0][2])
        )
        return StatsReport(start, end, tuple(t.row(*key) for key, t in rows))

    @staticmethod
    async def _messages(
        s: AsyncSession, who: Principal, start: int, end: int
    ) -> list[tuple[str, str, str, int]]:
        """(direction, counterpart, kind, count) of the messages of the period, requests
        left out (they are counted from their workflow rows)."""
        out = db.OutMessage
        sent = await s.execute(
            select(db.OutRecipient.recipient, out.kind, func.count())
            .join(out, out.message_id == db.OutRecipient.message_id)
            .where(visible(who, out.team), out.created >= start, out.created < end)
            .where(out.kind != Kind.REQUEST.value)
            .group_by(db.OutRecipient.recipient, out.kind)
        )
        inn = db.InMessage
        received = await s.execute(
            select(inn.sender, inn.kind, func.count())
            .where(visible(who, inn.team), inn.received >= start, inn.received < end)
            .where(inn.kind != Kind.REQUEST.value)
            .group_by(inn.sender, inn.kind)
        )
        return [("out", c, k, int(n)) for c, k, n in sent.all()] + [
            ("in", c, k, int(n)) for c, k, n in received.all()
        ]


def to_csv(report: StatsReport) -> str:
    """The report's rows as CSV (RFC 4180, a header line, empty cells for no value)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        values = row.to_json()
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return buffer.getvalue()

"""The lists an investigator works from: its requests sent and received, open or ended,
overdue or due within some days, awaiting its answer or the counterpart's, filtered by
counterpart, case, urgency and handling code, and paged.

A request is one workflow row per counterpart (``requests``); a row shows the
request's subject (opened here from the sealed content), its deadline after
extensions and as first asked, the acknowledged expected date, and whether it is
overdue or due soon.  Every list is filtered by the user's compartments
(:func:`globe_node.compartments.visible`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, func, select

from globe_node import db
from globe_node.compartments import visible
from globe_node.context import NodeContext
from globe_node.states import OPEN_REQUEST_STATES, RequestState
from globe_node.users import Principal
from globe_node.workviews import RequestPage, RequestView
from protocol.messages import MessageContent

__all__ = ["DAY", "RequestFilter", "Worklists", "due_soon_from"]

DAY: Final = 86400
_OPEN: Final = [s.value for s in OPEN_REQUEST_STATES]


def due_soon_from(created: int, deadline: int, threshold: int) -> int:
    """When a request becomes due soon: ``threshold`` seconds before its deadline, or a
    quarter of its whole time before it when that is shorter (an 8-hour request is not
    "due soon" from the moment it is sent)."""
    return deadline - min(threshold, max(0, deadline - created) // 4)


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """What a request list shows (every field narrows it; the defaults show open ones).

    ``status``: ``open`` (waiting for an answer), ``ended`` (answered, declined, closed,
    withdrawn) or ``all``; ``direction``: ``out`` (awaiting their answer) or ``in``
    (awaiting mine); ``due_within``: days until the deadline, open requests only.
    """

    direction: str | None = None
    status: str = "open"
    overdue: bool = False
    due_within: int | None = None
    counterpart: str | None = None
    case: str | None = None
    uncased: bool = False
    urgency: str | None = None
    tlp: str | None = None
    restriction: str | None = None

    def conditions(self, now: int) -> list[ColumnElement[bool]]:
        """The filter as SQL conditions on ``requests``."""
        r = db.RequestRow
        out: list[ColumnElement[bool]] = []
        if self.status == "open" or self.overdue or self.due_within is not None:
            out.append(r.state.in_(_OPEN))
        elif self.status == "ended":
            out.append(r.state.not_in(_OPEN))
        if self.overdue:
            out.append(r.deadline < now)
        if self.due_within is not None:
            out += [r.deadline >= now, r.deadline <= now + self.due_within * DAY]
        for column, value in (
            (r.direction, self.direction), (r.counterpart, self.counterpart),
            (r.case, self.case), (r.urgency, self.urgency), (r.tlp, self.tlp),
        ):  # fmt: skip
            if value is not None:
                out.append(column == value)
        if self.uncased:
            out.append(r.case.is_(None))
        if self.restriction is not None:
            out.append(r.restrictions.contains(self.restriction))
        return out


class Worklists:
    """Request lists and the request rows of one message or one case."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    async def page(
        self, who: Principal, want: RequestFilter, *, limit: int, offset: int
    ) -> RequestPage:
        """The requests ``who`` sees that match ``want``, by deadline."""
        now = self.ctx.now()
        where = [visible(who, db.RequestRow.team), *want.conditions(now)]
        q = select(db.RequestRow).where(*where)
        async with self.ctx.store.read() as s:
            total = int(
                (await s.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
            )
            rows = list(
                (
                    await s.execute(
                        q.order_by(db.RequestRow.deadline, db.RequestRow.message_id,
                                   db.RequestRow.counterpart).limit(limit).offset(offset)
                    )
                ).scalars()
            )  # fmt: skip
        return RequestPage(tuple(await self.views(rows)), total, offset, limit)

    async def of_message(self, message_id: str) -> tuple[RequestView, ...]:
        """The workflow rows of one request (none for another kind of message)."""
        return tuple(await self.views(await self.ctx.store.request_rows(message_id)))

    async def of_case(self, who: Principal, case: str) -> tuple[RequestView, ...]:
        """The requests filed under a case, by deadline."""
        q = (
            select(db.RequestRow)
            .where(db.RequestRow.case == case, visible(who, db.RequestRow.team))
            .order_by(db.RequestRow.deadline, db.RequestRow.message_id)
        )
        async with self.ctx.store.read() as s:
            rows = list((await s.execute(q)).scalars())
        return tuple(await self.views(rows))

    async def views(self, rows: Sequence[db.RequestRow]) -> list[RequestView]:
        """The rows as views, with the subject of each request opened."""
        subjects = await self._subjects(rows)
        now = self.ctx.now()
        threshold = self.ctx.config.reminder_due_soon
        out = []
        for r in rows:
            is_open = RequestState(r.state) in OPEN_REQUEST_STATES
            out.append(
                RequestView(
                    r.message_id, r.direction, r.counterpart, r.case, r.team,
                    subjects.get((r.direction, r.message_id), ""), r.urgency, r.tlp,
                    tuple(r.restrictions.split()), r.state, r.created, r.deadline, r.asked,
                    r.expected, r.first_response, r.answered, r.ended,
                    is_open and r.deadline < now,
                    is_open and due_soon_from(r.created, r.deadline, threshold) <= now
                    < r.deadline,
                )
            )  # fmt: skip
        return out

    async def _subjects(self, rows: Sequence[db.RequestRow]) -> dict[tuple[str, str], str]:
        """(direction, message id) -> the request's subject."""
        outs = sorted({r.message_id for r in rows if r.direction == "out"})
        ins = sorted({r.message_id for r in rows if r.direction == "in"})
        sealed: dict[tuple[str, str], bytes] = {}
        async with self.ctx.store.read() as s:
            if outs:
                found = await s.execute(
                    select(db.OutMessage.message_id, db.OutMessage.content).where(
                        db.OutMessage.message_id.in_(outs)
                    )
                )
                sealed.update({("out", mid): content for mid, content in found.all()})
            if ins:
                found = await s.execute(
                    select(db.InMessage.message_id, db.InMessage.content).where(
                        db.InMessage.message_id.in_(ins)
                    )
                )
                sealed.update({("in", mid): content for mid, content in found.all()})
        cipher = self.ctx.cipher
        return {
            key: MessageContent.decode(cipher.open(value, f"content:{key[1]}")).subject
            for key, value in sealed.items()
        }

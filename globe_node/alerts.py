"""Alerts: what a user must see, each kept once per cause with its evidence.

Two kinds share the feed (``GET /api/alerts``): the node's own alerts (a forked
directory head, a conflict, a refused envelope), which every user sees, and the
reminders of requests (:mod:`globe_node.reminders`), which only those who see the
request do — its assigned user, or, when it has none, its team — and supervisors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, true

from globe_node import db
from globe_node.compartments import visible
from globe_node.context import NodeContext
from globe_node.roles import sees_every_case
from globe_node.users import Principal

__all__ = ["AlertView", "Alerts"]

log = logging.getLogger("globe.node")


@dataclass(frozen=True, slots=True)
class AlertView:
    """One recorded alert (its evidence stays in the database); a reminder names its
    request (``message``) and the user it is for (``to``, ``None``: the team)."""

    id: int
    kind: str
    detail: str
    time: int
    message: str | None = None
    to: str | None = None

    def to_json(self) -> dict[str, object]:
        """The local API's form."""
        return {"id": self.id, "kind": self.kind, "detail": self.detail, "time": self.time,
                "message": self.message, "to": self.to}  # fmt: skip


def shown_to(who: Principal) -> ColumnElement[bool]:
    """The alerts ``who`` is shown: every node alert, and the reminders of requests it sees
    that are addressed to it or to no one in particular (a supervisor: all of them)."""
    addressed: ColumnElement[bool] = (
        true()
        if sees_every_case(who.role)
        else or_(db.Alert.user.is_(None), db.Alert.user == who.name)
    )
    return or_(db.Alert.material.is_(False), and_(visible(who, db.Alert.team), addressed))


class Alerts:
    """Record and list alerts."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    async def record(self, kind: str, detail: str, evidence: bytes | None) -> None:
        """Record an alert once per evidence (or per detail when there is none)."""
        if await self.ctx.store.add_alert(kind, detail, evidence, self.ctx.now()):
            log.warning("alert %s: %s", kind, detail)

    async def remind(
        self, kind: str, detail: str, key: bytes, *, message: str, team: str | None,
        to: str | None,
    ) -> bool:  # fmt: skip
        """Record a request's reminder once per ``key``; True if it is new."""
        new = await self.ctx.store.add_alert(
            kind, detail, key, self.ctx.now(), about=(message, team, to)
        )
        if new:
            log.info("reminder %s: %s", kind, detail)
        return new

    async def all(self, who: Principal | None = None) -> list[AlertView]:
        """Every alert ``who`` is shown (``None``: every alert), newest first."""
        rows = await self.ctx.store.alerts(None if who is None else shown_to(who))
        return [AlertView(a.id, a.kind, a.detail, a.time, a.message_id, a.user) for a in rows]

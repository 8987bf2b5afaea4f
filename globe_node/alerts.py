"""Alerts: what an operator must see, each kept once per cause with its evidence."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from globe_node.context import NodeContext

__all__ = ["AlertView", "Alerts"]

log = logging.getLogger("globe.node")


@dataclass(frozen=True, slots=True)
class AlertView:
    """One recorded alert (its evidence stays in the database)."""

    id: int
    kind: str
    detail: str
    time: int

    def to_json(self) -> dict[str, object]:
        """The local API's form."""
        return {"id": self.id, "kind": self.kind, "detail": self.detail, "time": self.time}


class Alerts:
    """Record and list alerts."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    async def record(self, kind: str, detail: str, evidence: bytes | None) -> None:
        """Record an alert once per evidence (or per detail when there is none)."""
        if await self.ctx.store.add_alert(kind, detail, evidence, self.ctx.now()):
            log.warning("alert %s: %s", kind, detail)

    async def all(self) -> list[AlertView]:
        """Every alert, newest first."""
        return [AlertView(a.id, a.kind, a.detail, a.time) for a in await self.ctx.store.alerts()]

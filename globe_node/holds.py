"""Legal holds on cases (docs/OPERATIONS.md §11.11): while one stands, no retention rule
purges anything filed under the case (:mod:`globe_node.retention` reads the holds again
inside its own transaction, so a hold committed before a purge's changes always wins).

A supervisor places and releases holds (``POST /api/cases/{case}/hold``, ``/release``,
``globe-node case hold|release``); each change writes its audit row (``case-hold``,
``case-release``, naming the case) in its own transaction.  The reason, which may quote
a court order, is sealed under the storage key like a case note; released holds stay as
the record of who held what when.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from globe_node import db
from globe_node.audit import AuditLog
from globe_node.context import NodeContext
from globe_node.errors import Conflict, NotFound
from globe_node.users import Principal

__all__ = ["HoldView", "Holds", "held_cases"]


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class HoldView:
    """A legal hold on a case: why, since when and by whom; released or standing."""

    case: str
    reason: str
    placed: int
    placed_by: str
    released: int | None
    released_by: str | None

    def to_json(self) -> dict[str, Any]:
        """The local API's form."""
        return {
            "case": self.case, "reason": self.reason, "placed": self.placed,
            "placed_by": self.placed_by, "released": self.released,
            "released_by": self.released_by,
        }  # fmt: skip


class Holds:
    """Place, release and list legal holds; each change with its audit row."""

    def __init__(self, ctx: NodeContext, audit: AuditLog) -> None:
        self.ctx = ctx
        self.audit = audit

    def _view(self, row: db.LegalHold) -> HoldView:
        reason = self.ctx.cipher.open(row.reason, f"hold:{row.id}").decode()
        return HoldView(row.case, reason, row.placed, row.placed_by, row.released,
                        row.released_by)  # fmt: skip

    @staticmethod
    async def _standing(s: AsyncSession, ref: str) -> db.LegalHold | None:
        found = await s.execute(
            select(db.LegalHold).where(db.LegalHold.case == ref, db.LegalHold.released.is_(None))
        )
        return found.scalars().first()

    async def place(self, ref: str, who: Principal, reason: str) -> HoldView:
        """Put case ``ref`` under a legal hold: nothing filed under it is purged until it
        is released."""
        now = self.ctx.now()
        hold_id = secrets.token_hex(16)
        async with self.audit.lock, self.ctx.store.write() as s:
            if await s.get(db.CaseRow, ref) is None:  # the guard resolved it: a race only
                raise NotFound(f"no case {ref}")
            standing = await self._standing(s, ref)
            if standing is not None:
                raise Conflict(
                    f"case {ref} is under a legal hold already (placed {_date(standing.placed)}"
                    f" by {standing.placed_by})"
                )
            sealed = self.ctx.cipher.seal(reason.encode(), f"hold:{hold_id}")
            row = db.LegalHold(id=hold_id, case=ref, reason=sealed, placed=now, placed_by=who.name)
            s.add(row)
            await self.audit.add(s, now, who.name, "case-hold", ref)
        return self._view(row)

    async def release(self, ref: str, who: Principal) -> HoldView:
        """End the legal hold on case ``ref``; the rules apply to it again from the next
        purge."""
        now = self.ctx.now()
        async with self.audit.lock, self.ctx.store.write() as s:
            row = await self._standing(s, ref)
            if row is None:
                raise Conflict(f"case {ref} is under no legal hold")
            row.released, row.released_by = now, who.name
            await self.audit.add(s, now, who.name, "case-release", ref)
        return self._view(row)

    async def standing(self) -> list[HoldView]:
        """Every hold standing now, by case."""
        async with self.ctx.store.read() as s:
            rows = (
                await s.execute(
                    select(db.LegalHold)
                    .where(db.LegalHold.released.is_(None))
                    .order_by(db.LegalHold.case)
                )
            ).scalars()
            return [self._view(r) for r in rows]


async def held_cases(s: AsyncSession) -> set[str]:
    """The cases under a legal hold now (in the caller's session)."""
    found = await s.execute(select(db.LegalHold.case).where(db.LegalHold.released.is_(None)))
    return set(found.scalars())

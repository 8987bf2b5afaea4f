"""Peers' views of the membership log that are ahead of this node's (R2).

Every envelope carries its sender's signed view of the log head
(``dir.seq``, ``dir.head``).  When a member shows a longer log than this node
holds, the node keeps that signed envelope and syncs at once.  Then, after
the next sync that *began after* the claim was recorded:

* the node's log reached ``seq`` and its head there is the peer's: resolved;
* it reached ``seq`` with another head: a ``directory-fork`` alert, with the
  peer's envelope as evidence (someone equivocated);
* the hub still serves fewer entries: a ``directory-behind-peer`` alert, with
  the envelope as evidence.  The hub is hiding entries that another member has
  seen — a revocation, a suspension, a key change — or that member lied about
  its view (its signed envelope proves which).  Until the hub serves the
  entries, every message this node receives is stored with a ``suspect``
  note naming the claim, shown wherever the message is, because its sender's
  status may have changed in the hidden part; ``status`` shows the claim.

Sending is not refused meanwhile: a single member could otherwise stop every
other node from sending by claiming a long log (THREAT-MODEL.md, D-behind).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from globe_node import db
from globe_node.store import Store
from protocol.directory import DirectoryState
from protocol.ids import AuthorityId

__all__ = ["Behind", "PeerHeads"]

log = logging.getLogger("globe.node.directory")

#: ``alert(kind, detail, evidence)``
Alert = Callable[[str, str, bytes | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Behind:
    """The longest peer view the hub has not served this node."""

    peer: str
    seq: int
    since: int

    def to_json(self) -> dict[str, object]:
        """The local API's form."""
        return {"peer": self.peer, "seq": self.seq, "since": self.since}

    def note(self, held: int) -> str:
        """What a message received meanwhile is marked with."""
        return (
            f"received while {self.peer} had signed a membership log of {self.seq} entries"
            f" and the hub served this node only {held}: the sender's membership may have"
            " changed in entries this node cannot see"
        )


class PeerHeads:
    """Record, resolve and report peers' heads ahead of the verified log."""

    def __init__(self, store: Store, alert: Alert) -> None:
        self.store = store
        self.alert = alert
        self.behind: Behind | None = None

    async def load(self) -> None:
        """Restore :attr:`behind` from the stored, already alerted claims."""
        async with self.store.read() as s:
            row = (
                await s.execute(
                    select(db.PeerHead)
                    .where(db.PeerHead.alerted.is_(True))
                    .order_by(db.PeerHead.seq.desc(), db.PeerHead.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
        self.behind = None if row is None else Behind(row.peer, row.seq, row.time)

    @staticmethod
    def note(
        c: Connection, *, peer: AuthorityId, seq: int, head: bytes, envelope: bytes, now: int
    ) -> None:
        """Keep a peer's signed claim, in the transaction of ``c`` (once per claim)."""
        heads = db.Base.metadata.tables[db.PeerHead.__tablename__]
        known = c.execute(
            select(heads.c.id)
            .where(heads.c.peer == str(peer))
            .where(heads.c.seq == seq)
            .where(heads.c.head == head)
        ).first()
        if known is None:
            claim = {"peer": str(peer), "seq": seq, "head": head, "envelope": envelope}
            c.execute(insert(heads).values(**claim, time=now))

    async def marker(self) -> int:
        """The newest claim now: a sync starting now may judge claims up to it."""
        async with self.store.read() as s:
            return int((await s.execute(select(func.max(db.PeerHead.id)))).scalar() or 0)

    async def check(self, state: DirectoryState, upto: int) -> None:
        """Judge the claims recorded before a sync that has just succeeded."""
        async with self.store.read() as s:
            claims = (
                (await s.execute(select(db.PeerHead).where(db.PeerHead.id <= upto))).scalars().all()
            )
        done: list[int] = []
        for c in claims:
            if c.seq <= state.seq:
                done.append(c.id)
                if state.heads[c.seq] != c.head:
                    await self.alert(
                        "directory-fork",
                        f"{c.peer} signed log head {c.seq} that differs from this node's",
                        c.envelope,
                    )
                elif c.alerted:
                    log.warning("the hub now serves the log up to %d that %s had seen", c.seq,
                                c.peer)  # fmt: skip
            elif not c.alerted:
                await self.alert(
                    "directory-behind-peer",
                    f"{c.peer} signed a message with a membership log of {c.seq} entries, but"
                    f" the hub serves this node only {state.seq}: the hub may be hiding"
                    " membership changes (a revocation, a suspension or a key change), or"
                    f" {c.peer} misstated its view (its signed envelope is kept as evidence);"
                    " messages received until this resolves are marked suspect",
                    c.envelope,
                )
                async with self.store.write() as s:
                    row = await s.get(db.PeerHead, c.id)
                    if row is not None:
                        row.alerted = True
        if done:
            await self.store.delete_peer_heads(done)
        await self.load()

    def suspect(self, held: int) -> str | None:
        """The note for a message received now, or None when no claim stands."""
        return None if self.behind is None else self.behind.note(held)

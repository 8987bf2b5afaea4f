"""The node's local audit log: who sent, read, forwarded and exported what.

Each row's ``hash`` is ``SHA-256("globe-node/v1/audit" || 0x00 || previous hash ||
canonical JSON of {seq, time, user, action, subject})`` with 32 zero bytes
before the first row, so editing, inserting or deleting a row breaks every hash
after it (:func:`verify`).  Rows are written by one task at a time (a lock, and the
database's write lock across processes) in their own transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from sqlalchemy import false, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from globe_node import db
from globe_node.sql import Sql
from globe_node.store import Store
from protocol import canonical, crypto

__all__ = ["AuditLog", "add_row"]

_LABEL: Final = b"globe-node/v1/audit"
_ZERO: Final = bytes(32)


def _hash(prev: bytes, seq: int, *, time: int, user: str, action: str, subject: str) -> bytes:
    body = canonical.encode(
        {"seq": seq, "time": time, "user": user, "action": action, "subject": subject}
    )
    return crypto.sha256(crypto.labelled(_LABEL, prev, body))


_AUDIT: Final = db.Base.metadata.tables[db.AuditRow.__tablename__]


#: Built once: this runs with every send (building a statement costs more than running it).
_TAKE_LOCK: Final = Sql(update(_AUDIT).where(false()).values(seq=_AUDIT.c.seq))
_LAST: Final = Sql(select(_AUDIT.c.seq, _AUDIT.c.hash).order_by(_AUDIT.c.seq.desc()).limit(1))
_ADD: Final = Sql(insert(_AUDIT))


def add_row(c: Connection, time: int, user: str, action: str, subject: str) -> int:
    """Add one audit row in the transaction of ``c`` (its caller holds
    :attr:`AuditLog.lock` or runs on the writer thread, whose turn every other writer
    waits for); its sequence number.  Core statements: this runs with every send, on the
    node's writer thread (:meth:`globe_node.store.Store.transact`) or inside an ORM
    session (:meth:`AuditLog.add`)."""
    # Another process appends too (``globe-node users``, ``passphrase change``).  SQLite
    # begins a transaction only at its first write, so take the write lock before reading
    # the chain's end: the other writer then waits instead of taking the same number.
    _TAKE_LOCK.run(c)
    last = _LAST.first(c)
    seq = 1 if last is None else last.seq + 1
    prev = _ZERO if last is None else last.hash
    _ADD.run(
        c,
        {"seq": seq, "time": time, "user": user, "action": action, "subject": subject,
         "hash": _hash(prev, seq, time=time, user=user, action=action, subject=subject)},
    )  # fmt: skip
    return seq


class AuditLog:
    """Append to and verify the hash-chained audit table."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: Held by whoever adds a row, from reading the chain's end to the commit.
        self.lock = asyncio.Lock()

    async def append(self, time: int, user: str, action: str, subject: str) -> int:
        """Add one row in a transaction of its own; return its sequence number."""
        async with self.lock, self.store.write() as s:
            return await self.add(s, time, user, action, subject)

    async def add(self, s: AsyncSession, time: int, user: str, action: str, subject: str) -> int:
        """Add one row inside the caller's transaction (the caller holds :attr:`lock`),
        so that the action and its audit row commit together or not at all."""
        return await s.run_sync(lambda ss: add_row(ss.connection(), time, user, action, subject))

    async def entries(self, limit: int = 1000) -> tuple[list[dict[str, Any]], bool]:
        """The newest ``limit`` rows (oldest first) and whether the whole chain verifies."""
        async with self.store.read() as s:
            rows = (await s.execute(select(db.AuditRow).order_by(db.AuditRow.seq))).scalars().all()
        ok = True
        prev = _ZERO
        for i, r in enumerate(rows, start=1):
            expect = _hash(
                prev, r.seq, time=r.time, user=r.user, action=r.action, subject=r.subject
            )
            if r.seq != i or r.hash != expect:
                ok = False
                break
            prev = r.hash
        shown = [
            {"seq": r.seq, "time": r.time, "user": r.user, "action": r.action, "subject": r.subject}
            for r in rows[-limit:]
        ]
        return shown, ok

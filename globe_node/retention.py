"""The purge that ``[retention]`` asks for: ``globe-node purge`` and, when ``daily``, the
daemon once a day (docs/OPERATIONS.md §11.11, THREAT-MODEL.md §5.9).  What each rule
says of one message is :mod:`globe_node.retentionrules`; the holds that stop it are
:mod:`globe_node.holds`.

**What a purge removes.**  Each message's subject, body, texts and attachment manifest
are sealed under the storage key in its row; each attachment file is encrypted under a
key of its own that exists on this node only inside that sealed manifest (and inside the
envelope the message came in, or went out in).  A purge therefore *shreds*: it rewrites
the sealed content without what goes (the attachment keys; for ``content``, every text
too), empties the stored envelope, and only then removes the attachment files.  SQLite
runs with ``secure_delete`` (globe_node/db.py), so the pages the old values held are
zeroed when they are freed; the write-ahead log is checkpointed and truncated, and an
incremental vacuum returns the space when the database was converted to it.  A file
block an SSD or a copy-on-write file system keeps after the unlink holds ciphertext
whose key is gone.

**What stays.**  The row and everything a court or the statistics need: ids, kind, case,
team, times, counterparts, the sequence verdict, the envelope hash, the inner signature,
the receipt this node signed or the recipients' receipts and the hub's evidence, who read
it when, the request rows and the attachment rows (size, blob id).  The sealed content
is replaced by what says so ("[purged on 2026-06-01 under rule red]", with the purged
attachments' sizes and SHA-256 digests), so every view of the message shows that instead
of failing.

**What is never purged.**  Anything filed under a case with a legal hold standing (read
again inside the purge's own transaction, so a hold placed meanwhile wins); a sent
message until every recipient's delivery ended (delivered or failed), because a retry
resends its envelope.

**Crash safety.**  A run is: plan (reads only) → one transaction that rewrites every
message, marks the attachment rows ``purged`` and writes the run's audit row → remove the
files of every ``purged`` attachment row still on disk → checkpoint and vacuum.  Killed
after the commit, the next run finds no message to purge and removes the files left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Select, null, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from globe_node import db
from globe_node.audit import AuditLog
from globe_node.config import NodeConfig, PurgeScope, RetentionRule, Since
from globe_node.context import NodeContext
from globe_node.holds import held_cases
from globe_node.retentionrules import DAY, Facts, due_purge, tombstone, without_attachments
from globe_node.states import Delivery
from protocol.messages import MessageContent

__all__ = ["GENERATION", "LAST_RUN", "PlannedPurge", "PurgeRun", "Retention"]

log = logging.getLogger("globe.node.retention")

#: Meta keys: the last purge run (Unix time), and a token each run changes (a daemon
#: re-reads purged messages into its search index when another process purged).
LAST_RUN: Final = "retention-last-run"
GENERATION: Final = "retention-generation"
_UNDELIVERED: Final = frozenset({Delivery.QUEUED.value, Delivery.SENT.value})
_DAILY_CHECK: Final = 60.0


# --- a purge run -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedPurge:
    """One message a run purges (or, dry, would): what of it, under which rule."""

    message: str
    direction: str
    kind: str
    counterparts: tuple[str, ...]
    case: str | None
    time: int
    rule: str
    purge: str  # attachments | content
    files: tuple[str, ...]  # names under DIR/blobs that go with it
    bytes: int

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` form."""
        return {
            "message": self.message, "direction": self.direction, "kind": self.kind,
            "counterparts": list(self.counterparts), "case": self.case, "time": self.time,
            "rule": self.rule, "purge": self.purge, "files": list(self.files),
            "bytes": self.bytes,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Job:
    """A planned purge and what the transaction writes for it."""

    planned: PlannedPurge
    key: int | str  # the inbox row's id, or the sent message's id
    sender: str
    what: PurgeScope
    before: PurgeScope | None
    after: MessageContent
    blobs: tuple[str, ...]  # attachment rows (of ``sender``) this message owns


@dataclass(frozen=True, slots=True)
class PurgeRun:
    """What a run purged (or would): the messages, those a hold or an unfinished
    delivery kept, and the attachment files removed."""

    time: int
    dry_run: bool
    purged: tuple[PlannedPurge, ...]
    held: tuple[tuple[str, str], ...]  # (message, case): a rule is due, a hold keeps it
    waiting: tuple[str, ...]  # sent messages a rule is due for, delivery not ended
    files: tuple[str, ...]  # every file removed (or to remove), earlier runs' leftovers too
    bytes: int
    audit: int | None = None  # the run's audit row
    vacuumed: bool = False

    def counts(self) -> dict[str, int]:
        """Messages purged by what, messages kept, files and bytes."""
        by = [p.purge for p in self.purged]
        return {
            "content": by.count("content"), "attachments": by.count("attachments"),
            "held": len(self.held), "waiting": len(self.waiting), "files": len(self.files),
            "bytes": self.bytes,
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` form."""
        return {
            "time": self.time, "dry_run": self.dry_run, "counts": self.counts(),
            "purged": [p.to_json() for p in self.purged],
            "held": [{"message": m, "case": c} for m, c in self.held],
            "waiting": list(self.waiting), "files": list(self.files), "audit": self.audit,
            "vacuumed": self.vacuumed,
        }  # fmt: skip


#: Told the name of each step of a run once it is done (a test acts, or dies, there).
Step = Callable[[str], Awaitable[None]]


@dataclass
class _Plan:
    jobs: list[_Job] = field(default_factory=list)
    held: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


class Retention:
    """Apply ``[retention]`` to the store: on demand (``globe-node purge``) and, when
    ``daily``, once a day in the daemon."""

    def __init__(
        self,
        ctx: NodeContext,
        audit: AuditLog,
        *,
        stored: Callable[[str, MessageContent], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.audit = audit
        self.stored = stored  # the daemon's search index, told of each purged message
        self._generation: str | None = None  # the last run's token this process knows of
        self._looked = False

    @property
    def config(self) -> NodeConfig:
        """The node's configuration."""
        return self.ctx.config

    # -- planning (reads only) ------------------------------------------------------------

    async def _plan(self, now: int) -> _Plan:
        rules = self.config.retention.rules
        plan = _Plan()
        if not rules:
            return plan
        ctx = self.ctx
        async with ctx.store.read() as s:
            held = await held_cases(s)
            closing = select(db.CaseRow.ref, db.CaseRow.closed).where(
                db.CaseRow.closed.is_not(None)
            )
            closed = {ref: when for ref, when in (await s.execute(closing)).all() if when}
            states: dict[str, list[tuple[str, str]]] = {}
            for mid, recipient, state in await s.execute(
                select(db.OutRecipient.message_id, db.OutRecipient.recipient, db.OutRecipient.state)
            ):
                states.setdefault(mid, []).append((recipient, state))
            owned = {
                (sender, blob): mid
                for sender, blob, mid in await s.execute(
                    select(
                        db.AttachmentRow.sender, db.AttachmentRow.blob, db.AttachmentRow.message_id
                    )
                )
            }
            i = 0
            for direction in ("in", "out"):
                # the columns the rules need (never the envelopes), streamed
                rows = await s.stream(_candidates(direction, rules, closed, now))
                async for key, mid, author, kind, case, time, purged_what, sealed in rows:
                    i += 1
                    if i % 100 == 0:
                        await asyncio.sleep(0)  # thousands of messages to open: let others run
                    sender = author or str(ctx.me)
                    content = MessageContent.decode(ctx.cipher.open(sealed, f"content:{mid}"))
                    before = PurgeScope(purged_what) if purged_what else None
                    facts = Facts(direction, content, case, time, before)
                    found = due_purge(rules, facts, closed=closed.get(case or ""), now=now)
                    if found is None:
                        continue
                    if case is not None and case in held:
                        plan.held.append((mid, case))
                        continue
                    sent_to = states.get(mid, [])
                    if direction == "out" and any(st in _UNDELIVERED for _, st in sent_to):
                        plan.waiting.append(mid)
                        continue
                    counterparts = (
                        (sender,) if direction == "in" else tuple(sorted(r for r, _ in sent_to))
                    )
                    blobs = tuple(
                        a.blob for a in content.attachments if owned.get((sender, a.blob)) == mid
                    )
                    planned, after = self._planned(
                        found, content, blobs, mid=mid, direction=direction, kind=kind, case=case,
                        time=time, sender=sender, counterparts=counterparts, now=now,
                    )  # fmt: skip
                    plan.jobs.append(_Job(planned, key, sender, found[1], before, after, blobs))
        return plan

    def _planned(
        self, found: tuple[RetentionRule, PurgeScope], content: MessageContent,
        blobs: tuple[str, ...], *, mid: str, direction: str, kind: str, case: str | None,
        time: int, sender: str, counterparts: tuple[str, ...], now: int,
    ) -> tuple[PlannedPurge, MessageContent]:  # fmt: skip
        """What one purge takes (the files on disk now) and what it leaves."""
        rule, what = found
        files = [self.ctx.blob_path(sender, b) for b in blobs]
        sizes = [_size(p) for p in files]
        after = (
            tombstone(content, rule=rule.name, when=now)
            if what is PurgeScope.CONTENT
            else without_attachments(content, rule=rule.name, when=now)
        )
        planned = PlannedPurge(
            mid, direction, kind, counterparts, case, time, rule.name, what.value,
            tuple(p.name for p, n in zip(files, sizes, strict=True) if n is not None),
            sum(n for n in sizes if n is not None),
        )  # fmt: skip
        return planned, after

    async def _leftovers(self) -> list[Path]:
        """Files of attachment rows already purged that are still on disk."""
        async with self.ctx.store.read() as s:
            rows = (
                await s.execute(
                    select(db.AttachmentRow.sender, db.AttachmentRow.blob).where(
                        db.AttachmentRow.state == "purged"
                    )
                )
            ).all()
        paths = [self.ctx.blob_path(sender, blob) for sender, blob in rows]
        return await asyncio.to_thread(lambda: [p for p in paths if p.exists()])

    # -- a run ------------------------------------------------------------------------------

    async def purge(
        self, *, user: str, dry_run: bool = False, vacuum: bool = False,
        step: Step | None = None,
    ) -> PurgeRun:  # fmt: skip
        """Purge what the rules say now (``dry_run``: only say what that would be).

        ``vacuum`` converts the database to incremental vacuum after the purge if it is not
        (a full ``VACUUM``: it needs free space for a copy of the database).  ``step`` is told
        the name of each step done (``planned``, ``committed``, ``files``, ``vacuumed``).
        """
        now = self.ctx.now()
        plan = await self._plan(now)
        if dry_run:
            left = await self._leftovers()
            names = [n for j in plan.jobs for n in j.planned.files] + [p.name for p in left]
            total = sum(j.planned.bytes for j in plan.jobs) + sum(_size(p) or 0 for p in left)
            return PurgeRun(now, True, tuple(j.planned for j in plan.jobs), tuple(plan.held),
                            tuple(plan.waiting), tuple(names), total)  # fmt: skip
        await _tell(step, "planned")
        done, held, seq = await self._commit(plan, now=now, user=user)
        await _tell(step, "committed")
        if self.stored is not None:
            for job in done:
                self.stored(job.planned.message, job.after)
        removed, total = await self._remove_files()
        await _tell(step, "files")
        vacuumed = await self._vacuum(convert=vacuum)
        await _tell(step, "vacuumed")
        held = [*plan.held, *held]
        log.info(
            "purge: %d message(s) (%s), %d file(s), %d bytes; %d kept by a legal hold, %d"
            " awaiting delivery",
            len(done), ", ".join(sorted({j.planned.rule for j in done})) or "no rule due",
            len(removed), total, len(held), len(plan.waiting),
        )  # fmt: skip
        return PurgeRun(now, False, tuple(j.planned for j in done), tuple(held),
                        tuple(plan.waiting), tuple(removed), total, seq, vacuumed)  # fmt: skip

    async def _commit(
        self, plan: _Plan, *, now: int, user: str
    ) -> tuple[list[_Job], list[tuple[str, str]], int]:
        """Every planned purge and the run's audit row, in one transaction: the purges
        done, those a hold placed since the plan kept (a message purged meanwhile by
        another run is skipped), and the audit row's number."""
        done: list[_Job] = []
        kept: list[tuple[str, str]] = []
        token = secrets.token_hex(8)
        cipher = self.ctx.cipher
        async with self.audit.lock, self.ctx.store.write() as s:
            # The first statement writes: the database's write lock is this run's before
            # the holds are read again, so a hold committed before it is seen.
            await s.execute(
                sqlite_insert(db.Meta).values(key=GENERATION, value=token)
                .on_conflict_do_update(index_elements=["key"], set_={"value": token})
            )  # fmt: skip
            held = await held_cases(s)
            for job in plan.jobs:
                p = job.planned
                if p.case is not None and p.case in held:
                    kept.append((p.message, p.case))
                    continue
                row: db.InMessage | db.OutMessage | None = (
                    await s.get(db.InMessage, job.key)
                    if p.direction == "in"
                    else await s.get(db.OutMessage, job.key)
                )
                if row is None or (row.purged_what or None) != (job.before and job.before.value):
                    continue
                row.content = cipher.seal(job.after.encode(), f"content:{p.message}")
                row.envelope = b""
                row.purged, row.purge_rule, row.purged_what = now, p.rule, job.what.value
                if job.blobs:
                    await s.execute(
                        update(db.AttachmentRow)
                        .where(db.AttachmentRow.sender == job.sender)
                        .where(db.AttachmentRow.blob.in_(list(job.blobs)))
                        .values(state="purged")
                    )
                done.append(job)
            await s.execute(
                sqlite_insert(db.Meta).values(key=LAST_RUN, value=str(now))
                .on_conflict_do_update(index_elements=["key"], set_={"value": str(now)})
            )  # fmt: skip
            by = [j.what for j in done]
            rules = ",".join(sorted({j.planned.rule for j in done})) or "-"
            subject = (
                f"content {by.count(PurgeScope.CONTENT)} attachments"
                f" {by.count(PurgeScope.ATTACHMENTS)} rules {rules}"
            )
            seq = await self.audit.add(s, now, user, "purge", subject)
        self._generation, self._looked = token, True
        return done, kept, seq

    async def _remove_files(self) -> tuple[list[str], int]:
        """Remove the file of every purged attachment row still on disk."""
        removed, total = [], 0
        for path in await self._leftovers():
            size = _size(path)
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(path.unlink)
                removed.append(path.name)
                total += size or 0
        return removed, total

    async def _vacuum(self, *, convert: bool) -> bool:
        """Checkpoint and truncate the write-ahead log, then vacuum incrementally (after
        converting the database to it, if asked); whether it vacuumed."""
        engine = self.ctx.store.engine
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            mode = (await auto.exec_driver_sql("PRAGMA auto_vacuum")).scalar()
            if convert and mode != 2:  # 2: INCREMENTAL
                await auto.exec_driver_sql("PRAGMA auto_vacuum = INCREMENTAL")
                await auto.exec_driver_sql("VACUUM")
                mode = 2
            if mode == 2:
                await auto.exec_driver_sql("PRAGMA incremental_vacuum")
            # waits (busy_timeout) for readers; the old page images in the log go with it
            busy = (await auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).first()
            if busy is not None and busy[0]:
                log.warning("purge: the write-ahead log stays until the next checkpoint (busy)")
        return mode == 2

    # -- in the daemon ----------------------------------------------------------------------

    def _slot(self, now: int) -> int:
        """The latest daily time ``at`` (UTC) at or before ``now``."""
        hour, minute = (int(x) for x in self.config.retention.at.split(":"))
        today = datetime.fromtimestamp(now, UTC).replace(hour=hour, minute=minute, second=0)
        slot = int(today.timestamp())
        return slot if slot <= now else slot - DAY

    async def run_due(self) -> PurgeRun | None:
        """The daily purge, if ``daily`` and none ran since today's ``at``."""
        if not self.config.retention.daily:
            return None
        last = await self.ctx.store.meta(LAST_RUN)
        if last is not None and int(last) >= self._slot(self.ctx.now()):
            return None
        return await self.purge(user="daemon")

    async def refresh(self) -> int:
        """After another process purged (``globe-node purge``): tell the search index what
        is left of every purged message; how many."""
        generation = await self.ctx.store.meta(GENERATION)
        if self._looked and generation == self._generation:
            return 0
        # the first look too: a purge may have run since the index was filled at start
        self._generation, self._looked = generation, True
        if generation is None or self.stored is None:  # nothing was ever purged here
            return 0
        n = 0
        async with self.ctx.store.read() as s:
            for model in (db.InMessage, db.OutMessage):
                rows = await s.execute(
                    select(model.message_id, model.content).where(model.purged.is_not(None))
                )
                for mid, sealed in rows.all():
                    content = self.ctx.cipher.open(sealed, f"content:{mid}")
                    self.stored(mid, MessageContent.decode(content))
                    n += 1
        return n

    async def run(self) -> None:
        """The daemon's loop: catch up with other processes' purges, and purge daily."""
        every = min(_DAILY_CHECK, self.config.sync_interval)
        while True:
            try:
                await self.refresh()
                await self.run_due()
            except Exception:
                log.exception("retention: the purge failed; it is tried again")
            await asyncio.sleep(every)


def _candidates(
    direction: str, rules: Sequence[RetentionRule], closed: dict[str, int], now: int
) -> Select[tuple[Any, ...]]:
    """The messages of one direction some rule may be due for, content not yet purged:
    old enough for the shortest ``since = "message"`` rule, or filed under a case closed
    long enough for the shortest ``since = "case-closed"`` one."""
    if direction == "in":
        m: Any = db.InMessage
        q = select(m.id, m.message_id, m.sender, m.kind, m.case, m.received, m.purged_what,
                   m.content)  # fmt: skip
        time = m.received
    else:
        m = db.OutMessage
        q = select(m.message_id, m.message_id, null(), m.kind, m.case, m.created,
                   m.purged_what, m.content)  # fmt: skip
        time = m.created
    due = []
    by_message = [r.after_days for r in rules if r.since is Since.MESSAGE]
    if by_message:
        due.append(time <= now - min(by_message) * DAY)
    by_case = [r.after_days for r in rules if r.since is Since.CASE_CLOSED]
    if by_case:
        shut = [ref for ref, when in closed.items() if when + min(by_case) * DAY <= now]
        due.append(m.case.in_(shut))
    gone = (m.purged_what.is_not(None)) & (m.purged_what == PurgeScope.CONTENT.value)
    return q.where(~gone, or_(*due))


async def _tell(step: Step | None, name: str) -> None:
    if step is not None:
        await step(name)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None

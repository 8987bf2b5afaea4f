"""Reminders: a due-soon and an overdue notice per open request, once each.

Every sync pass (``sync_interval``) the node looks at its open requests.  One whose
deadline is less than ``reminder_due_soon`` away (or a quarter of its whole time, when
that is shorter: :func:`globe_node.worklists.due_soon_from`) gets a ``request-due-soon``
notice; one past its deadline a ``request-overdue`` notice.  Each is recorded once per
request, counterpart and deadline, in the alerts table (so a restart never repeats one,
and an extension, which moves the deadline, earns its own), addressed to the request's
assigned user: the assignee of its case, else, for a request this node sent, the user
who sent it, else nobody in particular (its team).  Users see them in ``status`` and the
alert feed (:mod:`globe_node.alerts`).

An operator may name a local command (``reminder_command`` in node.toml, an argv list;
the API never names one) that is told of each new notice: it runs without a shell, with
the notice as JSON on stdin, a small environment and ``reminder_timeout`` seconds
before it is killed.  Its failures are logged and counted; it never holds up anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson
from sqlalchemy import select

from globe_node import db
from globe_node.alerts import Alerts
from globe_node.context import NodeContext
from globe_node.states import OPEN_REQUEST_STATES
from globe_node.worklists import due_soon_from

__all__ = ["DUE_SOON", "OVERDUE", "Notice", "ReminderHook", "Reminders"]

log = logging.getLogger("globe.node.reminders")

DUE_SOON: Final = "request-due-soon"
OVERDUE: Final = "request-overdue"
#: The environment the command gets: nothing of the daemon's (its passphrase variable!).
_ENVIRONMENT: Final = ("PATH", "LANG", "LC_ALL", "TZ")
_OPEN: Final = [s.value for s in OPEN_REQUEST_STATES]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Notice:
    """One reminder: which request, for whom, and its deadline (no content)."""

    kind: str
    message: str
    direction: str
    counterpart: str
    case: str | None
    team: str | None
    to: str | None
    deadline: int
    time: int

    @property
    def key(self) -> bytes:
        """What makes it once only: the kind, the request's row and the deadline."""
        return f"{self.kind}:{self.message}:{self.direction}:{self.counterpart}:{self.deadline}"\
            .encode()  # fmt: skip

    @property
    def detail(self) -> str:
        """One line for the alert feed."""
        way = "to" if self.direction == "out" else "from"
        case = f" (case {self.case})" if self.case else ""
        when = "was due" if self.kind == OVERDUE else "is due"
        return f"request {self.message} {way} {self.counterpart}{case} {when} {_iso(self.deadline)}"

    def to_json(self) -> dict[str, object]:
        """What the reminder command reads on its stdin."""
        return {
            "kind": self.kind, "request": self.message, "direction": self.direction,
            "counterpart": self.counterpart, "case": self.case, "team": self.team,
            "to": self.to, "deadline": self.deadline, "time": self.time,
            "detail": self.detail,
        }  # fmt: skip


class ReminderHook:
    """Runs the configured command for each new notice, in the background."""

    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        self.argv = tuple(argv)
        self.timeout = timeout
        self.runs = 0
        self.failures = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, notice: Notice) -> None:
        """Tell the command of ``notice`` (nothing when none is configured); never waits."""
        if not self.argv:
            return
        task = asyncio.create_task(self._run(orjson.dumps(notice.to_json())))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, data: bytes) -> None:
        self.runs += 1
        env = {k: os.environ[k] for k in _ENVIRONMENT if k in os.environ}
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL, env=env, cwd="/",
            )
        )  # fmt: skip
        try:
            proc = await asyncio.shield(spawn)
        except OSError as exc:
            self._failed(f"cannot start {self.argv[0]}: {exc.strerror}")
            return
        except asyncio.CancelledError:
            # The node is closing while the command starts: it must not outlive the node
            # (nor be left for the garbage collector to find still running).
            with contextlib.suppress(Exception):
                started = await spawn
                with contextlib.suppress(ProcessLookupError):
                    started.kill()
                await started.wait()
            raise
        try:
            await asyncio.wait_for(proc.communicate(data), self.timeout)
        except TimeoutError:
            self._failed(f"{self.argv[0]} took more than {self.timeout:g} s and was killed")
            return
        finally:  # timed out, or the node is closing: never leave the command behind
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            self._failed(f"{self.argv[0]} exited with status {proc.returncode}")

    def _failed(self, why: str) -> None:
        self.failures += 1
        log.warning("reminder command failed: %s", why)

    async def close(self) -> None:
        """Stop the commands still running."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Reminders:
    """Find requests due soon or overdue; record and announce each notice once."""

    def __init__(self, ctx: NodeContext, alerts: Alerts, hook: ReminderHook) -> None:
        self.ctx = ctx
        self.alerts = alerts
        self.hook = hook

    async def check(self) -> list[Notice]:
        """Record the notices due now that were not recorded before; the new ones."""
        now = self.ctx.now()
        threshold = self.ctx.config.reminder_due_soon
        q = (
            select(db.RequestRow, db.CaseRow.assignee)
            .outerjoin(db.CaseRow, db.CaseRow.ref == db.RequestRow.case)
            .where(db.RequestRow.state.in_(_OPEN))
            .where(db.RequestRow.deadline <= now + threshold)
            .order_by(db.RequestRow.deadline, db.RequestRow.message_id)
        )
        async with self.ctx.store.read() as s:
            rows = (await s.execute(q)).all()
        new = []
        for row, assignee in rows:
            if row.deadline < now:
                kind = OVERDUE
            elif due_soon_from(row.created, row.deadline, threshold) <= now:
                kind = DUE_SOON
            else:
                continue
            to = assignee or (row.user if row.direction == "out" else None)
            notice = Notice(
                kind, row.message_id, row.direction, row.counterpart, row.case, row.team, to,
                row.deadline, now,
            )  # fmt: skip
            if await self.alerts.remind(
                kind, notice.detail, notice.key, message=row.message_id, team=row.team, to=to
            ):
                self.hook.notify(notice)
                new.append(notice)
        return new

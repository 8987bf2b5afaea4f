"""Cases as records of their own: opened, renamed, closed and reopened, assigned to a
team and a user, holding requests, information and notes across several authorities.

The ``case`` reference on the wire (PROTOCOL.md §8.1) stays what it is: this node keeps
one record per reference (``cases``), made when a user opens a case, sends into a new
reference, or a message arrives with a reference the node does not know yet (then
unassigned: the intake team's, :mod:`globe_node.compartments`).  Every stored message
and request carries the case it is filed under here and that case's team, placed in
the transaction that stores it (:func:`place_outgoing`,
:func:`place_incoming`) and moved with the case when it is assigned to another
team.  A message without a case reference can be filed under a case
(:meth:`Cases.file`); replies to it follow it there.  Titles and notes are sealed under
the storage key and never sent.  Every change is written to the audit log in the
transaction that makes it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from enum import Enum
from typing import Final

from sqlalchemy import ColumnElement, CompoundSelect, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from globe_node import db
from globe_node.audit import AuditLog
from globe_node.compartments import Placement, choose_team, require, sees, visible
from globe_node.context import NodeContext
from globe_node.errors import Conflict, NotFound
from globe_node.roles import Role
from globe_node.search import SearchIndex
from globe_node.sql import Sql
from globe_node.states import OPEN_REQUEST_STATES
from globe_node.users import Principal
from globe_node.worklists import Worklists
from globe_node.workviews import CaseInfo, CasePage, CaseView, NoteView, ThreadItem
from protocol.errors import UsageError
from protocol.messages import MessageContent

__all__ = ["CaseState", "Cases", "place_incoming", "place_outgoing"]

_OPEN_REQUESTS: Final = [s.value for s in OPEN_REQUEST_STATES]
#: The rows that carry a message's case and team.
_FILED: Final[tuple[type[db.OutMessage] | type[db.InMessage] | type[db.RequestRow], ...]] = (
    db.OutMessage, db.InMessage, db.RequestRow,
)  # fmt: skip


class CaseState(Enum):
    """Whether a case is worked on."""

    OPEN = "open"
    CLOSED = "closed"


class Cases:
    """The node's case records, their placement of messages and their changes."""

    def __init__(
        self, *, ctx: NodeContext, audit: AuditLog, index: SearchIndex, worklists: Worklists
    ) -> None:
        self.ctx = ctx
        self.audit = audit
        self.index = index
        self.worklists = worklists

    # -- placement, inside the transaction that stores a message ----------------------------

    async def placement_of(self, message_id: str) -> Placement:
        """Where a held message is filed (its replies, forwards and consent go there too)."""
        found = await self.ctx.store.query(lambda c: _placement(c, message_id))
        return found or Placement(None, None)

    @staticmethod
    def _record(ref: str, team: str | None, *, by: str, now: int) -> db.CaseRow:
        return db.CaseRow(**_new_case(ref, team, by=by, now=now))

    # -- what the guard of the local API asks --------------------------------------------------

    async def require_visible(self, ref: str, who: Principal) -> db.CaseRow:
        """The record of a case ``who`` sees; :class:`NotFound` for any other."""
        async with self.ctx.store.read() as s:
            row = await s.get(db.CaseRow, ref)
        if row is None:
            raise NotFound(f"no case {ref}")
        require(who, row.team, f"no case {ref}")
        return row

    # -- changes (each with its audit row) -------------------------------------------------------

    async def open(
        self, ref: str, who: Principal, *, title: str | None, team: str | None,
        assignee: str | None,
    ) -> CaseInfo:  # fmt: skip
        """Open a new case (its reference must be new on this node)."""
        chosen = choose_team(who, team)
        now = self.ctx.now()
        async with self.audit.lock, self.ctx.store.write() as s:
            if await s.get(db.CaseRow, ref) is not None:
                raise Conflict(f"case {ref} exists")
            if assignee is not None:
                await self._check_assignee(s, assignee, chosen)
            row = self._record(ref, chosen, by=who.name, now=now)
            row.assignee = assignee
            row.title = None if title is None else self._seal_title(ref, title)
            s.add(row)
            await self.audit.add(s, now, who.name, "case-open", f"{ref} team {chosen or '-'}")
        if title is not None:
            self.index.put("case", ref, ref, title)
        return await self.info(ref, who)

    async def rename(self, ref: str, who: Principal, title: str) -> CaseInfo:
        """Give a case a new title."""
        async with self._change(ref, who, "case-rename", ref) as (_, row):
            row.title = self._seal_title(ref, title)
        self.index.put("case", ref, ref, title)
        return await self.info(ref, who)

    async def set_state(self, ref: str, who: Principal, state: CaseState) -> CaseInfo:
        """Close or reopen a case."""
        action = "case-close" if state is CaseState.CLOSED else "case-reopen"
        async with self._change(ref, who, action, ref) as (_, row):
            if row.state == state.value:
                raise Conflict(f"case {ref} is {state.value} already")
            row.state = state.value
            # retention rules counting from the closing (globe_node/retention.py) need it
            row.closed = row.updated if state is CaseState.CLOSED else None
        return await self.info(ref, who)

    async def assign(
        self, ref: str, who: Principal, *, team: str | None, assignee: str | None
    ) -> CaseInfo:
        """Give a case to a team (its messages, requests and reminders follow), a user, or
        both; the user must see the case under its team."""
        if team is None and assignee is None:
            raise UsageError("name a 'team', an 'assignee' or both")
        what = f"{ref} team {team or '(same)'} assignee {assignee or '(same)'}"
        async with self._change(ref, who, "case-assign", what) as (s, row):
            if team is not None:
                await self._check_team(s, team)
                row.team = team
                for model in (db.InMessage, db.OutMessage, db.RequestRow):
                    await s.execute(update(model).where(model.case == ref).values(team=team))
                await s.execute(
                    update(db.Alert)
                    .where(db.Alert.message_id.in_(_ids_of_case(ref)))
                    .values(team=team)
                )
            if assignee is not None:
                row.assignee = assignee
            if row.assignee is not None:
                await self._check_assignee(s, row.assignee, row.team)
        return await self._info(row)  # whoever gave the case away may no longer see it

    async def note(self, ref: str, who: Principal, body: str) -> NoteView:
        """Add a note to a case: kept here, sealed, never sent."""
        note_id = secrets.token_hex(16)
        async with self._change(ref, who, "case-note", f"{ref} note {note_id}") as (s, _):
            now = self.ctx.now()
            s.add(
                db.NoteRow(
                    id=note_id, case=ref, user=who.name, time=now,
                    body=self.ctx.cipher.seal(body.encode(), f"note:{note_id}"),
                )
            )  # fmt: skip
        self.index.put("note", note_id, ref, body)
        return NoteView(note_id, ref, who.name, now, body)

    async def file(self, message_id: str, who: Principal, ref: str) -> Placement:
        """File a message that names no case (received or sent) under case ``ref``; its
        requests and reminders go with it, and replies to it follow."""
        target = await self.require_visible(ref, who)
        now = self.ctx.now()
        async with self.audit.lock, self.ctx.store.write() as s:
            sealed = (
                await s.execute(
                    select(db.OutMessage.content).where(db.OutMessage.message_id == message_id)
                    .union_all(
                        select(db.InMessage.content).where(db.InMessage.message_id == message_id)
                    )
                )
            ).scalars().first()  # fmt: skip
            if sealed is None:  # the guard resolved it: only a concurrent change gets here
                raise NotFound(f"no message {message_id}")
            opened = MessageContent.decode(self.ctx.cipher.open(sealed, f"content:{message_id}"))
            if opened.case is not None:
                raise Conflict(
                    f"message {message_id} names case {opened.case} itself: it stays there"
                )
            place = Placement(ref, target.team)
            for model in _FILED:
                await s.execute(
                    update(model)
                    .where(model.message_id == message_id)
                    .values(case=place.case, team=place.team)
                )
            await s.execute(
                update(db.Alert).where(db.Alert.message_id == message_id).values(team=place.team)
            )
            await self.audit.add(s, now, who.name, "case-file", f"{message_id} into {ref}")
        self.index.move("message", message_id, ref)
        return place

    # -- reads ---------------------------------------------------------------------------------

    async def page(
        self, who: Principal, *, state: str | None, team: str | None, assignee: str | None,
        limit: int, offset: int,
    ) -> CasePage:  # fmt: skip
        """The cases ``who`` sees, most recently active first."""
        where: list[ColumnElement[bool]] = [visible(who, db.CaseRow.team)]
        if state is not None:
            where.append(db.CaseRow.state == state)
        if team is not None:
            where.append(db.CaseRow.team == team)
        if assignee is not None:
            where.append(db.CaseRow.assignee == assignee)
        async with self.ctx.store.read() as s:
            total = int(
                (await s.execute(select(func.count(db.CaseRow.ref)).where(*where))).scalar_one()
            )
            rows = list(
                (
                    await s.execute(
                        select(db.CaseRow).where(*where)
                        .order_by(db.CaseRow.updated.desc(), db.CaseRow.ref)
                        .limit(limit).offset(offset)
                    )
                ).scalars()
            )  # fmt: skip
            infos = await self._infos(s, rows)
        return CasePage(tuple(infos), total, offset, limit)

    async def info(self, ref: str, who: Principal) -> CaseInfo:
        """One case record as listed."""
        return await self._info(await self.require_visible(ref, who))

    async def _info(self, row: db.CaseRow) -> CaseInfo:
        async with self.ctx.store.read() as s:
            infos: list[CaseInfo] = await self._infos(s, [row])
        return infos[0]

    async def view(self, ref: str, who: Principal) -> CaseView:
        """A case: its record, requests, messages in thread order and notes."""
        info = await self.info(ref, who)
        requests = await self.worklists.of_case(who, ref)
        messages = await self._thread(ref, who)
        async with self.ctx.store.read() as s:
            rows = (
                await s.execute(
                    select(db.NoteRow).where(db.NoteRow.case == ref)
                    .order_by(db.NoteRow.time, db.NoteRow.id)
                )
            ).scalars()  # fmt: skip
            notes = tuple(
                NoteView(n.id, n.case, n.user, n.time,
                         self.ctx.cipher.open(n.body, f"note:{n.id}").decode())
                for n in rows
            )  # fmt: skip
        return CaseView(info, requests, messages, notes)

    async def _thread(self, ref: str, who: Principal) -> tuple[ThreadItem, ...]:
        me = str(self.ctx.me)
        items: list[ThreadItem] = []
        async with self.ctx.store.read() as s:
            ins = (
                await s.execute(
                    select(db.InMessage).where(
                        db.InMessage.case == ref, visible(who, db.InMessage.team)
                    )
                )
            ).scalars()
            for r in ins:
                items.append(self._item(r.message_id, "in", r.sender, r.received, r.content))
            outs = (
                await s.execute(
                    select(db.OutMessage).where(
                        db.OutMessage.case == ref, visible(who, db.OutMessage.team)
                    )
                )
            ).scalars()
            for o in outs:
                items.append(self._item(o.message_id, "out", me, o.created, o.content))
        # Time has whole seconds: within one second, what opens a thread comes first.
        items.sort(key=lambda m: (m.time, m.in_reply_to is not None, m.id))
        return tuple(items)

    def _item(self, mid: str, direction: str, sender: str, time: int, sealed: bytes) -> ThreadItem:
        c = MessageContent.decode(self.ctx.cipher.open(sealed, f"content:{mid}"))
        st = c.status
        return ThreadItem(
            mid, direction, sender, c.kind.value, c.subject, time,
            str(c.in_reply_to) if c.in_reply_to else None, st.state.value if st else None,
            st.expected if st else None, st.deadline if st else None,
        )  # fmt: skip

    async def _infos(self, s: AsyncSession, rows: Sequence[db.CaseRow]) -> list[CaseInfo]:
        refs = [r.ref for r in rows]
        counts: dict[str, int] = {}
        parts: dict[str, set[str]] = {}
        for model in (db.InMessage, db.OutMessage):
            found = await s.execute(
                select(model.case, func.count()).where(model.case.in_(refs)).group_by(model.case)
            )
            for case, n in found.all():
                counts[str(case)] = counts.get(str(case), 0) + int(n)
        senders = await s.execute(
            select(db.InMessage.case, db.InMessage.sender).where(db.InMessage.case.in_(refs))
        )
        recipients = await s.execute(
            select(db.OutMessage.case, db.OutRecipient.recipient)
            .join(db.OutRecipient, db.OutRecipient.message_id == db.OutMessage.message_id)
            .where(db.OutMessage.case.in_(refs))
        )
        for case, party in [*senders.all(), *recipients.all()]:
            parts.setdefault(str(case), set()).add(party)
        now = self.ctx.now()
        open_: dict[str, int] = {}
        overdue: dict[str, int] = {}
        found = await s.execute(
            select(db.RequestRow.case, db.RequestRow.deadline).where(
                db.RequestRow.case.in_(refs), db.RequestRow.state.in_(_OPEN_REQUESTS)
            )
        )
        for case, deadline in found.all():
            open_[str(case)] = open_.get(str(case), 0) + 1
            overdue[str(case)] = overdue.get(str(case), 0) + (deadline < now)
        return [
            CaseInfo(
                r.ref, self._title(r), r.team, r.assignee, r.state, r.created, r.created_by,
                r.updated, tuple(sorted(parts.get(r.ref, ()))), counts.get(r.ref, 0),
                open_.get(r.ref, 0), overdue.get(r.ref, 0),
            )
            for r in rows
        ]  # fmt: skip

    # -- helpers -------------------------------------------------------------------------------

    def _seal_title(self, ref: str, title: str) -> bytes:
        return self.ctx.cipher.seal(title.encode(), f"case-title:{ref}")

    def _title(self, row: db.CaseRow) -> str | None:
        if row.title is None:
            return None
        return self.ctx.cipher.open(row.title, f"case-title:{row.ref}").decode()

    async def titles(self) -> list[tuple[str, str]]:
        """(reference, title) of every titled case, for the search index."""
        async with self.ctx.store.read() as s:
            rows = await s.execute(select(db.CaseRow).where(db.CaseRow.title.is_not(None)))
            return [(r.ref, t) for r in rows.scalars() if (t := self._title(r)) is not None]

    async def notes(self) -> list[NoteView]:
        """Every note, for the search index."""
        async with self.ctx.store.read() as s:
            rows = (await s.execute(select(db.NoteRow))).scalars()
            return [
                NoteView(n.id, n.case, n.user, n.time,
                         self.ctx.cipher.open(n.body, f"note:{n.id}").decode())
                for n in rows
            ]  # fmt: skip

    async def _check_team(self, s: AsyncSession, team: str) -> None:
        known = set((await s.execute(select(db.TeamRow.team).distinct())).scalars())
        if team not in known | {self.ctx.config.intake_team}:
            raise UsageError(f"'team': no user is in team {team}")

    async def _check_assignee(self, s: AsyncSession, name: str, team: str | None) -> None:
        user = await s.get(db.User, name)
        teams = frozenset(
            (await s.execute(select(db.TeamRow.team).where(db.TeamRow.user == name))).scalars()
        )
        try:
            role = Role(user.role) if user is not None else None
        except ValueError:
            role = None
        intake = self.ctx.config.intake_team in teams or not teams
        if role is None or not sees(Principal(name, role, teams, intake), team):
            raise UsageError(
                f"'assignee': {name} is not a user who sees the case's team ({team or 'intake'})"
            )

    @contextlib.asynccontextmanager
    async def _change(
        self, ref: str, who: Principal, action: str, subject: str
    ) -> AsyncIterator[tuple[AsyncSession, db.CaseRow]]:
        """One change of a case ``who`` sees: its record in a transaction that writes the
        audit row too, once the block succeeded."""
        now = self.ctx.now()
        async with self.audit.lock, self.ctx.store.write() as s:
            row = await s.get(db.CaseRow, ref)
            if row is None or not sees(who, row.team):
                raise NotFound(f"no case {ref}")
            row.updated = now
            yield s, row
            await self.audit.add(s, now, who.name, action, subject)


def _ids_of_case(ref: str) -> CompoundSelect[str]:
    """The message ids filed under a case (a subquery)."""
    return (
        select(db.InMessage.message_id).where(db.InMessage.case == ref)
        .union(select(db.OutMessage.message_id).where(db.OutMessage.case == ref))
    )  # fmt: skip


def _new_case(ref: str, team: str | None, *, by: str, now: int) -> dict[str, object]:
    """The columns of a new case record (open, untitled, unassigned)."""
    return {
        "ref": ref, "title": None, "team": team, "assignee": None,
        "state": CaseState.OPEN.value, "created": now, "created_by": by, "updated": now,
    }  # fmt: skip


def check_sendable(c: Connection, ref: str | None, who: Principal) -> None:
    """``who`` may send into case ``ref`` (read in the transaction of ``c``, the send's own,
    so that the case cannot close or change teams between the check and the send): it
    sees the case, and the case is open.  A new reference is fine: the send makes its
    record."""
    if ref is None:
        return
    row = _CASE_STATE.first(c, {"ref": ref})
    if row is None:
        return
    require(who, row.team, f"no case {ref}")
    if row.state == CaseState.CLOSED.value:
        raise Conflict(f"case {ref} is closed: reopen it to send into it")


def place_outgoing(
    c: Connection, ref: str | None, team: str | None, *, by: str, now: int
) -> Placement:
    """Where a message this node sends is filed (the transaction of ``c``): the team of its
    case (the record made now, with ``team``, if the reference is new), or ``team`` when
    it names no case."""
    if ref is None:
        return Placement(None, team)
    found = _CASE_TEAM.first(c, {"ref": ref})
    if found is None:
        _ADD_CASE.run(c, _new_case(ref, team, by=by, now=now))
        return Placement(ref, team)
    _CASE_TOUCHED.run(c, {"b_ref": ref, "b_updated": now})
    return Placement(ref, found.team)


_CASES: Final = db.Base.metadata.tables[db.CaseRow.__tablename__]
# Statements of every send and receive, built once (building costs more than running).
_CASE_TEAM: Final = Sql(select(_CASES.c.team).where(_CASES.c.ref == bindparam("ref")))
_CASE_STATE: Final = Sql(
    select(_CASES.c.team, _CASES.c.state).where(_CASES.c.ref == bindparam("ref"))
)
_ADD_CASE: Final = Sql(insert(_CASES))
_CASE_TOUCHED: Final = Sql(
    update(_CASES).where(_CASES.c.ref == bindparam("b_ref")).values(updated=bindparam("b_updated"))
)
_PLACEMENTS: Final = tuple(
    Sql(select(t.c.case, t.c.team).where(t.c.message_id == bindparam("mid")))
    for t in (db.Base.metadata.tables[m.__tablename__] for m in (db.OutMessage, db.InMessage))
)


def place_incoming(c: Connection, content: MessageContent, sender: str, now: int) -> Placement:
    """Where a message received is filed (the transaction of ``c``): the team of its case
    (a new reference makes an unassigned record), else where the message it replies to
    is, else unassigned."""
    if content.case is not None:
        return place_outgoing(c, content.case, None, by=sender, now=now)
    if content.in_reply_to is not None:
        parent = _placement(c, str(content.in_reply_to))
        if parent is not None:
            return parent
    return Placement(None, None)


def _placement(c: Connection, message_id: str) -> Placement | None:
    for placed in _PLACEMENTS:
        row = placed.first(c, {"mid": message_id})
        if row is not None:
            return Placement(row.case, row.team)
    return None

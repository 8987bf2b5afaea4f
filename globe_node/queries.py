"""The read side of the node: messages, the inbox and outbox, deliveries and status.

Content is stored sealed under the storage key; it is opened here, for the local
API, and nowhere else.  Every result is a typed view (:mod:`globe_node.views`).
What a user sees is decided by :mod:`globe_node.compartments`: the lists filter
with it, and a message id (or a unique prefix of one, as git takes it) is resolved
with it by :meth:`Queries.resolve_message` before any route reads the message.
Requests, cases, search and statistics have their own modules
(:mod:`globe_node.worklists`, :mod:`globe_node.cases`, :mod:`globe_node.search`,
:mod:`globe_node.stats`).

The inbox and the outbox are filtered here (:class:`MessageFilter`): by what the rows
hold in the clear (counterpart, kind, case, time, a request's workflow state, a
delivery's state, the matches of a text search) in SQL, and by what only the sealed
content holds (urgency, handling code) once each row is opened, scanning on until the
page is full.  They are newest first and grow at the top, so a page ends with a
:class:`Cursor` to the next one rather than an offset that new arrivals would shift.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from globe_node import db
from globe_node.alerts import Alerts
from globe_node.audit import AuditLog
from globe_node.compartments import Placement, require, visible
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.diskuse import disk_use
from globe_node.errors import AmbiguousId, NotFound
from globe_node.reminders import DUE_SOON, OVERDUE, ReminderHook
from globe_node.states import OPEN_REQUEST_STATES
from globe_node.users import Principal
from globe_node.views import (
    DeliveryView,
    HeldMessage,
    InboxItem,
    InMeta,
    NodeStatus,
    OutboxItem,
    OutMeta,
    RecipientState,
)
from globe_node.workviews import InboxPage, OutboxPage
from protocol import canonical
from protocol.attachments import AttachmentDecryptor
from protocol.errors import DecryptionFailed
from protocol.messages import MessageContent

__all__ = ["MAX_CANDIDATES", "Cursor", "MessageFilter", "Queries"]

#: Ids an ambiguous prefix names in its refusal, at most.
MAX_CANDIDATES: Final = 5
#: Reminders ``status`` shows, newest first.
MAX_REMINDERS: Final = 20
_OPEN: Final = [s.value for s in OPEN_REQUEST_STATES]
#: Rows read at a time while a filter on the sealed content (urgency, handling) fills a page.
SCAN_BATCH: Final = 200
#: Message ids (a text search's matches) given to SQL as a list, at most: SQLite binds
#: 32766 parameters to a statement; a longer list is checked row by row as the scan reads.
MAX_BOUND_IDS: Final = 10_000
#: The largest row id a cursor can name (SQLite's integers are 64-bit).
_MAX_ROW_ID: Final = 2**63 - 1
_Row = TypeVar("_Row", db.InMessage, db.OutMessage)
_Item = TypeVar("_Item", InboxItem, OutboxItem)


def _recipient(r: Any) -> RecipientState:
    return RecipientState(r.state, r.via, r.attempts, r.last_error, r.delivered)


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of the inbox or the outbox ends: the time of its last message and that
    message's place among those of the same second (the inbox's row id in hex, the
    outbox's message id).  The next page holds what comes after it."""

    time: int
    key: str

    def encode(self) -> str:
        """``TIME.KEY``, as the local API gives it (``next``) and takes it (``cursor``)."""
        return f"{self.time}.{self.key}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor ``TIME.KEY`` names (its form is checked where it is declared)."""
        time, _, key = text.partition(".")
        return cls(int(time), key)


@dataclasses.dataclass(frozen=True, slots=True)
class MessageFilter:
    """What the inbox or the outbox shows: every field given narrows it.

    ``counterpart`` is the sender of a received message, any recipient of a sent one;
    ``state`` a request's workflow state (with any counterpart); ``delivery`` a
    recipient's delivery state (sent messages only); ``since`` and ``until`` bound the
    time received or sent, ``[since, until)``; ``within`` keeps only these message ids
    (a text search's matches).
    """

    counterpart: str | None = None
    kind: str | None = None
    urgency: str | None = None
    tlp: str | None = None
    state: str | None = None
    delivery: str | None = None
    case: str | None = None
    since: int | None = None
    until: int | None = None
    unread: bool = False
    within: frozenset[str] | None = None

    @property
    def skips(self) -> bool:
        """Whether rows the SQL conditions select may still be left out: the filter reads
        the sealed content (urgency, handling code), or more ids than SQL is given."""
        return self.urgency is not None or self.tlp is not None or not self._bound

    @property
    def _bound(self) -> bool:
        """Whether ``within`` (if any) is small enough to give SQL as a list."""
        return self.within is None or len(self.within) <= MAX_BOUND_IDS

    def admits(self, message_id: str) -> bool:
        """Whether ``within`` (if any) holds the message."""
        return self.within is None or message_id in self.within

    def keeps(self, content: MessageContent) -> bool:
        """Whether an opened message has the urgency and handling code asked for."""
        return (self.urgency is None or content.urgency.value == self.urgency) and (
            self.tlp is None or content.handling.tlp.value == self.tlp
        )

    def conditions(
        self, model: type[db.InMessage] | type[db.OutMessage], time: Any, direction: str
    ) -> list[ColumnElement[bool]]:
        """The parts of the filter the rows of ``model`` hold in the clear, as SQL."""
        out: list[ColumnElement[bool]] = []
        for column, value in ((model.kind, self.kind), (model.case, self.case)):
            if value is not None:
                out.append(column == value)
        if self.since is not None:
            out.append(time >= self.since)
        if self.until is not None:
            out.append(time < self.until)
        if self.within is not None and self._bound:
            out.append(model.message_id.in_(sorted(self.within)))
        if self.state is not None:
            r = db.RequestRow
            out.append(
                exists().where(
                    r.message_id == model.message_id, r.direction == direction,
                    r.state == self.state,
                )
            )  # fmt: skip
        return out


def _recipients_where(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """A sent message has a recipient for which every condition holds."""
    r = db.OutRecipient
    return exists().where(r.message_id == db.OutMessage.message_id, *conditions)


async def _scan(
    fetch: Callable[[Cursor | None, int], Awaitable[Sequence[_Row]]],
    *,
    item: Callable[[_Row, MessageContent], _Item],
    opened: Callable[[_Row], MessageContent],
    position: Callable[[_Row], Cursor],
    want: MessageFilter,
    limit: int,
    after: Cursor | None,
) -> tuple[list[_Item], Cursor | None]:
    """One page of a list, newest first, from ``after`` on: the rows ``fetch`` reads in
    order (SQL filters applied) that ``want`` admits and keeps once opened, and the cursor
    of the next page if one more row matches."""
    kept: list[tuple[Cursor, _Item]] = []
    batch = max(limit + 1, SCAN_BATCH) if want.skips else limit + 1
    while len(kept) <= limit:
        rows = await fetch(after, batch)
        for row in rows:
            after = position(row)
            if not want.admits(row.message_id):
                continue
            content = opened(row)
            if want.keeps(content):
                kept.append((after, item(row, content)))
                if len(kept) > limit:
                    break
        if len(rows) < batch:
            break
    more = len(kept) > limit
    return [i for _, i in kept[:limit]], kept[limit - 1][0] if more else None


def _before_in(at: Cursor) -> ColumnElement[bool]:
    """Received after ``at`` in the inbox's order (newest first, then the latest row)."""
    m = db.InMessage
    row = min(int(at.key, 16), _MAX_ROW_ID)
    return or_(m.received < at.time, and_(m.received == at.time, m.id < row))


def _before_out(at: Cursor) -> ColumnElement[bool]:
    """Sent after ``at`` in the outbox's order (newest first, then by message id)."""
    m = db.OutMessage
    return or_(m.created < at.time, and_(m.created == at.time, m.message_id > at.key))


class Queries:
    """Everything the local API reads of messages and the node."""

    def __init__(
        self,
        *,
        ctx: NodeContext,
        directory: Directory,
        audit: AuditLog,
        alerts: Alerts,
        hook: ReminderHook,
        uploads: dict[str, tuple[int, int]],
        push_connected: Callable[[], bool],
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.audit = audit
        self.alerts = alerts
        self.hook = hook
        self.uploads = uploads
        self.push_connected = push_connected

    def _open(self, sealed: bytes, message_id: str) -> MessageContent:
        return MessageContent.decode(self.ctx.cipher.open(sealed, f"content:{message_id}"))

    async def resolve_message(self, ref: str, who: Principal) -> str:
        """The id of the one message ``who`` sees whose id is ``ref`` or starts with it.

        :class:`NotFound` when there is none (or only ones ``who`` may not see: they do
        not exist for it), :class:`AmbiguousId` naming the candidates when several match.
        """
        found: set[str] = set()
        async with self.ctx.store.read() as s:
            for model in (db.InMessage, db.OutMessage):
                match = (
                    model.message_id == ref
                    if len(ref) == 32
                    else model.message_id.startswith(ref, autoescape=True)
                )
                rows = await s.execute(
                    select(model.message_id)
                    .where(match, visible(who, model.team))
                    .limit(MAX_CANDIDATES + 1)
                )
                found.update(rows.scalars())
        if not found:
            raise NotFound(f"no message {ref}")
        if len(found) > 1:
            ids = sorted(found)
            shown = ", ".join(ids[:MAX_CANDIDATES]) + (", ..." if len(ids) > MAX_CANDIDATES else "")
            raise AmbiguousId(f"message id prefix {ref} is ambiguous: {shown}")
        return found.pop()

    async def content_of(self, message_id: str) -> HeldMessage:
        """A stored message (received or sent): direction, content, metadata and where it
        is filed."""
        store = self.ctx.store
        row = await store.in_message(message_id)
        if row is not None:
            meta = InMeta(row.sender, row.received, row.via, row.order, row.seq, row.read_at,
                          row.head_relation, row.suspect)  # fmt: skip
            return HeldMessage(
                "in", self._open(row.content, message_id), meta, Placement(row.case, row.team)
            )
        out = await store.out_message(message_id)
        if out is None:
            raise NotFound(f"no message {message_id}")
        recips = await store.recipients([message_id])
        meta_out = OutMeta(str(self.ctx.me), out.created,
                           {r.recipient: _recipient(r) for r in recips})  # fmt: skip
        return HeldMessage(
            "out", self._open(out.content, message_id), meta_out, Placement(out.case, out.team)
        )

    async def mark_read(self, message_id: str, user: str) -> None:
        """Record that ``user`` opened a received message (with its audit row)."""
        now = self.ctx.now()
        async with self.audit.lock, self.ctx.store.write() as s:
            await self.ctx.store.mark_read(message_id, now, user, s)
            await self.audit.add(s, now, user, "read", message_id)

    async def attachment_chunks(self, message_id: str, index: int) -> AsyncIterator[bytes]:
        """Decrypted, authenticated pieces of an attachment, in order; raises at the end
        if the file was truncated or does not match its digest."""
        held = await self.content_of(message_id)
        if not 0 <= index < len(held.content.attachments):
            raise NotFound(f"message {message_id} has no attachment {index + 1}")
        att = held.content.attachments[index]
        dec = AttachmentDecryptor(att.key, att.blob)
        f = await asyncio.to_thread(self.ctx.blob_path(held.sender, att.blob).open, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                if plain := dec.update(chunk):
                    yield plain
        finally:
            f.close()
        if last := dec.finalize():
            yield last
        if dec.sha256 != att.sha256:
            raise DecryptionFailed(f"attachment {att.name!r} does not match its digest")

    async def inbox(
        self, who: Principal, *, limit: int = 50, unread: bool = False
    ) -> list[InboxItem]:
        """Received messages ``who`` sees, newest first, with subject (decrypted here)."""
        page = await self.inbox_page(who, MessageFilter(unread=unread), limit=limit)
        return list(page.messages)

    async def inbox_page(
        self, who: Principal, want: MessageFilter, *, limit: int, after: Cursor | None = None
    ) -> InboxPage:
        """Received messages ``who`` sees that ``want`` keeps, newest first, from ``after``."""
        m = db.InMessage
        where = [visible(who, m.team), *want.conditions(m, m.received, "in")]
        if want.counterpart is not None:
            where.append(m.sender == want.counterpart)

        async def fetch(at: Cursor | None, n: int) -> list[db.InMessage]:
            here = where if at is None else [*where, _before_in(at)]
            return await self.ctx.store.inbox_rows(n, unread=want.unread, shown=and_(*here))

        def item(r: db.InMessage, c: MessageContent) -> InboxItem:
            return InboxItem(
                r.message_id, r.sender, r.kind, c.subject, c.urgency.value,
                c.handling.tlp.value, r.case, r.received, r.via, r.read_at is not None,
                r.order, len(c.attachments), r.suspect,
            )  # fmt: skip

        items, following = await _scan(
            fetch, item=item, opened=self._opened,
            position=lambda r: Cursor(r.received, f"{r.id:x}"), want=want, limit=limit,
            after=after,
        )  # fmt: skip
        return InboxPage(tuple(items), following.encode() if following else None)

    async def outbox(self, who: Principal, *, limit: int = 50) -> list[OutboxItem]:
        """Sent messages ``who`` sees, newest first, with per-recipient delivery state."""
        return list((await self.outbox_page(who, MessageFilter(), limit=limit)).messages)

    async def outbox_page(
        self, who: Principal, want: MessageFilter, *, limit: int, after: Cursor | None = None
    ) -> OutboxPage:
        """Sent messages ``who`` sees that ``want`` keeps, newest first, from ``after``, with
        subject and handling (decrypted here) and each recipient's delivery state."""
        store = self.ctx.store
        m, r = db.OutMessage, db.OutRecipient
        where = [visible(who, m.team), *want.conditions(m, m.created, "out")]
        if want.counterpart is not None:
            where.append(_recipients_where(r.recipient == want.counterpart))
        if want.delivery is not None:
            where.append(_recipients_where(r.state == want.delivery))

        async def fetch(at: Cursor | None, n: int) -> list[db.OutMessage]:
            here = where if at is None else [*where, _before_out(at)]
            return await store.outbox_rows(n, shown=and_(*here))

        def item(row: db.OutMessage, c: MessageContent) -> OutboxItem:
            return OutboxItem(row.message_id, row.kind, c.subject, c.urgency.value,
                              c.handling.tlp.value, row.case, row.created, {})  # fmt: skip

        items, following = await _scan(
            fetch, item=item, opened=self._opened,
            position=lambda row: Cursor(row.created, row.message_id), want=want, limit=limit,
            after=after,
        )  # fmt: skip
        by: dict[str, dict[str, RecipientState]] = {}
        for x in await store.recipients([i.id for i in items]):
            by.setdefault(x.message_id, {})[x.recipient] = _recipient(x)
        shown = tuple(dataclasses.replace(i, recipients=by.get(i.id, {})) for i in items)
        return OutboxPage(shown, following.encode() if following else None)

    def _opened(self, row: db.InMessage | db.OutMessage) -> MessageContent:
        return self._open(row.content, row.message_id)

    async def delivery(self, message_id: str) -> DeliveryView:
        """One sent message's delivery state per recipient, and its upload progress."""
        store = self.ctx.store
        msg = await store.out_message(message_id)
        if msg is None:
            raise NotFound(f"no sent message {message_id}")
        rows = await store.recipients([message_id])
        return DeliveryView(
            message_id, {r.recipient: _recipient(r) for r in rows},
            self.uploads.get(message_id), len(msg.pending_blobs.split()),
        )  # fmt: skip

    async def require_message(self, message_id: str, who: Principal) -> Placement:
        """Where a stored message is filed, if ``who`` sees it; :class:`NotFound` otherwise."""
        held = await self.content_of(message_id)
        require(who, held.place.team, f"no message {message_id}")
        return held.place

    async def _request_counts(self) -> tuple[int, int]:
        """(open requests, overdue ones) on the whole node: counts, no case material."""
        now = self.ctx.now()
        r = db.RequestRow
        async with self.ctx.store.read() as s:
            found = await s.execute(
                select(func.count(), func.count().filter(r.deadline < now)).where(
                    r.state.in_(_OPEN)
                )
            )
            open_, overdue = found.one()
        return int(open_), int(overdue)

    async def status(self, who: Principal) -> NodeStatus:
        """Membership, directory head and age, hub reachability, queue depths, requests,
        alerts, and the reminders ``who`` is shown."""
        d = self.directory
        me = d.state.members.get(self.ctx.me)
        states, unread = await self.ctx.store.counts(visible(who, db.InMessage.team))
        open_, overdue = await self._request_counts()
        shown = await self.alerts.all(who)
        reminders = [a for a in shown if a.kind in (DUE_SOON, OVERDUE)][:MAX_REMINDERS]
        disk = await disk_use(self.ctx)
        return NodeStatus(
            authority=str(self.ctx.me), membership=me.status.value if me else "not admitted",
            seq=d.state.seq, head=canonical.b64e(d.state.head), age_s=d.age(),
            max_age_s=self.ctx.config.directory_max_age, members=len(d.state.members),
            behind_peer=d.peer_heads.behind, hub_url=self.ctx.config.hub_url,
            hub_reachable=d.hub_reachable, push_connected=self.push_connected(),
            outbox=states, inbox_unread=unread, requests_open=open_, requests_overdue=overdue,
            alerts=len(shown), reminders=tuple(reminders), hook_runs=self.hook.runs,
            hook_failures=self.hook.failures, database_bytes=disk.database,
            blob_bytes=disk.blobs, upload_bytes=disk.uploads, free_bytes=disk.free,
        )  # fmt: skip

"""The read side of the node: messages, the inbox and outbox, deliveries and status.

Content is stored sealed under the storage key; it is opened here, for the local
API, and nowhere else.  Every result is a typed view (:mod:`globe_node.views`).
What a user sees is decided by :mod:`globe_node.compartments`: the lists filter
with it, and a message id (or a unique prefix of one, as git takes it) is resolved
with it by :meth:`Queries.resolve_message` before any route reads the message.
Requests, cases, search and statistics have their own modules
(:mod:`globe_node.worklists`, :mod:`globe_node.cases`, :mod:`globe_node.search`,
:mod:`globe_node.stats`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from sqlalchemy import func, select

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
from protocol import canonical
from protocol.attachments import AttachmentDecryptor
from protocol.errors import DecryptionFailed
from protocol.messages import MessageContent

__all__ = ["MAX_CANDIDATES", "Queries"]

#: Ids an ambiguous prefix names in its refusal, at most.
MAX_CANDIDATES: Final = 5
#: Reminders ``status`` shows, newest first.
MAX_REMINDERS: Final = 20
_OPEN: Final = [s.value for s in OPEN_REQUEST_STATES]


def _recipient(r: Any) -> RecipientState:
    return RecipientState(r.state, r.via, r.attempts, r.last_error, r.delivered)


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
        out = []
        shown = visible(who, db.InMessage.team)
        rows = await self.ctx.store.inbox_rows(limit, unread=unread, shown=shown)
        for r in rows:
            c = self._open(r.content, r.message_id)
            out.append(
                InboxItem(
                    r.message_id, r.sender, r.kind, c.subject, c.urgency.value,
                    c.handling.tlp.value, r.case, r.received, r.via, r.read_at is not None,
                    r.order, len(c.attachments), r.suspect,
                )
            )  # fmt: skip
        return out

    async def outbox(self, who: Principal, *, limit: int = 50) -> list[OutboxItem]:
        """Sent messages ``who`` sees, newest first, with per-recipient delivery state."""
        store = self.ctx.store
        msgs = await store.outbox_rows(limit, shown=visible(who, db.OutMessage.team))
        by: dict[str, dict[str, RecipientState]] = {}
        for r in await store.recipients([m.message_id for m in msgs]):
            by.setdefault(r.message_id, {})[r.recipient] = _recipient(r)
        return [
            OutboxItem(m.message_id, m.kind, m.case, m.created, by.get(m.message_id, {}))
            for m in msgs
        ]

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

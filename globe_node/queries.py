"""The read side of the node: messages, lists, requests, cases, statistics and status.

Content is stored sealed under the storage key; it is opened here, for the
local API, and nowhere else.  Every result is a typed view
(:mod:`globe_node.views`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from globe_node.audit import AuditLog
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.errors import NotFound
from globe_node.states import OPEN_REQUEST_STATES, RequestState
from globe_node.views import (
    CaseSummary,
    CaseThread,
    CounterpartStats,
    DeliveryView,
    HeldMessage,
    InboxItem,
    InMeta,
    NodeStatus,
    OutboxItem,
    OutMeta,
    RecipientState,
    RequestView,
    ThreadItem,
)
from protocol import canonical
from protocol.attachments import AttachmentDecryptor
from protocol.errors import DecryptionFailed
from protocol.messages import MessageContent

__all__ = ["Queries"]


def _recipient(r: Any) -> RecipientState:
    return RecipientState(r.state, r.via, r.attempts, r.last_error, r.delivered)


def _is_open(state: str) -> bool:
    return RequestState(state) in OPEN_REQUEST_STATES


class Queries:
    """Everything the local API reads."""

    def __init__(
        self,
        *,
        ctx: NodeContext,
        directory: Directory,
        audit: AuditLog,
        uploads: dict[str, tuple[int, int]],
        push_connected: Callable[[], bool],
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.audit = audit
        self.uploads = uploads
        self.push_connected = push_connected

    def _open(self, sealed: bytes, message_id: str) -> MessageContent:
        return MessageContent.decode(self.ctx.cipher.open(sealed, f"content:{message_id}"))

    async def content_of(self, message_id: str) -> HeldMessage:
        """A stored message (received or sent): direction, content and its metadata."""
        store = self.ctx.store
        row = await store.in_message(message_id)
        if row is not None:
            meta = InMeta(row.sender, row.received, row.via, row.order, row.seq, row.read_at,
                          row.head_relation, row.suspect)  # fmt: skip
            return HeldMessage("in", self._open(row.content, message_id), meta)
        out = await store.out_message(message_id)
        if out is None:
            raise NotFound(f"no message {message_id}")
        recips = await store.recipients([message_id])
        meta_out = OutMeta(str(self.ctx.me), out.created,
                           {r.recipient: _recipient(r) for r in recips})  # fmt: skip
        return HeldMessage("out", self._open(out.content, message_id), meta_out)

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

    async def inbox(self, *, limit: int = 50, unread: bool = False) -> list[InboxItem]:
        """Received messages, newest first, with subject (decrypted here)."""
        out = []
        for r in await self.ctx.store.inbox_rows(limit, unread=unread):
            c = self._open(r.content, r.message_id)
            out.append(
                InboxItem(
                    r.message_id, r.sender, r.kind, c.subject, c.urgency.value,
                    c.handling.tlp.value, r.case, r.received, r.via, r.read_at is not None,
                    r.order, len(c.attachments), r.suspect,
                )
            )  # fmt: skip
        return out

    async def outbox(self, *, limit: int = 50) -> list[OutboxItem]:
        """Sent messages, newest first, with per-recipient delivery state."""
        store = self.ctx.store
        msgs = await store.outbox_rows(limit)
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

    async def requests(self, *, case: str | None = None) -> list[RequestView]:
        """Request workflow rows by deadline, with an ``overdue`` flag."""
        now = self.ctx.now()
        return [
            RequestView(
                r.message_id, r.direction, r.counterpart, r.case, r.urgency, r.state, r.created,
                r.deadline, r.expected, r.answered, r.first_response,
                _is_open(r.state) and r.deadline < now,
            )
            for r in await self.ctx.store.requests(case)
        ]  # fmt: skip

    async def response_stats(self) -> dict[str, CounterpartStats]:
        """Per counterpart: requests sent, answered, mean seconds to first response and answer."""
        acc: dict[str, list[int]] = {}  # requests, answered, answer s, first-response s, n
        for r in await self.requests():
            if r.direction != "out":
                continue
            a = acc.setdefault(r.counterpart, [0, 0, 0, 0, 0])
            a[0] += 1
            if r.answered:
                a[1] += 1
                a[2] += r.answered - r.created
            if r.first_response is not None:
                a[3] += r.first_response - r.created
                a[4] += 1
        return {
            who: CounterpartStats(n, answered, first / fn if fn else None,
                                  ans / answered if answered else None)
            for who, (n, answered, ans, first, fn) in acc.items()
        }  # fmt: skip

    async def cases(self) -> list[CaseSummary]:
        """Every case id with its counterparts, message count and open/overdue requests."""
        ins, outs = await self.ctx.store.case_participation()
        parts: dict[str, set[str]] = {}
        counts: dict[str, int] = {}
        last: dict[str, int] = {}
        for sender, case, received in ins:
            parts.setdefault(case, set()).add(sender)
            counts[case] = counts.get(case, 0) + 1
            last[case] = max(last.get(case, 0), received)
        seen_out: set[tuple[str, int]] = set()
        for case, created, recipient in outs:
            parts.setdefault(case, set()).add(recipient)
            if (case, created) not in seen_out:
                counts[case] = counts.get(case, 0) + 1
                seen_out.add((case, created))
            last[case] = max(last.get(case, 0), created)
        reqs = await self.requests()
        out = [
            CaseSummary(
                case, tuple(sorted(parts[case])), counts.get(case, 0), last.get(case, 0),
                sum(1 for r in reqs if r.case == case and _is_open(r.state)),
                sum(1 for r in reqs if r.case == case and r.overdue),
            )
            for case in parts
        ]  # fmt: skip
        return sorted(out, key=lambda c: -c.last)

    async def case_thread(self, case: str) -> CaseThread:
        """A case: its requests and every message in it, in thread order."""
        reqs = await self.requests(case=case)
        ins, outs = await self.ctx.store.case_messages(case)
        if not ins and not outs:
            raise NotFound(f"no case {case}")
        me = str(self.ctx.me)
        messages = [ThreadItem(m, "in", s, k, t, r) for m, s, k, t, r in ins] + [
            ThreadItem(m, "out", me, k, t, r) for m, k, t, r in outs
        ]
        # Time has whole seconds: within one second, what opens a thread comes first.
        messages.sort(key=lambda m: (m.time, m.in_reply_to is not None, m.id))
        return CaseThread(case, tuple(reqs), tuple(messages))

    async def status(self) -> NodeStatus:
        """Membership, directory head and age, hub reachability, queue depths, overdue cases."""
        d = self.directory
        me = d.state.members.get(self.ctx.me)
        states, unread, alerts = await self.ctx.store.counts()
        reqs = await self.requests()
        return NodeStatus(
            authority=str(self.ctx.me), membership=me.status.value if me else "not admitted",
            seq=d.state.seq, head=canonical.b64e(d.state.head), age_s=d.age(),
            max_age_s=self.ctx.config.directory_max_age, members=len(d.state.members),
            behind_peer=d.peer_heads.behind, hub_url=self.ctx.config.hub_url,
            hub_reachable=d.hub_reachable, push_connected=self.push_connected(),
            outbox=states, inbox_unread=unread,
            requests_open=sum(1 for r in reqs if _is_open(r.state)),
            requests_overdue=sum(1 for r in reqs if r.overdue), alerts=alerts,
        )  # fmt: skip

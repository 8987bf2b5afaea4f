"""One member authority's node: small units wired together, and their background loops.

Everything works against the node's own verified copy of the membership log,
never against what the hub or a peer says about membership (R1, R2).  The
units, each with its own module and injected clock, randomness and transports:

* :mod:`globe_node.directory` — the verified log, sync, freshness;
* :mod:`globe_node.prekeys` — own and peers' signed prekeys;
* :mod:`globe_node.outbox` and :mod:`globe_node.delivery` — the transactional
  outbox (R10) and the pump that delivers directly or through the hub;
* :mod:`globe_node.inbox` and :mod:`globe_node.push` — receiving on both
  paths, acknowledging at the hub, the push stream;
* :mod:`globe_node.workflow` — replies, forwards, consent;
* :mod:`globe_node.queries` — the read side, typed (:mod:`globe_node.views`);
* :mod:`globe_node.store` — all SQL, storage failures translated.

:class:`Node` is the façade the local API, the peer listener and the tests use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from globe_io.hubclient import HubClient, MailboxItem
from globe_node import db
from globe_node.alerts import Alerts, AlertView
from globe_node.audit import AuditLog
from globe_node.config import NodeConfig
from globe_node.context import NodeContext
from globe_node.delivery import Deliverer
from globe_node.directory import Directory
from globe_node.inbox import Inbox
from globe_node.keys import NodeKeys
from globe_node.outbox import Outbox
from globe_node.peerclient import PeerClient, PeerTransport
from globe_node.peerheads import PeerHeads
from globe_node.prekeys import Prekeys
from globe_node.push import PushClient
from globe_node.queries import Queries
from globe_node.store import Store
from globe_node.uploads import Uploads
from globe_node.views import (
    CaseSummary,
    CaseThread,
    CounterpartStats,
    DeliveryView,
    HeldMessage,
    InboxItem,
    NodeStatus,
    OutboxItem,
    RequestView,
)
from globe_node.workflow import Workflow
from protocol.directory import DirectoryState, Member
from protocol.errors import GlobeError, TransportError
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.messages import Consent, Kind, MessageContent, SignedContent, StatusUpdate

__all__ = ["Node"]

log = logging.getLogger("globe.node")


class Node:
    """One member authority's node: open it with :meth:`open`, then :meth:`start`."""

    def __init__(
        self,
        ctx: NodeContext,
        *,
        hub: HubClient | None = None,
        peers: PeerTransport | None = None,
    ) -> None:
        self.ctx = ctx
        self.hub = hub or HubClient(
            ctx.config.hub_url, network=ctx.genesis.digest, key=ctx.keys.transport
        )
        self.peers = peers or PeerClient(ctx)
        self.audit = AuditLog(ctx.store)
        self.alert_log = Alerts(ctx)
        self.peer_heads = PeerHeads(ctx.store, self.alert_log.record)
        self.directory = Directory(ctx, self.hub, self.alert_log, self.peer_heads)
        self.prekeys = Prekeys(ctx, self.hub, self.directory)
        self.staging = Uploads(
            me=ctx.me, store=ctx.store, cipher=ctx.cipher, blob_path=ctx.blob_path,
            lifetime=ctx.config.upload_lifetime, quota=ctx.config.upload_quota, clock=ctx.now,
        )  # fmt: skip
        self._wake = asyncio.Event()
        self._sync_soon = asyncio.Event()
        self.outgoing = Outbox(
            ctx=ctx, directory=self.directory, prekeys=self.prekeys, staging=self.staging,
            audit=self.audit, wake=self._wake.set,
        )  # fmt: skip
        self.deliverer = Deliverer(
            ctx=ctx, directory=self.directory, outbox=self.outgoing, hub=self.hub, peers=self.peers
        )
        self.incoming = Inbox(
            ctx=ctx, directory=self.directory, prekeys=self.prekeys, outbox=self.outgoing,
            hub=self.hub, alerts=self.alert_log, peer_heads=self.peer_heads,
            sync_soon=self._sync_soon,
        )  # fmt: skip
        self.push = PushClient(ctx=ctx, inbox=self.incoming)
        self.queries = Queries(
            ctx=ctx, directory=self.directory, audit=self.audit,
            uploads=self.deliverer.uploads, push_connected=lambda: self.push.connected,
        )  # fmt: skip
        self.workflow = Workflow(
            ctx=ctx, directory=self.directory, outbox=self.outgoing, queries=self.queries,
            staging=self.staging, audit=self.audit,
        )  # fmt: skip
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        config: NodeConfig,
        keys: NodeKeys,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> Node:
        """Open the database (migrating it) and rebuild the directory from the stored log."""
        genesis = Genesis.decode(config.genesis_path.read_bytes())
        engine = db.make_engine(config.db_path)
        await db.migrate(engine)
        ctx = NodeContext(config=config, keys=keys, genesis=genesis, store=Store(engine),
                          clock=clock)  # fmt: skip
        if rng is not None:
            ctx.rng = rng
        node = cls(ctx)
        await node.directory.load()
        await node.prekeys.load()
        return node

    async def start(self) -> None:
        """Start the background loops: directory sync, delivery, hub push."""
        self.ctx.config.blob_dir.mkdir(mode=0o700, exist_ok=True)
        self._tasks = [
            asyncio.create_task(self._sync_loop(), name="sync"),
            asyncio.create_task(self.deliverer.run(self._wake), name="delivery"),
            asyncio.create_task(self.push.run(), name="push"),
        ]

    async def close(self) -> None:
        """Stop the loops and close connections (committed work is never lost)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.hub.close()
        await self.peers.close()
        await self.ctx.store.close()

    async def _sync_loop(self) -> None:
        """Sync the directory, prekeys and mailbox every ``sync_interval`` seconds, or
        sooner when a peer's envelope shows a longer log than ours."""
        while True:
            try:
                await self._sync_once()
            except GlobeError as exc:
                log.warning("sync: %s", exc.detail)
            except Exception:
                log.exception("sync failed")
            self._sync_soon.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._sync_soon.wait(), timeout=self.ctx.config.sync_interval
                )

    async def _sync_once(self) -> None:
        purged = await self.staging.purge()
        if purged:
            log.info("erased %d staged upload(s) no message took", purged)
        try:
            await self.directory.sync()
            await self.prekeys.ensure()
            if not self.push.connected:  # the stream delivers; it pulls once per connect
                await self.incoming.pull()
        except TransportError as exc:
            self.directory.hub_reachable = False
            log.info("hub unreachable: %s", exc.detail)
        age = self.directory.age()
        if age is not None and age > self.ctx.config.directory_max_age:
            log.warning(
                "the directory head was last confirmed %d s ago (limit %d s): sending is"
                " refused until the hub is reachable",
                age, self.ctx.config.directory_max_age,
            )  # fmt: skip

    # -- shared state, for the listeners and the tests ------------------------------------------

    @property
    def config(self) -> NodeConfig:
        """The node's configuration."""
        return self.ctx.config

    @property
    def keys(self) -> NodeKeys:
        """The node's keys."""
        return self.ctx.keys

    @property
    def genesis(self) -> Genesis:
        """The pinned genesis."""
        return self.ctx.genesis

    @property
    def me(self) -> AuthorityId:
        """This node's authority id."""
        return self.ctx.me

    @property
    def state(self) -> DirectoryState:
        """The verified directory."""
        return self.directory.state

    @property
    def store(self) -> Store:
        """The node database."""
        return self.ctx.store

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The database's session factory (tests and tools read rows with it)."""
        return self.ctx.store.sessions

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock the node uses."""
        return self.ctx.clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self.ctx.clock = value

    @property
    def hub_reachable(self) -> bool | None:
        """Whether the last request reached the hub (None: not tried yet)."""
        return self.directory.hub_reachable

    @property
    def push_connected(self) -> bool:
        """Whether the push stream is open."""
        return self.push.connected

    @property
    def uploads(self) -> dict[str, tuple[int, int]]:
        """Attachment upload progress of messages being relayed."""
        return self.deliverer.uploads

    def now(self) -> int:
        """The current time in whole seconds."""
        return self.ctx.now()

    def blob_path(self, sender: AuthorityId | str, blob: str) -> Path:
        """Where a sender's (still blob-encrypted) attachment file is kept."""
        return self.ctx.blob_path(sender, blob)

    def member(self, authority: AuthorityId) -> Member:
        """A member of the verified directory."""
        return self.directory.member(authority)

    def transport_owner(self, key_id: KeyId) -> AuthorityId | None:
        """The member whose certified transport key has this id (any status)."""
        return self.directory.transport_owner(key_id)

    # -- directory and prekeys ------------------------------------------------------------------

    async def sync_directory(self) -> int:
        """Fetch, verify and store new log entries; return how many were added."""
        return await self.directory.sync()

    async def sync_now(self) -> tuple[int, int | None]:
        """Sync the directory, then pull the mailbox: (entries added, items pulled or None
        when the hub refused the pull, e.g. because this node was suspended)."""
        added = await self.directory.sync()
        try:
            pulled: int | None = await self.incoming.pull()
        except GlobeError as exc:  # the directory still synced
            log.info("mailbox pull after sync refused: %s", exc.detail)
            pulled = None
        return added, pulled

    def directory_age(self) -> int | None:
        """Seconds since a hub checkpoint last confirmed the stored head (None: never)."""
        return self.directory.age()

    async def ensure_prekeys(self) -> None:
        """Publish a fresh prekey before the current one expires; erase old private halves."""
        await self.prekeys.ensure()

    async def rotate_prekey(self) -> str:
        """Make, store and publish a new signed prekey now; return its key id."""
        return await self.prekeys.rotate()

    async def erase_expired_prekeys(self) -> list[str]:
        """Erase private prekeys past expiry plus the grace period (forward secrecy)."""
        return await self.prekeys.erase_expired()

    # -- sending and receiving ----------------------------------------------------------------

    async def send(
        self,
        recipients: Sequence[AuthorityId],
        content: MessageContent,
        *,
        user: str = "operator",
        uploads: Sequence[str] = (),
    ) -> MessageId:
        """Seal and commit a message to the outbox; delivery follows in the background."""
        return await self.outgoing.send(recipients, content, user=user, uploads=uploads)

    async def retry(self, message_id: str, user: str = "operator") -> int:
        """Queue failed or waiting deliveries of a message again, now."""
        return await self.outgoing.retry(message_id, user)

    async def deliver_due(self) -> float:
        """Try every due delivery once; return seconds until the next one is due."""
        return await self.deliverer.deliver_due()

    async def receive(self, data: bytes, *, via: str) -> bytes:
        """Verify, decrypt and store an envelope; return this node's signed receipt."""
        return await self.incoming.receive(data, via=via)

    async def pull(self) -> int:
        """Fetch and process everything waiting at the hub; return the count."""
        return await self.incoming.pull()

    async def process_items(self, items: Sequence[MailboxItem]) -> None:
        """Process mailbox items (pulled or pushed) and acknowledge them at the hub."""
        await self.incoming.process_items(items)

    async def ping(self, peer: AuthorityId) -> dict[str, Any]:
        """Connectivity test: a signed ping to the peer's endpoint, and the hub's health."""
        self.state.member(peer)
        out: dict[str, Any] = {"authority": str(peer)}
        endpoint = self.directory.endpoint(peer)
        if endpoint is None:
            out["direct"] = {"ok": False, "ms": None, "error": "the peer publishes no endpoint"}
        else:
            started = self.ctx.monotonic()
            try:
                await self.peers.post(endpoint, peer, "/v1/ping", b"")
                ms = round((self.ctx.monotonic() - started) * 1000, 1)
                out["direct"] = {"ok": True, "ms": ms, "error": None}
            except GlobeError as exc:
                out["direct"] = {"ok": False, "ms": None, "error": exc.detail}
        started = self.ctx.monotonic()
        try:
            await self.hub.healthz()
            out["hub"] = {"ok": True, "ms": round((self.ctx.monotonic() - started) * 1000, 1)}
        except GlobeError:
            out["hub"] = {"ok": False, "ms": None}
        return out

    # -- workflow ---------------------------------------------------------------------------

    async def reply(
        self,
        message_id: str,
        *,
        kind: Kind,
        body: str,
        subject: str | None = None,
        status: StatusUpdate | None = None,
        user: str = "operator",
        uploads: Sequence[str] = (),
        consent: Consent | None = None,
    ) -> MessageId:
        """Answer, status-update or consent-decide a received message (to its sender)."""
        return await self.workflow.reply(
            message_id, kind=kind, body=body, subject=subject, status=status, user=user,
            uploads=uploads, consent=consent,
        )  # fmt: skip

    async def forward(
        self, message_id: str, to: Sequence[AuthorityId], *, user: str = "operator", note: str = ""
    ) -> MessageId:
        """Forward a held message with its proof of origin and attachments (§8.5)."""
        return await self.workflow.forward(message_id, to, user=user, note=note)

    async def request_consent(
        self, message_id: str, to: Sequence[AuthorityId], purpose: str, *, user: str = "operator"
    ) -> MessageId:
        """Ask the originator of a held message to consent to passing it on (§8.5)."""
        return await self.workflow.request_consent(message_id, to, purpose, user=user)

    async def proof_of_origin(
        self, message_id: str
    ) -> tuple[SignedContent, Sequence[SignedContent]]:
        """The proof of origin of a held message, and the consents it carries (§8.5)."""
        return await self.workflow.proof_of_origin(message_id)

    # -- reading ----------------------------------------------------------------------------

    async def content_of(self, message_id: str) -> HeldMessage:
        """A stored message (received or sent): direction, content and its metadata."""
        return await self.queries.content_of(message_id)

    async def mark_read(self, message_id: str, user: str) -> None:
        """Record that ``user`` opened a received message."""
        await self.queries.mark_read(message_id, user)

    def attachment_chunks(self, message_id: str, index: int) -> AsyncIterator[bytes]:
        """Decrypted, authenticated pieces of an attachment, in order."""
        return self.queries.attachment_chunks(message_id, index)

    async def inbox(self, *, limit: int = 50, unread: bool = False) -> list[InboxItem]:
        """Received messages, newest first."""
        return await self.queries.inbox(limit=limit, unread=unread)

    async def outbox(self, *, limit: int = 50) -> list[OutboxItem]:
        """Sent messages, newest first, with per-recipient delivery state."""
        return await self.queries.outbox(limit=limit)

    async def delivery(self, message_id: str) -> DeliveryView:
        """One sent message's delivery state per recipient, and its upload progress."""
        return await self.queries.delivery(message_id)

    async def requests(self, *, case: str | None = None) -> list[RequestView]:
        """Request workflow rows, with an ``overdue`` flag."""
        return await self.queries.requests(case=case)

    async def response_stats(self) -> dict[str, CounterpartStats]:
        """Per counterpart: requests sent, answered, mean seconds to first response and answer."""
        return await self.queries.response_stats()

    async def cases(self) -> list[CaseSummary]:
        """Every case with its counterparts, message count and open/overdue requests."""
        return await self.queries.cases()

    async def case_thread(self, case: str) -> CaseThread:
        """A case: its requests and every message in it, in thread order."""
        return await self.queries.case_thread(case)

    async def status(self) -> NodeStatus:
        """Membership, directory, hub, queues, requests and alerts."""
        return await self.queries.status()

    async def alerts(self) -> list[AlertView]:
        """Recorded alerts, newest first."""
        return await self.alert_log.all()

    async def alert(self, kind: str, detail: str, evidence: bytes | None) -> None:
        """Record something the operator must see (kept as evidence), once per cause."""
        await self.alert_log.record(kind, detail, evidence)

"""One member authority's node: small units wired together, and their background loops.

Everything works against the node's own verified copy of the membership log,
never against what the hub or a peer says about membership (R1, R2).  The
units, each with its own module and injected clock, randomness and transports:

* :mod:`globe_node.directory` — the verified log, sync, freshness;
* :mod:`globe_node.prekeys` — own and peers' signed prekeys;
* :mod:`globe_node.rekey` — a key update: the next keys and the switch to them;
* :mod:`globe_node.outbox` and :mod:`globe_node.delivery` — the transactional
  outbox (R10) and the pump that delivers directly or through the hub;
* :mod:`globe_node.inbox` and :mod:`globe_node.push` — receiving on both
  paths, acknowledging at the hub, the push stream;
* :mod:`globe_node.workflow` — replies, status updates, forwards, consent;
* :mod:`globe_node.cases`, :mod:`globe_node.worklists`, :mod:`globe_node.search`,
  :mod:`globe_node.stats`, :mod:`globe_node.reminders` — the investigator's work: case
  records, request lists, text search (in memory), statistics and reminders, all
  seen through :mod:`globe_node.compartments`;
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
from globe_node.cases import Cases, check_sendable
from globe_node.compartments import WHOLE_NODE, choose_team
from globe_node.config import NodeConfig
from globe_node.context import NodeContext
from globe_node.delivery import Deliverer
from globe_node.directory import Directory
from globe_node.inbox import Inbox
from globe_node.keys import KeyFile, NodeKeys
from globe_node.outbox import Also, Outbox
from globe_node.peerclient import PeerClient, PeerTransport
from globe_node.peerheads import PeerHeads
from globe_node.prekeys import Prekeys
from globe_node.push import PushClient
from globe_node.queries import Queries
from globe_node.rekey import KeyRotation, SwitchingHubClient
from globe_node.reminders import ReminderHook, Reminders
from globe_node.retention import Retention
from globe_node.search import Searcher, SearchIndex, message_text
from globe_node.standing import INACTIVE_SYNC, Standing, standing_of
from globe_node.stats import Stats
from globe_node.store import Store
from globe_node.uploads import Uploads
from globe_node.users import Principal
from globe_node.views import (
    DeliveryView,
    HeldMessage,
    InboxItem,
    NodeStatus,
    OutboxItem,
)
from globe_node.workflow import Workflow
from globe_node.worklists import RequestFilter, Worklists
from globe_node.workviews import RequestView
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
        key_file: KeyFile | None = None,
    ) -> None:
        self.ctx = ctx
        self.hub = hub or SwitchingHubClient(
            ctx.config.hub_url, network=ctx.genesis.digest, key=ctx.keys.transport
        )
        self.peers = peers or PeerClient(ctx)
        self.audit = AuditLog(ctx.store)
        self.alert_log = Alerts(ctx)
        self.peer_heads = PeerHeads(ctx.store, self.alert_log.record)
        self.directory = Directory(ctx, self.hub, self.alert_log, self.peer_heads)
        self.prekeys = Prekeys(ctx, self.hub, self.directory)
        #: A key update: the next keys, and the switch to them (globe_node.rekey).
        self.rotation = KeyRotation(
            ctx, key_file=key_file, directory=self.directory, prekeys=self.prekeys,
            hub=self.hub, audit=self.audit, alerts=self.alert_log,
        )  # fmt: skip
        if isinstance(self.hub, SwitchingHubClient):
            self.hub.rotation = self.rotation
        self.prekeys.before_seal = self.rotation.before_sealing
        self.staging = Uploads(
            me=ctx.me, store=ctx.store, cipher=ctx.cipher, blob_path=ctx.blob_path,
            lifetime=ctx.config.upload_lifetime, quota=ctx.config.upload_quota, clock=ctx.now,
        )  # fmt: skip
        self._wake = asyncio.Event()
        self._sync_soon = asyncio.Event()
        #: Text search: an index in memory, filled from the opened content (fill_index).
        self.index = SearchIndex()
        self.searcher = Searcher(self.index, ctx.store)
        self.worklists = Worklists(ctx)
        self.cases = Cases(ctx=ctx, audit=self.audit, index=self.index, worklists=self.worklists)
        self.stats = Stats(ctx)
        self.hook = ReminderHook(ctx.config.reminder_command, ctx.config.reminder_timeout)
        self.reminders = Reminders(ctx, self.alert_log, self.hook)
        self.outgoing = Outbox(
            ctx=ctx, directory=self.directory, prekeys=self.prekeys, staging=self.staging,
            audit=self.audit, cases=self.cases, wake=self._wake.set, stored=self._stored,
        )  # fmt: skip
        self.deliverer = Deliverer(
            ctx=ctx, directory=self.directory, outbox=self.outgoing, hub=self.hub, peers=self.peers
        )
        self.incoming = Inbox(
            ctx=ctx, directory=self.directory, prekeys=self.prekeys, outbox=self.outgoing,
            hub=self.hub, alerts=self.alert_log, peer_heads=self.peer_heads,
            sync_soon=self._sync_soon, cases=self.cases, stored=self._stored,
        )  # fmt: skip
        self.push = PushClient(ctx=ctx, inbox=self.incoming)
        #: This node's own membership, as last said (globe_node.standing).
        self.standing = Standing(ctx.me, "not admitted")
        self.push.may_connect = lambda: self.standing.alert_kind is None
        self.queries = Queries(
            ctx=ctx, directory=self.directory, audit=self.audit, alerts=self.alert_log,
            hook=self.hook, uploads=self.deliverer.uploads,
            push_connected=lambda: self.push.connected,
        )  # fmt: skip
        self.workflow = Workflow(
            ctx=ctx, directory=self.directory, outbox=self.outgoing, queries=self.queries,
            staging=self.staging, audit=self.audit, cases=self.cases,
        )  # fmt: skip
        #: The purge of [retention] (daily when configured), its search index kept current.
        self.retention = Retention(ctx, self.audit, stored=self._stored)
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
        key_file: KeyFile | None = None,
    ) -> Node:
        """Open the database (migrating it) and rebuild the directory from the stored log.

        ``key_file`` (the daemon's) lets a key update be picked up and completed while the
        node runs (:mod:`globe_node.rekey`).
        """
        genesis = Genesis.decode(config.genesis_path.read_bytes())
        engine = db.make_engine(config.db_path)
        await db.migrate(engine)
        ctx = NodeContext(config=config, keys=keys, genesis=genesis, store=Store(engine),
                          clock=clock)  # fmt: skip
        if rng is not None:
            ctx.rng = rng
        node = cls(ctx, key_file=key_file)
        await node.directory.load()
        await node.prekeys.load()
        await node.fill_index()
        return node

    async def fill_index(self) -> None:
        """Index the opened content of every stored message, case title and note (in
        memory only: nothing of it is written anywhere, globe_node/search.py)."""
        async for mid, sealed in self.ctx.store.sealed_contents():
            content = MessageContent.decode(self.ctx.cipher.open(sealed, f"content:{mid}"))
            self._stored(mid, content)
        for ref, title in await self.cases.titles():
            self.index.put("case", ref, ref, title)
        for note in await self.cases.notes():
            self.index.put("note", note.id, note.case, note.body)

    def _stored(self, message_id: str, content: MessageContent) -> None:
        self.index.put("message", message_id, None, message_text(content))

    async def start(self) -> None:
        """Start the background loops: directory sync, delivery, hub push.

        A pending key update is checked against the log first, so that nothing is sent
        with keys the log has replaced.
        """
        self.ctx.config.blob_dir.mkdir(mode=0o700, exist_ok=True)
        try:
            await self.rotation.startup()
        except GlobeError as exc:
            log.warning("key update: %s", exc.detail)
        self._tasks = [
            asyncio.create_task(self._sync_loop(), name="sync"),
            asyncio.create_task(self.deliverer.run(self._wake), name="delivery"),
            asyncio.create_task(self.push.run(), name="push"),
            asyncio.create_task(self.retention.run(), name="retention"),
        ]

    async def close(self) -> None:
        """Stop the loops and close connections (committed work is never lost)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.hook.close()
        await self.hub.close()
        await self.peers.close()
        await self.ctx.store.close()
        self.index.close()

    async def _sync_loop(self) -> None:
        """Sync the directory, prekeys and mailbox every ``sync_interval`` seconds, or
        sooner when a peer's envelope shows a longer log than ours."""
        while True:
            self._sync_soon.clear()  # before the sync: a request during it is not lost
            try:
                await self._sync_once()
            except GlobeError as exc:
                log.warning("sync: %s", exc.detail)
            except Exception:
                log.exception("sync failed")
            interval = self.ctx.config.sync_interval
            if self.standing.alert_kind is not None:  # suspended or revoked: back off
                interval = max(interval, INACTIVE_SYNC)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_soon.wait(), timeout=interval)

    async def _sync_once(self) -> None:
        purged = await self.staging.purge()
        if purged:
            log.info("erased %d staged upload(s) no message took", purged)
        await self.reminders.check()  # needs no hub
        try:
            await self.directory.sync()
            await self.rotation.check()
            if await self._check_standing():  # else every request would be refused
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

    async def _check_standing(self) -> bool:
        """Say once what changed in this node's own membership; whether it is active."""
        standing = standing_of(self.state, self.me)
        if standing != self.standing:
            was_inactive = self.standing.alert_kind is not None
            self.standing = standing
            message = standing.explain()
            if message is not None and standing.alert_kind is not None:
                log.error("%s", message)  # said here once; the alert row keeps it
                await self.ctx.store.add_alert(standing.alert_kind, message, None, self.now())
            elif was_inactive and standing.active:
                log.warning("this node (%s) is active again (log entry %s)", self.me, standing.seq)
        return standing.active

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
        """Fetch, verify and store new log entries; return how many were added (and switch
        to the next keys of a key update the log certifies)."""
        added = await self.directory.sync()
        await self.rotation.check()
        return added

    async def sync_now(self) -> tuple[int, int | None]:
        """Sync the directory, then pull the mailbox: (entries added, items pulled or None
        when the hub refused the pull, e.g. because this node was suspended)."""
        added = await self.directory.sync()
        await self.rotation.check()
        if not await self._check_standing():  # the hub refuses a node that is not active
            return added, None
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
        who: Principal | None = None,
        team: str | None = None,
    ) -> MessageId:
        """Seal and commit a message to the outbox; delivery follows in the background.

        Sent by ``who`` (a user of the local API), the message goes into a case ``who``
        sees and that is open, and a message in no case (or a new case) goes to ``team``
        (one of ``who``'s, by default its first).
        """
        guard: Also | None = None
        if who is not None:
            team = choose_team(who, team)
            sender = who
            guard = lambda c, _now: check_sendable(c, content.case, sender)  # noqa: E731
        return await self.outgoing.send(
            recipients, content, user=user, uploads=uploads, team=team, guard=guard
        )

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
        user: str = "operator",
        uploads: Sequence[str] = (),
        consent: Consent | None = None,
    ) -> MessageId:
        """Answer, inform or consent-decide on a received message (to its sender)."""
        return await self.workflow.reply(
            message_id, kind=kind, body=body, subject=subject, user=user, uploads=uploads,
            consent=consent,
        )  # fmt: skip

    async def update_status(
        self, message_id: str, status: StatusUpdate, *, body: str = "", user: str = "operator"
    ) -> MessageId:
        """Report a request's new state to its other party or parties (PROTOCOL.md §8.2.1)."""
        return await self.workflow.update_status(message_id, status, body=body, user=user)

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

    async def resolve_message(self, ref: str, who: Principal) -> str:
        """The one message ``who`` sees whose id is ``ref`` or starts with it."""
        return await self.queries.resolve_message(ref, who)

    async def inbox(
        self, *, who: Principal = WHOLE_NODE, limit: int = 50, unread: bool = False
    ) -> list[InboxItem]:
        """Received messages ``who`` sees, newest first."""
        return await self.queries.inbox(who, limit=limit, unread=unread)

    async def outbox(self, *, who: Principal = WHOLE_NODE, limit: int = 50) -> list[OutboxItem]:
        """Sent messages ``who`` sees, newest first, with per-recipient delivery state."""
        return await self.queries.outbox(who, limit=limit)

    async def delivery(self, message_id: str) -> DeliveryView:
        """One sent message's delivery state per recipient, and its upload progress."""
        return await self.queries.delivery(message_id)

    async def requests(
        self, want: RequestFilter | None = None, *, who: Principal = WHOLE_NODE
    ) -> list[RequestView]:
        """Request workflow rows ``who`` sees (every one, open or ended, by default)."""
        page = await self.worklists.page(
            who, want or RequestFilter(status="all"), limit=1_000_000, offset=0
        )
        return list(page.requests)

    async def status(self, who: Principal = WHOLE_NODE) -> NodeStatus:
        """Membership, directory, hub, queues, requests, alerts and ``who``'s reminders."""
        return await self.queries.status(who)

    async def alerts(self, who: Principal | None = None) -> list[AlertView]:
        """Recorded alerts ``who`` is shown (``None``: all), newest first."""
        return await self.alert_log.all(who)

    async def alert(self, kind: str, detail: str, evidence: bytes | None) -> None:
        """Record something the operator must see (kept as evidence), once per cause."""
        await self.alert_log.record(kind, detail, evidence)

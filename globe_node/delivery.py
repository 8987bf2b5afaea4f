"""The delivery pump: committed messages leave, the same bytes on every attempt.

For each due recipient, directly to its certified endpoint (``POST
/v1/inbox``, answered with its signed receipt) when it publishes one, else —
or when that fails, or when the message has attachments (the hub gives a
recipient a blob only against an envelope it accepted, §8.4.1) — through the
hub, which answers with signed evidence.  A refusal the hub would repeat
fails the recipient with the hub's ``rejected`` evidence; anything retryable
backs off (:func:`globe_node.states.next_attempt`).  A peer that failed is
relayed through the hub for :data:`PEER_RETRY` seconds before it is tried
directly again.

Time, randomness and both transports are injected (:class:`NodeContext`,
:class:`PeerTransport`, :class:`HubTransport`), so tests drive this with a
fake clock and fake transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Protocol

from globe_node import db
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.outbox import Outbox
from globe_node.peerclient import PeerTransport
from globe_node.states import DeliveryEvent, next_attempt
from protocol.envelope import parse_envelope
from protocol.errors import GlobeError, ProtocolError, TransportError
from protocol.ids import AuthorityId
from protocol.receipts import Evidence, EvidenceKind

__all__ = ["DELIVERY_CONCURRENCY", "PEER_RETRY", "Deliverer", "HubTransport", "retryable"]

log = logging.getLogger("globe.node.delivery")

#: Seconds to relay through the hub after a peer's endpoint failed, before trying it again.
PEER_RETRY: Final = 60.0
#: Messages delivered concurrently by one delivery pass (16: the hub then commits more
#: envelopes per group and wakes the recipients' streams less often per message).
DELIVERY_CONCURRENCY: Final = 16

#: Upload progress: (bytes done, bytes total).
Progress = Callable[[int, int], None]


class HubTransport(Protocol):
    """What delivery needs of the hub (the hub client, or a test double)."""

    async def submit_message(self, envelope: bytes) -> tuple[int, bytes]:
        """Submit an envelope: (HTTP status, the hub's signed evidence)."""
        ...  # pragma: no cover - a protocol

    async def put_blob(
        self, blob_id: str, path: Path, *, progress: Progress | None = None
    ) -> object:
        """Upload an attachment blob from ``path``."""
        ...  # pragma: no cover - a protocol


def retryable(exc: GlobeError) -> bool:
    """Worth retrying: transport trouble, rate limits, a full mailbox or disk, a hub 5xx."""
    return (
        isinstance(exc, TransportError) or exc.status in (408, 429, 503, 507) or exc.status >= 500
    )


class Deliverer:
    """Try due deliveries; record each outcome through the outbox's store."""

    def __init__(
        self,
        *,
        ctx: NodeContext,
        directory: Directory,
        outbox: Outbox,
        hub: HubTransport,
        peers: PeerTransport,
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.outbox = outbox
        self.hub = hub
        self.peers = peers
        #: Attachment upload progress of messages being relayed: (bytes sent, total).
        self.uploads: dict[str, tuple[int, int]] = {}
        self._peer_down: dict[str, float] = {}  # peer -> monotonic time to try direct again

    async def deliver_due(self) -> float:
        """Try every due delivery once; return seconds until the next one is due."""
        due, nxt = await self.ctx.store.due(self.ctx.now())
        limit = asyncio.Semaphore(DELIVERY_CONCURRENCY)
        outgoing = await self.ctx.store.outgoing(due) if due else []

        async def one(msg: db.OutMessage, targets: list[db.OutRecipient]) -> None:
            async with limit:
                await self._attempt(msg, targets)

        outcomes = await asyncio.gather(*(one(*o) for o in outgoing), return_exceptions=True)
        for (msg, _), outcome in zip(outgoing, outcomes, strict=True):
            if isinstance(outcome, Exception):
                detail = outcome.detail if isinstance(outcome, GlobeError) else repr(outcome)
                log.error("delivery of %s failed: %s", msg.message_id, detail)
        if due:
            return 0.0
        return 30.0 if nxt is None else max(0.05, float(nxt - self.ctx.now()))

    async def deliver(self, mid: str) -> None:
        """One attempt for every queued recipient of one message."""
        store = self.ctx.store
        msg = await store.out_message(mid)
        targets = await store.queued_targets(mid)
        if msg is not None and targets:
            await self._attempt(msg, targets)

    async def _attempt(self, msg: db.OutMessage, targets: list[db.OutRecipient]) -> None:
        mid = msg.message_id
        if msg.expires <= self.ctx.now():
            await self.ctx.store.apply(mid, [t.recipient for t in targets],
                                       DeliveryEvent.EXPIRED, error="expired")  # fmt: skip
            return
        relay: list[db.OutRecipient] = []
        has_blobs: bool | None = None  # read from the header only if some peer publishes
        for t in targets:
            endpoint = self.directory.endpoint(t.recipient)
            down = self._peer_down.get(t.recipient, 0.0) > self.ctx.monotonic()
            if endpoint is not None and has_blobs is None:
                # Attachments always go through the hub (§8.4.1).
                has_blobs = bool(msg.pending_blobs or parse_envelope(msg.envelope).header.blobs)
            direct = endpoint is not None and not has_blobs and not down
            if not direct or not await self._direct(msg, t.recipient, str(endpoint)):
                relay.append(t)
        if relay:
            await self._relay(msg, relay)

    async def _direct(self, msg: db.OutMessage, recipient: str, endpoint: str) -> bool:
        """Deliver to the peer itself; False when the hub should carry it instead."""
        try:
            receipt = await self.peers.post(
                endpoint, AuthorityId.parse(recipient), "/v1/inbox", msg.envelope
            )
            await self.outbox.record_receipt(receipt, via="direct")
        except TransportError as exc:
            log.info("direct delivery of %s to %s failed: %s", msg.message_id, recipient,
                     exc.detail)  # fmt: skip
            # Do not wait for this peer's timeout once per queued message.
            self._peer_down[recipient] = self.ctx.monotonic() + PEER_RETRY
            return False
        except GlobeError as exc:
            # A peer may refuse for reasons of its own (its directory is behind ours,
            # say): the hub and the recipient's pull path decide instead.
            log.info("peer %s refused %s: %s; relaying", recipient, msg.message_id, exc.detail)
            return False
        self._peer_down.pop(recipient, None)
        return True

    async def _relay(self, msg: db.OutMessage, targets: Sequence[db.OutRecipient]) -> None:
        mid = msg.message_id
        names = [t.recipient for t in targets]
        store = self.ctx.store
        try:
            if msg.pending_blobs:
                await self._upload_blobs(msg)
            _status, evidence = await self.hub.submit_message(msg.envelope)
        except GlobeError as exc:
            if retryable(exc):
                self.directory.hub_reachable = not isinstance(exc, TransportError)
                await self._backoff(mid, targets, exc.detail)
            else:
                rejected = _rejected_evidence(exc.evidence, msg, self.ctx)
                await store.apply(mid, names, DeliveryEvent.REFUSED, error=exc.detail,
                                  evidence=rejected)  # fmt: skip
            return
        self.directory.hub_reachable = True
        ev = Evidence.decode(evidence, self.ctx.genesis)
        if ev.kind is not EvidenceKind.ACCEPTED or ev.envelope_hash != msg.envelope_hash:
            await self._backoff(mid, targets, "the hub's evidence does not name this envelope")
            return
        await store.apply(mid, names, DeliveryEvent.HUB_ACCEPTED, via="hub", evidence=evidence)
        log.info("message %s accepted by the hub", mid)

    async def _upload_blobs(self, msg: db.OutMessage) -> None:
        mid = msg.message_id
        me = str(self.ctx.me)
        blobs = msg.pending_blobs.split()
        sizes = [self.ctx.blob_path(me, b).stat().st_size for b in blobs]
        total, before = sum(sizes), 0
        for blob, size in zip(blobs, sizes, strict=True):

            def progress(done: int, _total: int, base: int = before) -> None:
                self.uploads[mid] = (base + done, total)

            try:
                await self.hub.put_blob(blob, self.ctx.blob_path(me, blob), progress=progress)
            except GlobeError as exc:
                if exc.slug != "state-conflict":  # state-conflict: uploaded already
                    self.uploads.pop(mid, None)
                    raise
            before += size
            self.uploads[mid] = (before, total)
            msg.pending_blobs = await self.ctx.store.blob_uploaded(mid, me, blob)
        self.uploads.pop(mid, None)

    async def _backoff(self, mid: str, targets: Sequence[db.OutRecipient], error: str) -> None:
        cfg, now = self.ctx.config, self.ctx.now()
        attempts = {
            t.recipient: (
                t.attempts + 1,
                next_attempt(now, t.attempts + 1, base=cfg.retry_base, cap=cfg.retry_max,
                             jitter=self.ctx.jitter),
            )
            for t in targets
        }  # fmt: skip
        await self.ctx.store.backoff(mid, attempts, error)

    async def run(self, wake: asyncio.Event) -> None:
        """Deliver until cancelled: after each pass, sleep until due or woken."""
        while True:
            try:
                delay = await self.deliver_due()
            except GlobeError as exc:
                log.warning("delivery pass failed: %s", exc.detail)
                delay = self.ctx.config.retry_base
            except Exception:  # a bug of ours: logged, and the loop goes on
                log.exception("delivery pass failed")
                delay = self.ctx.config.retry_base
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.05, delay))


def _rejected_evidence(data: bytes | None, msg: db.OutMessage, ctx: NodeContext) -> bytes | None:
    """The hub's signed ``rejected`` evidence for this envelope, if it sent valid evidence."""
    if data is None:
        return None
    try:
        ev = Evidence.decode(data, ctx.genesis)
    except ProtocolError:
        return None
    ok = ev.kind is EvidenceKind.REJECTED and ev.envelope_hash == msg.envelope_hash
    return data if ok else None

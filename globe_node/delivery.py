"""The delivery pump: committed messages leave, the same bytes on every attempt.

For each due recipient, directly to its certified endpoint (``POST
/v1/inbox``, answered with its signed receipt) when it publishes one, else —
or when that fails, or when the message has attachments (the hub gives a
recipient a blob only against an envelope it accepted, §8.4.1) — through the
hub, which answers with signed evidence.  A pass relays the messages it has
without attachments in batches (``POST /v1/messages/batch``, PROTOCOL.md §10.6:
one signed request, one answer, each envelope still judged and answered alone),
falling back to one request per envelope for a hub without the route.  A refusal
the hub would repeat
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

from sqlalchemy.engine import Connection

from globe_io.hubapi import BATCH_MAX_ITEMS
from globe_node import db
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.outbox import Outbox
from globe_node.peerclient import PeerTransport
from globe_node.states import DeliveryEvent, next_attempt
from globe_node.store import applying, backing_off
from protocol.envelope import parse_envelope
from protocol.errors import GlobeError, ProtocolError, TransportError
from protocol.ids import AuthorityId
from protocol.receipts import Evidence, EvidenceKind

__all__ = [
    "BATCH_BYTES",
    "BATCH_RETRY",
    "DELIVERY_CONCURRENCY",
    "PEER_RETRY",
    "Deliverer",
    "HubTransport",
    "retryable",
]

log = logging.getLogger("globe.node.delivery")

#: Seconds to relay through the hub after a peer's endpoint failed, before trying it again.
PEER_RETRY: Final = 60.0
#: Messages delivered concurrently by one delivery pass (16: the hub then commits more
#: envelopes per group and wakes the recipients' streams less often per message).
DELIVERY_CONCURRENCY: Final = 16

#: Envelope bytes in one batched submission; an envelope that does not fit goes in the
#: next batch, a larger one alone.  The base64url of a full batch (under 2.7 MiB) fits
#: the hub's BATCH_MAX_BODY and also a proxy that still caps bodies at 3 MB.
BATCH_BYTES: Final = 2 * 1024 * 1024
#: Seconds to submit one envelope per request after the hub had no batch route.
BATCH_RETRY: Final = 3600.0

#: What the hub answered for one envelope: (HTTP status, its evidence), or its refusal.
Outcome = tuple[int, bytes] | GlobeError

#: A message to relay through the hub, and its recipients still queued.
Relay = tuple[db.OutMessage, list[db.OutRecipient]]

#: Upload progress: (bytes done, bytes total).
Progress = Callable[[int, int], None]


class HubTransport(Protocol):
    """What delivery needs of the hub (the hub client, or a test double)."""

    async def submit_message(self, envelope: bytes) -> tuple[int, bytes]:
        """Submit an envelope: (HTTP status, the hub's signed evidence)."""
        ...  # pragma: no cover - a protocol

    async def submit_messages(self, envelopes: Sequence[bytes]) -> list[Outcome]:
        """Submit several envelopes in one request: per envelope, in order, its outcome."""
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
        self._single_until = 0.0  # monotonic time to try the hub's batch route again

    async def deliver_due(self) -> float:
        """Try every due delivery once; return seconds until the next one is due.

        A message with attachments to upload is attempted on its own (an upload must
        not hold up the others); the rest are routed first (expired, direct to peers)
        and what is left for the hub goes in batches.
        """
        outgoing, nxt = await self.ctx.store.due(self.ctx.now())
        limit = asyncio.Semaphore(DELIVERY_CONCURRENCY)
        relay: list[Relay] = []

        async def one(msg: db.OutMessage, targets: list[db.OutRecipient]) -> None:
            try:
                async with limit:
                    if msg.pending_blobs:
                        await self._attempt(msg, targets)
                    elif rest := await self._route(msg, targets):
                        relay.append((msg, rest))
            except Exception as exc:  # noqa: BLE001 - logged; the message stays due
                _failed(msg, exc)

        async def plain() -> None:
            await asyncio.gather(*(one(*o) for o in outgoing if not o[0].pending_blobs))
            for batch in _batches(relay):
                try:
                    await self._relay_batch(batch)
                except Exception as exc:  # noqa: BLE001 - logged; the messages stay due
                    for msg, _ in batch:
                        _failed(msg, exc)

        await asyncio.gather(plain(), *(one(*o) for o in outgoing if o[0].pending_blobs))
        if outgoing:
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
        relay = await self._route(msg, targets)
        if relay:
            await self._relay(msg, relay)

    async def _route(
        self, msg: db.OutMessage, targets: list[db.OutRecipient]
    ) -> list[db.OutRecipient]:
        """Expire the message, or deliver it directly where a peer publishes an endpoint;
        the recipients left for the hub."""
        mid = msg.message_id
        if msg.expires <= self.ctx.now():
            await self.ctx.store.apply(mid, [t.recipient for t in targets],
                                       DeliveryEvent.EXPIRED, error="expired")  # fmt: skip
            return []
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
        return relay

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
        """Upload the message's attachments if any, submit it alone, record the outcome."""
        try:
            if msg.pending_blobs:
                await self._upload_blobs(msg)
            outcome: Outcome = await self.hub.submit_message(msg.envelope)
        except GlobeError as exc:
            outcome = exc
        await self._record([(msg, list(targets))], [outcome])

    async def _relay_batch(self, batch: Sequence[Relay]) -> None:
        """Submit these messages (no attachments left to upload) together; record each."""
        await self._record(batch, await self._submit([msg.envelope for msg, _ in batch]))

    async def _record(self, relayed: Sequence[Relay], outcomes: Sequence[Outcome]) -> None:
        """Record what the hub answered for messages relayed through it, in one transaction."""
        verdicts = [self._verdict(m, t, o) for (m, t), o in zip(relayed, outcomes, strict=True)]
        await self.ctx.store.transact(lambda c: [write(c) for write, _ in verdicts])
        accepted = [
            msg.message_id for (msg, _), (_, ok) in zip(relayed, verdicts, strict=True) if ok
        ]
        if len(accepted) == 1:
            log.info("message %s accepted by the hub", accepted[0])
        elif accepted:
            log.info("%d messages accepted by the hub: %s", len(accepted), " ".join(accepted))

    async def _submit(self, envelopes: Sequence[bytes]) -> list[Outcome]:
        """Each envelope's outcome: in one batch where the hub takes it, else one by one.

        A batch refused as a whole says nothing about its envelopes: when it is worth
        retrying, each waits as the single route's refusal would have them wait; else
        each is submitted alone and judged on its own.
        """
        if len(envelopes) > 1 and self.ctx.monotonic() >= self._single_until:
            try:
                return await self.hub.submit_messages(envelopes)
            except GlobeError as exc:
                if exc.status in (404, 405):
                    log.info("the hub has no batch route; submitting one envelope per request")
                    self._single_until = self.ctx.monotonic() + BATCH_RETRY
                elif retryable(exc):
                    return [exc] * len(envelopes)
                else:
                    log.warning("the hub refused a batch: %s; submitting one by one", exc.detail)
        return list(await asyncio.gather(*(self._submit_one(e) for e in envelopes)))

    async def _submit_one(self, envelope: bytes) -> Outcome:
        try:
            return await self.hub.submit_message(envelope)
        except GlobeError as exc:
            return exc

    def _verdict(
        self, msg: db.OutMessage, targets: Sequence[db.OutRecipient], outcome: Outcome
    ) -> tuple[Callable[[Connection], object], bool]:
        """What the hub's answer for one relayed message means: the write that records it
        (to run in the caller's transaction), and whether the hub accepted the message."""
        mid = msg.message_id
        names = [t.recipient for t in targets]
        if isinstance(outcome, GlobeError):
            exc = outcome
            if retryable(exc):
                self.directory.hub_reachable = not isinstance(exc, TransportError)
                return self._backoff(mid, targets, exc.detail), False
            rejected = _rejected_evidence(exc.evidence, msg, self.ctx)
            refused = applying(mid, names, DeliveryEvent.REFUSED, error=exc.detail,
                               evidence=rejected)  # fmt: skip
            return refused, False
        _status, evidence = outcome
        self.directory.hub_reachable = True
        try:
            ev = Evidence.decode(evidence, self.ctx.genesis)
        except ProtocolError as exc:
            return self._backoff(mid, targets, f"the hub's evidence: {exc.detail}"), False
        if ev.kind is not EvidenceKind.ACCEPTED or ev.envelope_hash != msg.envelope_hash:
            wrong = "the hub's evidence does not name this envelope"
            return self._backoff(mid, targets, wrong), False
        return applying(mid, names, DeliveryEvent.HUB_ACCEPTED, via="hub", evidence=evidence), True

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

    def _backoff(
        self, mid: str, targets: Sequence[db.OutRecipient], error: str
    ) -> Callable[[Connection], None]:
        """The write that backs these recipients off by the schedule (another attempt)."""
        cfg, now = self.ctx.config, self.ctx.now()
        attempts = {
            t.recipient: (
                t.attempts + 1,
                next_attempt(now, t.attempts + 1, base=cfg.retry_base, cap=cfg.retry_max,
                             jitter=self.ctx.jitter),
            )
            for t in targets
        }  # fmt: skip
        return backing_off(mid, attempts, error)

    async def run(self, wake: asyncio.Event) -> None:
        """Deliver until cancelled: after each pass, sleep until due or woken.

        The wake-up is cleared before a pass, not after it: a send committed while a pass
        runs (after it read what was due) wakes the next pass at once instead of being
        forgotten until the next attempt falls due.
        """
        while True:
            wake.clear()
            try:
                delay = await self.deliver_due()
            except GlobeError as exc:
                log.warning("delivery pass failed: %s", exc.detail)
                delay = self.ctx.config.retry_base
            except Exception:  # a bug of ours: logged, and the loop goes on
                log.exception("delivery pass failed")
                delay = self.ctx.config.retry_base
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.05, delay))


def _batches(relay: Sequence[Relay]) -> list[list[Relay]]:
    """``relay`` in order, cut into batches of at most BATCH_MAX_ITEMS and BATCH_BYTES
    (an envelope larger than that travels alone)."""
    out: list[list[Relay]] = []
    size = 0
    for item in relay:
        n = len(item[0].envelope)
        if not out or len(out[-1]) == BATCH_MAX_ITEMS or size + n > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return out


def _failed(msg: db.OutMessage, exc: Exception) -> None:
    detail = exc.detail if isinstance(exc, GlobeError) else repr(exc)
    log.error("delivery of %s failed: %s", msg.message_id, detail)


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

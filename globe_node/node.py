"""The node core: verified directory, prekeys, outbox, inbox, receipts and cases.

Everything here works against the node's own verified copy of the membership
log, never against what the hub or a peer says about membership (R1, R2):

* **directory**: :meth:`Node.sync_directory` pulls log entries from the hub,
  verifies them from the pinned genesis, and stores them in one transaction;
  a hub checkpoint that contradicts the stored log (rollback or fork) is kept
  as an alert and refused.  The head's age is the time since the last
  hub-signed checkpoint that agreed with the stored log; sending is refused
  when it exceeds ``directory_max_age``.
* **outbox** (R10): :meth:`Node.send` seals the envelope and commits it, with
  its per-pair sequence numbers, before anything leaves the node; the delivery
  loop then tries each recipient's published endpoint (``POST /v1/inbox``) and
  relays through the hub when the peer is unreachable or publishes none,
  retrying the exact committed bytes with exponential backoff and jitter.
* **inbox**: :meth:`Node.receive` runs the same checks on both paths, stores
  the message, its seen-set row and the signed receipt in one transaction, and
  returns the receipt (direct path) or queues it for the hub acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import aiohttp
import orjson
import yarl
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from globe_io.errors import Conflict as HubConflict
from globe_io.hubclient import HubClient, MailboxItem, request_payload
from globe_node import db
from globe_node.audit import AuditLog
from globe_node.config import NodeConfig
from globe_node.errors import Conflict, ConsentRequired, DirectoryStale, NotFound
from globe_node.keys import NodeKeys
from globe_node.netguard import PublicOnlyResolver, check_literal
from globe_node.peerheads import PeerHeads
from globe_node.storage import StorageCipher
from globe_node.uploads import Uploads
from protocol import canonical
from protocol.attachments import AttachmentDecryptor
from protocol.directory import DirectoryState, HeadRelation, Member, MemberStatus
from protocol.envelope import (
    Envelope,
    OpenedEnvelope,
    SealTo,
    content_signature,
    envelope_hash,
    open_envelope,
    parse_envelope,
    seal_envelope,
)
from protocol.errors import (
    ConflictError,
    DecryptionFailed,
    ForkDetected,
    GlobeError,
    MalformedError,
    MemberNotActive,
    ProtocolError,
    RollbackDetected,
    TransportError,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.keys import KemPrivateKey, KemPublicKey
from protocol.membership import Checkpoint
from protocol.messages import (
    MAX_CONSENTS,
    Attachment,
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    SignedContent,
    StatusState,
    StatusUpdate,
    Tlp,
    forward_requires_consent,
)
from protocol.origin import Origin, signed_content, verify_forward, verify_signed_content
from protocol.prekeys import SignedPrekey, make_prekey
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind, make_receipt
from protocol.replay import SeqVerdict, classify_seq
from protocol.requestauth import HEADER, sign_request

__all__ = ["Node", "Progress"]

log = logging.getLogger("globe.node")

#: Progress callback: (what, bytes done, bytes total).
Progress = Callable[[str, int, int], None]

#: Request states that still need an answer.
OPEN_STATES: Final = ("sent", "received", "acknowledged", "in-progress")
#: Seconds to relay through the hub after a peer's endpoint failed, before trying it again.
PEER_RETRY: Final = 60.0
#: Seconds a verified prekey of a peer is used before the hub is asked again.
PREKEY_CACHE: Final = 300.0
#: Messages delivered concurrently by one delivery pass.
DELIVERY_CONCURRENCY: Final = 8


def _aid(text: str) -> AuthorityId:
    return AuthorityId.parse(text)


class Node:
    """One member authority's node: open it with :meth:`open`, then :meth:`start`."""

    def __init__(
        self,
        config: NodeConfig,
        keys: NodeKeys,
        genesis: Genesis,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.keys = keys
        self.genesis = genesis
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = db.session_factory(engine)
        self.clock = clock
        self.me = _aid(config.authority)
        self.state = DirectoryState(genesis)
        self.cipher = StorageCipher(keys.storage)
        self.hub = HubClient(config.hub_url, network=genesis.digest, key=keys.transport)
        self._prekeys: dict[KeyId, KemPrivateKey] = {keys.ka.key_id: keys.ka}
        self._wake = asyncio.Event()
        self._sync_soon = asyncio.Event()
        self._sync_lock = asyncio.Lock()
        self._peer_prekeys: dict[AuthorityId, SignedPrekey] = {}
        self._prekey_fetched: dict[AuthorityId, float] = {}  # monotonic time of the fetch
        #: Attachment upload progress of messages being relayed: (bytes sent, total).
        self.uploads: dict[str, tuple[int, int]] = {}
        self._transport_index: tuple[int, dict[KeyId, AuthorityId]] = (
            -1,
            {},
        )  # last verified, per peer
        self._peer_down: dict[str, float] = {}  # peer -> monotonic time to try direct again
        self._tasks: list[asyncio.Task[None]] = []
        self._peer_session: aiohttp.ClientSession | None = None
        self._checkpoint_time = 0
        self.hub_reachable: bool | None = None
        self.push_connected = False
        self._receive_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._prekey_lock = asyncio.Lock()
        self.audit = AuditLog(self.sessions)
        self.peer_heads = PeerHeads(self.sessions, self.alert)
        self.staging = Uploads(
            me=self.me, sessions=self.sessions, cipher=self.cipher, blob_path=self.blob_path,
            lifetime=config.upload_lifetime, quota=config.upload_quota, clock=self.now,
        )  # fmt: skip

    # -- lifecycle --------------------------------------------------------------------------

    def now(self) -> int:
        """The current time in whole seconds."""
        return int(self.clock())

    @classmethod
    async def open(
        cls, config: NodeConfig, keys: NodeKeys, *, clock: Callable[[], float] = time.time
    ) -> Node:
        """Open the database (migrating it) and rebuild the directory from the stored log."""
        from protocol.genesis import Genesis as _Genesis  # noqa: PLC0415 - avoid a cycle

        genesis = _Genesis.decode(config.genesis_path.read_bytes())
        engine = db.make_engine(config.db_path)
        await db.migrate(engine)
        node = cls(config, keys, genesis, engine, clock=clock)
        await node._load()
        return node

    async def _load(self) -> None:
        async with self.sessions() as s:
            rows = (await s.execute(select(db.LogRow.data).order_by(db.LogRow.seq))).scalars()
            self.state.extend(list(rows))
            prekeys = (await s.execute(select(db.PrekeyRow))).scalars().all()
            cp = await s.get(db.Meta, "checkpoint_time")
        self._checkpoint_time = int(cp.value) if cp else 0
        await self.peer_heads.load()
        for row in prekeys:
            if row.private is not None:
                raw = self.cipher.open(row.private, f"prekey:{row.key_id}")
                key = KemPrivateKey(raw)
                self._prekeys[key.key_id] = key

    async def start(self) -> None:
        """Start the background loops: directory sync, delivery, hub pull and push."""
        self.config.blob_dir.mkdir(mode=0o700, exist_ok=True)
        self._tasks = [
            asyncio.create_task(self._sync_loop(), name="sync"),
            asyncio.create_task(self._delivery_loop(), name="delivery"),
            asyncio.create_task(self._push_loop(), name="push"),
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
        if self._peer_session is not None:
            await self._peer_session.close()
        await self.engine.dispose()

    async def _sync_loop(self) -> None:
        """Sync the directory, prekeys and mailbox every ``sync_interval`` seconds, or
        sooner when a peer's envelope shows a longer log than ours."""
        while True:
            try:
                await self._sync_once()
            except asyncio.CancelledError:
                raise
            except GlobeError as exc:
                log.warning("sync: %s", exc.detail)
            except Exception:
                log.exception("sync failed")
            self._sync_soon.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_soon.wait(), timeout=self.config.sync_interval)

    async def _sync_once(self) -> None:
        purged = await self.staging.purge()
        if purged:
            log.info("erased %d staged upload(s) no message took", purged)
        try:
            await self.sync_directory()
            await self.ensure_prekeys()
            if not self.push_connected:  # the stream delivers; it pulls once per connect
                await self.pull()
        except TransportError as exc:
            self.hub_reachable = False
            log.info("hub unreachable: %s", exc.detail)
        age = self.directory_age()
        if age is not None and age > self.config.directory_max_age:
            log.warning(
                "the directory head was last confirmed %d s ago (limit %d s): sending is"
                " refused until the hub is reachable",
                age, self.config.directory_max_age,
            )  # fmt: skip

    async def _audit(self, user: str, action: str, subject: str) -> None:
        await self.audit.append(self.now(), user, action, subject)

    # -- directory --------------------------------------------------------------------------

    async def sync_directory(self) -> int:
        """Fetch, verify and store new log entries; return how many were added.

        The stored log is only ever extended: entries that do not chain onto it
        are refused, and a hub checkpoint behind or beside it raises an alert.
        """
        async with self._sync_lock:  # one sync at a time: the loop, the API, a send
            return await self._sync_directory()

    async def _sync_directory(self) -> int:
        claims = await self.peer_heads.marker()  # judged once this sync has succeeded
        entries = await self.hub.log_entries(since=self.state.seq)
        cp_bytes = await self.hub.checkpoint()
        self.hub_reachable = True
        start = self.state.seq
        # Verify on a copy so a bad entry leaves the live directory untouched.
        trial = _copy_state(self.state) if entries else self.state
        try:
            trial.extend(entries)
            checkpoint = Checkpoint.decode(cp_bytes, self.genesis)
            relation = trial.check_checkpoint(checkpoint)
        except (ForkDetected, RollbackDetected) as exc:
            await self.alert("directory-fork", exc.detail, cp_bytes)
            raise
        except ProtocolError as exc:
            await self.alert("directory-invalid", exc.detail, None)
            raise
        if relation is HeadRelation.PEER_AHEAD:
            raise MalformedError("hub checkpoint is ahead of the log it served")
        async with self.sessions.begin() as s:
            for i, data in enumerate(entries, start=start + 1):
                s.add(db.LogRow(seq=i, data=data, head=trial.heads[i]))
            if relation is HeadRelation.SAME:
                await _put_meta(s, "checkpoint_time", str(checkpoint.time))
                await _put_meta(s, "checkpoint", canonical.b64e(cp_bytes))
        self.state = trial
        if relation is HeadRelation.SAME:
            self._checkpoint_time = checkpoint.time
        elif relation is HeadRelation.PEER_BEHIND:
            await self.alert(
                "directory-rollback",
                f"hub checkpoint at {checkpoint.seq} is behind the stored log at {trial.seq}",
                cp_bytes,
            )
        await self.peer_heads.check(self.state, claims)
        return len(entries)

    async def sync_now(self) -> tuple[int, int | None]:
        """Sync the directory, then pull the mailbox: (entries added, items pulled or None
        when the hub refused the pull, e.g. because this node was suspended)."""
        added = await self.sync_directory()
        try:
            pulled: int | None = await self.pull()
        except GlobeError as exc:  # the directory still synced
            log.info("mailbox pull after sync refused: %s", exc.detail)
            pulled = None
        return added, pulled

    def directory_age(self) -> int | None:
        """Seconds since a hub checkpoint last confirmed the stored head (None: never)."""
        if not self._checkpoint_time:
            return None
        return max(0, self.now() - self._checkpoint_time)

    def _check_fresh(self) -> None:
        age = self.directory_age()
        if age is None or age > self.config.directory_max_age:
            shown = "never confirmed" if age is None else f"{age} s old"
            raise DirectoryStale(
                f"the directory head is {shown} (limit {self.config.directory_max_age} s):"
                " the hub must be reachable to confirm it before sending"
            )

    async def alert(self, kind: str, detail: str, evidence: bytes | None) -> None:
        """Record something the operator must see (kept as evidence), once per evidence."""
        async with self.sessions.begin() as s:
            same = (
                db.Alert.evidence == evidence if evidence is not None else db.Alert.detail == detail
            )
            known = (
                await s.execute(select(db.Alert.id).where(db.Alert.kind == kind).where(same))
            ).first()
            if known is not None:
                return  # the same envelope pulled again, the same sync failure again
            s.add(db.Alert(kind=kind, detail=detail, evidence=evidence, time=self.now()))
        log.warning("alert %s: %s", kind, detail)

    def member(self, authority: AuthorityId) -> Member:
        """A member of the verified directory."""
        return self.state.member(authority)

    # -- prekeys ----------------------------------------------------------------------------

    async def ensure_prekeys(self) -> None:
        """Publish a fresh prekey before the current one expires; erase old private halves."""
        async with self._prekey_lock:
            await self._ensure_prekeys()

    async def _ensure_prekeys(self) -> None:
        now = self.now()
        async with self.sessions() as s:
            rows = (await s.execute(select(db.PrekeyRow))).scalars().all()
        current = [r for r in rows if r.not_after - self.config.prekey_rotate_before > now]
        if not current and self._is_member():
            await self._rotate_prekey()
        for r in rows:
            if not r.published and r.private is not None and r.not_after > now:
                await self._publish_prekey(r.key_id, r.signed)
        await self.erase_expired_prekeys()

    async def _publish_prekey(self, key_id: str, signed: bytes) -> None:
        with contextlib.suppress(HubConflict):  # published before; the answer was lost
            await self.hub.put_prekey(signed)
        async with self.sessions.begin() as s:
            await s.execute(
                update(db.PrekeyRow).where(db.PrekeyRow.key_id == key_id).values(published=True)
            )

    def _is_member(self) -> bool:
        m = self.state.members.get(self.me)
        return m is not None and m.status is MemberStatus.ACTIVE

    async def rotate_prekey(self) -> str:
        """Make, store and publish a new signed prekey now; return its key id."""
        async with self._prekey_lock:
            return await self._rotate_prekey()

    async def _rotate_prekey(self) -> str:
        now = self.now()
        private = KemPrivateKey.generate()
        signed = make_prekey(
            genesis=self.genesis,
            authority=self.me,
            identity=self.keys.identity,
            key=private.public_key,
            not_before=now - 60,
            not_after=now + self.config.prekey_lifetime,
        )
        kid = str(private.key_id)
        async with self.sessions.begin() as s:
            s.add(
                db.PrekeyRow(
                    key_id=kid,
                    signed=signed.signed.encode(),
                    private=self.cipher.seal(private.raw, f"prekey:{kid}"),
                    not_before=now - 60,
                    not_after=now + self.config.prekey_lifetime,
                    published=False,
                )
            )
        self._prekeys[private.key_id] = private
        with contextlib.suppress(TransportError):  # published by the sync loop later
            await self._publish_prekey(kid, signed.signed.encode())
        return kid

    async def erase_expired_prekeys(self) -> list[str]:
        """Erase private prekeys past expiry plus the grace period (forward secrecy)."""
        limit = self.now() - self.config.prekey_grace
        async with self.sessions.begin() as s:
            rows = (
                (
                    await s.execute(
                        select(db.PrekeyRow)
                        .where(db.PrekeyRow.private.is_not(None))
                        .where(db.PrekeyRow.not_after < limit)
                    )
                )
                .scalars()
                .all()
            )
            for r in rows:
                r.private = None
                r.erased = self.now()
        for r in rows:
            self._prekeys.pop(KeyId.parse(r.key_id), None)
        return [r.key_id for r in rows]

    def _private_key(self, key_id: KeyId) -> KemPrivateKey | None:
        return self._prekeys.get(key_id)

    async def _recipient_key(self, authority: AuthorityId, now: int) -> KemPublicKey:
        """The recipient's newest valid signed prekey, else its certified KA key (§6.6)."""
        member = self.state.active_member(authority, now)
        cached = self._peer_prekeys.get(authority)
        if (
            cached is not None
            and self._prekey_fetched.get(authority, 0.0) + PREKEY_CACHE > time.monotonic()
            and cached.not_before <= now < cached.not_after - PREKEY_CACHE
        ):
            return cached.key  # verified recently; the hub is asked again after a while
        try:
            containers = await self.hub.get_prekeys(authority)
        except TransportError:
            containers = None
        except GlobeError as exc:
            # The hub may know of a status change this node has not seen; only the
            # verified log decides: sync, then check again.
            log.info("hub refused the prekeys of %s (%s): syncing", authority, exc.detail)
            with contextlib.suppress(TransportError):
                await self.sync_directory()
            member = self.state.active_member(authority, now)
            containers = []
        if containers is None:
            cached = self._peer_prekeys.get(authority)
            if cached is not None and cached.not_before <= now < cached.not_after:
                return cached.key
            log.warning(
                "hub unreachable and no valid prekey of %s cached: sealing to its certified"
                " key-agreement key (no forward secrecy for this message)", authority,
            )  # fmt: skip
            return member.certificate.ka_key()
        best: SignedPrekey | None = None
        for data in containers:
            try:
                pk = SignedPrekey.decode(
                    data, self.genesis, member.certificate.identity_key, authority=authority
                )
                pk.check_valid_at(now)
            except ProtocolError:
                continue
            if best is None or pk.not_after > best.not_after:
                best = pk
        if best is None:
            return member.certificate.ka_key()
        self._peer_prekeys[authority] = best
        self._prekey_fetched[authority] = time.monotonic()
        return best.key

    # -- sending ----------------------------------------------------------------------------

    async def send(
        self,
        recipients: Sequence[AuthorityId],
        content: MessageContent,
        *,
        user: str = "operator",
        uploads: Sequence[str] = (),
    ) -> MessageId:
        """Seal and commit a message to the outbox; delivery follows in the background.

        ``uploads``: ids of ``user``'s staged uploads (:mod:`globe_node.uploads`), which
        become the message's attachments and leave the staging area in the same
        transaction.
        """
        now = self.now()
        self._check_fresh()
        if not recipients:
            raise UsageError("a message needs at least one recipient")
        mine = self.state.members.get(self.me)
        if mine is None or mine.status is not MemberStatus.ACTIVE:
            raise MemberNotActive(
                f"this node ({self.me}) is "
                + (f"{mine.status.value}" if mine else "not admitted")
                + ": the hub and every member would refuse what it sends"
            )
        for r in recipients:
            if r == self.me:
                raise UsageError("a node cannot send to itself")
            self.state.active_member(r, now)
        mid = MessageId.new()
        manifests = await self.staging.manifests(user, uploads)
        if manifests:
            content = _with_attachments(content, manifests)
        data = content.encode()
        keys = {r: await self._recipient_key(r, now) for r in recipients}
        async with self._send_lock, self.audit.lock, self.sessions.begin() as s:
            seqs: dict[AuthorityId, int] = {}
            for r in recipients:
                pair = await s.get(db.Pair, str(r))
                if pair is None:
                    pair = db.Pair(peer=str(r), next_out=1, last_in=0)
                    s.add(pair)
                seqs[r] = pair.next_out
                pair.next_out += 1
            envelope = seal_envelope(
                genesis=self.genesis,
                sender=self.me,
                identity=self.keys.identity,
                recipients=[SealTo(r, seqs[r], keys[r]) for r in recipients],
                content=data,
                created=now,
                expires=now + self.config.message_lifetime,
                dir_seq=self.state.seq,
                dir_head=self.state.head,
                message_id=mid,
                blobs=[m.blob for m in manifests],
            )
            await self.staging.take(s, user, uploads)
            s.add(
                db.OutMessage(
                    message_id=str(mid),
                    envelope=envelope,
                    envelope_hash=envelope_hash(envelope),
                    content=self.cipher.seal(data, f"content:{mid}"),
                    kind=content.kind.value,
                    case=content.case,
                    in_reply_to=str(content.in_reply_to) if content.in_reply_to else None,
                    created=now,
                    expires=now + self.config.message_lifetime,
                    user=user,
                    pending_blobs=" ".join(m.blob for m in manifests),
                    inner_signature=content_signature(
                        self.keys.identity, parse_envelope(envelope).header.raw, data
                    ),
                )
            )
            await s.flush()
            for r in recipients:
                s.add(
                    db.OutRecipient(
                        message_id=str(mid), recipient=str(r), state="queued", attempts=0,
                        next_attempt=0,
                    )
                )  # fmt: skip
            for m in manifests:
                s.add(
                    db.AttachmentRow(
                        sender=str(self.me), blob=m.blob, message_id=str(mid), direction="out",
                        size=m.size, state="pending",
                    )
                )  # fmt: skip
            self._track_outgoing(s, content, mid, recipients, now)
            # The audit row commits with the message, or neither does.
            await self.audit.add(s, now, user, "send", f"{mid} to {','.join(map(str, recipients))}")
        self._wake.set()
        return mid

    def _track_outgoing(
        self,
        s: AsyncSession,
        content: MessageContent,
        mid: MessageId,
        recipients: Sequence[AuthorityId],
        now: int,
    ) -> None:
        if content.kind is Kind.REQUEST:
            deadline = content.deadline or now + self.config.deadlines.for_urgency(content.urgency)
            for r in recipients:
                s.add(
                    db.RequestRow(
                        message_id=str(mid), direction="out", counterpart=str(r),
                        case=content.case, urgency=content.urgency.value, state="sent",
                        created=now, deadline=deadline,
                    )
                )  # fmt: skip

    async def _track_reply(
        self,
        s: AsyncSession,
        content: MessageContent,
        direction: str,
        counterpart: AuthorityId,
        now: int,
    ) -> None:
        """A status update or answer moves the request it replies to."""
        if content.in_reply_to is None or content.kind not in (Kind.STATUS, Kind.ANSWER):
            return
        row = await s.get(db.RequestRow, (str(content.in_reply_to), direction, str(counterpart)))
        if row is None:
            return
        if content.kind is Kind.ANSWER:
            row.state = "answered"
            row.answered = row.answered or now
        elif content.status is not None:
            row.state = content.status.state.value
            if content.status.expected is not None:
                row.expected = content.status.expected
            if content.status.state is StatusState.ANSWERED:
                row.answered = row.answered or now
        row.first_response = row.first_response or now

    # -- delivery ---------------------------------------------------------------------------

    async def _delivery_loop(self) -> None:
        while True:
            try:
                delay = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery pass failed")
                delay = self.config.retry_base
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.05, delay))

    async def deliver_due(self) -> float:
        """Try every due delivery once; return seconds until the next one is due."""
        now = self.now()
        async with self.sessions() as s:
            due = (
                (
                    await s.execute(
                        select(db.OutRecipient.message_id)
                        .where(db.OutRecipient.state == "queued")
                        .where(db.OutRecipient.next_attempt <= now)
                        .distinct()
                        .limit(100)
                    )
                )
                .scalars()
                .all()
            )
            nxt = (
                await s.execute(
                    select(func.min(db.OutRecipient.next_attempt)).where(
                        db.OutRecipient.state == "queued"
                    )
                )
            ).scalar()
        limit = asyncio.Semaphore(DELIVERY_CONCURRENCY)

        async def one(mid: str) -> None:
            async with limit:
                await self._deliver(mid)

        outcomes = await asyncio.gather(*(one(mid) for mid in due), return_exceptions=True)
        for mid, outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("delivery of %s failed: %r", mid, outcome)
        if due:
            return 0.0
        return 30.0 if nxt is None else max(0.05, float(nxt - self.now()))

    async def _deliver(self, mid: str) -> None:
        async with self.sessions() as s:
            msg = await s.get(db.OutMessage, mid)
            targets = (
                (
                    await s.execute(
                        select(db.OutRecipient)
                        .where(db.OutRecipient.message_id == mid)
                        .where(db.OutRecipient.state == "queued")
                    )
                )
                .scalars()
                .all()
            )
        if msg is None or not targets:
            return
        now = self.now()
        if msg.expires <= now:
            await self._set_state(mid, [t.recipient for t in targets], "failed", error="expired")
            return
        relay: list[db.OutRecipient] = []
        # Attachments always go through the hub: it gives a recipient the blob only
        # against an envelope it accepted (§8.4.1).
        has_blobs = bool(parse_envelope(msg.envelope).header.blobs)
        for t in targets:
            endpoint = self._endpoint(t.recipient)
            down = self._peer_down.get(t.recipient, 0.0) > time.monotonic()
            if endpoint is None or has_blobs or down:
                relay.append(t)
                continue
            try:
                receipt = await self._post_direct(endpoint, _aid(t.recipient), msg.envelope)
                await self._record_receipt(receipt, via="direct")
                self._peer_down.pop(t.recipient, None)
            except (TransportError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("direct delivery of %s to %s failed: %s", mid, t.recipient, exc)
                # Do not wait for this peer's timeout once per queued message.
                self._peer_down[t.recipient] = time.monotonic() + PEER_RETRY
                relay.append(t)
            except GlobeError as exc:
                # A peer may refuse for reasons of its own (its directory is behind
                # ours, say): the hub and the recipient's pull path decide instead.
                log.info("peer %s refused %s: %s; relaying", t.recipient, mid, exc.detail)
                relay.append(t)
        if relay:
            await self._relay(msg, relay)

    def _endpoint(self, recipient: str) -> str | None:
        m = self.state.members.get(_aid(recipient))
        return None if m is None else m.certificate.endpoint

    async def _post_direct(self, endpoint: str, peer: AuthorityId, envelope: bytes) -> bytes:
        return await self._post_signed(endpoint, peer, "/v1/inbox", envelope)

    async def _post_signed(self, endpoint: str, peer: AuthorityId, path: str, body: bytes) -> bytes:
        if self._peer_session is None:
            # Peers are reached only at public addresses unless configured (M7).
            resolver = None if self.config.allow_private_endpoints else PublicOnlyResolver()
            self._peer_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver),
                timeout=aiohttp.ClientTimeout(total=self.config.direct_timeout),
            )
        base = endpoint.rstrip("/")
        url = base + path
        if not self.config.allow_private_endpoints:
            check_literal(yarl.URL(url).raw_host or "")
        headers = {
            "Content-Type": "application/octet-stream",
            HEADER: sign_request(
                key=self.keys.transport, network=self.genesis.digest, audience=str(peer),
                method="POST", target=yarl.URL(url).raw_path, body=body, created=self.now(),
            ),
        }  # fmt: skip
        async with self._peer_session.post(
            url, data=request_payload(body), headers=headers, allow_redirects=False
        ) as r:
            data = await r.content.read(64 * 1024)
            if r.status in (200, 201):
                return data
            raise _problem(r.status, data, f"peer {peer}")

    async def _relay(self, msg: db.OutMessage, targets: Sequence[db.OutRecipient]) -> None:
        mid = msg.message_id
        names = [t.recipient for t in targets]
        try:
            if msg.pending_blobs:
                await self._upload_blobs(msg)
            status, evidence = await self.hub.submit_message(msg.envelope)
        except GlobeError as exc:
            if _retryable(exc):
                self.hub_reachable = not isinstance(exc, TransportError)
                await self._backoff(mid, targets, exc.detail)
            else:
                rejected = self._rejected_evidence(exc.evidence, msg)
                await self._set_state(mid, names, "failed", error=exc.detail, evidence=rejected)
            return
        self.hub_reachable = True
        ev = Evidence.decode(evidence, self.genesis)
        if ev.kind is not EvidenceKind.ACCEPTED or ev.envelope_hash != msg.envelope_hash:
            await self._backoff(mid, targets, "the hub's evidence does not name this envelope")
            return
        await self._set_state(mid, names, "sent", via="hub", evidence=evidence)
        log.info("message %s accepted by the hub (%d)", mid, status)

    def _rejected_evidence(self, data: bytes | None, msg: db.OutMessage) -> bytes | None:
        """The hub's signed ``rejected`` evidence for this envelope, if it sent valid evidence."""
        if data is None:
            return None
        try:
            ev = Evidence.decode(data, self.genesis)
        except ProtocolError:
            return None
        ok = ev.kind is EvidenceKind.REJECTED and ev.envelope_hash == msg.envelope_hash
        return data if ok else None

    async def _upload_blobs(self, msg: db.OutMessage) -> None:
        mid = msg.message_id
        blobs = msg.pending_blobs.split()
        sizes = [self.blob_path(self.me, b).stat().st_size for b in blobs]
        total, before = sum(sizes), 0
        for blob, size in zip(blobs, sizes, strict=True):
            path = self.blob_path(self.me, blob)

            def progress(done: int, _total: int, base: int = before) -> None:
                self.uploads[mid] = (base + done, total)

            try:
                await self.hub.put_blob(blob, path, progress=progress)
            except GlobeError as exc:
                if getattr(exc, "slug", "") != "state-conflict":  # already uploaded
                    self.uploads.pop(mid, None)
                    raise
            before += size
            self.uploads[mid] = (before, total)
            async with self.sessions.begin() as s:
                row = await s.get(db.OutMessage, msg.message_id)
                if row is not None:
                    row.pending_blobs = " ".join(b for b in row.pending_blobs.split() if b != blob)
                    msg.pending_blobs = row.pending_blobs
                att = await s.get(db.AttachmentRow, (str(self.me), blob))
                if att is not None:
                    att.state = "uploaded"
        self.uploads.pop(mid, None)

    async def _backoff(self, mid: str, targets: Sequence[db.OutRecipient], error: str) -> None:
        async with self.sessions.begin() as s:
            for t in targets:
                attempts = t.attempts + 1
                delay = min(self.config.retry_max, self.config.retry_base * 2 ** min(attempts, 20))
                jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
                await s.execute(
                    update(db.OutRecipient)
                    .where(db.OutRecipient.message_id == mid)
                    .where(db.OutRecipient.recipient == t.recipient)
                    .where(db.OutRecipient.state == "queued")
                    .values(
                        attempts=attempts,
                        next_attempt=self.now() + int(delay * jitter) + 1,
                        last_error=error,
                    )
                )

    async def _set_state(
        self,
        mid: str,
        recipients: Iterable[str],
        state: str,
        *,
        via: str | None = None,
        error: str | None = None,
        evidence: bytes | None = None,
    ) -> None:
        values: dict[str, object] = {"state": state}
        if via is not None:
            values["via"] = via
        if error is not None:
            values["last_error"] = error
        if evidence is not None:
            values["evidence"] = evidence
        async with self.sessions.begin() as s:
            # One conditional statement: a receipt committed meanwhile (push stream,
            # direct answer) is never overwritten by an older state.
            await s.execute(
                update(db.OutRecipient)
                .where(db.OutRecipient.message_id == mid)
                .where(db.OutRecipient.recipient.in_(list(recipients)))
                .where(db.OutRecipient.state.not_in(("delivered", "read")))
                .values(**values)
            )

    async def retry(self, message_id: str, user: str = "operator") -> int:
        """Queue failed or waiting deliveries of a message again, now."""
        async with self.sessions.begin() as s:
            if await s.get(db.OutMessage, message_id) is None:
                raise NotFound(f"no sent message {message_id}")
            done = await s.execute(
                update(db.OutRecipient)
                .where(db.OutRecipient.message_id == message_id)
                .where(db.OutRecipient.state.in_(("queued", "failed")))
                .values(state="queued", next_attempt=0, last_error=None)
            )
            count = int(getattr(done, "rowcount", 0) or 0)
        await self._audit(user, "retry", message_id)
        self._wake.set()
        return count

    async def _record_receipt(
        self, data: bytes, *, via: str, evidence: bytes | None = None
    ) -> None:
        """A recipient's signed receipt for one of our messages: delivered."""
        receipt = DeliveryReceipt.decode(data, self.state)
        if receipt.sender != self.me:
            raise MalformedError("a receipt for a message this node did not send")
        async with self.sessions.begin() as s:
            msg = await s.get(db.OutMessage, str(receipt.message_id))
            if msg is None or not receipt.matches(receipt.message_id, msg.envelope_hash):
                raise MalformedError("the receipt names no envelope this node sent")
            row = await s.get(db.OutRecipient, (msg.message_id, str(receipt.recipient)))
            if row is None:
                raise MalformedError("the receipt's signer was not a recipient")
            if row.state not in ("delivered", "read"):
                row.state = "delivered"
                row.via = row.via if via == "hub" and row.via else via
                row.receipt = data
                row.delivered = self.now()
                if evidence is not None:
                    row.evidence = evidence

    # -- receiving --------------------------------------------------------------------------

    async def receive(self, data: bytes, *, via: str) -> bytes:
        """Verify, decrypt and store an envelope; return this node's signed receipt.

        An exact replay returns the receipt given before and stores nothing (the
        same bytes were verified when first stored); the same id with other bytes
        is verified, kept as conflict evidence and refused.  Attachments are
        fetched and checked before anything is stored, outside the store lock.
        """
        env = parse_envelope(data)
        h = env.header
        now = self.now()
        seen = await self._seen(env)
        if seen is not None and seen[0] == env.hash:
            return seen[1]
        opened = open_envelope(
            env, directory=self.state, me=self.me, private_key=self._private_key, now=now
        )
        if seen is not None:
            await self._conflict(env, now)
        content = MessageContent.decode(opened.content)
        if sorted(a.blob for a in content.attachments) != sorted(h.blobs):
            raise MalformedError("the attachments do not match the header's blob list")
        if content.forwarded is not None:  # originator control on every hop (§8.5)
            verify_forward(content, forwarder=h.sender, recipient=self.me, directory=self.state)
        for att in content.attachments:
            await self._fetch_attachment(att, h.sender)
        if opened.head_relation is HeadRelation.PEER_AHEAD:
            self._sync_soon.set()  # the sender has seen log entries we have not
        receipt = make_receipt(
            genesis=self.genesis, identity=self.keys.identity, message_id=h.message_id,
            envelope_hash=env.hash, sender=h.sender, recipient=self.me, time=now,
        ).encode()  # fmt: skip
        async with self._receive_lock:
            seen = await self._seen(env)  # a concurrent delivery of the same envelope
            if seen is not None:
                if seen[0] == env.hash:
                    return seen[1]
                await self._conflict(env, now)
            async with self.sessions.begin() as s:
                verdict = await self._store(s, env, content, opened, receipt, via=via, now=now)
        if opened.head_relation is HeadRelation.FORK:
            await self.alert(
                "directory-fork",
                f"{h.sender} signed directory head {h.dir_seq} that differs from this node's",
                data,
            )
        if verdict.missing:
            log.info(
                "gap from %s: %d-%d missing", h.sender, verdict.missing.start,
                verdict.missing.stop - 1,
            )  # fmt: skip
        return receipt

    async def _store(
        self,
        s: AsyncSession,
        env: Envelope,
        content: MessageContent,
        opened: OpenedEnvelope,
        receipt: bytes,
        *,
        via: str,
        now: int,
    ) -> SeqVerdict:
        """Insert a verified message, its seen-set row, sequence and workflow state."""
        h = env.header
        mid = str(h.message_id)
        _, mine = h.recipient(self.me)
        pair = await s.get(db.Pair, str(h.sender))
        if pair is None:
            pair = db.Pair(peer=str(h.sender), next_out=1, last_in=0)
            s.add(pair)
        verdict = classify_seq(pair.last_in, mine.seq)
        order = "old" if verdict.old else "in-order" if verdict.in_order else "gap"
        pair.last_in = max(pair.last_in, mine.seq)
        s.add(
            db.InMessage(
                sender=str(h.sender), message_id=mid, envelope_hash=env.hash,
                envelope=env.raw, content=self.cipher.seal(opened.content, f"content:{mid}"),
                kind=content.kind.value, case=content.case,
                in_reply_to=str(content.in_reply_to) if content.in_reply_to else None,
                created=h.created, received=now, via=via, seq=mine.seq, order=order,
                head_relation=opened.head_relation.value, receipt=receipt,
                receipt_acked=via == "direct", inner_signature=opened.inner_signature,
                suspect=self.peer_heads.suspect(self.state.seq),
            )
        )  # fmt: skip
        for att in content.attachments:
            if await s.get(db.AttachmentRow, (str(h.sender), att.blob)) is None:
                s.add(
                    db.AttachmentRow(
                        sender=str(h.sender), blob=att.blob, message_id=mid,
                        direction="in", size=att.size, state="fetched",
                    )
                )  # fmt: skip
        if content.kind is Kind.REQUEST:
            deadline = content.deadline or now + self.config.deadlines.for_urgency(content.urgency)
            s.add(
                db.RequestRow(
                    message_id=mid, direction="in", counterpart=str(h.sender),
                    case=content.case, urgency=content.urgency.value, state="received",
                    created=h.created, deadline=deadline,
                )
            )  # fmt: skip
        await self._track_reply(s, content, "out", h.sender, now)
        if opened.head_relation is HeadRelation.PEER_AHEAD:
            await self.peer_heads.note(
                s, peer=h.sender, seq=h.dir_seq, head=h.dir_head, envelope=env.raw, now=now
            )
        return verdict

    async def _seen(self, env: Envelope) -> tuple[bytes, bytes] | None:
        """The stored (envelope hash, receipt) for the envelope's (sender, id), if any."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(db.InMessage.envelope_hash, db.InMessage.receipt)
                    .where(db.InMessage.sender == str(env.header.sender))
                    .where(db.InMessage.message_id == str(env.header.message_id))
                )
            ).first()
        return None if row is None else (bytes(row.envelope_hash), bytes(row.receipt))

    async def _conflict(self, env: Envelope, now: int) -> NoReturn:
        """Keep a verified envelope that reuses a stored (sender, id) as evidence; refuse it."""
        h = env.header
        async with self.sessions.begin() as s:
            known = (
                await s.execute(
                    select(db.Conflict.id)
                    .where(db.Conflict.sender == str(h.sender))
                    .where(db.Conflict.envelope_hash == env.hash)
                )
            ).first()
            if known is None:
                s.add(
                    db.Conflict(
                        sender=str(h.sender), message_id=str(h.message_id),
                        envelope_hash=env.hash, envelope=env.raw, time=now,
                    )
                )  # fmt: skip
        if known is None:
            await self.alert(
                "conflict",
                f"{h.sender} sent message {h.message_id} twice with different bytes",
                env.raw,
            )
        raise ConflictError(f"message {h.message_id} was received with other bytes")

    async def _fetch_attachment(self, att: Attachment, sender: AuthorityId) -> None:
        """Fetch a blob from the hub and check it decrypts to the manifest's digest."""
        path = self.blob_path(sender, att.blob)
        self.config.blob_dir.mkdir(mode=0o700, exist_ok=True)
        if not path.exists():
            from protocol.attachments import encrypted_size  # noqa: PLC0415

            await self.hub.get_blob(att.blob, path, max_size=encrypted_size(att.size))
        dec = AttachmentDecryptor(att.key, att.blob)

        def check() -> None:  # off the event loop: a blob may be gigabytes
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    dec.update(chunk)
            dec.finalize()

        try:
            await asyncio.to_thread(check)
            intact = dec.sha256 == att.sha256 and dec.size == att.size
        except ProtocolError:
            intact = False
        if not intact:
            async with self.sessions() as s:
                kept = await s.get(db.AttachmentRow, (str(sender), att.blob))
            if kept is None:  # not the file of an earlier message: a bad download
                path.unlink(missing_ok=True)
            raise MalformedError(f"attachment {att.name!r} does not match its manifest")

    def blob_path(self, sender: AuthorityId | str, blob: str) -> Path:
        """Where the (still blob-encrypted) file of ``sender``'s blob is kept.

        Blob ids are chosen by senders, so the sender is part of the name: an
        envelope naming another sender's blob id can never reach that file.
        """
        return self.config.blob_dir / f"{sender}.{blob}"

    # -- hub mailbox ------------------------------------------------------------------------

    async def pull(self) -> int:
        """Fetch everything waiting at the hub, process it and acknowledge; return the count."""
        total = 0
        after = 0
        while True:
            items, cursor = await self.hub.mailbox(after=after)
            if not items:
                break
            await self.process_items(items)
            total += len(items)
            after = cursor
        return total

    async def process_items(self, items: Sequence[MailboxItem]) -> None:
        """Process mailbox items (pulled or pushed) and acknowledge them at the hub."""
        receipts: list[bytes] = []
        notices: list[int] = []
        for item in items:
            try:
                if item.kind == "envelope":
                    receipts.append(await self.receive(item.data, via="hub"))
                elif item.kind == "receipt":
                    notice = orjson.loads(item.data)
                    receipt = canonical.b64d(str(notice["receipt"]), what="receipt")
                    evidence = canonical.b64d(str(notice["evidence"]), what="evidence")
                    Evidence.decode(evidence, self.genesis)
                    await self._record_receipt(receipt, via="hub", evidence=evidence)
                    notices.append(item.cursor)
                elif item.kind == "non-delivery":
                    await self._record_non_delivery(item.data)
                    notices.append(item.cursor)
                else:
                    notices.append(item.cursor)
            except ConflictError:
                continue  # kept as evidence; the hub keeps its copy until expiry
            except (ProtocolError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
                detail = exc.detail if isinstance(exc, GlobeError) else type(exc).__name__
                log.warning("mailbox item %d refused: %s", item.cursor, detail)
                if item.kind != "envelope":
                    notices.append(item.cursor)
                else:
                    await self.alert(
                        "refused", f"envelope at hub cursor {item.cursor}: {detail}", item.data
                    )
        if receipts or notices:
            await self.hub.ack(receipts, notices)
            async with self.sessions.begin() as s:
                await s.execute(
                    update(db.InMessage)
                    .where(db.InMessage.receipt.in_(receipts))
                    .values(receipt_acked=True)
                )

    async def _record_non_delivery(self, data: bytes) -> None:
        ev = Evidence.decode(data, self.genesis)
        if ev.kind is not EvidenceKind.NON_DELIVERY:
            raise MalformedError("a non-delivery notice carries non-delivery evidence")
        names = [str(r) for r in ev.recipients]
        await self._set_state(str(ev.message_id), names, "failed", error="expired undelivered",
                              evidence=data)  # fmt: skip

    async def _push_loop(self) -> None:
        """Hold the hub's WebSocket open; reconnect with backoff; pull covers the gaps."""
        attempt = 0
        while True:
            try:
                await self._push_session()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect whatever happened
                log.info("push stream closed: %s", exc)
            self.push_connected = False
            attempt += 1
            await asyncio.sleep(
                min(self.config.retry_max, 0.5 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1)  # noqa: S311 - jitter
            )

    async def _push_session(self) -> None:
        url = self.config.hub_url.rstrip("/") + "/v1/stream"
        path = yarl.URL(url).raw_path
        async with aiohttp.ClientSession() as session, session.ws_connect(url, heartbeat=30) as ws:
            hello = await ws.receive_json(timeout=30)
            if hello.get("type") != "challenge":
                raise MalformedError("push stream: expected a challenge")
            nonce = canonical.b64d(str(hello["nonce"]), what="challenge")
            auth = sign_request(
                key=self.keys.transport, network=self.genesis.digest, audience="hub",
                method="GET", target=path, body=nonce, created=self.now(),
            )  # fmt: skip
            await ws.send_json({"type": "auth", "auth": auth, "after": 0})
            self.push_connected = True
            await self.pull()  # anything that arrived while disconnected
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                obj = orjson.loads(msg.data)
                if obj.get("type") == "item":
                    item = MailboxItem(
                        int(obj["cursor"]), str(obj["kind"]),
                        canonical.b64d(str(obj["data"]), what="item"),
                    )  # fmt: skip
                    await self.process_items([item])
                elif obj.get("type") == "error":
                    raise TransportError(str(obj.get("problem", {}).get("detail", "refused")))

    async def ping(self, peer: AuthorityId) -> dict[str, Any]:
        """Connectivity test: a signed ping to the peer's endpoint, and the hub's health."""
        self.state.member(peer)
        out: dict[str, Any] = {"authority": str(peer)}
        endpoint = self._endpoint(str(peer))
        if endpoint is None:
            out["direct"] = {"ok": False, "ms": None, "error": "the peer publishes no endpoint"}
        else:
            started = time.perf_counter()
            try:
                await self._post_signed(endpoint, peer, "/v1/ping", b"")
                ms = round((time.perf_counter() - started) * 1000, 1)
                out["direct"] = {"ok": True, "ms": ms, "error": None}
            except (GlobeError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                detail = exc.detail if isinstance(exc, GlobeError) else type(exc).__name__
                out["direct"] = {"ok": False, "ms": None, "error": detail}
        started = time.perf_counter()
        try:
            await self.hub.healthz()
            out["hub"] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
        except GlobeError:
            out["hub"] = {"ok": False, "ms": None}
        return out

    # -- reading ----------------------------------------------------------------------------

    async def content_of(self, message_id: str) -> tuple[str, MessageContent, dict[str, Any]]:
        """A stored message (received or sent): direction, content and its metadata."""
        async with self.sessions() as s:
            row = (
                (await s.execute(select(db.InMessage).where(db.InMessage.message_id == message_id)))
                .scalars()
                .first()
            )
            if row is not None:
                content = MessageContent.decode(
                    self.cipher.open(row.content, f"content:{message_id}")
                )
                return "in", content, {
                    "sender": row.sender, "received": row.received, "via": row.via,
                    "order": row.order, "seq": row.seq, "read_at": row.read_at,
                    "head_relation": row.head_relation, "suspect": row.suspect,
                }  # fmt: skip
            out = await s.get(db.OutMessage, message_id)
            if out is None:
                raise NotFound(f"no message {message_id}")
            recips = (
                (
                    await s.execute(
                        select(db.OutRecipient).where(db.OutRecipient.message_id == message_id)
                    )
                )
                .scalars()
                .all()
            )
            content = MessageContent.decode(self.cipher.open(out.content, f"content:{message_id}"))
            return "out", content, {
                "sender": str(self.me), "created": out.created,
                "recipients": {r.recipient: _recipient_state(r) for r in recips},
            }  # fmt: skip

    async def mark_read(self, message_id: str, user: str) -> None:
        """Record that ``user`` opened a received message."""
        async with self.audit.lock, self.sessions.begin() as s:
            await s.execute(
                update(db.InMessage)
                .where(db.InMessage.message_id == message_id)
                .where(db.InMessage.read_at.is_(None))
                .values(read_at=self.now(), read_by=user)
            )
            await self.audit.add(s, self.now(), user, "read", message_id)

    def transport_owner(self, key_id: KeyId) -> AuthorityId | None:
        """The member whose certified transport key has this id (any status)."""
        if self._transport_index[0] != self.state.seq:
            index = {m.certificate.transport_key.key_id: a for a, m in self.state.members.items()}
            self._transport_index = (self.state.seq, index)
        return self._transport_index[1].get(key_id)

    async def attachment_chunks(self, message_id: str, index: int) -> AsyncIterator[bytes]:
        """Decrypted, authenticated pieces of an attachment, in order; raises at the end
        if the file was truncated or does not match its digest."""
        _, content, meta = await self.content_of(message_id)
        if not 0 <= index < len(content.attachments):
            raise NotFound(f"message {message_id} has no attachment {index + 1}")
        att = content.attachments[index]
        dec = AttachmentDecryptor(att.key, att.blob)
        with self.blob_path(str(meta["sender"]), att.blob).open("rb") as f:
            while chunk := f.read(1 << 20):
                if plain := dec.update(chunk):
                    yield plain
        if last := dec.finalize():
            yield last
        if dec.sha256 != att.sha256:
            raise DecryptionFailed(f"attachment {att.name!r} does not match its digest")

    # -- replies, status, forwarding, consent ------------------------------------------------

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
        direction, original, meta = await self.content_of(message_id)
        if direction != "in":
            raise UsageError("reply to a received message")
        sender = _aid(str(meta["sender"]))
        content = MessageContent(
            kind=kind,
            subject=subject or _re(original.subject),
            body=body,
            language=original.language,
            urgency=original.urgency,
            handling=original.handling,
            case=original.case,
            in_reply_to=MessageId.parse(message_id),
            status=status,
            consent=consent,
        )
        mid = await self.send([sender], content, user=user, uploads=uploads)
        if original.kind is Kind.REQUEST:
            async with self.sessions.begin() as s:
                await self._track_reply(s, content, "in", sender, self.now())
        return mid

    async def proof_of_origin(
        self, message_id: str
    ) -> tuple[SignedContent, Sequence[SignedContent]]:
        """What proves where a held message came from (§8.5): for a forward, the origin it
        carries and its consents; else the message itself (received or sent here)."""
        async with self.sessions() as s:
            row = (
                (await s.execute(select(db.InMessage).where(db.InMessage.message_id == message_id)))
                .scalars()
                .first()
            )
            out = None if row is not None else await s.get(db.OutMessage, message_id)
        if row is not None:
            content = self.cipher.open(row.content, f"content:{message_id}")
            envelope, signature = row.envelope, row.inner_signature
        elif out is not None:
            content = self.cipher.open(out.content, f"content:{message_id}")
            envelope, signature = out.envelope, out.inner_signature
        else:
            raise NotFound(f"no message {message_id}")
        decoded = MessageContent.decode(content)
        if decoded.forwarded is not None:
            return decoded.forwarded.origin, decoded.forwarded.consents
        if signature is None:
            raise Conflict(
                f"message {message_id} was stored before this node kept signatures: its origin"
                " cannot be proven to others, so it cannot be forwarded"
            )
        return signed_content(parse_envelope(envelope).header.raw, content, signature), ()

    async def forward(
        self, message_id: str, to: Sequence[AuthorityId], *, user: str = "operator", note: str = ""
    ) -> MessageId:
        """Forward a held message with its proof of origin and its attachments (§8.5).

        Restricted material (§8.3) needs the *originator's* consent for every new
        recipient, on every hop: the consent decisions this node holds (received from
        the originator, or carried by the forward it holds) go with the forward, and
        without one the forward is refused before anything is sent.  Attachments are
        re-encrypted for the new recipients; one that is no longer on this node
        refuses the forward rather than sending it partial.
        """
        _, held, meta = await self.content_of(message_id)
        proof, carried = await self.proof_of_origin(message_id)
        origin = verify_signed_content(proof, self.state)
        consents = _unique([*carried, *await self._grants(origin)])
        if origin.sender != self.me and forward_requires_consent(origin.content.handling):
            allowed = set(origin.recipients) | {origin.sender} | _granted_to(consents)
            missing = [str(t) for t in to if t not in allowed]
            if missing:
                await self._audit(user, "forward-refused", f"{message_id} to {','.join(missing)}")
                h = origin.content.handling
                raise ConsentRequired(
                    f"message {message_id} is TLP:{h.tlp.value}"
                    + (" with no onward dissemination" if Restriction.NO_ONWARD in h.restrictions
                       else "")
                    + f"; {origin.sender} (its originator) has not consented to forwarding to"
                    f" {', '.join(missing)}: use request-consent"
                )  # fmt: skip
        holder = str(meta["sender"])
        copies: list[str] = []
        try:
            for att in held.attachments:
                info = await self.staging.copy(self.blob_path(holder, att.blob), att, user=user)
                copies.append(info.id)
            content = MessageContent(
                kind=Kind.INFORMATION,
                subject=_fwd(origin.content.subject),
                body=note,
                language=origin.content.language,
                urgency=held.urgency,
                handling=held.handling,  # the holder's, never below the originator's
                case=held.case,
                forwarded=Forwarded(proof, tuple(consents[:MAX_CONSENTS])),
            )
            mid = await self.send(to, content, user=user, uploads=copies)
        except BaseException:
            for upload_id in copies:
                with contextlib.suppress(GlobeError):
                    await self.staging.discard(user, upload_id)
            raise
        await self._audit(user, "forward", f"{message_id} as {mid}")
        return mid

    async def _grants(self, origin: Origin) -> list[SignedContent]:
        """The originator's granted consent decisions about ``origin`` that reached this node."""
        async with self.sessions() as s:
            rows = (
                (
                    await s.execute(
                        select(db.InMessage)
                        .where(db.InMessage.sender == str(origin.sender))
                        .where(db.InMessage.kind == Kind.CONSENT_DECISION.value)
                        .where(db.InMessage.inner_signature.is_not(None))
                    )
                )
                .scalars()
                .all()
            )
        out = []
        for row in rows:
            data = self.cipher.open(row.content, f"content:{row.message_id}")
            c = MessageContent.decode(data).consent
            if (
                c is not None
                and c.message == origin.message_id
                and c.decision is ConsentDecision.GRANTED
                and row.inner_signature is not None
            ):
                header = parse_envelope(row.envelope).header.raw
                out.append(signed_content(header, data, row.inner_signature))
        return out

    async def request_consent(
        self, message_id: str, to: Sequence[AuthorityId], purpose: str, *, user: str = "operator"
    ) -> MessageId:
        """Ask the *originator* of a held message (not whoever forwarded it here) to consent
        to passing it to ``to`` (§8.5)."""
        proof, _ = await self.proof_of_origin(message_id)
        origin = verify_signed_content(proof, self.state)
        if origin.sender == self.me:
            raise UsageError(f"this node originated message {message_id}: no consent is needed")
        consent = Consent(origin.message_id, tuple(sorted(to, key=str)), purpose)
        content = MessageContent(
            kind=Kind.CONSENT_REQUEST, subject=_re(origin.content.subject),
            body=f"Consent requested to pass message {origin.message_id} to "
            f"{', '.join(map(str, to))}: {purpose}",
            language=origin.content.language, urgency=origin.content.urgency,
            handling=Handling(Tlp.AMBER), case=origin.content.case, consent=consent,
        )  # fmt: skip
        return await self.send([origin.sender], content, user=user)

    # -- cases and status -------------------------------------------------------------------

    async def requests(self, *, case: str | None = None) -> list[dict[str, Any]]:
        """Request workflow rows, with an ``overdue`` flag."""
        now = self.now()
        async with self.sessions() as s:
            q = select(db.RequestRow).order_by(db.RequestRow.deadline)
            if case is not None:
                q = q.where(db.RequestRow.case == case)
            rows = (await s.execute(q)).scalars().all()
        return [
            {
                "message": r.message_id, "direction": r.direction, "counterpart": r.counterpart,
                "case": r.case, "urgency": r.urgency, "state": r.state, "created": r.created,
                "deadline": r.deadline, "expected": r.expected, "answered": r.answered,
                "overdue": r.state in OPEN_STATES and r.deadline < now,
            }
            for r in rows
        ]  # fmt: skip

    async def response_stats(self) -> dict[str, dict[str, float | int | None]]:
        """Per counterpart: requests sent, answered, mean seconds to first response and answer."""
        out: dict[str, dict[str, float | int | None]] = {}
        for r in await self.requests():
            if r["direction"] != "out":
                continue
            st = out.setdefault(r["counterpart"], {"requests": 0, "answered": 0, "_first": 0,
                                                   "_fn": 0, "_ans": 0})  # fmt: skip
            st["requests"] = int(st["requests"] or 0) + 1
            if r["answered"]:
                st["answered"] = int(st["answered"] or 0) + 1
                st["_ans"] = int(st["_ans"] or 0) + r["answered"] - r["created"]
        async with self.sessions() as s:
            rows = (
                (
                    await s.execute(
                        select(db.RequestRow)
                        .where(db.RequestRow.direction == "out")
                        .where(db.RequestRow.first_response.is_not(None))
                    )
                )
                .scalars()
                .all()
            )
        for row in rows:
            st = out[row.counterpart]
            st["_first"] = int(st["_first"] or 0) + int(row.first_response or 0) - row.created
            st["_fn"] = int(st["_fn"] or 0) + 1
        for st in out.values():
            fn, answered = int(st.pop("_fn") or 0), int(st["answered"] or 0)
            first, ans = int(st.pop("_first") or 0), int(st.pop("_ans") or 0)
            st["mean_first_response_s"] = first / fn if fn else None
            st["mean_answer_s"] = ans / answered if answered else None
        return out

    async def cases(self) -> list[dict[str, Any]]:
        """Every case id with its counterparts, message count and open/overdue requests."""
        cases: dict[str, dict[str, Any]] = {}
        async with self.sessions() as s:
            for sender, case, received in (
                await s.execute(
                    select(db.InMessage.sender, db.InMessage.case, db.InMessage.received).where(
                        db.InMessage.case.is_not(None)
                    )
                )
            ).all():
                c = cases.setdefault(str(case), {"case": case, "counterparts": set(),
                                                 "messages": 0, "last": 0})  # fmt: skip
                c["counterparts"].add(sender)
                c["messages"] += 1
                c["last"] = max(c["last"], received)
            outs = (
                await s.execute(
                    select(db.OutMessage.case, db.OutMessage.created, db.OutRecipient.recipient)
                    .join(db.OutRecipient, db.OutRecipient.message_id == db.OutMessage.message_id)
                    .where(db.OutMessage.case.is_not(None))
                )
            ).all()
            seen_out: set[tuple[str | None, int]] = set()
            for case, created, recipient in outs:
                c = cases.setdefault(str(case), {"case": case, "counterparts": set(),
                                                 "messages": 0, "last": 0})  # fmt: skip
                c["counterparts"].add(recipient)
                if (case, created) not in seen_out:
                    c["messages"] += 1
                    seen_out.add((case, created))
                c["last"] = max(c["last"], created)
        reqs = await self.requests()
        for c in cases.values():
            mine = [r for r in reqs if r["case"] == c["case"]]
            c["counterparts"] = sorted(c["counterparts"])
            c["open"] = sum(1 for r in mine if r["state"] in OPEN_STATES)
            c["overdue"] = sum(1 for r in mine if r["overdue"])
        return sorted(cases.values(), key=lambda c: -int(c["last"]))

    async def case_thread(self, case: str) -> dict[str, Any]:
        """A case: its requests and every message in it, in thread order."""
        reqs = await self.requests(case=case)
        async with self.sessions() as s:
            ins = (
                await s.execute(
                    select(db.InMessage.message_id, db.InMessage.sender, db.InMessage.kind,
                           db.InMessage.received, db.InMessage.in_reply_to)
                    .where(db.InMessage.case == case)
                )
            ).all()  # fmt: skip
            outs = (
                await s.execute(
                    select(db.OutMessage.message_id, db.OutMessage.kind, db.OutMessage.created,
                           db.OutMessage.in_reply_to)
                    .where(db.OutMessage.case == case)
                )
            ).all()  # fmt: skip
        if not ins and not outs:
            raise NotFound(f"no case {case}")
        messages = [
            {"id": m, "direction": "in", "from": s_, "kind": k, "time": t, "in_reply_to": r}
            for m, s_, k, t, r in ins
        ] + [
            {"id": m, "direction": "out", "from": str(self.me), "kind": k, "time": t,
             "in_reply_to": r}
            for m, k, t, r in outs
        ]  # fmt: skip
        # Time has whole seconds: within one second, what opens a thread comes first.
        messages.sort(key=lambda m: (m["time"], m["in_reply_to"] is not None, m["id"]))
        return {"case": case, "requests": reqs, "messages": messages}

    async def inbox(self, *, limit: int = 50, unread: bool = False) -> list[dict[str, Any]]:
        """Received messages, newest first, with subject (decrypted here)."""
        async with self.sessions() as s:
            q = select(db.InMessage).order_by(db.InMessage.received.desc(), db.InMessage.id.desc())
            if unread:
                q = q.where(db.InMessage.read_at.is_(None))
            rows = (await s.execute(q.limit(limit))).scalars().all()
        out = []
        for r in rows:
            c = MessageContent.decode(self.cipher.open(r.content, f"content:{r.message_id}"))
            out.append({
                "id": r.message_id, "from": r.sender, "kind": r.kind, "subject": c.subject,
                "urgency": c.urgency.value, "tlp": c.handling.tlp.value, "case": r.case,
                "received": r.received, "via": r.via, "read": r.read_at is not None,
                "order": r.order, "attachments": len(c.attachments), "suspect": r.suspect,
            })  # fmt: skip
        return out

    async def delivery(self, message_id: str) -> dict[str, Any]:
        """One sent message's delivery state per recipient, and its upload progress."""
        async with self.sessions() as s:
            msg = await s.get(db.OutMessage, message_id)
            if msg is None:
                raise NotFound(f"no sent message {message_id}")
            rows = (
                (
                    await s.execute(
                        select(db.OutRecipient).where(db.OutRecipient.message_id == message_id)
                    )
                )
                .scalars()
                .all()
            )
        upload = self.uploads.get(message_id)
        return {
            "id": message_id,
            "recipients": {r.recipient: _recipient_state(r) for r in rows},
            "upload": None if upload is None else {"done": upload[0], "total": upload[1]},
            "pending_blobs": len(msg.pending_blobs.split()),
        }

    async def outbox(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Sent messages, newest first, with per-recipient delivery state."""
        async with self.sessions() as s:
            msgs = (
                (
                    await s.execute(
                        select(db.OutMessage).order_by(db.OutMessage.created.desc()).limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            ids = [m.message_id for m in msgs]
            recips = (
                (
                    await s.execute(
                        select(db.OutRecipient).where(db.OutRecipient.message_id.in_(ids))
                    )
                )
                .scalars()
                .all()
            )
        by: dict[str, dict[str, Any]] = {}
        for r in recips:
            by.setdefault(r.message_id, {})[r.recipient] = _recipient_state(r)
        return [
            {"id": m.message_id, "kind": m.kind, "case": m.case, "created": m.created,
             "recipients": by.get(m.message_id, {})}
            for m in msgs
        ]  # fmt: skip

    async def status(self) -> dict[str, Any]:
        """Membership, directory head and age, hub reachability, queue depths, overdue cases."""
        me = self.state.members.get(self.me)
        async with self.sessions() as s:
            queued = (
                await s.execute(
                    select(db.OutRecipient.state, func.count()).group_by(db.OutRecipient.state)
                )
            ).all()
            unread = (
                await s.execute(
                    select(func.count())
                    .select_from(db.InMessage)
                    .where(db.InMessage.read_at.is_(None))
                )
            ).scalar_one()
            alerts = (await s.execute(select(func.count()).select_from(db.Alert))).scalar_one()
        reqs = await self.requests()
        return {
            "authority": str(self.me),
            "membership": me.status.value if me else "not admitted",
            "directory": {"seq": self.state.seq, "head": canonical.b64e(self.state.head),
                          "age_s": self.directory_age(), "max_age_s": self.config.directory_max_age,
                          "members": len(self.state.members),
                          "behind_peer": (self.peer_heads.behind.to_json()
                                          if self.peer_heads.behind else None)},
            "hub": {"url": self.config.hub_url, "reachable": self.hub_reachable,
                    "push_connected": self.push_connected},
            "outbox": {str(state): int(n) for state, n in queued},
            "inbox_unread": unread,
            "requests_open": sum(1 for r in reqs if r["state"] in OPEN_STATES),
            "requests_overdue": sum(1 for r in reqs if r["overdue"]),
            "alerts": alerts,
        }  # fmt: skip

    async def alerts(self) -> list[dict[str, Any]]:
        """Recorded alerts, newest first."""
        async with self.sessions() as s:
            rows = (await s.execute(select(db.Alert).order_by(db.Alert.id.desc()))).scalars().all()
        return [{"id": a.id, "kind": a.kind, "detail": a.detail, "time": a.time} for a in rows]


# -- helpers --------------------------------------------------------------------------------


def _copy_state(state: DirectoryState) -> DirectoryState:
    """A copy of the directory that :meth:`DirectoryState.extend` may change freely."""
    import copy  # noqa: PLC0415

    return copy.deepcopy(state)


async def _put_meta(s: AsyncSession, key: str, value: str) -> None:
    row = await s.get(db.Meta, key)
    if row is None:
        s.add(db.Meta(key=key, value=value))
    else:
        row.value = value


def _recipient_state(r: db.OutRecipient) -> dict[str, Any]:
    return {"state": r.state, "via": r.via, "attempts": r.attempts, "error": r.last_error,
            "delivered": r.delivered}  # fmt: skip


def _with_attachments(content: MessageContent, manifests: list[Attachment]) -> MessageContent:
    return dataclasses.replace(content, attachments=tuple(manifests))


def _granted_to(consents: Sequence[SignedContent]) -> set[AuthorityId]:
    """Everyone named in these (already verified) consent decisions."""
    out: set[AuthorityId] = set()
    for proof in consents:
        consent = MessageContent.decode(proof.content).consent
        if consent is not None:
            out.update(consent.to)
    return out


def _unique(proofs: Sequence[SignedContent]) -> list[SignedContent]:
    """Proofs without repeats, in a stable order (by their header bytes)."""
    return sorted({(p.header, p.content): p for p in proofs}.values(), key=lambda p: p.header)


def _re(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"[:300]


def _fwd(subject: str) -> str:
    return f"Fwd: {subject}"[:300]


def _retryable(exc: GlobeError) -> bool:
    """Worth retrying: transport trouble, rate limits, a full mailbox or disk, a hub 5xx."""
    return (
        isinstance(exc, TransportError) or exc.status in (408, 429, 503, 507) or exc.status >= 500
    )


def _problem(status: int, body: bytes, who: str) -> GlobeError:
    from globe_io.hubclient import error_for_problem  # noqa: PLC0415

    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        problem = None
    if isinstance(problem, dict):
        return error_for_problem(status, problem)
    return TransportError(f"{who} answered HTTP {status}")


class _atomic_file:  # noqa: N801 - used as a context manager like open()
    """Write to ``path.part``, fsync and rename on success; remove the part on failure."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self._f: Any = None

    def __enter__(self) -> Any:
        fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._f = os.fdopen(fd, "wb")
        return self._f

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        f = self._f
        if exc_type is None:
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(self.part, self.path)
        else:
            f.close()
            self.part.unlink(missing_ok=True)

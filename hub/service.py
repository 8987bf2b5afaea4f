"""The hub's membership and directory service, independent of HTTP (BRIEF R1-R4).

The hub stores and sequences; it never decides membership.  Applications
are checked (proof of possession of every key, reserved and duplicate keys:
:mod:`hub.applications`), admins' signatures on membership actions are
collected until the genesis quorum verifies, and only then is the action
appended to the hash-chained log (:mod:`hub.actions`).  The hub keeps a
verified :class:`~protocol.directory.DirectoryState` in memory, rebuilt from
its own log at start-up with the same code nodes use: a log edited behind the
hub's back stops it from starting.

Every query answers with a typed result of :mod:`globe_io.hubapi`; only the
HTTP handlers turn them into JSON.  One unit of work per transaction; library
errors are translated into the project's hierarchy at this boundary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from globe_io.errors import Conflict
from globe_io.hubapi import (
    AuditRecord,
    AuditRecords,
    LogPage,
    MemberSummary,
    Prekeys,
    PrekeyStored,
    SearchResults,
)
from hub import db
from hub.actions import MembershipActions
from hub.applications import Applications
from hub.keyupdates import KeyUpdates
from hub.profiles import Profiles
from protocol import crypto
from protocol.directory import DirectoryState, Member
from protocol.dirsearch import Query
from protocol.dirsearch import search as search_directory
from protocol.errors import (
    GlobeError,
    MalformedError,
    ReplayError,
    StorageError,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId
from protocol.keys import SigningKey, VerifyKey
from protocol.membership import make_checkpoint
from protocol.prekeys import SignedPrekey
from protocol.profile import ProfileEntry
from protocol.replay import NonceWindow

__all__ = ["MAX_PREKEYS", "Clock", "HubService", "Principal", "member_summary"]

log = logging.getLogger("globe.hub")

Clock = Callable[[], float]

#: Prekeys a member may have published and unexpired at once.
MAX_PREKEYS: Final = 16


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made an authenticated request."""

    key_id: KeyId
    admin: str | None = None  # admin display name, for admin keys
    authority: AuthorityId | None = None  # for member transport keys

    def __str__(self) -> str:
        return self.admin or str(self.authority) or str(self.key_id)


def _json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class HubService:
    """The directory, its log and checkpoints, prekeys and the audit trail.

    ``applications`` (:class:`~hub.applications.Applications`), ``key_updates``
    (:class:`~hub.keyupdates.KeyUpdates`) and ``actions``
    (:class:`~hub.actions.MembershipActions`) run the admission and key-update workflows
    and the quorum-signed appends over this service's storage and directory; ``profiles``
    (:class:`~hub.profiles.Profiles`) appends the profiles members sign themselves.
    """

    def __init__(
        self,
        *,
        genesis: Genesis,
        hub_key: SigningKey,
        engine: AsyncEngine,
        clock: Clock,
        certificate_days: int = 730,
        clock_skew: int = 60,
        rng: crypto.Rng = crypto.system_rng,
    ) -> None:
        if hub_key.verify_key != genesis.hub_key:
            raise UsageError("the genesis names another hub key: install the right genesis")
        self.genesis = genesis
        self.hub_key = hub_key
        self.engine = engine
        self.sessions = db.session_factory(engine)
        self.clock = clock
        self.certificate_days = certificate_days
        self.clock_skew = clock_skew
        self.rng = rng
        self.state = DirectoryState(genesis)
        self._admins = {a.key.key_id: a for a in genesis.admins}
        self._transport: dict[KeyId, AuthorityId] = {}
        self._transport_of: dict[AuthorityId, KeyId] = {}
        #: Serialises log appends and the duplicate checks of new applications.
        self.append_lock = asyncio.Lock()
        self._nonces = NonceWindow(window=clock_skew)
        self.applications = Applications(self)
        self.key_updates = KeyUpdates(self)
        self.actions = MembershipActions(self)
        self.profiles = Profiles(self)

    def now(self) -> int:
        """The current time in whole seconds."""
        return int(self.clock())

    # -- storage boundary ------------------------------------------------------------------

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[AsyncSession]:
        """One transaction; storage failures become :class:`StorageError`."""
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except GlobeError:
            raise
        except IntegrityError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            # The driver's own message ("database or disk is full", "connection refused")
            # tells the operator what to fix; never the statement or its parameters,
            # which may hold envelope bytes.
            cause = getattr(exc, "orig", None) or exc
            log.error(
                "storage failure: %s: %s",
                type(cause).__name__,
                str(cause.args[0] if cause.args else "")[:200],
            )
            raise StorageError("the hub's database is unavailable; retry later") from exc

    async def start(self) -> None:
        """Rebuild and verify the directory from the stored log."""
        await self.refresh()
        log.info("directory verified: %d entries, head %s", self.state.seq, self.state.head.hex())

    async def refresh(self) -> None:
        """Apply entries another process may have appended (verifying each)."""
        async with self.unit() as s:
            rows = (
                await s.execute(
                    select(db.LogEntryRow.data)
                    .where(db.LogEntryRow.seq > self.state.seq)
                    .order_by(db.LogEntryRow.seq)
                )
            ).scalars()
            for data in rows:
                self.apply(data)

    def apply(self, data: bytes) -> None:
        """Verify and apply the next log entry (exact bytes) to the in-memory directory."""
        entry = self.state.apply(data)
        if isinstance(entry, ProfileEntry):  # a profile certifies no key
            return
        cert = entry.action.certificate
        if cert is not None:  # keep the transport-key index in step with the certificates
            old = self._transport_of.pop(entry.action.authority, None)
            if old is not None:
                self._transport.pop(old, None)
            self._transport[cert.transport_key.key_id] = entry.action.authority
            self._transport_of[entry.action.authority] = cert.transport_key.key_id

    # -- authentication support ----------------------------------------------------------------

    def admin_key(self, key_id: KeyId) -> tuple[str, VerifyKey] | None:
        """An admin's name and key, if ``key_id`` is an admin key of the genesis."""
        admin = self._admins.get(key_id)
        return None if admin is None else (admin.name, admin.key)

    def member_transport_key(self, key_id: KeyId) -> tuple[AuthorityId, VerifyKey] | None:
        """The active member owning transport key ``key_id``, or ``None`` (uniform refusal)."""
        authority = self._transport.get(key_id)
        if authority is None:
            return None
        try:
            member = self.state.active_member(authority, self.now())
        except GlobeError:
            return None
        key = member.certificate.transport_key
        return (authority, key) if key.key_id == key_id else None

    async def consume_nonce(
        self, key_id: KeyId, nonce: bytes, created: int, *, durable: bool = True
    ) -> None:
        """Record a request nonce; :class:`ReplayError` if it was used inside the window.

        ``durable`` nonces (admin and membership requests) go to the database, so
        replay protection survives restarts and spans hub processes.  Member
        traffic on the message path is kept in memory instead: a write per request
        would cost a synchronous commit each and defeat group commit, and every
        message-path request is idempotent (a replayed submission gets the same
        evidence, a replayed receipt releases nothing new).
        """
        now = self.now()
        if not durable:
            self._nonces.check_and_add(key_id, nonce, created, now)
            return
        try:
            async with self.unit() as s:
                s.add(
                    db.Nonce(key_id=str(key_id), nonce=nonce, expires=created + 2 * self.clock_skew)
                )
        except IntegrityError:
            raise ReplayError("request nonce already used") from None
        if int.from_bytes(nonce[:1], "big") < 4:  # about 1 request in 64 sweeps old nonces
            async with self.unit() as s:
                await s.execute(delete(db.Nonce).where(db.Nonce.expires < now))

    # -- directory -----------------------------------------------------------------------------

    async def log_page(self, since: int, limit: int) -> LogPage:
        """Entries after ``since`` as exact bytes, from the database (not from memory)."""
        async with self.unit() as s:
            rows = (
                await s.execute(
                    select(db.LogEntryRow.seq, db.LogEntryRow.data)
                    .where(db.LogEntryRow.seq > since)
                    .order_by(db.LogEntryRow.seq)
                    .limit(limit + 1)
                )
            ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return LogPage(
            entries=tuple(r.data for r in rows), next=rows[-1].seq if more and rows else None
        )

    def checkpoint(self) -> bytes:
        """A fresh hub-signed checkpoint of the current head."""
        cp = make_checkpoint(
            genesis=self.genesis,
            hub=self.hub_key,
            seq=self.state.seq,
            head=self.state.head,
            time=max(self.now(), self.state.time),
        )
        return cp.signed.encode()

    def search(self, query: Query, *, limit: int) -> SearchResults:
        """Directory search over the verified state, ranked, each result with its reasons."""
        hits = search_directory(self.state, query)[:limit]
        return SearchResults(results=tuple(MemberSummary.of(h.member, h.reasons) for h in hits))

    # -- prekeys ---------------------------------------------------------------------------------

    async def put_prekey(self, data: bytes, who: Principal) -> PrekeyStored:
        """Store a member's signed prekey after checking it against its identity key."""
        assert who.authority is not None  # noqa: S101 - route requires a member
        now = self.now()
        member = self.state.active_member(who.authority, now)
        prekey = SignedPrekey.decode(
            data, self.genesis, member.certificate.identity_key, authority=who.authority
        )
        if prekey.not_after <= now:
            raise MalformedError("prekey has already expired")
        try:
            async with self.unit() as s:
                await s.execute(
                    delete(db.Prekey)
                    .where(db.Prekey.authority == str(who.authority))
                    .where(db.Prekey.not_after <= now)
                )
                count = len(
                    (
                        await s.execute(
                            select(db.Prekey.id).where(db.Prekey.authority == str(who.authority))
                        )
                    ).all()
                )
                if count >= MAX_PREKEYS:
                    raise Conflict(f"at most {MAX_PREKEYS} unexpired prekeys per member")
                s.add(
                    db.Prekey(
                        authority=str(who.authority),
                        key_id=str(prekey.key.key_id),
                        data=data,
                        not_before=prekey.not_before,
                        not_after=prekey.not_after,
                        created=now,
                    )
                )
        except IntegrityError:
            raise Conflict("this prekey is already published") from None
        return PrekeyStored(
            authority=str(who.authority), key_id=str(prekey.key.key_id), not_after=prekey.not_after
        )

    async def get_prekeys(self, authority: AuthorityId) -> Prekeys:
        """A member's valid prekeys, newest first (exact containers)."""
        now = self.now()
        self.state.active_member(authority, now)  # no prekeys for suspended or revoked members
        async with self.unit() as s:
            rows = (
                await s.execute(
                    select(db.Prekey.data)
                    .where(db.Prekey.authority == str(authority))
                    .where(db.Prekey.not_after > now)
                    .where(db.Prekey.not_before <= now + self.clock_skew)
                    .order_by(db.Prekey.not_before.desc())
                )
            ).scalars()
            return Prekeys(authority=str(authority), prekeys=tuple(rows))

    # -- audit -------------------------------------------------------------------------------------

    def record(
        self, s: AsyncSession, actor: str, action: str, subject: str, detail: dict[str, Any]
    ) -> None:
        """Add an audit record to the unit of work ``s`` (committed with what it records)."""
        s.add(
            db.AuditRecord(
                time=self.now(),
                actor=actor[:80],
                action=action,
                subject=subject[:80],
                detail=_json(detail),
            )
        )

    async def audit(self, since: int, limit: int) -> AuditRecords:
        """Audit records with id greater than ``since``, oldest first."""
        async with self.unit() as s:
            rows = (
                await s.execute(
                    select(db.AuditRecord)
                    .where(db.AuditRecord.id > since)
                    .order_by(db.AuditRecord.id)
                    .limit(limit)
                )
            ).scalars()
            return AuditRecords(
                records=tuple(
                    AuditRecord(id=r.id, time=r.time, actor=r.actor, action=r.action,
                                subject=r.subject, detail=orjson.loads(r.detail))
                    for r in rows
                )
            )  # fmt: skip


def member_summary(m: Member) -> MemberSummary:
    """A directory entry: the member's certificate, status and profile."""
    return MemberSummary.of(m)

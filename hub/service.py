"""The hub's membership and directory service, independent of HTTP (BRIEF R1-R4).

The hub stores and sequences; it never decides membership.  Applications
are checked (proof of possession of every key, reserved and duplicate keys),
admins' signatures on membership actions are collected until the genesis
quorum verifies, and only then is the action appended to the hash-chained
log.  The hub keeps a verified :class:`~protocol.directory.DirectoryState`
in memory, rebuilt from its own log at start-up with the same code nodes use:
a log edited behind the hub's back stops it from starting.

One unit of work per transaction; library errors are translated into the
project's hierarchy at this boundary.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from globe_io.errors import Conflict, NotFound
from hub import db
from protocol import canonical, crypto, labels
from protocol.directory import TRANSITIONS, DirectoryState, Member, MemberStatus
from protocol.errors import (
    BadSignature,
    DecryptionFailed,
    GlobeError,
    LogError,
    MalformedError,
    ReplayError,
    StorageError,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId
from protocol.keys import SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Application,
    Certificate,
    MembershipAction,
    entry_hash,
    kem_pop_challenge,
    make_action,
    make_checkpoint,
    make_entry,
)
from protocol.prekeys import SignedPrekey
from protocol.replay import NonceWindow
from protocol.signed import SignedObject, verify_quorum

__all__ = ["Clock", "HubService", "Principal"]

log = logging.getLogger("globe.hub")

Clock = Callable[[], float]

#: Application states.
AWAITING_POP = "awaiting-pop"
PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
OPEN_STATES = (AWAITING_POP, PENDING)
#: Prekeys a member may have published and unexpired at once.
MAX_PREKEYS = 16


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
    """Membership applications, quorum approvals, the log, prekeys and the audit trail."""

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
        self._append_lock = asyncio.Lock()
        self._nonces = NonceWindow(window=clock_skew)

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
                self._apply(data)

    def _apply(self, data: bytes) -> None:
        entry = self.state.apply(data)
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

    # -- applications ----------------------------------------------------------------------------

    async def submit_application(self, data: bytes) -> dict[str, Any]:
        """Accept an application whose signatures prove possession of both signing keys.

        Returns the application id and a KEM challenge to be answered with
        :meth:`answer_challenge` (possession of the key-agreement key).
        """
        app = Application.decode(data, self.genesis)
        self._check_new_keys(app)
        if app.authority in self.state.members:
            raise Conflict(f"{app.authority} is already in the directory")
        challenge, secret = kem_pop_challenge(app.ka_key, app.digest, self.rng)
        now = self.now()
        app_id = self.rng(16).hex()
        async with self._append_lock:
            try:
                async with self.unit() as s:
                    await self._check_open_duplicates(s, app)
                    s.add(
                        db.Application(
                            id=app_id,
                            authority=str(app.authority),
                            digest=app.digest,
                            data=data,
                            status=AWAITING_POP,
                            pop_challenge=challenge,
                            pop_digest=crypto.sha256(secret),
                            identity_key=bytes(app.identity_key),
                            transport_key=bytes(app.transport_key),
                            ka_key=bytes(app.ka_key),
                            created=now,
                            updated=now,
                        )
                    )
                    self._audit(
                        s,
                        "applicant",
                        "application-received",
                        str(app.authority),
                        {
                            "application": app_id,
                            "fingerprint": app.fingerprint(),
                        },
                    )
            except IntegrityError:
                raise Conflict("this application was already submitted") from None
        return {
            "id": app_id,
            "authority": str(app.authority),
            "status": AWAITING_POP,
            "challenge": canonical.b64e(challenge),
        }

    def _check_new_keys(self, app: Application) -> None:
        for role, raw in (
            ("identity", bytes(app.identity_key)),
            ("transport", bytes(app.transport_key)),
            ("key-agreement", bytes(app.ka_key)),
        ):
            if self.genesis.is_reserved_key(raw):
                raise Conflict(f"the {role} key is the hub's or an admin's key (R4)")
            if raw in self.state.key_owner:
                raise Conflict(f"the {role} key is already certified to a member (R4)")

    async def _check_open_duplicates(self, s: AsyncSession, app: Application) -> None:
        rows = (
            await s.execute(select(db.Application).where(db.Application.status.in_(OPEN_STATES)))
        ).scalars()
        new = {bytes(app.identity_key), bytes(app.transport_key), bytes(app.ka_key)}
        for row in rows:
            if row.authority == str(app.authority):
                raise Conflict(f"an application for {app.authority} is already open")
            if new & {row.identity_key, row.transport_key, row.ka_key}:
                raise Conflict("a key of this application is used by another open application")

    async def answer_challenge(self, app_id: str, answer: bytes) -> dict[str, Any]:
        """Check the KEM proof of possession; the application then awaits the admins."""
        now = self.now()
        async with self.unit() as s:
            row = await self._application(s, app_id)
            if row.status != AWAITING_POP:
                raise Conflict(f"application {app_id} is {row.status}")
            if not crypto.constant_time_equal(crypto.sha256(answer), row.pop_digest):
                raise DecryptionFailed("the answer does not open the challenge")
            app = Application.decode(row.data, self.genesis)
            cert = Certificate.from_application(
                app,
                serial=self.rng(16).hex(),
                not_before=now,
                not_after=now + self.certificate_days * 86400,
            )
            draft = make_action(
                genesis=self.genesis,
                action=Action.ADMIT,
                authority=app.authority,
                prev=None,
                issued=now,
                certificate=cert,
            )
            # Conditional: of concurrent answers (or an answer racing a rejection), one wins.
            done = cast(
                "CursorResult[Any]",
                await s.execute(
                    update(db.Application)
                    .where(db.Application.id == app_id)
                    .where(db.Application.status == AWAITING_POP)
                    .values(status=PENDING, draft=draft.signed.payload, updated=now)
                ),
            )
            if done.rowcount != 1:
                raise Conflict(f"application {app_id} is no longer awaiting the proof")
            self._audit(s, "applicant", "possession-proven", row.authority, {"application": app_id})
        return {"id": app_id, "authority": row.authority, "status": PENDING}

    async def _application(self, s: AsyncSession, app_id: str) -> db.Application:
        if len(app_id) != 32 or not all(c in "0123456789abcdef" for c in app_id):
            raise NotFound("no such application")
        row = await s.get(db.Application, app_id)
        if row is None:
            raise NotFound("no such application")
        return row

    async def application_status(self, app_id: str) -> dict[str, Any]:
        """Public status of an application."""
        async with self.unit() as s:
            row = await self._application(s, app_id)
            return {"id": row.id, "authority": row.authority, "status": row.status,
                    "reason": row.reason}  # fmt: skip

    async def list_applications(self, status: str | None) -> list[dict[str, Any]]:
        """Applications for the admins, newest first."""
        async with self.unit() as s:
            query = select(db.Application).order_by(db.Application.created.desc())
            if status is not None:
                query = query.where(db.Application.status == status)
            rows = (await s.execute(query.limit(1000))).scalars().all()
        return [self._app_summary(r) for r in rows]

    def _app_summary(self, row: db.Application) -> dict[str, Any]:
        app = Application.decode(row.data, self.genesis)
        return {
            "id": row.id,
            "authority": row.authority,
            "name": app.name,
            "country": app.authority.country,
            "kinds": list(app.kinds),
            "languages": list(app.languages),
            "status": row.status,
            "reason": row.reason,
            "created": row.created,
            "fingerprint": app.fingerprint(),
        }

    async def get_application(self, app_id: str) -> dict[str, Any]:
        """Everything an admin needs to check an application before signing."""
        async with self.unit() as s:
            row = await self._application(s, app_id)
        out = self._app_summary(row)
        out["application"] = canonical.b64e(row.data)
        out["contact"] = Application.decode(row.data, self.genesis).contact
        out["draft"] = canonical.b64e(row.draft) if row.draft is not None else None
        return out

    async def reject_application(self, app_id: str, reason: str, who: Principal) -> dict[str, Any]:
        """An admin refuses an application (no quorum needed to say no)."""
        if not reason.strip():
            raise MalformedError("a rejection needs a reason")
        now = self.now()
        async with self.unit() as s:
            row = await self._application(s, app_id)
            if row.status not in OPEN_STATES:
                raise Conflict(f"application {app_id} is {row.status}")
            # Conditional on the state just read: an approval racing this
            # rejection cannot be overwritten.
            changed = await s.execute(
                update(db.Application)
                .where(db.Application.id == app_id)
                .where(db.Application.status.in_(OPEN_STATES))
                .values(status=REJECTED, reason=reason, updated=now)
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"application {app_id} changed state; reload it")
            self._audit(
                s,
                str(who),
                "reject-application",
                row.authority,
                {"application": app_id, "reason": reason, "key": str(who.key_id)},
            )
        return {"id": app_id, "authority": row.authority, "status": REJECTED}

    # -- quorum-signed membership actions ----------------------------------------------------------

    async def submit_action(self, container: bytes, who: Principal) -> dict[str, Any]:
        """Add admin signatures to a membership action; append it once the quorum verifies."""
        signed = SignedObject.decode(container, max_size=64 * 1024, what="action")
        action = MembershipAction.from_signed(signed, self.genesis)
        admins = self.genesis.admin_keys
        for sig in signed.signatures:  # every signature offered must be a valid admin one
            key = admins.get(sig.key_id)
            if key is None:
                raise BadSignature(f"{sig.key_id} is not an admin key of this network")
            key.verify(labels.MEMBERSHIP_ACTION, signed.payload, sig.sig)
        async with self._append_lock:
            await self.refresh()
            self._check_applicable(action)
            app_row_id = await self._check_draft(action)
            now = self.now()
            proposal_id = action.digest.hex()
            async with self.unit() as s:
                row = await s.get(db.Proposal, proposal_id)
                if row is not None and row.status != "open":
                    raise Conflict(f"proposal {proposal_id[:16]} is already {row.status}")
                if row is not None:
                    signed = SignedObject.decode(
                        row.signatures, max_size=64 * 1024, what="stored action"
                    ).merge(signed)
                    row.signatures = signed.encode()
                    row.updated = now
                else:
                    row = db.Proposal(
                        id=proposal_id,
                        authority=str(action.authority),
                        action=action.action.value,
                        payload=signed.payload,
                        signatures=signed.encode(),
                        status="open",
                        application_id=app_row_id,
                        created=now,
                        updated=now,
                    )
                    s.add(row)
                self._audit(
                    s,
                    str(who),
                    "sign-action",
                    str(action.authority),
                    {
                        "action": action.action.value,
                        "proposal": proposal_id,
                        "key": str(who.key_id),
                        "signatures": len(signed.signatures),
                    },
                )
            valid = len(self._valid_admins(signed))
            result: dict[str, Any] = {
                "proposal": proposal_id,
                "action": action.action.value,
                "authority": str(action.authority),
                "signatures": valid,
                "threshold": self.genesis.threshold,
                "status": "open",
            }
            if valid >= self.genesis.threshold:
                result["seq"] = await self._append(signed, action, proposal_id, app_row_id)
                result["status"] = "appended"
            return result

    def _valid_admins(self, signed: SignedObject) -> frozenset[KeyId]:
        try:
            return verify_quorum(signed, labels.MEMBERSHIP_ACTION, self.genesis.admin_keys, 0)
        except GlobeError:  # pragma: no cover - threshold 0 cannot fail
            return frozenset()

    def _check_applicable(self, action: MembershipAction) -> None:
        """The action must apply to the current directory (else it can never be appended)."""
        member = self.state.members.get(action.authority)
        before = member.status if member is not None else None
        if (before, action.action) not in TRANSITIONS:
            state = before.value if before is not None else "absent"
            raise LogError(f"cannot {action.action.value} {action.authority}: it is {state}")
        if member is not None and action.prev != member.last_action:
            raise LogError("the action does not follow the authority's latest action")
        if action.certificate is not None:  # admit too: its keys may have been certified since
            self.state.check_certificate(action.certificate, member, self.state.seq + 1)

    async def _check_draft(self, action: MembershipAction) -> str | None:
        """An admit must be exactly the draft the hub prepared for a pending application."""
        if action.action is not Action.ADMIT:
            return None
        assert action.certificate is not None  # noqa: S101 - admit carries one
        digest = action.certificate.application
        async with self.unit() as s:
            row = (
                await s.execute(select(db.Application).where(db.Application.digest == digest))
            ).scalar_one_or_none()
        if row is None or row.status != PENDING:
            raise Conflict("no pending application matches this admission")
        if row.draft != action.signed.payload:
            raise Conflict("an admission must sign the draft prepared for the application")
        return row.id

    async def _append(
        self, signed: SignedObject, action: MembershipAction, proposal_id: str, app_id: str | None
    ) -> int:
        now = max(self.now(), self.state.time)
        seq = self.state.seq + 1
        entry = make_entry(
            genesis=self.genesis, seq=seq, prev=self.state.head, time=now, action=signed
        )
        try:
            async with self.unit() as s:
                s.add(db.LogEntryRow(seq=seq, hash=entry_hash(entry), data=entry, time=now))
                await s.execute(
                    update(db.Proposal)
                    .where(db.Proposal.id == proposal_id)
                    .values(status="appended", seq=seq, updated=now)
                )
                await s.execute(
                    update(db.Proposal)
                    .where(db.Proposal.authority == str(action.authority))
                    .where(db.Proposal.status == "open")
                    .where(db.Proposal.id != proposal_id)
                    .values(status="superseded", updated=now)
                )
                if app_id is not None:
                    await s.execute(
                        update(db.Application)
                        .where(db.Application.id == app_id)
                        .values(status=APPROVED, updated=now)
                    )
                self._audit(
                    s,
                    "hub",
                    "log-append",
                    str(action.authority),
                    {
                        "seq": seq,
                        "action": action.action.value,
                        "proposal": proposal_id,
                        "signers": sorted(str(k) for k in self._valid_admins(signed)),
                    },
                )
        except IntegrityError:  # another hub process appended first
            await self.refresh()
            raise Conflict("the log moved on; sign the action again if it still applies") from None
        self._apply(entry)
        return seq

    async def list_proposals(self, status: str | None) -> list[dict[str, Any]]:
        """Actions collecting signatures (for admins to review and co-sign)."""
        async with self.unit() as s:
            query = select(db.Proposal).order_by(db.Proposal.created.desc())
            if status is not None:
                query = query.where(db.Proposal.status == status)
            rows = (await s.execute(query.limit(1000))).scalars().all()
        return [
            {
                "proposal": r.id,
                "authority": r.authority,
                "action": r.action,
                "status": r.status,
                "seq": r.seq,
                "signed": orjson.loads(r.signatures),
                "created": r.created,
            }
            for r in rows
        ]

    # -- directory -----------------------------------------------------------------------------

    async def log_page(self, since: int, limit: int) -> dict[str, Any]:
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
        return {
            "entries": [canonical.b64e(r.data) for r in rows],
            "next": rows[-1].seq if more and rows else None,
        }

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

    def search(
        self,
        *,
        country: str | None,
        kind: str | None,
        language: str | None,
        text: str | None,
        include_inactive: bool,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Directory search over the verified state."""
        found = self.state.search(
            country=country,
            kind=kind,
            language=language,
            text=text,
            include_inactive=include_inactive,
        )
        return [member_summary(m) for m in found[:limit]]

    # -- prekeys ---------------------------------------------------------------------------------

    async def put_prekey(self, data: bytes, who: Principal) -> dict[str, Any]:
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
        return {"authority": str(who.authority), "key_id": str(prekey.key.key_id),
                "not_after": prekey.not_after}  # fmt: skip

    async def get_prekeys(self, authority: AuthorityId) -> list[str]:
        """A member's valid prekeys, newest first (as base64url containers)."""
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
            return [canonical.b64e(d) for d in rows]

    # -- audit -------------------------------------------------------------------------------------

    def _audit(
        self, s: AsyncSession, actor: str, action: str, subject: str, detail: dict[str, Any]
    ) -> None:
        s.add(
            db.AuditRecord(
                time=self.now(),
                actor=actor[:80],
                action=action,
                subject=subject[:80],
                detail=_json(detail),
            )
        )

    async def audit(self, since: int, limit: int) -> list[dict[str, Any]]:
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
            return [
                {
                    "id": r.id,
                    "time": r.time,
                    "actor": r.actor,
                    "action": r.action,
                    "subject": r.subject,
                    "detail": orjson.loads(r.detail),
                }
                for r in rows
            ]


def member_summary(m: Member) -> dict[str, Any]:
    """A directory search result."""
    c = m.certificate
    out: dict[str, Any] = {
        "authority": str(m.authority),
        "name": c.name,
        "country": m.authority.country,
        "kinds": list(c.kinds),
        "languages": list(c.languages),
        "status": m.status.value,
        "identity_key": str(c.identity_key.key_id),
        "fingerprint": c.fingerprint(),
        "not_after": c.not_after,
    }
    if c.endpoint is not None:
        out["endpoint"] = c.endpoint
    if m.status is not MemberStatus.ACTIVE and m.reason is not None:
        out["reason"] = m.reason
    return out


def random_id() -> str:
    """A 128-bit random identifier in hex."""
    return os.urandom(16).hex()

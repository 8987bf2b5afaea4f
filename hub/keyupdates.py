"""Key-update requests: a member's new keys, their proof of possession, the admins' review
(R1, R4; docs/PROTOCOL.md §6.8).

A request is verified against the hub's verified directory
(:meth:`protocol.keyupdate.KeyUpdateRequest.decode`: its current identity key authorises
it, its new signing keys prove possession, no key is reserved or already certified
elsewhere), then the answer to a KEM challenge proves its new key-agreement key.  The
hub then drafts the ``update-keys`` the admins sign (:mod:`hub.actions` appends it at
quorum and marks the request approved); one admin alone may reject.  A request's id is
the first half of its digest, so a member that lost the answer knows it anyway, and the
same request submitted again while it awaits its proof gets the same challenge.  One
request per authority is open at a time, and no key may be named by another open
request or application.  Every transition is conditional on the state just read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from globe_io.errors import Conflict, NotFound
from globe_io.hubapi import (
    APPROVED,
    AWAITING_POP,
    PENDING,
    REJECTED,
    KeyUpdateCreated,
    KeyUpdateDetail,
    KeyUpdateList,
    KeyUpdateState,
    KeyUpdateStatus,
    KeyUpdateSummary,
)
from hub import db
from hub.applications import LIST_MAX, OPEN_STATES
from protocol import crypto
from protocol.errors import DecryptionFailed, GlobeError, MalformedError
from protocol.keyupdate import KeyUpdateRequest, certificate_for
from protocol.membership import Action, MembershipAction, kem_pop_challenge, make_action
from protocol.signed import SignedObject

if TYPE_CHECKING:
    from hub.service import HubService, Principal

__all__ = ["KeyUpdates", "key_update_id"]


def key_update_id(digest: bytes) -> str:
    """The id of a request: the first 16 bytes of its digest, in hex."""
    return digest[:16].hex()


class KeyUpdates:
    """The key-update workflow of one :class:`~hub.service.HubService`."""

    def __init__(self, service: HubService) -> None:
        self.service = service

    async def submit(self, data: bytes) -> KeyUpdateCreated:
        """Accept a request whose signatures authorise it and prove its new signing keys.

        The answer carries a KEM challenge to be answered with :meth:`answer` (possession
        of the new key-agreement key).
        """
        svc = self.service
        req = KeyUpdateRequest.decode(data, svc.state)
        challenge, secret = kem_pop_challenge(req.ka_key, req.digest, svc.rng)
        now = svc.now()
        ku_id = key_update_id(req.digest)
        async with svc.append_lock:
            try:
                async with svc.unit() as s:
                    again = await s.get(db.KeyUpdate, ku_id)
                    if again is not None and again.digest == req.digest:
                        return self._again(again, req)
                    await self._check_open(s, req)
                    s.add(
                        db.KeyUpdate(
                            id=ku_id, authority=str(req.authority), digest=req.digest, data=data,
                            status=AWAITING_POP, pop_challenge=challenge,
                            pop_digest=crypto.sha256(secret), identity_key=bytes(req.identity_key),
                            transport_key=bytes(req.transport_key), ka_key=bytes(req.ka_key),
                            replaced=",".join(req.replaced), fingerprint=req.fingerprint(),
                            created=now, updated=now,
                        )
                    )  # fmt: skip
                    svc.record(
                        s,
                        str(req.authority),
                        "key-update-received",
                        str(req.authority),
                        {"key_update": ku_id, "replaced": list(req.replaced),
                         "fingerprint": req.fingerprint()},
                    )  # fmt: skip
            except IntegrityError:
                raise Conflict("this key update was already submitted") from None
        return KeyUpdateCreated(
            id=ku_id, authority=str(req.authority), replaced=req.replaced,
            fingerprint=req.fingerprint(), challenge=challenge,
        )  # fmt: skip

    @staticmethod
    def _again(row: db.KeyUpdate, req: KeyUpdateRequest) -> KeyUpdateCreated:
        """The same request submitted again: its challenge while it awaits the proof (the
        member may have lost the first answer), else a conflict naming its state."""
        if row.status != AWAITING_POP:
            raise Conflict(f"this key update was already submitted; it is {row.status}")
        return KeyUpdateCreated(
            id=row.id, authority=row.authority, replaced=req.replaced,
            fingerprint=req.fingerprint(), challenge=row.pop_challenge,
        )  # fmt: skip

    async def _check_open(self, s: AsyncSession, req: KeyUpdateRequest) -> None:
        """One open request per authority; no key named by another open request or
        application (the log would certify only one of them)."""
        new = {bytes(req.identity_key), bytes(req.transport_key), bytes(req.ka_key)}
        for row in (
            await s.execute(select(db.KeyUpdate).where(db.KeyUpdate.status.in_(OPEN_STATES)))
        ).scalars():
            if row.authority == str(req.authority):
                raise Conflict(
                    f"a key update for {req.authority} is already open ({row.id}): the admins "
                    "approve or reject it first"
                )
            if new & {row.identity_key, row.transport_key, row.ka_key}:
                raise Conflict("a key of this request is named by another open key update")
        for app in (
            await s.execute(select(db.Application).where(db.Application.status.in_(OPEN_STATES)))
        ).scalars():
            if new & {app.identity_key, app.transport_key, app.ka_key}:
                raise Conflict("a key of this request is named by an open application")

    async def answer(self, ku_id: str, answer: bytes) -> KeyUpdateState:
        """Check the KEM proof of possession; the request then awaits the admins."""
        svc = self.service
        now = svc.now()
        async with svc.unit() as s:
            row = await self._row(s, ku_id)
            if row.status != AWAITING_POP:
                raise Conflict(f"key update {ku_id} is {row.status}")
            if not crypto.constant_time_equal(crypto.sha256(answer), row.pop_digest):
                raise DecryptionFailed("the answer does not open the challenge")
            draft = self._draft(row)
            # Conditional: of concurrent answers (or an answer racing a rejection), one wins.
            done = cast(
                "CursorResult[Any]",
                await s.execute(
                    update(db.KeyUpdate)
                    .where(db.KeyUpdate.id == ku_id)
                    .where(db.KeyUpdate.status == AWAITING_POP)
                    .values(status=PENDING, draft=draft, updated=now)
                ),
            )
            if done.rowcount != 1:
                raise Conflict(f"key update {ku_id} is no longer awaiting the proof")
            svc.record(s, row.authority, "key-possession-proven", row.authority,
                       {"key_update": ku_id})  # fmt: skip
        return KeyUpdateState(id=ku_id, authority=row.authority, status=PENDING)

    def _draft(self, row: db.KeyUpdate) -> bytes:
        """The ``update-keys`` payload that certifies the request, against the directory now
        (PROTOCOL.md §6.8); the request must still verify against it."""
        svc = self.service
        now = max(svc.now(), svc.state.time)
        req = KeyUpdateRequest.decode(row.data, svc.state)
        member = svc.state.member(req.authority)
        cert = certificate_for(req, member.certificate, serial=svc.rng(16).hex(), not_before=now)
        return make_action(
            genesis=svc.genesis, action=Action.UPDATE_KEYS, authority=req.authority,
            prev=member.last_action, issued=now, certificate=cert,
        ).signed.payload  # fmt: skip

    async def _refresh(self, row: db.KeyUpdate) -> bytes | None:
        """The draft of a pending request, drafted anew when the authority's latest action
        changed since (a suspension, say): the old one could never be appended."""
        if row.status != PENDING or row.draft is None:
            return row.draft
        svc = self.service
        stale = MembershipAction.from_signed(SignedObject(row.draft, ()), svc.genesis)
        member = svc.state.members.get(stale.authority)
        if member is None or stale.prev == member.last_action:
            return row.draft
        try:
            draft = self._draft(row)
        except GlobeError:  # it no longer applies: the admins see why when they check it
            return row.draft
        async with svc.unit() as s:
            await s.execute(
                update(db.KeyUpdate)
                .where(db.KeyUpdate.id == row.id)
                .where(db.KeyUpdate.status == PENDING)
                .values(draft=draft, updated=svc.now())
            )
        return draft

    async def _row(self, s: AsyncSession, ku_id: str) -> db.KeyUpdate:
        if len(ku_id) != 32 or not all(c in "0123456789abcdef" for c in ku_id):
            raise NotFound("no such key update")
        row = await s.get(db.KeyUpdate, ku_id)
        if row is None:
            raise NotFound("no such key update")
        return row

    async def status(self, ku_id: str) -> KeyUpdateStatus:
        """Public status of a request."""
        async with self.service.unit() as s:
            row = await self._row(s, ku_id)
            return KeyUpdateStatus(
                id=row.id, authority=row.authority, status=row.status, reason=row.reason
            )

    async def listing(self, status: str | None) -> KeyUpdateList:
        """Requests for the admins, newest first (at most :data:`~hub.applications.LIST_MAX`)."""
        async with self.service.unit() as s:
            query = select(db.KeyUpdate).order_by(db.KeyUpdate.created.desc())
            if status is not None:
                query = query.where(db.KeyUpdate.status == status)
            rows = (await s.execute(query.limit(LIST_MAX))).scalars().all()
        return KeyUpdateList(key_updates=tuple(self._summary(r) for r in rows))

    @staticmethod
    def _summary(row: db.KeyUpdate) -> KeyUpdateSummary:
        return KeyUpdateSummary(
            id=row.id, authority=row.authority, replaced=tuple(row.replaced.split(",")),
            status=row.status, reason=row.reason, created=row.created,
            fingerprint=row.fingerprint,
        )  # fmt: skip

    async def get(self, ku_id: str) -> KeyUpdateDetail:
        """Everything an admin needs to check a request before signing its draft."""
        async with self.service.unit() as s:
            row = await self._row(s, ku_id)
        draft = await self._refresh(row)
        return KeyUpdateDetail.of(self._summary(row), request=row.data, draft=draft)

    async def reject(self, ku_id: str, reason: str, who: Principal) -> KeyUpdateState:
        """An admin refuses a request (no quorum needed to say no)."""
        if not reason.strip():
            raise MalformedError("a rejection needs a reason")
        svc = self.service
        now = svc.now()
        async with svc.unit() as s:
            row = await self._row(s, ku_id)
            if row.status not in OPEN_STATES:
                raise Conflict(f"key update {ku_id} is {row.status}")
            changed = cast(
                "CursorResult[Any]",
                await s.execute(
                    update(db.KeyUpdate)
                    .where(db.KeyUpdate.id == ku_id)
                    .where(db.KeyUpdate.status.in_(OPEN_STATES))
                    .values(status=REJECTED, reason=reason, updated=now)
                ),
            )
            if changed.rowcount != 1:
                raise Conflict(f"key update {ku_id} changed state; reload it")
            svc.record(
                s, str(who), "reject-key-update", row.authority,
                {"key_update": ku_id, "reason": reason, "key": str(who.key_id)},
            )  # fmt: skip
        return KeyUpdateState(id=ku_id, authority=row.authority, status=REJECTED)

    async def check_draft(self, action: MembershipAction) -> str | None:
        """The id of the pending request an ``update-keys`` certifies, which it must sign
        exactly as drafted; ``None`` for an ``update-keys`` that names no request (an
        amendment that keeps every key, PROTOCOL.md §6.7)."""
        cert = action.certificate
        if action.action is not Action.UPDATE_KEYS or cert is None or cert.application is None:
            return None
        async with self.service.unit() as s:
            row = (
                await s.execute(select(db.KeyUpdate).where(db.KeyUpdate.digest == cert.application))
            ).scalar_one_or_none()
        if row is None or row.status != PENDING:
            raise Conflict("no pending key update matches this update-keys")
        if row.draft != action.signed.payload:
            raise Conflict("an update-keys must sign the draft prepared for the key update")
        return row.id

    @staticmethod
    async def approve(s: AsyncSession, ku_id: str, now: int) -> None:
        """Mark a request approved, in the unit of work that appends its ``update-keys``."""
        await s.execute(
            update(db.KeyUpdate)
            .where(db.KeyUpdate.id == ku_id)
            .values(status=APPROVED, updated=now)
        )

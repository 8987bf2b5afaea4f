"""Quorum-signed membership actions: collecting admin signatures, appending at quorum (R1, R2).

The hub never decides membership.  Every signature offered must be a valid
admin signature; signatures on the same action are merged into one proposal;
once the genesis quorum verifies, the action is appended to the hash-chained
log (and an admission approves its application, an ``update-keys`` the key-update
request it certifies).  An action must apply to the current directory, an ``admit``
must sign exactly the draft the hub prepared for a pending application
(:mod:`hub.applications`), and an ``update-keys`` that names a key-update request the
draft prepared for it (:mod:`hub.keyupdates`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from globe_io.errors import Conflict
from globe_io.hubapi import (
    APPENDED,
    APPROVED,
    OPEN,
    PENDING,
    SUPERSEDED,
    ActionResult,
    Proposal,
    ProposalList,
)
from hub import db
from hub.applications import LIST_MAX
from protocol import labels
from protocol.directory import TRANSITIONS
from protocol.errors import BadSignature, GlobeError, LogError
from protocol.ids import KeyId
from protocol.membership import Action, MembershipAction, entry_hash, make_entry
from protocol.signed import SignedObject, verify_quorum

if TYPE_CHECKING:
    from hub.service import HubService, Principal

__all__ = ["ACTION_CONTAINER_MAX", "MembershipActions"]

#: Largest action container (payload and signatures) the hub decodes.
ACTION_CONTAINER_MAX: Final = 64 * 1024


class MembershipActions:
    """Proposals and the log appends of one :class:`~hub.service.HubService`."""

    def __init__(self, service: HubService) -> None:
        self.service = service

    async def submit(self, container: bytes, who: Principal) -> ActionResult:
        """Add admin signatures to a membership action; append it once the quorum verifies."""
        svc = self.service
        signed = SignedObject.decode(container, max_size=ACTION_CONTAINER_MAX, what="action")
        action = MembershipAction.from_signed(signed, svc.genesis)
        admins = svc.genesis.admin_keys
        for sig in signed.signatures:  # every signature offered must be a valid admin one
            key = admins.get(sig.key_id)
            if key is None:
                raise BadSignature(f"{sig.key_id} is not an admin key of this network")
            key.verify(labels.MEMBERSHIP_ACTION, signed.payload, sig.sig)
        async with svc.append_lock:
            await svc.refresh()
            self._check_applicable(action)
            app_row_id = await self._check_draft(action)
            key_update = await svc.key_updates.check_draft(action)
            now = svc.now()
            proposal_id = action.digest.hex()
            async with svc.unit() as s:
                row = await s.get(db.Proposal, proposal_id)
                if row is not None and row.status != OPEN:
                    raise Conflict(f"proposal {proposal_id[:16]} is already {row.status}")
                if row is not None:
                    signed = SignedObject.decode(
                        row.signatures, max_size=ACTION_CONTAINER_MAX, what="stored action"
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
                        status=OPEN,
                        application_id=app_row_id,
                        created=now,
                        updated=now,
                    )
                    s.add(row)
                svc.record(
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
            valid = len(_valid_admins(svc, signed))
            seq = None
            if valid >= svc.genesis.threshold:
                seq = await self._append(signed, action, proposal_id, app_row_id, key_update)
            return ActionResult(
                proposal=proposal_id,
                action=action.action.value,
                authority=str(action.authority),
                signatures=valid,
                threshold=svc.genesis.threshold,
                status=OPEN if seq is None else APPENDED,
                seq=seq,
            )

    def _check_applicable(self, action: MembershipAction) -> None:
        """The action must apply to the current directory (else it can never be appended)."""
        state = self.service.state
        member = state.members.get(action.authority)
        before = member.status if member is not None else None
        if (before, action.action) not in TRANSITIONS:
            named = before.value if before is not None else "absent"
            raise LogError(f"cannot {action.action.value} {action.authority}: it is {named}")
        if member is not None and action.prev != member.last_action:
            raise LogError("the action does not follow the authority's latest action")
        if action.certificate is not None:  # admit too: its keys may have been certified since
            state.check_certificate(action.certificate, member, state.seq + 1)

    async def _check_draft(self, action: MembershipAction) -> str | None:
        """An admit must be exactly the draft the hub prepared for a pending application."""
        if action.action is not Action.ADMIT:
            return None
        assert action.certificate is not None  # noqa: S101 - admit carries one
        digest = action.certificate.application
        async with self.service.unit() as s:
            row = (
                await s.execute(select(db.Application).where(db.Application.digest == digest))
            ).scalar_one_or_none()
        if row is None or row.status != PENDING:
            raise Conflict("no pending application matches this admission")
        if row.draft != action.signed.payload:
            raise Conflict("an admission must sign the draft prepared for the application")
        return row.id

    async def _append(
        self,
        signed: SignedObject,
        action: MembershipAction,
        proposal_id: str,
        app_id: str | None,
        key_update: str | None = None,
    ) -> int:
        svc = self.service
        now = max(svc.now(), svc.state.time)
        seq = svc.state.seq + 1
        entry = make_entry(genesis=svc.genesis, seq=seq, prev=svc.state.head, time=now,
                           action=signed)  # fmt: skip
        try:
            async with svc.unit() as s:
                s.add(db.LogEntryRow(seq=seq, hash=entry_hash(entry), data=entry, time=now))
                await s.execute(
                    update(db.Proposal)
                    .where(db.Proposal.id == proposal_id)
                    .values(status=APPENDED, seq=seq, updated=now)
                )
                await s.execute(
                    update(db.Proposal)
                    .where(db.Proposal.authority == str(action.authority))
                    .where(db.Proposal.status == OPEN)
                    .where(db.Proposal.id != proposal_id)
                    .values(status=SUPERSEDED, updated=now)
                )
                if app_id is not None:
                    await s.execute(
                        update(db.Application)
                        .where(db.Application.id == app_id)
                        .values(status=APPROVED, updated=now)
                    )
                if key_update is not None:
                    await svc.key_updates.approve(s, key_update, now)
                svc.record(
                    s,
                    "hub",
                    "log-append",
                    str(action.authority),
                    {
                        "seq": seq,
                        "action": action.action.value,
                        "proposal": proposal_id,
                        **({"key_update": key_update} if key_update is not None else {}),
                        "signers": sorted(str(k) for k in _valid_admins(svc, signed)),
                    },
                )
        except IntegrityError:  # another hub process appended first
            await svc.refresh()
            raise Conflict("the log moved on; sign the action again if it still applies") from None
        svc.apply(entry)
        return seq

    async def proposals(self, status: str | None) -> ProposalList:
        """Actions collecting signatures (for admins to review and co-sign), newest first."""
        async with self.service.unit() as s:
            query = select(db.Proposal).order_by(db.Proposal.created.desc())
            if status is not None:
                query = query.where(db.Proposal.status == status)
            rows = (await s.execute(query.limit(LIST_MAX))).scalars().all()
        return ProposalList(
            proposals=tuple(
                Proposal(
                    proposal=r.id,
                    authority=r.authority,
                    action=r.action,
                    status=r.status,
                    seq=r.seq,
                    signed=SignedObject.decode(
                        r.signatures, max_size=ACTION_CONTAINER_MAX, what="stored action"
                    ),
                    created=r.created,
                )
                for r in rows
            )
        )


def _valid_admins(svc: HubService, signed: SignedObject) -> frozenset[KeyId]:
    try:
        return verify_quorum(signed, labels.MEMBERSHIP_ACTION, svc.genesis.admin_keys, 0)
    except GlobeError:  # pragma: no cover - threshold 0 cannot fail
        return frozenset()

"""Membership applications: submission, proof of possession, the admins' review (R4).

An application must prove possession of every key: its two signatures prove
the signing keys (checked by :meth:`protocol.membership.Application.decode`),
the answer to a KEM challenge proves the key-agreement key.  Keys that are the
hub's or an admin's, certified to a member or named by another open
application are refused.  Once possession is proven the hub prepares the draft
``admit`` action the admins sign (:mod:`hub.actions` appends it at quorum); one
admin alone may reject.  Every transition is conditional on the state just
read, so concurrent answers, rejections and approvals cannot overwrite each
other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from globe_io.errors import Conflict, NotFound
from globe_io.hubapi import (
    AWAITING_POP,
    PENDING,
    REJECTED,
    ApplicationCreated,
    ApplicationDetail,
    ApplicationList,
    ApplicationState,
    ApplicationStatus,
    ApplicationSummary,
)
from hub import db
from protocol import crypto
from protocol.errors import DecryptionFailed, MalformedError
from protocol.membership import (
    Action,
    Application,
    Certificate,
    kem_pop_challenge,
    make_action,
)

if TYPE_CHECKING:
    from hub.service import HubService, Principal

__all__ = ["LIST_MAX", "OPEN_STATES", "Applications"]

#: States in which an application may still change (and holds its authority and keys).
OPEN_STATES: Final = (AWAITING_POP, PENDING)
#: Most applications (and proposals) one admin list returns.
LIST_MAX: Final = 1000


class Applications:
    """The application workflow of one :class:`~hub.service.HubService`."""

    def __init__(self, service: HubService) -> None:
        self.service = service

    async def submit(self, data: bytes) -> ApplicationCreated:
        """Accept an application whose signatures prove possession of both signing keys.

        The answer carries a KEM challenge to be answered with :meth:`answer`
        (possession of the key-agreement key).
        """
        svc = self.service
        app = Application.decode(data, svc.genesis)
        self._check_new_keys(app)
        if app.authority in svc.state.members:
            raise Conflict(f"{app.authority} is already in the directory")
        challenge, secret = kem_pop_challenge(app.ka_key, app.digest, svc.rng)
        now = svc.now()
        app_id = svc.rng(16).hex()
        async with svc.append_lock:
            try:
                async with svc.unit() as s:
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
                    svc.record(
                        s,
                        "applicant",
                        "application-received",
                        str(app.authority),
                        {"application": app_id, "fingerprint": app.fingerprint()},
                    )
            except IntegrityError:
                raise Conflict("this application was already submitted") from None
        return ApplicationCreated(
            id=app_id, authority=str(app.authority), status=AWAITING_POP, challenge=challenge
        )

    def _check_new_keys(self, app: Application) -> None:
        for role, raw in (
            ("identity", bytes(app.identity_key)),
            ("transport", bytes(app.transport_key)),
            ("key-agreement", bytes(app.ka_key)),
        ):
            if self.service.genesis.is_reserved_key(raw):
                raise Conflict(f"the {role} key is the hub's or an admin's key (R4)")
            if raw in self.service.state.key_owner:
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

    async def answer(self, app_id: str, answer: bytes) -> ApplicationState:
        """Check the KEM proof of possession; the application then awaits the admins."""
        svc = self.service
        now = svc.now()
        async with svc.unit() as s:
            row = await self._row(s, app_id)
            if row.status != AWAITING_POP:
                raise Conflict(f"application {app_id} is {row.status}")
            if not crypto.constant_time_equal(crypto.sha256(answer), row.pop_digest):
                raise DecryptionFailed("the answer does not open the challenge")
            app = Application.decode(row.data, svc.genesis)
            cert = Certificate.from_application(
                app,
                serial=svc.rng(16).hex(),
                not_before=now,
                not_after=now + svc.certificate_days * 86400,
            )
            draft = make_action(
                genesis=svc.genesis,
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
            svc.record(s, "applicant", "possession-proven", row.authority, {"application": app_id})
        return ApplicationState(id=app_id, authority=row.authority, status=PENDING)

    async def _row(self, s: AsyncSession, app_id: str) -> db.Application:
        if len(app_id) != 32 or not all(c in "0123456789abcdef" for c in app_id):
            raise NotFound("no such application")
        row = await s.get(db.Application, app_id)
        if row is None:
            raise NotFound("no such application")
        return row

    async def status(self, app_id: str) -> ApplicationStatus:
        """Public status of an application."""
        async with self.service.unit() as s:
            row = await self._row(s, app_id)
            return ApplicationStatus(
                id=row.id, authority=row.authority, status=row.status, reason=row.reason
            )

    async def listing(self, status: str | None) -> ApplicationList:
        """Applications for the admins, newest first (at most :data:`LIST_MAX`)."""
        async with self.service.unit() as s:
            query = select(db.Application).order_by(db.Application.created.desc())
            if status is not None:
                query = query.where(db.Application.status == status)
            rows = (await s.execute(query.limit(LIST_MAX))).scalars().all()
        return ApplicationList(applications=tuple(self._summary(r) for r in rows))

    def _summary(self, row: db.Application, app: Application | None = None) -> ApplicationSummary:
        app = app or Application.decode(row.data, self.service.genesis)
        return ApplicationSummary(
            id=row.id,
            authority=row.authority,
            name=app.name,
            country=app.authority.country,
            kinds=tuple(app.kinds),
            languages=tuple(app.languages),
            status=row.status,
            reason=row.reason,
            created=row.created,
            fingerprint=app.fingerprint(),
        )

    async def get(self, app_id: str) -> ApplicationDetail:
        """Everything an admin needs to check an application before signing."""
        async with self.service.unit() as s:
            row = await self._row(s, app_id)
        app = Application.decode(row.data, self.service.genesis)
        return ApplicationDetail.of(
            self._summary(row, app), application=row.data, contact=app.contact, draft=row.draft
        )

    async def reject(self, app_id: str, reason: str, who: Principal) -> ApplicationState:
        """An admin refuses an application (no quorum needed to say no)."""
        if not reason.strip():
            raise MalformedError("a rejection needs a reason")
        svc = self.service
        now = svc.now()
        async with svc.unit() as s:
            row = await self._row(s, app_id)
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
            svc.record(
                s,
                str(who),
                "reject-application",
                row.authority,
                {"application": app_id, "reason": reason, "key": str(who.key_id)},
            )
        return ApplicationState(id=app_id, authority=row.authority, status=REJECTED)

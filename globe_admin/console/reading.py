"""What the console read from the hub's admin routes, and what it makes of it.

The admin routes answer only requests signed with an admin key, which the console opens
for one piece of work at a time (:mod:`~globe_admin.console.workstation`).  So what they
said is kept as a :class:`Reading` (the applications, the details of those awaiting a
decision, the open proposals, and when it was read), taken whenever the key is open:
when the console starts, on "Read from the hub", around each signature, and on every page
when the passphrase is pre-supplied.

Nothing in a reading is trusted.  Each time a page is shown, every application is
verified again from its exact bytes against the pinned genesis, its draft admission
checked against it (:func:`globe_admin.applications.draft_verdict`), and each proposal's
signatures verified against the genesis's admin keys (:func:`globe_admin.members.signers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from globe_admin.applications import application_record
from globe_admin.members import check_member_proposal, signing_admins
from globe_admin.session import admin_name, payload_digest
from globe_io.hubapi import (
    AWAITING_POP,
    OPEN,
    PENDING,
    ApplicationDetail,
    ApplicationSummary,
    Proposal,
)
from globe_io.hubclient import HubClient
from protocol.directory import DirectoryState
from protocol.errors import AuthError, GlobeError, StaleError, TransportError
from protocol.genesis import Genesis
from protocol.ids import KeyId
from protocol.membership import Action, Application, MembershipAction
from protocol.signed import SignedObject

__all__ = [
    "MAX_DETAILS",
    "ApplicationView",
    "ProposalView",
    "Reading",
    "application_view",
    "proposal_views",
    "read_hub",
]

#: Applications whose detail (exact bytes, draft) one reading fetches at most: those
#: awaiting a decision, newest first.
MAX_DETAILS: Final = 50


@dataclass(frozen=True, slots=True)
class Reading:
    """What the hub's admin routes answered at ``time``."""

    time: int
    applications: tuple[ApplicationSummary, ...]
    details: Mapping[str, ApplicationDetail]
    proposals: tuple[Proposal, ...]
    #: Why the hub did not serve an application's detail, by application id.
    refused: Mapping[str, str] = field(default_factory=dict)

    def summary(self, app: str) -> ApplicationSummary | None:
        """The listed application ``app``, if the hub listed it."""
        return next((a for a in self.applications if a.id == app), None)


async def read_hub(hub: HubClient, *, now: int, also: str | None = None) -> Reading:
    """Read the applications, the details of those awaiting a decision (at most
    :data:`MAX_DETAILS`) and of ``also``, and the open proposals."""
    listed = (await hub.admin_applications(None)).applications
    wanted = [a.id for a in listed if a.status in (AWAITING_POP, PENDING)][:MAX_DETAILS]
    if also is not None and also not in wanted and any(a.id == also for a in listed):
        wanted.append(also)
    details: dict[str, ApplicationDetail] = {}
    refused: dict[str, str] = {}
    for app in wanted:
        try:
            details[app] = await hub.admin_application(app)
        except (TransportError, AuthError, StaleError):
            raise  # the hub or this workstation is at fault, not the application
        except GlobeError as exc:  # one application the hub cannot serve spoils no other
            refused[app] = exc.detail
    proposals = (await hub.admin_proposals(OPEN)).proposals
    return Reading(now, listed, details, proposals, refused)


@dataclass(frozen=True, slots=True)
class ApplicationView:
    """An application as the console shows it: the hub's listing, and what the console
    verified itself.

    ``record`` is :func:`~globe_admin.applications.application_record` when the
    application's bytes verify against the pinned genesis, ``failure`` why they do not
    (or why the hub did not serve them);
    ``draft`` the draft admission when it certifies exactly the application, with the
    SHA-256 (``digest``) and the text (``canonical``) of the exact bytes an approval
    signs; ``signers`` the admins whose signatures on that draft verify.
    """

    summary: ApplicationSummary
    detail: ApplicationDetail | None
    application: Application | None
    record: dict[str, Any] | None
    failure: str | None
    draft: MembershipAction | None
    digest: str | None
    canonical: str | None
    signers: tuple[str, ...]
    signed_by_me: bool

    @property
    def approvable(self) -> bool:
        """Whether this admin may sign the admission now (it verified, its draft matches,
        it is pending, and this admin has not signed it yet)."""
        return self.draft is not None and self.summary.status == PENDING and not self.signed_by_me


def _signed(genesis: Genesis, signed: SignedObject, me: KeyId) -> tuple[tuple[str, ...], bool]:
    """The names of the admins whose signatures on ``signed`` verify, and whether ``me``
    is one of them."""
    admins = signing_admins(genesis, signed)
    return tuple(sorted(admin_name(genesis, k) for k in admins)), me in admins


def _open_signatures(
    reading: Reading, payload: bytes, genesis: Genesis, me: KeyId
) -> tuple[tuple[str, ...], bool]:
    """:func:`_signed` of the open proposal of ``payload`` (none: nobody signed yet)."""
    for p in reading.proposals:
        if p.signed.payload == payload:
            return _signed(genesis, p.signed, me)
    return (), False


def application_view(
    reading: Reading, summary: ApplicationSummary, genesis: Genesis, me: KeyId
) -> ApplicationView:
    """``summary``'s application, verified again (see :class:`ApplicationView`)."""
    detail = reading.details.get(summary.id)
    empty: dict[str, Any] = {"record": None, "failure": None, "draft": None, "digest": None,
                             "canonical": None, "signers": (), "signed_by_me": False}  # fmt: skip
    if detail is None:
        refused = reading.refused.get(summary.id)
        if refused is not None:
            empty["failure"] = f"the hub did not serve the application: {refused}"
        return ApplicationView(summary=summary, detail=None, application=None, **empty)
    try:
        application = Application.decode(detail.application, genesis)
    except GlobeError as exc:
        return ApplicationView(
            summary=summary, detail=detail, application=None, **(empty | {"failure": exc.detail})
        )
    record = application_record(summary.id, detail, application, genesis)
    if not record["draft"]["matches"] or detail.draft is None:
        return ApplicationView(
            summary=summary, detail=detail, application=application, **(empty | {"record": record})
        )
    names, mine = _open_signatures(reading, detail.draft, genesis, me)
    return ApplicationView(
        summary=summary, detail=detail, application=application, record=record, failure=None,
        draft=MembershipAction.from_signed(SignedObject(detail.draft, ()), genesis),
        digest=payload_digest(detail.draft), canonical=detail.draft.decode("utf-8"),
        signers=names, signed_by_me=mine,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProposalView:
    """An open proposal as the console shows it.

    ``action`` is ``None`` (and ``failure`` says why) when its payload does not decode;
    ``signers`` are the admins whose signatures verify, ``needed`` how many more the
    genesis quorum asks.  ``application`` is the application an admission approves (its
    approval is the co-signature); ``refusal`` why this admin may not co-sign a
    suspension, reinstatement or revocation now (:func:`check_member_proposal`).
    """

    proposal: Proposal
    action: MembershipAction | None
    failure: str | None
    signers: tuple[str, ...]
    signed_by_me: bool
    needed: int
    digest: str
    application: ApplicationView | None
    refusal: str | None

    @property
    def cosignable(self) -> bool:
        """Whether the console offers this admin a co-signature form for it here."""
        return (
            self.action is not None
            and self.action.action in (Action.SUSPEND, Action.REINSTATE, Action.REVOKE)
            and self.refusal is None
            and not self.signed_by_me
        )


def proposal_views(
    reading: Reading, state: DirectoryState, views: list[ApplicationView], me: KeyId
) -> list[ProposalView]:
    """The open proposals of ``reading``, each checked against the verified log ``state``
    and the verified applications ``views``."""
    genesis = state.genesis
    by_digest = {v.application.digest: v for v in views if v.application is not None}
    out = []
    for p in reading.proposals:
        names, mine = _signed(genesis, p.signed, me)
        base: dict[str, Any] = {
            "proposal": p, "signers": names, "signed_by_me": mine,
            "needed": max(genesis.threshold - len(names), 0),
            "digest": payload_digest(p.signed.payload),
        }  # fmt: skip
        try:
            action = MembershipAction.from_signed(p.signed, genesis)
        except GlobeError as exc:
            out.append(ProposalView(action=None, failure=exc.detail, application=None,
                                    refusal=None, **base))  # fmt: skip
            continue
        application, refusal = None, None
        cert = action.certificate
        if action.action is Action.ADMIT and cert is not None and cert.application is not None:
            application = by_digest.get(cert.application)
        elif action.action is not Action.UPDATE_KEYS:
            try:
                check_member_proposal(state, action)
            except GlobeError as exc:
                refusal = exc.detail
        out.append(ProposalView(action=action, failure=None, application=application,
                                refusal=refusal, **base))  # fmt: skip
    return out

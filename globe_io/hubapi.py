"""The hub API's JSON answers as typed values (``hub/openapi.py`` documents each one).

The hub's service, router and blob store build these and its handlers answer
with their :meth:`~globe_io.wire.WireResult.to_json`; the hub client
(:mod:`globe_io.hubclient`) reads the same classes back with
:meth:`~globe_io.wire.WireResult.from_json`, refusing any answer that is not
exactly of this shape.  They live here, below both, because the client and the
admin tool must not import the hub (tests/test_architecture.py).

Each class lists its fields in the order of its JSON keys; the field name is
the key and ``bytes`` travel as canonical base64url (:mod:`globe_io.wire`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

from globe_io.wire import WireResult, omitted_when_none, one_of
from protocol.directory import Member, MemberStatus
from protocol.dirsearch import FIELDS, MATCHES, Reason
from protocol.profile import Contact, Profile
from protocol.signed import SignedObject

__all__ = [
    "ACTION_STATES",
    "APPENDED",
    "APPLICATION_STATES",
    "APPROVED",
    "AWAITING_POP",
    "BATCH_MAX_BODY",
    "BATCH_MAX_ITEMS",
    "KEY_ROLES",
    "OPEN",
    "PENDING",
    "PROPOSAL_STATES",
    "REJECTED",
    "SUPERSEDED",
    "AckRefusal",
    "AckResult",
    "ActionResult",
    "ApplicationCreated",
    "ApplicationDetail",
    "ApplicationList",
    "ApplicationState",
    "ApplicationStatus",
    "ApplicationSummary",
    "AuditRecord",
    "AuditRecords",
    "BlobStored",
    "ContactPoint",
    "Health",
    "KeyUpdateCreated",
    "KeyUpdateDetail",
    "KeyUpdateList",
    "KeyUpdateState",
    "KeyUpdateStatus",
    "KeyUpdateSummary",
    "LogPage",
    "MailboxItem",
    "MailboxPage",
    "MatchReason",
    "MemberProfile",
    "MemberSummary",
    "PrekeyStored",
    "Prekeys",
    "ProfilePublished",
    "Proposal",
    "ProposalList",
    "Readiness",
    "SearchResults",
    "Submission",
    "Submissions",
]

#: Envelopes in one ``POST /v1/messages/batch`` (PROTOCOL.md §10.6), and the cap on its body
#: (the JSON of its base64url envelopes): what both the hub and its clients hold to.
BATCH_MAX_ITEMS: Final = 64
BATCH_MAX_BODY: Final = 8 * 1024 * 1024

#: An application's states, in the order it moves through them (docs/OPERATIONS.md §6):
#: its key-agreement key to prove, then the admins to decide.
AWAITING_POP: Final = "awaiting-pop"
PENDING: Final = "pending"
APPROVED: Final = "approved"
REJECTED: Final = "rejected"
APPLICATION_STATES: Final = (AWAITING_POP, PENDING, APPROVED, REJECTED)
#: The roles of a member's keys, in the order a key update names those it replaces.
KEY_ROLES: Final = ("identity", "transport", "key-agreement")
#: A proposal's states: collecting signatures, appended to the log, or overtaken by
#: another action on the same authority that was appended first.
OPEN: Final = "open"
APPENDED: Final = "appended"
SUPERSEDED: Final = "superseded"
PROPOSAL_STATES: Final = (OPEN, APPENDED, SUPERSEDED)
#: What signing an action did: it still collects signatures, or the quorum appended it.
ACTION_STATES: Final = (OPEN, APPENDED)


# --- operations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Health(WireResult):
    """Liveness."""

    status: str = one_of(("ok",), default="ok")


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness(WireResult):
    """Readiness: the database answers and the directory is verified."""

    status: str = one_of(("ready",), default="ready")
    seq: int


# --- applications ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationCreated(WireResult):
    """An accepted application and the KEM challenge proving its key-agreement key."""

    id: str
    authority: str
    status: str = one_of((AWAITING_POP,), default=AWAITING_POP)
    challenge: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationStatus(WireResult):
    """Public status of an application."""

    id: str
    authority: str
    status: str = one_of(APPLICATION_STATES)
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationState(WireResult):
    """An application after a transition (proof accepted, or rejected)."""

    id: str
    authority: str
    status: str = one_of((PENDING, REJECTED))


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationSummary(WireResult):
    """An application as the admins see it in a list."""

    id: str
    authority: str
    name: str
    country: str
    kinds: tuple[str, ...]
    languages: tuple[str, ...]
    status: str = one_of(APPLICATION_STATES)
    reason: str | None
    created: int
    fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationDetail(ApplicationSummary):
    """Everything an admin needs to check an application before signing its admission.

    ``application`` is the exact application container; ``draft`` the exact
    payload of the ``admit`` action the hub prepared once possession was proven
    (``None`` before).
    """

    application: bytes
    contact: str
    draft: bytes | None

    @classmethod
    def of(
        cls, summary: ApplicationSummary, *, application: bytes, contact: str, draft: bytes | None
    ) -> ApplicationDetail:
        """``summary`` with the application's bytes, contact and draft admission."""
        same = {f.name: getattr(summary, f.name) for f in fields(ApplicationSummary)}
        return cls(**same, application=application, contact=contact, draft=draft)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationList(WireResult):
    """Applications, newest first."""

    applications: tuple[ApplicationSummary, ...]


# --- key updates (PROTOCOL.md §6.8): the same states as an application ------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdateCreated(WireResult):
    """An accepted key-update request and the KEM challenge proving its key-agreement key.

    ``id`` is the first half of the request's digest, in hex: the member knows it
    without the answer.
    """

    id: str
    authority: str
    status: str = one_of((AWAITING_POP,), default=AWAITING_POP)
    replaced: tuple[str, ...]
    fingerprint: str
    challenge: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdateStatus(WireResult):
    """Public status of a key-update request (``reason`` once rejected)."""

    id: str
    authority: str
    status: str = one_of(APPLICATION_STATES)
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdateState(WireResult):
    """A key-update request after a transition (proof accepted, or rejected)."""

    id: str
    authority: str
    status: str = one_of((PENDING, REJECTED))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdateSummary(WireResult):
    """A key-update request as the admins see it in a list: the roles whose key it
    replaces and the authority fingerprint of the keys it asks for."""

    id: str
    authority: str
    replaced: tuple[str, ...]
    status: str = one_of(APPLICATION_STATES)
    reason: str | None
    created: int
    fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdateDetail(KeyUpdateSummary):
    """Everything an admin needs to check a key update before signing it.

    ``request`` is the exact request container; ``draft`` the exact payload of the
    ``update-keys`` the hub prepared once possession was proven (``None`` before).
    """

    request: bytes
    draft: bytes | None

    @classmethod
    def of(
        cls, summary: KeyUpdateSummary, *, request: bytes, draft: bytes | None
    ) -> KeyUpdateDetail:
        """``summary`` with the request's bytes and the draft action."""
        same = {f.name: getattr(summary, f.name) for f in fields(KeyUpdateSummary)}
        return cls(**same, request=request, draft=draft)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUpdateList(WireResult):
    """Key-update requests, newest first."""

    key_updates: tuple[KeyUpdateSummary, ...]


# --- membership actions ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult(WireResult):
    """The state of a membership action after adding signatures.

    ``signatures`` counts the distinct admin signatures that verify; ``seq`` is
    the log position once the quorum appended it (absent before).
    """

    proposal: str
    action: str
    authority: str
    signatures: int
    threshold: int
    status: str = one_of(ACTION_STATES)
    seq: int | None = omitted_when_none()

    @property
    def appended(self) -> bool:
        """Whether the quorum was reached and the action appended to the log."""
        return self.status == APPENDED


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal(WireResult):
    """A membership action collecting admin signatures (``seq`` once appended)."""

    proposal: str
    authority: str
    action: str
    status: str = one_of(PROPOSAL_STATES)
    seq: int | None
    signed: SignedObject
    created: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProposalList(WireResult):
    """Proposals, newest first."""

    proposals: tuple[Proposal, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord(WireResult):
    """One audit record; ``detail`` is the action's own JSON object."""

    id: int
    time: int
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecords(WireResult):
    """Audit records with an id greater than the cursor, oldest first."""

    records: tuple[AuditRecord, ...]


# --- directory ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LogPage(WireResult):
    """One page of the membership log: exact entry bytes and the cursor of the next page.

    ``next`` is the ``seq`` of the last entry here if more follow, else ``None``.
    The entries are unverified: the caller checks them against its pinned genesis.
    """

    entries: tuple[bytes, ...]
    next: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactPoint(WireResult):
    """A contact point of a member's profile (PROTOCOL.md §6.7): a role, never a person."""

    role: str
    label: str | None = omitted_when_none()
    hours: str | None = omitted_when_none()
    languages: tuple[str, ...] = ()
    email: str | None = omitted_when_none()
    phone: str | None = omitted_when_none()

    @classmethod
    def of(cls, c: Contact) -> ContactPoint:
        """The contact as it travels."""
        return cls(role=c.role, label=c.label, hours=c.hours, languages=c.languages,
                   email=c.email, phone=c.phone)  # fmt: skip

    def contact(self) -> Contact:
        """The protocol's contact."""
        return Contact(role=self.role, label=self.label, hours=self.hours,
                       languages=self.languages, email=self.email, phone=self.phone)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberProfile(WireResult):
    """A member's current self-published profile, verified from the log.

    ``seq`` is the profile's own sequence number, ``published`` the time of the log
    entry that published it.
    """

    seq: int
    published: int
    offences: tuple[str, ...]
    time_zone: str | None = omitted_when_none()
    contacts: tuple[ContactPoint, ...]
    note: str | None = omitted_when_none()

    @classmethod
    def of(cls, profile: Profile, published: int) -> MemberProfile:
        """The profile as it travels."""
        return cls(
            seq=profile.seq, published=published, offences=profile.offences,
            time_zone=profile.time_zone,
            contacts=tuple(ContactPoint.of(c) for c in profile.contacts), note=profile.note,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchReason(WireResult):
    """Why a member matched a search: which field, the value that matched and how.

    ``language`` names the language of a country name that matched.
    """

    field: str = one_of(FIELDS)
    value: str
    match: str = one_of(MATCHES)
    language: str | None = omitted_when_none()

    @classmethod
    def of(cls, r: Reason) -> MatchReason:
        """The reason as it travels."""
        return cls(field=r.field, value=r.value, match=r.match, language=r.language)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberSummary(WireResult):
    """A directory entry (``endpoint`` if certified; ``reason`` for an inactive member;
    ``profile`` if the member published one; ``reasons`` in a ranked search)."""

    authority: str
    name: str
    country: str
    kinds: tuple[str, ...]
    languages: tuple[str, ...]
    status: str
    identity_key: str
    fingerprint: str
    not_after: int
    endpoint: str | None = omitted_when_none()
    reason: str | None = omitted_when_none()
    profile: MemberProfile | None = omitted_when_none()
    reasons: tuple[MatchReason, ...] | None = omitted_when_none()

    @classmethod
    def of(cls, m: Member, reasons: tuple[Reason, ...] | None = None) -> MemberSummary:
        """A verified member as a directory entry."""
        c = m.certificate
        return cls(
            authority=str(m.authority), name=c.name, country=m.authority.country,
            kinds=tuple(c.kinds), languages=tuple(c.languages), status=m.status.value,
            identity_key=str(c.identity_key.key_id), fingerprint=c.fingerprint(),
            not_after=c.not_after, endpoint=c.endpoint,
            reason=m.reason if m.status is not MemberStatus.ACTIVE else None,
            profile=None if m.profile is None else MemberProfile.of(m.profile, m.profile_time),
            reasons=None if reasons is None else tuple(MatchReason.of(r) for r in reasons),
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResults(WireResult):
    """Members matching every filter: ranked when a country or text was given, each with
    its reasons; otherwise sorted by authority id."""

    results: tuple[MemberSummary, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfilePublished(WireResult):
    """A member's profile, appended to the membership log at ``entry``."""

    authority: str
    seq: int
    entry: int
    time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PrekeyStored(WireResult):
    """The stored prekey."""

    authority: str
    key_id: str
    not_after: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Prekeys(WireResult):
    """A member's current signed prekeys (exact containers, unverified), newest first."""

    authority: str
    prekeys: tuple[bytes, ...]


# --- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailboxItem(WireResult):
    """One item of a member's mailbox: its cursor, its kind and its exact bytes.

    ``kind`` is ``"envelope"`` (``data`` is the envelope), ``"receipt"`` (a
    recipient's signed delivery receipt) or ``"non-delivery"`` (hub evidence);
    ``data`` is unverified: the caller checks it against its pinned genesis.
    """

    cursor: int
    kind: str
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxPage(WireResult):
    """Items after a cursor, oldest first, and the cursor to pass for the next page."""

    items: tuple[MailboxItem, ...]
    cursor: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AckRefusal(WireResult):
    """A receipt that released nothing: the problem type and its detail."""

    type: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AckResult(WireResult):
    """What an acknowledgement did: envelopes released (message ids, in receipt order),
    receipts refused, notices dropped."""

    released: tuple[str, ...]
    refused: tuple[AckRefusal, ...]
    notices: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobStored(WireResult):
    """A stored attachment blob: its id, size and the SHA-256 of its ciphertext."""

    id: str
    size: int
    sha256: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission(WireResult):
    """One envelope of ``POST /v1/messages/batch``, answered as ``POST /v1/messages`` would
    answer it alone (PROTOCOL.md §10.6).

    ``status`` 201 (accepted now) or 200 (an exact resubmission): ``evidence`` is the
    hub's ``accepted`` evidence.  Any other status is a refusal: ``type`` and ``detail``
    are its RFC 9457 problem's, ``evidence`` the hub's ``rejected`` evidence when the
    single route would carry it, ``retry_after`` the seconds to wait when it is retryable.
    Evidence is unverified: the caller checks it against its pinned genesis.
    """

    status: int
    evidence: bytes | None = omitted_when_none()
    type: str | None = omitted_when_none()
    detail: str | None = omitted_when_none()
    retry_after: int | None = omitted_when_none()


@dataclass(frozen=True, slots=True, kw_only=True)
class Submissions(WireResult):
    """The answer to ``POST /v1/messages/batch``: one result per envelope, in request order."""

    results: tuple[Submission, ...]

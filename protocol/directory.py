"""The verified directory: membership state rebuilt from the log (R1, R2; PROTOCOL.md §6.5).

:func:`verify_log` replays the hash-chained membership log from the pinned
genesis, checks every action's admin quorum and every state transition, and
returns a :class:`DirectoryState`.  The hub is never trusted: a member row
it invents, an action it alters or replays, an entry it drops or reorders,
all fail here.

Transitions (one table, :data:`TRANSITIONS`)::

    (absent)  --admit-->        active
    active    --update-keys-->  active        suspended --update-keys--> suspended
    active    --suspend-->      suspended     suspended --reinstate-->   active
    active    --revoke-->       revoked       suspended --revoke-->      revoked

``revoked`` is final.  Each action names the digest of the previous action on
its authority (``prev``); an action whose ``prev`` is not the authority's
latest is refused, so no action can be replayed or reordered.

An identity key replaced by an ``update-keys`` signs only what is dated before its
``retired_at`` (:meth:`DirectoryState.identity_key`): the time of that entry, or of the
member's suspension when it was replaced while suspended (the compromise procedure,
PROTOCOL.md §6.8).

A *profile entry* (PROTOCOL.md §6.7) changes no status: it replaces an active
member's self-published profile when its identity key signed it and its ``seq``
follows the current profile's (:meth:`DirectoryState.check_profile`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from protocol import labels
from protocol.errors import (
    ChainBroken,
    ForkDetected,
    LogError,
    MemberNotActive,
    NotCertified,
    ReplayError,
    RollbackDetected,
    UnknownMember,
    UsageError,
)
from protocol.fastlog import decode_entry
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId
from protocol.keys import VerifyKey
from protocol.membership import Action, Certificate, Checkpoint, LogEntry
from protocol.profile import Profile, ProfileEntry
from protocol.signed import verify_quorum

__all__ = [
    "TRANSITIONS",
    "DirectoryState",
    "HeadRelation",
    "Member",
    "MemberStatus",
    "role_keys",
    "verify_log",
]


class MemberStatus(Enum):
    """A member's state in the directory."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


#: (status before or None for absent, action) -> status after.  Everything else is refused.
TRANSITIONS: Final[dict[tuple[MemberStatus | None, Action], MemberStatus]] = {
    (None, Action.ADMIT): MemberStatus.ACTIVE,
    (MemberStatus.ACTIVE, Action.UPDATE_KEYS): MemberStatus.ACTIVE,
    (MemberStatus.SUSPENDED, Action.UPDATE_KEYS): MemberStatus.SUSPENDED,
    (MemberStatus.ACTIVE, Action.SUSPEND): MemberStatus.SUSPENDED,
    (MemberStatus.SUSPENDED, Action.REINSTATE): MemberStatus.ACTIVE,
    (MemberStatus.ACTIVE, Action.REVOKE): MemberStatus.REVOKED,
    (MemberStatus.SUSPENDED, Action.REVOKE): MemberStatus.REVOKED,
}


class HeadRelation(Enum):
    """How another party's view of the log relates to ours."""

    SAME = "same"
    PEER_BEHIND = "peer-behind"  # a prefix of ours: they have not synced yet
    PEER_AHEAD = "peer-ahead"  # longer than ours: we must sync before judging
    FORK = "fork"  # same position, different hash: equivocation


@dataclass(slots=True)
class Member:
    """One authority as the log describes it."""

    authority: AuthorityId
    status: MemberStatus
    certificate: Certificate
    last_action: bytes
    admitted_seq: int
    updated_seq: int
    reason: str | None = None
    #: Every identity key ever certified for the authority, so that receipts and
    #: other evidence signed before a key rotation stay verifiable.
    identity_keys: dict[KeyId, VerifyKey] = field(default_factory=dict)
    #: When each replaced identity key stopped being trusted: evidence it signs must be
    #: dated before that.  The time of the entry that replaced it, or, for a key replaced
    #: while the member was suspended, the time of the suspension (PROTOCOL.md §6.5).
    retired_at: dict[KeyId, int] = field(default_factory=dict)
    #: The time of the entry that suspended the member, while it is suspended.
    suspended_at: int | None = None
    #: The member's current self-published profile (PROTOCOL.md §6.7), if any...
    profile: Profile | None = None
    #: ...and the time of the log entry that published it.
    profile_time: int = 0


@dataclass(slots=True)
class DirectoryState:
    """The membership state at log position ``seq`` (mutable; extend with :meth:`apply`)."""

    genesis: Genesis
    seq: int = 0
    heads: list[bytes] = field(default_factory=list)
    time: int = 0
    members: dict[AuthorityId, Member] = field(default_factory=dict)
    key_owner: dict[bytes, AuthorityId] = field(default_factory=dict)
    serials: set[str] = field(default_factory=set)
    _admins: dict[KeyId, VerifyKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.heads:
            self.heads = [self.genesis.digest]
        self._admins = self.genesis.admin_keys

    @property
    def head(self) -> bytes:
        """Hash of the latest entry (the genesis digest for an empty log)."""
        return self.heads[self.seq]

    # -- applying entries ----------------------------------------------------------------

    def apply(self, entry_bytes: bytes) -> LogEntry | ProfileEntry:
        """Verify one entry (an action or a profile) against this state and apply it.

        All checks run before any mutation, so on error the state is unchanged.
        """
        entry = decode_entry(entry_bytes, self.genesis)
        if entry.seq != self.seq + 1:
            raise ChainBroken(f"log entry {entry.seq}: expected sequence {self.seq + 1}")
        if entry.prev != self.head:
            raise ChainBroken(f"log entry {entry.seq}: previous hash does not match")
        if entry.time < max(self.time, self.genesis.created):
            raise ChainBroken(f"log entry {entry.seq}: time goes backwards")
        if isinstance(entry, ProfileEntry):
            publisher = self.check_profile(entry.profile, entry.time)
            self._advance(entry.seq, entry.hash, entry.time)
            publisher.profile, publisher.profile_time = entry.profile, entry.time
            return entry
        action = entry.action
        self.check_quorum(entry)
        member = self.members.get(action.authority)
        before = member.status if member is not None else None
        after = TRANSITIONS.get((before, action.action))
        if after is None:
            state = before.value if before is not None else "absent"
            raise LogError(
                f"log entry {entry.seq}: cannot {action.action.value} {action.authority} ({state})"
            )
        if member is not None and action.prev != member.last_action:
            raise LogError(f"log entry {entry.seq}: action does not follow the latest one")
        cert = action.certificate
        if cert is not None:
            self.check_certificate(cert, member, entry.seq)
        self._commit(entry, member, after)
        return entry

    def _commit(self, entry: LogEntry, member: Member | None, after: MemberStatus) -> None:
        """Mutate the state for an entry that passed every check."""
        action = entry.action
        cert = action.certificate
        self._advance(entry.seq, entry.hash, entry.time)
        if member is None:
            assert cert is not None  # noqa: S101 - guaranteed by MembershipAction
            member = Member(
                action.authority, after, cert, action.digest, entry.seq, entry.seq, action.reason
            )
            self.members[action.authority] = member
        else:
            member.status = after
            member.last_action = action.digest
            member.updated_seq = entry.seq
            if action.reason is not None:
                member.reason = action.reason
            if action.action is Action.SUSPEND:
                member.suspended_at = entry.time
            elif after is not MemberStatus.SUSPENDED:
                member.suspended_at = None
        if cert is not None:
            old_id = member.certificate.identity_key.key_id
            if old_id != cert.identity_key.key_id:
                # A key replaced during a suspension is trusted only until the suspension:
                # suspending first is how the admins stop a stolen key (PROTOCOL.md §6.8).
                suspended = member.suspended_at
                member.retired_at[old_id] = entry.time if suspended is None else suspended
            member.certificate = cert
            member.identity_keys[cert.identity_key.key_id] = cert.identity_key
            self.serials.add(cert.serial)
            for raw in (bytes(cert.identity_key), bytes(cert.transport_key), cert.ka_key_raw):
                self.key_owner[raw] = action.authority

    def _advance(self, seq: int, entry_hash: bytes, time: int) -> None:
        self.seq = seq
        self.heads.append(entry_hash)
        self.time = time

    def check_profile(self, profile: Profile, now: int) -> Member:
        """The member a profile updates, if the profile may apply at ``now`` (§6.7).

        In this order: the member exists (:class:`UnknownMember`), is active
        (:class:`MemberNotActive`) with a certificate valid at ``now``; the profile is
        signed by its current identity key alone (:class:`NotCertified` for another
        key, :class:`BadSignature` for a bad signature); and its ``seq`` is greater
        than the current profile's (:class:`ReplayError`).
        """
        member = self.active_member(profile.authority, now)
        profile.verify(member.certificate.identity_key)
        current = member.profile.seq if member.profile is not None else 0
        if profile.seq <= current:
            raise ReplayError(
                f"profile {profile.seq} of {profile.authority} does not follow profile {current}"
            )
        return member

    def check_certificate(self, cert: Certificate, member: Member | None, seq: int) -> None:
        """Refuse a certificate whose serial or keys cannot be certified at ``seq`` (R4)."""
        if cert.serial in self.serials:
            raise LogError(f"log entry {seq}: certificate serial reused")
        self.check_new_keys(role_keys(cert), member, f"log entry {seq}")

    def check_new_keys(self, new: dict[str, bytes], member: Member | None, what: str) -> None:
        """Refuse keys (role -> raw bytes) that cannot be certified for ``member`` (R3, R4).

        A key is certified once, for one authority and one role: it may stay in that
        role across an update-keys, never move or come back; and no member key is the
        hub's or an admin's.  :class:`LogError` naming ``what`` otherwise.
        """
        current = role_keys(member.certificate) if member is not None else {}
        for role, raw in new.items():
            if self.genesis.is_reserved_key(raw):
                raise LogError(f"{what}: a member key equals the hub's or an admin's")
            if raw in self.key_owner and current.get(role) != raw:
                raise LogError(f"{what}: {role} key already certified (R4)")

    def check_quorum(self, entry: LogEntry) -> None:
        """The entry's action carries ``k`` valid distinct admin signatures (R1)."""
        verify_quorum(
            entry.action.signed, labels.MEMBERSHIP_ACTION, self._admins, self.genesis.threshold
        )

    def extend(self, entries: Iterable[bytes]) -> None:
        """Apply entries in order; on error the state holds the verified prefix."""
        for raw in entries:
            self.apply(raw)

    # -- lookups ---------------------------------------------------------------------------

    def member(self, authority: AuthorityId) -> Member:
        """The member, whatever its status; :class:`UnknownMember` if absent."""
        member = self.members.get(authority)
        if member is None:
            raise UnknownMember(f"{authority} is not a member")
        return member

    def active_member(self, authority: AuthorityId, now: int) -> Member:
        """The member if it is active and its certificate valid at ``now``."""
        member = self.member(authority)
        if member.status is not MemberStatus.ACTIVE:
            raise MemberNotActive(f"{authority} is {member.status.value}")
        member.certificate.check_valid_at(now)
        return member

    def identity_key(
        self, authority: AuthorityId, key_id: KeyId, now: int, *, signed_at: int | None = None
    ) -> VerifyKey:
        """The identity key ``key_id`` of a member active at ``now``, for a signature dated
        ``signed_at`` (default ``now``): its current identity key, or one it was certified
        with that was retired after ``signed_at`` (:attr:`Member.retired_at`).
        """
        member = self.active_member(authority, now)
        key = member.certificate.identity_key
        if key.key_id == key_id:
            return key
        retired = member.retired_at.get(key_id)
        if retired is not None and (now if signed_at is None else signed_at) < retired:
            return member.identity_keys[key_id]
        raise NotCertified(f"{key_id} is not the certified identity key of {authority}")

    def search(
        self,
        *,
        country: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        text: str | None = None,
        include_inactive: bool = False,
    ) -> list[Member]:
        """Members matching every given filter, sorted by authority id."""
        needle = _fold(text) if text else None
        out: list[Member] = []
        for aid in sorted(self.members, key=str):
            m = self.members[aid]
            cert = m.certificate
            if not include_inactive and m.status is not MemberStatus.ACTIVE:
                continue
            if country is not None and aid.country != country:
                continue
            if kind is not None and kind not in cert.kinds:
                continue
            if language is not None and language not in cert.languages:
                continue
            if needle is not None and needle not in _fold(f"{aid} {cert.name}"):
                continue
            out.append(m)
        return out

    # -- heads: rollback and fork detection ----------------------------------------------------

    def relation(self, seq: int, head: bytes) -> HeadRelation:
        """Compare another party's ``(seq, head)`` with this log."""
        if seq < 0:
            raise UsageError("a log position is not negative")
        if seq > self.seq:
            return HeadRelation.PEER_AHEAD
        if self.heads[seq] != head:
            return HeadRelation.FORK
        return HeadRelation.SAME if seq == self.seq else HeadRelation.PEER_BEHIND

    def check_trusted(self, seq: int, head: bytes) -> None:
        """Refuse this state if it rolls back or forks a head trusted earlier."""
        if seq < 0:
            raise UsageError("a log position is not negative")
        if seq > self.seq:
            raise RollbackDetected(f"log has {self.seq} entries; {seq} were trusted before")
        if self.heads[seq] != head:
            raise ForkDetected(f"entry {seq} differs from the head trusted before")

    def check_checkpoint(self, checkpoint: Checkpoint) -> HeadRelation:
        """Compare a verified hub checkpoint; :class:`ForkDetected` on equivocation."""
        relation = self.relation(checkpoint.seq, checkpoint.head)
        if relation is HeadRelation.FORK:
            raise ForkDetected(f"hub checkpoint at {checkpoint.seq} contradicts the log")
        return relation


def role_keys(cert: Certificate) -> dict[str, bytes]:
    """A certificate's keys by role (``identity``, ``transport``, ``key-agreement``)."""
    return {
        "identity": bytes(cert.identity_key),
        "transport": bytes(cert.transport_key),
        "key-agreement": cert.ka_key_raw,
    }


_FOLD_RE: Final = re.compile(r"\s+")


def _fold(text: str) -> str:
    return _FOLD_RE.sub(" ", text.casefold()).strip()


def verify_log(
    genesis: Genesis,
    entries: Iterable[bytes],
    *,
    trusted: tuple[int, bytes] | None = None,
) -> DirectoryState:
    """Verify a whole log from genesis; optionally refuse rollback/fork of ``trusted``."""
    state = DirectoryState(genesis)
    state.extend(entries)
    if trusted is not None:
        state.check_trusted(*trusted)
    return state

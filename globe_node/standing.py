"""This node's own standing in the verified directory, said in words an operator acts on.

A suspended or revoked node is refused by the hub and by every peer: each
authenticated request it makes fails.  Rather than logging each refusal ("request
authentication failed" every sync pass), the node reads what happened from its own
verified log, the one source it trusts (R2), and says it once: "this node (FR-PNF)
was revoked at log entry 8 (reason: ...)".  While it is not active it stops the
requests that can only fail (prekey publication, mailbox pulls), keeps syncing the
directory on a slower schedule (a suspension may be lifted), records an alert and
reports the standing in ``globe-node status`` (docs/OPERATIONS.md §"Troubleshooting").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.directory import DirectoryState, MemberStatus
from protocol.ids import AuthorityId

__all__ = ["INACTIVE_SYNC", "Standing", "standing_of"]

#: Seconds between directory syncs while this node is suspended or revoked (at least).
INACTIVE_SYNC: Final = 600.0
_SEE: Final = "see docs/OPERATIONS.md, 'A suspended or revoked node'"


@dataclass(frozen=True, slots=True)
class Standing:
    """This node's membership: its status, and the log entry and reason that set it."""

    authority: AuthorityId
    status: str  # active | suspended | revoked | not admitted
    seq: int | None = None
    reason: str | None = None

    @property
    def active(self) -> bool:
        """Whether the node may send and receive."""
        return self.status == MemberStatus.ACTIVE.value

    @property
    def alert_kind(self) -> str | None:
        """The alert recorded for this standing (None: nothing to alert on)."""
        if self.status in (MemberStatus.SUSPENDED.value, MemberStatus.REVOKED.value):
            return f"membership-{self.status}"
        return None

    def explain(self) -> str | None:
        """One line saying what happened and what follows (None when active or not admitted)."""
        if self.alert_kind is None:
            return None
        why = f" (reason: {self.reason})" if self.reason else ""
        head = f"this node ({self.authority}) was {self.status} at log entry {self.seq}{why}"
        if self.status == MemberStatus.REVOKED.value:
            return f"{head}: it will not send or receive again; revocation is final; {_SEE}"
        return f"{head}: it will not send or receive until the admins reinstate it; {_SEE}"


def standing_of(state: DirectoryState, me: AuthorityId) -> Standing:
    """This node's standing in ``state``."""
    member = state.members.get(me)
    if member is None:
        return Standing(me, "not admitted")
    return Standing(me, member.status.value, member.updated_seq, member.reason)

"""Members' self-published profiles: checked as every node will, then appended to the log.

A member publishes its profile (docs/PROTOCOL.md §6.7) with a request signed by its
transport key; the profile itself is signed by its identity key.  The hub decides
nothing a node does not check again: it applies the same
:meth:`~protocol.directory.DirectoryState.check_profile` every node runs when the
entry reaches it (active member, current identity key, a ``seq`` after the current
profile's), appends the profile entry in one unit of work with its audit record,
and answers with the entry's position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from globe_io.errors import Conflict
from globe_io.hubapi import ProfilePublished
from hub import db
from protocol.errors import MalformedError
from protocol.membership import entry_hash
from protocol.profile import Profile, make_profile_entry

if TYPE_CHECKING:
    from hub.service import HubService, Principal

__all__ = ["Profiles"]


class Profiles:
    """Profile submissions of one :class:`~hub.service.HubService`."""

    def __init__(self, service: HubService) -> None:
        self.service = service

    async def submit(self, container: bytes, who: Principal) -> ProfilePublished:
        """Verify a member's signed profile and append it to the log."""
        svc = self.service
        assert who.authority is not None  # noqa: S101 - the route requires a member
        profile = Profile.decode(container, svc.genesis)
        if profile.authority != who.authority:
            raise MalformedError(
                f"profile: names {profile.authority}, not the authenticated {who.authority}"
            )
        async with svc.append_lock:
            await svc.refresh()
            now = max(svc.now(), svc.state.time)
            svc.state.check_profile(profile, now)
            seq = svc.state.seq + 1
            entry = make_profile_entry(
                genesis=svc.genesis, seq=seq, prev=svc.state.head, time=now, profile=profile.signed
            )
            try:
                async with svc.unit() as s:
                    s.add(db.LogEntryRow(seq=seq, hash=entry_hash(entry), data=entry, time=now))
                    svc.record(
                        s, str(who), "profile", str(who.authority),
                        {"seq": seq, "profile": profile.seq, "digest": profile.digest.hex()},
                    )  # fmt: skip
            except IntegrityError:  # another hub process appended first
                await svc.refresh()
                raise Conflict("the log moved on; publish the profile again") from None
            svc.apply(entry)
        return ProfilePublished(authority=str(who.authority), seq=profile.seq, entry=seq, time=now)

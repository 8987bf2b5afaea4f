"""The node's verified copy of the membership log (R1, R2).

:meth:`Directory.sync` pulls log entries from the hub, verifies them from the
pinned genesis on a copy of the state, and stores them in one transaction; a
hub checkpoint that contradicts the stored log (rollback or fork) is kept as
an alert and refused.  The head's age is the time since the last hub-signed
checkpoint that agreed with the stored log; sending is refused when it
exceeds ``directory_max_age``.  Peers' heads ahead of this one are judged
after each successful sync (:mod:`globe_node.peerheads`).

Search runs over the verified state only (:mod:`protocol.dirsearch`), never asks the
hub.  The node publishes its own profile (PROTOCOL.md §6.7) by signing it with its
identity key, checking it as every node will, handing it to the hub to append, and
syncing: what the node shows as its profile is what its verified log says.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Protocol

from globe_io.hubapi import ProfilePublished
from globe_node.alerts import Alerts
from globe_node.context import NodeContext
from globe_node.errors import DirectoryStale
from globe_node.peerheads import PeerHeads
from protocol import canonical
from protocol.directory import DirectoryState, HeadRelation, Member, MemberStatus
from protocol.dirsearch import Hit, Query
from protocol.dirsearch import search as search_directory
from protocol.errors import ForkDetected, MalformedError, ProtocolError, RollbackDetected
from protocol.ids import AuthorityId, KeyId
from protocol.membership import Checkpoint
from protocol.profile import Contact, Profile, make_profile

__all__ = ["Directory", "LogSource"]


class LogSource(Protocol):
    """Where log entries and checkpoints come from (the hub client, or a test double)."""

    async def log_entries(self, since: int = 0) -> list[bytes]:
        """Entries after ``since``, exact bytes."""
        ...  # pragma: no cover - a protocol

    async def checkpoint(self) -> bytes:
        """A fresh hub-signed checkpoint."""
        ...  # pragma: no cover - a protocol

    async def publish_profile(self, profile: bytes) -> ProfilePublished:
        """Hand a signed profile to the hub, which appends it to the log."""
        ...  # pragma: no cover - a protocol


class Directory:
    """The verified directory and its freshness."""

    def __init__(
        self, ctx: NodeContext, source: LogSource, alerts: Alerts, peer_heads: PeerHeads
    ) -> None:
        self.ctx = ctx
        self.source = source
        self.alerts = alerts
        self.peer_heads = peer_heads
        self.state = DirectoryState(ctx.genesis)
        #: Hub-signed time of the last checkpoint that agreed with the stored head.
        self.checkpoint_time = 0
        self.hub_reachable: bool | None = None
        self._lock = asyncio.Lock()
        self._transport_index: tuple[int, dict[KeyId, AuthorityId]] = (-1, {})

    async def load(self) -> None:
        """Rebuild the state from the stored log (verified again) and the last checkpoint."""
        self.state.extend(await self.ctx.store.load_log())
        cp = await self.ctx.store.meta("checkpoint_time")
        self.checkpoint_time = int(cp) if cp else 0
        await self.peer_heads.load()

    async def sync(self) -> int:
        """Fetch, verify and store new log entries; return how many were added.

        The stored log is only ever extended: entries that do not chain onto it
        are refused, and a hub checkpoint behind or beside it raises an alert.
        """
        async with self._lock:  # one sync at a time: the loop, the API, a send
            return await self._sync()

    async def _sync(self) -> int:
        claims = await self.peer_heads.marker()  # judged once this sync has succeeded
        entries = await self.source.log_entries(since=self.state.seq)
        cp_bytes = await self.source.checkpoint()
        self.hub_reachable = True
        start = self.state.seq
        # Verify on a copy so a bad entry leaves the live directory untouched.
        trial = copy.deepcopy(self.state) if entries else self.state
        try:
            trial.extend(entries)
            checkpoint = Checkpoint.decode(cp_bytes, self.ctx.genesis)
            relation = trial.check_checkpoint(checkpoint)
        except (ForkDetected, RollbackDetected) as exc:
            await self.alerts.record("directory-fork", exc.detail, cp_bytes)
            raise
        except ProtocolError as exc:
            await self.alerts.record("directory-invalid", exc.detail, None)
            raise
        if relation is HeadRelation.PEER_AHEAD:
            raise MalformedError("hub checkpoint is ahead of the log it served")
        meta = {}
        if relation is HeadRelation.SAME:
            meta = {
                "checkpoint_time": str(checkpoint.time),
                "checkpoint": canonical.b64e(cp_bytes),
            }
        await self.ctx.store.extend_log(start, entries, trial.heads, meta)
        self.state = trial
        if relation is HeadRelation.SAME:
            self.checkpoint_time = checkpoint.time
        elif relation is HeadRelation.PEER_BEHIND:
            await self.alerts.record(
                "directory-rollback",
                f"hub checkpoint at {checkpoint.seq} is behind the stored log at {trial.seq}",
                cp_bytes,
            )
        await self.peer_heads.check(self.state, claims)
        return len(entries)

    def age(self) -> int | None:
        """Seconds since a hub checkpoint last confirmed the stored head (None: never)."""
        if not self.checkpoint_time:
            return None
        return max(0, self.ctx.now() - self.checkpoint_time)

    def check_fresh(self) -> None:
        """Refuse to send on a head no hub checkpoint confirmed within the limit."""
        age = self.age()
        limit = self.ctx.config.directory_max_age
        if age is None or age > limit:
            shown = "never confirmed" if age is None else f"{age} s old"
            raise DirectoryStale(
                f"the directory head is {shown} (limit {limit} s):"
                " the hub must be reachable to confirm it before sending"
            )

    def member(self, authority: AuthorityId) -> Member:
        """A member of the verified directory."""
        return self.state.member(authority)

    def is_active_member(self) -> bool:
        """Whether this node is an active member."""
        m = self.state.members.get(self.ctx.me)
        return m is not None and m.status is MemberStatus.ACTIVE

    def endpoint(self, authority: AuthorityId | str) -> str | None:
        """The certified endpoint of a member, if it publishes one."""
        m = self.state.members.get(AuthorityId.parse(str(authority)))
        return None if m is None else m.certificate.endpoint

    def transport_owner(self, key_id: KeyId) -> AuthorityId | None:
        """The member whose certified transport key has this id (any status)."""
        if self._transport_index[0] != self.state.seq:
            index = {m.certificate.transport_key.key_id: a for a, m in self.state.members.items()}
            self._transport_index = (self.state.seq, index)
        return self._transport_index[1].get(key_id)

    # -- search and the node's own profile -------------------------------------------------

    def search(self, query: Query) -> list[Hit]:
        """Members of the verified directory matching ``query``, best first, with reasons."""
        return search_directory(self.state, query)

    def profile(self) -> tuple[Profile, int] | None:
        """This node's current profile and the time it was published (verified log)."""
        m = self.state.members.get(self.ctx.me)
        if m is None or m.profile is None:
            return None
        return m.profile, m.profile_time

    async def publish_profile(
        self,
        *,
        offences: tuple[str, ...],
        time_zone: str | None,
        contacts: tuple[Contact, ...],
        note: str | None,
    ) -> Profile:
        """Sign this node's profile (the next ``seq``), have the hub append it, and sync.

        The profile is checked against the verified directory first, exactly as
        every node will check it, so a refusal comes from here rather than the hub.
        """
        now = self.ctx.now()
        member = self.state.active_member(self.ctx.me, now)
        profile = make_profile(
            genesis=self.ctx.genesis, authority=self.ctx.me,
            seq=(member.profile.seq if member.profile is not None else 0) + 1,
            identity=self.ctx.keys.identity, offences=offences, time_zone=time_zone,
            contacts=contacts, note=note,
        )  # fmt: skip
        self.state.check_profile(profile, now)
        await self.source.publish_profile(profile.signed.encode())
        await self.sync()
        return profile

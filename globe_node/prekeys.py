"""Signed prekeys (PROTOCOL.md §6.6): this node's own, and the peers' it seals to.

Own prekeys are made, stored (private half sealed under the storage key) and
published before the current one runs out, and their private halves are
erased ``prekey_grace`` after they ended (forward secrecy per window, R6).
For a recipient, the newest prekey that verifies against its certified
identity key is used and remembered for :data:`PREKEY_CACHE` seconds; if the
hub cannot be reached, the remembered one while it is valid, else the
certified key-agreement key (no forward secrecy for that message; logged).

After a key update the old key-agreement key is kept here too, as a row with no signed
prekey (:mod:`globe_node.rekey`): it opens what was sealed to it, is never published, and
is erased like a prekey once its window ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from globe_io.errors import Conflict
from globe_node import db
from globe_node.context import NodeContext
from globe_node.directory import Directory
from protocol.errors import GlobeError, ProtocolError, TransportError
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId
from protocol.keys import KemPrivateKey, KemPublicKey, VerifyKey
from protocol.prekeys import MAX_PREKEY_SIZE, SignedPrekey, make_prekey
from protocol.signed import SignedObject

__all__ = ["PREKEY_CACHE", "PrekeySource", "Prekeys", "best_prekey"]

log = logging.getLogger("globe.node.prekeys")

#: Seconds a verified prekey of a peer is used before the hub is asked again.
PREKEY_CACHE: Final = 300.0


class PrekeySource(Protocol):
    """Where prekeys are published and fetched (the hub client, or a test double)."""

    async def put_prekey(self, prekey: bytes) -> object:
        """Publish one of this node's signed prekeys."""
        ...  # pragma: no cover - a protocol

    async def get_prekeys(self, authority: AuthorityId) -> list[bytes]:
        """A member's signed prekeys, unverified."""
        ...  # pragma: no cover - a protocol


def best_prekey(
    containers: Sequence[bytes],
    *,
    genesis: Genesis,
    identity: VerifyKey,
    authority: AuthorityId,
    now: int,
) -> SignedPrekey | None:
    """The valid prekey with the latest ``not_after`` among ``containers`` (others ignored)."""
    best: SignedPrekey | None = None
    for data in containers:
        try:
            pk = SignedPrekey.decode(data, genesis, identity, authority=authority)
            pk.check_valid_at(now)
        except ProtocolError:
            continue
        if best is None or pk.not_after > best.not_after:
            best = pk
    return best


def _signer(container: bytes) -> KeyId | None:
    """The key that signed a stored prekey container."""
    signed = SignedObject.decode(container, max_size=MAX_PREKEY_SIZE, what="stored prekey")
    return signed.signatures[0].key_id if signed.signatures else None


class Prekeys:
    """This node's prekeys and the peers' it seals to."""

    def __init__(self, ctx: NodeContext, hub: PrekeySource, directory: Directory) -> None:
        self.ctx = ctx
        self.hub = hub
        self.directory = directory
        self.private: dict[KeyId, KemPrivateKey] = {ctx.keys.ka.key_id: ctx.keys.ka}
        #: A peer's prekey, verified with the identity key it was certified with then (a
        #: key update makes it stale at once: PROTOCOL.md §6.8).
        self._peer: dict[AuthorityId, tuple[SignedPrekey, KeyId]] = {}
        self._fetched: dict[AuthorityId, float] = {}  # monotonic time of the fetch
        self._lock = asyncio.Lock()
        #: Awaited before a recipient's key is chosen for sealing (a pending key update
        #: checks the log first, :meth:`globe_node.rekey.KeyRotation.before_sealing`).
        self.before_seal: Callable[[], Awaitable[None]] | None = None

    async def load(self) -> None:
        """Open the stored private halves not yet erased."""
        for row in await self.ctx.store.prekeys():
            if row.private is not None:
                key = KemPrivateKey(self.ctx.cipher.open(row.private, f"prekey:{row.key_id}"))
                self.private[key.key_id] = key

    def private_key(self, key_id: KeyId) -> KemPrivateKey | None:
        """The private half for a prekey id named in an envelope, if still kept."""
        return self.private.get(key_id)

    @property
    def lock(self) -> asyncio.Lock:
        """Held while :meth:`ensure` rotates, publishes and erases (the sync loop calls it):
        hold it to change prekey rows and act on them without the loop acting first."""
        return self._lock

    async def ensure(self) -> None:
        """Publish a fresh prekey before the current one expires; erase old private halves."""
        async with self._lock:
            now = self.ctx.now()
            # A row without a signed prekey is a retired key-agreement key (rekey).
            rows = [r for r in await self.ctx.store.prekeys() if r.signed]
            rotate_before = self.ctx.config.prekey_rotate_before
            me = self.ctx.keys.identity.key_id  # prekeys an old identity key signed verify no more
            current = [
                r for r in rows if r.not_after - rotate_before > now and _signer(r.signed) == me
            ]
            if not current and self.directory.is_active_member():
                await self._rotate()
            for r in rows:
                fresh = r.private is not None and r.not_after > now and _signer(r.signed) == me
                if not r.published and fresh:
                    await self._publish(r.key_id, r.signed)
            await self.erase_expired()

    async def current(self) -> db.PrekeyRow | None:
        """The current signed prekey: of the valid ones the current identity key signed, the
        one that ends last (of two ending in the same second, the one stored last: a
        rotation's), which senders are given once the hub holds it (``None``: none, before
        the node is admitted)."""
        now = self.ctx.now()
        me = self.ctx.keys.identity.key_id
        valid = [
            r for r in await self.ctx.store.prekeys()
            if r.signed and r.not_before <= now < r.not_after and _signer(r.signed) == me
        ]  # fmt: skip
        # max() keeps the first of equals: look from the last stored
        return max(reversed(valid), key=lambda r: r.not_after, default=None)

    async def rotate(self) -> str:
        """Make, store and publish a new signed prekey now; return its key id."""
        async with self._lock:
            return await self._rotate()

    async def _rotate(self) -> str:
        ctx = self.ctx
        now = ctx.now()
        private = KemPrivateKey.generate()
        not_before, not_after = now - 60, now + ctx.config.prekey_lifetime
        signed = make_prekey(
            genesis=ctx.genesis, authority=ctx.me, identity=ctx.keys.identity,
            key=private.public_key, not_before=not_before, not_after=not_after,
        ).signed.encode()  # fmt: skip
        kid = str(private.key_id)
        await ctx.store.add_prekey(
            db.PrekeyRow(
                key_id=kid, signed=signed, private=ctx.cipher.seal(private.raw, f"prekey:{kid}"),
                not_before=not_before, not_after=not_after, published=False,
            )
        )  # fmt: skip
        self.private[private.key_id] = private
        with contextlib.suppress(TransportError):  # published by the sync loop later
            await self._publish(kid, signed)
        return kid

    async def _publish(self, key_id: str, signed: bytes) -> None:
        with contextlib.suppress(Conflict):  # published before; the answer was lost
            await self.hub.put_prekey(signed)
        await self.ctx.store.prekey_published(key_id)

    async def erase_expired(self) -> list[str]:
        """Erase private prekeys past expiry plus the grace period (forward secrecy)."""
        now = self.ctx.now()
        erased = await self.ctx.store.erase_prekeys(now - self.ctx.config.prekey_grace, now)
        for kid in erased:
            self.private.pop(KeyId.parse(kid), None)
        return erased

    async def for_recipient(self, authority: AuthorityId, now: int) -> KemPublicKey:
        """The recipient's newest valid signed prekey, else its certified KA key (§6.6)."""
        if self.before_seal is not None:
            await self.before_seal()
        member = self.directory.state.active_member(authority, now)
        cached = self._cached(authority, member.certificate.identity_key.key_id)
        if (
            cached is not None
            and self._fetched.get(authority, 0.0) + PREKEY_CACHE > self.ctx.monotonic()
            and cached.not_before <= now < cached.not_after - PREKEY_CACHE
        ):
            return cached.key  # verified recently; the hub is asked again after a while
        try:
            containers: list[bytes] | None = await self.hub.get_prekeys(authority)
        except TransportError:
            containers = None
        except GlobeError as exc:
            # The hub may know of a status change this node has not seen; only the
            # verified log decides: sync, then check again.
            log.info("hub refused the prekeys of %s (%s): syncing", authority, exc.detail)
            with contextlib.suppress(TransportError):
                await self.directory.sync()
            member = self.directory.state.active_member(authority, now)
            containers = []
        if containers is None:
            cached = self._cached(authority, member.certificate.identity_key.key_id)
            if cached is not None and cached.not_before <= now < cached.not_after:
                return cached.key
            log.warning(
                "hub unreachable and no valid prekey of %s cached: sealing to its certified"
                " key-agreement key (no forward secrecy for this message)", authority,
            )  # fmt: skip
            return member.certificate.ka_key()
        best = best_prekey(
            containers, genesis=self.ctx.genesis, identity=member.certificate.identity_key,
            authority=authority, now=now,
        )  # fmt: skip
        if best is None:
            return member.certificate.ka_key()
        self._peer[authority] = (best, member.certificate.identity_key.key_id)
        self._fetched[authority] = self.ctx.monotonic()
        return best.key

    def _cached(self, authority: AuthorityId, identity: KeyId) -> SignedPrekey | None:
        """The remembered prekey of ``authority``, if its certified identity key is still
        the one that verified it."""
        cached = self._peer.get(authority)
        return cached[0] if cached is not None and cached[1] == identity else None

"""A key update at the node: the next keys, and the switch to them (docs/PROTOCOL.md §6.8).

``globe-node keys update`` writes the next keys beside the current ones in
``keys.sealed`` and asks the hub for them (:mod:`globe_node.cli.keyupdate`).  This unit,
in the daemon:

* picks the next keys up when the file changes (:meth:`KeyRotation.reread`), so that an
  envelope a peer already seals to the new key-agreement key opens;
* switches when its verified log certifies them (:meth:`KeyRotation.check`, after every
  sync): the new identity key signs from then on, the new transport key authenticates,
  a prekey signed by the new identity key is published, and ``keys.sealed`` is written
  with the new keys as the current ones;
* keeps the old key-agreement key, sealed in the store like a prekey, until no envelope
  sealed to it can still arrive (:data:`MAX_LIFETIME` plus ``directory_max_age`` after
  the switch), when the prekeys' erasure erases it; old prekeys are erased on their own
  schedule;
* narrows the moment between the hub's append and the switch, in which what the old key
  signs no longer verifies: while an update is pending it checks the log before sealing
  (:meth:`KeyRotation.before_sealing`), and a request the hub refuses as unauthenticated
  is retried once after the switch (:class:`SwitchingHubClient`).

Envelopes the node sealed with the old identity key before the update stay valid until
they expire (§7.6 step 18), and a receipt its old key signed too late is signed anew
(:mod:`globe_node.inbox`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from typing import Final, Protocol

from globe_io.hubclient import HubClient
from globe_node import db
from globe_node.alerts import Alerts
from globe_node.audit import AuditLog
from globe_node.context import NodeContext
from globe_node.directory import Directory
from globe_node.keys import KeyFile, NodeKeys
from globe_node.prekeys import Prekeys
from globe_node.views import KeysView, KeyUpdateState, KeyUpdateView, PrekeyView
from protocol.envelope import MAX_LIFETIME
from protocol.errors import AuthError, GlobeError, TransportError
from protocol.keys import KemPrivateKey

__all__ = ["BEFORE_SEALING_EVERY", "KeyRotation", "SwitchingHubClient"]

log = logging.getLogger("globe.node.rekey")

#: While a key update is pending, the log is checked before sealing at most this often (s).
BEFORE_SEALING_EVERY: Final = 1.0


class KeyRotation:
    """The next keys of a pending key update, and the switch to them."""

    def __init__(
        self,
        ctx: NodeContext,
        *,
        key_file: KeyFile | None,
        directory: Directory,
        prekeys: Prekeys,
        hub: HubClient,
        audit: AuditLog,
        alerts: Alerts,
    ) -> None:
        self.ctx = ctx
        self.key_file = key_file
        self.directory = directory
        self.prekeys = prekeys
        self.hub = hub
        self.audit = audit
        self.alerts = alerts
        self._stamp: tuple[int, int] | None = None
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")

    @property
    def pending(self) -> bool:
        """Whether next keys wait for the log to certify them."""
        return self.ctx.keys.next is not None

    @property
    def busy(self) -> bool:
        """Whether a check or a switch is under way."""
        return self._lock.locked()

    def _hold_next(self, keys: NodeKeys) -> None:
        if keys.next is not None:  # a peer may seal to it as soon as the log certifies it
            self.prekeys.private[keys.next.ka.key_id] = keys.next.ka

    def start(self) -> None:
        """Take note of the key file as the daemon read it at start."""
        if self.key_file is not None:
            self._stamp = self.key_file.stamp()
        self._hold_next(self.ctx.keys)

    async def reread(self) -> None:
        """Take the next keys ``globe-node keys update`` wrote while the daemon runs (or
        drop those it discarded)."""
        if self.key_file is None:
            return
        stamp = self.key_file.stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        held = await asyncio.to_thread(self.key_file.load)
        current = self.ctx.keys
        if held is None:
            log.warning(
                "%s no longer opens with the passphrase the daemon started with (changed?): "
                "new keys written to it are taken at the next start", self.key_file.path,
            )  # fmt: skip
            return
        if held.with_next(None).encode() != current.with_next(None).encode():
            return  # not this daemon's current keys (switched, file not yet written)
        self.ctx.keys = current.with_next(held.next)
        self._hold_next(held)
        if held.next is not None and current.next is None:
            log.info("key update pending: the node switches when the log certifies the keys")

    async def view(self) -> KeysView:
        """This node's public key information now (``GET /api/keys``): its fingerprint and
        key ids, whether the verified log certifies them, the current signed prekey, and a
        pending key update with its state."""
        me, keys = self.ctx.me, self.ctx.keys
        member = self.directory.state.members.get(me)
        cert = None if member is None else member.certificate
        row = await self.prekeys.current()
        prekey = (
            None if row is None
            else PrekeyView(row.key_id, row.published, row.not_before, row.not_after)
        )  # fmt: skip
        nxt = keys.next
        update = None
        if nxt is not None:
            certified = cert is not None and nxt.certified_by(cert)
            state = KeyUpdateState.CERTIFIED if certified else KeyUpdateState.REQUESTED
            update = KeyUpdateView(
                nxt.created, state.value, nxt.fingerprint(me),
                str(nxt.identity.key_id), str(nxt.transport.key_id), str(nxt.ka.key_id),
            )  # fmt: skip
        return KeysView(
            str(me), keys.fingerprint(me), str(keys.identity.key_id),
            str(keys.transport.key_id), str(keys.ka.key_id),
            cert is not None and keys.certified_by(cert), prekey, update,
        )  # fmt: skip

    async def check(self) -> bool:
        """Switch to the next keys if the verified log certifies them; whether it did.

        Also says once, with an alert, when the log replaced this node's identity key by
        keys it holds neither as current nor as next (replaced from another machine).
        """
        async with self._lock:
            await self.reread()
            member = self.directory.state.members.get(self.ctx.me)
            keys = self.ctx.keys
            if member is None or keys.certified_by(member.certificate):
                return False
            if keys.next is not None and keys.next.certified_by(member.certificate):
                await self._switch(keys)
                return True
            if keys.identity.key_id not in member.retired_at:
                return False  # never certified here: not this unit's to judge
            await self.alerts.record(
                "keys-not-certified",
                f"the log certifies other keys for {self.ctx.me} (serial "
                f"{member.certificate.serial}) than this node's: its keys were replaced "
                "elsewhere; stop this node",
                None,
            )
            return False

    async def _switch(self, old: NodeKeys) -> None:
        ctx = self.ctx
        now = ctx.now()
        new = old.promoted()
        if old.ka.key_id != new.ka.key_id:
            await self._keep(old.ka, now)
        ctx.keys = new
        self.prekeys.private[new.ka.key_id] = new.ka
        self.hub.key = new.transport
        with contextlib.suppress(GlobeError):  # the sync loop publishes one later
            await self.prekeys.rotate()
        written = False
        if self.key_file is not None:
            written = await asyncio.to_thread(self.key_file.rewrite, new, replacing=old)
            if written:
                self._stamp = self.key_file.stamp()
        await self.audit.append(
            now, "node", "switch-keys",
            f"{old.identity.key_id} -> {new.identity.key_id}",
        )  # fmt: skip
        log.warning(
            "switched to the keys the log certifies: identity %s, transport %s, key agreement"
            " %s%s", new.identity.key_id, new.transport.key_id, new.ka.key_id,
            "" if written or self.key_file is None
            else "; keys.sealed is written at the next start",
        )  # fmt: skip

    async def _keep(self, ka: KemPrivateKey, now: int) -> None:
        """Keep the old key-agreement key until no envelope sealed to it can arrive."""
        kid = str(ka.key_id)
        if any(r.key_id == kid for r in await self.ctx.store.prekeys()):
            return
        until = now + MAX_LIFETIME + self.ctx.config.directory_max_age
        await self.ctx.store.add_prekey(
            db.PrekeyRow(
                key_id=kid, signed=b"", private=self.ctx.cipher.seal(ka.raw, f"prekey:{kid}"),
                not_before=now, not_after=until, published=False,
            )
        )  # fmt: skip

    async def startup(self) -> None:
        """At start, with a key update pending: check the log before anything is sent."""
        self.start()
        if self.pending:
            with contextlib.suppress(TransportError):
                await self.directory.sync()
        await self.check()

    async def before_sealing(self) -> None:
        """With a key update pending, check the log first (at most once a second): what
        the old key signs after the hub's append does not verify (§6.8)."""
        if not self.pending or self.ctx.monotonic() - self._checked_at < BEFORE_SEALING_EVERY:
            return
        self._checked_at = self.ctx.monotonic()
        with contextlib.suppress(TransportError):
            await self.directory.sync()
        await self.check()

    async def after_refusal(self) -> None:
        """The hub refused this node's transport key: with a key update pending, the log
        may certify the next keys already."""
        if self.pending and not self.busy:
            with contextlib.suppress(TransportError):
                await self.directory.sync()
            await self.check()


class _Refusals(Protocol):
    async def after_refusal(self) -> None:
        """Called when the hub refused a signed request as unauthenticated."""
        ...  # pragma: no cover - a protocol


class SwitchingHubClient(HubClient):
    """The node's hub client: a signed request refused as unauthenticated (``401
    unauthorized``) is retried once when :attr:`rotation` switched the transport key
    meanwhile, so no delivery fails for the moment the hub knew the new keys first."""

    rotation: _Refusals | None = None

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: bytes = b"",
        signed: bool = False,
        content_type: str = "application/json",
    ) -> tuple[int, bytes, str]:
        def send() -> Awaitable[tuple[int, bytes, str]]:
            return super(SwitchingHubClient, self)._exchange(
                method, path, params=params, body=body, signed=signed, content_type=content_type
            )

        key = self.key
        try:
            return await send()
        except AuthError as exc:
            if type(exc) is not AuthError or not signed or self.rotation is None:
                raise
            await self.rotation.after_refusal()
            if self.key is key:
                raise
        return await send()

"""The admin workstation the console acts for, and its admin key opened one piece of work
at a time.

The console never holds the admin key.  It knows the sealed key file, whose key it is
(checked when the console starts) and where the passphrase comes from: typed in the page
for each piece of work, or pre-supplied for automation (``--passphrase-file`` or
``$GLOBE_ADMIN_PASSPHRASE``, read again each time).  :meth:`Workstation.with_key` opens
the key, does the work with a hub client signing as the admin, and returns: nothing keeps
a reference to the key or the passphrase afterwards.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from globe_admin.session import (
    ADMIN_PASSPHRASE_ENV,
    Admin,
    WrongPassphrase,
    admin_passphrase,
    load_admin_key,
)
from globe_io.errors import CommandError
from globe_io.hubclient import HubClient
from protocol.genesis import Genesis
from protocol.ids import KeyId

__all__ = ["Workstation"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Workstation:
    """The pinned genesis, the admin key file and its owner, the hub and the passphrase's
    source: everything the console knows of its admin, and no key."""

    genesis: Genesis
    key_path: Path
    key_id: KeyId
    name: str
    hub_url: str
    timeout: float
    #: Where a pre-supplied passphrase comes from; ``None`` with :attr:`presupplied` false:
    #: the admin types it for each piece of work.
    passphrase_file: Path | None
    presupplied: bool

    @classmethod
    def of(cls, admin: Admin, key_path: Path, passphrase_file: Path | None) -> Workstation:
        """The workstation of ``admin`` (opened with :meth:`Admin.open`, which checked that
        its key is an admin key of the pinned genesis), without its key."""
        presupplied = passphrase_file is not None or bool(os.environ.get(ADMIN_PASSPHRASE_ENV))
        return cls(
            admin.genesis, key_path, admin.key.key_id, admin.name, admin.hub_url, admin.timeout,
            passphrase_file, presupplied,
        )  # fmt: skip

    def passphrase(self, typed: str | None) -> bytes:
        """The passphrase for one opening of the key: the pre-supplied one, else ``typed``."""
        if self.presupplied:
            return admin_passphrase(self.passphrase_file, what=str(self.key_path))
        if not typed:
            raise WrongPassphrase("type the passphrase of your admin key: nothing was sent")
        return typed.encode()

    async def with_key(
        self, typed: str | None, work: Callable[[Admin, HubClient], Awaitable[_T]]
    ) -> _T:
        """Open the admin key (with the pre-supplied passphrase, else ``typed``), await
        ``work`` with a hub client signing as the admin, then let the key go.

        A passphrase that does not open the key is :class:`WrongPassphrase` before anything
        is sent.  Argon2id takes a second or so: it runs in a thread, not on the loop.
        """
        key = await asyncio.to_thread(load_admin_key, self.key_path, self.passphrase(typed))
        if key.key_id != self.key_id:
            raise CommandError(
                f"{self.key_path} no longer holds the admin key of {self.name} ({self.key_id})"
            )
        admin = Admin(self.genesis, key, self.name, self.hub_url, self.timeout)
        return await admin.call(lambda hub: work(admin, hub))

    def public_hub(self) -> HubClient:
        """A client of the hub's public routes (log, checkpoint, health): no key."""
        return HubClient(self.hub_url, network=self.genesis.digest, timeout=self.timeout)

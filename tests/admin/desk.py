"""An admin's desk for the workflow tests: a real hub on loopback and the files ``globe-admin``
reads (the pinned genesis, the admins' sealed key files, a passphrase file).

The hub (:class:`hub.service.HubService` on SQLite in ``tmp_path``, served by
:func:`hub.web.create_app` on port 0) runs on the test's event loop; ``globe-admin`` runs
through its ``main`` in a worker thread (it runs its own event loop), so coverage sees it.
The hub's clock is the wall clock plus an offset a test may move: ``globe-admin`` signs its
requests with the workstation's clock, the test's own requests (an applicant, a member, an
admin using another tool) sign with the hub's.  The hub's random source lets a test choose
the leading bytes of the next application ids.  ``tamper`` edits the hub's database behind
its back, as a dishonest hub would serve it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from globe_admin.session import ADMIN_KEY_PURPOSE
from globe_io.hubapi import ActionResult, Proposal
from globe_io.hubclient import HubClient
from hub import db
from hub.service import HubService
from hub.web import create_app
from protocol import canonical, labels
from protocol.directory import DirectoryState, verify_log
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.keystore import INTERACTIVE, seal_secret
from protocol.membership import MembershipAction, kem_pop_answer, make_application
from protocol.signed import SignedObject
from tests.admin.runner import PASSPHRASE, Ran, admin_cli
from tests.support.servers import serve_app

ADMIN_NAMES = ("alice", "bob", "carol", "dave")


class WallClock:
    """The wall clock plus ``offset`` seconds (the hub's clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class IdRng:
    """Random bytes; a 16-byte draw (an application id or a serial) starts with ``prefix``."""

    def __init__(self) -> None:
        self.prefix = b""

    def __call__(self, n: int) -> bytes:
        if n == 16:
            return self.prefix + os.urandom(n - len(self.prefix))
        return os.urandom(n)


@dataclass
class Member:
    """An applicant's (later a member's) private keys and its application id."""

    authority: AuthorityId
    identity: SigningKey
    transport: SigningKey
    ka: KemPrivateKey
    app_id: str


@dataclass
class Desk:
    """A running hub and an admin workstation pinned to its genesis."""

    tmp: Path
    genesis: Genesis
    genesis_path: Path
    admins: list[SigningKey]
    keys: list[Path]
    pw: Path
    service: HubService
    clock: WallClock
    rng: IdRng
    url: str
    db_path: Path
    clients: dict[str, HubClient] = field(default_factory=dict)

    async def admin(
        self, command: str, *args: str | Path, key: int = 0, hub: str | None = None
    ) -> Ran:
        """``globe-admin COMMAND ARGS`` as admin ``key`` (0 = alice), against this hub (or
        the URL ``hub``)."""
        return await asyncio.to_thread(
            admin_cli, command, *args, "--genesis", self.genesis_path, "--key", self.keys[key],
            "--passphrase-file", self.pw, "--hub", hub or self.url,
        )  # fmt: skip

    def client(self, key: SigningKey | None = None) -> HubClient:
        """A client signing with ``key`` on the hub's clock (closed with the desk)."""
        name = str(key.key_id) if key is not None else ""
        if name not in self.clients:
            self.clients[name] = HubClient(
                self.url, network=self.genesis.digest, key=key, clock=self.clock
            )
        return self.clients[name]

    async def apply(self, authority: str, *, prove: bool = True) -> Member:
        """Submit an application (and answer its KEM challenge unless ``prove`` is false)."""
        identity, transport, ka = (
            SigningKey.generate(),
            SigningKey.generate(),
            KemPrivateKey.generate(),
        )
        aid = AuthorityId.parse(authority)
        app = make_application(
            genesis=self.genesis, authority=aid, name=f"Authority {authority}",
            kinds=["anti-corruption"], languages=["en", "fr"], contact="duty officer",
            legal_basis="UNCAC art. 36", endpoint=None, identity=identity, transport=transport,
            ka_key=ka.public_key, created=int(self.clock()),
        )  # fmt: skip
        hub = self.client()
        submitted = await hub.submit_application(app.signed.encode())
        if prove:
            challenge = canonical.b64d(submitted["challenge"], what="challenge")
            answer = kem_pop_answer(ka, app.digest, challenge)
            assert (await hub.answer_challenge(submitted["id"], answer))["status"] == "pending"
        return Member(aid, identity, transport, ka, submitted["id"])

    async def sign(self, payload: bytes, *admins: int) -> list[ActionResult]:
        """Each admin in turn signs ``payload`` and submits a one-signature container."""
        results = []
        for i in admins:
            container = SignedObject(payload, ()).with_signature(
                labels.MEMBERSHIP_ACTION, self.admins[i]
            )
            results.append(
                await self.client(self.admins[i]).admin_submit_action(container.encode())
            )
        return results

    async def admit(self, authority: str) -> Member:
        """The whole admission: application, proof of possession, the admins' quorum."""
        member = await self.apply(authority)
        draft = (await self.client(self.admins[0]).admin_application(member.app_id)).draft
        assert draft is not None
        results = await self.sign(draft, *range(self.genesis.threshold))
        assert results[-1].status == "appended", results
        return member

    async def proposals(self, status: str | None = "open") -> list[Proposal]:
        """The hub's proposals (open ones by default), newest first."""
        return list((await self.client(self.admins[0]).admin_proposals(status)).proposals)

    async def directory(self) -> DirectoryState:
        """The log as the hub serves it, verified from the genesis."""
        return verify_log(self.genesis, await self.client().log_entries())

    def decode(self, proposal: Proposal) -> MembershipAction:
        """A listed proposal's action."""
        return MembershipAction.from_signed(proposal.signed, self.genesis)

    def tamper(self, statement: str, *params: Any) -> int:
        """Run ``statement`` on the hub's database behind its back; the rows it changed."""
        with sqlite3.connect(self.db_path) as conn:
            changed = conn.execute(statement, params).rowcount
        conn.close()
        return changed


DeskFactory = Callable[..., Awaitable[Desk]]


def network(
    names: tuple[str, ...], threshold: int, created: int
) -> tuple[Genesis, list[SigningKey], SigningKey]:
    """Admins named ``names``, a hub key and the genesis the first ``threshold`` admins sign."""
    admins = [SigningKey.generate() for _ in names]
    hub_key = SigningKey.generate()
    genesis = make_genesis(
        network_id="globe-desk", name="GlobE Link admin desk",
        admins=[(n, k.verify_key) for n, k in zip(names, admins, strict=True)],
        threshold=threshold, hub_key=hub_key.verify_key, hub_url="https://hub.globe-desk.invalid",
        created=created, signers=admins[:threshold],
    )  # fmt: skip
    return genesis, admins, hub_key


async def open_desk(
    stack: AsyncExitStack,
    tmp: Path,
    *,
    admins: int = 3,
    threshold: int = 2,
    served: tuple[Genesis, SigningKey] | None = None,
    certificate_days: int = 730,
    **app_options: Any,
) -> Desk:
    """A hub and a desk in ``tmp``; ``served``: the hub serves this genesis (with its hub
    key) instead of the desk's; ``app_options`` go to :func:`create_app`."""
    clock, rng = WallClock(), IdRng()
    genesis, admin_keys, hub_key = network(
        ADMIN_NAMES[:admins], threshold, int(clock()) - 365 * 86400
    )
    hub_genesis, hub_hub_key = served if served is not None else (genesis, hub_key)
    tmp.mkdir(parents=True, exist_ok=True)
    db_path = tmp / "hub.db"
    engine = db.make_engine(f"sqlite+aiosqlite:///{db_path}")
    stack.push_async_callback(engine.dispose)
    await db.migrate(engine)
    service = HubService(genesis=hub_genesis, hub_key=hub_hub_key, engine=engine, clock=clock,
                         certificate_days=certificate_days, rng=rng)  # fmt: skip
    await service.start()
    app_options.setdefault("burst", 10_000)
    where = await stack.enter_async_context(
        serve_app(create_app(service, clock=clock, **app_options))
    )
    genesis_path = tmp / "genesis.json"
    genesis_path.write_bytes(genesis.signed.encode())
    pw = tmp / "passphrase"
    pw.write_text(PASSPHRASE + "\n")
    keys = []
    for name, key in zip(ADMIN_NAMES, admin_keys, strict=False):
        path = tmp / f"{name}.key"
        path.write_bytes(
            seal_secret(key.seed, PASSPHRASE.encode(), purpose=ADMIN_KEY_PURPOSE, cost=INTERACTIVE)
        )
        keys.append(path)
    desk = Desk(tmp, genesis, genesis_path, admin_keys, keys, pw, service, clock, rng, where.url,
                db_path)  # fmt: skip

    async def close_clients() -> None:
        for client in desk.clients.values():
            await client.close()

    stack.push_async_callback(close_clients)
    return desk

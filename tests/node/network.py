"""A real hub and real node daemons on loopback, in one event loop.

The hub is the production stack (HubService, Router, Pusher, BlobStore and the
aiohttp app) on SQLite in a temporary directory, served on 127.0.0.1; each node
is :func:`globe_node.server.serve` with its own directory, database, key file,
local API and (optionally) peer listener.  Admission goes through the hub's
HTTP API exactly as in production: application, KEM proof of possession, two
admin signatures.

Ports: a node's peer endpoint is certified at admission and the genesis names
the hub's URL, so each port must be known before its server first runs and
stay the same across restarts.  A :class:`ReservedPort` holds one for the
whole test (the kernel picks it: nothing is guessed), and every start serves
a fresh socket bound to it; between runs the port refuses connections, as a
stopped server's does, and no other process can take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web

from globe_io.httpguard import start_site
from globe_io.hubclient import HubClient, request_payload
from globe_node.config import NodeConfig, render_config
from globe_node.keys import NodeKeys, save_keys
from globe_node.node import Node
from globe_node.roles import Role
from globe_node.server import Listeners, serve
from globe_node.users import add_user as _add_user
from hub import db as hub_db
from hub.blobs import BlobStore
from hub.push import Pusher
from hub.push import add_routes as add_push_routes
from hub.routing import Router
from hub.service import HubService
from hub.web import create_app
from protocol import canonical, labels
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId
from protocol.keys import SigningKey
from protocol.keystore import INTERACTIVE
from protocol.membership import Action, kem_pop_answer, make_action, make_application
from protocol.signed import SignedObject

#: The passphrase of every node key file the tests write.
PASSPHRASE: Final = b"correct horse battery staple"
LOOPBACK: Final = "127.0.0.1"


class ReservedPort:
    """A loopback TCP port held for as long as a test needs it, listening only when served.

    The port is the one the kernel gave a socket bound to port 0.  That socket
    never listens: a connection to the port is refused unless a server runs
    on a :meth:`listener`.  It sets ``SO_REUSEPORT`` (and not ``SO_REUSEADDR``),
    so only another ``SO_REUSEPORT`` socket of this user may bind the port
    while it is held -- the listeners made here, not an unrelated server.
    """

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self._held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._held.bind((host, 0))
        self.port: int = self._held.getsockname()[1]

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def listener(self) -> socket.socket:
        """A new socket listening on the port, for one run of one server.

        The server owns it: aiohttp closes it when the site stops.  Two
        listeners at a time would share the connections, so serve one only.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # a previous run's connections may linger in TIME_WAIT on this port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        """Release the port."""
        self._held.close()

    def __enter__(self) -> ReservedPort:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class RunningNode:
    """A node daemon run in this event loop (or, by test_crash.py, as a process)."""

    config: NodeConfig
    keys: NodeKeys
    token: str
    api_port: ReservedPort
    peer_port: ReservedPort | None = None
    node: Node | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def me(self) -> AuthorityId:
        return AuthorityId.parse(self.config.authority)

    @property
    def n(self) -> Node:
        assert self.node is not None, "node not running"
        return self.node

    @property
    def peer_url(self) -> str:
        """The certified endpoint, ``http://127.0.0.1:<peer port>``."""
        assert self.peer_port is not None, "this node has no peer listener"
        return self.peer_port.url

    def listeners(self) -> Listeners:
        """Fresh sockets on this node's ports for one run of its daemon."""
        return Listeners(
            api=self.api_port.listener(),
            peer=None if self.peer_port is None else self.peer_port.listener(),
        )

    async def api(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        url = f"http://{self.config.api_host}:{self.config.api_port}{path}"
        headers = {"Authorization": f"Bearer {token or self.token}"}
        data = None if body is None else request_payload(orjson.dumps(body))
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, url, data=data, headers=headers) as r,
        ):
            raw = await r.read()
            try:
                return r.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return r.status, raw

    async def upload(
        self,
        data: bytes,
        name: str = "file.bin",
        media_type: str = "application/octet-stream",
        *,
        token: str | None = None,
    ) -> tuple[int, Any]:
        """``POST /api/uploads`` with ``data`` as the body (what the CLI does with a file)."""
        url = f"http://{self.config.api_host}:{self.config.api_port}/api/uploads"
        headers = {"Authorization": f"Bearer {token or self.token}"}
        params = {"name": name, "media_type": media_type}
        async with (
            aiohttp.ClientSession() as s,
            s.post(url, data=request_payload(data) or b"", headers=headers, params=params) as r,
        ):
            return r.status, orjson.loads(await r.read())

    def release_ports(self) -> None:
        self.api_port.close()
        if self.peer_port is not None:
            self.peer_port.close()


class Net:
    """A hub and its members."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.admins = [SigningKey.generate() for _ in range(3)]
        self.hub_key = SigningKey.generate()
        # the genesis names the hub's URL: the port is reserved before it is made
        self.hub_port = ReservedPort()
        self.hub_url = self.hub_port.url
        self.genesis: Genesis = make_genesis(
            network_id="globe-node-test",
            name="GlobE Link node tests",
            admins=[(f"Admin {i}", k.verify_key) for i, k in enumerate(self.admins)],
            threshold=2,
            hub_key=self.hub_key.verify_key,
            hub_url=self.hub_url,
            created=int(time.time()) - 86400,
            signers=self.admins[:2],
        )
        self.hub_dir = root / "hub"
        self.hub_dir.mkdir()
        self._runner: web.AppRunner | None = None
        self._engine: Any = None
        self.service: HubService | None = None
        self.router: Router | None = None
        self.hub_offset = 0.0  # seconds the hub's clock runs ahead (expiry tests)
        self.nodes: dict[str, RunningNode] = {}

    # -- hub --------------------------------------------------------------------------------

    async def start_hub(self) -> None:
        engine = hub_db.make_engine(f"sqlite+aiosqlite:///{self.hub_dir / 'hub.db'}")
        await hub_db.migrate(engine)
        service = HubService(
            genesis=self.genesis, hub_key=self.hub_key, engine=engine, clock=self.hub_clock
        )
        await service.start()
        router = Router(service)
        pusher = Pusher(router, service, database_url=str(engine.url))
        router.on_commit = pusher.notify
        app = create_app(
            service, router=router, clock=time.monotonic, burst=100_000, rate_per_second=10_000,
            blobs=BlobStore(service, self.hub_dir / "blobs"),
        )  # fmt: skip
        add_push_routes(app, pusher)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        port = self.hub_port
        await start_site(runner, port.host, port.port, sock=port.listener())
        self._runner, self._engine, self.service, self.router = runner, engine, service, router

    def hub_clock(self) -> float:
        return time.time() + self.hub_offset

    async def stop_hub(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            await self._engine.dispose()
            self._runner = None

    def admin_client(self, i: int) -> HubClient:
        return HubClient(self.hub_url, network=self.genesis.digest, key=self.admins[i])

    # -- members ----------------------------------------------------------------------------

    def make_node(
        self, authority: str, name: str, *, endpoint: bool = True, **options: Any
    ) -> RunningNode:
        d = self.root / authority
        d.mkdir()
        api_port = ReservedPort()
        peer_port = ReservedPort() if endpoint else None
        settings: dict[str, Any] = {
            "sync_interval": 0.3, "retry_base": 0.2, "retry_max": 2.0, "direct_timeout": 2.0,
            "allow_private_endpoints": True,
        }  # fmt: skip
        settings.update(options)
        config = NodeConfig(
            directory=d, authority=authority, hub_url=self.hub_url,
            peer_port=0 if peer_port is None else peer_port.port, api_port=api_port.port,
            **settings,
        )  # fmt: skip
        keys = NodeKeys.generate()
        save_keys(config.key_path, keys, PASSPHRASE, INTERACTIVE)
        config.genesis_path.write_bytes(self.genesis.signed.encode())
        (d / "node.toml").write_text(render_config(config))
        rn = RunningNode(config, keys, token="", api_port=api_port, peer_port=peer_port)
        self.nodes[authority] = rn
        return rn

    async def admit(self, rn: RunningNode, name: str) -> None:
        endpoint = None if rn.peer_port is None else rn.peer_url
        app = make_application(
            genesis=self.genesis, authority=rn.me, name=name, kinds=["anti-corruption"],
            languages=["en"], contact="duty officer", legal_basis="UNCAC art. 36",
            endpoint=endpoint, identity=rn.keys.identity, transport=rn.keys.transport,
            ka_key=rn.keys.ka.public_key, created=int(time.time()),
        )  # fmt: skip
        async with HubClient(self.hub_url) as hub:
            sub = await hub.submit_application(app.signed.encode())
            challenge = canonical.b64d(sub["challenge"], what="challenge")
            await hub.answer_challenge(sub["id"], kem_pop_answer(rn.keys.ka, app.digest, challenge))
        async with self.admin_client(0) as a0:
            draft = (await a0.admin_application(sub["id"])).draft
        assert draft is not None, "the hub prepared no admission draft"
        for i in (0, 1):
            async with self.admin_client(i) as admin:
                container = SignedObject(draft, ()).with_signature(
                    labels.MEMBERSHIP_ACTION, self.admins[i]
                )
                await admin.admin_submit_action(container.encode())

    async def set_status(self, authority: str, action: Action, reason: str = "decided") -> None:
        assert self.service is not None
        state = self.service.state
        aid = AuthorityId.parse(authority)
        unsigned = make_action(
            genesis=self.genesis, action=action, authority=aid,
            prev=state.members[aid].last_action, issued=int(time.time()), reason=reason,
        )  # fmt: skip
        for i in (0, 1):
            async with self.admin_client(i) as admin:
                container = SignedObject(unsigned.signed.payload, ()).with_signature(
                    labels.MEMBERSHIP_ACTION, self.admins[i]
                )
                await admin.admin_submit_action(container.encode())

    async def start_node(self, rn: RunningNode) -> RunningNode:
        rn.stop = asyncio.Event()
        ready = asyncio.get_running_loop().create_future()

        def on_ready(node: Node) -> None:
            rn.node = node
            ready.set_result(None)

        listeners = rn.listeners()
        rn.task = asyncio.create_task(
            serve(rn.config, PASSPHRASE, ready=on_ready, stop=rn.stop, listeners=listeners)
        )
        done, _ = await asyncio.wait({rn.task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if rn.task in done:
            _close(listeners)  # serve failed before a site took them
            rn.task.result()  # raises the start-up error
        if not rn.token:
            rn.token = await add_user(rn.n, "alice", "investigator")
        return rn

    async def stop_node(self, rn: RunningNode) -> None:
        if rn.task is not None:
            rn.stop.set()
            await rn.task
            rn.task = None
            rn.node = None

    async def member(self, authority: str, name: str, **options: Any) -> RunningNode:
        """Make, admit and start a node, and wait until it has synced its own admission."""
        rn = self.make_node(authority, name, **options)
        await self.admit(rn, name)
        await self.start_node(rn)
        await self.synced(*self.nodes.values())
        return rn

    async def synced(self, *nodes: RunningNode) -> None:
        """Sync every running node's directory now; it then matches the hub's log."""
        service = self.service
        assert service is not None
        for rn in nodes:
            if rn.node is None:
                continue
            await rn.n.sync_directory()
            await rn.n.ensure_prekeys()
            assert rn.n.state.seq == service.state.seq

    async def close(self) -> None:
        for rn in self.nodes.values():
            with contextlib.suppress(Exception):
                await self.stop_node(rn)
            rn.release_ports()
        await self.stop_hub()
        self.hub_port.close()


def _close(listeners: Listeners) -> None:
    for sock in (listeners.api, listeners.peer):
        if sock is not None:
            sock.close()


async def add_user(node: Node, name: str, role: str, *teams: str) -> str:
    """A new local API user of ``node`` (in ``teams``); its token."""
    return await _add_user(node.sessions, name, Role(role), now=node.now(), teams=teams)


async def stage(
    node: Node,
    data: bytes,
    *,
    name: str = "file.bin",
    user: str = "operator",
    media_type: str = "application/octet-stream",
) -> str:
    """Stage ``data`` as an upload of ``user`` (what POST /api/uploads does); its id."""

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 1 << 20):
            yield data[i : i + (1 << 20)]

    info = await node.staging.receive(
        chunks(), user=user, name=name, media_type=media_type, size=len(data)
    )
    return info.id


__all__ = ["PASSPHRASE", "Net", "ReservedPort", "RunningNode", "add_user", "stage"]

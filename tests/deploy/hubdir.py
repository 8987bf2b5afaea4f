"""A hub directory as ``globe-hub init`` and ``install-genesis`` leave it, for a devnet, with
the devnet's membership log in its database: what the deployment tests start, check, back
up and upgrade."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import insert

from hub import db
from hub.config import HubConfig, default_database_url, render_config
from hub.server import HUB_KEY_PURPOSE
from protocol.devnet import GENESIS_TIME, DevNetwork, build_devnet
from protocol.keystore import KdfCost, seal_secret
from protocol.membership import entry_hash

PASSPHRASE: Final = "deployment test passphrase"  # noqa: S105 - a test passphrase
MEMBERS: Final = [("FR-PNF", "Parquet national financier"), ("DE-BKA", "Bundeskriminalamt")]


@dataclass(frozen=True, slots=True)
class HubDir:
    """A prepared hub directory and the network it serves."""

    directory: Path
    passphrase_file: Path
    net: DevNetwork
    config: HubConfig


def make_hub_dir(
    root: Path,
    *,
    database_url: str | None = None,
    hub_url: str = "http://127.0.0.1:8440",
    port: int = 0,
    host: str = "127.0.0.1",
) -> HubDir:
    """Key, genesis and ``hub.toml`` in ``root/hub`` (mode 0700); the database not touched."""
    net = build_devnet(b"deploy", members=MEMBERS, hub_url=hub_url)
    directory = root / "hub"
    directory.mkdir(mode=0o700)
    key = directory / "hub.key"
    key.write_bytes(
        seal_secret(net.hub.seed, PASSPHRASE.encode(), purpose=HUB_KEY_PURPOSE,
                    cost=KdfCost(1, 8192))
    )  # fmt: skip
    key.chmod(0o600)
    (directory / "genesis.json").write_bytes(net.genesis.encode())
    config = HubConfig(
        directory=directory, database_url=database_url or default_database_url(directory),
        host=host, port=port,
    )  # fmt: skip
    (directory / "hub.toml").write_text(render_config(config))
    (directory / "hub.toml").chmod(0o600)
    passphrase_file = root / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    return HubDir(directory, passphrase_file, net, config)


async def fill_database(url: str, net: DevNetwork, *, migrate: bool = True) -> None:
    """Migrate (unless told not to) and store the devnet's log as the hub would have."""
    engine = db.make_engine(url)
    try:
        if migrate:
            await db.migrate(engine)
        async with engine.begin() as conn:
            for seq, entry in enumerate(net.entries, 1):
                await conn.execute(
                    insert(db.LogEntryRow).values(
                        seq=seq, hash=entry_hash(entry), data=entry, time=GENESIS_TIME
                    )
                )
    finally:
        await engine.dispose()
    if url.startswith("sqlite"):  # as under the units' UMask=0077
        for path in Path(url.split("///", 1)[1]).parent.glob("hub.db*"):
            path.chmod(0o600)


class Port:
    """A loopback port the kernel picked, held (``SO_REUSEPORT``, not listening) until closed,
    so that a genesis can name it before the hub serves it (as tests/node/network.py's
    ``ReservedPort``, without importing the node)."""

    def __init__(self) -> None:
        self._held = socket.socket()
        self._held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._held.bind(("127.0.0.1", 0))
        self.port: int = self._held.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def listener(self) -> socket.socket:
        """A listening socket on the port."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen()
        sock.setblocking(False)
        return sock

    def __enter__(self) -> Port:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._held.close()

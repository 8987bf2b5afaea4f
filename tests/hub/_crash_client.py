"""Helpers for the crash-safety tests (``tests/hub/test_crash.py``).

* :func:`build_network`: a devnet whose hub key the test holds (its
  certificates are valid from 2026-01-01 for three years);
* :func:`write_hub_dir` / :func:`load_log`: that network written out as a hub
  directory (sealed hub key, genesis, ``hub.toml`` with rate limits out of the
  way) over a database pre-loaded with the devnet's membership log, so the
  members are admitted when the hub starts;
* :class:`HubProcess`: ``python -m hub serve`` as a subprocess that can be
  SIGKILLed and restarted; ``hub.toml`` says port 0, so each start binds a
  port the kernel picks and prints it (:class:`tests.support.ServerProcess`);
* :class:`MemberClient`: a member signing its requests with its transport key.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from hub import db
from hub.config import CONFIG_NAME, HubConfig, Limits, render_config
from hub.server import HUB_KEY_PURPOSE
from protocol import canonical, keystore
from protocol.devnet import GENESIS_TIME, DevMember, DevNetwork, build_devnet
from protocol.envelope import SealTo, seal_envelope
from protocol.ids import AuthorityId, MessageId
from protocol.membership import entry_hash
from protocol.receipts import make_receipt
from protocol.requestauth import HEADER, HUB_AUDIENCE, sign_request
from tests.support.servers import ServerProcess

PASSPHRASE: Final = "crash test passphrase"  # noqa: S105 - a test passphrase
#: The minimum Argon2id costs: every restart opens the hub key.
CHEAP_KDF: Final = keystore.KdfCost(1, 8192)
MEMBERS: Final = (
    ("FR-PNF", "Parquet national financier"),
    ("DE-BKA", "Bundeskriminalamt"),
    ("ES-FCC", "Fiscalia contra la Corrupcion"),
    ("IT-GDF", "Guardia di Finanza"),
    ("PL-CBA", "Centralne Biuro Antykorupcyjne"),
)
#: What a client sees when the hub process is gone (or dies mid-request).
CONNECTION_ERRORS: Final = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)
_ENV: Final = {
    k: v for k, v in os.environ.items() if k not in ("GLOBE_HUB_PASSPHRASE", "GLOBE_DEBUG")
}


def build_network(seed: bytes = b"globe crash test") -> DevNetwork:
    """A devnet with the five :data:`MEMBERS` admitted."""
    return build_devnet(seed, members=list(MEMBERS))


def write_hub_dir(directory: Path, net: DevNetwork, database_url: str) -> Path:
    """Write ``net``'s hub directory; return the passphrase file (outside the directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hub.key").write_bytes(
        keystore.seal_secret(
            net.hub.seed, PASSPHRASE.encode(), purpose=HUB_KEY_PURPOSE, cost=CHEAP_KDF
        )
    )
    (directory / "genesis.json").write_bytes(net.genesis.encode())
    limits = Limits(max_body=1 << 20, rate_per_second=1_000_000.0, burst=1_000_000)
    # Port 0: every start binds a port of its own and prints it.
    config = HubConfig(directory=directory, database_url=database_url, port=0, limits=limits)
    (directory / CONFIG_NAME).write_text(render_config(config))
    passphrase = directory.parent / f"{directory.name}.passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    return passphrase


async def load_log(database_url: str, net: DevNetwork) -> None:
    """Migrate the database and store the devnet's membership log, as the hub would."""
    engine = db.make_engine(database_url)
    try:
        await db.migrate(engine)
        async with db.session_factory(engine)() as s, s.begin():
            for seq, entry in enumerate(net.entries, 1):
                s.add(db.LogEntryRow(seq=seq, hash=entry_hash(entry), data=entry, time=seq))
    finally:
        await engine.dispose()


# --- the hub process ------------------------------------------------------------------------------


class HubProcess(ServerProcess):
    """``python -m hub serve`` on a hub directory; killed and restarted at will.

    :meth:`start` returns once the process printed the port it bound;
    :meth:`kill` SIGKILLs it (no shutdown code runs) and returns the exit status.
    """

    def __init__(self, directory: Path, passphrase_file: Path, log: Path) -> None:
        super().__init__(
            [sys.executable, "-m", "hub", "serve", "--dir", str(directory),
             "--passphrase-file", str(passphrase_file), "--log-level", "warning"],
            log=log, env=_ENV,
        )  # fmt: skip


# --- members ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """A fully read HTTP response."""

    status: int
    content_type: str
    body: bytes

    def json(self, status: int = 200) -> Any:
        """Assert ``status`` and a JSON body; return it parsed."""
        assert (self.status, self.content_type) == (status, "application/json"), (
            self.status,
            self.body[:500],
        )
        return orjson.loads(self.body)

    def problem_type(self) -> str:
        """The problem ``type`` of an RFC 9457 answer."""
        assert self.content_type == "application/problem+json", (self.status, self.body[:500])
        kind: str = orjson.loads(self.body)["type"]
        return kind


class MemberClient:
    """A member of ``net`` talking to whatever hub ``base_url()`` names."""

    def __init__(
        self,
        net: DevNetwork,
        member: DevMember,
        session: aiohttp.ClientSession,
        base_url: Callable[[], str],
    ) -> None:
        self.net = net
        self.member = member
        self.session = session
        self.base_url = base_url  # follows the hub across restarts
        self._seq: dict[AuthorityId, int] = {}

    @property
    def authority(self) -> str:
        """The member's authority id, as text."""
        return str(self.member.authority)

    async def request(self, method: str, target: str, body: bytes = b"") -> Answer:
        """A request signed with the member's transport key; connection errors propagate."""
        auth = sign_request(
            key=self.member.transport, network=self.net.genesis.digest, audience=HUB_AUDIENCE,
            method=method, target=target, body=body, created=int(time.time()),
        )  # fmt: skip
        async with self.session.request(
            method, self.base_url() + target, data=body, headers={HEADER: auth}
        ) as resp:
            return Answer(resp.status, resp.content_type, await resp.read())

    def seal(self, recipients: Sequence[DevMember], content: bytes) -> bytes:
        """An envelope to ``recipients``, created now and expiring in an hour."""
        now = int(time.time())
        assert now > GENESIS_TIME + 3600, "the devnet certificates are not valid yet"
        to = []
        for r in recipients:
            self._seq[r.authority] = self._seq.get(r.authority, 0) + 1
            to.append(SealTo(r.authority, self._seq[r.authority], r.prekey.public_key))
        return seal_envelope(
            genesis=self.net.genesis, sender=self.member.authority, identity=self.member.identity,
            recipients=to, content=content, created=now, expires=now + 3600,
            dir_seq=self.net.directory.seq, dir_head=self.net.directory.head,
        )  # fmt: skip

    def receipt(self, message_id: MessageId, envelope_hash: bytes, sender: AuthorityId) -> str:
        """A signed delivery receipt for an envelope addressed to this member (base64url)."""
        receipt = make_receipt(
            genesis=self.net.genesis, identity=self.member.identity, message_id=message_id,
            envelope_hash=envelope_hash, sender=sender, recipient=self.member.authority,
            time=int(time.time()),
        )  # fmt: skip
        return canonical.b64e(receipt.encode())

"""Helpers for the crash-safety tests (``tests/hub/test_crash.py``).

* :func:`build_network`: a devnet whose hub key the test holds (its
  certificates are valid from 2026-01-01 for three years);
* :func:`write_hub_dir` / :func:`load_log`: that network written out as a hub
  directory (sealed hub key, genesis, ``hub.toml`` with rate limits out of the
  way) over a database pre-loaded with the devnet's membership log, so the
  members are admitted when the hub starts;
* :class:`HubProcess`: ``python -m hub serve`` as a subprocess that can be
  SIGKILLed and restarted (on a fresh port each time, so no pooled client
  connection outlives the process it was opened to);
* :class:`MemberClient`: a member signing its requests with its transport key;
* :func:`create_pg_database` / :func:`drop_pg_database`: a fresh PostgreSQL
  database, as ``tests/hub/conftest.py`` makes them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import asyncpg
import orjson
from sqlalchemy.engine import make_url

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
#: Maintenance DSN of the PostgreSQL server (as in conftest.py).
PG_DSN: Final = os.environ.get("GLOBE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
#: What a client sees when the hub process is gone (or dies mid-request).
CONNECTION_ERRORS: Final = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)
_ENV: Final = {
    k: v for k, v in os.environ.items() if k not in ("GLOBE_HUB_PASSPHRASE", "GLOBE_DEBUG")
}


def build_network(seed: bytes = b"globe crash test") -> DevNetwork:
    """A devnet with the five :data:`MEMBERS` admitted."""
    return build_devnet(seed, members=list(MEMBERS))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
    config = HubConfig(directory=directory, database_url=database_url, limits=limits)
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


# --- PostgreSQL ---------------------------------------------------------------------------------


async def create_pg_database() -> tuple[str, str]:
    """Create ``globe_crash_<pid>_<hex>``; return its name and SQLAlchemy URL.

    Raises ``OSError`` or an asyncpg error if the server is unreachable.
    """
    name = f"globe_crash_{os.getpid()}_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(PG_DSN, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = make_url(PG_DSN).set(drivername="postgresql+asyncpg", database=name)
    return name, url.render_as_string(hide_password=False)


async def drop_pg_database(name: str) -> None:
    """Terminate the database's connections and drop it."""
    conn = await asyncpg.connect(PG_DSN, timeout=10)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


# --- the hub process ------------------------------------------------------------------------------


class HubProcess:
    """``python -m hub serve`` on a hub directory; killed and restarted at will."""

    def __init__(self, directory: Path, passphrase_file: Path, log: Path) -> None:
        self.directory = directory
        self.passphrase_file = passphrase_file
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        """The base URL of the running process."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, session: aiohttp.ClientSession, *, timeout: float = 30.0) -> float:
        """Start the hub and wait until ``/healthz`` answers; return the seconds it took."""
        assert self.proc is None, "the hub is already running"
        self.port = free_port()
        self.starts += 1
        began = time.monotonic()
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} on port {self.port}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "hub", "serve", "--dir", str(self.directory),
                    "--passphrase-file", str(self.passphrase_file), "--port", str(self.port),
                    "--log-level", "warning",
                ],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=_ENV,
            )  # fmt: skip
        probe = aiohttp.ClientTimeout(total=1)
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise AssertionError(f"globe-hub serve exited {code}:\n{self.log_text()}")
            try:
                async with session.get(f"{self.url}/healthz", timeout=probe) as r:
                    if r.status == 200:
                        return time.monotonic() - began
            except CONNECTION_ERRORS:
                pass
            await asyncio.sleep(0.02)
        self.kill()
        raise AssertionError(f"globe-hub serve did not answer in {timeout} s:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL the process (no shutdown code runs) and reap it."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            assert self.proc.returncode == -signal.SIGKILL, self.proc.returncode
            self.proc = None

    def stop(self) -> int:
        """SIGTERM (graceful shutdown); return the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        return code

    def log_text(self) -> str:
        """What the processes wrote so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


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

"""Node benchmark: messages through two node daemons and the hub, a large attachment,
attachment encryption against raw libsodium, a recipient catching up on a backlog, and a
bulletin to 100 recipients, on loopback.

Run ``.venv/bin/python bench/bench_node.py [--quick] [--json] [--phases P,...]
[--messages N]``.  Like the other benchmarks, the headline figures are ratios against
baselines measured in the same run, because the development VMs are noisy (±15-40 %).
Everything listens on 127.0.0.1; every loop is bounded in count and in time; every
subprocess is stopped (SIGTERM, then SIGKILL) and the temporary directory removed,
whatever happens.

Set-up, each server a subprocess:

* **hub**: ``python -m hub serve`` on SQLite in a temporary directory, for a devnet
  of 103 members admitted by the log written into the database before the start:
  FR-PNF, BR-PF, DE-BKA and the bulletin's 100 recipients LU-B001 to LU-B100
  ("Bulletin recipient 1" to 100; an authority id starts with an assigned ISO 3166-1
  code, so not XA), whatever the phases, so that every phase sees the same network;
  none publishes an endpoint, so every message is relayed by the hub.  ``hub.toml``
  puts the token buckets out of the way; its default mailbox quota (100,000 items,
  2 GiB per recipient) holds the catch-up's backlog.
* **node A** (FR-PNF, the sender) and **node B** (BR-PF, the recipient):
  ``python -m globe_node run --dir D``; the bench writes each directory itself:
  ``node.toml`` (no peer listener, ``sync_interval`` 1 s), ``keys.sealed`` holding
  the devnet member's identity, transport and key-agreement keys (sealed with a
  cheap Argon2id cost, so that the process's VmHWM is the daemon's own peak and
  not the one-off key unlock), the devnet genesis, and a supervisor user whose
  token hash is stored in the node database before the start.  Each node is used
  once its ``GET /api/status`` shows it active, its directory confirmed by a hub
  checkpoint, and its push stream connected.

Measured:

* **hub-only baseline**: 3,000 (``--quick``: 1,000) envelopes from FR-PNF to DE-BKA
  (a member that runs no node, so nothing consumes them; the hub does the same work
  per submission), each carrying the message content the node run sends (bench_hub's
  956-byte request, its deadline moved to 14 days from now), sealed before the
  timing, submitted with ``HubClient.submit_message`` (signed with FR-PNF's
  transport key) by 16 concurrent tasks over one session after 16 untimed warm-up
  submissions.  Rate = 201 answers per second.  Measured on the same hub process
  just before and just after the node run; the baseline is the mean of the two.
  For reference only (not the baseline), once more after those: the same envelopes
  in ``POST /v1/messages/batch`` requests of 16, 4 tasks each one request at a time
  (the route a node's delivery pass uses, PROTOCOL.md §10.6).
* **node throughput**: N = 1,000 (``--quick``: 200) ``POST /api/messages`` to A's
  local API (8 concurrent), each that request to B.  Timed from the first POST until
  B has stored all N (verified, decrypted, stored with its signed receipt) and A holds
  B's signed receipt for all N (it came back through the hub).  Progress is read from
  the two node databases read-only (SQLite WAL), not through the APIs, so that
  polling adds no work to the nodes; a message counts as delivered when A's outbox
  row holds the receipt (see ``RECEIPTS_SQL``).  node_rps = N / seconds; node_ratio =
  node_rps / hub-only rate (higher is better).  Also: the CPU of each process per
  message (``/proc``) and the hub's requests per message by route (``GET /metrics``).
* **attachment**: a file of 1 GiB (``--quick``: 128 MiB) of random bytes, sent from A
  to B as the attachment of one message, until A holds B's receipt (with, from A's
  log, when the hub accepted it); then downloaded from B's ``GET
  /api/messages/{id}/attachments/1`` to disk and compared by SHA-256 with the source
  (it must match).  Both nodes' RSS is sampled every 50 ms from ``/proc``; VmHWM is
  read at the end; attachment_peak_rss_mb = the larger of the two nodes' peaks (each
  the larger of its VmHWM and its highest sample: the peak over the whole run, so
  the message phase counts too); the goal is under 150 on each side.  Meanwhile
  each node's ``GET /api/status`` is timed every 250 ms: how long its event loop
  does not answer.
* **encryption**: :class:`protocol.attachments.AttachmentEncryptor` over 256 MiB
  (``--quick``: 64 MiB) fed in 1 MiB slices, against raw libsodium secretstream
  (``crypto_secretstream_xchacha20poly1305_push``, 64 KiB messages, the same
  total); decryption likewise (``AttachmentDecryptor`` against ``_pull``).  Five
  (``--quick``: three) rounds after a warm-up round, the order alternating; medians.
  attachment_ratio = our encryption MB/s / secretstream MB/s (higher is better; 1.0
  is as fast as raw libsodium).
* **catch-up** (after the attachment): node B is stopped (SIGTERM; it must exit 0).
  The bench, as DE-BKA (it runs no node; the bench holds its keys and numbers its
  messages to BR-PF from 1), seals C = 10,000 (``--quick``: 2,000) envelopes DE-BKA ->
  BR-PF with the node run's content, to the prekey B itself published (``GET
  /v1/prekeys/BR-PF``, asked again until B's sync loop has published one; the newest
  valid one, verified as a sending node does with
  :func:`globe_node.prekeys.best_prekey`), outside the timing, and submits them with
  ``HubClient.submit_message`` (16 concurrent tasks, as the hub-only baseline).  B is
  started again and timed from the process start until its inbox holds all C more rows
  (read-only, as in the node run; B drains through the pull it makes on connecting or
  through the push stream, whichever delivers first); also until its ``GET
  /api/status`` shows it ready and until every row is acknowledged at the hub.
  catchup_msgs_per_s = C / seconds from the process start.  B's RSS is sampled every
  50 ms, and read when 10 %, 50 % and 90 % of the C are stored; VmHWM is read at the
  end (the process is new: the peak is this phase's own); catchup_peak_rss_mb = the
  larger of VmHWM and the sampled peak.  B's CPU per message counts the whole new
  process, start-up included.  B's database must then hold each of the C message ids
  exactly once.
* **bulletin** (last): node A sends to the 100 LU-B members, which run no node; the
  bench plays them with the protocol's own functions.  Before the timing each publishes
  a fresh signed prekey (``make_prekey`` with its identity key, ``HubClient.put_prekey``
  signed with its transport key).  Then, pass after pass (50 ms apart, 16 requests at
  a time), every recipient still waiting pulls its mailbox (``HubClient.mailbox``),
  opens each envelope with its prekey (``open_envelope`` against the devnet
  directory), decodes the content, signs its delivery receipt (``make_receipt``) and
  acknowledges the item with it (``HubClient.ack``), as a node does; the hub relays the
  receipts to A.  Timed two ways, each from the first POST until A's outbox holds all
  100 receipts (``RECEIPTS_SQL``): one ``POST /api/messages`` whose ``"to"`` lists the
  100 (one envelope wrapped to each: bulletin_seconds_100), then 100 POSTs of one
  recipient each, 8 concurrent (bulletin_seconds_100_separate).  Kind ``bulletin``, the
  node run's subject and body.  Also the CPU of A, of the hub (the recipients' polling
  included) and of the bench.

Options: ``--phases`` runs a comma-separated subset of ``crypto`` (encryption),
``node`` (the node run and the hub-only baseline around it), ``attachment``,
``catchup`` and ``bulletin``, always in that order (default: all); the hub and both
nodes start only for a phase that needs them, and the report and the JSON leave out
what did not run.  ``--messages N`` sets the node run's N.  ``--keep`` leaves the
temporary directory (logs, databases) in place for a look.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

import aiohttp
import nacl.bindings as sodium

if __package__ in (None, ""):  # run as ``python bench/bench_node.py``: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_hub import (
    CONTENT_SIZE,
    Server,
    _content,
    _cpu_seconds,
    _free_port,
    _hub_argv,
    _load_log,
    _machine_cpu_seconds,
    _memory_mib,
    _write_hub_dir,
)
from globe_io.hubclient import HubClient
from globe_node import db as node_db
from globe_node.config import CONFIG_NAME, NodeConfig, render_config
from globe_node.keys import NodeKeys, save_keys
from globe_node.prekeys import best_prekey
from protocol.attachments import AttachmentDecryptor, AttachmentEncryptor
from protocol.devnet import DevMember, DevNetwork, build_devnet
from protocol.envelope import SealTo, open_envelope, parse_envelope, seal_envelope
from protocol.errors import GlobeError
from protocol.ids import KeyId, MessageId
from protocol.keys import KemPrivateKey, KemPublicKey
from protocol.keystore import KdfCost
from protocol.messages import Kind, MessageContent
from protocol.prekeys import make_prekey
from protocol.receipts import make_receipt

SEED: Final = b"bench-node"
SENDER: Final = "FR-PNF"
RECIPIENT: Final = "BR-PF"
SINK: Final = "DE-BKA"  # the hub-only baseline's recipient: runs no node
MEMBERS: Final = (
    (SENDER, "Parquet national financier"),
    (RECIPIENT, "Policia Federal"),
    (SINK, "Bundeskriminalamt"),
)
BULLETIN_RECIPIENTS: Final = 100
#: The bulletin's recipients: they run no node, the bench plays them.  An authority id
#: starts with an assigned ISO 3166-1 code (protocol/ids.py refuses XA and the like).
BULLETIN_MEMBERS: Final = tuple(
    (f"LU-B{i:03d}", f"Bulletin recipient {i}") for i in range(1, BULLETIN_RECIPIENTS + 1)
)
#: Admitted in this order, so the first three members' keys are those of a 3-member devnet.
DEVNET_MEMBERS: Final = MEMBERS + BULLETIN_MEMBERS
PHASES: Final = ("crypto", "node", "attachment", "catchup", "bulletin")
#: Phases that need the hub and the two nodes.
SERVER_PHASES: Final = frozenset({"node", "attachment", "catchup", "bulletin"})
NODE_PASSPHRASE: Final = "bench node passphrase"  # noqa: S105 - a throw-away benchmark key
CHEAP_KDF: Final = KdfCost(1, 8192)
HUB_CONCURRENCY: Final = 16
#: The batched hub-only reference: this many tasks, each one batch request at a time.
BATCH_TASKS: Final = 4
BATCH_SIZE: Final = 16
API_CONCURRENCY: Final = 8
GOAL_RSS_MIB: Final = 150.0
MIB: Final = 1 << 20
SLICE: Final = MIB  # what one update() of the encryptor gets
SODIUM_CHUNK: Final = 64 * 1024  # one secretstream message
SAMPLE_S: Final = 0.05
#: A's outbox rows holding B's signed receipt.  Not ``state = 'delivered'``: a row can end
#: in "sent" although its receipt was recorded (see docs/PERFORMANCE.md, "Node").
RECEIPTS_SQL: Final = "SELECT count(*) FROM outbox_recipients WHERE receipt IS NOT NULL"
INBOX_SQL: Final = "SELECT count(*) FROM inbox"
#: B's inbox rows from DE-BKA (the catch-up's sender) acknowledged at the hub.
ACKED_SQL: Final = "SELECT count(*) FROM inbox WHERE sender = ? AND receipt_acked"
CATCHUP_MARKS: Final = (0.1, 0.5, 0.9)  # RSS read when these shares of C are stored
BULLETIN_LIMIT: Final = 120.0  # seconds, each way of the bulletin
PREKEY_LIFETIME: Final = 7 * 86400  # the recipients' published prekeys (a node's default)
REQUEST_TIMEOUT: Final = 600.0  # seconds, any single API request (a 1 GiB send encrypts first)
_ENV: Final = {
    k: v
    for k, v in os.environ.items()
    if k not in ("GLOBE_PASSPHRASE", "GLOBE_HUB_PASSPHRASE", "GLOBE_DEBUG")
}


@dataclass(frozen=True, slots=True)
class Mode:
    """How much to measure."""

    messages: int  # node run
    hub_messages: int  # each hub-only burst
    attachment_mib: int
    crypto_mib: int  # per encryption measurement
    crypto_rounds: int
    catchup: int  # envelopes waiting for B when it starts again


QUICK: Final = Mode(
    messages=200, hub_messages=1000, attachment_mib=128, crypto_mib=64, crypto_rounds=3,
    catchup=2000,
)  # fmt: skip
FULL: Final = Mode(
    messages=1000, hub_messages=3000, attachment_mib=1024, crypto_mib=256, crypto_rounds=5,
    catchup=10_000,
)  # fmt: skip

_T0: Final = time.perf_counter()


def _progress(text: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f} s] {text}", file=sys.stderr, flush=True)


def _mbps(size: int, seconds: float) -> float:
    """Megabytes (10**6 bytes) per second."""
    return size / 1e6 / seconds if seconds > 0 else float("nan")


# --- encryption against raw secretstream (in process) --------------------------------------


def _ours_encrypt(data: bytes, total: int, key: bytes, blob: str) -> tuple[float, list[bytes]]:
    """Seconds to encrypt ``total`` bytes (``data`` repeated) in 1 MiB slices; the blob."""
    out: list[bytes] = []
    start = time.perf_counter()
    enc = AttachmentEncryptor(key, blob)
    out.append(enc.header())
    for _ in range(total // len(data)):
        out.append(enc.update(data))
    out.append(enc.finalize())
    return time.perf_counter() - start, out


def _ours_decrypt(blob_parts: Sequence[bytes], key: bytes, blob: str) -> float:
    """Seconds to decrypt a blob fed in 1 MiB slices (the parts are re-sliced, untimed)."""
    joined = b"".join(blob_parts)
    slices = [joined[i : i + SLICE] for i in range(0, len(joined), SLICE)]
    del joined
    start = time.perf_counter()
    dec = AttachmentDecryptor(key, blob)
    for s in slices:
        dec.update(s)
    dec.finalize()
    return time.perf_counter() - start


def _raw_encrypt(data: bytes, total: int, key: bytes) -> tuple[float, bytes, list[bytes]]:
    """Seconds for secretstream over the same bytes in 64 KiB messages; header, messages."""
    pieces = [data[i : i + SODIUM_CHUNK] for i in range(0, len(data), SODIUM_CHUNK)]
    count = total // len(data)
    out: list[bytes] = []
    push = sodium.crypto_secretstream_xchacha20poly1305_push
    final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
    start = time.perf_counter()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    for i in range(count):
        last = i == count - 1
        for j, piece in enumerate(pieces):
            tag = final if last and j == len(pieces) - 1 else 0
            out.append(push(state, piece, None, tag))
    return time.perf_counter() - start, header, out


def _raw_decrypt(header: bytes, messages: Sequence[bytes], key: bytes) -> float:
    pull = sodium.crypto_secretstream_xchacha20poly1305_pull
    start = time.perf_counter()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    tag = 0
    for m in messages:
        _, tag = pull(state, m, None)
    elapsed = time.perf_counter() - start
    assert tag == sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
    return elapsed


def _sha256_seconds(data: bytes, total: int) -> float:
    """Seconds to hash ``total`` bytes: the plaintext digest our encryptor also computes."""
    start = time.perf_counter()
    h = hashlib.sha256()
    for _ in range(total // len(data)):
        h.update(data)
    h.digest()
    return time.perf_counter() - start


def measure_crypto(mode: Mode) -> dict[str, Any]:
    """Median MB/s over rounds of ours and raw secretstream, encrypt and decrypt."""
    total = mode.crypto_mib * MIB
    data = os.urandom(SLICE)
    key = os.urandom(32)
    blob = secrets.token_hex(16)
    times: dict[str, list[float]] = {k: [] for k in ("enc", "dec", "raw_enc", "raw_dec", "sha")}
    for r in range(mode.crypto_rounds + 1):  # round 0 warms up and is dropped
        gc.collect()
        gc.disable()
        try:
            order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
            got: dict[str, float] = {}
            for which in order:
                if which == "ours":
                    got["enc"], parts = _ours_encrypt(data, total, key, blob)
                    got["dec"] = _ours_decrypt(parts, key, blob)
                    del parts
                else:
                    got["raw_enc"], header, messages = _raw_encrypt(data, total, key)
                    got["raw_dec"] = _raw_decrypt(header, messages, key)
                    del messages
            got["sha"] = _sha256_seconds(data, total)
        finally:
            gc.enable()
        if r:
            for k, v in got.items():
                times[k].append(v)
    mbps = {k: _mbps(total, statistics.median(v)) for k, v in times.items()}
    return {
        "crypto_mib": mode.crypto_mib,
        "rounds": mode.crypto_rounds,
        "encrypt_mbps": mbps["enc"],
        "decrypt_mbps": mbps["dec"],
        "secretstream_encrypt_mbps": mbps["raw_enc"],
        "secretstream_decrypt_mbps": mbps["raw_dec"],
        "sha256_mbps": mbps["sha"],
        "encrypt_ratio": mbps["enc"] / mbps["raw_enc"],
        "decrypt_ratio": mbps["dec"] / mbps["raw_dec"],
        "encrypt_ratio_rounds": [
            round(b / a, 3) for a, b in zip(times["enc"], times["raw_enc"], strict=True)
        ],
    }


# --- node directories and processes ---------------------------------------------------------


@dataclass(slots=True)
class NodeProc:
    """A ``python -m globe_node run`` subprocess and its directory."""

    name: str
    config: NodeConfig
    token: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.config.api_port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def start(self) -> None:
        argv = [sys.executable, "-m", "globe_node", "run", "--dir", str(self.config.directory)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**_ENV, "GLOBE_PASSPHRASE": NODE_PASSPHRASE},
            )  # fmt: skip

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 60.0) -> None:
        """Until active, the directory confirmed by a hub checkpoint, and push connected."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ConnectionError):
                async with session.get(f"{self.api}/api/status", headers=self.headers) as r:
                    if r.status == 200:
                        last = await r.json()
                        if (
                            last["membership"] == "active"
                            and last["directory"]["age_s"] is not None
                            and last["hub"]["push_connected"]
                        ):
                            return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {timeout} s ({last}):\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL after 30 s; the exit status (None if it was not running)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=30)

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-3000:]

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the node database (WAL: it does not block the node)."""
        uri = f"file:{self.config.db_path}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)


async def _write_node_dir(root: Path, net: DevNetwork, authority: str, hub_url: str) -> NodeProc:
    """A node directory for a devnet member, with a supervisor user; not started."""
    directory = root / f"node-{authority}"
    directory.mkdir()
    config = NodeConfig(
        directory=directory, authority=authority, hub_url=hub_url, peer_port=0,
        api_port=_free_port(), sync_interval=1.0, retry_base=0.2, retry_max=2.0,
    )  # fmt: skip
    (directory / CONFIG_NAME).write_text(render_config(config))
    m = net.members[authority]
    keys = NodeKeys(identity=m.identity, transport=m.transport, ka=m.ka, storage=os.urandom(32))
    save_keys(config.key_path, keys, NODE_PASSPHRASE.encode(), CHEAP_KDF)
    config.genesis_path.write_bytes(net.genesis.encode())
    token = secrets.token_urlsafe(32)
    engine = node_db.make_engine(config.db_path)
    try:
        await node_db.migrate(engine)
        async with node_db.session_factory(engine)() as s, s.begin():
            s.add(
                node_db.User(
                    name="bench", role="supervisor",
                    token_hash=hashlib.sha256(token.encode()).digest(), created=int(time.time()),
                )
            )  # fmt: skip
    finally:
        await engine.dispose()
    return NodeProc(authority, config, token, root / f"node-{authority}.log")


# --- sampling -------------------------------------------------------------------------------


@dataclass(slots=True)
class RssSampler:
    """Samples the RSS (MiB) of some processes every 50 ms while running."""

    pids: dict[str, int]
    samples: dict[str, list[float]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.samples = {k: [] for k in self.pids}
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError, KeyError):
                    self.samples[name].append(_memory_mib(pid)[0])
            await asyncio.sleep(SAMPLE_S)

    async def stop(self) -> dict[str, float]:
        """Stop; the peak sampled RSS of each process."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        return {k: max(v, default=float("nan")) for k, v in self.samples.items()}


@dataclass(slots=True)
class Cpu:
    """CPU seconds of some processes, this one and the machine over an interval."""

    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        out = {k: _cpu_seconds(p) for k, p in self.pids.items()}
        out["bench"] = time.process_time()
        out["machine"] = _machine_cpu_seconds()
        return out

    def percent(self, seconds: float) -> dict[str, float]:
        """% of one core each used since the start; ``rest``: every other process."""
        end = self._now()
        used = {k: end[k] - self.start[k] for k in end}
        machine = used.pop("machine")
        used["rest"] = max(0.0, machine - sum(used.values()))
        return {k: 100 * v / seconds for k, v in used.items()}


# --- the benchmark --------------------------------------------------------------------------


def _request_content() -> bytes:
    """bench_hub's request (956 bytes encoded), with its deadline 14 days from now.

    The node's API refuses a deadline in the past; both the hub-only baseline and the
    node run carry exactly these bytes.
    """
    original = MessageContent.decode(_content())
    data = replace(original, deadline=int(time.time()) + 14 * 86400).encode()
    assert len(data) == CONTENT_SIZE, len(data)
    return data


@dataclass(slots=True)
class Bench:
    """One run: the hub, the two nodes and what was measured."""

    mode: Mode
    root: Path
    net: DevNetwork = field(
        default_factory=lambda: build_devnet(SEED, members=list(DEVNET_MEMBERS))
    )
    hub: Server | None = None
    a: NodeProc | None = None
    b: NodeProc | None = None
    content: bytes = field(default_factory=_request_content)
    sink_seq: int = 0
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> tuple[NodeProc, NodeProc]:
        assert self.a is not None, "nodes not set up"
        assert self.b is not None, "nodes not set up"
        return self.a, self.b

    @property
    def hub_url(self) -> str:
        assert self.hub is not None, "hub not set up"
        return self.hub.url

    async def set_up(self) -> None:
        hub_dir = self.root / "hub"
        database_url = f"sqlite+aiosqlite:///{self.root / 'hub.db'}"
        passphrase = _write_hub_dir(hub_dir, self.net, database_url)
        await _load_log(database_url, self.net)
        self.hub = Server("hub", _hub_argv(hub_dir, passphrase), self.root / "hub.log")
        await self.hub.start()
        self.a = await _write_node_dir(self.root, self.net, SENDER, self.hub.url)
        self.b = await _write_node_dir(self.root, self.net, RECIPIENT, self.hub.url)
        for node in self.nodes:
            node.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for node in self.nodes:
                await node.wait_ready(session)

    def tear_down(self) -> None:
        for proc in (self.a, self.b, self.hub):
            if proc is None:
                continue
            code = proc.stop()
            if code not in (0, None):
                self.notes.append(f"{proc.name} exited {code} on SIGTERM")

    # -- hub-only baseline ---------------------------------------------------------------------

    def _seal(self, n: int) -> list[bytes]:
        """``n`` envelopes FR-PNF -> DE-BKA with the benchmark content, created now."""
        net = self.net
        s, r = net.members[SENDER], net.members[SINK]
        now = int(time.time())
        out = []
        for _ in range(n):
            self.sink_seq += 1
            out.append(
                seal_envelope(
                    genesis=net.genesis, sender=s.authority, identity=s.identity,
                    recipients=[SealTo(r.authority, self.sink_seq, r.prekey.public_key)],
                    content=self.content, created=now, expires=now + 86400,
                    dir_seq=net.directory.seq, dir_head=net.directory.head,
                )
            )  # fmt: skip
        return out

    async def hub_only(self, label: str, *, batch: int = 0) -> dict[str, Any]:
        """Submit distinct envelopes with 16 concurrent tasks; 201s per second.

        ``batch``: instead, BATCH_TASKS tasks each submitting ``batch`` envelopes per
        ``POST /v1/messages/batch`` (a reference figure: not the baseline of node_ratio).
        """
        n = self.mode.hub_messages
        envelopes = self._seal(n + HUB_CONCURRENCY)
        self.results.setdefault("envelope_bytes", len(envelopes[0]))
        warm, timed = envelopes[:HUB_CONCURRENCY], envelopes[HUB_CONCURRENCY:]
        statuses: Counter[int] = Counter()
        member = self.net.members[SENDER]
        async with HubClient(
            self.hub_url, network=self.net.genesis.digest, key=member.transport, timeout=60
        ) as client:

            async def submit(env: bytes) -> int:
                try:
                    status, _ = await client.submit_message(env)
                except Exception:  # noqa: BLE001 - counted as an error
                    return 0
                return status

            async def submit_batch(chunk: list[bytes]) -> list[int]:
                try:
                    outcomes = await client.submit_messages(chunk)
                except Exception:  # noqa: BLE001 - counted as errors
                    return [0] * len(chunk)
                return [o[0] if isinstance(o, tuple) else o.status for o in outcomes]

            await asyncio.gather(*(submit(e) for e in warm))
            queue = iter(timed)
            chunks = iter([timed[i : i + batch] for i in range(0, len(timed), batch or 1)])

            async def worker() -> None:
                for env in queue:
                    statuses[await submit(env)] += 1

            async def batch_worker() -> None:
                for chunk in chunks:
                    statuses.update(await submit_batch(chunk))

            assert self.hub is not None
            cpu = Cpu({"hub": self.hub.pid})
            start = time.perf_counter()
            workers = (
                [batch_worker() for _ in range(BATCH_TASKS)]
                if batch
                else [worker() for _ in range(HUB_CONCURRENCY)]
            )
            await asyncio.wait_for(asyncio.gather(*workers), timeout=max(60, n))
            seconds = time.perf_counter() - start
            pct = cpu.percent(seconds)
        if set(statuses) != {201}:
            self.notes.append(f"hub-only {label}: statuses {dict(statuses)}")
        return {
            "label": label,
            "batch": batch,
            "messages": n,
            "accepted": statuses[201],
            "seconds": seconds,
            "rps": statuses[201] / seconds,
            "cpu_pct": pct,
        }

    # -- node throughput -----------------------------------------------------------------------

    def _api_message(self, **extra: Any) -> dict[str, Any]:
        c = MessageContent.decode(self.content)
        return {
            "to": [RECIPIENT], "kind": c.kind.value, "subject": c.subject, "body": c.body,
            "language": c.language, "urgency": c.urgency.value, "tlp": c.handling.tlp.value,
            "restrictions": sorted(r.value for r in c.handling.restrictions), "case": c.case,
            "deadline": c.deadline, **extra,
        }  # fmt: skip

    async def node_run(self) -> dict[str, Any]:
        """N messages A -> B through the API; until B stored all and A has all receipts."""
        a, b = self.nodes
        n = self.mode.messages
        body = json.dumps(self._api_message()).encode()
        adb, bdb = a.db(), b.db()
        try:
            progress = Progress(adb, bdb, n)
            statuses: Counter[int] = Counter()
            assert self.hub is not None
            routes0 = await _hub_routes(self.hub.url)
            cpu = Cpu({"A": a.pid, "B": b.pid, "hub": self.hub.pid})
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                start = time.perf_counter()
                poster = asyncio.ensure_future(_post_all(session, a, body, n, statuses))
                await progress.wait(start, poster, statuses, max(120.0, n / 2))
                await poster
                seconds = time.perf_counter() - start
                pct = cpu.percent(seconds)
            routes = await _hub_routes(self.hub.url)
            states = dict(
                adb.execute(
                    "SELECT state || CASE WHEN receipt IS NULL THEN '' ELSE '+receipt' END, "
                    "count(*) FROM outbox_recipients GROUP BY 1"
                )
            )
        finally:
            adb.close()
            bdb.close()
        if statuses[201] != n:
            self.notes.append(f"node run: API statuses {dict(statuses)}")
        if progress.receipts < n:
            self.notes.append(
                f"node run: only {progress.receipts} of {n} receipts after {seconds:.0f} s "
                f"({states})"
            )
        if states.get("sent+receipt"):
            self.notes.append(
                f"node run: {states['sent+receipt']} of A's outbox rows hold B's receipt but "
                "are in state 'sent', not 'delivered' (a lost update in the node)"
            )
        marks = progress.marks
        delivered_s = marks.get("delivered", seconds)
        return {
            "messages": n,
            "api_accepted": statuses[201],
            "delivered": progress.receipts,
            "stored": progress.stored,
            "posted_seconds": marks.get("posted"),
            "stored_seconds": marks.get("stored"),
            "delivered_seconds": delivered_s,
            "rps": progress.receipts / delivered_s,
            "stored_rps": progress.stored / marks.get("stored", seconds),
            "api_rps": statuses[201] / marks["posted"] if "posted" in marks else None,
            "outbox_states": states,
            "hub_requests_per_message": {
                k: round((v - routes0.get(k, 0.0)) / n, 2)
                for k, v in sorted(routes.items())
                if v - routes0.get(k, 0.0) > 0 and k != "/metrics"  # ours, not the nodes'
            },
            "seconds": seconds,  # the interval of cpu_pct
            "cpu_pct": pct,
        }

    # -- attachment ----------------------------------------------------------------------------

    async def attachment(self) -> dict[str, Any]:
        """One message with a large attachment A -> B, then downloaded from B's API."""
        a, b = self.nodes
        size = self.mode.attachment_mib * MIB
        src = self.root / "evidence.bin"
        _progress(f"writing a {self.mode.attachment_mib} MiB file ...")
        source_sha = await asyncio.to_thread(_write_random, src, size)
        before = {"A": _memory_mib(a.pid)[0], "B": _memory_mib(b.pid)[0]}
        sampler = RssSampler({"A": a.pid, "B": b.pid})
        sampler.start()
        out: dict[str, Any] = {"size": size, "rss_before_mib": before}
        stalls: dict[str, list[float]] = {"A": [], "B": []}
        try:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                _probing(session, {"A": a, "B": b}, stalls),
            ):
                _progress("sending it from A ...")
                mid = await self._send_attachment(session, src, out)
                _progress("downloading it from B ...")
                start = time.perf_counter()
                received, digest = await _download(
                    session, f"{b.api}/api/messages/{mid}/attachments/1", b.headers,
                    self.root / "downloaded.bin",
                )  # fmt: skip
                out["download_seconds"] = time.perf_counter() - start
        finally:
            peaks = await sampler.stop()
            src.unlink(missing_ok=True)
        out["api_status_ms"] = {
            k: {"median": 1000 * statistics.median(v), "max": 1000 * max(v), "count": len(v)}
            for k, v in stalls.items()
            if v
        }
        out["received"] = received
        out["sha256_match"] = received == size and digest == source_sha
        out["rss_peak_sampled_mib"] = peaks
        out["hwm_mib"] = {"A": _memory_mib(a.pid)[1], "B": _memory_mib(b.pid)[1]}
        out["rss_after_mib"] = {"A": _memory_mib(a.pid)[0], "B": _memory_mib(b.pid)[0]}
        return out

    async def _send_attachment(
        self, session: aiohttp.ClientSession, src: Path, out: dict[str, Any]
    ) -> str:
        """POST the message with ``src`` attached to A; wait for B's receipt; its id."""
        a, b = self.nodes
        adb, bdb = a.db(), b.db()
        try:
            start, wall = time.perf_counter(), time.time()
            # the bytes are streamed to the daemon (it never opens a path it is given)
            with src.open("rb") as f:
                async with session.post(
                    f"{a.api}/api/uploads", data=f, headers=a.headers,
                    params={"name": "statements.bin"},
                ) as r:  # fmt: skip
                    staged = await r.json()
                    if r.status != 201:
                        raise RuntimeError(f"A refused the upload: {r.status} {staged}")
            out["upload_seconds"] = time.perf_counter() - start
            body = self._api_message(
                subject="Bank statements 2024-2026, as requested", attachments=[staged["id"]]
            )
            async with session.post(f"{a.api}/api/messages", json=body, headers=a.headers) as r:
                answer = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"A refused the attachment: {r.status} {answer}")
            mid = str(answer["id"])
            out["post_seconds"] = time.perf_counter() - start
            limit = max(120.0, out["size"] / MIB)  # at least 1 MiB/s, or it is a failure
            marks = await _wait_receipt(adb, bdb, mid, start, limit)
        finally:
            adb.close()
            bdb.close()
        out.update(marks)
        accepted = _logged_acceptance(a.log, mid)
        out["accepted_seconds"] = None if accepted is None else accepted - wall
        if "delivered_seconds" not in marks:
            raise RuntimeError(
                f"the attachment was not delivered in time: {marks}\n{a.log_tail()}\n{b.log_tail()}"
            )
        return mid

    # -- catch-up ------------------------------------------------------------------------------

    def _seal_catchup(self, prekey: KemPublicKey, ids: Sequence[MessageId]) -> list[bytes]:
        """One envelope DE-BKA -> BR-PF per id, numbered from 1, sealed to ``prekey``."""
        net = self.net
        s, r = net.members[SINK], net.members[RECIPIENT]
        now = int(time.time())
        return [
            seal_envelope(
                genesis=net.genesis, sender=s.authority, identity=s.identity,
                recipients=[SealTo(r.authority, seq, prekey)], content=self.content,
                created=now, expires=now + 86400, dir_seq=net.directory.seq,
                dir_head=net.directory.head, message_id=mid,
            )
            for seq, mid in enumerate(ids, 1)
        ]  # fmt: skip

    async def _recipient_prekey(self, client: HubClient, timeout: float = 60.0) -> KemPublicKey:
        """B's newest valid published prekey, verified as a sending node does (B publishes
        its first one from its sync loop, which may not have run yet: asked again every
        200 ms)."""
        member = self.net.members[RECIPIENT]
        deadline = time.monotonic() + timeout
        while True:
            now = int(time.time())
            identity = self.net.directory.active_member(member.authority, now)
            best = best_prekey(
                await client.get_prekeys(member.authority), genesis=self.net.genesis,
                identity=identity.certificate.identity_key, authority=member.authority, now=now,
            )  # fmt: skip
            if best is not None:
                return best.key
            if time.monotonic() > deadline:
                raise RuntimeError(f"BR-PF published no valid prekey in {timeout:g} s")
            await asyncio.sleep(0.2)

    async def catchup(self) -> dict[str, Any]:
        """B stopped, C envelopes queued for it at the hub, B started: until all are stored."""
        _, b = self.nodes
        assert self.hub is not None
        c = self.mode.catchup
        sink = self.net.members[SINK]
        out: dict[str, Any] = {"messages": c}
        async with HubClient(
            self.hub_url, network=self.net.genesis.digest, key=sink.transport, timeout=60
        ) as client:
            prekey = await self._recipient_prekey(client)
            bdb = b.db()
            try:
                b0 = _count(bdb, INBOX_SQL)
            finally:
                bdb.close()
            out["b_exit"] = b.stop()
            if out["b_exit"] != 0:
                self.notes.append(f"catch-up: {b.name} exited {out['b_exit']} on SIGTERM")
            _progress(f"catch-up: sealing {c:,} envelopes DE-BKA -> BR-PF ...")
            ids = [MessageId.new() for _ in range(c)]
            start = time.perf_counter()
            envelopes = self._seal_catchup(prekey, ids)
            out["seal_seconds"] = time.perf_counter() - start
            _progress(f"catch-up: submitting them to the hub, {HUB_CONCURRENCY} at a time ...")
            start = time.perf_counter()
            statuses = await asyncio.wait_for(_submit_all(client, envelopes), timeout=max(60, c))
            out["submit_seconds"] = time.perf_counter() - start
            del envelopes
        out["submit_statuses"] = dict(statuses)
        if statuses[201] != c:
            self.notes.append(f"catch-up: the hub answered {dict(statuses)} to {c} submissions")
        _progress(f"catch-up: starting B with {statuses[201]:,} messages waiting ...")
        out.update(await self._restart_and_drain(b, b0, c))
        out.update(_check_catchup(b, ids, self.notes))
        return out

    async def _restart_and_drain(self, b: NodeProc, b0: int, c: int) -> dict[str, Any]:
        """Start B; poll its database until it stored and acknowledged all ``c`` (see
        :func:`_wait_catchup`), sampling its RSS; its CPU, memory and the hub's work."""
        assert self.hub is not None
        limit = max(120.0, c / 10)  # at least 10 msg/s, or it is a failure
        routes0 = await _hub_routes(self.hub.url)
        log_offset = b.log.stat().st_size
        cpu = Cpu({"hub": self.hub.pid})
        start = time.perf_counter()
        b.start()
        sampler = RssSampler({"B": b.pid})
        sampler.start()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                ready = asyncio.ensure_future(b.wait_ready(session, timeout=limit))
                try:
                    marks, rss_marks, stored = await _wait_catchup(
                        b, b0=b0, c=c, start=start, limit=limit, ready=ready
                    )
                finally:
                    if not ready.done():
                        ready.cancel()
                    await asyncio.gather(ready, return_exceptions=True)
                if not ready.cancelled() and ready.exception() is not None:
                    self.notes.append(f"catch-up: B not ready: {ready.exception()}")
            if b.proc is None or b.proc.poll() is not None:
                raise RuntimeError(f"B exited during the catch-up:\n{b.log_tail()}")
            seconds = time.perf_counter() - start
            pct = cpu.percent(seconds)
            b_cpu = _cpu_seconds(b.pid)
        finally:
            peaks = await sampler.stop()
        rss, hwm = _memory_mib(b.pid)
        routes = await _hub_routes(self.hub.url)
        pct["B"] = 100 * b_cpu / seconds
        pct["rest"] = max(0.0, pct["rest"] - pct["B"])
        stored_s = marks.get("stored")
        if stored_s is None:
            self.notes.append(
                f"catch-up: B stored only {stored} of {c} in {seconds:.0f} s\n{b.log_tail()}"
            )
        elif "acked" not in marks:
            self.notes.append(f"catch-up: B had not acknowledged all {c} after {seconds:.0f} s")
        log = b.log.read_bytes()[log_offset:].decode(errors="replace")
        if "Traceback" in log:
            self.notes.append(f"catch-up: B logged a traceback:\n{log[-3000:]}")
        return {
            "stored": stored,
            "seconds": stored_s,
            "ready_seconds": marks.get("ready"),
            "acked_seconds": marks.get("acked"),
            "msgs_per_s": c / stored_s if stored_s else None,
            "rss_marks_mib": rss_marks,
            "rss_peak_sampled_mib": peaks["B"],
            "hwm_mib": hwm,
            "rss_after_mib": rss,
            "peak_rss_mib": max(hwm, peaks["B"]),
            "cpu_seconds_b": b_cpu,
            "interval_seconds": seconds,  # the interval of cpu_pct
            "cpu_pct": pct,
            "cpu_ms_per_message": {
                "B": 1000 * b_cpu / c,
                "hub": pct["hub"] / 100 * seconds / c * 1000,
            },
            "hub_requests_per_message": {
                k: round((v - routes0.get(k, 0.0)) / c, 4)
                for k, v in sorted(routes.items())
                if v - routes0.get(k, 0.0) > 0 and k != "/metrics"
            },
            "push_stream_closed": log.count("push stream closed"),
            "log_tracebacks": log.count("Traceback"),
        }

    # -- bulletin ------------------------------------------------------------------------------

    async def bulletin(self) -> dict[str, Any]:
        """A -> the 100 LU-B members, the bench playing them: one envelope, then 100."""
        a, _ = self.nodes
        out: dict[str, Any] = {"recipients": BULLETIN_RECIPIENTS}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            players = [
                SimRecipient(
                    self.net.members[aid], KemPrivateKey.generate(),
                    HubClient(self.hub_url, network=self.net.genesis.digest,
                              key=self.net.members[aid].transport, timeout=60, session=session),
                )
                for aid, _ in BULLETIN_MEMBERS
            ]  # fmt: skip
            _progress(f"bulletin: publishing {len(players)} recipients' prekeys ...")
            await self._publish_prekeys(players)
            to = [str(p.member.authority) for p in players]
            _progress(f"bulletin: one message to {len(to)} recipients ...")
            one = json.dumps(self._bulletin_message(to)).encode()
            out["one"] = await self._bulletin_way(session, players, [one])
            if out["one"]["ids"]:
                mid = out["one"]["ids"][0]
                adb = a.db()
                try:
                    row = adb.execute(
                        "SELECT length(envelope) FROM outbox WHERE message_id = ?", (mid,)
                    ).fetchone()
                finally:
                    adb.close()
                out["envelope_bytes"] = None if row is None else row[0]
                accepted = _logged_acceptance(a.log, mid)
                out["one"]["accepted_seconds"] = (
                    None if accepted is None else accepted - out["one"]["wall_start"]
                )
            _progress(f"bulletin: {len(to)} messages, one recipient each ...")
            separate = [json.dumps(self._bulletin_message([t])).encode() for t in to]
            out["separate"] = await self._bulletin_way(session, players, separate)
        out["recipients_opened"] = sum(p.received for p in players)
        out["recipients_fallback_ka"] = sum(p.fallback for p in players)
        errors = [e for p in players for e in p.errors]
        out["recipient_errors"] = errors[:10]
        if errors:
            self.notes.append(f"bulletin: {len(errors)} recipient errors, first: {errors[0]}")
        if out["recipients_fallback_ka"]:
            self.notes.append(
                f"bulletin: {out['recipients_fallback_ka']} envelopes were sealed to a "
                "recipient's certified key-agreement key, not to its published prekey"
            )
        return out

    def _bulletin_message(self, to: Sequence[str]) -> dict[str, Any]:
        """The node run's subject and body as a bulletin (which carries no deadline)."""
        body = self._api_message(to=list(to), kind=Kind.BULLETIN.value)
        del body["deadline"]
        return body

    async def _publish_prekeys(self, players: Sequence[SimRecipient]) -> None:
        """Each recipient publishes a signed prekey, as its node would (16 at a time)."""
        now = int(time.time())
        limit = asyncio.Semaphore(HUB_CONCURRENCY)

        async def publish(p: SimRecipient) -> None:
            signed = make_prekey(
                genesis=self.net.genesis, authority=p.member.authority,
                identity=p.member.identity, key=p.prekey.public_key, not_before=now - 60,
                not_after=now + PREKEY_LIFETIME,
            ).signed.encode()  # fmt: skip
            async with limit:
                await p.client.put_prekey(signed)

        await asyncio.wait_for(asyncio.gather(*(publish(p) for p in players)), timeout=120)

    async def _bulletin_way(
        self, session: aiohttp.ClientSession, players: Sequence[SimRecipient],
        bodies: Sequence[bytes],
    ) -> dict[str, Any]:  # fmt: skip
        """POST ``bodies`` to A while the recipients pull; until A holds a receipt from each."""
        a, _ = self.nodes
        assert self.hub is not None
        n = len(players)
        for p in players:
            p.expect = p.received + 1  # one envelope each, whichever way
        adb = a.db()
        statuses: Counter[int] = Counter()
        ids: list[str] = []
        refusals: list[str] = []
        marks: dict[str, float] = {}
        pulls0 = sum(p.pulls for p in players)
        routes0 = await _hub_routes(self.hub.url)
        try:
            a0 = _count(adb, RECEIPTS_SQL)
            cpu = Cpu({"A": a.pid, "hub": self.hub.pid})
            start, wall = time.perf_counter(), time.time()
            poster = asyncio.ensure_future(
                _post_each(session, a, bodies, statuses=statuses, ids=ids, refusals=refusals)
            )
            player = asyncio.ensure_future(
                _play_recipients(players, self.net, start + BULLETIN_LIMIT)
            )
            try:
                receipts = 0
                while time.perf_counter() - start < BULLETIN_LIMIT:
                    await asyncio.sleep(SAMPLE_S)
                    now = time.perf_counter() - start
                    if poster.done():
                        marks.setdefault("posted", now)
                    if all(p.received >= p.expect for p in players):
                        marks.setdefault("acked", now)
                    receipts = _count(adb, RECEIPTS_SQL) - a0
                    if receipts >= n:
                        marks["delivered"] = now
                        break
                    if poster.done() and (poster.exception() or statuses[201] < len(bodies)):
                        break  # refused: the receipts will never come
                seconds = time.perf_counter() - start
                pct = cpu.percent(seconds)
            finally:
                for task in (poster, player):
                    if not task.done():
                        task.cancel()
                await asyncio.gather(poster, player, return_exceptions=True)
        finally:
            adb.close()
        routes = await _hub_routes(self.hub.url)
        label = "one message" if len(bodies) == 1 else f"{len(bodies)} messages"
        if statuses[201] != len(bodies):
            self.notes.append(
                f"bulletin, {label}: A's API answered {dict(statuses)}"
                + (f", first refusal: {refusals[0]}" if refusals else "")
            )
        if receipts < n:
            self.notes.append(
                f"bulletin, {label}: only {receipts} of {n} receipts in {seconds:.0f} s"
            )
        return {
            "posts": len(bodies),
            "api_accepted": statuses[201],
            "ids": ids,
            "receipts": receipts,
            "seconds": marks.get("delivered"),
            "posted_seconds": marks.get("posted"),
            "acked_seconds": marks.get("acked"),
            "wall_start": wall,
            "interval_seconds": seconds,  # the interval of cpu_pct
            "cpu_pct": pct,
            "cpu_ms": {k: v / 100 * seconds * 1000 for k, v in pct.items()},
            "recipient_pulls": sum(p.pulls for p in players) - pulls0,
            "hub_requests": {
                k: round(v - routes0.get(k, 0.0))
                for k, v in sorted(routes.items())
                if v - routes0.get(k, 0.0) > 0 and k != "/metrics"
            },
        }


@contextlib.asynccontextmanager
async def _probing(
    session: aiohttp.ClientSession, nodes: dict[str, NodeProc], times: dict[str, list[float]]
) -> AsyncIterator[None]:
    """Probe each node's API (:func:`_probe`) while the block runs."""
    tasks = [asyncio.create_task(_probe(session, node, times[k])) for k, node in nodes.items()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _probe(session: aiohttp.ClientSession, node: NodeProc, times: list[float]) -> None:
    """``GET /api/status`` every 250 ms: how long the node's event loop takes to answer."""
    while True:
        start = time.perf_counter()
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{node.api}/api/status", headers=node.headers) as r:
                await r.read()
        times.append(time.perf_counter() - start)
        await asyncio.sleep(0.25)


def _logged_acceptance(log: Path, mid: str) -> float | None:
    """When node A logged the hub's acceptance of message ``mid`` (epoch seconds), if it did.

    The node logs JSON lines by default (``"time"``: ISO 8601 with its offset); a line
    of ``--log-format text`` starts with the local time, ``YYYY-MM-DD HH:MM:SS,mmm``.
    """
    needle = f"message {mid} accepted by the hub"
    for line in log.read_text(errors="replace").splitlines():
        if needle not in line:
            continue
        if line.startswith("{"):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                return datetime.fromisoformat(json.loads(line)["time"]).timestamp()
            continue
        stamp, _, millis = line[:23].partition(",")
        with contextlib.suppress(ValueError):
            return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
    return None


async def _wait_receipt(
    adb: sqlite3.Connection, bdb: sqlite3.Connection, mid: str, start: float, limit: float
) -> dict[str, float]:
    """Seconds from ``start`` until B stored message ``mid`` and until A has B's receipt."""
    marks: dict[str, float] = {}
    while time.perf_counter() - start < limit:
        await asyncio.sleep(0.05)
        now = time.perf_counter() - start
        if "stored_seconds" not in marks:
            row = bdb.execute("SELECT 1 FROM inbox WHERE message_id = ?", (mid,)).fetchone()
            if row is not None:
                marks["stored_seconds"] = now
        row = adb.execute(
            "SELECT state, receipt IS NOT NULL FROM outbox_recipients WHERE message_id = ?",
            (mid,),
        ).fetchone()
        if row is not None and row[1]:
            marks["delivered_seconds"] = now
            break
        if row is not None and row[0] == "failed":
            break
    return marks


async def _download(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], dst: Path
) -> tuple[int, bytes]:
    """Stream ``url`` to ``dst`` (removed afterwards); the bytes received and their SHA-256."""
    h = hashlib.sha256()
    received = 0
    try:
        async with session.get(url, headers=headers) as r:
            if r.status != 200:
                raise RuntimeError(f"the download was refused: {r.status} {await r.text()}")
            with dst.open("wb") as f:
                async for chunk in r.content.iter_chunked(MIB):
                    h.update(chunk)
                    f.write(chunk)
                    received += len(chunk)
    finally:
        dst.unlink(missing_ok=True)
    return received, h.digest()


async def _hub_routes(url: str) -> dict[str, float]:
    """Requests the hub has handled so far, by route (from ``GET /metrics``)."""
    prefix = "globe_hub_request_duration_seconds_count{"
    out: dict[str, float] = {}
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(f"{url}/metrics") as resp,
        ):
            for line in (await resp.text()).splitlines():
                if line.startswith(prefix):
                    labels, _, value = line[len(prefix) :].partition("} ")
                    route = labels.partition('route="')[2].partition('"')[0]
                    out[route] = out.get(route, 0.0) + float(value)
    return out


async def _post_all(
    session: aiohttp.ClientSession, a: NodeProc, body: bytes, n: int, statuses: Counter[int]
) -> None:
    """POST ``body`` to A's ``/api/messages`` ``n`` times, API_CONCURRENCY at a time."""
    posted = 0
    headers = {**a.headers, "Content-Type": "application/json"}

    async def post() -> None:
        nonlocal posted
        while posted < n:
            posted += 1
            try:
                async with session.post(f"{a.api}/api/messages", data=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] += 1

    await asyncio.gather(*(post() for _ in range(API_CONCURRENCY)))


@dataclass(slots=True)
class Progress:
    """The node run as the two databases show it: B's inbox rows, A's receipts."""

    adb: sqlite3.Connection
    bdb: sqlite3.Connection
    n: int
    a0: int = 0
    b0: int = 0
    receipts: int = 0
    stored: int = 0
    marks: dict[str, float] = field(default_factory=dict)  # seconds from the start

    def __post_init__(self) -> None:
        self.a0 = _count(self.adb, RECEIPTS_SQL)
        self.b0 = _count(self.bdb, INBOX_SQL)

    async def wait(
        self, start: float, poster: asyncio.Future[None], statuses: Counter[int], limit: float
    ) -> None:
        """Poll every 50 ms until A has all N receipts (or ``limit`` seconds)."""
        while time.perf_counter() - start < limit:
            await asyncio.sleep(0.05)
            now = time.perf_counter() - start
            if poster.done():
                self.marks.setdefault("posted", now)
            self.stored = _count(self.bdb, INBOX_SQL) - self.b0
            if self.stored >= self.n:
                self.marks.setdefault("stored", now)
            self.receipts = _count(self.adb, RECEIPTS_SQL) - self.a0
            if self.receipts >= self.n:
                self.marks["delivered"] = now
                return
            if poster.done() and (poster.exception() is not None or statuses[201] < self.n):
                return  # some were refused: they will never arrive


def _count(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> int:
    value: int = conn.execute(sql, params).fetchone()[0]
    return value


async def _submit_all(client: HubClient, envelopes: Sequence[bytes]) -> Counter[int]:
    """Submit ``envelopes`` with HUB_CONCURRENCY tasks over one client; the statuses."""
    statuses: Counter[int] = Counter()
    queue = iter(envelopes)

    async def worker() -> None:
        for env in queue:
            try:
                status, _ = await client.submit_message(env)
            except Exception:  # noqa: BLE001 - counted as an error
                status = 0
            statuses[status] += 1

    await asyncio.gather(*(worker() for _ in range(HUB_CONCURRENCY)))
    return statuses


async def _wait_catchup(
    b: NodeProc, *, b0: int, c: int, start: float, limit: float, ready: asyncio.Future[None]
) -> tuple[dict[str, float], list[float], int]:
    """Poll B's database every 50 ms (``limit`` seconds at most): seconds from ``start``
    until B is ready, until its inbox holds ``c`` more rows than ``b0`` and until all are
    acknowledged at the hub; B's RSS (MiB) when each share of CATCHUP_MARKS was stored;
    the rows stored."""
    marks: dict[str, float] = {}
    rss: list[float] = []
    thresholds = [math.ceil(share * c) for share in CATCHUP_MARKS]
    conn: sqlite3.Connection | None = None
    stored = 0
    try:
        while time.perf_counter() - start < limit:
            await asyncio.sleep(SAMPLE_S)
            now = time.perf_counter() - start
            if ready.done() and not ready.cancelled() and ready.exception() is None:
                marks.setdefault("ready", now)
            if b.proc is None or b.proc.poll() is not None:
                break
            try:
                if conn is None:
                    conn = b.db()
                stored = _count(conn, INBOX_SQL) - b0
                acked = _count(conn, ACKED_SQL, (SINK,)) if stored >= c else 0
            except sqlite3.OperationalError:  # not open yet, or migrating at start-up
                if conn is not None:
                    conn.close()
                conn = None
                continue
            while len(rss) < len(thresholds) and stored >= thresholds[len(rss)]:
                try:
                    rss.append(_memory_mib(b.pid)[0])
                except (OSError, KeyError):  # exited: the loop ends on the next round
                    break
            if stored >= c:
                marks.setdefault("stored", now)
            if acked >= c and "ready" in marks:
                marks["acked"] = now
                break
    finally:
        if conn is not None:
            conn.close()
    return marks, rss, stored


def _check_catchup(b: NodeProc, ids: Sequence[MessageId], notes: list[str]) -> dict[str, Any]:
    """What B's database holds of the catch-up: each message id exactly once?"""
    bdb = b.db()
    try:
        got = Counter(
            mid for (mid,) in bdb.execute("SELECT message_id FROM inbox WHERE sender = ?", (SINK,))
        )
        orders = dict(
            bdb.execute('SELECT "order", count(*) FROM inbox WHERE sender = ? GROUP BY 1', (SINK,))
        )
    finally:
        bdb.close()
    sent = {str(mid) for mid in ids}
    missing = len(sent - got.keys())
    duplicated = sum(1 for k in got.values() if k > 1)
    unexpected = len(got.keys() - sent)
    if missing or duplicated or unexpected:
        notes.append(
            f"catch-up: B's inbox misses {missing} of the {len(sent)} messages, holds "
            f"{duplicated} more than once and {unexpected} not sent"
        )
    return {
        "inbox_rows": sum(got.values()),
        "missing": missing,
        "duplicated": duplicated,
        "orders": orders,
    }


@dataclass(slots=True)
class SimRecipient:
    """A bulletin recipient the bench plays: its member keys, prekey and hub mailbox."""

    member: DevMember
    prekey: KemPrivateKey
    client: HubClient
    cursor: int = 0  # the mailbox cursor acknowledged so far
    received: int = 0  # envelopes opened and acknowledged with a receipt
    expect: int = 0  # envelopes to receive before this recipient is done
    fallback: int = 0  # envelopes sealed to the certified key-agreement key
    pulls: int = 0  # GET /v1/mailbox requests made
    errors: list[str] = field(default_factory=list)

    def private_key(self, key_id: KeyId) -> KemPrivateKey | None:
        """The private half an envelope names: the published prekey, or the certified key."""
        for key in (self.prekey, self.member.ka):
            if key.key_id == key_id:
                return key
        return None

    async def pull(self, net: DevNetwork) -> None:
        """Fetch what waits, open each envelope, acknowledge it with a signed receipt (as a
        node's inbox does: one acknowledgement for the page)."""
        me = self.member.authority
        self.pulls += 1
        items, cursor = await self.client.mailbox(after=self.cursor)
        receipts: list[bytes] = []
        notices: list[int] = []
        for item in items:
            if item.kind != "envelope":
                notices.append(item.cursor)
                continue
            env = parse_envelope(item.data)
            h = env.header
            now = int(time.time())
            opened = open_envelope(
                env, directory=net.directory, me=me, private_key=self.private_key, now=now
            )
            MessageContent.decode(opened.content)
            if h.recipient(me)[1].prekey != self.prekey.key_id:
                self.fallback += 1
            receipts.append(
                make_receipt(
                    genesis=net.genesis, identity=self.member.identity, message_id=h.message_id,
                    envelope_hash=env.hash, sender=h.sender, recipient=me, time=now,
                ).encode()
            )  # fmt: skip
        if receipts or notices:
            answer = await self.client.ack(receipts, notices)
            refused = answer.get("refused") or []
            if refused:
                self.errors.append(f"{me}: the hub refused receipts: {refused}")
            self.received += len(receipts) - len(refused)
        self.cursor = cursor


async def _play_recipients(
    players: Sequence[SimRecipient], net: DevNetwork, deadline: float
) -> int:
    """Pass after pass over the recipients still waiting (HUB_CONCURRENCY requests at a
    time, 50 ms apart) until each has its envelopes or ``deadline``; the passes made."""
    limit = asyncio.Semaphore(HUB_CONCURRENCY)
    passes = 0

    async def one(p: SimRecipient) -> None:
        async with limit:
            try:
                await p.pull(net)
            except (GlobeError, aiohttp.ClientError, TimeoutError) as exc:
                p.errors.append(f"{p.member.authority}: {type(exc).__name__}: {exc}")

    while time.perf_counter() < deadline:
        waiting = [p for p in players if p.received < p.expect]
        if not waiting:
            break
        passes += 1
        await asyncio.gather(*(one(p) for p in waiting))
        await asyncio.sleep(SAMPLE_S)
    return passes


async def _post_each(
    session: aiohttp.ClientSession, a: NodeProc, bodies: Iterable[bytes], *,
    statuses: Counter[int], ids: list[str], refusals: list[str],
) -> None:  # fmt: skip
    """POST each body to A's ``/api/messages``, API_CONCURRENCY at a time; the ids of the
    messages A accepted in ``ids``, what it answered otherwise in ``refusals``."""
    headers = {**a.headers, "Content-Type": "application/json"}
    queue = iter(bodies)

    async def post() -> None:
        for body in queue:
            try:
                async with session.post(f"{a.api}/api/messages", data=body, headers=headers) as r:
                    answer = await r.read()
                    statuses[r.status] += 1
                    if r.status == 201:
                        ids.append(str(json.loads(answer)["id"]))
                    else:
                        refusals.append(f"{r.status} {answer[:500].decode(errors='replace')}")
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] += 1

    await asyncio.gather(*(post() for _ in range(API_CONCURRENCY)))


def _write_random(path: Path, size: int) -> bytes:
    """Write ``size`` random bytes to ``path`` in 1 MiB chunks; their SHA-256."""
    h = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(MIB, left))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return h.digest()


# --- report ---------------------------------------------------------------------------------


def _cpu_ms_per_message(pct: dict[str, float], seconds: float, n: int) -> dict[str, float]:
    """CPU milliseconds per message of each process, from % of a core over ``seconds``."""
    return {k: v / 100 * seconds / max(1, n) * 1000 for k, v in pct.items()}


def _fmt(value: float | None, spec: str = ",.1f") -> str:
    return "n/a" if value is None else format(value, spec)


def _report(bench: Bench) -> dict[str, Any]:
    """Print the tables and the goals of the phases that ran; return their JSON fields."""
    r = bench.results
    out: dict[str, Any] = {}
    if "node" in r:
        out.update(_report_node(bench))
    if "attachment" in r:
        out.update(_report_attachment(r["attachment"]))
    if "catchup" in r:
        out.update(_report_catchup(r["catchup"]))
    if "bulletin" in r:
        out.update(_report_bulletin(r["bulletin"]))
    if "crypto" in r:
        out.update(_report_crypto(r["crypto"]))
    for note in bench.notes:
        print(f"note: {note}")
    out["notes"] = bench.notes
    return out


def _report_node(bench: Bench) -> dict[str, Any]:
    r = bench.results
    hubs = r["hub_only"]
    node = r["node"]
    hub_rps = statistics.mean(h["rps"] for h in hubs)
    node_ratio = node["rps"] / hub_rps
    n = node["messages"]
    print(
        f"messages: {n} requests FR-PNF -> BR-PF, {CONTENT_SIZE} B content "
        f"(envelope {r['envelope_bytes']:,} B), relayed by the hub"
    )
    print(f"{'':<50} {'msg/s':>8} {'seconds':>8}  CPU % of a core")
    for h in hubs:
        cpu = h["cpu_pct"]
        print(
            f"{'hub only, ' + h['label'] + f' ({HUB_CONCURRENCY} concurrent)':<50} "
            f"{h['rps']:>8.1f} {h['seconds']:>8.2f}  hub {cpu['hub']:.0f}, "
            f"bench {cpu['bench']:.0f}, rest {cpu['rest']:.0f}"
        )
    batched = r.get("hub_only_batched")
    extra: dict[str, float] = {}
    if batched is not None:
        extra["hub_rps_batched"] = round(batched["rps"], 2)
        b_ms = _cpu_ms_per_message(batched["cpu_pct"], batched["seconds"], batched["accepted"])
        extra["hub_cpu_ms_hub_only_batched"] = round(b_ms["hub"], 3)
        cpu = batched["cpu_pct"]
        print(
            f"{f'hub only, {BATCH_TASKS} x batches of {BATCH_SIZE} (reference)':<50} "
            f"{batched['rps']:>8.1f} {batched['seconds']:>8.2f}  hub {cpu['hub']:.0f}, "
            f"bench {cpu['bench']:.0f}, rest {cpu['rest']:.0f}"
        )
    rows = (
        ("node: A's API answered all POSTs", node["api_rps"], node["posted_seconds"]),
        ("node: B stored all (verified, decrypted, receipt)", node["stored_rps"],
         node["stored_seconds"]),
        ("node: A has all delivered (receipt back)", node["rps"], node["delivered_seconds"]),
    )  # fmt: skip
    for label, rps, seconds in rows:
        print(f"{label:<50} {_fmt(rps):>8} {_fmt(seconds, '.2f'):>8}")
    cpu = node["cpu_pct"]
    print(
        f"CPU during the node run, % of a core: A {cpu['A']:.0f}, B {cpu['B']:.0f}, "
        f"hub {cpu['hub']:.0f}, bench {cpu['bench']:.0f}, rest {cpu['rest']:.0f}"
    )
    per_msg = _cpu_ms_per_message(node["cpu_pct"], node["seconds"], node["delivered"])
    hub_per_msg = [_cpu_ms_per_message(h["cpu_pct"], h["seconds"], h["accepted"]) for h in hubs]
    hub_only = {k: statistics.mean(h[k] for h in hub_per_msg) for k in ("hub", "bench")}
    print(
        "CPU per message, ms: node run: "
        + ", ".join(f"{k} {per_msg[k]:.1f}" for k in ("A", "B", "hub"))
        + f"; hub only: hub {hub_only['hub']:.2f}, bench {hub_only['bench']:.2f}"
    )
    if node.get("hub_requests_per_message"):
        print(
            "hub requests per message during the node run: "
            + ", ".join(f"{k} {v:g}" for k, v in node["hub_requests_per_message"].items())
        )
    print(
        f"node_ratio = node msg/s / hub-only msg/s (mean of before and after, {hub_rps:.1f}) "
        f"= {node_ratio:.3f} (higher is better)"
    )
    print()
    return {
        "node_ratio": round(node_ratio, 4),
        "node_rps": round(node["rps"], 2),
        "node_stored_rps": round(node["stored_rps"], 2),
        "hub_rps": round(hub_rps, 2),
        "hub_rps_before": round(hubs[0]["rps"], 2),
        "hub_rps_after": round(hubs[-1]["rps"], 2),
        "node_messages": n,
        "node_delivered": node["delivered"],
        "node_cpu_pct": {k: round(v) for k, v in node["cpu_pct"].items()},
        "node_cpu_ms_per_message": {k: round(v, 2) for k, v in per_msg.items()},
        "hub_only_cpu_ms_per_message": {k: round(v, 3) for k, v in hub_only.items()},
        "node_cpu_ms_sender": round(per_msg["A"], 2),
        "node_cpu_ms_recipient": round(per_msg["B"], 2),
        "hub_cpu_ms_node_path": round(per_msg["hub"], 2),
        "hub_cpu_ms_hub_only": round(hub_only["hub"], 3),
        **extra,
    }


def _report_attachment(att: dict[str, Any]) -> dict[str, Any]:
    size = att["size"]
    # VmHWM and VmRSS are kept by the kernel with some lag: the larger of the two peaks.
    peaks = {k: max(v, att["rss_peak_sampled_mib"][k]) for k, v in att["hwm_mib"].items()}
    peak = max(peaks.values())
    met = all(v < GOAL_RSS_MIB for v in peaks.values())
    print(f"attachment: {size // MIB} MiB of random bytes, A -> hub -> B, then B's API -> disk")
    print(f"{'phase':<62} {'seconds':>8} {'MB/s':>8}")
    phases = (
        ("POST to A until its answer (A encrypts to its blob dir)", att["post_seconds"]),
        (
            "POST to A until the hub accepted it (A's log; blob uploaded)",
            att.get("accepted_seconds"),
        ),
        ("POST to A until B stored it (B fetched and checked the blob)", att.get("stored_seconds")),
        ("POST to A until A has B's receipt (all of the send)", att["delivered_seconds"]),
        ("download from B's API (B decrypts, streams)", att["download_seconds"]),
    )
    for label, seconds in phases:
        mbps = None if seconds is None else _mbps(size, seconds)
        print(f"{label:<62} {_fmt(seconds):>8} {_fmt(mbps):>8}")
    print(f"SHA-256 of the download equals the source's: {'yes' if att['sha256_match'] else 'NO'}")
    print("resident memory of the node processes, MiB:")
    print(f"{'node':<6} {'RSS before':>11} {'sampled peak':>13} {'VmHWM':>8} {'RSS after':>10}")
    for side in ("A", "B"):
        print(
            f"{side:<6} {att['rss_before_mib'][side]:>11.1f} "
            f"{att['rss_peak_sampled_mib'][side]:>13.1f} {att['hwm_mib'][side]:>8.1f} "
            f"{att['rss_after_mib'][side]:>10.1f}"
        )
    print(
        f"goal: peak resident memory < {GOAL_RSS_MIB:g} MiB on each side (whole run): "
        f"A {peaks['A']:.1f}, B {peaks['B']:.1f} MiB: {'met' if met else 'NOT met'}"
    )
    for side, st in att.get("api_status_ms", {}).items():
        print(
            f"node {side}'s GET /api/status during the attachment phase: median "
            f"{st['median']:.0f} ms, slowest {st['max']:,.0f} ms ({st['count']} probes)"
        )
    print()
    return {
        "attachment_mb": round(size / 1e6, 1),
        "attachment_mib": size // MIB,
        "attachment_peak_rss_mb": round(peak, 1),
        "attachment_hwm_mb": {k: round(v, 1) for k, v in att["hwm_mib"].items()},
        "attachment_peak_rss_mb_each": {k: round(v, 1) for k, v in peaks.items()},
        "attachment_api_status_max_ms": {
            k: round(v["max"]) for k, v in att.get("api_status_ms", {}).items()
        },
        "attachment_sampled_peak_mb": {
            k: round(v, 1) for k, v in att["rss_peak_sampled_mib"].items()
        },
        "attachment_rss_before_mb": {k: round(v, 1) for k, v in att["rss_before_mib"].items()},
        "attachment_rss_goal_met": met,
        "attachment_sha256_match": att["sha256_match"],
        "attachment_post_seconds": round(att["post_seconds"], 2),
        "attachment_delivered_seconds": round(att["delivered_seconds"], 2),
        "attachment_stored_seconds": att.get("stored_seconds"),
        "attachment_accepted_seconds": att.get("accepted_seconds"),
        "attachment_download_seconds": round(att["download_seconds"], 2),
        "attachment_send_mbps": round(_mbps(size, att["delivered_seconds"]), 1),
        "attachment_download_mbps": round(_mbps(size, att["download_seconds"]), 1),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _report_catchup(cu: dict[str, Any]) -> dict[str, Any]:
    c = cu["messages"]
    print(
        f"catch-up: B stopped, {c:,} envelopes DE-BKA -> BR-PF queued at the hub "
        f"(sealed in {cu['seal_seconds']:.1f} s, submitted at "
        f"{c / cu['submit_seconds']:,.0f}/s, outside the timing), B started again"
    )
    print(f"{'from B process start until':<50} {'seconds':>8} {'msg/s':>8}")
    rows = (
        ("B answers as ready (active, synced, push connected)", cu["ready_seconds"], None),
        (f"B's inbox holds all {c:,}", cu["seconds"], cu["msgs_per_s"]),
        ("B has acknowledged all at the hub", cu["acked_seconds"], None),
    )
    for label, seconds, rate in rows:
        print(f"{label:<50} {_fmt(seconds, '.2f'):>8} {_fmt(rate):>8}")
    shares = CATCHUP_MARKS[: len(cu["rss_marks_mib"])]
    marks = ", ".join(
        f"{share:.0%} {mib:.1f}" for share, mib in zip(shares, cu["rss_marks_mib"], strict=True)
    )
    print(
        f"B's resident memory, MiB: when stored {marks or 'n/a'}; sampled peak "
        f"{cu['rss_peak_sampled_mib']:.1f}, VmHWM {cu['hwm_mib']:.1f}, after "
        f"{cu['rss_after_mib']:.1f}"
    )
    per_msg = cu["cpu_ms_per_message"]
    pct = cu["cpu_pct"]
    print(
        f"CPU per message, ms: B {per_msg['B']:.2f} (its whole new process), hub "
        f"{per_msg['hub']:.2f}; % of a core: B {pct['B']:.0f}, hub {pct['hub']:.0f}, "
        f"bench {pct['bench']:.0f}, rest {pct['rest']:.0f}"
    )
    if cu["hub_requests_per_message"]:
        print(
            "hub requests per message during the catch-up: "
            + ", ".join(f"{k} {v:g}" for k, v in cu["hub_requests_per_message"].items())
        )
    print(
        f"B's inbox: {cu['inbox_rows']:,} rows from DE-BKA, {cu['missing']} missing, "
        f"{cu['duplicated']} more than once; order {cu['orders']}; push stream closed "
        f"{cu['push_stream_closed']} times in B's log"
    )
    print()
    return {
        "catchup_messages": c,
        "catchup_seconds": _round(cu["seconds"]),
        "catchup_ready_seconds": _round(cu["ready_seconds"]),
        "catchup_acked_seconds": _round(cu["acked_seconds"]),
        "catchup_msgs_per_s": _round(cu["msgs_per_s"], 1),
        "catchup_peak_rss_mb": round(cu["peak_rss_mib"], 1),
        "catchup_hwm_mb": round(cu["hwm_mib"], 1),
        "catchup_sampled_peak_mb": round(cu["rss_peak_sampled_mib"], 1),
        "catchup_rss_samples_mb": [round(v, 1) for v in cu["rss_marks_mib"]],
        "catchup_cpu_ms_per_message": {k: round(v, 3) for k, v in per_msg.items()},
        "catchup_missing": cu["missing"],
        "catchup_duplicated": cu["duplicated"],
    }


def _report_bulletin(bu: dict[str, Any]) -> dict[str, Any]:
    n = bu["recipients"]
    one, sep = bu["one"], bu["separate"]
    size = bu.get("envelope_bytes")
    print(
        f"bulletin: FR-PNF (node A) -> {n} recipients the bench plays (pull, open, signed "
        f"receipt, ack); one envelope of {_fmt(size, ',.0f')} B, then {n} envelopes"
    )
    print(
        f"{'from the first POST until A holds all receipts':<50} {'seconds':>8} "
        f"{'posted':>8} {'acked':>8}  CPU ms: A, hub, bench"
    )
    for label, way in ((f"one POST to {n} recipients", one), (f"{n} POSTs, one each", sep)):
        ms = way["cpu_ms"]
        print(
            f"{label:<50} {_fmt(way['seconds'], '.2f'):>8} "
            f"{_fmt(way['posted_seconds'], '.2f'):>8} {_fmt(way['acked_seconds'], '.2f'):>8}  "
            f"{ms['A']:,.0f}, {ms['hub']:,.0f}, {ms['bench']:,.0f}"
        )
    if one.get("accepted_seconds") is not None:
        print(f"one POST: the hub accepted the envelope after {one['accepted_seconds']:.2f} s")
    for label, way in (("one POST", one), (f"{n} POSTs", sep)):
        print(
            f"hub requests, {label}: "
            + ", ".join(f"{k} {v:g}" for k, v in way["hub_requests"].items())
            + f" (the recipients' mailbox pulls: {way['recipient_pulls']})"
        )
    print()
    return {
        "bulletin_recipients": n,
        "bulletin_seconds_100": _round(one["seconds"]),
        "bulletin_seconds_100_separate": _round(sep["seconds"]),
        "bulletin_envelope_bytes": size,
        "bulletin_accepted_seconds": _round(one.get("accepted_seconds")),
        "bulletin_cpu_ms": {k: round(v) for k, v in one["cpu_ms"].items()},
        "bulletin_cpu_ms_separate": {k: round(v) for k, v in sep["cpu_ms"].items()},
        "bulletin_receipts": one["receipts"],
        "bulletin_receipts_separate": sep["receipts"],
    }


def _report_crypto(c: dict[str, Any]) -> dict[str, Any]:
    print(
        f"encryption in this process: {c['crypto_mib']} MiB per measurement, fed in 1 MiB "
        f"slices; secretstream in 64 KiB messages; median of {c['rounds']} rounds"
    )
    print(f"{'':<10} {'ours MB/s':>10} {'secretstream MB/s':>18} {'ratio':>7}")
    print(
        f"{'encrypt':<10} {c['encrypt_mbps']:>10.0f} {c['secretstream_encrypt_mbps']:>18.0f} "
        f"{c['encrypt_ratio']:>7.3f}"
    )
    print(
        f"{'decrypt':<10} {c['decrypt_mbps']:>10.0f} {c['secretstream_decrypt_mbps']:>18.0f} "
        f"{c['decrypt_ratio']:>7.3f}"
    )
    print(f"(SHA-256 alone, which ours also computes: {c['sha256_mbps']:.0f} MB/s)")
    print(
        f"attachment_ratio = our encryption MB/s / secretstream MB/s = "
        f"{c['encrypt_ratio']:.3f} (higher is better; per round "
        f"{min(c['encrypt_ratio_rounds']):.3f}-{max(c['encrypt_ratio_rounds']):.3f})"
    )
    return {
        "attachment_ratio": round(c["encrypt_ratio"], 4),
        "attachment_decrypt_ratio": round(c["decrypt_ratio"], 4),
        "encrypt_mbps": round(c["encrypt_mbps"]),
        "decrypt_mbps": round(c["decrypt_mbps"]),
        "secretstream_encrypt_mbps": round(c["secretstream_encrypt_mbps"]),
        "secretstream_decrypt_mbps": round(c["secretstream_decrypt_mbps"]),
        "sha256_mbps": round(c["sha256_mbps"]),
    }


async def _run(mode: Mode, keep: bool, phases: frozenset[str]) -> tuple[Bench, float, str]:
    started = time.perf_counter()
    with open("/proc/loadavg", encoding="ascii") as f:
        load = " ".join(f.read().split()[:3])
    root = Path(tempfile.mkdtemp(prefix="globe-bench-node-"))
    try:
        bench = Bench(mode, root)
        if "crypto" in phases:
            _progress(f"encryption, {mode.crypto_rounds} rounds of {mode.crypto_mib} MiB ...")
            bench.results["crypto"] = measure_crypto(mode)
        if phases & SERVER_PHASES:
            try:
                await _run_servers(bench, phases)
            finally:
                bench.tear_down()
    finally:
        if keep:
            _progress(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return bench, time.perf_counter() - started, load


async def _run_servers(bench: Bench, phases: frozenset[str]) -> None:
    """The phases that need the hub and the nodes, in order (the caller tears down)."""
    mode = bench.mode
    _progress(f"starting the hub ({len(bench.net.members)} members) and two nodes ...")
    await bench.set_up()
    if "node" in phases:
        _progress(f"hub only, {mode.hub_messages} envelopes ...")
        hubs = [await bench.hub_only("before")]
        _progress(f"node run, {mode.messages} messages ...")
        bench.results["node"] = await bench.node_run()
        _progress(f"hub only again, {mode.hub_messages} envelopes ...")
        hubs.append(await bench.hub_only("after"))
        bench.results["hub_only"] = hubs
        _progress(f"hub only, batched, {mode.hub_messages} envelopes ...")
        bench.results["hub_only_batched"] = await bench.hub_only("batched", batch=BATCH_SIZE)
    if "attachment" in phases:
        bench.results["attachment"] = await bench.attachment()
    if "catchup" in phases:
        _progress(f"catch-up, {mode.catchup:,} messages ...")
        bench.results["catchup"] = await bench.catchup()
    if "bulletin" in phases:
        _progress(f"bulletin, {BULLETIN_RECIPIENTS} recipients ...")
        bench.results["bulletin"] = await bench.bulletin()


def _phases(text: str) -> frozenset[str]:
    """``--phases``: a comma-separated subset of PHASES."""
    chosen = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = chosen - set(PHASES)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"a comma-separated subset of {','.join(PHASES)}, not {text!r}"
        )
    return chosen


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive number of messages, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table (and a JSON object as the last line with --json)."""
    parser = argparse.ArgumentParser(description="GlobE Link node benchmark")
    parser.add_argument(
        "--quick", action="store_true",
        help="200 messages, a 128 MiB attachment, a 2,000-message catch-up",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, databases)"
    )
    parser.add_argument(
        "--phases", type=_phases, default=frozenset(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all; the hub-only "
        "baseline runs with node)",
    )  # fmt: skip
    parser.add_argument(
        "--messages", type=_positive, default=None, help="the node run's N (default 1,000; 200)"
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    if args.messages is not None:
        mode = replace(mode, messages=args.messages)
    phases: frozenset[str] = args.phases
    bench, elapsed, load = asyncio.run(_run(mode, args.keep, phases))
    ran = [p for p in PHASES if p in phases]
    print(
        f"GlobE Link node benchmark ({'quick' if args.quick else 'full'}, "
        f"{time.strftime('%Y-%m-%d')}): Python {platform.python_version()}, aiohttp "
        f"{version('aiohttp')}, SQLite {sqlite3.sqlite_version}, PyNaCl {version('pynacl')}, "
        f"cryptography {version('cryptography')}; {os.cpu_count()} CPU, load average {load} "
        f"before the run; {elapsed:.0f} s"
    )
    print(
        f"phases: {', '.join(ran)}; directory of {len(bench.net.members)} members "
        f"(FR-PNF, BR-PF, DE-BKA and {BULLETIN_RECIPIENTS} bulletin recipients)"
    )
    print()
    summary = _report(bench)
    if args.json:
        summary.update(
            {
                "quick": args.quick,
                "phases": ran,
                "directory_members": len(bench.net.members),
                "results": bench.results,
                "load_average_before": load,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "seconds": round(elapsed, 1),
            }
        )
        print(json.dumps(summary, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Directory benchmark: verifying a large membership log against raw Ed25519.

Run ``.venv/bin/python bench/bench_directory.py [--quick] [--json]``.  Like
``bench/bench_protocol.py``, every headline figure is a ratio against a
baseline measured in the same run, because the development VMs are noisy
(±15-40 %): absolute numbers from different runs are not comparable, ratios are.

The log: a devnet genesis (3 admins, threshold 2) and N admissions (10,000; 1,000
with ``--quick``) of distinct, valid authorities (``<ISO country>-A<nnnnn>``),
each admit carrying a certificate and exactly 2 admin signatures.  Entries are
built directly with ``make_application`` / ``Certificate.from_application`` /
``make_action`` / ``make_entry`` from a deterministic rng (no prekeys, no
verification while building), and cached in the temp directory keyed by size
(``globe-bench-log-<N>.bin``: a header naming the genesis digest, then
length-prefixed entries).  A missing, stale or unreadable cache is rebuilt.

Measured:

* (a) full verification from genesis: a fresh :class:`DirectoryState`
  extended with every entry, exactly what :func:`verify_log` does;
* (b) the raw Ed25519 verifications that needs: for each entry, 2 calls of
  ``nacl.bindings.crypto_sign_open`` on ``sig || label || 0x00 || payload``
  with the admin key, inputs prepared before timing, so the baseline is the
  verify calls alone;
* (c) an incremental sync: applying the last 100 entries to a state that has
  applied the first N - 100.

``verify_ratio`` = raw time / protocol time = achieved entries/s x 2 / raw
verifications/s.  The goal is >= 0.7.

Method: one untimed warm-up (a real ``verify_log`` call, which also checks the
log, and one raw pass), then several rounds.  In each round the log is applied
to a fresh state in chunks of 100 entries, each chunk back to back with the raw
verifications of the same entries, the order alternating from chunk to chunk
and round to round, so that bursts of load from other processes fall on both
alike.  The garbage collector is off while timing; the clock is
``time.perf_counter_ns``.  Each figure is the median over rounds; ratios are of
those medians (the per-round ratios' median and range are printed too).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Final

import nacl.bindings as sodium
import orjson

from protocol import labels
from protocol.devnet import CERT_LIFETIME, GENESIS_TIME, build_devnet
from protocol.directory import DirectoryState, verify_log
from protocol.errors import ProtocolError
from protocol.genesis import Genesis
from protocol.ids import ISO_COUNTRIES, AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    AUTHORITY_KINDS,
    Action,
    Certificate,
    entry_hash,
    make_action,
    make_application,
    make_entry,
)

GOAL: Final = 0.7
#: Entries in the incremental sync; also the chunk size of the interleaved full
#: pass, so that the last chunk of every round is exactly the incremental sync.
INCREMENTAL: Final = 100
SEED: Final = b"bench-directory"
#: Cache file layout: MAGIC, genesis digest (32 bytes), entry count (u32), then
#: per entry a u32 big-endian length and the entry bytes.  Bump on any change.
MAGIC: Final = b"GLBLOG01"
_U32: Final = struct.Struct(">I")
_COUNTRIES: Final = sorted(ISO_COUNTRIES)
_KINDS: Final = sorted(AUTHORITY_KINDS)
_LANGUAGES: Final = ["ar", "de", "es", "fr", "it", "pt", "ru", "zh"]


@dataclass(frozen=True, slots=True)
class Mode:
    """How much to measure."""

    entries: int
    rounds: int


QUICK: Final = Mode(entries=1_000, rounds=11)
FULL: Final = Mode(entries=10_000, rounds=7)


# --- building the log ----------------------------------------------------------------------


@dataclass(slots=True)
class Log:
    """A genesis and the exact bytes of its log entries."""

    genesis: Genesis
    entries: list[bytes]
    source: str  # how the entries were obtained, for the report
    build_seconds: float


def _build_entries(n: int) -> tuple[Genesis, list[bytes]]:
    """Build ``n`` admissions from ``SEED`` (deterministic; about 0.6 ms each)."""
    net = build_devnet(SEED)
    genesis, rng = net.genesis, net.rng
    signers = net.admins[: genesis.threshold]
    entries: list[bytes] = []
    head = genesis.digest
    for i in range(n):
        when = GENESIS_TIME + 3600 + 60 * i
        authority = AuthorityId.parse(f"{_COUNTRIES[i % len(_COUNTRIES)]}-A{i:05d}")
        name = f"Bench authority {i}"
        identity = SigningKey.generate(rng)
        transport = SigningKey.generate(rng)
        ka = KemPrivateKey.generate(rng)
        app = make_application(
            genesis=genesis,
            authority=authority,
            name=name,
            kinds=[_KINDS[i % len(_KINDS)], "anti-corruption"],
            languages=["en", _LANGUAGES[i % len(_LANGUAGES)]],
            contact=f"duty officer, {name}",
            legal_basis="UNCAC art. 36; national designation",
            endpoint=None,
            identity=identity,
            transport=transport,
            ka_key=ka.public_key,
            created=when,
        )
        cert = Certificate.from_application(
            app, serial=rng(16).hex(), not_before=when, not_after=when + CERT_LIFETIME
        )
        action = make_action(
            genesis=genesis,
            action=Action.ADMIT,
            authority=authority,
            prev=None,
            issued=when,
            certificate=cert,
            signers=signers,
        )
        entry = make_entry(genesis=genesis, seq=i + 1, prev=head, time=when, action=action.signed)
        head = entry_hash(entry)
        entries.append(entry)
    return genesis, entries


def _cache_path(n: int) -> Path:
    return Path(tempfile.gettempdir()) / f"globe-bench-log-{n}.bin"


def _write_cache(path: Path, genesis: Genesis, entries: list[bytes]) -> None:
    """Write atomically (a temp file renamed over the cache)."""
    parts = [MAGIC, genesis.digest, _U32.pack(len(entries))]
    for entry in entries:
        parts += (_U32.pack(len(entry)), entry)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(b"".join(parts))
    tmp.replace(path)


def _read_cache(path: Path, genesis: Genesis, n: int) -> list[bytes] | None:
    """The cached entries, or None if the file is missing, stale or malformed."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(MAGIC) + 32 + _U32.size
    if len(data) < head or data[: len(MAGIC)] != MAGIC:
        return None
    if data[len(MAGIC) : len(MAGIC) + 32] != genesis.digest:
        return None
    if _U32.unpack_from(data, head - _U32.size)[0] != n:
        return None
    entries: list[bytes] = []
    pos = head
    while pos + _U32.size <= len(data):
        (size,) = _U32.unpack_from(data, pos)
        pos += _U32.size
        entries.append(data[pos : pos + size])
        pos += size
    if pos != len(data) or len(entries) != n:
        return None
    return entries


def _load_log(n: int, *, fresh: bool = False) -> Log:
    """The ``n``-entry log from the cache, or built (and cached) from scratch."""
    path = _cache_path(n)
    start = time.perf_counter()
    genesis = build_devnet(SEED).genesis
    entries = None if fresh else _read_cache(path, genesis, n)
    if entries is not None:
        return Log(genesis, entries, f"cache {path}", time.perf_counter() - start)
    print(f"building a {n:,}-entry log (cached afterwards in {path}) ...", file=sys.stderr)
    built_genesis, entries = _build_entries(n)
    assert built_genesis.digest == genesis.digest
    try:
        _write_cache(path, genesis, entries)
    except OSError as exc:  # a read-only temp dir only costs the next run a rebuild
        print(f"warning: cannot write {path}: {exc}", file=sys.stderr)
    return Log(genesis, entries, "built from scratch", time.perf_counter() - start)


# --- raw baseline inputs -------------------------------------------------------------------


def _raw_checks(log: Log) -> list[list[tuple[bytes, bytes]]]:
    """Per entry, its (signature || signed input, admin public key) pairs.

    Read straight from the entry JSON (no protocol decoding), so that preparing
    them is quick; a wrong input would fail ``crypto_sign_open`` in the warm-up.
    """
    admins = {str(k.key_id): bytes(k) for k in log.genesis.admin_keys.values()}
    prefix = labels.MEMBERSHIP_ACTION + b"\x00"
    checks: list[list[tuple[bytes, bytes]]] = []
    for raw in log.entries:
        action = orjson.loads(raw)["action"]
        text = action["payload"]
        payload = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        signed_input = prefix + payload
        pairs = []
        for s in action["sigs"]:
            sig = base64.urlsafe_b64decode(s["sig"] + "=" * (-len(s["sig"]) % 4))
            pairs.append((sig + signed_input, admins[s["kid"]]))
        assert len(pairs) == log.genesis.threshold == 2, "each admit carries 2 admin signatures"
        checks.append(pairs)
    return checks


# --- timing --------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    """Per-round nanoseconds of each measurement."""

    entries: int
    full_ns: list[int] = field(default_factory=list)
    raw_ns: list[int] = field(default_factory=list)
    incremental_ns: list[int] = field(default_factory=list)
    incremental_raw_ns: list[int] = field(default_factory=list)
    first_call_s: float = 0.0  # the warm-up verify_log call, cold; informational


def _measure(log: Log, checks: list[list[tuple[bytes, bytes]]], rounds: int) -> Results:
    """Warm up with one ``verify_log`` call, then time ``rounds`` interleaved rounds.

    Incremental sync: a :class:`DirectoryState` cannot be copied, so a state at
    N - 100 has to be rebuilt for every sample.  Rather than rebuild it apart,
    each round's full pass *is* that rebuild: it applies the log in chunks of
    ``INCREMENTAL`` entries, so before its last chunk the state has applied
    exactly the first N - 100 entries, and the time of that last chunk (one
    ``extend`` of the last 100 entries on the N - 100 state) is the round's
    incremental-sync sample.  One sample per prefix build, at no extra cost.
    """
    n = len(log.entries)
    assert n % INCREMENTAL == 0
    assert n >= 2 * INCREMENTAL
    chunks = [log.entries[lo : lo + INCREMENTAL] for lo in range(0, n, INCREMENTAL)]
    raw_chunks = [
        [pair for entry_checks in checks[lo : lo + INCREMENTAL] for pair in entry_checks]
        for lo in range(0, n, INCREMENTAL)
    ]
    verify = sodium.crypto_sign_open
    clock = time.perf_counter_ns

    def apply(state: DirectoryState, chunk: list[bytes]) -> int:
        start = clock()
        state.extend(chunk)
        return clock() - start

    def raw_verify(pairs: list[tuple[bytes, bytes]]) -> int:
        start = clock()
        for signed, public in pairs:
            verify(signed, public)
        return clock() - start

    out = Results(n)
    gc.collect()
    gc.disable()
    try:
        start = clock()
        state = verify_log(log.genesis, log.entries)
        out.first_call_s = (clock() - start) / 1e9
        assert state.seq == n
        assert len(state.members) == n
        del state
        for pairs in raw_chunks:
            raw_verify(pairs)
        for r in range(rounds):
            state = DirectoryState(log.genesis)
            gc.collect()
            full = raw = 0
            for i, (chunk, pairs) in enumerate(zip(chunks, raw_chunks, strict=True)):
                if (r + i) % 2 == 0:
                    a = apply(state, chunk)
                    b = raw_verify(pairs)
                else:
                    b = raw_verify(pairs)
                    a = apply(state, chunk)
                full += a
                raw += b
            assert state.seq == n
            out.full_ns.append(full)
            out.raw_ns.append(raw)
            out.incremental_ns.append(a)  # the last chunk: 100 entries on the N - 100 state
            out.incremental_raw_ns.append(b)
            del state
    finally:
        gc.enable()
    return out


# --- report --------------------------------------------------------------------------------


def _report(res: Results) -> dict[str, object]:
    """Print the table and the goal; return the JSON fields."""
    n, verifies = res.entries, 2 * res.entries
    full_s = statistics.median(res.full_ns) / 1e9
    raw_s = statistics.median(res.raw_ns) / 1e9
    inc_s = statistics.median(res.incremental_ns) / 1e9
    inc_raw_s = statistics.median(res.incremental_raw_ns) / 1e9
    entries_per_s, raw_per_s = n / full_s, verifies / raw_s
    ratio = raw_s / full_s  # == entries_per_s * 2 / raw_per_s
    inc_ratio = inc_raw_s / inc_s
    spread = [r / f for f, r in zip(res.full_ns, res.raw_ns, strict=True)]
    inc_spread = [r / f for f, r in zip(res.incremental_ns, res.incremental_raw_ns, strict=True)]

    def row(op: str, seconds: float, count: int, unit: str) -> str:
        return (
            f"{op:<46} {seconds:>9.4f} {seconds / count * 1e6:>10.1f} "
            f"{count / seconds:>10,.0f} {unit}"
        )

    print(f"{'operation':<46} {'seconds':>9} {'µs each':>10} {'per s':>10}")
    print(row(f"verify_log from genesis ({n:,} entries)", full_s, n, "entries"))
    print(row(f"raw: {verifies:,} Ed25519 verifications", raw_s, verifies, "verifies"))
    print(
        row(
            f"incremental: last {INCREMENTAL} on {n - INCREMENTAL:,}", inc_s, INCREMENTAL, "entries"
        )
    )
    print(
        row(f"raw: {2 * INCREMENTAL} Ed25519 verifications", inc_raw_s, 2 * INCREMENTAL, "verifies")
    )
    print(
        f"per entry: {full_s / n * 1e6:.1f} µs protocol, {raw_s / n * 1e6:.1f} µs in its 2 "
        f"verifications, {(full_s - raw_s) / n * 1e6:.1f} µs other work"
    )
    print(
        f"incremental ratio (raw / protocol) {inc_ratio:.2f} "
        f"(per-round median {statistics.median(inc_spread):.2f}, "
        f"range {min(inc_spread):.2f}-{max(inc_spread):.2f})"
    )
    print(
        f"verify_ratio = entries/s x 2 / raw verifies/s = {ratio:.2f} "
        f"(per-round median {statistics.median(spread):.2f}, "
        f"range {min(spread):.2f}-{max(spread):.2f}); "
        f"goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}"
    )
    return {
        "entries": n,
        "verify_ratio": round(ratio, 3),
        "verify_ratio_round_median": round(statistics.median(spread), 3),
        "verify_ratio_round_range": [round(min(spread), 3), round(max(spread), 3)],
        "full_verify_seconds": round(full_s, 4),
        "raw_verify_seconds": round(raw_s, 4),
        "entries_per_s": round(entries_per_s),
        "raw_verify_per_s": round(raw_per_s),
        "us_per_entry": round(full_s / n * 1e6, 1),
        "raw_us_per_entry": round(raw_s / n * 1e6, 1),
        "incremental_entries": INCREMENTAL,
        "incremental_seconds": round(inc_s, 5),
        "incremental_raw_seconds": round(inc_raw_s, 5),
        "incremental_ratio": round(inc_ratio, 3),
        "verify_log_first_call_seconds": round(res.first_call_s, 4),
        "goal": GOAL,
        "goal_met": ratio >= GOAL,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table (and a JSON object as the last line with --json)."""
    parser = argparse.ArgumentParser(description="GlobE Link directory-log benchmark")
    parser.add_argument("--quick", action="store_true", help="1,000-entry log, fewer rounds")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    started = time.perf_counter()

    log = _load_log(mode.entries)
    try:
        checks = _raw_checks(log)
        res = _measure(log, checks, mode.rounds)
    except (ProtocolError, ValueError, KeyError, TypeError, AssertionError) as exc:
        if log.source == "built from scratch":
            raise
        # A stale or damaged cache (e.g. the entry format changed): rebuild it once.
        print(f"cached log rejected ({type(exc).__name__}: {exc}); rebuilding", file=sys.stderr)
        log = _load_log(mode.entries, fresh=True)
        checks = _raw_checks(log)
        res = _measure(log, checks, mode.rounds)
    elapsed = time.perf_counter() - started

    print(
        f"GlobE Link directory benchmark ({'quick' if args.quick else 'full'}, "
        f"{time.strftime('%Y-%m-%d')}): Python {platform.python_version()}, "
        f"PyNaCl {version('pynacl')}, {os.cpu_count()} CPU; {mode.rounds} rounds, "
        f"median per round; {elapsed:.0f} s"
    )
    print(
        f"log: {mode.entries:,} admissions, 3 admins, threshold 2 (2 signatures per entry); "
        f"{log.source} in {log.build_seconds:.1f} s"
    )
    print(
        "raw = nacl.bindings.crypto_sign_open alone, on the entries' real signatures "
        "(no decoding, hashing or state checks)"
    )
    print()
    summary = _report(res)
    if args.json:
        summary.update(
            {
                "rounds": mode.rounds,
                "quick": args.quick,
                "log_source": "cache" if log.source.startswith("cache") else "built",
                "build_seconds": round(log.build_seconds, 2),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "seconds": round(elapsed, 1),
            }
        )
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

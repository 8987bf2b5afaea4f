"""``globe-hub check``: what is wrong with a hub deployment (docs/OPERATIONS.md, "Check").

It reads the hub directory and the database the way ``serve`` would, without the
passphrase and without changing anything (no migration), and reports findings
(:mod:`globe_io.checks`):

* ``config-invalid``: ``hub.toml`` does not read (exit 2);
* ``directory-permissions``, ``key-permissions``, ``config-permissions``,
  ``database-permissions``: the directory, ``hub.key``, ``hub.toml`` (it may hold
  the database password) or the SQLite files are open to group or others, or owned
  by another user;
* ``genesis-missing``: no genesis installed;
* ``database-unreachable``: the database does not answer (exit 2);
* ``schema-missing``, ``schema-outdated``, ``schema-newer``: the database was never
  migrated; is behind this code (``serve`` or ``migrate`` upgrades it); or was
  written by a newer release (roll forward, or restore the backup taken before);
* ``log-invalid``: the stored membership log does not verify (``serve`` refuses);
* ``certificate-expiring``: a member's certificate ends within 30 days, or ended;
* ``disk-low``: less than ``--min-free`` bytes free for the database and blobs;
* ``service-unreachable``, ``public-url-unreachable``: the hub does not answer
  ``/readyz`` on its own address, or ``/healthz`` at the genesis ``hub_url``
  (through the proxy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from globe_io import checks
from globe_io.checks import Finding, Report
from globe_io.database import schema_state
from globe_io.errors import ConfigError
from globe_io.files import load_genesis
from globe_io.hubclient import HubClient
from hub import db
from hub.config import CONFIG_NAME, HubConfig, load_config
from protocol.directory import MemberStatus, verify_log
from protocol.errors import GlobeError
from protocol.genesis import Genesis

__all__ = ["check_hub"]

MIGRATIONS = Path(db.__file__).parent / "migrations"


def _permissions(config: HubConfig) -> list[Finding]:
    d = config.directory
    out = checks.mode_findings(d, "directory-permissions", "the hub directory")
    out += checks.mode_findings(config.key_path, "key-permissions", "the sealed hub key")
    out += checks.mode_findings(d / CONFIG_NAME, "config-permissions", "the configuration")
    if config.database_url.startswith("sqlite"):
        path = Path(config.database_url.split("///", 1)[1])
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            out += checks.mode_findings(path.with_name(name), "database-permissions", "database")
    return out


def _certificates(genesis: Genesis, entries: list[bytes], now: float) -> list[Finding]:
    try:
        state = verify_log(genesis, entries)
    except GlobeError as exc:
        return [
            Finding(
                "log-invalid",
                f"the stored membership log does not verify ({exc.detail}): restore the "
                "database from a backup (docs/OPERATIONS.md)",
            )
        ]
    out = []
    for authority, member in sorted(state.members.items(), key=lambda item: str(item[0])):
        if member.status is MemberStatus.REVOKED:
            continue
        left = member.certificate.not_after - now
        if left < checks.EXPIRY_WARNING:
            when = "has ended" if left <= 0 else f"ends in {int(left // 86400)} day(s)"
            out.append(
                Finding(
                    "certificate-expiring",
                    f"the certificate of {authority} {when}: the admins must renew it "
                    "before it ends, or the member is refused everywhere",
                )
            )
    return out


async def _database(report: Report, config: HubConfig, genesis: Genesis | None, now: float) -> None:
    engine = db.make_engine(config.database_url)
    try:
        state = await schema_state(engine, MIGRATIONS)
        report.add(
            "schema",
            checks.schema_findings(
                state,
                initialise="run globe-hub init",
                upgrade="'globe-hub migrate' (or the next 'serve') upgrades it; back it up first",
            ),
        )
        if genesis is not None and state.current is not None:
            async with engine.connect() as conn:
                rows = await conn.execute(select(db.LogEntryRow.data).order_by(db.LogEntryRow.seq))
                entries = [bytes(r[0]) for r in rows]
            report.add("membership log and certificates", _certificates(genesis, entries, now))
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        report.stop(Finding("database-unreachable", f"the database does not answer: {reason}"))
    finally:
        await engine.dispose()


async def _reachable(url: str, probe: str, code: str, timeout: float) -> list[Finding]:
    try:
        async with HubClient(url, timeout=timeout) as hub:
            await (hub.readyz() if probe == "/readyz" else hub.healthz())
    except GlobeError as exc:
        return [Finding(code, f"{url}{probe} does not answer: {exc.detail}")]
    return []


async def check_hub(
    directory: Path,
    *,
    min_free: int,
    network: bool = True,
    timeout: float = 10.0,
    clock: Callable[[], float] = time.time,
) -> Report:
    """Check the hub in ``directory``; the report says what is wrong."""
    report = Report("globe-hub")
    try:
        config = load_config(directory)
    except ConfigError as exc:
        return report.stop(Finding("config-invalid", exc.detail))
    report.add("permissions", _permissions(config))
    genesis: Genesis | None = None
    try:
        genesis = load_genesis(config.genesis_path)
        report.add("genesis")
    except (GlobeError, OSError):
        report.add(
            "genesis",
            [
                Finding(
                    "genesis-missing",
                    f"no valid genesis at {config.genesis_path}: run globe-hub install-genesis",
                )
            ],
        )
    report.add("disk", checks.disk_findings(config.directory, min_free))
    await _database(report, config, genesis, clock())
    if network and report.complete:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(config.host, config.host)  # noqa: S104
        local = f"http://{host}:{config.port}"
        found = await _reachable(local, "/readyz", "service-unreachable", timeout)
        if genesis is not None:
            found += await _reachable(
                genesis.hub_url, "/healthz", "public-url-unreachable", timeout
            )
        report.add("reachability", found)
    return report

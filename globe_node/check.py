"""``globe-node check``: what is wrong with a node deployment (docs/OPERATIONS.md, "Check").

It reads the node directory and database without the passphrase and without the
daemon, changes nothing, and asks the hub and the node's own public endpoint whether
they answer.  Findings (:mod:`globe_io.checks`):

* ``config-invalid``, ``genesis-invalid``, ``database-missing``: ``node.toml``, the
  pinned genesis or ``node.db`` does not read (exit 2);
* ``directory-permissions``, ``key-permissions``, ``config-permissions``,
  ``token-permissions``, ``database-permissions``: the directory, ``keys.sealed``,
  ``node.toml``, ``api.token`` or the database files are open to group or others,
  or owned by another user;
* ``schema-missing``, ``schema-outdated``, ``schema-newer``: as for the hub;
* ``log-invalid``: the stored membership log does not verify;
* ``not-admitted``, ``membership-suspended``, ``membership-revoked``: this node's
  standing in its verified directory;
* ``certificate-expiring``: this node's certificate ends within 30 days, or ended;
* ``prekey-expiring``: no published prekey outlives half of ``prekey_rotate_before``,
  so rotation is overdue (the daemon is down, or cannot reach the hub).  Prekeys
  live a week by default and rotate by themselves, so "within 30 days" would
  always be true of them: what is worth an operator's attention is a rotation
  that did not happen;
* ``directory-stale``: no hub checkpoint confirmed the stored log for longer than
  ``directory_max_age`` (sending is refused);
* ``disk-low``: less than ``--min-free`` bytes free;
* ``hub-unreachable``, ``clock-skew``: the hub does not answer, or its signed
  checkpoint time differs from this host's clock by more than
  :data:`MAX_CLOCK_SKEW` seconds (signed requests are refused beyond 60 s);
* ``endpoint-unreachable``: this node's certified endpoint does not answer
  ``GET /healthz`` from here (the proxy or the peer listener is down).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from globe_io import checks
from globe_io.checks import Finding, Report
from globe_io.database import schema_state
from globe_io.errors import ConfigError
from globe_io.files import load_genesis
from globe_io.hubclient import HubClient
from globe_node import db
from globe_node.config import CONFIG_NAME, NodeConfig, load_config
from globe_node.standing import standing_of
from protocol.directory import DirectoryState, verify_log
from protocol.errors import GlobeError
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.membership import Checkpoint

__all__ = ["MAX_CLOCK_SKEW", "check_node"]

#: Seconds of difference from the hub's clock that are a finding (half the hub's default
#: acceptance window for signed requests, so it is seen before requests fail).
MAX_CLOCK_SKEW: Final = 30
MIGRATIONS: Final = Path(db.__file__).parent / "migrations"


def _permissions(config: NodeConfig) -> list[Finding]:
    d = config.directory
    out = checks.mode_findings(d, "directory-permissions", "the node directory")
    out += checks.mode_findings(config.blob_dir, "directory-permissions", "attachments")
    out += checks.mode_findings(config.key_path, "key-permissions", "the sealed keys")
    out += checks.mode_findings(d / CONFIG_NAME, "config-permissions", "the configuration")
    out += checks.mode_findings(config.token_path, "token-permissions", "the operator token")
    for suffix in ("", "-wal", "-shm"):
        path = config.db_path.with_name(config.db_path.name + suffix)
        out += checks.mode_findings(path, "database-permissions", "the database")
    return out


def _standing(config: NodeConfig, state: DirectoryState, now: float) -> list[Finding]:
    standing = standing_of(state, AuthorityId.parse(config.authority))
    if standing.status == "not admitted":
        return [
            Finding(
                "not-admitted",
                f"{config.authority} is not in the verified directory: apply (globe-node "
                "apply) and wait for the admins, or check that the daemon syncs",
            )
        ]
    message = standing.explain()
    if message is not None:
        return [Finding(f"membership-{standing.status}", message)]
    cert = state.members[standing.authority].certificate
    left = cert.not_after - now
    if left < checks.EXPIRY_WARNING:
        when = "has ended" if left <= 0 else f"ends in {int(left // 86400)} day(s)"
        return [
            Finding(
                "certificate-expiring",
                f"this node's certificate {when}: ask the admins to renew it before it ends",
            )
        ]
    return []


async def _stored(
    report: Report, engine: AsyncEngine, config: NodeConfig, genesis: Genesis, now: float
) -> DirectoryState | None:
    """The database's findings; the verified directory (None: none could be read)."""
    state = await schema_state(engine, MIGRATIONS)
    report.add(
        "schema",
        checks.schema_findings(
            state,
            initialise="run globe-node run",
            upgrade="the next 'globe-node run' upgrades it; back the node up first",
        ),
    )
    if state.current is None:
        return None
    async with engine.connect() as conn:
        entries = [
            bytes(r[0]) for r in await conn.execute(select(db.LogRow.data).order_by(db.LogRow.seq))
        ]
        prekeys = list(
            (
                await conn.execute(select(db.PrekeyRow.not_after).where(db.PrekeyRow.published))
            ).scalars()
        )
        checkpoint = await conn.scalar(
            select(db.Meta.value).where(db.Meta.key == "checkpoint_time")
        )
    try:
        directory = verify_log(genesis, entries)
    except GlobeError as exc:
        report.add(
            "membership log",
            [
                Finding(
                    "log-invalid",
                    f"the stored membership log does not verify ({exc.detail}): restore a backup",
                )
            ],
        )
        return None
    found = _standing(config, directory, now)
    report.add("membership and certificate", found)
    active = not found or found[0].code == "certificate-expiring"
    age = None if not checkpoint else now - int(checkpoint)
    if age is None or age > config.directory_max_age:
        shown = "never" if age is None else f"{int(age)} s ago"
        report.add(
            "directory freshness",
            [
                Finding(
                    "directory-stale",
                    f"a hub checkpoint last confirmed the stored log {shown} (limit "
                    f"{config.directory_max_age} s): sending is refused until the daemon "
                    "reaches the hub",
                )
            ],
        )
    if active:
        newest = max(prekeys, default=0)
        if newest - now < config.prekey_rotate_before // 2:
            report.add(
                "prekeys",
                [
                    Finding(
                        "prekey-expiring",
                        "no published prekey outlives the next rotation"
                        + (
                            " (none published)"
                            if not prekeys
                            else f" (the newest ends in {int(newest - now)} s)"
                        )
                        + ": the daemon is down or cannot reach the hub; senders fall back to the "
                        "certified key (no forward secrecy) once it ends",
                    )
                ],
            )
        else:
            report.add("prekeys")
    return directory


async def _network(
    report: Report,
    config: NodeConfig,
    *,
    genesis: Genesis,
    endpoint: str | None,
    timeout: float,
    clock: Callable[[], float],
) -> None:
    found: list[Finding] = []
    try:
        async with HubClient(config.hub_url, network=genesis.digest, timeout=timeout) as hub:
            await hub.healthz()
            cp = Checkpoint.decode(await hub.checkpoint(), genesis)
        skew = clock() - cp.time
        if abs(skew) > MAX_CLOCK_SKEW:
            side = "ahead of" if skew > 0 else "behind"
            found.append(
                Finding(
                    "clock-skew",
                    f"this host's clock is {round(abs(skew))} s {side} the hub's (at most "
                    f"{MAX_CLOCK_SKEW}): signed requests beyond 60 s are refused; "
                    "synchronise it (NTP)",
                )
            )
    except GlobeError as exc:
        found.append(
            Finding("hub-unreachable", f"the hub at {config.hub_url} does not answer: {exc.detail}")
        )
    if endpoint is not None:
        try:
            async with HubClient(endpoint, timeout=timeout) as peer:
                await peer.healthz()
        except GlobeError as exc:
            found.append(
                Finding(
                    "endpoint-unreachable",
                    f"this node's endpoint {endpoint} does not answer /healthz: {exc.detail} "
                    "(peers then relay through the hub)",
                )
            )
    report.add("reachability", found)


def _endpoint(state: DirectoryState | None, config: NodeConfig) -> str | None:
    """This node's certified endpoint (None: not admitted, or it publishes none)."""
    member = None if state is None else state.members.get(AuthorityId.parse(config.authority))
    return None if member is None else member.certificate.endpoint


async def check_node(
    directory: Path,
    *,
    min_free: int,
    network: bool = True,
    timeout: float = 10.0,
    clock: Callable[[], float] = time.time,
) -> Report:
    """Check the node in ``directory``; the report says what is wrong."""
    report = Report("globe-node")
    try:
        config = load_config(directory)
    except ConfigError as exc:
        return report.stop(Finding("config-invalid", exc.detail))
    report.add("permissions", _permissions(config))
    try:
        genesis = load_genesis(config.genesis_path)
    except ConfigError as exc:
        return report.stop(Finding("genesis-invalid", exc.detail))
    report.add("disk", checks.disk_findings(config.directory, min_free))
    if not config.db_path.is_file():
        return report.stop(Finding("database-missing", f"{config.db_path} does not exist"))
    engine = db.make_engine(config.db_path)
    try:
        state = await _stored(report, engine, config, genesis, clock())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return report.stop(Finding("database-missing", f"{config.db_path} does not open: {reason}"))
    finally:
        await engine.dispose()
    if network:
        endpoint = _endpoint(state, config)
        await _network(
            report, config, genesis=genesis, endpoint=endpoint, timeout=timeout, clock=clock
        )
    return report

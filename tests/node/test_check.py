"""``globe-node check``: a test per finding, each breaking exactly the setting it claims to
detect, on a real node of a real network that is otherwise right (globe_node/check.py)."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import select, text, update

from globe_io.checks import Finding
from globe_node import db
from globe_node.check import check_node
from protocol.membership import Action
from tests.node.network import Net, RunningNode
from tests.support.cli import run_cli

FREE = 1


async def _report(rn: RunningNode, **options: object):
    options.setdefault("network", False)
    return await check_node(rn.config.directory, min_free=FREE, **options)  # type: ignore[arg-type]


async def _codes(rn: RunningNode, **options: object) -> list[str]:
    return [f.code for f in (await _report(rn, **options)).findings]


def _private(rn: RunningNode) -> None:
    """Modes as the units' UMask=0077 leaves them (the test process's umask is laxer)."""
    rn.config.directory.chmod(0o700)
    for path in rn.config.directory.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.fixture
async def fr(net: Net) -> RunningNode:
    rn = await net.member("FR-PNF", "Parquet national financier")
    _private(rn)
    return rn


async def test_a_sound_running_node_has_no_findings(fr: RunningNode) -> None:
    report = await _report(fr, network=True)
    assert report.findings == []
    assert (report.status, report.checked) == (0, [
        "permissions", "disk", "schema", "membership and certificate", "prekeys", "reachability",
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("", "directory-permissions"),
        ("blobs", "directory-permissions"),
        ("keys.sealed", "key-permissions"),
        ("node.toml", "config-permissions"),
        ("node.db", "database-permissions"),
    ],
)
async def test_permissions_open_to_others(fr: RunningNode, path: str, code: str) -> None:
    target = fr.config.directory / path
    target.chmod(0o755 if target.is_dir() else 0o640)
    assert await _codes(fr) == [code]


async def test_the_operator_token_open_to_others(fr: RunningNode) -> None:
    fr.config.token_path.write_text("token\n")
    fr.config.token_path.chmod(0o604)
    report = await _report(fr)
    assert report.findings == [
        Finding("token-permissions", f"{fr.config.token_path} (the operator token) has mode "
                                     f"0604: others may read it; run chmod 0600 "
                                     f"{fr.config.token_path}")
    ]  # fmt: skip


async def test_what_cannot_be_checked(fr: RunningNode) -> None:
    d = fr.config.directory
    (d / "genesis.json").write_bytes(b"{}")
    report = await _report(fr)
    assert ([f.code for f in report.findings], report.status) == (["genesis-invalid"], 2)
    (d / "node.toml").write_text("authority = 5\n")
    report = await _report(fr)
    assert [f.detail for f in report.findings] == [
        f"{d / 'node.toml'}: hub_url: missing; authority must be a string"
    ]
    assert report.status == 2


async def test_a_missing_database(net: Net) -> None:
    rn = net.make_node("BR-PF", "Polícia Federal")
    _private(rn)
    report = await _report(rn)
    assert [f.code for f in report.findings] == ["database-missing"]
    assert report.status == 2


async def test_schema_states(fr: RunningNode, net: Net) -> None:
    await net.stop_node(fr)
    engine = db.make_engine(fr.config.db_path)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        assert await _codes(fr) == ["schema-outdated"]
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
        assert await _codes(fr) == ["schema-newer"]
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))
        assert await _codes(fr) == ["schema-missing"]
    finally:
        await engine.dispose()


async def test_a_stored_log_that_does_not_verify(fr: RunningNode, net: Net) -> None:
    await net.stop_node(fr)
    engine = db.make_engine(fr.config.db_path)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(db.LogRow).where(db.LogRow.seq == 1).values(data=b"{}"))
    finally:
        await engine.dispose()
    assert await _codes(fr) == ["log-invalid"]


async def test_not_admitted_yet(net: Net) -> None:
    rn = net.make_node("BR-PF", "Polícia Federal")
    await net.start_node(rn)
    await rn.n.sync_directory()  # the log as the hub serves it, without this node
    _private(rn)
    assert await _codes(rn) == ["not-admitted"]


@pytest.mark.parametrize(("action", "status"), [(Action.SUSPEND, "suspended"),
                                                 (Action.REVOKE, "revoked")])  # fmt: skip
async def test_suspended_or_revoked(fr: RunningNode, net: Net, action: Action, status: str):
    await net.set_status("FR-PNF", action, "integrity inquiry")
    await fr.n.sync_directory()
    report = await _report(fr)
    assert [f.code for f in report.findings] == [f"membership-{status}"]
    assert report.findings[0].detail.startswith(
        f"this node (FR-PNF) was {status} at log entry 2 (reason: integrity inquiry): "
    )


async def test_certificate_ending_within_30_days(fr: RunningNode) -> None:
    ends = fr.n.member(fr.me).certificate.not_after
    report = await _report(fr, clock=lambda: ends - 5 * 86400)
    assert (
        Finding(
            "certificate-expiring",
            "this node's certificate ends in 5 day(s): ask the admins to renew it before it ends",
        )
        in report.findings
    )


async def test_prekey_rotation_overdue(fr: RunningNode, net: Net) -> None:
    await net.stop_node(fr)
    engine = db.make_engine(fr.config.db_path)
    try:
        async with engine.connect() as conn:
            newest = max((await conn.execute(select(db.PrekeyRow.not_after))).scalars())
    finally:
        await engine.dispose()
    # A day before the newest prekey ends (rotation was due two days before): overdue.
    assert await _codes(fr, clock=lambda: newest - 3600) == ["directory-stale", "prekey-expiring"]
    assert await _codes(fr, clock=lambda: newest - 2 * 86400 + 60) == ["directory-stale"]


async def test_directory_not_confirmed_for_too_long(fr: RunningNode) -> None:
    later = time.time() + fr.config.directory_max_age + 60
    assert await _codes(fr, clock=lambda: later) == ["directory-stale"]


async def test_low_disk(fr: RunningNode) -> None:
    report = await check_node(fr.config.directory, min_free=1 << 62, network=False)
    assert [f.code for f in report.findings] == ["disk-low"]


async def test_the_hub_clock_differs(fr: RunningNode, net: Net) -> None:
    net.hub_offset = 120.0  # the hub's signed checkpoint time runs ahead of this host
    report = await _report(fr, network=True)
    assert [f.code for f in report.findings] == ["clock-skew"]
    # The checkpoint's time is whole seconds: 119 or 120 s, as the second turns.
    assert re.fullmatch(
        r"this host's clock is 1(19|20) s behind the hub's \(at most 30\): signed requests "
        r"beyond 60 s are refused; synchronise it \(NTP\)",
        report.findings[0].detail,
    )
    net.hub_offset = 0.0
    ahead = time.time() + 90  # this host's clock runs ahead (its certificate is years away)
    report = await _report(fr, network=True, clock=lambda: ahead)
    assert [f.code for f in report.findings] == ["clock-skew"]
    # whole seconds again: 90 or 91 s, as the hub's second turns
    assert re.match(r"this host's clock is 9[01] s ahead of the hub's", report.findings[0].detail)


async def test_a_node_without_an_endpoint_is_not_asked_for_one(net: Net) -> None:
    rn = await net.member("BR-PF", "Polícia Federal", endpoint=False)
    _private(rn)
    assert await _codes(rn, network=True) == []


async def test_a_database_that_does_not_open(fr: RunningNode, net: Net) -> None:
    await net.stop_node(fr)
    for suffix in ("-wal", "-shm"):
        fr.config.db_path.with_name(fr.config.db_path.name + suffix).unlink(missing_ok=True)
    fr.config.db_path.write_bytes(b"not a database, " * 100)
    report = await _report(fr)
    assert [f.code for f in report.findings] == ["database-missing"]
    assert report.findings[0].detail == (
        f"{fr.config.db_path} does not open: file is not a database"
    )
    assert report.status == 2


async def test_the_hub_does_not_answer(fr: RunningNode, net: Net) -> None:
    await net.stop_hub()
    report = await _report(fr, network=True, timeout=5)
    assert [f.code for f in report.findings] == ["hub-unreachable"]


async def test_the_own_endpoint_does_not_answer(fr: RunningNode, net: Net) -> None:
    await net.stop_node(fr)  # the peer listener behind the certified endpoint is gone
    report = await _report(fr, network=True, timeout=5)
    assert [f.code for f in report.findings] == ["endpoint-unreachable"]
    assert report.findings[0].detail.startswith(f"this node's endpoint {fr.peer_url} does not")


async def test_the_command_line(fr: RunningNode) -> None:
    d = fr.config.directory
    ran = run_cli("globe_node", "check", "--dir", d, "--offline", "--min-free", "1", "--json")
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["status"] == "ok"
    (d / "keys.sealed").chmod(0o644)
    ran = run_cli("globe_node", "check", "--dir", d, "--offline", "--min-free", "1")
    assert ran.code == 1
    assert ran.out.splitlines() == [
        f"globe-node check: key-permissions: {d / 'keys.sealed'} (the sealed keys) has mode "
        f"0644: others may read it; run chmod 0600 {d / 'keys.sealed'}",
        "globe-node check: 1 finding(s)",
    ]

"""``globe-hub check``: a test per finding, each breaking exactly the setting it claims to
detect, on a hub directory that is otherwise right (hub/check.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text, update

from globe_io.checks import Finding
from globe_io.httpguard import GuardedRunner, start_site
from hub import db
from hub.check import check_hub
from hub.config import load_config
from hub.server import open_hub
from protocol.ids import AuthorityId
from protocol.membership import Action
from tests.deploy.hubdir import PASSPHRASE, HubDir, Port, fill_database, make_hub_dir
from tests.support.cli import run_cli

FREE = 1  # bytes of free disk required: any file system passes


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubDir]:
    """A hub directory whose genesis URL and configured port are one reserved port."""
    with Port() as port:
        made = make_hub_dir(tmp_path, hub_url=port.url, port=port.port)
        await fill_database(made.config.database_url, made.net)
        yield made


async def _codes(hub: HubDir, **options: object) -> list[str]:
    report = await check_hub(hub.directory, min_free=FREE, network=False, **options)  # type: ignore[arg-type]
    return [f.code for f in report.findings]


async def test_a_sound_hub_that_serves_has_no_findings(tmp_path: Path) -> None:
    with Port() as port:
        hub = make_hub_dir(tmp_path, hub_url=port.url, port=port.port)
        await fill_database(hub.config.database_url, hub.net)
        runtime = await open_hub(load_config(hub.directory), PASSPHRASE.encode())
        runner = GuardedRunner(runtime.app, access_log=None)
        await runner.setup()
        try:
            await start_site(runner, "127.0.0.1", port.port, sock=port.listener())
            report = await check_hub(hub.directory, min_free=FREE)
        finally:
            await runner.cleanup()
    assert report.findings == []
    assert report.status == 0
    assert report.checked == [
        "permissions", "genesis", "disk", "schema", "membership log and certificates",
        "reachability",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("", "directory-permissions"),
        ("hub.key", "key-permissions"),
        ("hub.toml", "config-permissions"),
        ("hub.db", "database-permissions"),
    ],
)
async def test_permissions_open_to_others(hub: HubDir, path: str, code: str) -> None:
    target = hub.directory / path
    target.chmod(0o755 if target.is_dir() else 0o644)
    report = await check_hub(hub.directory, min_free=FREE, network=False)
    mode = "0755" if target.is_dir() else "0644"
    wanted = "0700" if target.is_dir() else "0600"
    assert [f for f in report.findings if f.code == code] == [
        Finding(code, f"{target} ({_what(path)}) has mode {mode}: others may read it; "
                      f"run chmod {wanted} {target}")
    ]  # fmt: skip
    assert report.status == 1


def _what(path: str) -> str:
    return {"": "the hub directory", "hub.key": "the sealed hub key",
            "hub.toml": "the configuration", "hub.db": "database"}[path]  # fmt: skip


async def test_a_file_owned_by_another_user(hub: HubDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 4242)
    codes = await _codes(hub)
    assert sorted(set(codes)) == [
        "config-permissions", "database-permissions", "directory-permissions", "key-permissions",
    ]  # fmt: skip


async def test_a_symbolic_link_for_the_key(hub: HubDir) -> None:
    key = hub.directory / "hub.key"
    key.rename(hub.directory / "real.key")
    key.symlink_to(hub.directory / "real.key")
    report = await check_hub(hub.directory, min_free=FREE, network=False)
    assert report.findings == [
        Finding("key-permissions", f"{key} (the sealed hub key) is a symbolic link; keep the "
                                   "real file here")
    ]  # fmt: skip


async def test_an_unreadable_config_cannot_be_checked(hub: HubDir) -> None:
    (hub.directory / "hub.toml").write_text("port = [\n")
    report = await check_hub(hub.directory, min_free=FREE)
    assert [f.code for f in report.findings] == ["config-invalid"]
    assert report.status == 2
    assert report.checked == []


async def test_no_genesis(hub: HubDir) -> None:
    (hub.directory / "genesis.json").unlink()
    assert await _codes(hub) == ["genesis-missing"]


async def test_an_unreachable_database_cannot_be_checked(hub: HubDir) -> None:
    toml = hub.directory / "hub.toml"
    with Port() as closed:  # nothing listens there
        url = f"postgresql+asyncpg://globe@127.0.0.1:{closed.port}/globe"
        toml.write_text(toml.read_text().replace(hub.config.database_url, url))
        report = await check_hub(hub.directory, min_free=FREE)
    assert [f.code for f in report.findings] == ["database-unreachable"]
    assert report.status == 2


async def test_schema_states(hub: HubDir) -> None:
    engine = db.make_engine(hub.config.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        assert await _codes(hub) == ["schema-outdated"]
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        assert await _codes(hub) == ["schema-newer"]
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))
        assert await _codes(hub) == ["schema-missing"]
    finally:
        await engine.dispose()


async def test_a_stored_log_edited_behind_the_hubs_back(hub: HubDir) -> None:
    engine = db.make_engine(hub.config.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(db.LogEntryRow).where(db.LogEntryRow.seq == 2).values(time=0))
            await conn.execute(
                update(db.LogEntryRow).where(db.LogEntryRow.seq == 1).values(data=b"{}")
            )
    finally:
        await engine.dispose()
    assert await _codes(hub) == ["log-invalid"]


async def test_certificates_ending_within_30_days(hub: HubDir) -> None:
    ends = min(m.certificate.not_after for m in hub.net.directory.members.values())
    report = await check_hub(
        hub.directory, min_free=FREE, network=False, clock=lambda: ends - 10 * 86400
    )
    assert [f.detail for f in report.findings] == [
        "the certificate of DE-BKA ends in 10 day(s): the admins must renew it before it "
        "ends, or the member is refused everywhere",
        "the certificate of FR-PNF ends in 10 day(s): the admins must renew it before it "
        "ends, or the member is refused everywhere",
    ]
    report = await check_hub(hub.directory, min_free=FREE, network=False, clock=lambda: ends + 1)
    assert {f.detail.split(" ")[4] for f in report.findings} == {"has"}  # "... has ended: ..."
    assert await _codes(hub) == []  # today: two years left


async def test_a_revoked_members_certificate_is_no_concern(tmp_path: Path) -> None:
    hub = make_hub_dir(tmp_path)
    net = hub.net
    net.set_status("DE-BKA", Action.REVOKE, "left the network", net.directory.time + 60)
    await fill_database(hub.config.database_url, net)
    ends = net.directory.members[AuthorityId.parse("DE-BKA")].certificate.not_after
    report = await check_hub(
        hub.directory, min_free=FREE, network=False, clock=lambda: ends - 86400
    )
    assert [f.detail.split(" ")[3] for f in report.findings] == ["FR-PNF"]


async def test_without_a_genesis_only_the_service_is_asked(hub: HubDir) -> None:
    (hub.directory / "genesis.json").unlink()
    report = await check_hub(hub.directory, min_free=FREE, timeout=5)
    assert [f.code for f in report.findings] == ["genesis-missing", "service-unreachable"]


async def test_low_disk(hub: HubDir) -> None:
    report = await check_hub(hub.directory, min_free=1 << 62, network=False)
    assert [f.code for f in report.findings] == ["disk-low"]
    assert report.findings[0].detail.endswith(
        f"(minimum {1 << 62}): a full disk stops acknowledgements (they wait for durable "
        "commits); free space"
    )


async def test_a_hub_that_does_not_answer(hub: HubDir) -> None:
    report = await check_hub(hub.directory, min_free=FREE, timeout=5)
    assert [f.code for f in report.findings] == ["service-unreachable", "public-url-unreachable"]
    assert report.status == 1


def test_the_command_line_exit_statuses_and_json(hub: HubDir) -> None:
    ran = run_cli("hub", "check", "--dir", hub.directory, "--offline", "--min-free", "1")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == (
        "globe-hub check: ok (permissions, genesis, disk, schema, membership log and "
        "certificates)\n"
    )
    (hub.directory / "hub.key").chmod(0o640)
    ran = run_cli("hub", "check", "--dir", hub.directory, "--offline", "--min-free", "1",
                  "--json")  # fmt: skip
    assert ran.code == 1
    doc = json.loads(ran.out)
    assert (doc["status"], doc["exit_status"]) == ("findings", 1)
    assert [f["code"] for f in doc["findings"]] == ["key-permissions"]
    (hub.directory / "hub.toml").write_text("nonsense = [")
    ran = run_cli("hub", "check", "--dir", hub.directory)
    assert ran.code == 2
    assert ran.out.splitlines()[0].startswith("globe-hub check: config-invalid: ")
    assert ran.out.splitlines()[1] == "globe-hub check: stopped: the rest could not be checked"


def test_config_errors_are_all_named_at_start(hub: HubDir) -> None:
    toml = hub.directory / "hub.toml"
    toml.write_text(
        toml.read_text().replace("port = ", "port = 70000\n#")
        .replace("batch_max = 256", "batch_max = 0\ncolour = 1")
        .replace("max_headers = 100", "max_headers = 0")
    )  # fmt: skip
    ran = run_cli("hub", "serve", "--dir", hub.directory, "--passphrase-file",
                  hub.passphrase_file)  # fmt: skip
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == (
        f"globe-hub: error: {toml}: [limits] colour: unknown setting; "
        "[limits] batch_max must be an integer from 1 to 10000, not 0; "
        "port must be a port, 0-65535, not 70000; "
        "[http] HTTP limit max_headers must be an integer in (0, 1000]; got 0\n"
    )

"""deploy/postgresql/: the least-privilege roles (roles.sql), and the restore drill — a hub
on PostgreSQL running as the service role, backed up with backup.sh while its data is
there, restored with restore.sh into a new database and directory, and serving the same
membership log from there."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from globe_io.hubclient import HubClient
from tests.deploy.hubdir import HubDir, fill_database, make_hub_dir
from tests.support.cli import cli_env, run_cli
from tests.support.postgres import PgServer, candidate_bindirs
from tests.support.servers import ServerProcess

POSTGRESQL = Path(__file__).resolve().parents[2] / "deploy" / "postgresql"
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _major(binary: Path) -> int:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    return int(re.findall(r"\d+", out.stdout)[0])


def _client_bin(server_major: int) -> Path:
    """A directory with psql, pg_dump and pg_restore able to talk to this server."""
    dirs = [*candidate_bindirs(), Path("/usr/bin")]
    usable = [
        (_major(d / "pg_dump"), d)
        for d in dirs
        if all((d / t).is_file() for t in ("psql", "pg_dump", "pg_restore"))
    ]
    # The server's own major version if there is one (a newer pg_dump writes settings an
    # older server refuses on restore), else the oldest newer one.
    fit = sorted((major, str(d)) for major, d in usable if major >= server_major)
    if not fit:
        pytest.fail(f"no pg_dump for PostgreSQL {server_major} in {dirs}")
    return Path(fit[0][1])


class Cluster:
    """The test's roles and databases on the session's server, and libpq settings for them."""

    def __init__(self, server: PgServer, major: int) -> None:
        self.server = server
        tag = f"{os.getpid()}_{secrets.token_hex(4)}"
        self.owner, self.app = f"globe_owner_{tag}", f"globe_hub_{tag}"
        self.databases: list[str] = []
        self.bin = _client_bin(major)
        url = make_url(server.dsn)
        self.host = str(url.query.get("host") or url.host or "127.0.0.1")
        self.port = str(url.port or 5432)
        self.superuser = url.username or "postgres"

    def env(self, user: str, database: str) -> dict[str, str]:
        return cli_env({
            "PGHOST": self.host, "PGPORT": self.port, "PGUSER": user, "PGDATABASE": database,
            "PATH": f"{self.bin}:{os.environ.get('PATH', '')}",
        })  # fmt: skip

    def url(self, user: str, database: str) -> str:
        base = make_url(self.server.url(database)).set(username=user, password=None)
        return base.render_as_string(hide_password=False)

    def roles(self, database: str) -> None:
        """roles.sql as a superuser, for ``database``."""
        self.databases.append(database)
        ran = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-v", f"owner={self.owner}", "-v",
             f"app={self.app}", "-v", f"db={database}", "-f", str(POSTGRESQL / "roles.sql")],
            env=self.env(self.superuser, "postgres"), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip
        assert (ran.returncode, ran.stderr) == (0, ""), ran.stderr

    async def close(self) -> None:
        for name in self.databases:
            await self.server.drop_database(name)
        for role in (self.app, self.owner):
            conn = await self.server.connect()
            try:
                await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            finally:
                await conn.close()


@pytest.fixture
async def cluster(pg_server: PgServer) -> AsyncIterator[Cluster]:
    conn = await pg_server.connect()
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    made = Cluster(pg_server, major)
    try:
        yield made
    finally:
        await made.close()


async def _served_log(hub: HubDir, tmp_path: Path, name: str) -> list[bytes]:
    argv = [sys.executable, "-m", "hub", "serve", "--dir", str(hub.directory),
            "--passphrase-file", str(hub.passphrase_file), "--log-level", "warning"]  # fmt: skip
    proc = ServerProcess(argv, log=tmp_path / f"{name}.log", env=cli_env())
    await proc.start()
    try:
        async with HubClient(proc.url, network=hub.net.genesis.digest) as client:
            entries = await client.log_entries(0)
        assert await proc.stop() == 0, proc.log_text()
    finally:
        proc.kill()
    return entries


async def test_the_restore_drill(cluster: Cluster, tmp_path: Path) -> None:
    first = f"globe_drill_{os.getpid()}_{secrets.token_hex(4)}"
    cluster.roles(first)
    hub = make_hub_dir(tmp_path, database_url=cluster.url(cluster.app, first))
    # The owner migrates; the hub itself runs as the service role.
    ran = run_cli("hub", "migrate", "--dir", hub.directory, "--database-url",
                  cluster.url(cluster.owner, first))  # fmt: skip
    assert ran.code == 0, ran.err
    await fill_database(cluster.url(cluster.app, first), hub.net, migrate=False)
    before = await _served_log(hub, tmp_path, "before")
    assert before == hub.net.entries

    # The service role may not change the schema.
    conn = await asyncpg.connect(cluster.url(cluster.app, first).replace("+asyncpg", ""))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DROP TABLE log_entries")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("TRUNCATE log_entries")
    finally:
        await conn.close()

    backups = tmp_path / "backups"
    env = cluster.env(cluster.owner, first) | {
        "GLOBE_BACKUP_DIR": str(backups), "GLOBE_HUB_DIR": str(hub.directory),
    }  # fmt: skip
    ran_sh = subprocess.run([str(POSTGRESQL / "backup.sh")], env=env, capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert (ran_sh.returncode, ran_sh.stderr) == (0, ""), ran_sh.stderr
    backup = Path(ran_sh.stdout.strip())
    assert sorted(p.name for p in backup.iterdir()) == [
        "SHA256SUMS",
        "database.dump",
        "hub-dir.tar.gz",
    ]
    assert oct(backup.stat().st_mode & 0o777) == "0o700"

    second = f"globe_restored_{os.getpid()}_{secrets.token_hex(4)}"
    cluster.roles(second)
    target = tmp_path / "restored"
    ran_sh = subprocess.run(
        [str(POSTGRESQL / "restore.sh"), str(backup), str(target)],
        env=cluster.env(cluster.owner, second), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert (ran_sh.returncode, ran_sh.stderr) == (0, ""), ran_sh.stderr
    toml = target / "hub.toml"
    toml.write_text(toml.read_text().replace(first, second))
    restored = HubDir(target, hub.passphrase_file, hub.net, hub.config)
    assert await _served_log(restored, tmp_path, "after") == before

    # A second restore into the now non-empty database is refused, and nothing is written.
    again = subprocess.run(
        [str(POSTGRESQL / "restore.sh"), str(backup), str(tmp_path / "again")],
        env=cluster.env(cluster.owner, second), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert (again.returncode, again.stderr) == (1, f"restore.sh: database {second} is not empty\n")
    assert not (tmp_path / "again").exists()
    # A damaged backup is refused before anything is restored.
    (backup / "hub-dir.tar.gz").write_bytes(b"damaged")
    third = subprocess.run(
        [str(POSTGRESQL / "restore.sh"), str(backup), str(tmp_path / "third")],
        env=cluster.env(cluster.owner, second), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert third.returncode == 1
    assert third.stderr.endswith(f"restore.sh: {backup} does not match its checksums\n")

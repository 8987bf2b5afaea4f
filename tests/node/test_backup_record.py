"""What the node database remembers of its backups (:func:`globe_node.backup.remember`,
:func:`~globe_node.backup.recorded`) and how ``globe-node backup`` records one.

* ``globe-node backup`` records the archive's time, file name, size and SHA-256 (those of
  the file on disk) and the authority, with an audit row by ``cli:<OS user>``; the
  archive never holds its own record.
* The newest :data:`~globe_node.backup.KEEP` are kept, newest first; the newest is too old
  one second after :data:`~globe_node.backup.STALE_AFTER`, and none recorded is too old.
* A stored value that is not a list of records reads as none (and says so in the log);
  a database that cannot take the record leaves the archive, says why, and exits 1.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from globe_node.audit import AuditLog
from globe_node.backup import (
    KEEP,
    META_KEY,
    STALE_AFTER,
    BackupRecord,
    BackupsView,
    recorded,
    remember,
)
from globe_node.store import Store
from tests.node.helpers import Ran, db_rows

ACTOR = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
T0 = 1_800_000_000


def test_the_records_are_the_meta_row_backups() -> None:
    assert META_KEY == "backups"  # what the SQL of these tests reads


def record(n: int) -> BackupRecord:
    return BackupRecord(T0 + n, f"fr-pnf-{n}.tar.gz", 1000 + n, f"{n:064x}", "FR-PNF")


async def put(store: Store, value: str) -> None:
    async with store.write() as s:
        await store.put_meta(s, META_KEY, value)


# --- the record ------------------------------------------------------------------------------


async def test_the_newest_are_kept_newest_first_each_audited(store: Store) -> None:
    audit = AuditLog(store)
    assert await recorded(store, T0) == BackupsView((), None, STALE_AFTER, True)
    for n in range(1, KEEP + 3):
        await remember(audit, record(n), by="cli:ops")
    view = await recorded(store, T0 + KEEP + 2 + 60)
    assert view == BackupsView(
        tuple(record(n) for n in range(KEEP + 2, 2, -1)), 60, STALE_AFTER, False
    )
    entries, verified = await audit.entries()
    assert verified
    assert [(e["time"], e["user"], e["action"], e["subject"]) for e in entries][-1] == (
        T0 + KEEP + 2, "cli:ops", "backup",
        f"fr-pnf-{KEEP + 2}.tar.gz ({1000 + KEEP + 2} bytes, sha256 {KEEP + 2:064x})",
    )  # fmt: skip
    assert len(entries) == KEEP + 2


@pytest.mark.parametrize(
    ("age", "stale"), [(0, False), (STALE_AFTER, False), (STALE_AFTER + 1, True)]
)
async def test_the_newest_is_too_old_past_the_bound(store: Store, age: int, stale: bool) -> None:
    await remember(AuditLog(store), record(0), by="cli:ops")
    view = await recorded(store, T0 + age)
    assert (view.newest_age_s, view.stale, view.stale_after_s) == (age, stale, 7 * 86400)


async def test_a_clock_behind_the_record_reads_as_a_backup_just_made(store: Store) -> None:
    await remember(AuditLog(store), record(0), by="cli:ops")
    assert (await recorded(store, T0 - 3600)).newest_age_s == 0


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "{}",
        '[{"created": 1}]',
        orjson.dumps([{**record(1).to_json(), "size": "1001"}]).decode(),
        orjson.dumps([{**record(1).to_json(), "size": True}]).decode(),
        orjson.dumps([{**record(1).to_json(), "path": "/backup/x"}]).decode(),
        orjson.dumps([record(1).to_json(), 7]).decode(),
    ],
)
async def test_a_stored_value_that_is_not_records_reads_as_none(
    store: Store, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    await put(store, value)
    with caplog.at_level(logging.WARNING, logger="globe.node.backup"):
        assert await recorded(store, T0) == BackupsView((), None, STALE_AFTER, True)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "the node database's record of backups is unreadable"
    ]
    # the next backup starts the list afresh
    await remember(AuditLog(store), record(2), by="cli:ops")
    assert (await recorded(store, T0 + 2)).backups == (record(2),)


def test_a_record_reads_back_exactly() -> None:
    assert BackupRecord.from_json(record(3).to_json()) == record(3)
    assert record(3).to_json() == {
        "created": T0 + 3, "file": "fr-pnf-3.tar.gz", "size": 1003, "sha256": f"{3:064x}",
        "authority": "FR-PNF",
    }  # fmt: skip


# --- globe-node backup -----------------------------------------------------------------------


def test_the_command_records_the_archive_it_wrote(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    archive = tmp_path / "fr-pnf-2026-12-01.tar.gz"
    ran = run("backup", "--dir", node, "--out", archive, "--json")
    assert (ran.code, ran.err) == (0, "")
    data = ran.json()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (data["sha256"], data["archive_bytes"], data["recorded"]) == (
        digest, archive.stat().st_size, True,
    )  # fmt: skip
    (stored,) = db_rows(node / "node.db", "SELECT value FROM meta WHERE key = 'backups'")
    assert orjson.loads(stored[0]) == [
        {"created": data["created"], "file": archive.name, "size": archive.stat().st_size,
         "sha256": digest, "authority": "FR-PNF"}
    ]  # fmt: skip
    assert db_rows(node / "node.db", "SELECT user, action, subject FROM audit") == [
        (ACTOR, "backup", f"{archive.name} ({archive.stat().st_size} bytes, sha256 {digest})")
    ]
    # the archive's snapshot was taken before: it holds no record of itself
    with tarfile.open(archive) as tar:
        snapshot = tar.extractfile("node.db")
        assert snapshot is not None
        (tmp_path / "snapshot.db").write_bytes(snapshot.read())
    assert db_rows(tmp_path / "snapshot.db", "SELECT key FROM meta WHERE key = 'backups'") == []
    # the lines for people name the digest
    again = run("backup", "--dir", node, "--out", tmp_path / "second.tar.gz")
    second = hashlib.sha256((tmp_path / "second.tar.gz").read_bytes()).hexdigest()
    assert again.out.splitlines()[1] == f"sha256 {second}"
    (stored,) = db_rows(node / "node.db", "SELECT value FROM meta WHERE key = 'backups'")
    assert [r["file"] for r in orjson.loads(stored[0])] == ["second.tar.gz", archive.name]


def test_a_database_that_cannot_record_leaves_the_archive_and_says_so(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    conn = sqlite3.connect(node / "node.db")
    with conn:
        conn.execute("DROP TABLE meta")
    conn.close()
    archive = tmp_path / "b.tar.gz"
    ran = run("backup", "--dir", node, "--out", archive)
    assert ran.code == 1
    assert ran.out.startswith(f"backup of FR-PNF written to {archive} (")
    assert ran.err == (
        "globe-node: error: the archive is complete, but the node database did not record "
        "it, so the operator's pages do not show it: the node database refused the "
        "operation (no such table: meta); nothing was stored: check the disk and the "
        "database file, then retry\n"
    )
    assert archive.stat().st_size > 0
    # the audit row went with the record: neither was written
    assert db_rows(node / "node.db", "SELECT action FROM audit") == []

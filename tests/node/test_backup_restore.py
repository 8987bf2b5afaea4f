"""Backing a node directory up and restoring it (:mod:`globe_node.backup`), without the
command line: what an archive holds and leaves out, and each archive or target that
restore refuses -- leaving nothing behind, and an existing target empty."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from globe_node import backup
from globe_node.backup import BackupError, create_backup, restore_backup, snapshot_database
from globe_node.config import NodeConfig, render_config


def plain_node(directory: Path) -> Path:
    """A node directory with every required file (keys.sealed is opaque to a backup)."""
    directory.mkdir(mode=0o700)
    config = NodeConfig(directory=directory, authority="FR-PNF", hub_url="http://127.0.0.1:8440")
    (directory / "node.toml").write_text(render_config(config))
    (directory / "genesis.json").write_bytes(b'{"genesis": true}')
    (directory / "keys.sealed").write_bytes(b"sealed keys")
    conn = sqlite3.connect(directory / "node.db")
    with conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (42)")
    conn.close()
    (directory / "blobs").mkdir(mode=0o700)
    return directory


def make_archive(
    path: Path,
    members: dict[str, bytes],
    *,
    manifest: dict[str, Any] | bytes | None = None,
    extra: Callable[[tarfile.TarFile], None] | None = None,
) -> Path:
    """A tar.gz with ``members`` and (unless given) a matching manifest."""
    if manifest is None:
        manifest = {
            "type": "globe-node-backup",
            "v": 1,
            "files": {n: {"sha256": hashlib.sha256(d).hexdigest()} for n, d in members.items()},
        }
    body = manifest if isinstance(manifest, bytes) else orjson.dumps(manifest)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [*members.items(), ("MANIFEST.json", body)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return path


COMPLETE = {
    "node.toml": b'authority = "FR-PNF"\nhub_url = "http://127.0.0.1:8440"\n',
    "genesis.json": b"{}",
    "keys.sealed": b"k",
    "node.db": b"d",
}


def restore_refused(archive: Path, dest: Path, detail: str) -> None:
    with pytest.raises(BackupError) as err:
        restore_backup(archive, dest)
    assert err.value.detail == detail
    assert not dest.exists()


def test_backup_skips_temporary_files_and_restores_without_a_check(tmp_path: Path) -> None:
    node = plain_node(tmp_path / "node")
    (node / "blobs" / "FR-PNF.aa").write_bytes(b"blob")
    (node / "blobs" / "FR-PNF.bb.tmp").write_bytes(b"half")
    (node / "blobs" / "FR-PNF.cc.part").write_bytes(b"half")
    data = create_backup(node, tmp_path / "b.tgz", clock=lambda: 1_800_000_000)
    assert sorted(data["manifest"]) == [
        "blobs/FR-PNF.aa", "genesis.json", "keys.sealed", "node.db", "node.toml"
    ]  # fmt: skip
    out = restore_backup(tmp_path / "b.tgz", tmp_path / "r")
    assert out == {
        "directory": str(tmp_path / "r"),
        "files": 5,
        "verified": ["blobs/FR-PNF.aa", "genesis.json", "keys.sealed", "node.db", "node.toml"],
    }
    conn = sqlite3.connect(tmp_path / "r" / "node.db")
    assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    conn.close()


def test_backup_refuses_an_incomplete_or_unreadable_node_directory(tmp_path: Path) -> None:
    node = plain_node(tmp_path / "node")
    with pytest.raises(BackupError) as err:
        create_backup(node, tmp_path / "nowhere" / "b.tgz")
    assert err.value.detail == f"directory {tmp_path / 'nowhere'} does not exist"

    (node / "genesis.json").rename(tmp_path / "genesis.json")
    (node / "genesis.json").symlink_to(tmp_path / "genesis.json")
    with pytest.raises(BackupError) as err:
        create_backup(node, tmp_path / "b.tgz")
    assert err.value.detail == f"{node / 'genesis.json'} is not a regular file"
    (node / "genesis.json").unlink()
    with pytest.raises(BackupError) as err:
        create_backup(node, tmp_path / "b.tgz")
    assert err.value.detail == f"{node / 'genesis.json'} not found: not a complete node directory"
    (node / "genesis.json").write_bytes(b"{}")

    (node / "node.db").write_bytes(b"this is not a database, it is long enough to be read" * 10)
    with pytest.raises(BackupError) as err:
        create_backup(node, tmp_path / "b.tgz")
    assert err.value.detail == f"cannot snapshot {node / 'node.db'}: file is not a database"
    (node / "node.db").unlink()
    with pytest.raises(BackupError) as err:
        snapshot_database(node / "node.db", tmp_path / "copy.db")
    assert err.value.detail == f"{node / 'node.db'} not found: not a node directory?"
    # nothing half-written is left next to the archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genesis.json", "node"]


def test_backup_loses_a_race_for_the_archive_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = plain_node(tmp_path / "node")
    out = tmp_path / "b.tgz"
    real_link = os.link

    def racing_link(src: Any, dst: Any) -> None:
        Path(dst).write_bytes(b"written by someone else")
        real_link(src, dst)

    monkeypatch.setattr("globe_node.backup.os.link", racing_link)
    with pytest.raises(BackupError) as err:
        create_backup(node, out)
    assert err.value.detail == f"{out} already exists; refusing to overwrite it"
    assert out.read_bytes() == b"written by someone else"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tgz", "node"]


def add_dir(name: str) -> Callable[[tarfile.TarFile], None]:
    def change(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)

    return change


def test_restore_accepts_a_blobs_directory_member(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a.tgz", COMPLETE, extra=add_dir("blobs/"))
    out = restore_backup(archive, tmp_path / "r")
    assert out["verified"] == sorted(COMPLETE)
    assert (tmp_path / "r" / "blobs").is_dir()


def test_restore_refuses_an_unexpected_directory(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a.tgz", COMPLETE, extra=add_dir("etc/"))
    restore_refused(archive, tmp_path / "r", "unexpected directory 'etc' in the archive")


def test_restore_refuses_a_duplicate_member(tmp_path: Path) -> None:
    def again(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("node.toml")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))

    archive = make_archive(tmp_path / "a.tgz", COMPLETE, extra=again)
    restore_refused(archive, tmp_path / "r", "archive member 'node.toml' appears twice")


@pytest.mark.parametrize(
    ("manifest", "detail"),
    [
        (b"{not json", "MANIFEST.json is not JSON"),
        (b"[]", "MANIFEST.json is not a globe-node backup manifest (version 1)"),
        (
            {"type": "globe-node-backup", "v": 2, "files": {}},
            "MANIFEST.json is not a globe-node backup manifest (version 1)",
        ),
        (
            {"type": "something-else", "v": 1, "files": {}},
            "MANIFEST.json is not a globe-node backup manifest (version 1)",
        ),
        (
            {"type": "globe-node-backup", "v": 1, "files": []},
            "MANIFEST.json is not a globe-node backup manifest (version 1)",
        ),
        (
            {"type": "globe-node-backup", "v": 1, "files": {"node.toml": {"sha256": 5}}},
            "MANIFEST.json: malformed entry for 'node.toml'",
        ),
        (
            {"type": "globe-node-backup", "v": 1, "files": {"node.toml": "abc"}},
            "MANIFEST.json: malformed entry for 'node.toml'",
        ),
    ],
)
def test_restore_refuses_a_bad_manifest(
    tmp_path: Path, manifest: dict[str, Any] | bytes, detail: str
) -> None:
    archive = make_archive(tmp_path / "a.tgz", COMPLETE, manifest=manifest)
    restore_refused(archive, tmp_path / "r", detail)


def test_restore_refuses_a_manifest_mismatch(tmp_path: Path) -> None:
    listed = {n: {"sha256": hashlib.sha256(d).hexdigest()} for n, d in COMPLETE.items()}
    manifest = {
        "type": "globe-node-backup", "v": 1,
        "files": {**listed, "application.json": {"sha256": "00" * 32}},
    }  # fmt: skip
    archive = make_archive(tmp_path / "a.tgz", COMPLETE, manifest=manifest)
    restore_refused(
        archive, tmp_path / "r", "the archive lacks application.json listed in MANIFEST.json"
    )
    listed["genesis.json"] = {"sha256": "00" * 32}
    archive = make_archive(
        tmp_path / "b.tgz", COMPLETE, manifest={"type": "globe-node-backup", "v": 1,
                                                "files": listed},
    )  # fmt: skip
    restore_refused(
        archive,
        tmp_path / "r",
        "genesis.json: SHA-256 differs from MANIFEST.json (the archive was altered or damaged)",
    )


def test_restore_refuses_an_incomplete_backup(tmp_path: Path) -> None:
    partial = {k: v for k, v in COMPLETE.items() if k not in ("keys.sealed", "node.db")}
    archive = make_archive(tmp_path / "a.tgz", partial)
    restore_refused(
        archive,
        tmp_path / "r",
        "the archive lacks keys.sealed, node.db: not a complete node backup",
    )


def test_restore_refuses_an_archive_without_a_manifest(tmp_path: Path) -> None:
    archive = tmp_path / "a.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("node.toml")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    restore_refused(
        archive, tmp_path / "r", f"{archive}: no MANIFEST.json: not a globe-node backup"
    )


def test_restore_refuses_an_oversized_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backup, "MAX_MANIFEST", 16)
    archive = make_archive(tmp_path / "a.tgz", COMPLETE)
    restore_refused(archive, tmp_path / "r", "MANIFEST.json is too large")


def test_restore_refuses_bad_targets(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a.tgz", COMPLETE)
    with pytest.raises(BackupError) as err:
        restore_backup(tmp_path / "missing.tgz", tmp_path / "r")
    assert err.value.detail == f"{tmp_path / 'missing.tgz'}: no such archive"
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(BackupError) as err:
        restore_backup(archive, target)
    assert err.value.detail == f"{target} exists and is not a directory"
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(BackupError) as err:
        restore_backup(archive, tmp_path / "link")
    assert err.value.detail == f"{tmp_path / 'link'} exists and is not a directory"
    assert not (tmp_path / "elsewhere").exists()


def test_a_failed_check_empties_an_existing_target(tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a.tgz", COMPLETE, extra=add_dir("blobs/"))
    target = tmp_path / "empty"
    target.mkdir()

    def check(directory: Path) -> None:
        assert (directory / "keys.sealed").read_bytes() == b"k"
        raise BackupError("the keys do not open")

    with pytest.raises(BackupError) as err:
        restore_backup(archive, target, check=check)
    assert err.value.detail == "the keys do not open"
    assert target.is_dir()
    assert list(target.iterdir()) == []

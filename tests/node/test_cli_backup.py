"""``globe-node backup`` and ``restore``: an archive of the node directory (keys sealed,
no API token) with a manifest of digests, restored byte for byte with a new operator
token; every archive that was altered, holds unsafe or unlisted members, or does not
open with the passphrase is refused, leaving nothing behind."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from globe_node.config import load_config
from globe_node.keys import load_keys
from protocol.genesis import Genesis
from protocol.membership import Application
from tests.node.helpers import CLI_PASSPHRASE, Ran, mode, refused


def make_blob(node: Path) -> Path:
    blob = node / "blobs" / ("ab" * 16)
    blob.write_bytes(b"\x00encrypted attachment\xff" * 1000)
    return blob


def table_dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}  # noqa: S608
    finally:
        conn.close()


def test_backup_restore_round_trip(tmp_path: Path, node: Path, run: Callable[..., Ran]) -> None:
    blob = make_blob(node)
    (node / "blobs" / ".half.part").write_bytes(b"temporary")  # not backed up
    assert run("users", "add", "alice", "--role", "investigator", "--dir", node).code == 0
    archive = tmp_path / "node.tar.gz"
    data = run("backup", "--dir", node, "--out", archive, "--json").json()
    assert data["out"] == str(archive)
    assert mode(archive) == 0o600
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == sorted(
        ["MANIFEST.json", "node.toml", "genesis.json", "keys.sealed", "application.json",
         "node.db", f"blobs/{blob.name}"]
    )  # fmt: skip
    assert "api.token" not in names
    refused(
        run("backup", "--dir", node, "--out", archive),
        f"{archive} already exists; refusing to overwrite it",
    )

    restored = tmp_path / "restored"
    out = run("restore", archive, "--dir", restored, "--json").json()
    assert out["directory"] == str(restored)
    for name in ("node.toml", "genesis.json", "keys.sealed", "application.json"):
        assert (restored / name).read_bytes() == (node / name).read_bytes(), name
        assert mode(restored / name) == 0o600
    assert (restored / "blobs" / blob.name).read_bytes() == blob.read_bytes()
    assert not (restored / "blobs" / ".half.part").exists()
    assert mode(restored) == 0o700
    assert mode(restored / "blobs") == 0o700
    assert mode(restored / "node.db") == 0o600
    assert mode(restored / "api.token") == 0o600
    original = load_keys(node / "keys.sealed", CLI_PASSPHRASE.encode())
    assert (
        load_keys(restored / "keys.sealed", CLI_PASSPHRASE.encode()).encode() == original.encode()
    )
    application = (node / "application.json").read_bytes()
    genesis = Genesis.decode((node / "genesis.json").read_bytes())
    assert out["fingerprint"] == Application.decode(application, genesis).fingerprint()
    # the database is the same apart from the operator's new API token, and the record of
    # this backup (with its audit row), written to the node after the snapshot was taken
    old, new = table_dump(node / "node.db"), table_dump(restored / "node.db")
    assert old.pop("meta") == [
        ("backups", orjson.dumps([{
            "created": data["created"], "file": archive.name, "size": archive.stat().st_size,
            "sha256": data["sha256"], "authority": "FR-PNF",
        }]).decode()),
    ]  # fmt: skip
    assert new.pop("meta") == []
    assert [r[3] for r in old["audit"]] == ["add-user", "backup"]
    old["audit"].pop()
    assert {k: v for k, v in old.items() if k != "users"} == {
        k: v for k, v in new.items() if k != "users"
    }
    token = (restored / "api.token").read_text().strip()
    assert token != (node / "api.token").read_text().strip()
    users = {r[0]: r for r in new["users"]}
    assert users["operator"][2] == hashlib.sha256(token.encode()).digest()
    assert users["alice"] == {r[0]: r for r in old["users"]}["alice"]
    assert load_config(restored).authority == "FR-PNF"


def test_restore_refuses_a_non_empty_directory(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    archive = tmp_path / "b.tgz"
    assert run("backup", "--dir", node, "--out", archive).code == 0
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    refused(
        run("restore", archive, "--dir", busy),
        f"{busy} is not empty; restore into a new or empty directory",
    )
    assert sorted(p.name for p in busy.iterdir()) == ["something"]


def test_restore_with_a_wrong_passphrase_leaves_nothing(
    tmp_path: Path, node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "b.tgz"
    assert run("backup", "--dir", node, "--out", archive).code == 0
    monkeypatch.setenv("GLOBE_PASSPHRASE", "not the passphrase")
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (tmp_path / "new", empty):
        refused(
            run("restore", archive, "--dir", target),
            f"{archive}: the passphrase does not open the archived keys.sealed (wrong "
            "passphrase, or the archive was altered); nothing was restored",
        )
    assert not (tmp_path / "new").exists()
    assert list(empty.iterdir()) == []


def rewrite(archive: Path, out: Path, change: Callable[[tarfile.TarFile], None]) -> None:
    """Copy ``archive`` to ``out`` member by member, then let ``change`` add more."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            f = src.extractfile(member)
            data = f.read() if f is not None else b""
            if member.name == "node.toml":
                data += b"# altered\n"
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
        change(dst)


def test_restore_refuses_a_tampered_member(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    archive = tmp_path / "b.tgz"
    assert run("backup", "--dir", node, "--out", archive).code == 0
    tampered = tmp_path / "tampered.tgz"
    rewrite(archive, tampered, lambda _tar: None)
    target = tmp_path / "t"
    refused(
        run("restore", tampered, "--dir", target),
        "node.toml: SHA-256 differs from MANIFEST.json (the archive was altered or damaged)",
    )
    assert not target.exists()


def add_bytes(name: str, data: bytes = b"x") -> Callable[[tarfile.TarFile], None]:
    def change(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    return change


def add_link(name: str, kind: bytes) -> Callable[[tarfile.TarFile], None]:
    def change(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd"
        tar.addfile(info)

    return change


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            add_bytes("../evil"),
            "unsafe member name '../evil' in the archive: refusing to restore it",
        ),
        (
            add_bytes("blobs/../../evil"),
            "unsafe member name 'blobs/../../evil' in the archive: refusing to restore it",
        ),
        (
            add_bytes("/etc/globe-evil"),
            "unsafe member name '/etc/globe-evil' in the archive: refusing to restore it",
        ),
        (
            add_link("blobs/link", tarfile.SYMTYPE),
            "archive member 'blobs/link' is a link or a device: refusing to restore it",
        ),
        (
            add_link("blobs/hard", tarfile.LNKTYPE),
            "archive member 'blobs/hard' is a link or a device: refusing to restore it",
        ),
        (
            add_link("blobs/dev", tarfile.CHRTYPE),
            "archive member 'blobs/dev' is a link or a device: refusing to restore it",
        ),
        (add_bytes("api.token"), "unexpected member 'api.token' in the archive"),
    ],
)
def test_restore_refuses_unsafe_members(
    tmp_path: Path,
    node: Path,
    run: Callable[..., Ran],
    change: Callable[[tarfile.TarFile], None],
    detail: str,
) -> None:
    archive = tmp_path / "b.tgz"
    assert run("backup", "--dir", node, "--out", archive).code == 0
    evil = tmp_path / "evil.tgz"
    # keep node.toml intact here: only the added member is wrong
    with tarfile.open(archive) as src, tarfile.open(evil, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        change(dst)
    target = tmp_path / "sub" / "t"
    refused(run("restore", evil, "--dir", target), detail)
    assert not target.exists()
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "sub" / "evil").exists()


def test_restore_refuses_a_member_missing_from_the_manifest(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    archive = tmp_path / "b.tgz"
    assert run("backup", "--dir", node, "--out", archive).code == 0
    extra = tmp_path / "extra.tgz"
    with tarfile.open(archive) as src, tarfile.open(extra, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        add_bytes("blobs/" + "cd" * 16)(dst)
    refused(
        run("restore", extra, "--dir", tmp_path / "t"),
        f"the archive holds blobs/{'cd' * 16}, not listed in MANIFEST.json",
    )
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not an archive")
    ran = run("restore", junk, "--dir", tmp_path / "t")
    assert ran.code == 1
    assert ran.err.startswith(f"globe-node: error: {junk}: not a readable backup archive")
    assert ran.err.count("\n") == 1
    assert not (tmp_path / "t").exists()


def test_the_manifest_lists_every_member_with_its_digest(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    make_blob(node)
    archive = tmp_path / "b.tgz"
    assert run("backup", "--dir", node, "--out", archive).code == 0
    with tarfile.open(archive) as tar:
        f = tar.extractfile("MANIFEST.json")
        assert f is not None
        manifest = orjson.loads(f.read())
        for name, entry in manifest["files"].items():
            g = tar.extractfile(name)
            assert g is not None
            assert hashlib.sha256(g.read()).hexdigest() == entry["sha256"]
    assert manifest["type"] == "globe-node-backup"
    assert set(manifest["files"]) == {
        "node.toml", "genesis.json", "keys.sealed", "application.json", "node.db",
        "blobs/" + "ab" * 16,
    }  # fmt: skip

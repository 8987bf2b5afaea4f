"""Edge cases of the node's small modules, without a hub or a daemon: configuration
validation, storage sealing, backup and restore refusals, and the local API client
against a stand-in daemon that misbehaves in each way the client must report."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import sqlite3
import tarfile
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from globe_node import apiclient, backup
from globe_node.apiclient import ApiClient, ApiError, DaemonNotRunning
from globe_node.backup import BackupError, create_backup, restore_backup, snapshot_database
from globe_node.config import Deadlines, NodeConfig, load_config, render_config
from globe_node.errors import ConfigError
from globe_node.storage import StorageCipher
from protocol.errors import DecryptionFailed
from protocol.messages import Urgency

# --- configuration -------------------------------------------------------------------------------


def write_config(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / "node.toml"
    path.write_text('authority = "FR-PNF"\nhub_url = "http://127.0.0.1:8440"\n' + text)
    return path


def test_config_round_trip_keeps_every_field(tmp_path: Path) -> None:
    config = NodeConfig(
        directory=tmp_path, authority="FR-PNF", hub_url="https://hub.example.org/globe",
        peer_host="0.0.0.0", peer_port=8460, api_host="::1", api_port=18450,  # noqa: S104
        directory_max_age=3600, sync_interval=2.5, prekey_lifetime=5 * 86400,
        prekey_rotate_before=86400, prekey_grace=3 * 86400, message_lifetime=86400,
        retry_base=0.5, retry_max=60.0, direct_timeout=1.5,
        deadlines=Deadlines(urgent=3600, priority=7200, routine=10800),
    )  # fmt: skip
    (tmp_path / "node.toml").write_text(render_config(config))
    assert load_config(tmp_path) == config
    assert load_config(tmp_path).deadlines.for_urgency(Urgency.PRIORITY) == 7200


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("api_port = \"8450\"\n", "api_port must be a non-negative integer"),
        ("peer_port = -1\n", "peer_port must be a non-negative integer"),
        ("directory_max_age = true\n", "directory_max_age must be a non-negative integer"),
        ("sync_interval = 0\n", "sync_interval must be a positive number"),
        ("retry_base = -1.5\n", "retry_base must be a positive number"),
        ("retry_max = inf\n", "retry_max must be a positive number"),
        ("direct_timeout = \"5\"\n", "direct_timeout must be a positive number"),
        ("api_port = 70000\n", "ports are 0-65535"),
        ("peer_port = 65536\n", "ports are 0-65535"),
        ("message_lifetime = 59\n", "message_lifetime must be 60 s to 30 days"),
        ("message_lifetime = 2592001\n", "message_lifetime must be 60 s to 30 days"),
        (
            "prekey_lifetime = 86400\nprekey_rotate_before = 86400\n",
            "prekey_lifetime must exceed prekey_rotate_before",
        ),
        (
            "prekey_lifetime = 7776000\n",
            "prekey_lifetime is at most 90 days less a minute",
        ),
        ("api_port = 0\n", "api_port must name a port (1-65535)"),
        ("deadlines = 5\n", "[deadlines] values are positive integers (seconds)"),
        ("[deadlines]\nurgent = 0\n", "[deadlines] values are positive integers (seconds)"),
        ("[deadlines]\nurgent = 1.5\n", "[deadlines] values are positive integers (seconds)"),
        (
            "colour = \"blue\"\n",
            "NodeConfig.__init__() got an unexpected keyword argument 'colour'",
        ),
        (
            "[deadlines]\nsoon = 60\n",
            "Deadlines.__init__() got an unexpected keyword argument 'soon'",
        ),
    ],
)  # fmt: skip
def test_config_validation_errors_name_the_file_and_the_field(
    tmp_path: Path, text: str, detail: str
) -> None:
    path = write_config(tmp_path / "n", text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == f"{path}: {detail}"


def test_config_missing_required_field(tmp_path: Path) -> None:
    d = tmp_path / "n"
    d.mkdir()
    (d / "node.toml").write_text('hub_url = "http://127.0.0.1:8440"\n')
    with pytest.raises(ConfigError) as err:
        load_config(d)
    assert err.value.detail == (
        f"{d / 'node.toml'}: NodeConfig.__init__() missing 1 required positional argument: "
        "'authority'"
    )


def test_config_that_is_not_toml_or_not_utf8(tmp_path: Path) -> None:
    path = write_config(tmp_path / "n", "api_port = \n")
    try:
        tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        expected = f"{path}: {exc}"
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail == expected
    path.write_bytes(b'authority = "FR-\xff"\n')
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "n")
    assert err.value.detail.startswith(f"{path}: 'utf-8' codec can't decode byte 0xff")


@pytest.mark.parametrize("field", ["authority", "hub_url", "api_host", "peer_host"])
def test_config_string_fields_must_be_strings(tmp_path: Path, field: str) -> None:
    d = tmp_path / "n"
    d.mkdir()
    values = {"authority": '"FR-PNF"', "hub_url": '"http://127.0.0.1:8440"', field: "42"}
    (d / "node.toml").write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
    with pytest.raises(ConfigError) as err:
        load_config(d)
    assert err.value.detail == f"{d / 'node.toml'}: {field} must be a string"


# --- storage -------------------------------------------------------------------------------------


def test_storage_cipher_binds_values_to_their_place() -> None:
    cipher = StorageCipher(b"\x07" * 32)
    sealed = cipher.seal(b"case material", "content:m1")
    assert len(sealed) == 12 + len(b"case material") + 16
    assert cipher.open(sealed, "content:m1") == b"case material"
    with pytest.raises(DecryptionFailed):
        cipher.open(sealed, "content:m2")  # moved to another row
    with pytest.raises(DecryptionFailed):
        StorageCipher(b"\x08" * 32).open(sealed, "content:m1")
    with pytest.raises(DecryptionFailed) as err:
        cipher.open(sealed[:27], "content:m1")
    assert err.value.detail == "stored content:m1 is truncated"
    with pytest.raises(ValueError, match=r"\Aa storage key is 32 bytes\Z"):
        StorageCipher(b"\x07" * 31)


# --- backup and restore --------------------------------------------------------------------------


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


def test_backup_refusals(tmp_path: Path) -> None:
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


# --- the local API client ------------------------------------------------------------------------

PAYLOAD = os.urandom(200_000)


@pytest.fixture
async def stand_in() -> AsyncIterator[str]:
    """A daemon that answers each path in one particular (mostly wrong) way."""

    async def slow(_r: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    async def text(_r: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    async def array(_r: web.Request) -> web.Response:
        return web.json_response([1, 2])

    async def empty(_r: web.Request) -> web.Response:
        return web.Response(status=204)

    async def big(_r: web.Request) -> web.Response:
        return web.json_response({"x": "y" * 5000})

    def problem(body: bytes, status: int = 409) -> Callable[[web.Request], Any]:
        async def handler(_r: web.Request) -> web.Response:
            return web.Response(body=body, status=status, content_type="application/problem+json")

        return handler

    async def plain_error(_r: web.Request) -> web.Response:
        return web.Response(text='{"detail": "not from a problem"}', status=500)

    async def gzipped(_r: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(PAYLOAD),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
        )

    async def file(_r: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD, content_type="application/octet-stream")

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(PAYLOAD))})
        await resp.prepare(request)
        await resp.write(PAYLOAD[:1000])
        assert request.transport is not None
        request.transport.close()
        return resp

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/text", text)
    app.router.add_get("/array", array)
    app.router.add_get("/empty", empty)
    app.router.add_get("/big", big)
    app.router.add_get("/problem/junk", problem(b"{not json"))
    app.router.add_get("/problem/title", problem(b'{"title": "Conflict", "detail": "  "}'))
    app.router.add_get("/problem/none", problem(b'{"type": "x", "detail": 5}'))
    app.router.add_get("/problem/list", problem(b'["detail"]'))
    app.router.add_get("/problem/lines", problem(b'{"detail": "two\\n  lines"}', 403))
    app.router.add_get("/plain-error", plain_error)
    app.router.add_get("/gzipped", gzipped)
    app.router.add_get("/file", file)
    app.router.add_get("/cut", cut)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def api_error(client: ApiClient, path: str) -> ApiError:
    with pytest.raises(ApiError) as err:
        await client.get(path)
    return err.value


async def test_api_client_reports_each_kind_of_wrong_answer(stand_in: str) -> None:
    async with ApiClient(stand_in + "/", "t", timeout=0.3) as client:
        assert client.base_url == stand_in
        err = await api_error(client, "/slow")
        assert err.detail == f"the node daemon at {stand_in} did not answer within 0.3 s"
        err = await api_error(client, "/text")
        assert err.detail == "the node daemon's answer to GET /text is not JSON"
        err = await api_error(client, "/array")
        assert err.detail == "the node daemon's answer to GET /array is not a JSON object"
        assert await client.get("/empty") == {}
        err = await api_error(client, "/problem/junk")
        assert (err.detail, err.http_status) == (
            "the node daemon answered HTTP 409 to GET /problem/junk", 409
        )  # fmt: skip
        assert (await api_error(client, "/problem/title")).detail == "Conflict"
        err = await api_error(client, "/problem/none")
        assert err.detail == "the node daemon answered HTTP 409 to GET /problem/none"
        err = await api_error(client, "/problem/list")
        assert err.detail == "the node daemon answered HTTP 409 to GET /problem/list"
        err = await api_error(client, "/problem/lines")
        assert (err.detail, err.http_status) == ("two lines", 403)
        err = await api_error(client, "/plain-error")
        assert err.detail == "the node daemon answered HTTP 500 to GET /plain-error"


async def test_api_client_limits_the_size_of_an_answer(
    stand_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apiclient, "MAX_JSON", 1000)
    async with ApiClient(stand_in, "t") as client:
        err = await api_error(client, "/big")
    assert err.detail == "the node daemon's answer exceeds 1000 bytes"


async def test_api_client_closes_without_having_connected() -> None:
    client = ApiClient("http://127.0.0.1:9", "t")
    await client.close()
    await client.close()
    assert client._session is None


async def test_api_client_download_edges(stand_in: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    async with ApiClient(stand_in, "t", timeout=5) as client:
        size = await client.download("/file", tmp_path / "f", lambda d, t: seen.append((d, t)))
        assert size == len(PAYLOAD)
        assert (tmp_path / "f").read_bytes() == PAYLOAD
        assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        # refused: the problem detail, and no file
        with pytest.raises(ApiError) as err:
            await client.download("/problem/lines", tmp_path / "g")
        assert err.value.detail == "two lines"
        # a body whose decoded size is not the announced length
        with pytest.raises(ApiError) as err:
            await client.download("/gzipped", tmp_path / "h")
        compressed = len(gzip.compress(PAYLOAD))
        assert err.value.detail.startswith("the download of /gzipped stopped after ")
        assert err.value.detail.endswith(f" of {compressed}")
        # the connection dropped half way
        with pytest.raises(ApiError) as err:
            await client.download("/cut", tmp_path / "i")
        assert err.value.detail.startswith(f"cannot talk to the node daemon at {stand_in}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


async def test_api_client_without_a_daemon(tmp_path: Path) -> None:
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    base = f"http://127.0.0.1:{port}"
    async with ApiClient(base, "t") as client:
        with pytest.raises(DaemonNotRunning) as err:
            await client.download("/file", tmp_path / "f")
    assert err.value.detail == (
        f"the node daemon is not running at {base}: start it with 'globe-node run'"
    )
    assert list(tmp_path.iterdir()) == []

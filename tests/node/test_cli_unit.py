"""Tests of the ``globe-node`` command line, run in-process through :func:`globe_node.cli.main`.

The commands that work on the node directory (``init``, ``apply``, ``backup``,
``restore``, ``users``) run against files in ``tmp_path``; ``apply`` talks to a
small stand-in hub and the daemon commands to a small stand-in daemon API, both
aiohttp servers on a free loopback port (the CLI then runs in a worker thread,
since it starts its own event loop).  Key files use the ``interactive`` Argon2id
cost to keep the module fast.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import socket
import sqlite3
import stat
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from globe_node.cli import main
from globe_node.cli import users as users_cli
from globe_node.config import NodeConfig, load_config, render_config
from globe_node.keys import load_keys
from protocol import canonical, crypto
from protocol.devnet import build_devnet
from protocol.errors import PROBLEM_BASE
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.membership import Application, authority_fingerprint, kem_pop_challenge

PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test passphrase
FINGERPRINT = re.compile(r"(\d{5} ){11}\d{5}\Z")
NOT_RUNNING = (
    "globe-node: error: the node daemon is not running at http://127.0.0.1:{port}: "
    "start it with 'globe-node run'\n"
)


@dataclass
class Ran:
    """One command: exit status and what it wrote."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert (self.code, self.err) == (0, ""), self.err
        return json.loads(self.out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GLOBE_TOKEN", "GLOBE_NODE_DIR", "GLOBE_DEBUG", "GLOBE_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GLOBE_PASSPHRASE", PASSPHRASE)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    def go(*args: str | Path) -> Ran:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # not expected: main returns the exit status
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return go


@pytest.fixture(scope="module")
def genesis_bytes() -> bytes:
    return build_devnet().genesis.encode()


@pytest.fixture
def genesis_file(tmp_path: Path, genesis_bytes: bytes) -> Path:
    path = tmp_path / "genesis.json"
    path.write_bytes(genesis_bytes)
    return path


def init_args(directory: Path, genesis: Path, *extra: str) -> list[str | Path]:
    return [
        "init", "--dir", directory, "--genesis", genesis, "--authority-id", "FR-PNF",
        "--name", "Parquet national financier", "--country", "FR",
        "--kind", "anti-corruption", "--kind", "mla-central", "--language", "fr",
        "--language", "en", "--contact", "duty officer, +33 1 00 00 00 00",
        "--legal-basis", "UNCAC art. 36", "--kdf", "interactive", *extra,
    ]  # fmt: skip


@pytest.fixture
def node(tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]) -> Path:
    """An initialised node whose API port has nothing listening."""
    directory = tmp_path / "node"
    ran = run(*init_args(directory, genesis_file, "--api-port", str(free_port())))
    assert ran.code == 0, ran.err
    return directory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def refused(ran: Ran, detail: str) -> None:
    assert (ran.code, ran.out, ran.err) == (1, "", f"globe-node: error: {detail}\n")


def db_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


# --- init ---------------------------------------------------------------------------------------


def test_init_creates_a_private_node_directory(
    tmp_path: Path, genesis_file: Path, genesis_bytes: bytes, run: Callable[..., Ran]
) -> None:
    directory = tmp_path / "node"
    data = run(
        *init_args(directory, genesis_file, "--endpoint", "https://node.example.org/globe"),
        "--peer-port", "8460", "--api-port", "18450", "--json",
    ).json()  # fmt: skip
    assert mode(directory) == 0o700
    for name in ("keys.sealed", "api.token", "node.toml", "genesis.json", "application.json"):
        assert mode(directory / name) == 0o600, name
    assert mode(directory / "blobs") == 0o700
    genesis = Genesis.decode(genesis_bytes)
    assert (directory / "genesis.json").read_bytes() == genesis_bytes
    assert data["genesis_fingerprint"] == genesis.fingerprint()
    assert FINGERPRINT.match(data["fingerprint"])
    keys = load_keys(directory / "keys.sealed", PASSPHRASE.encode())
    assert data["fingerprint"] == authority_fingerprint(
        authority=AuthorityId.parse("FR-PNF"),
        identity=keys.identity.verify_key,
        transport=keys.transport.verify_key,
        ka=keys.ka.public_key,
    )
    config = load_config(directory)
    assert (config.authority, config.hub_url) == ("FR-PNF", genesis.hub_url)
    assert (config.peer_port, config.api_port) == (8460, 18450)
    app = Application.decode((directory / "application.json").read_bytes(), genesis)
    assert str(app.authority) == "FR-PNF"
    assert app.kinds == ("anti-corruption", "mla-central")
    assert app.languages == ("en", "fr")
    assert app.endpoint == "https://node.example.org/globe"
    assert app.identity_key == keys.identity.verify_key
    assert app.ka_key == keys.ka.public_key
    assert app.fingerprint() == data["fingerprint"]
    token = (directory / "api.token").read_text().strip()
    assert len(canonical.b64d(token, what="token")) == 32
    assert db_rows(directory / "node.db", "SELECT name, role, token_hash FROM users") == [
        ("operator", "operator", hashlib.sha256(token.encode()).digest())
    ]


def test_init_prints_both_fingerprints(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    ran = run(*init_args(tmp_path / "n", genesis_file))
    assert ran.code == 0
    assert ran.err == ""
    assert re.search(r"genesis fingerprint: (\d{5} ){11}\d{5}\n", ran.out)
    assert re.search(r"node fingerprint: +(\d{5} ){11}\d{5}\n", ran.out)


def test_init_refuses_an_existing_node(
    node: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    before = (node / "keys.sealed").read_bytes()
    ran = run(*init_args(node, genesis_file))
    refused(ran, f"{node} already holds a node (node.toml exists); refusing to overwrite it")
    assert (node / "keys.sealed").read_bytes() == before


def test_init_refuses_a_country_mismatch(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    args = init_args(tmp_path / "n", genesis_file)
    args[args.index("--country") + 1] = "DE"
    refused(run(*args), "--country DE does not match the authority id FR-PNF (country FR)")
    assert not (tmp_path / "n").exists()


def test_init_refuses_a_bad_genesis_and_cleans_up(tmp_path: Path, run: Callable[..., Ran]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    ran = run(*init_args(tmp_path / "n", bad))
    assert ran.code == 1
    assert ran.err.startswith(f"globe-node: error: {bad}: not a valid genesis (")
    assert ran.err.count("\n") == 1
    assert not (tmp_path / "n").exists()


def test_init_passphrase_rules(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBE_PASSPHRASE", "short")
    refused(
        run(*init_args(tmp_path / "n", genesis_file)),
        "the passphrase for the node keys needs at least 8 characters",
    )
    monkeypatch.delenv("GLOBE_PASSPHRASE")
    refused(
        run(*init_args(tmp_path / "n", genesis_file)),
        "no passphrase for the node keys: pass --passphrase-file FILE or set GLOBE_PASSPHRASE",
    )
    assert not (tmp_path / "n").exists()
    pw = tmp_path / "pw"
    pw.write_text("another good passphrase\n")
    ran = run(*init_args(tmp_path / "n", genesis_file), "--passphrase-file", pw)
    assert ran.code == 0, ran.err
    load_keys(tmp_path / "n" / "keys.sealed", b"another good passphrase")


def test_usage_errors_exit_2(tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]) -> None:
    args = init_args(tmp_path / "n", genesis_file)
    i = args.index("--kind")
    del args[i : i + 4]
    ran = run(*args)
    assert ran.code == 2
    assert "the following arguments are required: --kind" in ran.err
    assert run("users", "add", "x", "--role", "admin", "--dir", tmp_path).code == 2
    assert run("inbox", "--limit", "0").code == 2


# --- passphrase and keys ------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["run"], ["apply"]])
def test_wrong_passphrase_is_one_line(
    node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("GLOBE_PASSPHRASE", "not the passphrase")
    refused(
        run(*command, "--dir", node),
        f"{node / 'keys.sealed'}: wrong passphrase, or the key file was altered",
    )


def test_missing_node_directory(tmp_path: Path, run: Callable[..., Ran]) -> None:
    missing = tmp_path / "nowhere"
    ran = run("users", "list", "--dir", missing)
    refused(ran, f"{missing / 'node.toml'} not found: run 'globe-node init --dir {missing}'")


def test_dir_defaults_to_the_environment(
    node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBE_NODE_DIR", str(node))
    assert [u["name"] for u in run("users", "list", "--json").json()["users"]] == ["operator"]


def test_interrupt_exits_130(run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(users_cli, "load_config", interrupted)
    ran = run("users", "list")
    assert (ran.code, ran.err) == (130, "globe-node: interrupted\n")


# --- users --------------------------------------------------------------------------------------


def test_users_add_and_list(node: Path, run: Callable[..., Ran]) -> None:
    ran = run("users", "add", "alice", "--role", "investigator", "--dir", node)
    assert ran.code == 0, ran.err
    token = ran.out.splitlines()[1]
    digest = hashlib.sha256(token.encode()).digest()
    assert db_rows(
        node / "node.db", "SELECT name, role, token_hash FROM users WHERE name='alice'"
    ) == [("alice", "investigator", digest)]
    data = run("users", "add", "bob", "--role", "supervisor", "--dir", node, "--json").json()
    assert data["name"] == "bob"
    assert data["role"] == "supervisor"
    assert (hashlib.sha256(data["token"].encode()).digest(),) in db_rows(
        node / "node.db", "SELECT token_hash FROM users"
    )
    listed = run("users", "list", "--dir", node, "--json").json()["users"]
    assert [(u["name"], u["role"]) for u in listed] == [
        ("alice", "investigator"), ("bob", "supervisor"), ("operator", "operator")
    ]  # fmt: skip
    refused(
        run("users", "add", "alice", "--role", "operator", "--dir", node),
        "user 'alice' already exists",
    )
    refused(
        run("users", "add", "no spaces", "--role", "operator", "--dir", node),
        "user name 'no spaces': 1-64 of letters, digits and . _ @ - (starting alphanumeric)",
    )


# --- backup and restore -------------------------------------------------------------------------


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
    original = load_keys(node / "keys.sealed", PASSPHRASE.encode())
    assert load_keys(restored / "keys.sealed", PASSPHRASE.encode()).encode() == original.encode()
    application = (node / "application.json").read_bytes()
    genesis = Genesis.decode((node / "genesis.json").read_bytes())
    assert out["fingerprint"] == Application.decode(application, genesis).fingerprint()
    # the database is the same apart from the operator's new API token
    old, new = table_dump(node / "node.db"), table_dump(restored / "node.db")
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


# --- daemon commands without a daemon -----------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"], ["inbox", "--unread"], ["outbox"], ["show", "m1"], ["cases"],
        ["case", "C-1"], ["stats"], ["directory", "search", "--country", "fr"],
        ["ping", "DE-BKA"], ["keys", "rotate"], ["sync"], ["alerts"], ["audit"],
        ["retry", "m1"], ["forward", "m1", "--to", "DE-BKA"],
        ["consent", "m1", "--grant"], ["status-update", "m1", "--state", "acknowledged"],
        ["send", "--to", "DE-BKA", "--kind", "request", "--subject", "s", "--body", "b"],
    ],
)  # fmt: skip
def test_api_commands_without_a_daemon(
    node: Path, run: Callable[..., Ran], command: list[str]
) -> None:
    port = load_config(node).api_port
    ran = run(*command, "--dir", node)
    assert (ran.code, ran.out, ran.err) == (1, "", NOT_RUNNING.format(port=port))


def test_api_token_is_required(node: Path, run: Callable[..., Ran]) -> None:
    (node / "api.token").unlink()
    refused(
        run("status", "--dir", node),
        f"no API token: {node / 'api.token'} not found (pass --token-file FILE or set GLOBE_TOKEN)",
    )


def test_send_checks_its_input_before_the_daemon(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
    base = ["send", "--dir", node, "--to", "DE-BKA", "--kind", "request", "--subject", "s"]
    refused(
        run(*base, "--body", "b", "--deadline", "2001-01-01T00:00:00Z"),
        "--deadline 2001-01-01T00:00:00Z is not in the future",
    )
    refused(
        run(*base, "--body", "b", "--deadline", "next week"),
        "--deadline: not an ISO 8601 date or time: 'next week'",
    )
    refused(
        run(*base, "--body", "b", "--attach", tmp_path / "missing.pdf"),
        f"--attach {tmp_path / 'missing.pdf'}: not a file",
    )
    refused(
        run(*base, "--body-file", tmp_path / "missing.txt"),
        f"cannot read {tmp_path / 'missing.txt'}: No such file or directory",
    )
    ran = run(*base, "--to", "not-an-id", "--body", "b")
    assert ran.code == 1
    assert ran.err.startswith("globe-node: error: authority id 'not-an-id'")


# --- against stand-in servers -------------------------------------------------------------------


@dataclass
class Daemon:
    port: int
    token: str
    requests: list[tuple[str, str, Any]]
    status: dict[str, Any]


PROBLEM_DETAIL = (
    "message m1 is TLP:RED; FR-PNF has not consented to forwarding to DE-BKA: use request-consent"
)


def problem(status: int, slug: str, detail: str) -> web.Response:
    body = {"type": PROBLEM_BASE + slug, "title": slug, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    token = canonical.b64e(b"\x01" * 32)
    state = Daemon(
        0,
        token,
        [],
        {
            "authority": "FR-PNF",
            "membership": "active",
            "directory": {"seq": 3, "head": "abc", "age_s": 12, "max_age_s": 86400, "members": 2},
            "hub": {"url": "http://127.0.0.1:8440", "reachable": True, "push_connected": True},
            "outbox": {"queued": 1},
            "inbox_unread": 2,
            "requests_open": 1,
            "requests_overdue": 0,
            "alerts": 0,
        },
    )
    attachment = b"attachment bytes " * 5000

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return problem(401, "unauthenticated", "unknown token")
        if request.content_type == "application/json":
            body = await request.json() if request.can_read_body else None
        else:
            body = await request.read() if request.can_read_body else None
        state.requests.append((request.method, request.path_qs, body))
        response: web.StreamResponse = await handler(request)
        return response

    async def status(_r: web.Request) -> web.Response:
        return web.json_response(state.status)

    async def forward(_r: web.Request) -> web.Response:
        return problem(403, "consent-required", PROBLEM_DETAIL)

    async def send(_r: web.Request) -> web.Response:
        return web.json_response({"id": "0123456789abcdef0123456789abcdef"}, status=201)

    async def message(_r: web.Request) -> web.Response:
        return web.json_response(
            {
                "direction": "in",
                "content": {
                    "kind": "request", "subject": "Accounts of X", "body": "Line 1\nLine 2",
                    "language": "en", "urgency": "urgent", "tlp": "AMBER", "restrictions": [],
                    "case": "C-1", "in_reply_to": None, "deadline": 1_900_000_000,
                    "attachments": [
                        {"name": "../statement.pdf", "size": len(attachment),
                         "media_type": "application/pdf"}
                    ],
                    "status": None, "consent": None,
                },
                "meta": {"sender": "DE-BKA", "received": 1_800_000_000, "via": "hub",
                         "order": "in-order"},
            }
        )  # fmt: skip

    async def download(_r: web.Request) -> web.Response:
        return web.Response(body=attachment, content_type="application/octet-stream")

    async def upload(r: web.Request) -> web.Response:
        return web.json_response(
            {"id": "f" * 32, "name": r.query["name"], "size": r.content_length}, status=201
        )

    app = web.Application(middlewares=[auth])
    app.router.add_get("/api/status", status)
    app.router.add_post("/api/messages", send)
    app.router.add_post("/api/uploads", upload)
    app.router.add_get("/api/messages/{id}", message)
    app.router.add_get("/api/messages/{id}/attachments/{n}", download)
    app.router.add_post("/api/messages/{id}/forward", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    state.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    state.status["attachment"] = len(attachment)
    try:
        yield state
    finally:
        await runner.cleanup()


def daemon_dir(tmp_path: Path, d: Daemon) -> Path:
    directory = tmp_path / "client"
    directory.mkdir()
    config = NodeConfig(
        directory=directory, authority="FR-PNF", hub_url="http://127.0.0.1:8440", api_port=d.port
    )
    (directory / "node.toml").write_text(render_config(config))
    (directory / "api.token").write_text(d.token + "\n")
    return directory


async def test_api_commands_against_a_daemon(
    tmp_path: Path, daemon: Daemon, run: Callable[..., Ran]
) -> None:
    directory = daemon_dir(tmp_path, daemon)

    async def cli_(*args: str | Path) -> Ran:
        return await asyncio.to_thread(run, *args, "--dir", directory)

    # a 200 answer: --json prints exactly the API object
    ran = await cli_("status", "--json")
    assert ran.json() == daemon.status
    ran = await cli_("status")
    assert ran.code == 0
    assert "authority:  FR-PNF (membership: active)" in ran.out

    # a problem+json answer: its detail as the one-line error, exit 1
    refused(await cli_("forward", "m1", "--to", "DE-BKA"), PROBLEM_DETAIL)

    # send: attachments as absolute paths, the deadline as Unix seconds
    att = tmp_path / "evidence.pdf"
    att.write_bytes(b"%PDF")
    deadline = int(time.time()) + 86400
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
    ran = await cli_(
        "send", "--to", "DE-BKA", "BE-OCRC", "--kind", "request", "--subject", "-dash subject",
        "--body", "Please provide", "--attach", att, "--deadline", iso, "--tlp", "RED",
        "--restriction", "no-onward-dissemination", "--case", "C-1", "--urgency", "urgent",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert (
        ran.out
        == "message 0123456789abcdef0123456789abcdef queued for delivery (see: globe-node outbox)\n"
    )
    # the CLI read the file and uploaded its bytes; the message names the upload, not a path
    (um, upath, ubody), (method, path, body) = daemon.requests[-2:]
    assert (um, upath) == ("POST", "/api/uploads?name=evidence.pdf&media_type=application/pdf")
    assert ubody == att.read_bytes()
    assert (method, path) == ("POST", "/api/messages")
    assert body == {
        "to": ["DE-BKA", "BE-OCRC"], "kind": "request", "subject": "-dash subject",
        "body": "Please provide", "urgency": "urgent", "tlp": "RED",
        "restrictions": ["no-onward-dissemination"], "language": "en",
        "attachments": ["f" * 32], "deadline": deadline, "case": "C-1",
    }  # fmt: skip

    # show, saving the attachment under a safe name
    save = tmp_path / "saved"
    ran = await cli_("show", "m1", "--save-attachments", save)
    assert ran.code == 0, ran.err
    assert "from:      DE-BKA" in ran.out
    assert "Line 1\nLine 2\n" in ran.out
    saved = save / "_statement.pdf"
    assert saved.read_bytes() == b"attachment bytes " * 5000
    assert mode(saved) == 0o600
    refused(
        await cli_("show", "m1", "--save-attachments", save),
        f"{saved} already exists; refusing to overwrite it",
    )

    # a wrong token: the daemon's detail
    bad = tmp_path / "bad.token"
    bad.write_text("nope\n")
    refused(await cli_("status", "--token-file", bad), "unknown token")

    # an unknown route answered without problem+json
    ran = await cli_("sync")
    refused(ran, "the node daemon answered HTTP 404 to POST /api/sync")


# --- apply against a stand-in hub ---------------------------------------------------------------


async def test_apply_submits_and_answers_the_challenge(
    tmp_path: Path, genesis_file: Path, genesis_bytes: bytes, run: Callable[..., Ran]
) -> None:
    genesis = Genesis.decode(genesis_bytes)
    seen: dict[str, Any] = {}

    async def submit(request: web.Request) -> web.Response:
        app = Application.decode(await request.read(), genesis)
        challenge, secret = kem_pop_challenge(app.ka_key, app.digest)
        seen.update(app=app, secret=secret)
        return web.json_response(
            {"id": "a" * 32, "authority": str(app.authority), "status": "awaiting-pop",
             "challenge": canonical.b64e(challenge)},
            status=201,
        )  # fmt: skip

    async def proof(request: web.Request) -> web.Response:
        answer = canonical.b64d((await request.json())["answer"], what="answer")
        assert crypto.constant_time_equal(answer, seen["secret"])
        seen["proved"] = True
        return web.json_response({"id": "a" * 32, "authority": "FR-PNF", "status": "pending"})

    async def status(request: web.Request) -> web.Response:
        return web.json_response(
            {"id": request.match_info["id"], "authority": "FR-PNF", "status": "pending",
             "reason": None}
        )  # fmt: skip

    app = web.Application()
    app.router.add_post("/v1/applications", submit)
    app.router.add_post("/v1/applications/{id}/proof", proof)
    app.router.add_get("/v1/applications/{id}", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        directory = tmp_path / "node"
        ran = await asyncio.to_thread(
            run, *init_args(directory, genesis_file, "--hub-url", f"http://127.0.0.1:{port}")
        )
        assert ran.code == 0, ran.err
        data = (await asyncio.to_thread(run, "apply", "--dir", directory, "--json")).json()
        assert data["id"] == "a" * 32
        assert data["status"] == "pending"
        assert seen["proved"] is True
        assert seen["app"].signed.encode() == (directory / "application.json").read_bytes()
        # the value the admins see for the application the hub received
        assert data["fingerprint"] == seen["app"].fingerprint()
        assert (directory / "application.id").read_text().strip() == "a" * 32
        assert mode(directory / "application.id") == 0o600
        ran = await asyncio.to_thread(run, "apply", "--status", "--dir", directory)
        assert ran.out == f"application {'a' * 32} for FR-PNF: pending\n"
    finally:
        await runner.cleanup()


def test_apply_status_needs_a_submitted_application(node: Path, run: Callable[..., Ran]) -> None:
    refused(
        run("apply", "--status", "--dir", node),
        f"{node / 'application.id'} not found: "
        "submit the application first with 'globe-node apply'",
    )


def test_manifest_lists_every_member(tmp_path: Path, node: Path, run: Callable[..., Ran]) -> None:
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

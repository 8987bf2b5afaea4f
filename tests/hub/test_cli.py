"""End-to-end tests of the ``globe-hub`` command line.

The hub runs as a real ``globe-hub serve`` process on a free loopback port
with SQLite in ``tmp_path``; the operator commands run through :func:`hub.cli.main`
and the administrators' through :func:`globe_admin.cli.main` in this process (so
coverage sees them) and, for exit codes and the no-traceback rule, a few through
``python -m hub`` and ``python -m globe_admin``.  A member
application is submitted with :class:`globe_io.hubclient.HubClient`, and one with
``globe-node init`` / ``apply`` to check that both tools print the same authority
fingerprint.  Every key file uses the ``interactive`` Argon2id cost to keep the module fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from globe_io.errors import Conflict, NotFound, RateLimited
from globe_io.hubapi import ApplicationList, Readiness, SearchResults
from globe_io.hubclient import HubClient, RemoteError
from globe_io.web import MethodNotAllowed
from globe_node.cli import main as node_main
from globe_node.keys import load_keys
from hub.cli import main
from hub.config import default_database_url, load_config, render_config
from protocol import canonical
from protocol.errors import (
    PROBLEM_BASE,
    MalformedError,
    QuorumNotMet,
    TransportError,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    Action,
    Certificate,
    authority_fingerprint,
    kem_pop_answer,
    make_action,
    make_application,
)
from protocol.requestauth import HEADER, parse_request_auth, verify_request
from tests.admin.runner import PASSPHRASE, Ran, admin_cli, assert_refused, run_main, run_process

KEY_ID = re.compile(r"ed25519:[0-9a-f]{32}\Z")
NO_PASSPHRASE_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("GLOBE_HUB_PASSPHRASE", "GLOBE_ADMIN_PASSPHRASE", "GLOBE_DEBUG")
}


def cli(*args: str | Path) -> Ran:
    """Run ``globe-hub ARGS`` in this process."""
    return run_main(main, "globe-hub", *args)


def cli_process(*args: str | Path) -> Ran:
    """Run ``python -m hub ARGS`` as a separate process (stdin is not a terminal)."""
    return run_process("hub", "globe-hub", *args, env=NO_PASSPHRASE_ENV)


def admin_process(*args: str | Path) -> Ran:
    """Run ``python -m globe_admin ARGS`` as a separate process."""
    return run_process("globe_admin", "globe-admin", *args, env=NO_PASSPHRASE_ENV)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Net:
    """A hub directory, three admin keys, the genesis and the running hub."""

    tmp: Path
    hub_dir: Path
    pw: Path
    keys: list[Path]
    admin_pubs: list[dict[str, str]]
    init: dict[str, Any]
    genesis_path: Path
    genesis_out: dict[str, Any]
    installed: dict[str, Any]
    genesis: Genesis
    port: int
    server: subprocess.Popen[bytes]
    server_out: Path

    def admin(self, command: str, *args: str | Path, key: int = 0) -> Ran:
        """An admin workflow command as admin ``key`` (0 = alice, 1 = bob, 2 = carol)."""
        return admin_cli(
            command,
            *args,
            "--genesis",
            self.genesis_path,
            "--key",
            self.keys[key],
            "--passphrase-file",
            self.pw,
        )


def _wait_ready(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"globe-hub serve exited {server.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail("globe-hub serve did not become ready")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    mp = pytest.MonkeyPatch()
    for name in ("GLOBE_HUB_PASSPHRASE", "GLOBE_ADMIN_PASSPHRASE"):
        mp.delenv(name, raising=False)
    tmp = tmp_path_factory.mktemp("cli")
    pw = tmp / "passphrase"
    pw.write_text(PASSPHRASE + "\n")
    hub_dir = tmp / "hub"
    port = free_port()
    init = cli(
        "init", "--dir", hub_dir, "--kdf-cost", "interactive", "--passphrase-file", pw,
        "--port", str(port), "--json",
    ).json()  # fmt: skip
    keys = [tmp / f"admin{i}.key" for i in (1, 2, 3)]
    pubs = [
        admin_cli(
            "keygen", "--out", k, "--kdf-cost", "interactive", "--passphrase-file", pw,
            "--json",
        ).json()
        for k in keys
    ]  # fmt: skip
    genesis_path = tmp / "genesis.json"
    genesis_out = admin_cli(
        "genesis", "--network-id", "globe-test", "--name", "GlobE Test",
        "--admin", f"alice={pubs[0]['public_key']}", f"bob={pubs[1]['public_key']}",
        "--admin", f"carol={pubs[2]['public_key']}", "--threshold", "2",
        "--hub-url", f"http://127.0.0.1:{port}", "--hub-key", init["hub_key"],
        "--out", genesis_path, "--sign", keys[0], keys[1], "--passphrase-file", pw, "--json",
    ).json()  # fmt: skip
    installed = cli("install-genesis", "--dir", hub_dir, genesis_path, "--json").json()
    server_out = tmp / "serve.log"
    with server_out.open("wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub",
                "serve",
                "--dir",
                str(hub_dir),
                "--passphrase-file",
                str(pw),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=NO_PASSPHRASE_ENV,
        )
    try:
        _wait_ready(port, server, server_out)
        yield Net(
            tmp, hub_dir, pw, keys, pubs, init, genesis_path, genesis_out, installed,
            Genesis.decode(genesis_path.read_bytes()), port, server, server_out,
        )  # fmt: skip
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        mp.undo()


async def _apply(genesis: Genesis, authority: str, name: str) -> tuple[str, str]:
    """Submit an application and answer the KEM challenge; the id and the authority fingerprint."""
    identity, transport, ka = SigningKey.generate(), SigningKey.generate(), KemPrivateKey.generate()
    app = make_application(
        genesis=genesis,
        authority=AuthorityId.parse(authority),
        name=name,
        kinds=["anti-corruption"],
        languages=["en", "fr"],
        contact="duty officer\n+33 1 00 00 00 00",
        legal_basis="UNCAC art. 36",
        endpoint=None,
        identity=identity,
        transport=transport,
        ka_key=ka.public_key,
        created=int(time.time()),
    )
    async with HubClient(genesis.hub_url) as hub:
        submitted = await hub.submit_application(app.signed.encode())
        assert submitted["status"] == "awaiting-pop"
        with pytest.raises(Conflict, match="already"):
            await hub.submit_application(app.signed.encode())
        challenge = canonical.b64d(submitted["challenge"], what="challenge")
        answer = kem_pop_answer(ka, app.digest, challenge)
        proven = await hub.answer_challenge(submitted["id"], answer)
        assert proven == {"id": submitted["id"], "authority": authority, "status": "pending"}
    return submitted["id"], authority_fingerprint(
        authority=AuthorityId.parse(authority),
        identity=identity.verify_key,
        transport=transport.verify_key,
        ka=ka.public_key,
    )


# --- set-up commands ---------------------------------------------------------------------------


def test_init_keygen_genesis_and_install(net: Net) -> None:
    init = net.init
    assert (net.hub_dir / "hub.pub").read_text() == init["hub_key"] + "\n"
    assert KEY_ID.match(init["key_id"])
    # A lone key has no fingerprint: the genesis names it by key id and is itself fingerprinted.
    assert sorted(init) == [
        "config", "database_url", "directory", "hub_key", "kdf_cost", "key_file", "key_id",
    ]  # fmt: skip
    assert init["database_url"] == f"sqlite+aiosqlite:///{(net.hub_dir / 'hub.db').resolve()}"
    assert init["kdf_cost"] == "interactive"
    assert net.hub_dir.stat().st_mode & 0o777 == 0o700
    assert (net.hub_dir / "hub.key").stat().st_mode & 0o777 == 0o600
    assert (net.hub_dir / "hub.toml").is_file()
    for path, pub in zip(net.keys, net.admin_pubs, strict=True):
        assert path.stat().st_mode & 0o777 == 0o600
        assert pub["key_file"] == str(path)
        assert KEY_ID.match(pub["key_id"])
        assert sorted(pub) == ["key_file", "key_id", "public_key"]
    out = net.genesis_out
    assert out["signatures"] == 2
    assert out["threshold"] == 2
    assert out["valid"] is True
    assert out["signed_by"] == ["alice", "bob"]
    assert [a["name"] for a in out["admins"]] == ["alice", "bob", "carol"]
    assert out["fingerprint"] == net.genesis.fingerprint()
    assert net.installed["fingerprint"] == net.genesis.fingerprint()
    assert net.installed["network_id"] == "globe-test"
    assert (net.hub_dir / "genesis.json").read_bytes() == net.genesis_path.read_bytes()
    # Installing the same genesis again is harmless; a second init is refused.
    assert cli("install-genesis", "--dir", net.hub_dir, net.genesis_path).code == 0
    assert_refused(
        cli("init", "--dir", net.hub_dir, "--passphrase-file", net.pw),
        f"{net.hub_dir} already holds a hub (hub.toml exists); refusing to overwrite it",
    )
    assert_refused(
        admin_cli("keygen", "--out", net.keys[0], "--passphrase-file", net.pw),
        f"{net.keys[0]} already exists; refusing to overwrite a key file",
    )


def test_partially_signed_genesis_then_sign_genesis(net: Net) -> None:
    path = net.tmp / "partial.json"
    ran = admin_cli(
        "genesis", "--network-id", "globe-other", "--name", "Other",
        "--admin", *[f"{n}={p['public_key']}" for n, p in zip("abc", net.admin_pubs, strict=True)],
        "--threshold", "2", "--hub-url", "https://hub.example.org",
        "--hub-key", str(net.hub_dir / "hub.pub"), "--out", path,
        "--sign", net.keys[0], "--passphrase-file", net.pw,
    )  # fmt: skip
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == (
        f"genesis written to {path}\n"
        f"1 of 2 signatures; run `globe-admin sign-genesis {path} --key KEY` "
        "on the other admins' workstations\n"
    )
    assert_refused(
        cli("install-genesis", "--dir", net.hub_dir, path),
        f"{path}: not a valid genesis (1 valid admin signature(s), 2 required)",
    )
    signed = admin_cli(
        "sign-genesis", path, "--key", net.keys[2], "--passphrase-file", net.pw, "--json"
    ).json()  # fmt: skip
    genesis = Genesis.decode(path.read_bytes())
    assert signed["valid"] is True
    assert signed["signed_by"] == ["a", "c"]
    assert signed["fingerprint"] == genesis.fingerprint()
    assert genesis.hub_url == "https://hub.example.org"
    stranger = net.tmp / "stranger.key"
    admin_cli("keygen", "--out", stranger, "--kdf-cost", "interactive", "--passphrase-file",
        net.pw)  # fmt: skip
    assert_refused(
        admin_cli("sign-genesis", path, "--key", stranger, "--passphrase-file", net.pw),
        f"{stranger} is not one of the admins named in {path}",
    )


def test_a_genesis_naming_another_hub_key_is_refused(net: Net) -> None:
    other_hub = SigningKey.generate().verify_key
    path = net.tmp / "other-hub.json"
    admin_cli(
        "genesis", "--network-id", "globe-test", "--name", "GlobE Test",
        "--admin", *[f"{n}={p['public_key']}" for n, p in zip("xyz", net.admin_pubs, strict=True)],
        "--threshold", "2",
        "--hub-url", f"http://127.0.0.1:{net.port}",
        "--hub-key", canonical.b64e(bytes(other_hub)), "--out", path,
        "--sign", net.keys[0], net.keys[1], "--passphrase-file", net.pw, "--json",
    ).json()  # fmt: skip
    assert_refused(
        cli("install-genesis", "--dir", net.hub_dir, path),
        f"{path} names another hub key ({other_hub.key_id}); this hub's key is "
        f"{net.init['key_id']}: the hub refuses to serve that genesis",
    )
    # serve --genesis refuses it too, before listening (a real process: one line, exit 1).
    ran = cli_process(
        "serve", "--dir", net.hub_dir, "--genesis", path, "--passphrase-file", net.pw,
        "--port", str(free_port()),
    )  # fmt: skip
    assert_refused(
        ran,
        "the genesis names another hub key; this hub refuses to serve it "
        f"(this hub's key: {net.init['key_id']})",
    )


# --- the admin workflow --------------------------------------------------------------------------


def test_admission_by_quorum_then_suspension(net: Net) -> None:
    app_id, key_fingerprint = asyncio.run(_apply(net.genesis, "FR-PNF", "Parquet national"))

    apps = net.admin("applications", "--json").json()["applications"]
    assert [(a["id"], a["authority"], a["status"]) for a in apps] == [(app_id, "FR-PNF", "pending")]
    assert apps[0]["fingerprint"] == key_fingerprint

    shown = net.admin("show", app_id, "--json", key=2).json()
    assert shown["authority"] == "FR-PNF"
    assert shown["fingerprint"] == key_fingerprint
    assert shown["status"] == "pending"
    assert shown["contact"] == "duty officer\n+33 1 00 00 00 00"
    assert shown["draft"]["matches"] is True
    assert shown["draft"]["not_after"] - shown["draft"]["not_before"] == 730 * 86400
    text = net.admin("show", app_id, key=2)
    assert "draft        matches the application (serial" in text.out
    assert f"fingerprint  {key_fingerprint}\n" in text.out

    # Admin 1 signs; signing again still counts once; admin 2 completes the quorum.
    first = net.admin("approve", app_id)
    assert (first.code, first.out, first.err) == (
        0,
        "FR-PNF: admit signature 1 of 2; 1 more admin(s) must sign\n",
        "",
    )
    again = net.admin("approve", app_id, "--json").json()
    assert (again["signatures"], again["threshold"], again["status"]) == (1, 2, "open")
    admitted = net.admin("approve", app_id, "--json", key=1).json()
    assert admitted["status"] == "appended"
    assert admitted["seq"] == 1
    assert admitted["signatures"] == 2
    assert admitted["application"] == app_id
    assert admitted["fingerprint"] == key_fingerprint
    assert_refused(
        net.admin("approve", app_id, key=2),
        f"application {app_id} is approved, not pending approval",
    )

    log = net.admin("log", "--json", key=2).json()
    assert [(e["seq"], e["action"], e["authority"], e["signers"]) for e in log["entries"]] == [
        (1, "admit", "FR-PNF", ["alice", "bob"])
    ]
    assert log["head"]["seq"] == 1
    assert log["checkpoint"]["seq"] == 1
    assert log["checkpoint"]["head"] == log["head"]["hash"] == log["entries"][0]["hash"]
    assert log["members"] == {"active": 1, "suspended": 0, "revoked": 0}
    assert log["genesis_fingerprint"] == net.genesis.fingerprint()

    # Suspension: carol proposes, alice co-signs exactly carol's payload.
    proposed = net.admin("suspend", "FR-PNF", "--reason", "integrity inquiry", key=2)
    assert (proposed.code, proposed.out) == (
        0,
        "FR-PNF: suspend signature 1 of 2; 1 more admin(s) must sign\n",
    )
    open_ = admin_cli(
        "--json", "proposals", "--status", "open", "--genesis", net.genesis_path,
        "--key", net.keys[0], "--passphrase-file", net.pw,
    ).json()["proposals"]  # fmt: skip
    assert [(p["action"], p["authority"], len(p["signed"]["sigs"])) for p in open_] == [
        ("suspend", "FR-PNF", 1)
    ]
    suspended = net.admin("suspend", "FR-PNF", "--reason", "integrity inquiry", "--json").json()
    assert suspended["co_signed"] is True
    assert suspended["status"] == "appended"
    assert suspended["seq"] == 2
    assert suspended["reason"] == "integrity inquiry"
    assert suspended["proposal"] == open_[0]["proposal"]
    assert_refused(
        net.admin("suspend", "FR-PNF", "--reason", "again", key=1),
        "cannot suspend FR-PNF: it is suspended",
    )

    log = net.admin("log", "--json", key=1).json()
    assert [(e["seq"], e["action"], e["signers"], e["reason"]) for e in log["entries"]] == [
        (1, "admit", ["alice", "bob"], None),
        (2, "suspend", ["alice", "carol"], "integrity inquiry"),
    ]
    assert log["members"] == {"active": 0, "suspended": 1, "revoked": 0}
    lines = net.admin("log", key=1).out.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(
        r"     2  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  suspend     FR-PNF       "
        r"signed by alice, carol  \(integrity inquiry\)",
        lines[1],
    )
    assert lines[2].startswith("head: entry 2, hash ")

    async def directory() -> SearchResults:
        async with HubClient(net.genesis.hub_url) as hub:
            return await hub.search(country="FR", include_inactive=True)

    found = asyncio.run(directory()).results
    assert [(m.authority, m.status, m.fingerprint, m.reason) for m in found] == [
        ("FR-PNF", "suspended", key_fingerprint, "integrity inquiry")
    ]

    # A second application is rejected with a reason.
    other_id, _ = asyncio.run(_apply(net.genesis, "DE-BKA", "Bundeskriminalamt"))
    rejected = net.admin("reject", other_id, "--reason", "not an UNCAC art. 36 authority", key=1)
    assert (rejected.code, rejected.out) == (0, f"application {other_id} (DE-BKA) rejected\n")
    listed = net.admin("applications", "--status", "rejected", "--json").json()["applications"]
    assert [(a["id"], a["reason"]) for a in listed] == [
        (other_id, "not an UNCAC art. 36 authority")
    ]

    # The audit trail, printed and exported.
    export = net.tmp / "audit.json"
    audit = net.admin("audit", "--json", "--out", export, key=2).json()
    actions = [(r["actor"], r["action"], r["subject"]) for r in audit["records"]]
    assert actions == [
        ("applicant", "application-received", "FR-PNF"),
        ("applicant", "possession-proven", "FR-PNF"),
        ("alice", "sign-action", "FR-PNF"),
        ("alice", "sign-action", "FR-PNF"),
        ("bob", "sign-action", "FR-PNF"),
        ("hub", "log-append", "FR-PNF"),
        ("carol", "sign-action", "FR-PNF"),
        ("alice", "sign-action", "FR-PNF"),
        ("hub", "log-append", "FR-PNF"),
        ("applicant", "application-received", "DE-BKA"),
        ("applicant", "possession-proven", "DE-BKA"),
        ("bob", "reject-application", "DE-BKA"),
    ]
    assert audit["out"] == str(export)
    exported = json.loads(export.read_text())
    assert exported["type"] == "globe-hub-audit-export"
    assert exported["genesis_fingerprint"] == net.genesis.fingerprint()
    assert exported["exported_by"] == "carol"
    assert exported["records"] == audit["records"]
    since = audit["records"][-3]["id"]
    tail = net.admin("audit", "--since", str(since), "--json").json()["records"]
    assert [r["action"] for r in tail] == ["possession-proven", "reject-application"]


def test_approve_refuses_a_draft_the_hub_altered(net: Net) -> None:
    """A hub that swaps the keys in the draft admission gets no admin signature (R1, R4)."""
    app_id, _ = asyncio.run(_apply(net.genesis, "IT-ANAC", "Autorita nazionale anticorruzione"))
    now = int(time.time())
    impostor = make_application(
        genesis=net.genesis,
        authority=AuthorityId.parse("IT-ANAC"),
        name="Autorita nazionale anticorruzione",
        kinds=["anti-corruption"],
        languages=["en", "fr"],
        contact="duty officer",
        legal_basis="UNCAC art. 36",
        endpoint=None,
        identity=SigningKey.generate(),
        transport=SigningKey.generate(),
        ka_key=KemPrivateKey.generate().public_key,
        created=now,
    )
    forged = make_action(
        genesis=net.genesis,
        action=Action.ADMIT,
        authority=impostor.authority,
        prev=None,
        issued=now,
        certificate=Certificate.from_application(
            impostor, serial="ab" * 16, not_before=now, not_after=now + 86400
        ),
    ).signed.payload
    with sqlite3.connect(net.hub_dir / "hub.db") as conn:
        conn.execute("UPDATE applications SET draft = ? WHERE id = ?", (forged, app_id))
    conn.close()
    shown = net.admin("show", app_id, key=1)
    assert (
        "draft        DOES NOT MATCH: the draft certificate does not match the application\n"
        in (shown.out)
    )
    assert_refused(
        net.admin("approve", app_id, key=1),
        "the draft certificate does not match the application",
    )
    assert net.admin("show", app_id, "--json").json()["draft"] == {
        "present": True,
        "matches": False,
        "detail": "the draft certificate does not match the application",
    }
    rejected = net.admin("reject", app_id, "--reason", "draft altered", key=2)
    assert rejected.code == 0, rejected.err


def _copy_hub(net: Net, name: str) -> Path:
    """A consistent copy of the running hub's directory and database."""
    copy = net.tmp / name
    copy.mkdir(mode=0o700)
    for file in ("hub.key", "hub.pub", "genesis.json"):
        (copy / file).write_bytes((net.hub_dir / file).read_bytes())
    config = load_config(net.hub_dir)
    (copy / "hub.toml").write_text(
        render_config(replace(config, directory=copy, database_url=default_database_url(copy)))
    )
    with sqlite3.connect(net.hub_dir / "hub.db") as src, sqlite3.connect(copy / "hub.db") as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return copy


def node_cli(*args: str | Path) -> Ran:
    """Run ``globe-node ARGS`` in this process."""
    return run_main(node_main, "globe-node", *args)


def test_node_and_admin_tools_print_the_same_authority_fingerprint(
    net: Net, tmp_path: Path
) -> None:
    """What ``globe-node init`` tells the applicant to read out is what ``globe-admin show``
    prints."""
    node_dir = tmp_path / "node"
    init = node_cli(
        "init", "--dir", node_dir, "--genesis", net.genesis_path, "--authority-id", "ES-FCC",
        "--name", "Fiscalia contra la Corrupcion", "--country", "ES", "--kind", "anti-corruption",
        "--language", "es", "--contact", "duty officer", "--legal-basis", "UNCAC art. 36",
        "--kdf", "interactive", "--passphrase-file", net.pw,
    )  # fmt: skip
    assert (init.code, init.err) == (0, "")
    printed = re.search(r"^node fingerprint: +((?:\d{5} ){11}\d{5})$", init.out, re.MULTILINE)
    assert printed is not None, init.out
    node_fingerprint = printed.group(1)
    keys = load_keys(node_dir / "keys.sealed", PASSPHRASE.encode())
    assert node_fingerprint == authority_fingerprint(
        authority=AuthorityId.parse("ES-FCC"),
        identity=keys.identity.verify_key,
        transport=keys.transport.verify_key,
        ka=keys.ka.public_key,
    )

    applied = node_cli("apply", "--dir", node_dir, "--passphrase-file", net.pw, "--json")
    assert (applied.code, applied.err) == (0, "")
    submitted = json.loads(applied.out)
    assert (submitted["authority"], submitted["status"]) == ("ES-FCC", "pending")
    assert submitted["fingerprint"] == node_fingerprint

    app_id = submitted["id"]
    shown = net.admin("show", app_id, key=1)
    assert shown.code == 0, shown.err
    assert f"\nfingerprint  {node_fingerprint}\n" in shown.out
    assert net.admin("show", app_id, "--json", key=1).json()["fingerprint"] == node_fingerprint
    listed = net.admin("applications", "--status", "pending", "--json").json()["applications"]
    assert [(a["id"], a["fingerprint"]) for a in listed] == [(app_id, node_fingerprint)]
    rejected = net.admin("reject", app_id, "--reason", "test application", key=2)
    assert (rejected.code, rejected.out) == (0, f"application {app_id} (ES-FCC) rejected\n")


def test_serve_in_process_until_sigterm(net: Net) -> None:
    """``serve --json`` answers, stops on SIGTERM with status 0 and prints one JSON document."""
    copy = _copy_hub(net, "served-copy")
    port = free_port()
    answered: list[dict[str, Any]] = []

    def stop_when_ready() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    answered.append(json.loads(r.read()))
            except OSError:
                time.sleep(0.05)
                continue
            os.kill(os.getpid(), signal.SIGTERM)  # the hub's handler, installed before it answers
            return

    stopper = threading.Thread(target=stop_when_ready)
    stopper.start()
    try:
        ran = cli(
            "serve", "--dir", copy, "--passphrase-file", net.pw, "--port", str(port), "--json"
        )
    finally:
        stopper.join()
    assert ran.code == 0, ran.err
    assert json.loads(ran.out) == {"status": "stopped", "host": "127.0.0.1", "port": port}
    assert f"globe-hub: serving on http://127.0.0.1:{port}" in ran.err
    assert answered == [{"status": "ready", "seq": answered[0]["seq"]}]
    assert answered[0]["seq"] >= 2


def test_a_hub_whose_stored_log_was_edited_refuses_to_start(net: Net) -> None:
    """Serve a copy of the hub whose log entry 1 was edited: one line, restore from backup."""
    copy = _copy_hub(net, "edited-hub")
    with sqlite3.connect(copy / "hub.db") as dst:
        (data,) = dst.execute("SELECT data FROM log_entries WHERE seq = 1").fetchone()
        assert b'"time":' in data
        edited = data.replace(b'"time":', b'"time":1', 1)  # a later, still canonical, time
        dst.execute("UPDATE log_entries SET data = ? WHERE seq = 1", (edited,))
    dst.close()
    ran = cli("serve", "--dir", copy, "--passphrase-file", net.pw, "--port", str(free_port()))
    assert (ran.code, ran.out) == (1, "")
    assert ran.err.startswith(
        "globe-hub: error: the stored membership log does not verify against the genesis ("
    )
    assert ran.err.endswith(
        "): it was changed behind the hub's back; restore the database from a backup "
        "(docs/OPERATIONS.md) and never edit log entries\n"
    )
    assert ran.err.count("\n") == 1


def test_an_admin_pinning_another_genesis_is_told_so(net: Net) -> None:
    other = net.tmp / "other-network.json"
    admin_cli(
        "genesis", "--network-id", "globe-elsewhere", "--name", "Elsewhere",
        "--admin", *[f"{n}={p['public_key']}" for n, p in zip("xyz", net.admin_pubs, strict=True)],
        "--threshold", "2",
        "--hub-url", f"http://127.0.0.1:{net.port}", "--hub-key", net.init["hub_key"],
        "--out", other, "--sign", net.keys[0], net.keys[1], "--passphrase-file", net.pw,
    )  # fmt: skip
    pinned = Genesis.decode(other.read_bytes())
    assert_refused(
        admin_cli("applications", "--genesis", other, "--key", net.keys[0],
            "--passphrase-file", net.pw),
        f"the hub at http://127.0.0.1:{net.port} serves another genesis than the pinned one "
        f"({pinned.fingerprint()}); check --genesis and --hub",
    )  # fmt: skip
    assert_refused(
        cli("install-genesis", "--dir", net.hub_dir, other),
        f"{net.hub_dir / 'genesis.json'} already holds another genesis; a hub serves one "
        "network for its whole life (see docs/OPERATIONS.md before moving it aside)",
    )


# --- refusals ------------------------------------------------------------------------------------


def test_bad_inputs_are_one_line_refusals(net: Net) -> None:
    wrong = net.tmp / "wrong-passphrase"
    wrong.write_text("not the passphrase\n")
    common: list[str | Path] = ["--genesis", net.genesis_path, "--key", net.keys[0]]

    # A real process: exit 1, one line, no traceback.
    ran = admin_process("applications", *common, "--passphrase-file", wrong)
    assert_refused(ran, f"{net.keys[0]}: wrong passphrase, or the key file was altered")
    assert_refused(
        admin_process("applications", *common),
        f"no passphrase for {net.keys[0]}: pass --passphrase-file FILE or set "
        "GLOBE_ADMIN_PASSPHRASE",
    )
    missing = net.tmp / "no-such-genesis.json"
    assert_refused(
        admin_cli("log", "--genesis", missing, "--key", net.keys[0], "--passphrase-file",
            net.pw),
        f"cannot read genesis {missing}: No such file or directory",
    )  # fmt: skip
    assert_refused(net.admin("show", "0" * 32), "no such application")
    assert_refused(net.admin("approve", "f" * 32, key=1), "no such application")
    assert_refused(
        net.admin("reject", "xyz", "--reason", "r"),
        "application id must be 32 lower-case hex digits, not 'xyz'",
    )
    assert_refused(net.admin("revoke", "FR-NOPE", "--reason", "r"), "FR-NOPE is not a member")
    assert_refused(net.admin("revoke", "FR-PNF", "--reason", " "), "--reason must not be empty")
    assert_refused(
        net.admin("revoke", "FR-PNF", "--reason", "a\u202eb"),
        "--reason: at most 2000 characters, no control or bidi characters",
    )
    assert_refused(
        admin_cli("log", *common, "--passphrase-file", net.pw, "--key", net.hub_dir / "hub.key"),
        f"{net.hub_dir / 'hub.key'}: not a valid admin key file (key file holds a "
        "'hub-signing-key' key, not a 'admin-signing-key' key)",
    )
    closed = free_port()
    assert_refused(
        net.admin("log", "--hub", f"http://127.0.0.1:{closed}"),
        f"cannot reach the hub at http://127.0.0.1:{closed}: connection refused",
    )
    ran = cli_process("serve", "--dir", net.hub_dir, "--passphrase-file", wrong)
    assert_refused(ran, f"{net.hub_dir / 'hub.key'}: wrong passphrase, or the key file was altered")
    usage = admin_process("approve", "--genesis", net.genesis_path)
    assert usage.code == 2
    assert "Traceback" not in usage.err


def test_client_translates_problems_and_failures(net: Net) -> None:
    async def run() -> None:
        async with HubClient(net.genesis.hub_url) as hub:
            assert await hub.healthz() == {"status": "ok"}
            assert await hub.readyz() == Readiness(seq=len(await hub.log_entries()))
            assert await hub.genesis() == net.genesis_path.read_bytes()
            with pytest.raises(NotFound, match="no such application"):
                await hub.application_status("0" * 32)
            with pytest.raises(MethodNotAllowed, match="does not take that method"):
                await hub.request("DELETE", "/v1/applications")
        async with HubClient(f"http://127.0.0.1:{free_port()}", timeout=5) as down:
            with pytest.raises(TransportError, match="cannot reach the hub at"):
                await down.healthz()

    asyncio.run(run())


def test_the_served_hub_answers_http_layer_refusals_with_problems(net: Net) -> None:
    """``globe-hub serve`` runs behind the HTTP guard: a head aiohttp's parser refuses is
    answered problem+json, counted, and leaves no traceback or client bytes in the log."""
    marker = b"GUARD-MARKER-7f3a"

    async def exchange(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        return answer

    heads = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: %s\r\n" % (i, marker) for i in range(101))
        + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-N: a\x00" + marker + b"\r\n\r\n",
    ]
    for data, slug in zip(heads, ("header-fields-too-large", "bad-http-request"), strict=True):
        answer = asyncio.run(exchange(data))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"application/problem+json" in head.lower()
        assert orjson.loads(body)["type"] == PROBLEM_BASE + slug
    metrics = httpx_get(net.port, "/metrics")
    assert 'globe_hub_refused_total{reason="header-fields-too-large"} 1' in metrics
    log = net.server_out.read_bytes()
    assert marker not in log
    assert b"Traceback" not in log


def httpx_get(port: int, path: str) -> str:
    """A plain GET with the standard library (no event loop)."""
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return str(r.read().decode())


def test_serve_stops_cleanly_on_sigterm(net: Net) -> None:
    net.server.send_signal(signal.SIGTERM)
    assert net.server.wait(timeout=20) == 0
    assert f"globe-hub: serving on http://127.0.0.1:{net.port}" in net.server_out.read_text()


# --- unit-level checks (no hub needed) ----------------------------------------------------------


def test_init_refuses_bad_settings_without_writing_a_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLOBE_HUB_PASSPHRASE", PASSPHRASE)
    d = tmp_path / "hub"
    assert_refused(
        cli("init", "--dir", d, "--database-url", "sqlite:///x.db"),
        "--database-url: use sqlite+aiosqlite:// or postgresql+asyncpg:// (not sqlite)",
    )
    assert_refused(
        cli("init", "--dir", d, "--database-url", "not a url"),
        "--database-url: not a database URL: 'not a url'",
    )
    assert_refused(
        cli("init", "--dir", d, "--database-url", 'sqlite+aiosqlite:///a"b'),
        "--database-url must not contain quotes, backslashes or control chars",
    )
    assert_refused(
        cli("init", "--dir", d, "--host", "a b"), "--host: not a host name or address: 'a b'"
    )
    ran = cli(
        "init", "--dir", d, "--kdf-cost", "interactive",
        "--database-url", "postgresql+asyncpg://globe:secret@127.0.0.1:1/globe",
    )  # fmt: skip
    assert (ran.code, ran.out) == (1, "")
    assert ran.err.startswith(
        "globe-hub: error: cannot prepare the database "
        "postgresql+asyncpg://globe:***@127.0.0.1:1/globe: "
    )
    assert "secret" not in ran.err
    assert not (d / "hub.key").exists()
    assert not (d / "hub.toml").exists()
    # The same directory then initialises normally; serve without a genesis is refused.
    ok = cli("init", "--dir", d, "--kdf-cost", "interactive", "--json").json()
    assert ok["database_url"].startswith("sqlite+aiosqlite:///")
    assert_refused(
        cli("serve", "--dir", d),
        f"no genesis installed in {d}: run 'globe-hub install-genesis --dir {d} FILE' "
        "or pass --genesis FILE",
    )
    assert_refused(
        cli("serve", "--dir", tmp_path / "nothing"),
        f"{tmp_path / 'nothing' / 'hub.toml'} not found: run 'globe-hub init --dir "
        f"{tmp_path / 'nothing'}'",
    )


def test_usage_errors_interrupts_and_bugs(tmp_path, monkeypatch) -> None:
    assert cli("serve", "--dir", tmp_path, "--port", "0").code == 2
    assert admin_cli("audit", "--genesis", "g", "--key", "k", "--since", "-1").code == 2
    assert admin_cli("log", "--genesis", "g", "--key", "k", "--timeout", "0").code == 2
    assert admin_cli("log", "--genesis", "g", "--key", "k", "--timeout", "x").code == 2
    helped = admin_cli()
    assert helped.code == 0
    assert "sign-genesis" in helped.out

    def interrupt(args):
        raise KeyboardInterrupt

    def bug(args):
        raise RuntimeError("boom")

    def os_failure(args):
        raise PermissionError(13, "Permission denied", "/srv/hub/hub.key")

    monkeypatch.setattr("hub.cli.load_config", interrupt)
    ran = cli("install-genesis", "--dir", tmp_path, "g.json")
    assert (ran.code, ran.err) == (130, "globe-hub: interrupted\n")
    monkeypatch.setattr("hub.cli.load_config", bug)
    assert_refused(
        cli("install-genesis", "--dir", tmp_path, "g.json"),
        "unexpected RuntimeError: boom (set GLOBE_DEBUG=1 for details)",
    )
    monkeypatch.setattr("hub.cli.load_config", os_failure)
    assert_refused(
        cli("install-genesis", "--dir", tmp_path, "g.json"), "/srv/hub/hub.key: Permission denied"
    )


async def test_client_against_a_misbehaving_server(monkeypatch) -> None:
    """Every malformed answer is a typed error; signatures cover the target as sent."""
    admin = SigningKey.generate()
    network = b"\x07" * 32
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/prefix")
        since = request.query.get("since", "0")
        if path == "/v1/admin/applications":
            auth = parse_request_auth(request.headers.get(HEADER))
            verify_request(
                auth, key=admin.verify_key, network=network, audience="hub",
                method=request.method, target=request.raw_path, body=await request.read(),
                now=int(time.time()),
            )  # fmt: skip
            seen.append(request.raw_path)
            return web.json_response({"applications": []})
        if path == "/v1/directory/log":
            return web.json_response(
                {
                    "0": {"entries": [canonical.b64e(b"a")], "next": 1},
                    "1": {"entries": [canonical.b64e(b"b")], "next": None},
                    "10": {"entries": [], "next": 10},
                    "11": {"entries": [], "next": 12},
                    "12": {"entries": [1], "next": None},
                    "13": {"entries": "x"},
                }[since]
            )
        answers: dict[str, web.StreamResponse] = {
            "/healthz": web.Response(text="not json"),
            "/readyz": web.json_response([]),
            "/v1/directory/search": web.json_response({"results": [1]}),
            "/v1/prekeys/FR-PNF": web.json_response({"prekeys": [1]}),
            "/v1/directory/checkpoint": web.Response(status=502, text="<html>bad gateway</html>"),
            "/v1/applications/" + "1" * 32: web.json_response(
                {"type": PROBLEM_BASE + "rate-limited", "detail": "slow\ndown"},
                status=429, headers={"Retry-After": "7"}, content_type="application/problem+json",
            ),
            "/v1/applications/" + "2" * 32: web.json_response(
                {"type": PROBLEM_BASE + "quorum-not-met", "detail": "1 of 2"},
                status=403, content_type="application/problem+json",
            ),
            "/v1/applications/" + "3" * 32: web.json_response(
                {"type": "https://example.org/other", "title": "Teapot"},
                status=418, content_type="application/problem+json",
            ),
            "/v1/applications/" + "4" * 32: web.Response(
                status=400, text="{", content_type="application/problem+json"
            ),
            "/v1/openapi.json": web.json_response({"openapi": "3.1.0", "pad": "x" * 100}),
        }  # fmt: skip
        if path == "/slow":
            await asyncio.sleep(2)
        if path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(b"{" + b" " * 200 + b"}")
            await resp.write_eof()
            return resp
        return answers.get(path, web.json_response({"status": "ok"}))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    async with TestServer(app) as server:
        base = str(server.make_url("")).rstrip("/")
        async with HubClient(base + "/prefix", network=network, key=admin) as hub:
            assert await hub.admin_applications("pending") == ApplicationList(applications=())
            assert seen == ["/prefix/v1/admin/applications?status=pending"]
            assert await hub.log_entries() == [b"a", b"b"]
            with pytest.raises(MalformedError, match="is not JSON"):
                await hub.healthz()
            with pytest.raises(MalformedError, match="not a JSON object"):
                await hub.readyz()
            not_an_object = r"^hub response search\.results\[0\]: must be an object$"
            with pytest.raises(MalformedError, match=not_an_object):
                await hub.search(country="FR", kind="fiu", include_inactive=True, limit=5)
            with pytest.raises(MalformedError, match="items must be strings"):
                await hub.get_prekeys(AuthorityId.parse("FR-PNF"))
            with pytest.raises(RemoteError, match="answered HTTP 502") as bad_gateway:
                await hub.checkpoint()
            assert bad_gateway.value.http_status == 502
            with pytest.raises(RateLimited, match=r"^slow down$") as limited:
                await hub.application_status("1" * 32)
            assert limited.value.retry_after == 7
            with pytest.raises(QuorumNotMet, match="1 of 2"):
                await hub.application_status("2" * 32)
            with pytest.raises(RemoteError, match=r"^Teapot$") as teapot:  # no detail: its title
                await hub.application_status("3" * 32)
            assert teapot.value.type_uri_received == "https://example.org/other"
            assert teapot.value.http_status == 418
            with pytest.raises(RemoteError, match="answered HTTP 400"):
                await hub.application_status("4" * 32)
            for since, message in [
                (10, "bad 'next' cursor"),
                (11, "empty page with a next cursor"),
                (12, "entries must be strings"),
                (13, "missing or not a list"),
            ]:
                with pytest.raises(MalformedError, match=message):
                    await hub.log_entries(since)
            assert (await hub.openapi())["openapi"] == "3.1.0"
            monkeypatch.setattr("globe_io.hubclient.MAX_RESPONSE", 50)
            with pytest.raises(MalformedError, match="bytes is too large"):
                await hub.openapi()
            with pytest.raises(MalformedError, match="exceeds 50 bytes"):
                await hub.request("GET", "/chunked")
        async with HubClient(base) as anonymous:
            with pytest.raises(UsageError, match="needs a signing key"):
                await anonymous.admin_proposals()
        async with HubClient(base, timeout=0.2) as impatient:
            with pytest.raises(TransportError, match=r"no answer within 0\.2 s"):
                await impatient.request("GET", "/slow")

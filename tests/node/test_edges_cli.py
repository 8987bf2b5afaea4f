"""Edge cases of ``globe-node``: argument checks, missing or damaged files, the
passphrase sources, the human-readable renderers of each daemon command, the
audit chain verdict, ``globe-node run`` itself, and one-line errors for the
unexpected.  Commands run in-process through :func:`globe_node.cli.main`; the
daemon commands talk to a stand-in daemon API on a free loopback port.
"""

from __future__ import annotations

import asyncio
import getpass as getpass_module
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import globe_io.cli
import globe_io.cli.app
from globe_io.errors import CommandError
from globe_node.cli import main
from globe_node.cli import setup as setup_cli
from globe_node.cli import users as users_cli
from globe_node.config import NodeConfig, load_config, render_config
from globe_node.keys import NodeKeys, load_keys
from protocol import canonical
from protocol.devnet import build_devnet
from protocol.errors import PROBLEM_BASE, GlobeError
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.membership import make_application

PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test passphrase


@dataclass
class Ran:
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


def refused(ran: Ran, detail: str) -> None:
    assert (ran.code, ran.out, ran.err) == (1, "", f"globe-node: error: {detail}\n")


def usage(ran: Ran, detail: str) -> None:
    assert ran.code == 2
    assert ran.out == ""
    assert ran.err.endswith(f"error: {detail}\n")


GENESIS = build_devnet().genesis.encode()


def init_args(directory: Path, genesis: Path, *extra: str | Path) -> list[str | Path]:
    return [
        "init", "--dir", directory, "--genesis", genesis, "--authority-id", "FR-PNF",
        "--name", "Parquet national financier", "--country", "FR", "--kind", "anti-corruption",
        "--contact", "duty officer", "--legal-basis", "UNCAC art. 36", "--kdf", "interactive",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def genesis_file(tmp_path: Path) -> Path:
    path = tmp_path / "genesis.json"
    path.write_bytes(GENESIS)
    return path


@pytest.fixture
def node(tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]) -> Path:
    """An initialised node: its hub and API ports have nothing listening."""
    directory = tmp_path / "node"
    hub = f"http://127.0.0.1:{free_port()}"
    ran = run(*init_args(directory, genesis_file, "--api-port", str(free_port()), "--hub-url", hub))
    assert ran.code == 0, ran.err
    return directory


# --- arguments -----------------------------------------------------------------------------------


def test_no_command_prints_the_help(run: Callable[..., Ran]) -> None:
    ran = run()
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.startswith("usage: globe-node [OPTIONS] [COMMAND] [ARGS]...")
    ran = run("users")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.startswith("usage: globe-node users [OPTIONS] [COMMAND] [ARGS]...")


def test_version_without_an_installed_distribution(
    run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(_name: str) -> str:
        raise PackageNotFoundError(_name)

    monkeypatch.setattr(globe_io.cli.app, "version", missing)
    ran = run("--version")
    assert (ran.code, ran.out, ran.err) == (0, "globe-node unknown\n", "")


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (["--peer-port", "http"], "argument --peer-port: not a TCP port: 'http'"),
        (["--peer-port", "65536"], "argument --peer-port: not a TCP port: '65536'"),
        (["--api-port", "0"], "argument --api-port: the API needs a port (1-65535)"),
    ],
)
def test_port_arguments(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], args: list[str], detail: str
) -> None:
    usage(run(*init_args(tmp_path / "n", genesis_file, *args)), detail)
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (["inbox", "--limit", "1001"], "argument --limit: not a count between 1 and 1000: '1001'"),
        (["outbox", "--limit", "-1"], "argument --limit: not a count between 1 and 1000: '-1'"),
        (["status", "--timeout", "soon"], "argument --timeout: not a number of seconds: 'soon'"),
        (
            ["status", "--timeout", "0"],
            "argument --timeout: the timeout must be between 0 and 3600 seconds",
        ),
        (
            ["status", "--timeout", "3601"],
            "argument --timeout: the timeout must be between 0 and 3600 seconds",
        ),
    ],
)
def test_limit_and_timeout_arguments(
    node: Path, run: Callable[..., Ran], args: list[str], detail: str
) -> None:
    usage(run(*args, "--dir", node), detail)


@pytest.mark.parametrize(
    ("languages", "detail"),
    [
        (["fr", "FRA"], "--language: not an ISO 639-1 code (two lower-case letters): 'FRA'"),
        (
            [a + b for a in "abcd" for b in "wxyz"] + ["en"],
            "--language: at most 16 languages",
        ),
    ],
)
def test_init_language_checks(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], languages: list[str], detail: str
) -> None:
    extra: list[str | Path] = []
    for lang in languages:
        extra += ["--language", lang]
    refused(run(*init_args(tmp_path / "n", genesis_file, *extra)), detail)
    assert not (tmp_path / "n").exists()


def test_init_refuses_a_file_as_directory(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    refused(run(*init_args(target, genesis_file)), f"{target} exists and is not a directory")
    assert target.read_text() == "x"


def test_init_cleans_up_what_it_wrote_in_an_existing_directory(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran]
) -> None:
    target = tmp_path / "n"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    (target / "blobs").write_text("a file where the blob directory goes")
    ran = run(*init_args(target, genesis_file))
    refused(ran, f"{target / 'blobs'}: File exists")
    assert sorted(p.name for p in target.iterdir()) == ["blobs", "notes.txt"]


@pytest.mark.parametrize("existing", [False, True])
def test_init_removes_everything_when_the_database_fails(
    tmp_path: Path,
    genesis_file: Path,
    run: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
    existing: bool,
) -> None:
    def no_database(db_path: Path) -> None:
        db_path.write_bytes(b"half a database")
        raise CommandError(f"cannot create the database {db_path}: disk I/O error")

    monkeypatch.setattr(setup_cli, "create_database", no_database)
    target = tmp_path / "n"
    if existing:
        target.mkdir()
    refused(
        run(*init_args(target, genesis_file)),
        f"cannot create the database {target / 'node.db'}: disk I/O error",
    )
    if existing:
        assert list(target.iterdir()) == []
    else:
        assert not target.exists()


def test_double_dash_ends_the_options(node: Path, run: Callable[..., Ran]) -> None:
    port = load_config(node).api_port
    ran = run("show", "--dir", node, "--", "--body")
    refused(
        ran,
        f"the node daemon is not running at http://127.0.0.1:{port}: start it with "
        "'globe-node run'",
    )


# --- passphrase and key files --------------------------------------------------------------------


def test_passphrase_file_problems(tmp_path: Path, node: Path, run: Callable[..., Ran]) -> None:
    missing = tmp_path / "missing.pw"
    refused(
        run("run", "--dir", node, "--passphrase-file", missing),
        f"cannot read passphrase file {missing}: No such file or directory",
    )
    empty = tmp_path / "empty.pw"
    empty.write_text("\n")
    refused(
        run("run", "--dir", node, "--passphrase-file", empty),
        f"passphrase file {empty} is empty",
    )
    refused(
        run("run", "--dir", node, "--passphrase-file", tmp_path),
        f"cannot read passphrase file {tmp_path}: Is a directory",
    )


def test_passphrase_prompt_on_a_terminal(
    tmp_path: Path, genesis_file: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLOBE_PASSPHRASE")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers: list[str] = []
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return answers.pop(0)

    monkeypatch.setattr(getpass_module, "getpass", getpass)
    answers[:] = ["first passphrase", "second passphrase"]
    refused(run(*init_args(tmp_path / "n", genesis_file)), "the two passphrases differ")
    assert prompts == ["Passphrase for the node keys: ", "Repeat the passphrase: "]
    assert not (tmp_path / "n").exists()
    answers[:] = ["", ""]
    refused(
        run(*init_args(tmp_path / "n", genesis_file)),
        "an empty passphrase cannot protect the node keys",
    )
    answers[:] = ["a long enough one", "a long enough one"]
    assert run(*init_args(tmp_path / "n", genesis_file)).code == 0
    assert answers == []
    load_keys(tmp_path / "n" / "keys.sealed", b"a long enough one")


def test_key_file_missing_or_damaged(node: Path, run: Callable[..., Ran]) -> None:
    keys = node / "keys.sealed"
    keys.write_bytes(b"garbage")
    refused(
        run("run", "--dir", node),
        f"{keys}: not a valid node key file (key file: not valid UTF-8 JSON)",
    )
    keys.unlink()
    refused(run("run", "--dir", node), f"{keys} not found: not a node directory")


def test_apply_needs_its_files(node: Path, run: Callable[..., Ran]) -> None:
    app = node / "application.json"
    app.write_bytes(b"{}")
    ran = run("apply", "--dir", node)
    assert ran.code == 1
    assert ran.err.startswith(f"globe-node: error: {app}: not a valid application (")
    assert ran.err.count("\n") == 1
    app.unlink()
    refused(
        run("apply", "--dir", node),
        f"{app} not found: this node has no application to submit",
    )
    (node / "genesis.json").unlink()
    refused(
        run("apply", "--dir", node),
        f"cannot read genesis {node / 'genesis.json'}: No such file or directory",
    )


def test_apply_refuses_an_application_of_other_keys(node: Path, run: Callable[..., Ran]) -> None:
    genesis = Genesis.decode(GENESIS)
    other = NodeKeys.generate()
    app = make_application(
        genesis=genesis, authority=AuthorityId.parse("FR-PNF"), name="Parquet national financier",
        kinds=["anti-corruption"], languages=["en"], contact="duty officer",
        legal_basis="UNCAC art. 36", endpoint=None, identity=other.identity,
        transport=other.transport, ka_key=other.ka.public_key, created=int(time.time()),
    )  # fmt: skip
    (node / "application.json").write_bytes(app.signed.encode())
    refused(run("apply", "--dir", node), "application.json was not made with this node's keys")


@pytest.fixture
async def hub_stand_in() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    answers: dict[str, Any] = {}

    async def submit(_r: web.Request) -> web.Response:
        return web.json_response(answers["submit"], status=201)

    async def status(request: web.Request) -> web.Response:
        return web.json_response({**answers["status"], "id": request.match_info["id"]})

    app = web.Application()
    app.router.add_post("/v1/applications", submit)
    app.router.add_get("/v1/applications/{id}", status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}", answers
    finally:
        await runner.cleanup()


async def test_apply_against_a_hub_that_answers_oddly(
    tmp_path: Path,
    genesis_file: Path,
    run: Callable[..., Ran],
    hub_stand_in: tuple[str, dict[str, Any]],
) -> None:
    url, answers = hub_stand_in
    directory = tmp_path / "n"
    ran = await asyncio.to_thread(run, *init_args(directory, genesis_file, "--hub-url", url))
    assert ran.code == 0, ran.err
    answers["submit"] = {"id": "a" * 32, "status": "awaiting-pop"}
    ran = await asyncio.to_thread(run, "apply", "--dir", directory)
    refused(ran, "the hub's answer has no application id and challenge")
    assert not (directory / "application.id").exists()
    (directory / "application.id").write_text("b" * 32 + "\n")
    answers["status"] = {"authority": "FR-PNF", "status": "rejected", "reason": "no\nlegal basis"}
    ran = await asyncio.to_thread(run, "apply", "--status", "--dir", directory)
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == f"application {'b' * 32} for FR-PNF: rejected (no?legal basis)\n"


# --- files the user names ------------------------------------------------------------------------


def test_users_commands_on_a_missing_or_damaged_database(
    node: Path, run: Callable[..., Ran]
) -> None:
    db = node / "node.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database, it is long enough to be read" * 10)
    refused(run("users", "list", "--dir", node), f"database {db}: file is not a database")
    refused(
        run("users", "add", "bob", "--role", "investigator", "--dir", node),
        f"database {db}: file is not a database",
    )
    db.unlink()
    refused(run("users", "list", "--dir", node), f"{db} not found: run 'globe-node init' first")


def test_users_list_defaults_to_the_node_directory_variable(
    node: Path, run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLOBE_NODE_DIR", str(node))
    ran = run("users", "list")
    assert ran.code == 0, ran.err
    assert ran.out.startswith("operator                 operator      20")
    monkeypatch.delenv("GLOBE_NODE_DIR")
    monkeypatch.chdir(node.parent)
    refused(
        run("users", "list"),
        "globe-node/node.toml not found: run 'globe-node init --dir globe-node'",
    )


def test_options_that_exclude_each_other(node: Path, run: Callable[..., Ran]) -> None:
    base = ["send", "--dir", node, "--to", "DE-BKA", "--kind", "request", "--subject", "s"]
    usage(run(*base), "one of the arguments --body --body-file is required")
    usage(
        run(*base, "--body", "b", "--body-file", "f"),
        "argument --body-file: not allowed with argument --body",
    )
    usage(run("consent", "m1", "--dir", node), "one of the arguments --grant --refuse is required")
    usage(
        run("consent", "m1", "--grant", "--refuse", "--dir", node),
        "argument --refuse: not allowed with argument --grant",
    )


def test_send_input_checks(tmp_path: Path, node: Path, run: Callable[..., Ran]) -> None:
    base = ["send", "--dir", node, "--to", "DE-BKA", "--kind", "request", "--subject", "s"]
    refused(
        run(*base, "--body", "b", "--language", "fra"), "--language: not an ISO 639-1 code: 'fra'"
    )
    refused(run(*base, "--body", "b", "--case", "C 1"), "--case: not a case reference: 'C 1'")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Résumé".encode("latin-1"))
    refused(run(*base, "--body-file", latin1), f"{latin1} is not UTF-8 text")
    refused(
        run("status-update", "m1", "--state", "acknowledged", "--expected", "soon", "--dir", node),
        "--expected: not an ISO 8601 date or time: 'soon'",
    )


async def test_save_attachments_into_a_path_below_a_file(tmp_path: Path, cli_: Any) -> None:
    # the failure is local, after the message was fetched from the (stand-in) daemon
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    ran = await cli_("show", "in1", "--save-attachments", blocker / "sub")
    refused(ran, f"{blocker / 'sub'}: Not a directory")


def test_unexpected_errors_are_one_line_unless_debugging(
    run: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_args: object) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(users_cli, "load_config", broken)
    refused(
        run("users", "list"),
        "unexpected RuntimeError: something?broke (set GLOBE_DEBUG=1 for details)",
    )
    monkeypatch.setenv("GLOBE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="something"):
        main(["users", "list"])

    def oserror(_args: object) -> None:
        raise OSError("no space left")

    monkeypatch.delenv("GLOBE_DEBUG")
    monkeypatch.setattr(users_cli, "load_config", oserror)
    refused(run("users", "list"), "no space left")


def test_a_non_string_host_in_the_configuration_is_a_clear_error(
    node: Path, run: Callable[..., Ran]
) -> None:
    text = (node / "node.toml").read_text().replace('api_host = "127.0.0.1"', "api_host = 5")
    (node / "node.toml").write_text(text)
    refused(run("status", "--dir", node), f"{node / 'node.toml'}: api_host must be a string")


# --- globe-node run ------------------------------------------------------------------------------


def test_run_serves_until_sigterm(node: Path, run: Callable[..., Ran]) -> None:
    config = load_config(node)
    done = threading.Event()
    killed: list[bool] = []

    def stopper() -> None:
        deadline = time.monotonic() + 30
        while not done.is_set() and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", config.api_port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # the API listens: the signal handlers are installed (before the listeners)
            killed.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
            return

    thread = threading.Thread(target=stopper)
    thread.start()
    try:
        ran = run("run", "--dir", node)
    finally:
        done.set()
        thread.join()
    assert killed == [True]
    assert (ran.code, ran.err) == (0, "")
    assert ran.out == f"globe-node: FR-PNF running; api http://127.0.0.1:{config.api_port}\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# --- renderers against a stand-in daemon ---------------------------------------------------------


@dataclass
class Daemon:
    port: int = 0
    token: str = canonical.b64e(b"\x02" * 32)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)


ATTACHMENT = b"%PDF-1.7 attachment " * 4000

MESSAGES: dict[str, Any] = {
    "in1": {
        "direction": "in",
        "content": {
            "kind": "consent-decision", "subject": "Re: Consent", "body": "Granted.",
            "language": "fr", "urgency": "priority", "tlp": "AMBER", "restrictions": [],
            "case": None, "in_reply_to": "f" * 32, "deadline": None,
            "attachments": [{"name": "a.pdf", "size": len(ATTACHMENT),
                             "media_type": "application/pdf"}],
            "status": None,
            "consent": {"message": "e" * 32, "to": ["KE-EACC"], "decision": "granted"},
        },
        "meta": {"sender": "BR-PF", "received": 1_800_000_000, "via": "direct",
                 "order": "gap"},
    },
    "out1": {
        "direction": "out",
        "content": {
            "kind": "status", "subject": "Re: Accounts", "body": "Working on it.\n\x1b[31mred",
            "language": "en", "urgency": "urgent", "tlp": "RED",
            "restrictions": ["intelligence-only", "no-onward-dissemination"], "case": "C-9",
            "in_reply_to": None, "deadline": 1_900_000_000, "attachments": [],
            "status": {"state": "in-progress", "expected": 1_850_000_000},
            "consent": None,
        },
        "meta": {
            "sender": "FR-PNF", "created": 1_800_000_100,
            "recipients": {"KE-EACC": {"state": "queued"}, "BR-PF": {"state": "delivered"}},
        },
    },
}  # fmt: skip


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    state = Daemon()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {state.token}":
            refusal = {"type": PROBLEM_BASE + "unauthenticated", "detail": "unknown token"}
            return web.json_response(refusal, status=401, content_type="application/problem+json")
        body = await request.json() if request.can_read_body else None
        state.requests.append((request.method, request.path_qs, body))
        response: web.StreamResponse = await handler(request)
        return response

    def answer(name: str) -> Callable[[web.Request], Any]:
        async def handler(_r: web.Request) -> web.Response:
            return web.json_response(state.answers[name])

        return handler

    async def message(request: web.Request) -> web.Response:
        return web.json_response(MESSAGES[request.match_info["id"]])

    async def queued(_r: web.Request) -> web.Response:
        return web.json_response({"id": "9" * 32}, status=201)

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(ATTACHMENT)
        await resp.write_eof()
        return resp

    app = web.Application(middlewares=[record])
    for name in ("status", "inbox", "outbox", "cases", "stats", "alerts", "audit"):
        app.router.add_get(f"/api/{name}", answer(name))
    app.router.add_get("/api/cases/{case}", answer("case"))
    app.router.add_get("/api/directory/search", answer("search"))
    app.router.add_post("/api/ping/{authority}", answer("ping"))
    app.router.add_get("/api/messages/{id}", message)
    app.router.add_get("/api/messages/{id}/attachments/{n}", chunked)
    for action in ("reply", "status", "forward", "consent", "request-consent"):
        app.router.add_post(f"/api/messages/{{id}}/{action}", queued)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield state
    finally:
        await runner.cleanup()


def daemon_dir(tmp_path: Path, d: Daemon) -> Path:
    directory = tmp_path / "client"
    directory.mkdir(exist_ok=True)
    config = NodeConfig(
        directory=directory, authority="FR-PNF", hub_url="http://127.0.0.1:8440", api_port=d.port
    )
    (directory / "node.toml").write_text(render_config(config))
    (directory / "api.token").write_text(d.token + "\n")
    return directory


@pytest.fixture
def cli_(tmp_path: Path, daemon: Daemon, run: Callable[..., Ran]) -> Callable[..., Any]:
    directory = daemon_dir(tmp_path, daemon)

    async def go(*args: str | Path) -> Ran:
        return await asyncio.to_thread(run, *args, "--dir", directory)

    return go


async def test_status_and_lists_render_for_people(daemon: Daemon, cli_: Any) -> None:
    daemon.answers["status"] = {
        "authority": "FR-PNF", "membership": "suspended",
        "directory": {"seq": 7, "head": "0123456789abcdefXYZ", "age_s": None, "max_age_s": 60,
                      "members": 4},
        "hub": {"url": "http://hub", "reachable": None, "push_connected": False},
        "outbox": {}, "inbox_unread": 0, "requests_open": 2, "requests_overdue": 1,
        "alerts": [{"id": 1}, {"id": 2}],
    }  # fmt: skip
    ran = await cli_("status")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "authority:  FR-PNF (membership: suspended)",
        "directory:  entry 7, head 0123456789abcdef, - s old (limit 60 s), 4 members",
        "hub:        http://hub not tried yet, push not connected",
        "outbox:     empty",
        "inbox:      0 unread",
        "requests:   2 open, 1 overdue",
        "alerts:     2",
    ]
    daemon.answers["status"]["hub"] = {"url": "http://hub", "reachable": False}
    assert "hub:        http://hub unreachable, push not connected\n" in (await cli_("status")).out

    daemon.answers["inbox"] = {"messages": [
        {"id": "a" * 32, "received": 1_800_000_000, "from": "BR-PF", "kind": "request",
         "urgency": "urgent", "tlp": "RED", "case": None, "subject": "S", "read": True,
         "attachments": ["x", "y"]},
        "not an object",
    ]}  # fmt: skip
    ran = await cli_("inbox", "--limit", "5", "--unread")
    assert ran.out == (
        f"  {'a' * 32} 2027-01-15T08:00:00Z BR-PF        request          urgent   "
        "TLP:RED          - S [2 att]\n"
    )
    assert daemon.requests[-1][:2] == ("GET", "/api/inbox?limit=5&unread=1")
    daemon.answers["inbox"] = {"messages": []}
    assert (await cli_("inbox")).out == "no messages\n"

    daemon.answers["outbox"] = {"messages": [
        {"id": "b" * 32, "created": "yesterday", "kind": "information", "case": "C-1",
         "recipients": {
             "KE-EACC": {"state": "queued", "error": "cannot reach the hub", "attempts": 3},
             "BR-PF": {"state": "delivered", "via": "direct"},
             "DE-BKA": "junk",
         }},
    ]}  # fmt: skip
    ran = await cli_("outbox")
    assert ran.out == (
        f"{'b' * 32} - information      C-1  BR-PF:delivered via direct; DE-BKA:-; "
        "KE-EACC:queued (cannot reach the hub, 3 attempts)\n"
    )
    daemon.answers["outbox"] = {"messages": "junk"}
    assert (await cli_("outbox")).out == "no messages\n"


async def test_show_renders_received_and_sent_messages(
    tmp_path: Path,
    daemon: Daemon,
    cli_: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran = await cli_("show", "out1")
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "to:        BR-PF (delivered), KE-EACC (queued) (created 2027-01-15T08:01:40Z)",
        "kind:      status   urgency: urgent   TLP:RED intelligence-only, no-onward-dissemination",
        "subject:   Re: Accounts",
        "case:      C-9",
        "language:  en",
        "deadline:  2030-03-17T17:46:40Z",
        'status:    {"expected":1850000000,"state":"in-progress"}',
        "",
        "Working on it.",
        "?[31mred",
    ]
    # a terminal shows download progress on stderr (the size is unknown: chunked)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    save = tmp_path / "saved"
    ran = await cli_("show", "in1", "--save-attachments", save)
    assert ran.code == 0
    assert ran.out.splitlines() == [
        "from:      BR-PF (received 2027-01-15T08:00:00Z via direct, gap)",
        "kind:      consent-decision   urgency: priority   TLP:AMBER",
        "subject:   Re: Consent",
        f"reply to:  {'f' * 32}",
        "language:  fr",
        'consent:   {"decision":"granted","message":"' + "e" * 32 + '","to":["KE-EACC"]}',
        f"attachment 1: a.pdf ({len(ATTACHMENT)} bytes, application/pdf)",
        "",
        "Granted.",
        f"saved attachment 1 to {save / 'a.pdf'} ({len(ATTACHMENT)} bytes)",
    ]
    assert ran.err.startswith("\ra.pdf: ")
    assert ran.err.endswith(f"\ra.pdf: {len(ATTACHMENT)} bytes")
    assert (save / "a.pdf").read_bytes() == ATTACHMENT


def test_progress_with_a_known_size(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    show = globe_io.cli.progress("f.pdf")
    assert show is not None
    show(50, 200)
    show(200, 200)
    assert capsys.readouterr().err == "\rf.pdf:  25% of 200 bytes\rf.pdf: 100% of 200 bytes\n"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert globe_io.cli.progress("f.pdf") is None


async def test_post_commands_send_their_options(tmp_path: Path, daemon: Daemon, cli_: Any) -> None:
    body = tmp_path / "body.txt"
    body.write_text("Progress report.")
    ran = await cli_("reply", "m1", "--body", "Answer", "--subject", "-Re: it", "--kind",
                     "information")  # fmt: skip
    assert ran.out == f"reply: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m1/reply",
        {"kind": "information", "body": "Answer", "subject": "-Re: it"},
    )  # fmt: skip
    ran = await cli_(
        "status-update", "m1", "--state", "in-progress", "--expected",
        "2030-01-02T03:04:05+01:00", "--body-file", body, "--reason", "busy",
    )  # fmt: skip
    assert ran.out == f"status update: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m1/status",
        {"state": "in-progress", "expected": 1893549845, "reason": "busy",
         "body": "Progress report."},
    )  # fmt: skip
    ran = await cli_("forward", "m/1", "--to", "KE-EACC", "--note", "--see below")
    assert ran.out == f"forward: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m%2F1/forward", {"to": ["KE-EACC"], "note": "--see below"}
    )  # fmt: skip
    ran = await cli_("consent", "m1", "--refuse", "--to", "KE-EACC", "BE-OCRC")
    assert ran.out == f"consent decision: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m1/consent", {"decision": "refused", "to": ["KE-EACC", "BE-OCRC"]}
    )  # fmt: skip


async def test_cases_stats_search_ping_alerts_render(daemon: Daemon, cli_: Any) -> None:
    daemon.answers["cases"] = {"cases": [
        {"case": "C-1", "messages": 3, "open": 1, "overdue": 0, "last": 1_800_000_000,
         "counterparts": ["BR-PF", "KE-EACC"]},
        {"case": "C-2", "messages": 1, "open": 0, "overdue": 0, "last": None,
         "counterparts": "BR-PF"},
    ]}  # fmt: skip
    assert (await cli_("cases")).out.splitlines() == [
        "C-1                         3 msgs    1 open    0 overdue  last 2027-01-15T08:00:00Z"
        "  BR-PF,KE-EACC",
        "C-2                         1 msgs    0 open    0 overdue  last -  BR-PF",
    ]
    daemon.answers["cases"] = {"cases": []}
    assert (await cli_("cases")).out == "no cases\n"
    daemon.answers["case"] = {"case": "C-1", "requests": [], "messages": []}
    assert (await cli_("case", "C-1")).out == "case C-1\n"
    daemon.answers["case"] = {"case": "C-1", "requests": [
        {"message_id": "r" * 32, "direction": "out", "counterpart": "BR-PF", "urgency": "urgent",
         "state": "sent", "deadline": 1_800_000_000, "overdue": True},
    ]}  # fmt: skip
    assert (await cli_("case", "C-1")).out.splitlines() == [
        "case C-1",
        "requests:",
        f"  {'r' * 32} out BR-PF        urgent   sent         deadline 2027-01-15T08:00:00Z"
        " OVERDUE",
    ]
    daemon.answers["stats"] = {"counterparts": {
        "BR-PF": {"requests": 2, "answered": 1, "mean_first_response_s": 7200,
                  "mean_answer_s": 3 * 86400},
        "KE-EACC": {"requests": 1, "answered": 0, "mean_first_response_s": 59.6,
                    "mean_answer_s": None},
    }}  # fmt: skip
    assert (await cli_("stats")).out.splitlines() == [
        "BR-PF                   2 requests     1 answered  first response 2.0 h  answer 3.0 d",
        "KE-EACC                 1 requests     0 answered  first response 60 s  answer -",
    ]
    daemon.answers["stats"] = {"counterparts": {}}
    assert (await cli_("stats")).out == "no requests yet\n"
    daemon.answers["search"] = {"results": [
        {"authority": "BR-PF", "status": "active", "kinds": ["fiu"], "languages": ["pt"],
         "name": "Policia Federal", "fingerprint": "123", "endpoint": "https://br.example"},
        {"authority": "KE-EACC", "status": "revoked", "kinds": None, "languages": None,
         "name": "EACC", "fingerprint": "456", "endpoint": None},
    ]}  # fmt: skip
    ran = await cli_("directory", "search", "--country", "br", "--inactive", "--kind", "fiu")
    assert ran.out.splitlines() == [
        "BR-PF                active     fiu                          pt         Policia Federal",
        "                     fingerprint 123  endpoint https://br.example",
        "KE-EACC              revoked    -                            -          EACC",
        "                     fingerprint 456",
    ]
    assert daemon.requests[-1][:2] == (
        "GET", "/api/directory/search?country=BR&kind=fiu&inactive=1"
    )  # fmt: skip
    daemon.answers["search"] = {"results": []}
    assert (await cli_("directory", "search")).out == "no matching members\n"
    daemon.answers["ping"] = {"authority": "BR-PF", "direct": {"ok": False, "error": "timeout"},
                              "hub": {"ok": True, "ms": None}}  # fmt: skip
    assert (await cli_("ping", "BR-PF")).out == "BR-PF: direct: failed (timeout); hub: ok\n"
    daemon.answers["ping"] = {"authority": "BR-PF", "direct": {"ok": True, "ms": 1.25},
                              "hub": {"ok": False}}  # fmt: skip
    assert (await cli_("ping", "BR-PF")).out == "BR-PF: direct: ok in 1.2 ms; hub: failed\n"
    daemon.answers["alerts"] = {"alerts": [
        {"id": 3, "time": 1_800_000_000, "kind": "conflict", "detail": "twice\u202e"},
    ]}  # fmt: skip
    assert (await cli_("alerts")).out == (
        "    3 2027-01-15T08:00:00Z conflict             twice?\n"
    )
    daemon.answers["alerts"] = {"alerts": []}
    assert (await cli_("alerts")).out == "no alerts\n"


async def test_audit_chain_that_does_not_verify_exits_1(daemon: Daemon, cli_: Any) -> None:
    entries = [{"seq": 1, "time": 1_800_000_000, "user": "alice", "action": "read",
                "subject": "m1"}]  # fmt: skip
    daemon.answers["audit"] = {"entries": entries, "verified": False}
    ran = await cli_("audit")
    assert ran.code == 1
    assert ran.out == "     1 2027-01-15T08:00:00Z alice            read             m1\n"
    assert ran.err == (
        "globe-node: error: the audit log's hash chain does not verify: it was altered\n"
    )
    ran = await cli_("audit", "--json")
    assert ran.code == 1
    assert json.loads(ran.out) == {"entries": entries, "verified": False}
    assert ran.err == (
        "globe-node: error: the audit log's hash chain does not verify: it was altered\n"
    )
    daemon.answers["audit"] = {"entries": entries, "verified": True}
    ran = await cli_("audit")
    assert ran.out.splitlines()[-1] == "audit chain verified"


async def test_token_sources(
    tmp_path: Path, daemon: Daemon, cli_: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon.answers["alerts"] = {"alerts": []}
    monkeypatch.setenv("GLOBE_TOKEN", f"  {daemon.token}\n")
    (tmp_path / "client" / "api.token").write_text("a stale token\n")
    assert (await cli_("alerts")).out == "no alerts\n"
    monkeypatch.delenv("GLOBE_TOKEN")
    binary = tmp_path / "binary.token"
    binary.write_bytes(b"\xff\xfe token")
    refused(await cli_("alerts", "--token-file", binary), f"{binary}: not an API token")
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    refused(await cli_("alerts", "--token-file", empty), f"{empty} is empty")


def test_one_line_os_errors() -> None:
    assert globe_io.cli.os_error(FileNotFoundError(2, "No such file or directory", "/x")) == (
        "/x: No such file or directory"
    )
    assert globe_io.cli.os_error(OSError()) == "OSError"
    assert isinstance(CommandError("x"), GlobeError)

"""The commands that work through the daemon's local API: where they find it (the API
port in node.toml) and their token (GLOBE_TOKEN, ``--token-file``, DIR/api.token);
what each sends for its options (a file read by the CLI and uploaded as bytes, times
as Unix seconds); what they check before calling; and how a daemon that is absent,
refuses (its problem detail) or answers without a problem reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from globe_node.config import load_config
from protocol import canonical
from protocol.errors import PROBLEM_BASE
from tests.node.helpers import Daemon, Ran, client_dir, mode, refused, usage
from tests.support.servers import serve_app

NOT_RUNNING = (
    "globe-node: error: the node daemon is not running at http://127.0.0.1:{port}: "
    "start it with 'globe-node run'\n"
)


@pytest.mark.parametrize(
    "command",
    [
        ["status"], ["inbox", "--unread"], ["outbox"], ["show", "m1"], ["cases"],
        ["case", "C-1"], ["stats"], ["directory", "search", "--country", "fr"],
        ["ping", "DE-BKA"], ["keys", "rotate"], ["sync"], ["alerts"], ["audit"],
        ["retry", "m1"], ["forward", "m1", "--to", "DE-BKA"],
        ["consent", "m1", "--grant"],
        ["status-update", "m1", "--state", "acknowledged", "--expected", "2099-01-31"],
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


async def test_the_token_comes_from_the_environment_or_a_token_file(
    tmp_path: Path,
    daemon: Daemon,
    daemon_cli: Callable[..., Awaitable[Ran]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon.answers["alerts"] = {"alerts": []}
    monkeypatch.setenv("GLOBE_TOKEN", f"  {daemon.token}\n")
    (tmp_path / "client" / "api.token").write_text("a stale token\n")
    assert (await daemon_cli("alerts")).out == "no alerts\n"
    monkeypatch.delenv("GLOBE_TOKEN")
    binary = tmp_path / "binary.token"
    binary.write_bytes(b"\xff\xfe token")
    refused(await daemon_cli("alerts", "--token-file", binary), f"{binary}: not an API token")
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    refused(await daemon_cli("alerts", "--token-file", empty), f"{empty} is empty")


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
def test_a_bad_limit_or_timeout_is_a_usage_error(
    node: Path, run: Callable[..., Ran], args: list[str], detail: str
) -> None:
    usage(run(*args, "--dir", node), detail)


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


def test_send_refuses_a_bad_language_case_body_file_or_date(
    tmp_path: Path, node: Path, run: Callable[..., Ran]
) -> None:
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


async def test_post_commands_send_their_options(
    tmp_path: Path, daemon: Daemon, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    body = tmp_path / "body.txt"
    body.write_text("Progress report.")
    ran = await daemon_cli("reply", "m1", "--body", "Answer", "--subject", "-Re: it", "--kind",
                     "information")  # fmt: skip
    assert ran.out == f"reply: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m1/reply",
        {"kind": "information", "body": "Answer", "subject": "-Re: it"},
    )  # fmt: skip
    ran = await daemon_cli(
        "status-update", "m1", "--state", "in-progress", "--expected",
        "2030-01-02T03:04:05+01:00", "--body-file", body, "--reason", "busy",
    )  # fmt: skip
    assert ran.out == f"status update: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m1/status",
        {"state": "in-progress", "expected": 1893549845, "reason": "busy",
         "body": "Progress report."},
    )  # fmt: skip
    ran = await daemon_cli("forward", "m/1", "--to", "KE-EACC", "--note", "--see below")
    assert ran.out == f"forward: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m%2F1/forward", {"to": ["KE-EACC"], "note": "--see below"}
    )  # fmt: skip
    ran = await daemon_cli("consent", "m1", "--refuse", "--to", "KE-EACC", "BE-OCRC")
    assert ran.out == f"consent decision: message {'9' * 32} queued for delivery\n"
    assert daemon.requests[-1] == (
        "POST", "/api/messages/m1/consent", {"decision": "refused", "to": ["KE-EACC", "BE-OCRC"]}
    )  # fmt: skip


async def test_saving_attachments_below_a_file_is_refused(
    tmp_path: Path, daemon_cli: Callable[..., Awaitable[Ran]]
) -> None:
    # the failure is local, after the message was fetched from the (stand-in) daemon
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    ran = await daemon_cli("show", "in1", "--save-attachments", blocker / "sub")
    refused(ran, f"{blocker / 'sub'}: Not a directory")


@dataclass
class FixedDaemon:
    """The stand-in daemon of :func:`fixed_daemon`."""

    port: int
    token: str
    requests: list[tuple[str, str, Any]]
    status: dict[str, Any]


PROBLEM_DETAIL = (
    "message m1 is TLP:RED; FR-PNF has not consented to forwarding to DE-BKA: use request-consent"
)


def problem_response(status: int, slug: str, detail: str) -> web.Response:
    body = {"type": PROBLEM_BASE + slug, "title": slug, "detail": detail}
    return web.json_response(body, status=status, content_type="application/problem+json")


@pytest.fixture
async def fixed_daemon() -> AsyncIterator[FixedDaemon]:
    """A daemon API with fixed answers: a status, a send (and its upload), message m1 with
    an attachment, and a consent refusal for every forward."""
    token = canonical.b64e(b"\x01" * 32)
    state = FixedDaemon(
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
            return problem_response(401, "unauthenticated", "unknown token")
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
        return problem_response(403, "consent-required", PROBLEM_DETAIL)

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
    state.status["attachment"] = len(attachment)
    async with serve_app(app) as served:
        state.port = served.port
        yield state


async def test_daemon_commands_send_what_their_options_say_and_report_refusals(
    tmp_path: Path, fixed_daemon: FixedDaemon, run: Callable[..., Ran]
) -> None:
    daemon = fixed_daemon
    directory = client_dir(tmp_path / "client", daemon.port, daemon.token)

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

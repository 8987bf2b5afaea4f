"""What an insider holding one local API token can and cannot reach (THREAT-MODEL.md).

* No path, in any form, makes the daemon read a file: attachments arrive as
  bytes (``POST /api/uploads``) and messages name uploads by id.
* The permission matrix (:data:`globe_node.api.ROUTES` x roles) holds in every
  cell, over a real listener, and no route exists outside it.
* Roles are a lattice: an operator cannot mint a token that reads case material.
* Every JSON body goes through the one strict decoder: each defect has its slug.
* The users API makes operators only, checks names, and audits what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from globe_io.hubclient import request_payload
from globe_node import db
from globe_node.api import ROUTES, create_api_app
from globe_node.roles import GRANTS, Permission, Role, at_or_below, may_create
from protocol.errors import PROBLEM_BASE
from tests.node.helpers import GOOD, delivered, info, problem, raw
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

USER_NAME_RULE = "a user name is 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"


async def call(
    rn: RunningNode,
    method: str,
    path: str,
    data: bytes | None = None,
    *,
    token: str | None = "",
    params: dict[str, str] | None = None,
    media: str = "application/json",
) -> tuple[int, Any]:
    """A local API request with exactly ``data`` as its body; (status, parsed answer).

    A success is of the ``media`` type the route declares: a JSON one is parsed, any
    other (a CSV) is given as its bytes; a refusal is always problem+json."""
    url = f"http://127.0.0.1:{rn.config.api_port}{path}"
    headers = {} if token is None else {"Authorization": f"Bearer {token or rn.token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.request(
            method, url, data=request_payload(data or b""), headers=headers, params=params
        ) as r,
    ):
        body = await r.read()
        if not body:
            return r.status, None
        if r.status < 400 and not media.endswith("json"):
            assert r.content_type == media, body[:100]
            return r.status, body
        assert r.content_type in ("application/json", "application/problem+json"), body[:100]
        return r.status, orjson.loads(body)


def slug(answer: tuple[int, Any]) -> tuple[int, str]:
    status, body = answer
    assert isinstance(body, dict), body
    assert str(body.get("type", "")).startswith(PROBLEM_BASE), body
    return status, str(body["type"])[len(PROBLEM_BASE) :]


@pytest.fixture
async def pair(net: Net) -> tuple[RunningNode, RunningNode]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    return fr, br


async def nothing_sent_or_read(rn: RunningNode) -> None:
    assert await rn.n.outbox() == []
    async with rn.n.sessions() as s:
        assert (await s.execute(select(db.AuditRow))).scalars().all() == []
        assert (await s.execute(select(db.OutMessage))).scalars().all() == []


# --- (1) no path reaches the daemon ------------------------------------------------------


def path_forms(rn: RunningNode, tmp: Path) -> list[object]:
    """Every way a caller might name a file: none of them is an upload id."""
    link = tmp / "innocent.txt"
    link.symlink_to(rn.config.key_path)
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    swapped = tmp / "swapped.txt"  # a file that would change between a check and a read
    swapped.write_text("harmless")
    return [
        str(rn.config.key_path),
        str(rn.config.directory / "passphrase"),
        "/etc/shadow",
        "/proc/self/environ",
        "/dev/zero",
        str(fifo),
        str(link),
        str(swapped),
        "../../keys.sealed",
        "keys.sealed",
        "file:///etc/passwd",
        "~/.ssh/id_ed25519",
        {"path": "/etc/shadow"},
        {"path": str(link), "name": "report.pdf"},
        {"upload": "0" * 32, "path": "/etc/shadow"},
        ["/etc/shadow"],
        "0" * 31 + "/",
        "A" * 32,
    ]


async def test_no_form_of_path_is_ever_opened(
    pair: tuple[RunningNode, RunningNode], tmp_path: Path
) -> None:
    fr, _ = pair
    for form in path_forms(fr, tmp_path):
        for route in ("/api/messages", f"/api/messages/{'0' * 32}/reply"):
            body = {**GOOD, "attachments": [form]} if route == "/api/messages" else {
                "body": "b", "attachments": [form]}  # fmt: skip
            status, problem = slug(await call(fr, "POST", route, orjson.dumps(body)))
            assert (status, problem) == (400, "usage"), (form, route)
    await nothing_sent_or_read(fr)
    assert not fr.config.blob_dir.exists() or list(fr.config.blob_dir.iterdir()) == []


async def test_an_upload_carries_only_its_body(
    pair: tuple[RunningNode, RunningNode], tmp_path: Path
) -> None:
    """Query parameters that look like paths are meaningless; names are display names only."""
    fr, br = pair
    secret = fr.config.key_path.read_bytes()
    status, staged = await call(
        fr, "POST", "/api/uploads", b"the real evidence",
        params={"name": "keys.sealed", "path": str(fr.config.key_path), "file": "/etc/shadow"},
    )  # fmt: skip
    assert status == 201, staged
    assert (staged["name"], staged["size"]) == ("keys.sealed", len(b"the real evidence"))
    # the spool holds one file under a random blob name, never the given name
    stored = list(fr.config.blob_dir.iterdir())
    assert len(stored) == 1
    assert re.fullmatch(r"FR-PNF\.[0-9a-f]{32}", stored[0].name)
    assert b"the real evidence" not in stored[0].read_bytes()  # encrypted at rest
    # names that would be paths are refused outright
    for name in ("../keys.sealed", "a/b", "..", ".", "", "x\x00y", "a\\b"):
        got = slug(await call(fr, "POST", "/api/uploads", b"x", params={"name": name}))
        assert got == (400, "usage"), name
    status, sent = await call(
        fr, "POST", "/api/messages", orjson.dumps({**GOOD, "attachments": [staged["id"]]})
    )
    assert status == 201, sent
    await eventually(lambda: delivered(fr, sent["id"], br))
    received = b"".join([c async for c in br.n.attachment_chunks(sent["id"], 0)])
    assert received == b"the real evidence"
    assert fr.config.key_path.read_bytes() == secret


async def test_uploads_belong_to_their_user(pair: tuple[RunningNode, RunningNode]) -> None:
    fr, _ = pair
    bob = await add_user(fr.n, "bob", "investigator")
    status, mine = await call(fr, "POST", "/api/uploads", b"alice's file", params={"name": "a"})
    assert status == 201
    body = orjson.dumps({**GOOD, "attachments": [mine["id"]]})
    assert slug(await call(fr, "POST", "/api/messages", body, token=bob)) == (404, "not-found")
    assert slug(await call(fr, "DELETE", f"/api/uploads/{mine['id']}", token=bob)) == (
        404, "not-found",
    )  # fmt: skip
    assert (await call(fr, "GET", "/api/uploads", token=bob)) == (200, {"uploads": []})
    status, listed = await call(fr, "GET", "/api/uploads")
    assert [u["id"] for u in listed["uploads"]] == [mine["id"]]
    await nothing_sent_or_read(fr)


async def test_an_upload_must_state_its_length_and_keep_to_it(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    fr, _ = pair

    async def chunks() -> Any:
        yield b"streamed without a length"

    url = f"http://127.0.0.1:{fr.config.api_port}/api/uploads?name=x"
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=chunks(), headers={"Authorization": f"Bearer {fr.token}"}) as r,
    ):
        assert r.status == 411
        assert (await r.json(content_type=None))["type"] == PROBLEM_BASE + "length-required"
    assert not fr.config.blob_dir.exists() or list(fr.config.blob_dir.iterdir()) == []


# --- (2) the permission matrix -------------------------------------------------------------


def concrete(path: str) -> str:
    """A route pattern with its placeholders filled."""
    path = path.replace("{n:[0-9]{1,3}}", "1")
    return re.sub(r"\{[a-z]+\}", lambda m: "BR-PF" if m.group() == "{authority}" else "0" * 32,
                  path)  # fmt: skip


async def test_every_cell_of_the_permission_matrix(pair: tuple[RunningNode, RunningNode]) -> None:
    fr, _ = pair
    tokens = {role: await add_user(fr.n, f"u-{role.value}", role.value) for role in Role}
    cells = 0
    for route in ROUTES:
        path = concrete(route.path)
        # no token, a bad token: the same refusal everywhere, before anything else
        assert slug(await call(fr, route.method, path, token=None)) == (401, "unauthenticated")
        assert slug(await call(fr, route.method, path, token="forged")) == (  # noqa: S106
            401,
            "unauthenticated",
        )
        for role, token in tokens.items():
            status, answer = await call(
                fr, route.method, path, b"", token=token, media=route.reply.media_type
            )
            if route.permission in GRANTS[role]:
                assert status not in (401, 403) or slug((status, answer))[1] not in (
                    "forbidden", "unauthenticated",
                ), (route.path, role)  # fmt: skip
            else:
                assert slug((status, answer)) == (403, "forbidden"), (route.method, path, role)
            cells += 1
    assert cells == len(ROUTES) * len(Role)
    # nothing was sent and no case material was read by anyone
    assert await fr.n.outbox() == []


#: The routes for running the node: operators' alone (no role that reads case material).
OPERATE_ONLY = {
    ("PUT", "/api/profile"), ("GET", "/api/keys"), ("POST", "/api/keys/rotate"),
    ("POST", "/api/users"), ("GET", "/api/accounts"), ("GET", "/api/backups"),
}  # fmt: skip


def test_the_operators_routes_are_theirs_alone_and_the_colleagues_list_is_not() -> None:
    by_route = {(r.method, r.path): r.permission for r in ROUTES}
    assert {k for k, p in by_route.items() if p is Permission.OPERATE} == OPERATE_ONLY
    for role in Role:
        assert (Permission.OPERATE in GRANTS[role]) is (role is Role.OPERATOR), role
    # GET /api/users names colleagues to assign cases to: the case readers', not operators'
    assert by_route[("GET", "/api/users")] is Permission.READ
    assert Permission.READ not in GRANTS[Role.OPERATOR]


def test_no_route_outside_the_matrix() -> None:
    app = create_api_app(None, None)  # type: ignore[arg-type]
    declared = {(r.method, r.path) for r in ROUTES}
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert served == {(m, re.sub(r"\{(\w+):[^}]*\}\}?", r"{\1}", p)) for m, p in declared}
    assert len(declared) == len(ROUTES)


def test_roles_form_a_lattice_and_only_operators_are_made_over_the_api() -> None:
    assert at_or_below(Role.INVESTIGATOR, Role.SUPERVISOR)
    assert not at_or_below(Role.SUPERVISOR, Role.INVESTIGATOR)
    assert not at_or_below(Role.OPERATOR, Role.INVESTIGATOR)
    assert not at_or_below(Role.INVESTIGATOR, Role.OPERATOR)
    assert Permission.READ not in GRANTS[Role.OPERATOR]
    made = {(a, b) for a in Role for b in Role if may_create(a, b)}
    assert made == {(Role.OPERATOR, Role.OPERATOR)}


async def test_an_operator_cannot_mint_a_token_that_reads_case_material(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    fr, br = pair
    ops = await add_user(fr.n, "ops", "operator")
    mid = str(await br.n.send([fr.me], info("for investigators only")))
    await eventually(lambda: _received(fr, mid))
    for role in ("investigator", "supervisor"):
        body = orjson.dumps({"name": f"x-{role}", "role": role})
        assert slug(await call(fr, "POST", "/api/users", body, token=ops)) == (403, "forbidden")
    assert slug(await call(fr, "GET", "/api/inbox", token=ops)) == (403, "forbidden")
    assert slug(await call(fr, "GET", f"/api/messages/{mid}", token=ops)) == (403, "forbidden")
    status, made = await call(
        fr, "POST", "/api/users", orjson.dumps({"name": "ops2", "role": "operator"}), token=ops
    )
    assert status == 201
    assert slug(await call(fr, "GET", "/api/inbox", token=made["token"])) == (403, "forbidden")
    async with fr.n.sessions() as s:
        roles = {u.name: u.role for u in (await s.execute(select(db.User))).scalars()}
    assert roles == {"alice": "investigator", "ops": "operator", "ops2": "operator"}


async def _received(rn: RunningNode, mid: str) -> bool:
    return any(m.id == mid for m in await rn.n.inbox())


async def test_the_users_api_makes_operators_only_checks_names_and_audits(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    fr, _ = pair
    ops = await add_user(fr.n, "ops", "operator")

    def body(**kw: Any) -> bytes:
        return orjson.dumps(kw)

    status, made = await raw(fr, "POST", "/api/users", body(name="carol.d", role="operator"),
                             token=ops)  # fmt: skip
    assert status == 201
    assert (made["name"], made["role"]) == ("carol.d", "operator")
    status, _ = await raw(fr, "GET", "/api/status", token=made["token"])
    assert status == 200
    for payload, want in [
        (body(name="carol.d", role="operator"), (409, "state-conflict", "user carol.d exists")),
        (body(name="no spaces", role="operator"), (400, "usage", USER_NAME_RULE)),
        (body(name="x" * 65, role="operator"), (400, "usage", USER_NAME_RULE)),
        (body(name="dave", role="admin"), (400, "usage", "'role': unknown value 'admin'")),
        (body(role="operator"), (400, "usage", "'name' is a string")),
        (body(name="dave", role="operator", admin=True),
         (400, "usage", "unknown field(s): 'admin'")),
        (b"[]", (400, "malformed", "the body is a JSON object")),
    ]:  # fmt: skip
        assert problem(await raw(fr, "POST", "/api/users", payload, token=ops)) == want
    # an operator never makes a user who reads case material
    for role in ("investigator", "supervisor"):
        got = problem(await raw(fr, "POST", "/api/users", body(name="eve", role=role), token=ops))
        assert got == (403, "forbidden", f"a operator may not create a {role} user over the API:"
                       " investigators and supervisors are added with 'globe-node users add' on"
                       " the node itself")  # fmt: skip
    # investigators (alice) and supervisors may not add users at all
    sup = await add_user(fr.n, "sup", "supervisor")
    for token in (fr.token, sup):
        answer = await raw(fr, "POST", "/api/users", body(name="eve", role="operator"), token=token)
        assert problem(answer)[:2] == (403, "forbidden")
    async with fr.n.sessions() as s:
        users = sorted(u.name for u in (await s.execute(select(db.User))).scalars())
        audit = [
            (r.user, r.action, r.subject) for r in (await s.execute(select(db.AuditRow))).scalars()
        ]
    assert users == ["alice", "carol.d", "ops", "sup"]
    assert audit == [("ops", "add-user", "carol.d (operator)")]


# --- (3) one strict JSON decoder -----------------------------------------------------------

STRICT: list[tuple[bytes, str]] = [
    (b'{"to":["BR-PF"],"to":["KE-EACC"],"subject":"s","body":"b"}', "duplicate-key"),
    (b'{"to":["BR-PF"],"subject":"s","body":"b","deadline":NaN}', "non-finite-number"),
    (b'{"to":["BR-PF"],"subject":"s","body":"b","deadline":Infinity}', "non-finite-number"),
    (b'{"to":["BR-PF"],"subject":"s","body":"b","deadline":9007199254740993}',
     "number-out-of-range"),
    (b'{"to":["BR-PF"],"subject":"s","body":"b","deadline":1e3}', "number-out-of-range"),
    (b'{"to":["BR-PF"],"subject":"\\ud800","body":"b"}', "invalid-unicode"),
    (b'{"to":["BR-PF"],"subject":"s","body":"b"} {}', "trailing-data"),
    (b'{"to":["BR-PF"],"subject":"s","body":"b"}\x00', "trailing-data"),
    (b'{"a":' + b"[" * 40 + b"]" * 40 + b"}", "nesting-too-deep"),
    (b"[" * 100_000 + b"]" * 100_000, "nesting-too-deep"),
    (b"\xef\xbb\xbf{}", "invalid-json"),
    (b'{"to":["BR-PF"],"subject":"\xff","body":"b"}', "invalid-json"),
    (b"{'to':['BR-PF']}", "invalid-json"),
]  # fmt: skip


async def test_every_json_defect_has_its_slug(pair: tuple[RunningNode, RunningNode]) -> None:
    fr, _ = pair
    ops = await add_user(fr.n, "ops", "operator")
    for data, expected in STRICT:
        for route, token in (
            ("/api/messages", fr.token),
            ("/api/users", ops),
            (f"/api/messages/{'0' * 32}/reply", fr.token),
        ):
            got = slug(await call(fr, "POST", route, data, token=token))
            assert got == (400, expected), (data[:40], route)
    await nothing_sent_or_read(fr)


# --- (4) refusals of the HTTP layer itself, on both listeners -----------------------------


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Write ``data`` on a fresh connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


HEAD_DEFECTS: list[tuple[bytes, int, str]] = [
    (b"GET /api/status HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n", 431, "header-fields-too-large"),
    (b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431,
     "header-fields-too-large"),
    (b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n", 400, "bad-http-request"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri-too-long"),
    (b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400,
     "bad-http-request"),
]  # fmt: skip


async def test_http_layer_refusals_are_problems_on_both_listeners(
    pair: tuple[RunningNode, RunningNode], caplog: pytest.LogCaptureFixture
) -> None:
    fr, _ = pair
    caplog.set_level(logging.DEBUG)
    for port in (fr.config.api_port, fr.config.peer_port):
        for data, status, expected in HEAD_DEFECTS:
            answer = await raw_exchange(port, data)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b" ", 2)[1] == str(status).encode(), (expected, head[:80])
            assert b"content-type: application/problem+json" in head.lower()
            assert orjson.loads(body)["type"] == PROBLEM_BASE + expected
    # nothing the client sent reached a log line, and no traceback was written
    for record in caplog.records:
        assert "aaaaaaaa" not in record.getMessage()
        assert record.exc_info is None or record.levelno < logging.ERROR

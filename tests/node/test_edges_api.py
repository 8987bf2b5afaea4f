"""The node daemon's two HTTP faces at their edges: every refusal of the peer
listener (unsigned, unknown key, suspended sender, replayed nonce, oversized body)
and of the local API (bad JSON, wrong types, unknown values, bad query parameters,
missing messages, cases and attachments, the users API and its roles), each with
its status code, problem type and detail."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from globe_io.hubclient import request_payload
from globe_node import db
from globe_node.api import API_MAX_BODY
from protocol.errors import PROBLEM_BASE
from protocol.keys import SigningKey
from protocol.membership import Action
from protocol.requestauth import HEADER, sign_request
from tests.node.conftest import Net, RunningNode, add_user, eventually
from tests.node.test_adversarial import seal
from tests.node.test_exchange import delivered, info

pytestmark = pytest.mark.slow


async def raw(
    rn: RunningNode, method: str, path: str, data: bytes | None = None, *, token: str | None = None
) -> tuple[int, Any]:
    """A local API request with exactly ``data`` as its body."""
    url = f"http://127.0.0.1:{rn.config.api_port}{path}"
    headers = {"Authorization": f"Bearer {token or rn.token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, data=request_payload(data or b""), headers=headers) as r,
    ):
        body = await r.read()
        return r.status, orjson.loads(body) if body else None


def problem(answer: tuple[int, Any]) -> tuple[int, str, str]:
    status, body = answer
    assert str(body["type"]).startswith(PROBLEM_BASE), body
    return status, str(body["type"])[len(PROBLEM_BASE) :], str(body["detail"])


async def peer_post(
    to: RunningNode, path: str, body: Any, *, key: SigningKey | None, header: str | None = None
) -> tuple[int, Any, str | None]:
    """POST to ``to``'s peer listener signed with ``key``; (status, JSON answer, header)."""
    url = f"http://127.0.0.1:{to.config.peer_port}{path}"
    headers = {"Content-Type": "application/octet-stream"}
    if header is None and key is not None:
        assert isinstance(body, bytes)
        header = sign_request(
            key=key, network=to.n.genesis.digest, audience=str(to.me), method="POST",
            target=path, body=body, created=int(time.time()),
        )  # fmt: skip
    if header is not None:
        headers[HEADER] = header
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
        return r.status, await r.json(content_type=None), header


@pytest.fixture
async def pair(net: Net) -> tuple[RunningNode, RunningNode]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    return fr, br


async def test_peer_listener_refusals(net: Net, pair: tuple[RunningNode, RunningNode]) -> None:
    fr, br = pair
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{fr.config.peer_port}/healthz") as r,
    ):
        assert (r.status, await r.json()) == (200, {"status": "ok"})

    # a signed ping names both ends
    status, answer, _ = await peer_post(fr, "/v1/ping", b"", key=br.keys.transport)
    assert status == 200
    assert (answer["authority"], answer["from"]) == ("FR-PNF", "BR-PF")
    assert abs(answer["time"] - time.time()) < 5

    # a key no member holds
    status, answer, _ = await peer_post(fr, "/v1/ping", b"", key=SigningKey.generate())
    assert problem((status, answer)) == (401, "unauthorized", "request authentication failed")

    # a signature made too long ago
    old = sign_request(
        key=br.keys.transport, network=fr.n.genesis.digest, audience=str(fr.me), method="POST",
        target="/v1/ping", body=b"", created=int(time.time()) - 3600,
    )  # fmt: skip
    status, answer, _ = await peer_post(fr, "/v1/ping", b"", key=None, header=old)
    assert problem((status, answer)) == (
        401, "stale-request", "request timestamp outside the accepted window"
    )  # fmt: skip

    # the same signed request twice: the nonce is remembered
    envelope = seal(br, fr)
    status, _, header = await peer_post(fr, "/v1/inbox", envelope, key=br.keys.transport)
    assert status == 200
    status, answer, _ = await peer_post(fr, "/v1/inbox", envelope, key=None, header=header)
    assert problem((status, answer)) == (409, "replay", "request nonce already used")

    # a body larger than the limit, without a Content-Length to refuse it early
    async def chunks() -> Any:
        for _ in range(4):
            yield b"x" * 512

    status, answer, _ = await peer_post(fr, "/v1/ping", chunks(), key=None, header="x")
    assert problem((status, answer)) == (413, "payload-too-large", "body exceeds 1024 bytes")

    # a suspended member is refused although its key and signature are good
    await net.set_status("BR-PF", Action.SUSPEND, "under review")
    await net.synced(fr)
    status, answer, _ = await peer_post(fr, "/v1/inbox", seal(br, fr, seq=2), key=br.keys.transport)
    assert problem((status, answer)) == (401, "unauthorized", "request authentication failed")
    assert len(await fr.n.inbox()) == 1


BAD_SENDS: list[tuple[bytes, int, str, str]] = [
    (b"{not json", 400, "invalid-json",
     "not JSON (Expecting property name enclosed in double quotes at byte offset 1)"),
    (b"[1, 2]", 400, "malformed", "the body is a JSON object"),
    (b"null", 400, "malformed", "the body is a JSON object"),
    (b"x" * (API_MAX_BODY + 1), 413, "payload-too-large",
     f"body of {API_MAX_BODY + 1} bytes exceeds {API_MAX_BODY}"),
]  # fmt: skip

NO_PATHS = (
    "'attachments' lists upload ids: the node never reads a file named in a request;"
    " upload the bytes with POST /api/uploads first"
)
USER_NAME_RULE = "a user name is 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"

GOOD: dict[str, Any] = {"to": ["BR-PF"], "subject": "s", "body": "b"}

BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "nonsense"}, "'kind': unknown value 'nonsense'"),
    ({"kind": "status"}, "send starts an information, request or bulletin; use reply for others"),
    ({"urgency": "asap"}, "'urgency': unknown value 'asap'"),
    ({"tlp": "PURPLE"}, "'tlp': unknown value 'PURPLE'"),
    ({"restrictions": "none"}, "'restrictions' is a list"),
    ({"restrictions": ["secret"]}, "'restrictions': unknown value 'secret'"),
    ({"deadline": "tomorrow"}, "'deadline' is a non-negative integer"),
    ({"deadline": -5}, "'deadline' is a non-negative integer"),
    ({"deadline": True}, "'deadline' is a non-negative integer"),
    ({"body": None}, "'body' is a string"),
    ({"language": 5}, "'language' is a string"),
    ({"to": "BR-PF"}, "'to' is a non-empty list of authority ids"),
    ({"to": ["BR-PF", 5]}, "'to' is a non-empty list of authority ids"),
    ({"to": ["FR-PNF"]}, "a node cannot send to itself"),
    ({"attachments": {}}, "'attachments' is a list of upload ids"),
    ({"attachments": [5]}, "an upload id is 32 lower-case hex digits"),
    ({"attachments": ["../../etc/shadow"]}, "an upload id is 32 lower-case hex digits"),
    ({"attachments": [{"path": "/etc/shadow"}]}, NO_PATHS),
    ({"restriction": ["no-onward-dissemination"]}, "unknown field(s): 'restriction'"),
]


async def test_local_api_send_refusals(pair: tuple[RunningNode, RunningNode]) -> None:
    fr, _ = pair
    for data, status, slug, detail in BAD_SENDS:
        assert problem(await raw(fr, "POST", "/api/messages", data)) == (status, slug, detail)
    for change, detail in BAD_FIELDS:
        body = orjson.dumps({**GOOD, **change})
        got = problem(await raw(fr, "POST", "/api/messages", body))
        assert got == (400, "usage", detail), change
    # no bearer token at all
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{fr.config.api_port}/api/status") as r,
    ):
        assert problem((r.status, await r.json(content_type=None))) == (
            401, "unauthenticated", "send 'Authorization: Bearer <token>'"
        )  # fmt: skip
    assert await fr.n.outbox() == []
    async with fr.n.sessions() as session:
        assert (await session.execute(select(db.AuditRow))).scalars().all() == []


async def test_local_api_message_refusals(pair: tuple[RunningNode, RunningNode]) -> None:
    fr, br = pair
    mid = str(await fr.n.send([br.me], info("no attachments here")))
    await eventually(lambda: delivered(fr, mid, br))
    msg = f"/api/messages/{mid}"
    cases: list[tuple[str, str, Any, tuple[int, str, str]]] = [
        ("GET", f"{msg}/attachments/1", None,
         (404, "not-found", f"message {mid} has no attachment 1")),
        ("GET", f"{msg}/attachments/0", None,
         (404, "not-found", f"message {mid} has no attachment 0")),
        ("POST", f"{msg}/reply", {"kind": "request", "body": "b"},
         (400, "usage", "a reply is an answer or information")),
        ("POST", f"{msg}/reply", {"kind": "answer"}, (400, "usage", "'body' is a string")),
        ("POST", f"{msg}/status", {"state": "done"},
         (400, "usage", "'state': unknown value 'done'")),
        ("POST", f"{msg}/status", {"state": "acknowledged", "expected": "soon"},
         (400, "usage", "'expected' is a non-negative integer")),
        ("POST", f"{msg}/consent", {"decision": "maybe"},
         (400, "usage", "'decision': unknown value 'maybe'")),
        ("POST", f"{msg}/consent", {"decision": "granted"},
         (400, "usage", f"message {mid} is not a consent request")),
        ("POST", f"{msg}/forward", {"to": []},
         (400, "usage", "'to' is a non-empty list of authority ids")),
        ("POST", f"{msg}/request-consent", {"to": ["FR-PNF"], "purpose": 7},
         (400, "usage", "'purpose' is a string")),
        ("GET", "/api/cases/NO-SUCH-CASE", None, (404, "not-found", "no case NO-SUCH-CASE")),
        ("GET", "/api/inbox?limit=0", None, (400, "usage", "'limit' is an integer 1-1000")),
        ("GET", "/api/inbox?limit=abc", None, (400, "usage", "'limit' is an integer 1-1000")),
        ("GET", "/api/outbox?limit=1001", None, (400, "usage", "'limit' is an integer 1-1000")),
    ]  # fmt: skip
    for method, path, body, want in cases:
        data = None if body is None else orjson.dumps(body)
        assert problem(await raw(br, method, path, data)) == want, path
    # the received message is unchanged and only the refused export... was never logged
    status, inbox = await raw(br, "GET", "/api/inbox")
    assert status == 200
    assert [(m["id"], m["read"]) for m in inbox["messages"]] == [(mid, False)]
    assert await br.n.outbox() == []


async def test_reading_a_sent_message_is_not_a_read_receipt(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    fr, br = pair
    mid = str(await fr.n.send([br.me], info("sent by France", case="C-7")))
    await eventually(lambda: delivered(fr, mid, br))
    status, got = await raw(fr, "GET", f"/api/messages/{mid}")
    assert status == 200
    assert got["direction"] == "out"
    assert got["content"]["subject"] == "sent by France"
    assert got["meta"]["sender"] == "FR-PNF"
    assert got["meta"]["recipients"]["BR-PF"]["state"] == "delivered"
    assert got["meta"]["recipients"]["BR-PF"]["via"] == "direct"
    async with fr.n.sessions() as s:
        actions = [r.action for r in (await s.execute(select(db.AuditRow))).scalars()]
    assert actions == ["send"]
    status, case = await raw(fr, "GET", "/api/cases/C-7")
    assert status == 200
    assert [(m["id"], m["direction"]) for m in case["messages"]] == [(mid, "out")]
    assert case["requests"] == []


async def test_users_api(pair: tuple[RunningNode, RunningNode]) -> None:
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


async def test_a_suspended_node_still_syncs_but_may_not_send(
    net: Net, pair: tuple[RunningNode, RunningNode]
) -> None:
    fr, br = pair
    await net.set_status("FR-PNF", Action.SUSPEND, "audit pending")
    assert net.service is not None
    status, synced = await raw(fr, "POST", "/api/sync", b"")
    assert status == 200
    assert synced["pulled"] is None
    assert fr.n.state.seq == net.service.state.seq
    assert (await fr.n.status()).membership == "suspended"
    got = await raw(fr, "POST", "/api/messages", orjson.dumps(GOOD))
    assert problem(got) == (
        403, "member-not-active",
        "this node (FR-PNF) is suspended: the hub and every member would refuse what it sends",
    )  # fmt: skip
    assert await fr.n.outbox() == []
    assert br.me in fr.n.state.members


async def test_method_not_allowed_problem_matches_its_status(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    fr, _ = pair
    status, body = await raw(fr, "GET", "/api/messages")
    assert status == 405
    assert body["status"] == 405


async def test_a_refused_send_keeps_the_upload_staged(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    fr, _ = pair
    status, staged = await fr.upload(b"ledger", "evidence.txt", "text/plain")
    assert status == 201
    body = {**GOOD, "tlp": "PURPLE", "attachments": [staged["id"]]}
    got = problem(await raw(fr, "POST", "/api/messages", orjson.dumps(body)))
    assert got == (400, "usage", "'tlp': unknown value 'PURPLE'")
    assert await fr.n.outbox() == []
    # still staged for its owner, who may use it in a corrected message or discard it
    status, listed = await raw(fr, "GET", "/api/uploads")
    assert [u["id"] for u in listed["uploads"]] == [staged["id"]]
    status, _ = await raw(fr, "DELETE", f"/api/uploads/{staged['id']}")
    assert status == 204
    assert sorted(p.name for p in fr.config.blob_dir.iterdir()) == []


async def test_a_request_deadline_in_the_past_is_refused(
    pair: tuple[RunningNode, RunningNode],
) -> None:
    fr, _ = pair
    body = {**GOOD, "kind": "request", "deadline": 1}
    status, _ = await raw(fr, "POST", "/api/messages", orjson.dumps(body))
    assert status == 400
    assert await fr.n.outbox() == []

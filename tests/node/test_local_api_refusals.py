"""The local API refuses what it cannot act on -- bad JSON, wrong types, unknown values,
bad query parameters, missing messages, cases and attachments, a wrong method, a
deadline in the past, a send from a suspended node -- with the status, problem type
and detail of each, and the refusal changes nothing: no message is queued, no read
is audited, a staged upload stays staged."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from globe_node import db
from globe_node.api import API_MAX_BODY
from protocol.membership import Action
from tests.node.helpers import GOOD, delivered, info, problem, raw
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

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


@pytest.fixture
async def pair(net: Net) -> tuple[RunningNode, RunningNode]:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    return fr, br


async def test_a_malformed_send_is_refused_with_its_problem_and_nothing_is_queued(
    pair: tuple[RunningNode, RunningNode],
) -> None:
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


async def test_malformed_actions_on_a_message_are_refused_and_change_nothing(
    pair: tuple[RunningNode, RunningNode],
) -> None:
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


async def test_staged_uploads_keep_to_the_quota_and_go_once_their_lifetime_is_over(
    net: Net,
) -> None:
    """Past ``upload_quota`` an upload is refused and leaves nothing; an upload no message
    took within ``upload_lifetime`` is erased, its file with it."""
    # the daemon's own sync loop (which purges too) waits an hour after its first round
    fr = await net.member("FR-PNF", "Parquet national financier", upload_quota=10,
                          upload_lifetime=60, sync_interval=3600)  # fmt: skip
    status, first = await fr.upload(b"ledger", "a.txt", "text/plain")
    assert (status, first["size"]) == (201, 6)
    assert problem(await fr.upload(b"12345", "b.txt", "text/plain")) == (
        507, "upload-quota-exceeded",
        "staged uploads would take 11 bytes of the 10 allowed: send or discard some first",
    )  # fmt: skip
    files = sorted(p.name for p in fr.config.blob_dir.iterdir())
    assert len(files) == 1  # the first upload's, and no part of the second
    assert await fr.n.staging.purge() == 0  # not yet
    real = fr.n.clock
    fr.n.clock = lambda: real() + 61
    try:
        assert await fr.n.staging.purge() == 1
    finally:
        fr.n.clock = real
    assert list(fr.config.blob_dir.iterdir()) == []
    status, listed = await raw(fr, "GET", "/api/uploads")
    assert (status, listed) == (200, {"uploads": []})
    status, again = await fr.upload(b"12345", "b.txt", "text/plain")  # room again
    assert (status, again["size"]) == (201, 5)

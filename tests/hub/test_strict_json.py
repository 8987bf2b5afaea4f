"""Every JSON body the hub takes goes through the one strict decoder (PROTOCOL.md §2.8).

Unsigned bodies (the KEM proof, a rejection, an acknowledgement; the push stream's
auth message in test_push.py) and signed ones (applications, actions: canonical
JSON, §2.3) alike:
a body a second parser could read another way is refused with its own slug, over
a real listener, and nothing is applied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from hub import db
from protocol.errors import PROBLEM_BASE

if TYPE_CHECKING:
    from tests.hub.conftest import Hub, Reply

#: (body, slug): each is one defect only.
DEFECTS: list[tuple[bytes, str]] = [
    (b'{"answer":"AAAA","answer":"BBBB"}', "duplicate-key"),
    (b'{"receipts":[],"notices":[],"notices":[]}', "duplicate-key"),
    (b'{"answer":NaN}', "non-finite-number"),
    (b'{"answer":-Infinity}', "non-finite-number"),
    (b'{"notices":[9007199254740992]}', "number-out-of-range"),
    (b'{"notices":[1.0]}', "number-out-of-range"),
    (b'{"notices":[1e2]}', "number-out-of-range"),
    (b'{"answer":"\\udc00"}', "invalid-unicode"),
    (b'{"receipts":[],"notices":[]}{}', "trailing-data"),
    (b'{"receipts":[],"notices":[]}\x00', "trailing-data"),
    (b'{"a":' + b"[" * 33 + b"]" * 33 + b"}", "nesting-too-deep"),
    (b"[" * 20_000 + b"]" * 20_000, "nesting-too-deep"),
    (b"\xef\xbb\xbf{}", "invalid-json"),
    (b'{"answer":"\xc3"}', "invalid-json"),
    (b"", "invalid-json"),
]


def slug(reply: Reply) -> tuple[int, str]:
    body: Any = orjson.loads(reply.body)
    assert str(body["type"]).startswith(PROBLEM_BASE), body
    return reply.status, str(body["type"])[len(PROBLEM_BASE) :]


async def test_unsigned_bodies_refuse_every_defect(hub: Hub) -> None:
    member = await hub.admit("FR-PNF")
    pending = hub.applicant("DE-BKA", "Bundeskriminalamt")
    (await hub.submit(pending)).ok(201)
    for body, expected in DEFECTS:
        proof = await hub.request("POST", f"/v1/applications/{pending.app_id}/proof", body)
        assert slug(proof) == (400, expected), (body[:40], "proof")
        reject = await hub.admin("POST", f"/v1/admin/applications/{pending.app_id}/reject", body)
        assert slug(reject) == (400, expected), (body[:40], "reject")
        ack = await hub.as_member(member, "POST", "/v1/mailbox/ack", body)
        assert slug(ack) == (400, expected), (body[:40], "ack")
    # nothing was decided: the application still waits for its proof, nothing released
    status = (await hub.get(f"/v1/applications/{pending.app_id}")).ok()
    assert status["status"] == "awaiting-pop"
    assert await hub.rows(db.Delivery) == []

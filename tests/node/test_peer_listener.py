"""The peer listener, the face other members post to: it answers a member's signed
request and refuses everything else -- a key no member holds, a signature made too
long ago, a replayed nonce, a body over the limit, a suspended member -- each with
its status, problem type and detail."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from protocol.keys import SigningKey
from protocol.membership import Action
from protocol.requestauth import sign_request
from tests.node.helpers import peer_post, problem, seal
from tests.node.network import Net

pytestmark = pytest.mark.slow


async def test_the_peer_listener_answers_members_and_refuses_everyone_else(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    async with aiohttp.ClientSession() as s, s.get(f"{fr.peer_url}/healthz") as r:
        assert (r.status, await r.json()) == (200, {"status": "ok"})

    # a signed ping names both ends, and the time on France's clock
    before = int(time.time())
    status, answer, _ = await peer_post(fr, "/v1/ping", b"", key=br.keys.transport)
    after = int(time.time())
    assert status == 200
    assert (answer["authority"], answer["from"]) == ("FR-PNF", "BR-PF")
    assert before <= answer["time"] <= after

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

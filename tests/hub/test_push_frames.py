"""The hub's side of the node path, made cheaper without changing what it does.

* ``items`` frames on ``GET /v1/stream`` (hub/push.py, PROTOCOL.md §10.5): a
  node that asks with ``max_items`` gets pages as frames of several items, in
  cursor order and within its bound and the hub's byte bound; one that does not
  gets an ``item`` frame each; a bad ``max_items`` is a malformed auth message.
* The DELIVERED evidence of an acknowledgement is the very container
  ``make_evidence`` builds, without the hub verifying its own signature again.
* Only releases of envelopes that list blobs reach the blob store.

Every test runs on SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import db
from hub.push import CLOSE_POLICY, MAX_ITEMS, PushLimits
from hub.service import Principal
from protocol import canonical
from protocol.devnet import GENESIS_TIME, DevNetwork, build_devnet
from protocol.envelope import SealTo, parse_envelope, seal_envelope
from protocol.errors import PROBLEM_BASE
from protocol.membership import Action
from protocol.receipts import DeliveryReceipt, EvidenceKind, make_evidence, make_receipt
from tests.hub.test_push import (
    NOW,
    PushHub,
    auth_message,
    challenge_of,
    expect_refusal,
    open_push_hub,
)
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def net() -> DevNetwork:
    """The devnet of tests/hub/test_push.py (its last entry, a suspension, is not stored)."""
    network = build_devnet(
        b"push",
        members=[
            ("FR-PNF", "Parquet national financier"),
            ("DE-BKA", "Bundeskriminalamt"),
            ("ES-FCC", "Fiscalia contra la Corrupcion"),
            ("IT-ANAC", "Autorita Nazionale Anticorruzione"),
        ],
    )
    network.set_status("IT-ANAC", Action.SUSPEND, "under review", time=GENESIS_TIME + 7200)
    return network


@pytest.fixture
async def make_push_hub(db_url: str, net: DevNetwork) -> AsyncIterator[Any]:
    opened: list[tuple[PushHub, AsyncEngine]] = []

    async def make(limits: PushLimits | None = None) -> PushHub:
        opened.append(await open_push_hub(db_url, net, limits))
        return opened[-1][0]

    yield make
    for hub, engine in opened:
        await hub.client.close()
        await engine.dispose()


# --- helpers --------------------------------------------------------------------------------------


async def stream(
    hub: PushHub, who: str, auth: dict[str, Any] | None = None
) -> aiohttp.ClientWebSocketResponse:
    """A stream of ``who`` whose auth message also carries ``auth``'s fields."""
    ws = await hub.client.ws_connect("/v1/stream", max_msg_size=8 << 20)
    message = orjson.loads(auth_message(hub.net, hub.net.members[who], await challenge_of(ws)))
    await ws.send_str(orjson.dumps({**message, **(auth or {})}).decode())
    return ws


async def frames(
    ws: aiohttp.ClientWebSocketResponse, count: int
) -> list[tuple[dict[str, Any], int]]:
    """Frames until ``count`` items have come: each decoded, with its size in bytes."""
    got: list[tuple[dict[str, Any], int]] = []
    items = 0
    while items < count:
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        frame = orjson.loads(msg.data)
        got.append((frame, len(msg.data.encode())))
        items += len(frame["items"]) if frame["type"] == "items" else 1
    assert items == count
    return got


def items_of(got: list[tuple[dict[str, Any], int]]) -> list[dict[str, Any]]:
    """The items of ``items`` frames, in order; each has exactly an item's fields."""
    out: list[dict[str, Any]] = []
    for frame, _size in got:
        assert set(frame) == {"type", "items"}, frame
        assert frame["type"] == "items"
        for item in frame["items"]:
            assert set(item) == {"cursor", "kind", "data"}
            out.append(item)
    return out


async def nothing_more(ws: aiohttp.ClientWebSocketResponse) -> None:
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=0.3)


# --- items frames ---------------------------------------------------------------------------------


async def test_a_node_that_asks_gets_pages_as_items_frames_in_cursor_order(make_push_hub):
    hub = await make_push_hub(PushLimits(page_size=8))
    sent = [await hub.send("FR-PNF", "DE-BKA", content=b'{"n":%d}' % i) for i in range(21)]

    ws = await stream(hub, "DE-BKA", {"max_items": 64})
    got = await frames(ws, len(sent))
    # A page of 8 is one frame: 8 + 8 + 5.
    assert [len(frame["items"]) for frame, _ in got] == [8, 8, 5]
    items = items_of(got)
    assert [canonical.b64d(i["data"], what="data") for i in items] == sent
    cursors = [i["cursor"] for i in items]
    assert cursors == sorted(set(cursors))
    # The very items a pull gives.
    assert await hub.pull("DE-BKA") == items

    # Live items come as frames too, after the others.
    later = await hub.send("FR-PNF", "DE-BKA", content=b'{"n":"live"}')
    (live,) = items_of(await frames(ws, 1))
    assert canonical.b64d(live["data"], what="data") == later
    assert live["cursor"] > cursors[-1]
    await nothing_more(ws)
    await ws.close()

    # Reconnecting after a cursor: what follows it, still in frames.
    again = await stream(hub, "DE-BKA", {"max_items": 2, "after": cursors[16]})
    rest = items_of(await frames(again, 5))
    assert [i["cursor"] for i in rest] == [*cursors[17:], live["cursor"]]
    await again.close()


@pytest.mark.parametrize("max_items", [2, 3, 7])
async def test_a_frame_never_holds_more_items_than_the_node_asked_for(make_push_hub, max_items):
    hub = await make_push_hub()  # pages of 16
    sent = [await hub.send("FR-PNF", "DE-BKA", content=b'{"n":%d}' % i) for i in range(20)]
    ws = await stream(hub, "DE-BKA", {"max_items": max_items})
    got = await frames(ws, len(sent))
    sizes = [len(frame["items"]) for frame, _ in got]
    assert max(sizes) == max_items
    assert all(1 <= n <= max_items for n in sizes)
    # Frames do not straddle pages: each page of 16 is cut in max_items.
    per_page = [max_items] * (16 // max_items) + ([16 % max_items] if 16 % max_items else [])
    assert sizes[: len(per_page)] == per_page
    items = items_of(got)
    assert [canonical.b64d(i["data"], what="data") for i in items] == sent
    assert [i["cursor"] for i in items] == sorted({i["cursor"] for i in items})
    await ws.close()


async def test_a_frame_of_several_items_stays_within_the_byte_bound(make_push_hub):
    bound = 12_000
    hub = await make_push_hub(PushLimits(max_frame=bound))
    contents = [b'{"pad":"' + b"x" * size + b'"}' for size in (2000, 3000, 100, 20_000, 500, 4000)]
    sent = [await hub.send("FR-PNF", "DE-BKA", content=c) for c in contents * 2]
    ws = await stream(hub, "DE-BKA", {"max_items": 256})
    got = await frames(ws, len(sent))
    for frame, size in got:
        # Only a single item larger than the bound may make a larger frame.
        assert size <= bound or len(frame["items"]) == 1, (size, len(frame["items"]))
    assert any(size > bound for _, size in got)  # the 20 kB ones went alone
    assert any(len(frame["items"]) > 1 for frame, _ in got)
    assert [canonical.b64d(i["data"], what="data") for i in items_of(got)] == sent
    await ws.close()


async def test_a_node_that_does_not_ask_gets_an_item_frame_each(make_push_hub):
    hub = await make_push_hub()
    sent = [await hub.send("FR-PNF", "DE-BKA", content=b'{"n":%d}' % i) for i in range(20)]
    ws = await stream(hub, "DE-BKA")
    got = await frames(ws, len(sent))
    assert len(got) == len(sent)
    for frame, _ in got:
        assert set(frame) == {"type", "cursor", "kind", "data"}
        assert frame["type"] == "item"
    assert [canonical.b64d(f["data"], what="data") for f, _ in got] == sent
    cursors = [f["cursor"] for f, _ in got]
    assert cursors == sorted(set(cursors))
    await ws.close()


async def test_both_kinds_of_streams_at_once_get_the_same_items(make_push_hub):
    hub = await make_push_hub()
    old = await stream(hub, "DE-BKA")
    new = await stream(hub, "DE-BKA", {"max_items": 4})
    await eventually(lambda: hub.pusher.connections("DE-BKA") == 2)
    sent = [await hub.send("FR-PNF", "DE-BKA", content=b'{"n":%d}' % i) for i in range(6)]
    singles = [frame for frame, _ in await frames(old, len(sent))]
    assert all(frame["type"] == "item" for frame in singles)
    several = items_of(await frames(new, len(sent)))
    assert [{k: f[k] for k in ("cursor", "kind", "data")} for f in singles] == several
    await old.close()
    await new.close()


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        ("0", "malformed"),
        ("1", "malformed"),
        ("-3", "malformed"),
        (str(MAX_ITEMS + 1), "malformed"),
        ('"8"', "malformed"),
        ("true", "malformed"),
        ("null", "malformed"),
        ("[8]", "malformed"),
        ("8.0", "number-out-of-range"),  # the strict decoder takes no fraction
        ("8.5", "number-out-of-range"),
    ],
)
async def test_a_bad_max_items_is_a_malformed_auth_message(make_push_hub, value, slug):
    hub = await make_push_hub()
    ws = await hub.client.ws_connect("/v1/stream")
    good = auth_message(hub.net, hub.net.members["DE-BKA"], await challenge_of(ws))
    assert good.endswith("}")
    await ws.send_str(good[:-1] + ',"max_items":' + value + "}")
    problem = await expect_refusal(ws, CLOSE_POLICY, PROBLEM_BASE + slug)
    assert problem["status"] == 400
    await eventually(lambda: hub.pusher.connections() == 0)


@pytest.mark.parametrize("max_items", [2, MAX_ITEMS])
async def test_the_bounds_of_max_items_are_accepted(make_push_hub, max_items):
    hub = await make_push_hub()
    sent = await hub.send("FR-PNF", "DE-BKA")
    ws = await stream(hub, "DE-BKA", {"max_items": max_items})
    (item,) = items_of(await frames(ws, 1))
    assert canonical.b64d(item["data"], what="data") == sent
    await ws.close()


# --- delivery evidence ----------------------------------------------------------------------------


async def test_delivery_evidence_is_the_container_make_evidence_builds(make_push_hub):
    hub = await make_push_hub()
    net = hub.net
    for sender, recipient, others in (
        ("FR-PNF", "DE-BKA", ()),
        ("FR-PNF", "ES-FCC", ("DE-BKA",)),
        ("ES-FCC", "FR-PNF", ()),
    ):
        envelope = await hub.send(sender, recipient, *others)
        parsed = parse_envelope(envelope)
        data = make_receipt(
            genesis=net.genesis, identity=net.members[recipient].identity,
            message_id=parsed.header.message_id, envelope_hash=parsed.hash,
            sender=parsed.header.sender, recipient=net.members[recipient].authority,
            time=NOW - 7,
        ).encode()  # fmt: skip
        receipt = DeliveryReceipt.decode(data, hub.service.state)
        for time in (NOW, NOW + 12_345):
            reference = make_evidence(
                genesis=net.genesis, hub=net.hub, kind=EvidenceKind.DELIVERED,
                message_id=receipt.message_id, envelope_hash=receipt.envelope_hash,
                sender=receipt.sender, recipients=[receipt.recipient], time=time,
            ).signed.encode()  # fmt: skip
            assert hub.router.delivery_evidence(receipt, time) == reference
        # And that is what the sender's receipt notice carries.
        member = net.members[recipient]
        who = Principal(member.transport.key_id, authority=member.authority)
        result = await hub.router.ack(who, [data], [])
        assert result.released == (str(parsed.header.message_id),)
        (notice,) = [i for i in await hub.pull(sender) if i["kind"] == "receipt"][-1:]
        body = orjson.loads(canonical.b64d(notice["data"], what="notice"))
        assert canonical.b64d(body["evidence"], what="evidence") == make_evidence(
            genesis=net.genesis, hub=net.hub, kind=EvidenceKind.DELIVERED,
            message_id=receipt.message_id, envelope_hash=receipt.envelope_hash,
            sender=receipt.sender, recipients=[receipt.recipient], time=NOW,
        ).signed.encode()  # fmt: skip


# --- blob release ---------------------------------------------------------------------------------


async def test_only_envelopes_that_list_blobs_reach_the_blob_store(make_push_hub):
    hub = await make_push_hub()
    net = hub.net
    fr, de = net.members["FR-PNF"], net.members["DE-BKA"]
    blob_id = secrets.token_hex(16)
    async with hub.service.unit() as s:
        s.add(db.Blob(id=blob_id, owner="FR-PNF", size=1, sha256=b"\x00" * 32, created=NOW,
                      state="complete"))  # fmt: skip
    released: list[list[tuple[str, str]]] = []

    async def on_release(messages: list[tuple[str, str]]) -> None:
        released.append(list(messages))

    hub.router.on_release = on_release

    def sealed(*, blobs: list[str], lifetime: int = 3600) -> bytes:
        state = hub.service.state
        return seal_envelope(
            genesis=net.genesis, sender=fr.authority, identity=fr.identity,
            recipients=[SealTo(de.authority, secrets.randbelow(2**31) + 1, de.prekey.public_key)],
            content=b'{"text":"hi"}', created=NOW, expires=NOW + lifetime,
            dir_seq=state.seq, dir_head=state.head, blobs=blobs,
        )  # fmt: skip

    envelopes = [sealed(blobs=[]), sealed(blobs=[blob_id]), sealed(blobs=[])]
    for envelope in envelopes:
        status, body = await hub.request("FR-PNF", "POST", "/v1/messages", envelope)
        assert status == 201, body

    def receipt(envelope: bytes) -> bytes:
        parsed = parse_envelope(envelope)
        return make_receipt(
            genesis=net.genesis, identity=de.identity, message_id=parsed.header.message_id,
            envelope_hash=parsed.hash, sender=fr.authority, recipient=de.authority, time=NOW,
        ).encode()  # fmt: skip

    def key(envelope: bytes) -> tuple[str, str]:
        return ("FR-PNF", str(parse_envelope(envelope).header.message_id))

    who = Principal(de.transport.key_id, authority=de.authority)
    # Releasing envelopes without blobs: the blob store is not called at all.
    result = await hub.router.ack(who, [receipt(envelopes[0])], [])
    assert len(result.released) == 1
    assert released == []
    # A batch with one that lists a blob: only that one is passed on.
    result = await hub.router.ack(who, [receipt(e) for e in envelopes[1:]], [])
    assert len(result.released) == 2
    assert released == [[key(envelopes[1])]]

    # Expiry likewise: of two expired copies, only the one that lists a blob.
    released.clear()
    expiring = [sealed(blobs=[blob_id], lifetime=60), sealed(blobs=[], lifetime=60)]
    for envelope in expiring:
        status, body = await hub.request("FR-PNF", "POST", "/v1/messages", envelope)
        assert status == 201, body
    hub.service.clock = lambda: NOW + 120
    assert await hub.router.expire() == 2
    assert released == [[key(expiring[0])]]

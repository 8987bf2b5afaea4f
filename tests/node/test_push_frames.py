"""The node's side of ``items`` frames on the push stream (globe_node/push.py,
PROTOCOL.md §10.5): the node asks for frames of up to a batch of items, processes
their items as it processes ``item`` frames, and refuses a malformed ``items``
frame whole, as it refuses a malformed ``item`` frame."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
import orjson
import pytest

from globe_io.hubclient import MailboxItem
from globe_node import push
from globe_node.push import PUSH_BATCH
from hub import push as hub_push
from hub.routing import Router
from hub.service import Principal
from protocol import canonical
from protocol.errors import DecodeError, MalformedError, NumberOutOfRange, UnknownField
from tests.node.helpers import delivered, inbox_ids
from tests.node.network import Net
from tests.node.test_push_batching import gate_processing, record_acks, send
from tests.support.waiting import eventually

# --- frames read from a stand-in socket -----------------------------------------------------------


class FakeStream:
    """The text frames a hub would send, for :func:`globe_node.push._read`."""

    def __init__(self, frames: Sequence[object]) -> None:
        self.frames = [f if isinstance(f, str) else orjson.dumps(f).decode() for f in frames]

    async def __aiter__(self) -> AsyncIterator[aiohttp.WSMessage]:
        for text in self.frames:
            yield aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, text, None)


async def read(*frames: object) -> list[MailboxItem]:
    """What the node queues from ``frames``."""
    queue: asyncio.Queue[MailboxItem] = asyncio.Queue(maxsize=PUSH_BATCH)
    stream: Any = FakeStream(frames)
    await push._read(stream, queue)
    return [queue.get_nowait() for _ in range(queue.qsize())]


async def refusal(*frames: object) -> tuple[type[Exception], list[MailboxItem]]:
    """The exception the reader raises on ``frames``, and what it had queued by then."""
    queue: asyncio.Queue[MailboxItem] = asyncio.Queue(maxsize=PUSH_BATCH)
    stream: Any = FakeStream(frames)
    with pytest.raises(DecodeError) as raised:
        await push._read(stream, queue)
    return type(raised.value), [queue.get_nowait() for _ in range(queue.qsize())]


def item(cursor: int, data: bytes = b"envelope bytes", kind: str = "envelope") -> dict[str, Any]:
    return {"cursor": cursor, "kind": kind, "data": canonical.b64e(data)}


def single(fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "item", **fields}


def several(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "items", "items": list(fields)}


async def test_an_items_frame_queues_what_item_frames_would() -> None:
    items = [item(3), item(4, b"\x00\xff" * 100, "receipt"), item(9, b"", "non-delivery")]
    alone = await read(*(single(i) for i in items))
    assert alone == [
        MailboxItem(3, "envelope", b"envelope bytes"),
        MailboxItem(4, "receipt", b"\x00\xff" * 100),
        MailboxItem(9, "non-delivery", b""),
    ]
    assert await read(several(*items)) == alone
    # Mixed and split: the same items in the same order.
    assert await read(several(items[0]), single(items[1]), several(items[2])) == alone
    # A whole batch in one frame fits the queue.
    batch = [item(c) for c in range(1, PUSH_BATCH + 1)]
    assert [i.cursor for i in await read(several(*batch))] == list(range(1, PUSH_BATCH + 1))


_GOOD = item(5)
#: Items that an item frame refuses (each with what makes it bad).
BAD_ITEMS = [
    pytest.param({**_GOOD, "cursor": -1}, id="negative-cursor"),
    pytest.param({**_GOOD, "cursor": "5"}, id="string-cursor"),
    pytest.param({**_GOOD, "cursor": True}, id="bool-cursor"),
    pytest.param({**_GOOD, "cursor": None}, id="null-cursor"),
    pytest.param({**_GOOD, "cursor": 2**53}, id="huge-cursor"),
    pytest.param({"kind": "envelope", "data": _GOOD["data"]}, id="no-cursor"),
    pytest.param({**_GOOD, "kind": 7}, id="number-kind"),
    pytest.param({**_GOOD, "kind": "k" * 33}, id="long-kind"),
    pytest.param({"cursor": 5, "data": _GOOD["data"]}, id="no-kind"),
    pytest.param({**_GOOD, "data": "not base64!"}, id="data-not-base64url"),
    pytest.param({**_GOOD, "data": _GOOD["data"] + "="}, id="padded-data"),
    pytest.param({**_GOOD, "data": "AB"}, id="stray-bits"),
    pytest.param({**_GOOD, "data": ["AA"]}, id="data-not-a-string"),
    pytest.param({"cursor": 5, "kind": "envelope"}, id="no-data"),
    pytest.param({**_GOOD, "extra": 1}, id="unknown-field"),
    pytest.param("not an object", id="not-an-object"),
]
#: An item whose cursor has a fraction (the strict decoder refuses it).
_FRACTION = '{"type": "items", "items": [{"cursor": 1.5, "kind": "envelope", "data": ""}]}'


@pytest.mark.parametrize("bad", BAD_ITEMS)
async def test_a_bad_item_refuses_its_items_frame_as_it_refuses_an_item_frame(bad: Any) -> None:
    if isinstance(bad, dict):
        alone, queued = await refusal(single(item(1)), single(bad))
        assert queued == [MailboxItem(1, "envelope", b"envelope bytes")]
    else:  # not an object: no item frame can carry it
        alone = MalformedError
    # In an items frame, after good items: the whole frame is refused, none of it queued
    # (what earlier frames brought is, and is processed before the stream ends).
    refused, queued = await refusal(single(item(1)), several(item(2), item(3), bad))
    assert refused is alone
    assert queued == [MailboxItem(1, "envelope", b"envelope bytes")]


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        pytest.param({"type": "items"}, MalformedError, id="no-items"),
        pytest.param({"type": "items", "items": None}, MalformedError, id="null"),
        pytest.param({"type": "items", "items": {"0": item(1)}}, MalformedError, id="object"),
        pytest.param({"type": "items", "items": item(1)}, MalformedError, id="an-item"),
        pytest.param({"type": "items", "items": "items"}, MalformedError, id="string"),
        pytest.param({"type": "items", "items": []}, MalformedError, id="empty"),
        pytest.param(
            several(*(item(c) for c in range(1, PUSH_BATCH + 2))), MalformedError, id="too-many"
        ),
        pytest.param({**several(item(1)), "cursor": 1}, UnknownField, id="unknown-field"),
        pytest.param(_FRACTION, NumberOutOfRange, id="fraction"),
        pytest.param('{"type": "items", "items": [], "items": []}', DecodeError, id="dup-key"),
    ],
)
async def test_a_malformed_items_frame_is_refused(frame: object, error: type[Exception]) -> None:
    refused, queued = await refusal(frame)
    assert issubclass(refused, error)
    assert queued == []


# --- between real nodes ---------------------------------------------------------------------------


def record_frames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, list[int], set[str]]]:
    """(max_items, cursors, kinds) of every items frame the hub sends, in order."""
    real = hub_push._items_frames
    sent: list[tuple[int, list[int], set[str]]] = []

    def frames(items: Sequence[Any], max_items: int, max_frame: int) -> Iterator[bytes]:
        for frame in real(items, max_items, max_frame):
            pushed = orjson.loads(frame)["items"]
            sent.append((max_items, [i["cursor"] for i in pushed], {i["kind"] for i in pushed}))
            yield frame

    monkeypatch.setattr(hub_push, "_items_frames", frames)
    return sent


def hold_pushes(router: Router, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Hold the hub's pulls (the pusher's, and any other) until the event is set."""
    real = router.pull
    gate = asyncio.Event()

    async def pull(who: Principal, after: int, limit: int) -> Any:
        await gate.wait()
        return await real(who, after, limit)

    monkeypatch.setattr(router, "pull", pull)
    return gate


@pytest.mark.slow
async def test_items_frames_between_real_nodes(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages committed while the hub's push was held go out as one frame of several
    items, which the node processes as one batch with one acknowledgement; the receipt
    notices of that acknowledgement reach the sender's node as one frame too."""
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await eventually(lambda: br.n.push.connected and fr.n.push.connected)
    router = net.router
    assert router is not None
    frames = record_frames(monkeypatch)
    acks = record_acks(br)
    gate, batches = gate_processing(br)
    gate.set()  # processing is not held here, only recorded
    held = hold_pushes(router, monkeypatch)

    ids = await send(fr, 5)

    def five_waiting() -> bool:
        return router.depth().get("BR-PF", (0, 0))[0] == 5

    await eventually(five_waiting)
    held.set()
    for mid in ids:
        await eventually(lambda mid=mid: delivered(fr, mid, br))  # type: ignore[misc]
    assert sorted(await inbox_ids(br)) == sorted(ids)
    # One frame of the five envelopes to BR, one of the five receipt notices to FR.
    (to_br, envelopes), (to_fr, receipts) = [(c, kinds) for _, c, kinds in frames]
    assert (envelopes, receipts) == ({"envelope"}, {"receipt"})
    assert len(to_br) == len(to_fr) == 5
    assert {max_items for max_items, _, _ in frames} == {PUSH_BATCH}  # what the nodes ask for
    assert batches == [to_br]  # processed as one batch, in cursor order
    assert acks == [(5, 0)]

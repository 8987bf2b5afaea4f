"""The push stream under load: items that arrive while earlier ones are processed are
processed next as one batch, acknowledged to the hub in one request, in cursor order;
and items already read when the stream ends are still processed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from globe_io.hubclient import MailboxItem
from globe_node.inbox import Inbox
from globe_node.push import PushClient
from tests.node.helpers import delivered, inbox_ids
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


def record_acks(rn: RunningNode) -> list[tuple[int, int]]:
    """(receipts, notices) of every acknowledgement ``rn`` sends the hub, in order."""
    inbox = rn.n.incoming
    real = inbox.hub.ack
    sent: list[tuple[int, int]] = []

    async def ack(receipts: Sequence[bytes], notices: Sequence[int]) -> object:
        sent.append((len(receipts), len(notices)))
        return await real(receipts, notices)

    inbox.hub.ack = ack  # type: ignore[method-assign]
    return sent


def gate_processing(rn: RunningNode) -> tuple[asyncio.Event, list[list[int]]]:
    """Hold ``rn``'s processing of pushed items until the event is set; the cursors of
    each batch it processes, in order."""
    inbox = rn.n.incoming
    real = inbox.process_items
    gate = asyncio.Event()
    batches: list[list[int]] = []

    async def process_items(items: Sequence[MailboxItem]) -> None:
        await gate.wait()
        batches.append([i.cursor for i in items])
        await real(items)

    inbox.process_items = process_items  # type: ignore[method-assign]
    return gate, batches


async def send(rn: RunningNode, n: int) -> list[str]:
    ids = []
    for i in range(n):
        status, sent = await rn.api(
            "POST", "/api/messages",
            {"to": ["BR-PF"], "kind": "information", "subject": f"note {i}", "body": "text"},
        )  # fmt: skip
        assert status == 201, sent
        ids.append(sent["id"])
    return ids


async def test_items_pushed_during_processing_are_acknowledged_as_one_batch(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await eventually(lambda: br.n.push.connected and fr.n.push.connected)
    acks = record_acks(br)
    gate, batches = gate_processing(br)

    ids = await send(fr, 6)
    # The first item is being processed (held); the five after it wait in the queue.
    await eventually(lambda: br.n.push.queue is not None and br.n.push.queue.qsize() == 5)
    gate.set()
    await eventually(lambda: delivered(fr, ids[-1], br))
    for mid in ids:
        assert await delivered(fr, mid, br)
    assert sorted(await inbox_ids(br)) == sorted(ids)
    assert [len(b) for b in batches] == [1, 5]
    cursors = [c for b in batches for c in b]
    assert cursors == sorted(cursors)
    assert acks == [(1, 0), (5, 0)]


async def test_a_quiet_stream_processes_each_item_as_it_arrives(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await eventually(lambda: br.n.push.connected)
    acks = record_acks(br)
    for _ in range(3):
        (mid,) = await send(fr, 1)
        await eventually(lambda mid=mid: delivered(fr, mid, br))  # type: ignore[misc]
    assert acks == [(1, 0)] * 3


async def test_a_batch_cut_off_by_the_hub_is_not_lost(net: Net) -> None:
    """The hub goes away with a batch read and not yet acknowledged: the stored
    messages keep their receipts, the hub keeps its copies, and once it is back the
    node pulls them again and every message ends delivered, each stored once."""
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await eventually(lambda: br.n.push.connected)
    gate, batches = gate_processing(br)
    ids = await send(fr, 4)
    await eventually(lambda: br.n.push.queue is not None and br.n.push.queue.qsize() == 3)
    await net.stop_hub()
    gate.set()  # the first item is stored; its acknowledgement cannot reach the hub
    await eventually(lambda: not br.n.push.connected)
    assert [len(b) for b in batches] == [1]
    assert br.n.push.queue is None  # the three read after it were dropped, not processed
    await net.start_hub()
    for mid in ids:
        await eventually(lambda mid=mid: delivered(fr, mid, br))  # type: ignore[misc]
    got: Any = await inbox_ids(br)
    assert sorted(got) == sorted(ids)


async def test_a_node_back_online_processes_its_backlog_once(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What queued while the node was down is pulled, and the stream asked only for what
    comes after: no item reaches the node twice (once pulled, once pushed)."""
    fr, br, ids = await backlog(net, 20)
    seen = count_envelopes(monkeypatch)
    await net.start_node(br)
    for mid in ids:
        await eventually(lambda mid=mid: delivered(fr, mid, br))  # type: ignore[misc]
    assert sorted(await inbox_ids(br)) == sorted(ids)
    assert len(seen) == 20
    assert len(set(seen)) == 20


async def test_two_pulls_at_once_process_each_item_once(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The push stream's pull before it connects and the sync loop's pull while it is not
    connected may start together: the second waits for the first, then finds nothing."""
    _, br, ids = await backlog(net, 12)

    async def no_stream(self: PushClient) -> None:
        await asyncio.Event().wait()  # this node's stream never connects

    monkeypatch.setattr(PushClient, "run", no_stream)
    seen = count_envelopes(monkeypatch)
    await net.start_node(br)
    counts = await asyncio.gather(br.n.incoming.pull(), br.n.incoming.pull())
    assert sorted(await inbox_ids(br)) == sorted(ids)
    assert sorted(seen) == sorted(set(seen))
    assert len(seen) == 12
    assert sum(counts) <= 12


async def backlog(net: Net, n: int) -> tuple[RunningNode, RunningNode, list[str]]:
    """FR-PNF and BR-PF, BR-PF stopped with ``n`` messages from FR-PNF waiting at the hub."""
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_node(br)
    ids = await send(fr, n)
    router = net.router
    assert router is not None

    def all_waiting() -> bool:
        return router.depth().get("BR-PF", (0, 0))[0] == n

    await eventually(all_waiting)
    return fr, br, ids


def count_envelopes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The cursors of every envelope any node processes from now on, in order."""
    seen: list[int] = []
    real = Inbox.process_items

    async def counting(self: Inbox, items: Sequence[MailboxItem]) -> None:
        seen.extend(i.cursor for i in items if i.kind == "envelope")
        await real(self, items)

    monkeypatch.setattr(Inbox, "process_items", counting)
    return seen

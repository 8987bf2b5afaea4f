"""A batch of mailbox envelopes: checked one after the other, stored as one group commit
in item order, acknowledged together; a storage failure part-way acknowledges nothing
and loses nothing the others stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from globe_io.hubclient import MailboxItem
from globe_node.inbox import Inbox
from protocol.errors import StorageError
from tests.node.helpers import db_rows, seal
from tests.node.network import Net, RunningNode

pytestmark = pytest.mark.slow


def record_acks(rn: RunningNode) -> list[tuple[list[bytes], list[int]]]:
    inbox = rn.n.incoming
    sent: list[tuple[list[bytes], list[int]]] = []

    async def ack(receipts: Sequence[bytes], notices: Sequence[int]) -> object:
        sent.append((list(receipts), list(notices)))
        return None

    inbox.hub.ack = ack  # type: ignore[method-assign]
    return sent


def inbox_rows(rn: RunningNode) -> list[tuple[Any, ...]]:
    return db_rows(
        rn.config.db_path,
        'SELECT sender, seq, "order", receipt_acked FROM inbox ORDER BY seq',
    )


async def test_a_batch_of_envelopes_commits_as_one_group_in_item_order(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    acks = record_acks(fr)
    items = [MailboxItem(10 + i, "envelope", seal(br, fr, seq=i)) for i in range(1, 6)]
    groups_before = len(fr.n.store.group.group_sizes)
    await fr.n.incoming.process_items(items)
    # five receive transactions, one commit (the acknowledgement marks are one more)
    assert fr.n.store.group.group_sizes[groups_before] == 5
    assert [(s, q, o) for s, q, o, _ in inbox_rows(fr)] == [
        ("BR-PF", i, "in-order") for i in range(1, 6)
    ]
    assert [(len(r), n) for r, n in acks] == [(5, [])]
    assert [a for *_, a in inbox_rows(fr)] == [1] * 5  # released at the hub: marked
    # the same batch again: nothing stored twice, the same receipts acknowledged
    await fr.n.incoming.process_items(items)
    assert len(inbox_rows(fr)) == 5
    assert acks[1] == acks[0]


async def test_a_storage_failure_in_a_batch_acknowledges_nothing(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    acks = record_acks(fr)
    real = Inbox._store

    def failing(self: Inbox, c: Connection, env: Any, *args: Any, **kw: Any) -> Any:
        if env.header.recipients[0].seq == 2:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real(self, c, env, *args, **kw)

    monkeypatch.setattr(Inbox, "_store", failing)
    items = [MailboxItem(10 + i, "envelope", seal(br, fr, seq=i)) for i in range(1, 4)]
    with pytest.raises(StorageError, match="disk I/O error"):
        await fr.n.incoming.process_items(items)
    assert acks == []  # the hub keeps all three and offers them again
    assert [q for _, q, *_ in inbox_rows(fr)] == [1, 3]  # the others' commit stands
    monkeypatch.setattr(Inbox, "_store", real)
    await fr.n.incoming.process_items(items)  # offered again: the missing one is stored
    assert [q for _, q, *_ in inbox_rows(fr)] == [1, 2, 3]
    assert [(len(r), n) for r, n in acks] == [(3, [])]

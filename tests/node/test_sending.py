"""What a send checks before it queues anything -- a recipient other than the node
itself, at least one, uploads staged by the same user, each attached once and used by
one message only -- and that what it queues arrives whole: the attachment byte for byte,
the request on the recipient's side, a reply only to what was received."""

from __future__ import annotations

import os

import pytest

from globe_node.compartments import WHOLE_NODE
from globe_node.errors import NotFound
from protocol.errors import UsageError
from protocol.messages import Kind
from tests.node.helpers import delivered, info
from tests.node.network import Net, stage
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_a_send_checks_recipients_and_uploads_and_delivers_the_attachment(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    with pytest.raises(UsageError) as err:
        await fr.n.send([fr.me], info())
    assert err.value.detail == "a node cannot send to itself"
    with pytest.raises(UsageError) as err:
        await fr.n.send([], info())
    assert err.value.detail == "a message needs at least one recipient"
    # an upload id that is not staged, or staged by another user, is unknown
    with pytest.raises(NotFound) as nf:
        await fr.n.send([br.me], info(), uploads=["0" * 32])
    assert nf.value.detail == f"no staged upload {'0' * 32} of yours"
    data = os.urandom((1 << 20) + 5000)
    upload = await stage(fr.n, data, name="ledger.bin", user="alice")
    with pytest.raises(NotFound):
        await fr.n.send([br.me], info(), user="mallory", uploads=[upload])
    with pytest.raises(UsageError) as err:
        await fr.n.send([br.me], info(), user="alice", uploads=[upload, upload])
    assert err.value.detail == "an upload is attached once"
    assert await fr.n.outbox() == []

    mid = str(
        await fr.n.send(
            [br.me], info("with a ledger", kind=Kind.REQUEST), user="alice", uploads=[upload]
        )
    )
    assert await fr.n.staging.staged("alice") == []  # taken by the message, in its transaction
    with pytest.raises(NotFound):  # an upload is used by one message only
        await fr.n.send([br.me], info(), user="alice", uploads=[upload])
    await eventually(lambda: delivered(fr, mid, br))
    received = b"".join([c async for c in br.n.attachment_chunks(mid, 0)])
    assert received == data
    with pytest.raises(NotFound) as nf:
        _ = [c async for c in br.n.attachment_chunks(mid, 1)]
    assert nf.value.detail == f"message {mid} has no attachment 2"
    with pytest.raises(UsageError) as err:
        await fr.n.reply(mid, kind=Kind.ANSWER, body="answering myself")
    assert err.value.detail == (f"message {mid} was sent by this node: reply to a received message")
    # Brazil received a request but sent none: its statistics count one received request
    assert [(r.direction, r.state) for r in await br.n.requests()] == [("in", "received")]
    report = await br.n.stats.report(WHOLE_NODE, start=0, end=br.n.now() + 1)
    assert [(r.direction, r.counterpart, r.kind, r.count, r.open) for r in report.rows] == [
        ("received", "FR-PNF", "request", 1, 1),
        ("received", None, "request", 1, 1),
    ]
    assert fr.n.member(br.me).authority == br.me

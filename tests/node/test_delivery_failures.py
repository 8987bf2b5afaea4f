"""Deliveries that fail for good, and say why: a sender the hub has suspended (though
its own directory does not know it yet) is refused on the direct path and by the hub;
a message that cannot leave before it expires fails as expired and stays failed on
retry, and a directory the hub has not confirmed for too long stops new sends."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import update

from globe_node import db
from globe_node.errors import DirectoryStale
from protocol.errors import MalformedError
from protocol.membership import Action
from tests.node.helpers import info, out_row, recipient_states
from tests.node.network import Net
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_a_sender_suspended_at_the_hub_sees_its_deliveries_fail(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)

    # France's node stops learning new log entries: the hub serves it none
    async def no_entries(since: int = 0) -> list[bytes]:
        return []

    fr.n.hub.log_entries = no_entries  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="globe.node")
    seq = fr.n.state.seq
    await net.set_status("FR-PNF", Action.SUSPEND, "under investigation")
    await net.synced(br, ke)
    with pytest.raises(MalformedError) as err:
        await fr.n.sync_directory()
    assert err.value.detail == "hub checkpoint is ahead of the log it served"
    assert fr.n.state.seq == seq
    await eventually(
        lambda: (
            "sync: hub checkpoint is ahead of the log it served"
            in [r.getMessage() for r in caplog.records]
        )
    )

    # still "active" in its own view, France sends; both paths refuse it for good
    mid = str(await fr.n.send([br.me, ke.me], info("sent while suspended")))

    async def settled() -> bool:
        return set((await recipient_states(fr, mid)).values()) == {"failed"}

    await eventually(settled)
    direct, relayed = await out_row(fr, mid, "BR-PF"), await out_row(fr, mid, "KE-EACC")
    assert (direct.last_error, direct.via) == ("request authentication failed", None)
    assert relayed.last_error is not None
    assert relayed.via is None
    assert await br.n.inbox() == []
    assert await ke.n.inbox() == []


async def test_a_message_that_cannot_leave_before_it_expires_fails(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_hub()
    mid = str(await fr.n.send([br.me], info("never leaves")))

    async def retried() -> bool:
        return (await out_row(fr, mid, "BR-PF")).attempts >= 1

    await eventually(retried)
    row = await out_row(fr, mid, "BR-PF")
    assert row.state == "queued"
    assert row.next_attempt > fr.n.now() - 1
    async with fr.n.sessions.begin() as s:
        await s.execute(
            update(db.OutMessage).where(db.OutMessage.message_id == mid).values(expires=1)
        )
        await s.execute(
            update(db.OutRecipient).where(db.OutRecipient.message_id == mid).values(next_attempt=0)
        )
    await fr.n.deliver_due()
    row = await out_row(fr, mid, "BR-PF")
    assert (row.state, row.last_error) == ("failed", "expired")
    assert await fr.n.retry(mid) == 1  # an operator may queue it again...
    await fr.n.deliver_due()
    assert (await out_row(fr, mid, "BR-PF")).state == "failed"  # ...it is still expired

    # the hub stays away: the head ages past the limit and the sync loop says so
    ping = await fr.n.ping(br.me)
    assert ping == {
        "authority": "BR-PF",
        "direct": {"ok": False, "ms": None, "error": "the peer publishes no endpoint"},
        "hub": {"ok": False, "ms": None},
    }
    caplog.set_level(logging.WARNING, logger="globe.node")
    real = fr.n.clock
    fr.n.clock = lambda: real() + fr.config.directory_max_age + 3600
    await eventually(
        lambda: any("sending is refused until the hub is reachable" in r.getMessage()
                    for r in caplog.records)
    )  # fmt: skip
    with pytest.raises(DirectoryStale):
        await fr.n.send([br.me], info())

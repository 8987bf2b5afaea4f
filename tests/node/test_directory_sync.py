"""How a node keeps its copy of the membership log: a hub entry that does not verify
is refused with an alert and the live directory untouched; a hub checkpoint behind the
stored log is kept as old with an alert; the sync loop survives what it did not expect;
and a node that has never confirmed its directory with the hub refuses to send."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import select

from globe_node import db
from globe_node.errors import DirectoryStale
from protocol.errors import DecodeError
from protocol.membership import make_checkpoint
from tests.node.helpers import alerts, info
from tests.node.network import Net
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_a_sync_that_does_not_verify_or_goes_back_is_refused_with_an_alert(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    await net.member("BR-PF", "Policia Federal")
    state = fr.n.state
    seq, head = state.seq, state.head
    caplog.set_level(logging.INFO, logger="globe.node")
    real_entries, real_checkpoint = fr.n.hub.log_entries, fr.n.hub.checkpoint

    # an entry that does not verify: an alert, and the live directory is untouched
    async def junk_entries(since: int = 0) -> list[bytes]:
        return [b"not a log entry"]

    fr.n.hub.log_entries = junk_entries  # type: ignore[method-assign]
    with pytest.raises(DecodeError):
        await fr.n.sync_directory()
    assert fr.n.state is state
    assert (state.seq, state.head) == (seq, head)
    assert "directory-invalid" in [k for k, _ in await alerts(fr)]
    async with fr.n.sessions() as s:
        stored = (await s.execute(select(db.LogRow.seq))).scalars().all()
    assert max(stored) == seq

    # a hub checkpoint behind the stored log: accepted as old, with an alert
    async def no_entries(since: int = 0) -> list[bytes]:
        return []

    behind = make_checkpoint(
        genesis=net.genesis, hub=net.hub_key, seq=seq - 1, head=state.heads[seq - 1],
        time=int(time.time()),
    ).signed.encode()  # fmt: skip

    async def old_checkpoint() -> bytes:
        return behind

    fr.n.hub.log_entries = no_entries  # type: ignore[method-assign]
    fr.n.hub.checkpoint = old_checkpoint  # type: ignore[method-assign]
    assert await fr.n.sync_directory() == 0
    assert await fr.n.sync_directory() == 0
    rollbacks = [d for k, d in await alerts(fr) if k == "directory-rollback"]
    assert rollbacks == [f"hub checkpoint at {seq - 1} is behind the stored log at {seq}"]

    # the sync loop survives what it did not expect, and syncs again afterwards
    async def broken() -> bytes:
        raise RuntimeError("checkpoint store unavailable")

    fr.n.hub.checkpoint = broken  # type: ignore[method-assign]
    await eventually(lambda: "sync failed" in [r.getMessage() for r in caplog.records])
    fr.n.hub.log_entries = real_entries  # type: ignore[method-assign]
    fr.n.hub.checkpoint = real_checkpoint  # type: ignore[method-assign]
    await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    assert fr.n.state.seq > seq


async def test_a_node_that_never_confirmed_its_directory_refuses_to_send(net: Net) -> None:
    await net.stop_hub()
    rn = net.make_node("FR-PNF", "Parquet national financier")
    await net.start_node(rn)
    # the sync loop has tried the hub, and failed: still nothing confirmed
    await eventually(lambda: rn.n.hub_reachable is False)
    status = await rn.n.status()
    assert status.age_s is None
    assert status.membership == "not admitted"
    assert rn.n.directory_age() is None
    with pytest.raises(DirectoryStale) as err:
        await rn.n.send([rn.me], info())
    assert err.value.detail == (
        f"the directory head is never confirmed (limit {rn.config.directory_max_age} s): the hub "
        "must be reachable to confirm it before sending"
    )

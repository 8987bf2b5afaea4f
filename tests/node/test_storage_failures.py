"""A node whose database cannot grow (a full disk) refuses cleanly, and recovers.

SQLite's ``max_page_count`` makes every commit that needs a new page fail with
SQLITE_FULL, as a full disk does.  The node translates that at its storage
boundary: the local API answers 503 ``storage`` with ``Retry-After``, the
peer listener likewise, nothing is half-written, and once there is room again
the same request succeeds.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, text

from globe_node import db
from protocol.errors import PROBLEM_BASE
from tests.node.helpers import delivered
from tests.node.network import Net, RunningNode
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

GOOD: dict[str, Any] = {"to": ["BR-PF"], "subject": "s", "body": "b" * 5000}


async def cap_database(rn: RunningNode, cap: list[int | None], pages: int | None) -> None:
    """Cap (or uncap) the size of the node's database for every use from now on."""
    store = rn.n.store
    if not cap:

        def apply(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA max_page_count = {cap[0] or 1073741823}")
            cursor.close()

        # each use of a connection: the sessions', the writer thread's and the reader's
        for engine in (store.engine.sync_engine, store.writer_engine, store.reader_engine):
            event.listen(engine, "checkout", apply)
        cap.append(None)
    cap[0] = pages


async def page_count(rn: RunningNode) -> int:
    async with rn.n.sessions() as s:
        return int((await s.execute(text("PRAGMA page_count"))).scalar_one())


async def test_a_full_database_is_a_503_and_nothing_is_half_written(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    cap: list[int | None] = []
    await cap_database(fr, cap, await page_count(fr))
    status, problem = await fr.api("POST", "/api/messages", GOOD)
    assert status == 503, problem
    assert problem["type"] == PROBLEM_BASE + "storage"
    assert "nothing was stored" in problem["detail"]
    async with fr.n.sessions() as s:
        assert (await s.execute(select(db.OutMessage))).scalars().all() == []
        assert (await s.execute(select(db.AuditRow))).scalars().all() == []
    # room again: the same request goes through and is delivered
    await cap_database(fr, cap, None)
    status, sent = await fr.api("POST", "/api/messages", GOOD)
    assert status == 201, sent
    await eventually(lambda: delivered(fr, sent["id"], br))

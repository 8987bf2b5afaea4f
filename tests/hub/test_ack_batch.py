"""Acknowledgements as one batch transaction, and pulls as one prebuilt statement.

A node acknowledges a whole batch of pushed items in one request, and every push
connection pulls on every wake-up: :meth:`Router.ack` does the whole batch in a few
statements (on SQLite on the group commit's writer thread) and :meth:`Router.pull`
is one statement (on SQLite on a reader thread of its own).  These tests hold them
to what the one-row-at-a-time versions did, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.util import await_only

from globe_io.hubapi import MailboxItem, MailboxPage
from hub import db, routing_sql
from hub.web import ACK_MAX_ITEMS
from protocol import canonical
from protocol.envelope import envelope_hash, parse_envelope
from protocol.errors import PROBLEM_BASE
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind, make_evidence

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant, Hub

NAMES = {
    "FR-PNF": "Parquet national financier",
    "DE-BKA": "Bundeskriminalamt",
    "ES-FCC": "Fiscalia contra la Corrupcion",
}


async def members(hub: Hub, *authorities: str) -> list[Applicant]:
    return [await hub.admit(a, NAMES[a]) for a in authorities]


def mid(envelope: bytes) -> str:
    return str(parse_envelope(envelope).header.message_id)


def refused(result: dict[str, Any]) -> list[str]:
    return [r["type"].removeprefix(PROBLEM_BASE) for r in result["refused"]]


async def snapshot(hub: Hub) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the acknowledgement path writes or reads."""
    return await hub.table_rows(db.MailboxItem, db.Delivery, db.Message)


async def notice_for(hub: Hub, member: Applicant, sender: Applicant) -> int:
    """Give ``member`` a receipt notice (``sender`` acknowledges its envelope); its cursor."""
    env = hub.seal(member, sender)
    (await hub.send(member, env)).ok(201)
    (await hub.ack(sender, [hub.receipt(sender, env)])).ok()
    *_, item = [i for i in (await hub.pull(member))["items"] if i["kind"] == "receipt"]
    cursor: int = item["cursor"]
    return cursor


def decode_notice(payload: bytes) -> tuple[bytes, bytes]:
    notice = canonical.decode(payload, max_size=16 * 1024, what="notice")
    assert set(notice) == {"receipt", "evidence"}
    assert isinstance(notice["receipt"], str)
    assert isinstance(notice["evidence"], str)
    return (
        canonical.b64d(notice["receipt"], what="receipt"),
        canonical.b64d(notice["evidence"], what="evidence"),
    )


# --- one request, many receipts ----------------------------------------------------------------


async def test_a_batch_releases_exactly_its_valid_receipts_and_refuses_in_request_order(
    hub: Hub,
) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    dropped = await notice_for(hub, de, fr)  # a notice of DE's, dropped by the same request
    e0, e1, e2 = (hub.seal(fr, de) for _ in range(3))
    from_es = hub.seal(es, de)
    for_es = hub.seal(fr, es)  # waits for ES only
    unsent = hub.seal(fr, de)  # never submitted
    for sender, env in ((fr, e0), (fr, e1), (es, from_es), (fr, e2), (fr, for_es)):
        (await hub.send(sender, env)).ok(201)
    hub.clock.advance(30)
    batch = [
        hub.receipt(de, e0),  # released
        hub.receipt(es, for_es),  # another member's receipt
        hub.receipt(de, for_es),  # DE's receipt for an envelope that does not wait for DE
        hub.receipt(de, unsent),  # an unknown message
        hub.receipt(de, e1, envelope_digest=envelope_hash(unsent)),  # other bytes than e1's
        hub.receipt(de, from_es),  # released: ES gets the notice
        hub.receipt(de, e0),  # the same receipt twice in one request
        hub.receipt(de, e2),  # released
    ]
    before = await snapshot(hub)

    result = (await hub.ack(de, batch, [dropped])).ok()

    assert result["released"] == [mid(e0), mid(from_es), mid(e2)]
    assert refused(result) == ["malformed", "not-found", "not-found", "not-found", "not-found"]
    details = [r["detail"] for r in result["refused"]]
    assert "acknowledged by its signer" in details[0]
    for detail, env in zip(details[1:], (for_es, unsent, e1, e0), strict=True):
        assert detail == f"no envelope {mid(env)} waits for DE-BKA with those bytes"
    assert result["notices"] == 1

    # Exactly the released envelopes left DE's mailbox, and its dropped notice.
    items = {(i.recipient, i.kind, i.message): i for i in await hub.rows(db.MailboxItem)}
    ids = {m.data: m.id for m in await hub.rows(db.Message)}
    assert {(r, k, m) for r, k, m in items if k == "envelope"} == {
        ("DE-BKA", "envelope", ids[e1]),
        ("ES-FCC", "envelope", ids[for_es]),
    }
    assert not [i for i in items.values() if i.recipient == "DE-BKA" and i.kind != "envelope"]
    deliveries = await hub.rows(db.Delivery)
    got = sorted((d.message, d.recipient, d.outcome, d.receipt, d.time) for d in deliveries)
    was = {(message, recipient) for _id, message, recipient, *_ in before["deliveries"]}
    new = [g for g in got if (g[0], g[1]) not in was]
    now = hub.now()
    assert new == sorted(
        (ids[env], "DE-BKA", "delivered", receipt, now)
        for env, receipt in ((e0, batch[0]), (from_es, batch[5]), (e2, batch[7]))
    )

    # One notice per release, in the sender's mailbox, in request order.
    notices = sorted(
        (i for i in await hub.rows(db.MailboxItem) if i.kind == "receipt"), key=lambda i: i.seq
    )
    fresh = [i for i in notices if i.created == now]
    assert [(i.recipient, i.message) for i in fresh] == [
        ("FR-PNF", None),
        ("ES-FCC", None),
        ("FR-PNF", None),
    ]
    node_view = await hub.directory()
    for item, env, receipt in zip(
        fresh, (e0, from_es, e2), (batch[0], batch[5], batch[7]), strict=True
    ):
        assert item.payload is not None
        assert item.size == len(item.payload)
        got_receipt, got_evidence = decode_notice(item.payload)
        assert got_receipt == receipt
        verified = DeliveryReceipt.decode(got_receipt, node_view)
        assert verified.matches(parse_envelope(env).header.message_id, envelope_hash(env))
        evidence = Evidence.decode(got_evidence, hub.genesis)
        assert evidence.kind is EvidenceKind.DELIVERED
        assert (str(evidence.message_id), evidence.envelope_hash) == (mid(env), envelope_hash(env))
        assert (evidence.sender, evidence.recipients, evidence.time) == (
            verified.sender,
            (de.authority,),
            now,
        )
        # The very bytes make_evidence signs (Ed25519 signatures are deterministic).
        assert got_evidence == make_evidence(
            genesis=hub.genesis, hub=hub.hub_key, kind=EvidenceKind.DELIVERED,
            message_id=verified.message_id, envelope_hash=verified.envelope_hash,
            sender=verified.sender, recipients=[de.authority], time=now,
        ).signed.encode()  # fmt: skip
    assert hub.router.metrics.receipts == 4  # the notice's receipt, then these three
    await hub.check_usage()

    # What was refused can still be released; what was released cannot be again.
    again = (await hub.ack(de, [hub.receipt(de, e1), hub.receipt(de, e2)])).ok()
    assert (again["released"], refused(again)) == ([mid(e1)], ["not-found"])
    await hub.check_usage()


async def test_the_largest_batch_is_one_request(hub: Hub) -> None:
    """As many receipts, and notice cursors, as one request may hold: one transaction,
    whatever the number of statement parameters it takes."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    count = ACK_MAX_ITEMS
    envelopes = [hub.seal(fr, de, content=b'{"n":%d}' % i) for i in range(count)]
    router, who = hub.router, hub.principal(fr)
    for env in envelopes:
        assert (await router.submit(env, who))[0] == 201
    receipts = [hub.receipt(de, env) for env in envelopes]
    result = await router.ack(hub.principal(de), receipts[::-1], [])
    assert list(result.released) == [mid(env) for env in envelopes[::-1]]
    assert result.refused == ()
    notices = (await router.pull(hub.principal(fr), 0, count)).items
    assert len(notices) == count
    assert [decode_notice(i.data)[0] for i in notices] == receipts[::-1]
    dropped = await router.ack(hub.principal(fr), [], [i.cursor for i in notices])
    assert dropped.notices == count
    assert await hub.rows(db.MailboxItem) == []
    assert len(await hub.rows(db.Delivery)) == count
    await hub.check_usage()


# --- all or nothing ------------------------------------------------------------------------------


def failure(raw: Any) -> Exception:
    """A storage failure as the path's driver raises it."""
    if raw is not None:
        return sqlite3.OperationalError("disk I/O error")
    return OperationalError("INSERT", {}, Exception("disk I/O error"))


@pytest.mark.parametrize("failing", ["deliveries", "notices"])
async def test_a_storage_failure_part_way_releases_nothing(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """The receipts (and notices) of one request commit together: a failure after the
    deletes ran leaves every row as it was, the counters too, and a retry succeeds."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    dropped = await notice_for(hub, de, fr)
    envs = [hub.seal(fr, de) for _ in range(4)]
    for env in envs:
        (await hub.send(fr, env)).ok(201)
    receipts = [hub.receipt(de, env) for env in envs]
    before, depth = await snapshot(hub), hub.router.depth()
    ran: list[int] = []

    if failing == "deliveries":
        real_deliveries = routing_sql.insert_deliveries

        def broken_deliveries(conn: Any, raw: Any, rows: Any) -> None:
            real_deliveries(conn, raw, rows)  # the statement runs; the transaction then fails
            ran.append(len(rows))
            raise failure(raw)

        monkeypatch.setattr(routing_sql, "insert_deliveries", broken_deliveries)
    else:
        real_items = routing_sql.insert_items

        def broken_items(conn: Any, raw: Any, mailbox: Any, links: Any) -> None:
            real_items(conn, raw, mailbox, links)
            ran.append(len(mailbox))
            raise failure(raw)

        monkeypatch.setattr(routing_sql, "insert_items", broken_items)

    (await hub.ack(de, receipts, [dropped])).problem(503, "storage")
    assert ran == [4]
    assert await snapshot(hub) == before
    assert hub.router.depth() == depth
    await hub.check_usage()

    monkeypatch.undo()
    again = (await hub.ack(de, receipts, [dropped])).ok()
    assert again == {"released": [mid(env) for env in envs], "refused": [], "notices": 1}
    assert len(await hub.rows(db.Delivery)) == 5
    await hub.check_usage()


async def test_a_release_taken_concurrently_is_refused_and_writes_nothing(
    hub: Hub, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    """Between the acknowledgement's select and its delete, another transaction (the
    expiry sweep, say) takes one of the envelopes: that receipt is refused, not found,
    and gets neither delivery nor notice; the others are released."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    envs = [hub.seal(fr, de) for _ in range(3)]
    for env in envs:
        (await hub.send(fr, env)).ok(201)
    ids = {m.data: m.id for m in await hub.rows(db.Message)}
    victim = ids[envs[1]]
    real = routing_sql.ack_candidates

    def racing(conn: Any, raw: Any, me: str, keys: Any) -> Any:
        rows = real(conn, raw, me, keys)
        assert victim in [row[2] for row in rows]
        take_elsewhere(db_url, victim)
        return rows

    monkeypatch.setattr(routing_sql, "ack_candidates", racing)
    result = await hub.router.ack(hub.principal(de), [hub.receipt(de, env) for env in envs], [])
    assert result.released == (mid(envs[0]), mid(envs[2]))
    assert [r.type.removeprefix(PROBLEM_BASE) for r in result.refused] == ["not-found"]
    deliveries = await hub.rows(db.Delivery)
    assert sorted(d.message for d in deliveries) == sorted([ids[envs[0]], ids[envs[2]]])
    assert [i.kind for i in await hub.rows(db.MailboxItem)] == ["receipt"] * 2


def take_elsewhere(db_url: str, message: int) -> None:
    """Delete DE's mailbox row of ``message`` in a transaction of another connection,
    committed before this returns (called inside the acknowledgement's transaction)."""
    url = make_url(db_url)
    sql = "DELETE FROM mailbox WHERE recipient = 'DE-BKA' AND message = "
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        other = sqlite3.connect(Path(url.database), timeout=30)
        try:
            with other:
                other.execute(sql + "?", (message,))
        finally:
            other.close()
        return

    async def delete() -> None:
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
        try:
            await conn.execute(sql + "$1", message)
        finally:
            await conn.close()

    await_only(delete())  # inside run_sync: the event loop runs it meanwhile


async def test_acknowledgements_share_the_group_commit_writer(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite an acknowledgement runs on the writer's thread (no second writer to
    contend for the database lock) and a pull on the reader's; on PostgreSQL neither
    thread exists."""
    fr, de = await members(hub, "FR-PNF", "DE-BKA")
    env = hub.seal(fr, de)
    (await hub.send(fr, env)).ok(201)
    threads: list[str] = []
    router = hub.router
    real_ack, real_pull = routing_sql.ack_transaction, routing_sql.sqlite_pull

    def ack_transaction(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real_ack(*args, **kwargs)

    def sqlite_pull(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real_pull(*args)

    monkeypatch.setattr(routing_sql, "ack_transaction", ack_transaction)
    monkeypatch.setattr(routing_sql, "sqlite_pull", sqlite_pull)
    (await hub.ack(de, [hub.receipt(de, env)])).ok()
    await hub.pull(fr)
    if hub.engine.dialect.name == "sqlite":
        assert [t.split("_")[0] for t in threads] == ["globe-sqlite-writer", "globe-sqlite-reader"]
    else:
        assert router._sqlite_writer is None
        assert router._sqlite_reader is None
        assert threads == [threading.current_thread().name]  # run_sync, on the loop


# --- pulls --------------------------------------------------------------------------------------


async def reference_page(hub: Hub, who: Applicant, after: int, limit: int) -> MailboxPage:
    """The page as the ORM query answers it (what pull returned before it was one
    prebuilt statement)."""
    async with hub.service.unit() as s:
        rows = (
            await s.execute(
                select(
                    db.MailboxItem.seq, db.MailboxItem.kind, db.MailboxItem.payload, db.Message.data
                )
                .outerjoin(db.Message, db.Message.id == db.MailboxItem.message)
                .where(db.MailboxItem.recipient == str(who.authority))
                .where(db.MailboxItem.seq > after)
                .order_by(db.MailboxItem.seq)
                .limit(limit)
            )
        ).all()
    return MailboxPage(
        items=tuple(
            MailboxItem(r.seq, r.kind, r.data if r.kind == "envelope" else r.payload or b"")
            for r in rows
        ),
        cursor=rows[-1].seq if rows else after,
    )


async def test_pull_pages_are_those_of_the_reference_query(hub: Hub) -> None:
    fr, de, es = await members(hub, "FR-PNF", "DE-BKA", "ES-FCC")
    assert await hub.router.pull(hub.principal(de), 0, 10) == MailboxPage(items=(), cursor=0)
    # DE's mailbox: envelopes from two senders, receipt notices, gaps left by releases,
    # with other members' items in between.
    sent: list[bytes] = []
    for i in range(12):
        sender = (fr, es)[i % 2]
        env = hub.seal(sender, de, content=b'{"n":%d}' % i)
        (await hub.send(sender, env)).ok(201)
        sent.append(env)
        if i % 3 == 0:
            (await hub.send(fr, hub.seal(fr, es))).ok(201)
        if i % 4 == 1:
            await notice_for(hub, de, fr)
    (await hub.ack(de, [hub.receipt(de, sent[3]), hub.receipt(de, sent[8])])).ok()
    await notice_for(hub, de, es)

    router, who = hub.router, hub.principal(de)
    everything = await reference_page(hub, de, 0, 1000)
    kinds = [i.kind for i in everything.items]
    assert kinds.count("envelope") == 10
    assert kinds.count("receipt") == 4
    cursors = [i.cursor for i in everything.items]
    assert cursors == sorted(cursors)
    middle = cursors[len(cursors) // 2]
    for after in (0, cursors[0], middle - 1, middle, cursors[-2], cursors[-1], 10**9):
        for limit in (1, 2, 5, 500):
            page = await router.pull(who, after, limit)
            assert page == await reference_page(hub, de, after, limit), (after, limit)
    # A whole walk by cursor reads every item once, in order.
    walked: list[MailboxItem] = []
    after = 0
    while page := await router.pull(who, after, 3):
        if not page.items:
            assert page.cursor == after
            break
        walked += page.items
        after = page.cursor
    assert tuple(walked) == everything.items
    # Over HTTP too: the same items, encoded.
    assert (await hub.pull(de, after=middle, limit=4)) == (
        await reference_page(hub, de, middle, 4)
    ).to_json()


def test_sqlite_statements_match_the_schema() -> None:
    """The acknowledgement's and the pull's plain SQLite statements name real columns."""
    deliveries = db.Delivery.__table__
    match = re.match(r"INSERT INTO (\w+) \(([^)]*)\) VALUES \(", routing_sql.SQLITE_DELIVERIES)
    assert match is not None
    assert match.group(1) == db.Delivery.__tablename__
    assert [c.strip() for c in match.group(2).split(",")] == list(routing_sql.DELIVERY_COLUMNS)
    assert routing_sql.SQLITE_DELIVERIES.count("?") == len(routing_sql.DELIVERY_COLUMNS)
    required = {c.name for c in deliveries.columns if not c.nullable and not c.primary_key}
    assert required <= set(routing_sql.DELIVERY_COLUMNS) <= {c.name for c in deliveries.columns}
    columns = {
        "mailbox": {c.name for c in db.MailboxItem.__table__.columns},
        "messages": {c.name for c in db.Message.__table__.columns},
        "batch": {"sender", "message_id"},
    }
    for sql in (routing_sql.SQLITE_CANDIDATES_TAIL, routing_sql.SQLITE_PULL):
        named = re.findall(r"\b(mailbox|messages|batch)\.(\w+)", sql)
        assert named
        for table, column in named:
            assert column in columns[table], (table, column)
    for sql in (routing_sql.SQLITE_TAKE_ENVELOPES, routing_sql.SQLITE_DROP_NOTICES):
        statement = sql + "?" + routing_sql.SQLITE_TAKE_TAIL
        assert statement.startswith("DELETE FROM mailbox WHERE ")
        used = set(re.findall(r"(\w+) (?:=|!=|IN) ", statement))
        used |= {c.strip() for c in statement.split("RETURNING")[1].split(",")}
        assert used == {"recipient", "kind", "seq", "size"} <= columns["mailbox"]

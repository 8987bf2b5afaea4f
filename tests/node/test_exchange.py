"""Nodes and a hub over loopback: the request workflow, both delivery paths, outages
(the hub down, a peer down or behind a proxy that answers 502), and what the sender
sees of a delivered message."""

from __future__ import annotations

import time

import pytest
from aiohttp import web
from sqlalchemy import select

from globe_io.httpguard import start_site
from globe_node import db
from globe_node.compartments import WHOLE_NODE
from protocol.errors import TransportError
from protocol.ids import AuthorityId
from protocol.membership import Action
from protocol.messages import Handling, Kind, Restriction, Tlp
from tests.node.helpers import delivered, inbox_ids, info, out_row, raw, recipient_states
from tests.node.network import Net, RunningNode, add_user
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_request_workflow_across_three_authorities(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")

    status, sent = await fr.api(
        "POST", "/api/messages",
        {"to": ["BR-PF", "KE-EACC"], "kind": "request", "subject": "Bank records of ACME Ltd",
         "body": "Please provide account statements 2023-2024.", "urgency": "urgent",
         "tlp": "AMBER", "restrictions": ["intelligence-only"], "case": "FR-2026-0042"},
    )  # fmt: skip
    assert status == 201, sent
    mid = sent["id"]
    await eventually(lambda: delivered(fr, mid, br, ke))
    states = await fr.n.outbox()
    assert {r: v.via for r, v in states[0].recipients.items()} == {
        "BR-PF": "direct", "KE-EACC": "direct"
    }  # fmt: skip
    for peer in (br, ke):
        assert await inbox_ids(peer) == [mid]
        got = (await peer.api("GET", f"/api/messages/{mid}"))[1]
        assert got["content"]["subject"] == "Bank records of ACME Ltd"
        assert got["content"]["restrictions"] == ["intelligence-only"]
        assert got["meta"]["sender"] == "FR-PNF"
    # The deadline follows the urgency (8 h by default) on both sides.
    out = await fr.n.requests()
    assert {r.counterpart for r in out} == {"BR-PF", "KE-EACC"}
    assert all(r.deadline - r.created == 8 * 3600 for r in out)
    incoming = await br.n.requests()
    assert [(r.direction, r.state, r.counterpart) for r in incoming] == [
        ("in", "received", "FR-PNF")
    ]

    # Acknowledgement with an expected date, then the answer, from Brazil.
    expected = int(time.time()) + 2 * 86400
    st, ack = await br.api(
        "POST", f"/api/messages/{mid}/status", {"state": "acknowledged", "expected": expected}
    )
    assert st == 201, ack
    await eventually(lambda: delivered(br, ack["id"], fr))
    row = next(r for r in await fr.n.requests() if r.counterpart == "BR-PF")
    assert (row.state, row.expected) == ("acknowledged", expected)
    st, ans = await br.api(
        "POST", f"/api/messages/{mid}/reply", {"kind": "answer", "body": "Statements attached."}
    )
    assert st == 201, ans
    await eventually(lambda: delivered(br, ans["id"], fr))
    rows = {r.counterpart: r for r in await fr.n.requests()}
    assert rows["BR-PF"].state == "answered"
    assert rows["KE-EACC"].state == "sent"
    assert (await br.n.requests())[0].state == "answered"
    # Kenya declines, with a reason.
    st, dec = await ke.api(
        "POST", f"/api/messages/{mid}/status", {"state": "declined", "reason": "no jurisdiction"}
    )
    assert st == 201, dec
    await eventually(lambda: delivered(ke, dec["id"], fr))
    rows = {r.counterpart: r for r in await fr.n.requests()}
    assert rows["KE-EACC"].state == "declined"
    report = await fr.n.stats.report(WHOLE_NODE, start=0, end=fr.n.now() + 1)
    sent = {r.counterpart: r for r in report.rows if (r.direction, r.kind) == ("sent", "request")}
    assert (sent["BR-PF"].count, sent["BR-PF"].answered, sent["KE-EACC"].declined) == (1, 1, 1)
    page = await fr.n.cases.page(
        WHOLE_NODE, state=None, team=None, assignee=None, limit=10, offset=0
    )
    assert [(c.case, c.counterparts) for c in page.cases] == [
        ("FR-2026-0042", ("BR-PF", "KE-EACC"))
    ]
    # France's inbox shows each reply once, in the case thread.
    assert sorted(await inbox_ids(fr)) == sorted([ack["id"], ans["id"], dec["id"]])


async def test_without_endpoint_the_hub_relays_and_receipts_come_back(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    mid = str(await fr.n.send([br.me], info()))
    await eventually(lambda: delivered(fr, mid, br))
    async with fr.n.sessions() as s:
        row = await s.get(db.OutRecipient, (mid, "BR-PF"))
        assert row is not None
        assert row.via == "hub"
        assert row.evidence is not None
        assert row.receipt is not None
    assert await inbox_ids(br) == [mid]
    # The hub released B's mailbox entry against the receipt (only notices may remain).
    assert net.service is not None
    from hub import db as hub_db  # noqa: PLC0415

    async with net.service.unit() as hs:
        waiting = (
            (
                await hs.execute(
                    select(hub_db.MailboxItem.kind).where(hub_db.MailboxItem.recipient == "BR-PF")
                )
            )
            .scalars()
            .all()
        )
    assert "envelope" not in waiting


async def test_hub_down_members_exchange_directly(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    await net.stop_hub()
    mid = str(await fr.n.send([br.me], info("Sent while the hub is down")))
    await eventually(lambda: delivered(fr, mid, br))
    assert await inbox_ids(br) == [mid]
    reply = str(await br.n.reply(mid, kind=Kind.ANSWER, body="Received."))
    await eventually(lambda: delivered(br, reply, fr))
    assert await inbox_ids(fr) == [reply]


async def test_peer_unreachable_goes_via_hub_and_completes_when_it_returns(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    await net.stop_node(br)
    mid = str(await fr.n.send([br.me], info("While Brazil is offline")))
    await eventually(lambda: recipient_states(fr, mid))
    await eventually(lambda: _state_is(fr, mid, "BR-PF", "sent"))
    await net.start_node(br)
    await eventually(lambda: delivered(fr, mid, br))
    assert await inbox_ids(br) == [mid]


async def test_a_proxy_answering_502_for_a_stopped_peer_sends_the_message_via_the_hub(
    net: Net,
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    await net.stop_node(br)
    assert br.peer_port is not None

    async def bad_gateway(_r: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>502 Bad Gateway</html>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", bad_gateway)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # the proxy answers at Brazil's certified endpoint while its node is down
    await start_site(runner, "127.0.0.1", br.peer_port.port, sock=br.peer_port.listener())
    try:
        ping = await fr.n.ping(br.me)
        assert ping["direct"] == {"ok": False, "ms": None, "error": "peer BR-PF answered HTTP 502"}
        assert ping["hub"]["ok"] is True
        mid = str(await fr.n.send([br.me], info("while Brazil's proxy answers 502")))

        async def relayed() -> bool:
            return (await recipient_states(fr, mid)).get("BR-PF") == "sent"

        await eventually(relayed)
        assert (await out_row(fr, mid, "BR-PF")).via == "hub"
    finally:
        await runner.cleanup()
    # (the first attempt may meet the proxy's closed keep-alive connection)
    await fr.n.ping(br.me)
    ping = await fr.n.ping(br.me)
    assert ping["direct"] == {
        "ok": False, "ms": None, "error": "peer BR-PF unreachable: ClientConnectorError"
    }  # fmt: skip
    await net.start_node(br)
    await eventually(lambda: delivered(fr, mid, br))


async def _state_is(rn: RunningNode, mid: str, who: str, state: str) -> bool:
    return (await recipient_states(rn, mid)).get(who) == state


async def test_the_sender_reads_its_delivered_message_without_an_audited_read(
    net: Net,
) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    mid = str(await fr.n.send([br.me], info("sent by France", case="C-7")))
    await eventually(lambda: delivered(fr, mid, br))
    status, got = await raw(fr, "GET", f"/api/messages/{mid}")
    assert status == 200
    assert got["direction"] == "out"
    assert got["content"]["subject"] == "sent by France"
    assert got["meta"]["sender"] == "FR-PNF"
    assert got["meta"]["recipients"]["BR-PF"]["state"] == "delivered"
    assert got["meta"]["recipients"]["BR-PF"]["via"] == "direct"
    async with fr.n.sessions() as s:
        actions = [r.action for r in (await s.execute(select(db.AuditRow))).scalars()]
    assert actions == ["send"]
    status, case = await raw(fr, "GET", "/api/cases/C-7")
    assert status == 200
    assert [(m["id"], m["direction"]) for m in case["messages"]] == [(mid, "out")]
    assert case["requests"] == []


async def test_revoked_member_is_refused_on_both_paths(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)
    await net.set_status("KE-EACC", Action.REVOKE, "membership withdrawn")
    await net.synced(fr, br)
    # A node refuses to send to a revoked member.
    from protocol.errors import MemberNotActive  # noqa: PLC0415

    with pytest.raises(MemberNotActive):
        await fr.n.send([ke.me], info())
    # The revoked member's own envelope (sealed before its node learnt of the
    # revocation) is refused by the recipient on the direct path and by the hub.
    assert ke.node is not None
    envelope = await _seal_from(ke, br)
    from protocol.errors import GlobeError  # noqa: PLC0415

    with pytest.raises(GlobeError) as direct:
        await ke.n.peers.post(br.peer_url, br.me, "/v1/inbox", envelope)
    assert direct.value.slug in ("unauthorized", "member-not-active")
    with pytest.raises(GlobeError) as relayed:
        await ke.n.hub.submit_message(envelope)
    assert relayed.value.slug in ("unauthorized", "member-not-active")
    assert await inbox_ids(br) == []


async def _seal_from(sender: RunningNode, to: RunningNode) -> bytes:
    """An envelope sealed by ``sender`` with its own (pre-revocation) directory view."""
    from protocol.envelope import SealTo, seal_envelope  # noqa: PLC0415

    n = sender.n
    now = n.now()
    member = n.state.members[to.me]
    return seal_envelope(
        genesis=n.genesis, sender=n.me, identity=sender.keys.identity,
        recipients=[SealTo(to.me, 1, member.certificate.ka_key())], content=info().encode(),
        created=now, expires=now + 3600, dir_seq=n.state.seq, dir_head=n.state.head,
    )  # fmt: skip


async def test_forward_of_restricted_material_needs_consent(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission")
    restricted = info(handling=Handling(Tlp.AMBER, frozenset({Restriction.NO_ONWARD})))
    mid = str(await fr.n.send([br.me], restricted))
    await eventually(lambda: delivered(fr, mid, br))
    st, refused = await br.api("POST", f"/api/messages/{mid}/forward", {"to": ["KE-EACC"]})
    assert st == 403
    assert refused["type"].endswith("/consent-required")
    assert await inbox_ids(ke) == []
    # Ask France; France grants for Kenya; then the forward goes.
    st, asked = await br.api(
        "POST", f"/api/messages/{mid}/request-consent",
        {"to": ["KE-EACC"], "purpose": "joint investigation"},
    )  # fmt: skip
    assert st == 201
    await eventually(lambda: delivered(br, asked["id"], fr))
    st, granted = await fr.api(
        "POST", f"/api/messages/{asked['id']}/consent", {"decision": "granted"}
    )
    assert st == 201, granted
    await eventually(lambda: delivered(fr, granted["id"], br))
    st, fwd = await br.api("POST", f"/api/messages/{mid}/forward", {"to": ["KE-EACC"]})
    assert st == 201, fwd
    await eventually(lambda: delivered(br, fwd["id"], ke))
    # TLP:CLEAR material forwards without consent.
    clear = str(await fr.n.send([br.me], info("Public bulletin", handling=Handling(Tlp.CLEAR))))
    await eventually(lambda: delivered(fr, clear, br))
    st, _ = await br.api("POST", f"/api/messages/{clear}/forward", {"to": ["KE-EACC"]})
    assert st == 201


async def test_local_api_roles_and_audit_chain(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier")
    br = await net.member("BR-PF", "Policia Federal")
    op_token = await add_user(fr.n, "ops", "operator")
    st, body = await fr.api("GET", "/api/inbox", token=op_token)
    assert st == 403
    assert body["type"].endswith("/forbidden")
    st, body = await fr.api("GET", "/api/status", token="not-a-token")  # noqa: S106
    assert st == 401
    assert body["type"].endswith("/unauthenticated")
    st, sent = await fr.api(
        "POST", "/api/messages",
        {"to": ["BR-PF"], "kind": "information", "subject": "s", "body": "b"},
    )  # fmt: skip
    assert st == 201
    await eventually(lambda: delivered(fr, sent["id"], br))
    await br.api("GET", f"/api/messages/{sent['id']}")
    st, audit = await br.api("GET", "/api/audit", token=await add_user(br.n, "sup", "supervisor"))
    assert st == 200
    assert audit["verified"] is True
    assert [(e["user"], e["action"]) for e in audit["entries"]] == [("alice", "read")]
    # Editing a row breaks the chain.
    async with br.n.sessions.begin() as s:
        row = await s.get(db.AuditRow, 1)
        assert row is not None
        row.subject = "something else"
    st, audit = await br.api("GET", "/api/audit")
    assert st == 403  # investigators do not read the audit log
    from globe_node.audit import AuditLog  # noqa: PLC0415

    _, ok = await AuditLog(br.n.store).entries()
    assert ok is False


async def test_unreachable_hub_backs_off_and_manual_retry_delivers(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_hub()
    mid = str(await fr.n.send([br.me], info("queued while the hub is down")))

    async def attempted() -> bool:
        async with fr.n.sessions() as s:
            row = await s.get(db.OutRecipient, (mid, "BR-PF"))
            return row is not None and row.attempts >= 2

    await eventually(attempted)
    async with fr.n.sessions() as s:
        row = await s.get(db.OutRecipient, (mid, "BR-PF"))
        assert row is not None
        assert row.state == "queued"
        assert row.last_error is not None
        assert "cannot reach the hub" in row.last_error
    assert fr.n.hub_reachable is False
    assert (await fr.n.status()).outbox == {"queued": 1}
    await net.start_hub()
    assert await fr.n.retry(mid) == 1
    await eventually(lambda: delivered(fr, mid, br))
    from globe_node.errors import NotFound  # noqa: PLC0415

    with pytest.raises(NotFound):
        await fr.n.retry("0" * 32)


async def test_expiry_at_the_hub_reaches_the_sender_as_non_delivery(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    await net.stop_node(br)
    mid = str(await fr.n.send([br.me], info("never collected")))
    await eventually(lambda: _state_is(fr, mid, "BR-PF", "sent"))
    assert net.router is not None
    net.hub_offset = fr.config.message_lifetime + 60
    assert await net.router.expire() == 1
    net.hub_offset = 0  # signed requests must fall in the hub's clock window again
    await fr.n.pull()
    async with fr.n.sessions() as s:
        row = await s.get(db.OutRecipient, (mid, "BR-PF"))
        assert row is not None
        assert (row.state, row.last_error) == ("failed", "expired undelivered")
        assert row.evidence is not None
    from protocol.receipts import Evidence, EvidenceKind  # noqa: PLC0415

    assert Evidence.decode(row.evidence, net.genesis).kind is EvidenceKind.NON_DELIVERY


async def test_hub_push_delivers_without_polling(net: Net) -> None:
    # A sync interval of an hour: only the WebSocket push can bring the message (the
    # wait for it is bounded far below the hour).
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False, sync_interval=3600.0)
    await eventually(lambda: br.n.push_connected)
    mid = str(await fr.n.send([br.me], info("pushed")))
    await eventually(lambda: _has(br, mid))
    async with br.n.sessions() as s:
        from sqlalchemy import select  # noqa: PLC0415

        via = (
            await s.execute(select(db.InMessage.via).where(db.InMessage.message_id == mid))
        ).scalar_one()
    assert via == "hub"


async def _has(rn: RunningNode, mid: str) -> bool:
    return mid in await inbox_ids(rn)


async def test_hub_refusal_is_kept_with_the_hubs_signed_rejection(net: Net) -> None:
    # France's directory lags (no periodic sync): it still thinks Kenya is active.
    fr = await net.member("FR-PNF", "Parquet national financier", sync_interval=3600.0)
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)
    await net.set_status("KE-EACC", Action.REVOKE, "membership withdrawn")

    async def hub_unreachable_for_prekeys(authority: AuthorityId) -> list[bytes]:
        raise TransportError("no route to the hub")

    fr.n.hub.get_prekeys = hub_unreachable_for_prekeys  # type: ignore[method-assign]
    mid = str(await fr.n.send([ke.me], info("to a member revoked meanwhile")))
    await eventually(lambda: _state_is(fr, mid, "KE-EACC", "failed"))
    async with fr.n.sessions() as s:
        row = await s.get(db.OutRecipient, (mid, "KE-EACC"))
        assert row is not None
        assert row.evidence is not None
    from protocol.receipts import Evidence, EvidenceKind  # noqa: PLC0415

    ev = Evidence.decode(row.evidence, net.genesis)
    assert (ev.kind, ev.reason, str(ev.message_id)) == (
        EvidenceKind.REJECTED, "member-not-active", mid
    )  # fmt: skip


async def test_a_hub_refusing_prekeys_makes_the_node_check_its_verified_log(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", sync_interval=3600.0)
    ke = await net.member("KE-EACC", "Ethics and Anti-Corruption Commission", endpoint=False)
    await net.set_status("KE-EACC", Action.REVOKE, "membership withdrawn")
    from protocol.errors import MemberNotActive  # noqa: PLC0415

    with pytest.raises(MemberNotActive):  # refused by the node's own, now synced, log
        await fr.n.send([ke.me], info())
    assert fr.n.state.members[ke.me].status.value == "revoked"
    assert await fr.n.outbox() == []


async def test_the_largest_message_text_goes_through_the_local_api(net: Net) -> None:
    fr = await net.member("FR-PNF", "Parquet national financier", endpoint=False)
    br = await net.member("BR-PF", "Policia Federal", endpoint=False)
    body = "A" * 1_000_000  # the content cap is 1 MiB less framing (§8)
    status, sent = await fr.api(
        "POST", "/api/messages", {"to": ["BR-PF"], "subject": "long", "body": body}
    )
    assert status == 201, sent
    await eventually(lambda: delivered(fr, sent["id"], br))
    _, content, _ = await br.n.content_of(sent["id"])
    assert content.body == body
    status, refused = await fr.api(
        "POST", "/api/messages", {"to": ["BR-PF"], "subject": "too long", "body": "A" * 1_100_000}
    )
    assert status == 400
    assert refused["type"].endswith("/usage")

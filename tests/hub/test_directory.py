"""The directory as a node sees it: the paged log, checkpoints, search, and a tampered database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from sqlalchemy import delete, update

from hub import db
from protocol import canonical
from protocol.directory import HeadRelation, MemberStatus, verify_log
from protocol.errors import ChainBroken, ProtocolError, QuorumNotMet
from protocol.membership import Action, Checkpoint, entry_hash, make_entry

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant, Hub

MEMBERS = [
    ("FR-PNF", "Parquet national financier", ["anti-corruption"], ["fr"]),
    ("DE-BKA", "Bundeskriminalamt", ["anti-corruption", "fiu"], ["de", "en"]),
    ("ES-FCC", "Fiscalia contra la Corrupcion", ["mla-central"], ["es"]),
    ("FR-AFA", "Agence francaise anticorruption", ["prevention"], ["en", "fr"]),
    ("IT-ANAC", "Autorita Nazionale Anticorruzione", ["prevention"], ["it"]),
]


async def _populate(hub: Hub) -> dict[str, Applicant]:
    members = {}
    for authority, name, kinds, languages in MEMBERS:
        members[authority] = await hub.admit(authority, name, kinds=kinds, languages=languages)
        hub.clock.advance(10)
    await hub.set_status(members["ES-FCC"], Action.SUSPEND, "pending investigation")
    hub.clock.advance(10)
    await hub.set_status(members["IT-ANAC"], Action.SUSPEND, "mandate expired")
    await hub.set_status(members["IT-ANAC"], Action.REVOKE, "mandate expired")
    return members


async def test_node_rebuilds_the_directory_from_the_paged_log(hub: Hub) -> None:
    await _populate(hub)
    entries, pages = await hub.log_entries(limit=2)
    assert len(entries) == 8
    assert pages == 4  # 2 + 2 + 2 + 2, the last page says there is no more
    unpaged, one = await hub.log_entries()
    assert (unpaged, one) == (entries, 1)
    page = (await hub.get("/v1/directory/log?since=6&limit=5")).ok()
    assert page["next"] is None
    assert [canonical.b64d(e, what="e") for e in page["entries"]] == entries[6:]
    assert (await hub.get("/v1/directory/log?since=8")).ok() == {"entries": [], "next": None}
    assert (await hub.get("/v1/directory/log?since=99")).ok() == {"entries": [], "next": None}

    # Only the pinned genesis and the served bytes.
    state = verify_log(hub.genesis, entries)
    assert state.seq == 8
    everyone = (await hub.get("/v1/directory/search?inactive=1")).ok()["results"]
    assert [(r["authority"], r["name"], r["status"]) for r in everyone] == [
        (str(m.authority), m.certificate.name, m.status.value)
        for m in sorted(state.members.values(), key=lambda m: str(m.authority))
    ]
    assert {r["authority"]: r["status"] for r in everyone} == {
        "DE-BKA": "active",
        "ES-FCC": "suspended",
        "FR-AFA": "active",
        "FR-PNF": "active",
        "IT-ANAC": "revoked",
    }
    for r in everyone:
        member = state.members[next(a for a in state.members if str(a) == r["authority"])]
        assert r["identity_key"] == str(member.certificate.identity_key.key_id)
        assert r["kinds"] == list(member.certificate.kinds)
        assert r["languages"] == list(member.certificate.languages)
        assert r["not_after"] == member.certificate.not_after
        assert r.get("reason") == (None if member.status is MemberStatus.ACTIVE else member.reason)

    reply = await hub.get("/v1/directory/checkpoint")
    assert reply.status == 200
    checkpoint = Checkpoint.decode(reply.body, hub.genesis)
    assert (checkpoint.seq, checkpoint.head) == (8, state.head)
    assert state.check_checkpoint(checkpoint) is HeadRelation.SAME
    assert checkpoint.time >= state.time
    # The hub's own verified state agrees with the node's.
    assert hub.service.state.head == state.head
    # An earlier view is a prefix of the served log (no rollback, no fork).
    verify_log(hub.genesis, entries, trusted=(3, verify_log(hub.genesis, entries[:3]).head))
    # The genesis the hub serves is the one pinned.
    assert (await hub.get("/v1/directory/genesis")).body == hub.genesis.encode()


async def test_empty_log_and_checkpoint(hub: Hub) -> None:
    assert (await hub.get("/v1/directory/log")).ok() == {"entries": [], "next": None}
    checkpoint = Checkpoint.decode((await hub.get("/v1/directory/checkpoint")).body, hub.genesis)
    assert (checkpoint.seq, checkpoint.head, checkpoint.time) == (0, hub.genesis.digest, hub.now())
    assert (await hub.get("/readyz")).ok() == {"status": "ready", "seq": 0}
    assert (await hub.get("/healthz")).ok() == {"status": "ok"}


async def test_search_filters(hub: Hub) -> None:
    await _populate(hub)

    async def search(query: str = "") -> list[str]:
        reply = await hub.get(f"/v1/directory/search{query}")
        return [r["authority"] for r in reply.ok()["results"]]

    assert await search() == ["DE-BKA", "FR-AFA", "FR-PNF"]
    assert await search("?country=FR") == ["FR-AFA", "FR-PNF"]
    assert await search("?country=ES") == []
    assert await search("?country=ES&inactive=1") == ["ES-FCC"]
    assert await search("?kind=fiu") == ["DE-BKA"]
    assert await search("?kind=anti-corruption") == ["DE-BKA", "FR-PNF"]
    assert await search("?kind=prevention") == ["FR-AFA"]
    assert await search("?kind=prevention&inactive=1") == ["FR-AFA", "IT-ANAC"]
    assert await search("?language=en") == ["DE-BKA", "FR-AFA"]
    assert await search("?language=fr&country=FR&kind=prevention") == ["FR-AFA"]
    assert await search("?q=bundes") == ["DE-BKA"]
    assert await search("?q=BUNDESKRIMINALAMT") == ["DE-BKA"]
    assert await search("?q=national%20financier") == ["FR-PNF"]
    assert await search("?q=anticorru") == ["FR-AFA"]
    assert await search("?q=anticorru&inactive=1") == ["FR-AFA", "IT-ANAC"]
    assert await search("?q=fr-") == ["FR-AFA", "FR-PNF"]  # the authority id is searched too
    assert await search("?q=nothing%20like%20this") == []
    assert await search("?inactive=1") == ["DE-BKA", "ES-FCC", "FR-AFA", "FR-PNF", "IT-ANAC"]
    assert await search("?inactive=0") == ["DE-BKA", "FR-AFA", "FR-PNF"]
    assert await search("?inactive=1&limit=2") == ["DE-BKA", "ES-FCC"]
    assert await search("?country=&kind=") == ["DE-BKA", "FR-AFA", "FR-PNF"]  # empty = no filter
    suspended = (await hub.get("/v1/directory/search?country=ES&inactive=1")).ok()["results"]
    assert suspended[0]["status"] == "suspended"
    assert suspended[0]["reason"] == "pending investigation"
    assert await search("?country=FRA") == ["FR-AFA", "FR-PNF"]  # a name's beginning: France
    for bad in ("?country=" + "x" * 101, "?q=%E2%80%8Bhid", "?limit=0", "?limit=501", "?limit=x"):
        (await hub.get(f"/v1/directory/search{bad}")).problem(400, "malformed")


# --- a database edited behind the hub's back --------------------------------------------------


async def _tamper(hub: Hub, seq: int, edit: Callable[[Any], None]) -> None:
    """Replace entry ``seq`` with ``edit(entry_json)`` re-encoded canonically."""
    (row,) = [r for r in await hub.rows(db.LogEntryRow) if r.seq == seq]
    entry = orjson.loads(row.data)
    edit(entry)
    data = canonical.encode(entry)
    assert data != row.data
    async with hub.service.sessions() as s, s.begin():
        await s.execute(
            update(db.LogEntryRow)
            .where(db.LogEntryRow.seq == seq)
            .values(data=data, hash=entry_hash(data))
        )


async def test_inserted_entry_without_admin_signatures_is_refused(hub: Hub) -> None:
    member = await hub.admit("FR-PNF", "Parquet national financier")
    await hub.admit("DE-BKA", "Bundeskriminalamt")
    # The hub's database gains a suspension no admin signed, with a perfect chain link.
    unsigned = await hub.status_action(member, Action.SUSPEND, "forged")
    assert unsigned.signed.signatures == ()
    state = hub.service.state
    entry = make_entry(
        genesis=hub.genesis,
        seq=state.seq + 1,
        prev=state.head,
        time=hub.now(),
        action=unsigned.signed,
    )
    async with hub.service.sessions() as s, s.begin():
        s.add(db.LogEntryRow(seq=3, hash=entry_hash(entry), data=entry, time=hub.now()))

    entries, _ = await hub.log_entries(limit=1)
    assert entries[2] == entry  # the hub serves it...
    with pytest.raises(QuorumNotMet):
        verify_log(hub.genesis, entries)  # ...and a node refuses it
    # The verified prefix is still usable.
    assert verify_log(hub.genesis, entries[:2]).seq == 2
    # A hub process restarted on this database refuses to start.
    with pytest.raises(QuorumNotMet):
        await hub.new_service()
    # The running hub notices too and stops reporting ready.
    (await hub.get("/readyz")).problem(403, "quorum-not-met")


async def test_edited_member_name_is_refused(hub: Hub) -> None:
    await hub.admit("FR-PNF", "Parquet national financier")
    await hub.admit("DE-BKA", "Bundeskriminalamt")

    def rename(entry: Any) -> None:
        payload = orjson.loads(canonical.b64d(entry["action"]["payload"], what="payload"))
        payload["certificate"]["name"] = "Parquet national financier (compromised)"
        entry["action"]["payload"] = canonical.b64e(canonical.encode(payload))

    await _tamper(hub, 1, rename)
    entries, _ = await hub.log_entries()
    # The admins' signatures no longer cover the payload: no quorum.
    with pytest.raises(QuorumNotMet) as refused:
        verify_log(hub.genesis, entries)
    assert isinstance(refused.value, ProtocolError)
    with pytest.raises(QuorumNotMet):
        await hub.new_service()


async def test_edited_entry_time_breaks_the_chain(hub: Hub) -> None:
    await hub.admit("FR-PNF", "Parquet national financier")
    await hub.admit("DE-BKA", "Bundeskriminalamt")

    def later(entry: Any) -> None:
        entry["time"] += 1  # outside the signed action: only the chain protects it

    await _tamper(hub, 1, later)
    entries, _ = await hub.log_entries()
    assert verify_log(hub.genesis, entries[:1]).seq == 1  # entry 1 alone still decodes
    with pytest.raises(ChainBroken) as refused:
        verify_log(hub.genesis, entries)
    assert isinstance(refused.value, ProtocolError)
    assert "log entry 2" in str(refused.value)
    with pytest.raises(ChainBroken):
        await hub.new_service()


async def test_deleted_entry_breaks_the_chain(hub: Hub) -> None:
    await hub.admit("FR-PNF", "Parquet national financier")
    await hub.admit("DE-BKA", "Bundeskriminalamt")
    await hub.admit("ES-FCC", "Fiscalia contra la Corrupcion")
    async with hub.service.sessions() as s, s.begin():
        await s.execute(delete(db.LogEntryRow).where(db.LogEntryRow.seq == 2))
    entries, _ = await hub.log_entries()
    assert len(entries) == 2
    with pytest.raises(ChainBroken):
        verify_log(hub.genesis, entries)
    with pytest.raises(ChainBroken):
        await hub.new_service()


async def test_restart_on_an_intact_database(hub: Hub) -> None:
    await _populate(hub)
    restarted = await hub.new_service()
    assert restarted.state.seq == hub.service.state.seq == 8
    assert restarted.state.head == hub.service.state.head
    # The transport-key index is rebuilt: an active member can authenticate, others cannot.
    active = {str(a) for a, m in restarted.state.members.items() if m.status.value == "active"}
    for authority in ("DE-BKA", "FR-AFA", "FR-PNF"):
        key = restarted.state.members[
            next(a for a in restarted.state.members if str(a) == authority)
        ].certificate.transport_key
        found = restarted.member_transport_key(key.key_id)
        assert found is not None
        assert str(found[0]) in active
    for m in restarted.state.members.values():
        if m.status.value != "active":
            assert restarted.member_transport_key(m.certificate.transport_key.key_id) is None

"""Profiles at the hub (PROTOCOL.md §6.7): a member publishes its own profile, the hub
checks it as every node will, appends it to the log and serves it in search; every
forgery is refused before anything is written.  Run on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pytest

from globe_io.hubapi import SearchResults
from hub import db
from hub.service import Principal
from protocol import canonical, labels
from protocol.directory import verify_log
from protocol.dirsearch import Query
from protocol.errors import MemberNotActive
from protocol.keys import SigningKey
from protocol.membership import Action, Certificate, make_action
from protocol.profile import Contact, Profile, ProfileEntry, decode_log_entry, make_profile
from protocol.signed import sign_object

if TYPE_CHECKING:
    from tests.hub.conftest import Applicant, Hub

DESK = Contact(role="duty-desk", label="Guardia", hours="24/7", languages=("en", "es"))


def profile(hub: Hub, member: Applicant, seq: int = 1, **fields: Any) -> bytes:
    return make_profile(
        genesis=hub.genesis,
        authority=member.authority,
        seq=seq,
        identity=member.identity,
        **fields,
    ).signed.encode()


def payload(hub: Hub, member: Applicant, **changes: Any) -> dict[str, Any]:
    return {
        "type": "profile", "v": 1, "network": canonical.b64e(hub.genesis.digest),
        "authority": str(member.authority), "seq": 1, "offences": [], "contacts": [], **changes,
    }  # fmt: skip


async def test_a_member_publishes_its_profile_and_search_shows_it(hub: Hub) -> None:
    es = await hub.admit(
        "ES-FCC", "Fiscalia contra la Corrupcion", kinds=["mla-central"], languages=["en", "es"]
    )
    await hub.admit("DE-BKA", "Bundeskriminalamt")
    body = profile(
        hub,
        es,
        offences=["bribery", "money-laundering"],
        time_zone="Europe/Madrid",
        contacts=[DESK],
        note="Solicitudes en español.",
    )
    reply = await hub.as_member(es, "PUT", "/v1/profile", body)
    assert reply.ok(201) == {"authority": "ES-FCC", "seq": 1, "entry": 3, "time": hub.now()}
    # The entry is in the log, verifiable from the genesis alone.
    entries, _ = await hub.log_entries()
    state = verify_log(hub.genesis, entries)
    entry = decode_log_entry(entries[-1], hub.genesis)
    assert isinstance(entry, ProfileEntry)
    assert entry.profile.signed.encode() == body
    assert state.head == hub.service.state.head
    audit = [r for r in await hub.rows(db.AuditRecord) if r.action == "profile"]
    assert [(r.actor, r.subject) for r in audit] == [("ES-FCC", "ES-FCC")]
    assert orjson.loads(audit[0].detail)["profile"] == 1
    # Search: by Arabic name, by offence area; the profile and the reasons come along.
    found = (
        await hub.get(
            "/v1/directory/search?country=%D8%A5%D8%B3%D8%A8%D8%A7%D9%86%D9%8A%D8%A7"
            "&offence=bribery"
        )
    ).ok()
    (result,) = found["results"]
    assert result["reasons"] == [
        {"field": "country", "value": "إسبانيا", "match": "exact", "language": "ar"},
        {"field": "offence", "value": "bribery", "match": "filter"},
    ]
    assert result["profile"] == {
        "seq": 1, "published": hub.now(), "offences": ["bribery", "money-laundering"],
        "time_zone": "Europe/Madrid",
        "contacts": [{"role": "duty-desk", "label": "Guardia", "hours": "24/7",
                      "languages": ["en", "es"]}],
        "note": "Solicitudes en español.",
    }  # fmt: skip
    assert SearchResults.from_json(found, what="search").results[0].profile is not None
    by_kind = (await hub.get("/v1/directory/search?kind=mla-central&country=Espagne")).ok()
    assert [r["authority"] for r in by_kind["results"]] == ["ES-FCC"]
    assert [r["authority"] for r in (await hub.get("/v1/directory/search?country=Alemania"))
            .ok()["results"]] == ["DE-BKA"]  # fmt: skip
    plain = (await hub.get("/v1/directory/search")).ok()["results"]
    assert [(r["authority"], r["reasons"], "profile" in r) for r in plain] == [
        ("DE-BKA", [], False), ("ES-FCC", [], True),
    ]  # fmt: skip
    # A second profile replaces the first; the first can never come back.
    hub.clock.advance(10)
    second = profile(hub, es, seq=2, offences=["embezzlement"])
    assert (await hub.as_member(es, "PUT", "/v1/profile", second)).ok(201)["entry"] == 4
    (await hub.as_member(es, "PUT", "/v1/profile", body)).problem(409, "replay")
    assert hub.service.state.member(es.authority).profile == Profile.decode(second, hub.genesis)


async def test_every_forged_profile_is_refused_before_anything_is_written(hub: Hub) -> None:
    es = await hub.admit("ES-FCC", "Fiscalia contra la Corrupcion")
    fr = await hub.admit("FR-PNF", "Parquet national financier")
    before = len(await hub.rows(db.LogEntryRow))

    async def refused(body: bytes, status: int, slug: str, who: Applicant = es) -> None:
        (await hub.as_member(who, "PUT", "/v1/profile", body)).problem(status, slug)

    by_transport = make_profile(
        genesis=hub.genesis, authority=es.authority, seq=1, identity=es.transport
    ).signed.encode()
    await refused(by_transport, 403, "not-certified")
    await refused(profile(hub, fr), 400, "malformed")  # FR-PNF's profile, sent by ES-FCC
    note = sign_object(payload(hub, es, note="n" * 1001), labels.PROFILE, [es.identity])
    await refused(note.encode(), 400, "malformed")
    bidi = payload(hub, es, contacts=[{"label": "Guardia\u202e", "role": "duty-desk"}])
    await refused(sign_object(bidi, labels.PROFILE, [es.identity]).encode(), 400, "malformed")
    extra = sign_object(payload(hub, es, person="A. Officer"), labels.PROFILE, [es.identity])
    await refused(extra.encode(), 400, "unknown-field")
    huge = sign_object(payload(hub, es, x="a" * 9000), labels.PROFILE, [es.identity])
    await refused(huge.encode(), 413, "size-limit")
    await refused(b"{" + b" " * 20_000 + b"}", 413, "size-limit")
    unsigned = sign_object(payload(hub, es), labels.PROFILE, [])
    await refused(unsigned.encode(), 401, "bad-signature")
    (await hub.request("PUT", "/v1/profile", profile(hub, es))).problem(401, "unauthorized")
    (await hub.admin("PUT", "/v1/profile", profile(hub, es))).problem(401, "unauthorized")
    assert len(await hub.rows(db.LogEntryRow)) == before


async def test_a_retired_key_and_an_inactive_member_publish_nothing(hub: Hub) -> None:
    es = await hub.admit("ES-FCC", "Fiscalia contra la Corrupcion")
    # update-keys: a new identity key; the old one is retired and signs no profile.
    state = await hub.directory()
    cur = state.members[es.authority].certificate
    new_identity = SigningKey.generate()
    cert = Certificate(
        es.authority,
        "ab" * 16,
        cur.name,
        cur.kinds,
        cur.languages,
        cur.endpoint,
        new_identity.verify_key,
        cur.transport_key,
        cur.ka_key_raw,
        hub.now(),
        cur.not_after,
        None,
    )
    rotate = make_action(
        genesis=hub.genesis,
        action=Action.UPDATE_KEYS,
        authority=es.authority,
        prev=state.members[es.authority].last_action,
        issued=hub.now(),
        certificate=cert,
    )
    assert (await hub.sign(rotate.signed.payload, 0, 1))[1].ok()["status"] == "appended"
    old = profile(hub, es)
    (await hub.as_member(es, "PUT", "/v1/profile", old)).problem(403, "not-certified")
    es.identity = new_identity
    (await hub.as_member(es, "PUT", "/v1/profile", profile(hub, es))).ok(201)
    # Suspended: its transport key authenticates nothing, and the service refuses as well.
    await hub.set_status(es, Action.SUSPEND, "inquiry")
    later = profile(hub, es, seq=2)
    (await hub.as_member(es, "PUT", "/v1/profile", later)).problem(401, "unauthorized")
    with pytest.raises(MemberNotActive):
        await hub.service.profiles.submit(
            later, Principal(es.transport.key_id, authority=es.authority)
        )
    hits = hub.service.search(Query(country="ES", include_inactive=True), limit=5).results
    assert [(h.status, h.profile is not None) for h in hits] == [("suspended", True)]

"""Member profiles (PROTOCOL.md §6.7): building, decoding, applying from the log, and the
refusals in their order; the vectors (tests/vectors/profile.json, invalid.json) pin the
bytes, these tests the API around them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from protocol import canonical, labels
from protocol.devnet import DevNetwork, build_devnet
from protocol.directory import DirectoryState, verify_log
from protocol.errors import (
    BadSignature,
    ChainBroken,
    MalformedError,
    MemberNotActive,
    NotCertified,
    ReplayError,
    UnknownMember,
    UsageError,
)
from protocol.fastlog import decode_entry
from protocol.ids import AuthorityId
from protocol.keys import SigningKey
from protocol.membership import Action, LogEntry
from protocol.profile import (
    CONTACT_ROLES,
    OFFENCE_AREAS,
    Contact,
    Profile,
    ProfileEntry,
    decode_log_entry,
    make_profile,
    make_profile_entry,
)
from protocol.signed import SignedObject, sign_object

MEMBERS = [("FR-PNF", "Parquet national financier"), ("ES-FCC", "Fiscalia contra la Corrupcion")]


@pytest.fixture
def net() -> DevNetwork:
    return build_devnet(b"profiles", members=MEMBERS)


def publish(net: DevNetwork, profile: Profile, time: int | None = None) -> bytes:
    state = net.directory
    raw = make_profile_entry(
        genesis=net.genesis,
        seq=state.seq + 1,
        prev=state.head,
        time=state.time + 10 if time is None else time,
        profile=profile.signed,
    )
    state.apply(raw)
    net.entries.append(raw)
    return raw


def es_profile(net: DevNetwork, seq: int = 1, **fields: Any) -> Profile:
    es = net.members["ES-FCC"]
    return make_profile(
        genesis=net.genesis, authority=es.authority, seq=seq, identity=es.identity, **fields
    )


def test_a_profile_round_trips_and_names_its_fields(net: DevNetwork) -> None:
    contact = Contact(
        role="duty-desk",
        label="Guardia",
        hours="24/7",
        languages=("en", "es"),
        email="guardia@fcc.example",
        phone="+34915550100",
    )
    made = es_profile(
        net,
        offences=["money-laundering", "bribery", "bribery"],
        time_zone="Europe/Madrid",
        contacts=[contact],
        note="Escríbanos.",
    )
    decoded = Profile.decode(made.signed.encode(), net.genesis)
    assert decoded == made
    assert decoded.offences == ("bribery", "money-laundering")
    assert decoded.contacts == (contact,)
    assert contact.to_json() == {
        "role": "duty-desk", "label": "Guardia", "hours": "24/7", "languages": ["en", "es"],
        "email": "guardia@fcc.example", "phone": "+34915550100",
    }  # fmt: skip
    assert Contact(role="legal").to_json() == {"role": "legal"}
    assert decoded.digest == made.signed.digest()
    payload = canonical.decode(made.signed.payload, max_size=8192, what="p")
    assert list(payload) == sorted(payload)
    assert "time_zone" in payload
    bare = es_profile(net)
    assert "time_zone" not in canonical.decode(bare.signed.payload, max_size=8192, what="p")
    assert (bare.time_zone, bare.note, bare.contacts, bare.offences) == (None, None, (), ())


def test_the_builder_refuses_what_could_not_apply(net: DevNetwork) -> None:
    with pytest.raises(UsageError, match=r"profile\.offences"):
        es_profile(net, offences=["fraud"])
    with pytest.raises(UsageError, match=r"time_zone"):
        es_profile(net, time_zone="CET")
    wide = Contact(role="duty-desk", label="\U0001f4de" * 120, hours="\U0001f552" * 120)
    with pytest.raises(UsageError, match=r"payload exceeds 8192"):
        es_profile(net, contacts=[wide] * 8, note="\U0001f4dd" * 1000)


def test_profiles_apply_from_the_log_and_replace_each_other(net: DevNetwork) -> None:
    first = es_profile(net, offences=["bribery"])
    raw = publish(net, first)
    entry = decode_log_entry(raw, net.genesis)
    assert isinstance(entry, ProfileEntry)
    assert decode_entry(raw, net.genesis) == entry
    assert entry.hash == net.directory.head
    member = net.directory.member(AuthorityId.parse("ES-FCC"))
    assert (member.profile, member.profile_time) == (first, entry.time)
    last_action, status = member.last_action, member.status
    second = es_profile(net, seq=5)  # numbers may be skipped
    publish(net, second)
    assert member.profile == second
    assert (member.last_action, member.status) == (last_action, status)
    # a whole replay from the genesis gives the same directory
    again = verify_log(net.genesis, net.entries)
    assert again.head == net.directory.head
    assert again.member(AuthorityId.parse("ES-FCC")).profile == second
    # action entries still decode as actions
    assert isinstance(decode_log_entry(net.entries[0], net.genesis), LogEntry)


def test_each_refusal_of_a_profile_in_order(net: DevNetwork) -> None:
    state: DirectoryState = net.directory
    es, fr = net.members["ES-FCC"], net.members["FR-PNF"]
    now = state.time + 10
    stranger = make_profile(
        genesis=net.genesis, authority=AuthorityId.parse("GB-SFO"), seq=1, identity=es.identity
    )
    with pytest.raises(UnknownMember):
        state.check_profile(stranger, now)
    by_fr = Profile.from_signed(
        sign_object(_payload(net), labels.PROFILE, [fr.identity]), net.genesis
    )
    with pytest.raises(NotCertified, match="not by the current identity key of ES-FCC"):
        state.check_profile(by_fr, now)
    two = sign_object(_payload(net), labels.PROFILE, [es.identity, es.transport])
    with pytest.raises(BadSignature, match="exactly the member's signature"):
        state.check_profile(Profile.from_signed(two, net.genesis), now)
    wrong_label = sign_object(_payload(net), labels.PREKEY, [es.identity])
    with pytest.raises(BadSignature):
        state.check_profile(Profile.from_signed(wrong_label, net.genesis), now)
    publish(net, es_profile(net, seq=2))
    with pytest.raises(ReplayError, match="profile 2 of ES-FCC does not follow profile 2"):
        state.check_profile(es_profile(net, seq=2), state.time)
    net.set_status("ES-FCC", Action.SUSPEND, "inquiry", state.time + 10)
    with pytest.raises(MemberNotActive):
        state.check_profile(es_profile(net, seq=3), state.time)


def _payload(net: DevNetwork, **changes: object) -> dict[str, object]:
    return {
        "type": "profile", "v": 1, "network": canonical.b64e(net.genesis.digest),
        "authority": "ES-FCC", "seq": 1, "offences": [], "contacts": [], **changes,
    }  # fmt: skip


def test_a_bad_profile_entry_leaves_the_directory_as_it_was(net: DevNetwork) -> None:
    state = net.directory
    seq, head = state.seq, state.head
    forged = make_profile_entry(
        genesis=net.genesis,
        seq=seq + 1,
        prev=head,
        time=state.time + 1,
        profile=sign_object(_payload(net), labels.PROFILE, [SigningKey.generate()]),
    )
    with pytest.raises(NotCertified):
        state.apply(forged)
    out_of_order = make_profile_entry(
        genesis=net.genesis,
        seq=seq + 2,
        prev=head,
        time=state.time + 1,
        profile=es_profile(net).signed,
    )
    with pytest.raises(ChainBroken):
        state.apply(out_of_order)
    assert (state.seq, state.head) == (seq, head)
    assert state.member(AuthorityId.parse("ES-FCC")).profile is None


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        ({"type": "prekey"}, "type must be 'profile'"),
        ({"network": canonical.b64e(bytes(32))}, "made for another network"),
        ({"offences": ["money-laundering", "bribery"]}, "profile.offences: sorted"),
        ({"contacts": [{"role": "boss"}]}, "profile.contacts[0].role"),
        ({"contacts": [{"role": "legal", "languages": ["fr", "en"]}]}, "sorted ISO 639-1"),
        ({"contacts": [{"role": "legal", "email": "a@b"}]}, "not an e-mail address"),
        ({"contacts": [{"role": "legal", "phone": "+0123456789"}]}, "an E.164 number"),
    ],
)
def test_field_refusals_name_the_field(net: DevNetwork, changes: dict[str, object], detail: str):
    es = net.members["ES-FCC"]
    signed = sign_object(_payload(net, **changes), labels.PROFILE, [es.identity])
    with pytest.raises(MalformedError, match=re.escape(detail)):
        Profile.from_signed(signed, net.genesis)


def test_the_vocabularies_are_closed_and_stable() -> None:
    assert list(OFFENCE_AREAS) == [
        "bribery", "foreign-bribery", "embezzlement", "trading-in-influence",
        "abuse-of-functions", "illicit-enrichment", "private-bribery", "private-embezzlement",
        "money-laundering", "concealment", "obstruction-of-justice",
    ]  # fmt: skip
    assert list(CONTACT_ROLES) == [
        "duty-desk", "international-cooperation", "mutual-legal-assistance", "asset-recovery",
        "extradition", "legal", "management", "technical",
    ]  # fmt: skip
    assert all(v for v in (*OFFENCE_AREAS.values(), *CONTACT_ROLES.values()))


def test_a_profile_container_is_the_signed_object_format(net: DevNetwork) -> None:
    p = es_profile(net)
    assert SignedObject.decode(p.signed.encode(), max_size=1 << 14, what="p") == p.signed

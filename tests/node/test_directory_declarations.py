"""The profile and search declarations of the local API, and their command-line rendering,
without a daemon: each refusal word for word, each rendering line by line."""

from __future__ import annotations

from typing import Any

import click
import pytest

from globe_node import apiprofile
from globe_node.cli.directory import parse_contact, render_profile, render_search
from protocol.errors import UsageError
from protocol.profile import Contact

CONTACTS = apiprofile.CONTACTS.shape
OFFENCES = apiprofile.OFFENCES.shape


def refusal(shape: Any, value: object, name: str) -> str:
    with pytest.raises(UsageError) as refused:
        shape.parse(value, name)
    return refused.value.detail


def test_offences_are_a_set_of_the_vocabulary() -> None:
    assert OFFENCES.parse(["money-laundering", "bribery", "bribery"], "offences") == (
        "bribery",
        "money-laundering",
    )
    assert refusal(OFFENCES, "bribery", "offences") == "'offences' is a list"
    assert refusal(OFFENCES, ["fraud"], "offences") == "'offences': unknown value 'fraud'"
    assert OFFENCES.dump(("bribery",)) == ["bribery"]
    schema = OFFENCES.schema()
    assert isinstance(schema, dict)
    assert schema["items"]["enum"][0] == "bribery"


def test_contacts_are_read_by_the_protocols_rules() -> None:
    parsed = CONTACTS.parse(
        [
            {"role": "duty-desk", "languages": ["es", "en"], "label": None},
            {"role": "legal", "languages": []},
        ],
        "contacts",
    )
    assert parsed == (
        Contact(role="duty-desk", languages=("en", "es")),
        Contact(role="legal"),
    )
    assert CONTACTS.dump(parsed) == [
        {"role": "duty-desk", "languages": ["en", "es"]},
        {"role": "legal"},
    ]
    assert refusal(CONTACTS, [{"role": "legal", "languages": ["es", "en", "es"]}], "contacts") == (
        "contacts[0].languages: each language once"
    )
    assert refusal(CONTACTS, {"role": "legal"}, "contacts") == (
        "'contacts' is a list of contact objects"
    )
    assert refusal(CONTACTS, [{"role": "legal"}] * 9, "contacts") == (
        "'contacts' lists at most 8 contact points"
    )
    assert refusal(CONTACTS, [{"label": "x"}], "contacts") == ("contacts[0]: missing field 'role'")
    assert refusal(CONTACTS, [{"role": "legal", "name": "A. Officer"}], "contacts") == (
        "contacts[0]: unknown field(s) ['name']"
    )
    assert refusal(CONTACTS, [{"role": "legal", "languages": "en"}], "contacts") == (
        "contacts[0].languages: must be an array"
    )


def test_the_time_zone_pattern_is_the_protocols() -> None:
    shape = apiprofile.TIME_ZONE.shape
    for zone in ("UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+1"):
        assert shape.parse(zone, "time_zone") == zone
    for zone in ("utc", "CET", "Europe/", "A/" + "b" * 63):
        assert refusal(shape, zone, "time_zone").startswith("'time_zone' is UTC or an IANA")


def test_search_results_render_with_their_reasons_and_profile() -> None:
    data = {
        "results": [
            {
                "authority": "ES-FCC", "status": "active", "kinds": ["mla-central"],
                "languages": ["es"], "name": "Fiscalia", "fingerprint": "1", "endpoint": None,
                "reasons": [
                    {"field": "country", "value": "España", "match": "exact", "language": "es"},
                    {"field": "kind", "value": "mla-central", "match": "filter", "language": None},
                ],
                "profile": {
                    "seq": 2, "published": 0, "offences": [], "time_zone": "Europe/Madrid",
                    "contacts": [{"role": "legal", "email": "l@fcc.example", "phone": "+3491555"},
                                 {"role": "duty-desk", "languages": []}],
                    "note": "Ask.",
                },
            }
        ]
    }  # fmt: skip
    assert render_search(data) == [
        "ES-FCC               active     mla-central                  es         Fiscalia",
        "                     fingerprint 1",
        "                     matched country España (es, exact); kind mla-central (filter)",
        "                     offences    -",
        "                     time zone   Europe/Madrid",
        "                     contact     legal l@fcc.example +3491555",
        "                     contact     duty-desk",
        "                     note        Ask.",
    ]
    assert render_search({"results": []}) == ["no matching members"]
    assert render_profile({"authority": "FR-PNF", "profile": None}) == [
        "FR-PNF has published no profile"
    ]


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("role=duty-desk", {"role": "duty-desk"}),
        (
            "role=legal; languages=fr, en ,;email=l@x.example",
            {"role": "legal", "languages": ["fr", "en"], "email": "l@x.example"},
        ),
    ],
)
def test_a_contact_on_the_command_line(spec: str, parsed: dict[str, Any]) -> None:
    assert parse_contact(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ("role=legal;name=A. Officer", "KEY=VALUE pairs"),
        ("role=legal;role=legal", "KEY=VALUE pairs"),
        ("role=legal;hours", "KEY=VALUE pairs"),
        ("label=x", "role=ROLE is required"),
        ("role=boss", "role=ROLE is required"),
    ],
)
def test_a_contact_on_the_command_line_refused(spec: str, detail: str) -> None:
    with pytest.raises(click.BadParameter, match=detail):
        parse_contact(spec)

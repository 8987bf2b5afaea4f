"""Countries by code or name in the GlobE working languages, and directory search over them
(protocol/countries.py, protocol/dirsearch.py; PROTOCOL.md §6.7 says search is local)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from protocol.canonical import has_hidden_chars
from protocol.countries import (
    LANGUAGES,
    CountryMatch,
    Quality,
    country_names,
    fold,
    match_countries,
    match_quality,
)
from protocol.data.countries import NAMES
from protocol.devnet import DevNetwork, build_devnet
from protocol.dirsearch import FIELDS, MATCHES, Query, Reason, search
from protocol.ids import ISO_COUNTRIES, AuthorityId
from protocol.membership import Action
from protocol.profile import make_profile, make_profile_entry

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_names_every_country_in_the_four_languages() -> None:
    assert set(NAMES) == ISO_COUNTRIES
    assert LANGUAGES == ("ar", "en", "fr", "es")
    assert all(len(names) == 4 and all(names) for names in NAMES.values())
    assert not [n for names in NAMES.values() for n in names if has_hidden_chars(n)]
    assert country_names("ES") == {"ar": "إسبانيا", "en": "Spain", "fr": "Espagne", "es": "España"}
    assert country_names("XX") == {}


def test_the_generator_reproduces_the_checked_in_table() -> None:
    spec = importlib.util.spec_from_file_location("gen_countries", ROOT / "tools/gen_countries.py")
    assert spec is not None
    assert spec.loader is not None
    generator: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    expected = (ROOT / "protocol/data/countries.py").read_text(encoding="utf-8")
    assert generator.render() == expected
    assert generator.main([]) == 0


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("  Côte d’Ivoire ", "cote d ivoire"),  # noqa: RUF001 - CLDR's apostrophe
        ("ÉTATS-UNIS", "etats unis"),
        ("España", "espana"),
        ("Straße", "strasse"),
        ("Færøerne Œuvre Øst Łódź Đakovo Þing", "faeroerne oeuvre ost lodz dakovo thing"),
        ("إِسْبَانِيَا", "اسبانيا"),  # tashkeel removed
        ("ألمانيا", "المانيا"),  # alef with hamza above
        ("إسبانيا", "اسبانيا"),  # alef with hamza below
        ("آسيا", "اسيا"),  # alef with madda
        ("ٱلقاهرة", "القاهره"),  # alef wasla, ta marbuta
        ("مصـــر", "مصر"),  # tatweel
        ("موسى", "موسي"),  # alef maksura
        ("مسؤول", "مسوول"),  # hamza on waw
        ("رئيس", "رييس"),  # hamza on ya
        ("جزء", "جز"),  # a lone hamza
        ("ایران کشور", "ايران كشور"),  # Persian ya and kaf
        ("٢٠٢٦ ۱۴", "2026 14"),  # Arabic-Indic digits
        ("", ""),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_match_quality() -> None:
    assert match_quality("", "spain") is None
    assert match_quality("spain", "spain") is Quality.EXACT
    assert match_quality("spa", "spain") is Quality.PREFIX
    assert match_quality("pa", "spain") is Quality.SUBSTRING
    assert match_quality("p", "spain") is None  # one letter: beginnings only
    assert match_quality("s", "spain") is Quality.PREFIX
    assert [q.label for q in Quality] == ["code", "exact", "prefix", "substring"]


@pytest.mark.parametrize(
    ("query", "code", "expected"),
    [
        ("ES", "ES", CountryMatch("ES", Quality.CODE)),
        ("es", "ES", CountryMatch("ES", Quality.CODE)),
        ("إسبانيا", "ES", CountryMatch("ES", Quality.EXACT, "إسبانيا", "ar")),
        ("اسبانيا", "ES", CountryMatch("ES", Quality.EXACT, "إسبانيا", "ar")),
        ("Alemania", "DE", CountryMatch("DE", Quality.EXACT, "Alemania", "es")),
        ("allemagne", "DE", CountryMatch("DE", Quality.EXACT, "Allemagne", "fr")),
        ("Egypte", "EG", CountryMatch("EG", Quality.EXACT, "Égypte", "fr")),
        ("etats-unis", "US", CountryMatch("US", Quality.EXACT, "États-Unis", "fr")),
        ("cote d'ivoire", "CI", CountryMatch("CI", Quality.EXACT, "Côte d’Ivoire", "en")),  # noqa: RUF001
        ("Fra", "FR", CountryMatch("FR", Quality.PREFIX, "France", "en")),
        ("kingdom", "GB", CountryMatch("GB", Quality.SUBSTRING, "United Kingdom", "en")),
        ("المتحدة", "GB", CountryMatch("GB", Quality.SUBSTRING, "المملكة المتحدة", "ar")),
    ],
)
def test_match_countries(query: str, code: str, expected: CountryMatch) -> None:
    assert match_countries(query)[code] == expected


def test_a_code_beats_a_name_and_nothing_matches_nothing() -> None:
    found = match_countries("Es")
    assert found["ES"].quality is Quality.CODE
    assert found["EE"].quality is Quality.PREFIX  # Estonia
    assert match_countries("qj") == {}
    assert match_countries("   ") == {}


# --- search over a directory -------------------------------------------------------------


@pytest.fixture(scope="module")
def net() -> DevNetwork:
    members = [
        ("DE-BKA", "Bundeskriminalamt"),
        ("EG-ACA", "Administrative Control Authority"),
        ("ES-FCC", "Fiscalia contra la Corrupcion"),
        ("FR-PNF", "Parquet national financier"),
        ("GB-SFO", "Serious Fraud Office"),
    ]
    net = build_devnet(b"search", members=members)
    es = net.members["ES-FCC"]
    state = net.directory
    profile = make_profile(
        genesis=net.genesis,
        authority=es.authority,
        seq=1,
        identity=es.identity,
        offences=["bribery", "money-laundering"],
    )
    state.apply(
        make_profile_entry(
            genesis=net.genesis,
            seq=state.seq + 1,
            prev=state.head,
            time=state.time + 1,
            profile=profile.signed,
        )
    )
    net.set_status("GB-SFO", Action.SUSPEND, "inquiry", state.time + 2)
    return net


def found(net: DevNetwork, **query: Any) -> list[tuple[str, tuple[Reason, ...]]]:
    return [(str(h.member.authority), h.reasons) for h in search(net.directory, Query(**query))]


def test_search_by_country_name_in_each_language(net: DevNetwork) -> None:
    assert found(net, country="إسبانيا") == [
        ("ES-FCC", (Reason("country", "إسبانيا", "exact", "ar"),))
    ]
    assert found(net, country="Alemania") == [
        ("DE-BKA", (Reason("country", "Alemania", "exact", "es"),))
    ]
    assert found(net, country="egypte") == [
        ("EG-ACA", (Reason("country", "Égypte", "exact", "fr"),))
    ]
    assert found(net, country="fr") == [("FR-PNF", (Reason("country", "FR", "code"),))]
    assert found(net, country="royaume") == []  # GB is suspended
    assert [a for a, _ in found(net, country="royaume", include_inactive=True)] == ["GB-SFO"]


def test_search_ranks_and_filters(net: DevNetwork) -> None:
    # "es": ES by code and id prefix, then DE-BKA ("Bundes...") by a part of its name
    assert found(net, text="es") == [
        ("ES-FCC", (Reason("authority", "ES-FCC", "prefix"), Reason("country", "ES", "code"))),
        ("DE-BKA", (Reason("name", "Bundeskriminalamt", "substring"),)),
    ]
    assert found(net, text="corrupcion") == [
        ("ES-FCC", (Reason("name", "Fiscalia contra la Corrupcion", "substring"),))
    ]
    assert found(net, offence="bribery") == [("ES-FCC", (Reason("offence", "bribery", "filter"),))]
    assert found(net, offence="concealment") == []
    assert found(net, kind="anti-corruption", language="en", country="Espagne") == [
        ("ES-FCC", (Reason("country", "Espagne", "exact", "fr"),
                    Reason("kind", "anti-corruption", "filter"),
                    Reason("language", "en", "filter"))),
    ]  # fmt: skip
    assert found(net, kind="fiu") == []
    assert found(net, country="Espagne", text="nothing") == []
    everyone = [a for a, reasons in found(net) if reasons == ()]
    assert everyone == ["DE-BKA", "EG-ACA", "ES-FCC", "FR-PNF"]  # by id when nothing ranks
    assert {r.field for _, rs in found(net, text="a") for r in rs} <= set(FIELDS)
    assert {r.match for _, rs in found(net, text="a") for r in rs} <= set(MATCHES)
    assert AuthorityId.parse("ES-FCC") in net.directory.members

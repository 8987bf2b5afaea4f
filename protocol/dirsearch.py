"""Directory search: ranked matches over a verified directory, each with its reasons.

Search is local (each node over its own verified directory, the hub over its own)
and not part of the wire protocol; only the vocabularies it filters by are
(docs/PROTOCOL.md §6.7): competences are the certificate's ``kinds``, offence
areas the profile's ``offences``, languages the certificate's ``languages``.

* ``country`` matches a member's country by ISO code or by name in Arabic,
  English, French or Spanish (:mod:`protocol.countries`);
* ``text`` matches the authority id, the member's name, or its country as
  ``country`` does;
* ``kind``, ``offence`` and ``language`` are exact filters.

Results are ranked: a code match before a whole name, a whole name before a
beginning, a beginning before a part (:class:`~protocol.countries.Quality`); the
country query ranks first, then the text; equal ranks are in authority-id order.
Each hit says why it matched (:class:`Reason`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from protocol.countries import CountryMatch, Quality, fold, match_countries, match_quality
from protocol.directory import DirectoryState, Member, MemberStatus

__all__ = ["FIELDS", "MATCHES", "Hit", "Query", "Reason", "search"]

#: What a reason names: the part of the entry that matched.
FIELDS: Final = ("country", "authority", "name", "kind", "offence", "language")
#: How it matched: the :class:`~protocol.countries.Quality` labels, or ``filter`` (equal).
MATCHES: Final = (*(q.label for q in Quality), "filter")
#: Rank of a query part that was not given (after every real match).
_UNRANKED: Final = len(Quality)


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason a member matched: the field, the value that matched and how.

    ``language`` is the language of a country name (``ar``, ``en``, ``fr``, ``es``).
    """

    field: str
    value: str
    match: str
    language: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """A directory search; every part given must match."""

    country: str | None = None
    text: str | None = None
    kind: str | None = None
    offence: str | None = None
    language: str | None = None
    include_inactive: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """A member that matched, its rank (lower is better) and the reasons."""

    member: Member
    rank: tuple[int, int]
    reasons: tuple[Reason, ...]


def _country_reason(code: str, matches: dict[str, CountryMatch]) -> tuple[Quality, Reason] | None:
    found = matches.get(code)
    if found is None:
        return None
    value = found.code if found.name is None else found.name
    return found.quality, Reason("country", value, found.quality.label, found.language)


def _text_reasons(m: Member, needle: str, countries: dict[str, CountryMatch]) -> list[Reason]:
    out: list[Reason] = []
    for field, value in (("authority", str(m.authority)), ("name", m.certificate.name)):
        quality = match_quality(needle, fold(value))
        if quality is not None:
            out.append(Reason(field, value, quality.label))
    by_country = _country_reason(m.authority.country, countries)
    if by_country is not None:
        out.append(by_country[1])
    return out


def _best(reasons: Iterable[Reason]) -> int:
    ranks = [Quality[r.match.upper()] for r in reasons if r.match != "filter"]
    return min(ranks, default=_UNRANKED)


def _filters(m: Member, q: Query) -> list[Reason] | None:
    """The filter reasons, or ``None`` if a filter excludes the member."""
    out: list[Reason] = []
    cert = m.certificate
    offences = m.profile.offences if m.profile is not None else ()
    for field, wanted, have in (
        ("kind", q.kind, cert.kinds),
        ("offence", q.offence, offences),
        ("language", q.language, cert.languages),
    ):
        if wanted is None:
            continue
        if wanted not in have:
            return None
        out.append(Reason(field, wanted, "filter"))
    return out


def search(state: DirectoryState, query: Query) -> list[Hit]:
    """The members matching every part of ``query``, best first (module docstring)."""
    countries = match_countries(query.country) if query.country is not None else {}
    needle = fold(query.text) if query.text is not None else ""
    text_countries = match_countries(query.text) if query.text is not None else {}
    hits: list[Hit] = []
    for m in state.members.values():
        if not query.include_inactive and m.status is not MemberStatus.ACTIVE:
            continue
        filters = _filters(m, query)
        if filters is None:
            continue
        country_rank, reasons = _UNRANKED, list[Reason]()
        if query.country is not None:
            by_country = _country_reason(m.authority.country, countries)
            if by_country is None:
                continue
            country_rank, reasons = by_country[0], [by_country[1]]
        text_rank = _UNRANKED
        if query.text is not None:
            found = _text_reasons(m, needle, text_countries)
            if not found:
                continue
            text_rank, reasons = _best(found), [*reasons, *found]
        hits.append(Hit(m, (country_rank, text_rank), (*reasons, *filters)))
    hits.sort(key=lambda h: (h.rank, str(h.member.authority)))
    return hits

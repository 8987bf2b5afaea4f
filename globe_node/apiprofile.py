"""The directory's routes of the local API: search with reasons, and this node's profile.

Declared once, like the rest of the API (:mod:`globe_node.apiparams`): the query of
``GET /api/directory/search``, the body of ``PUT /api/profile``, and the schemas of
a profile, a contact point and a search reason.  The vocabularies, bounds and
patterns are the protocol's own (:mod:`protocol.profile`, PROTOCOL.md §6.7), so
the node refuses with a ``usage`` problem exactly what the protocol would refuse.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from globe_node.apiparams import JsonBody, Shape, Text, defaulted, optional, shown
from globe_node.apischema import (
    Component,
    JsonObject,
    closed_object,
    ecma,
    multiline_text,
    nullable,
    one_line_text,
)
from protocol.canonical import ObjectReader
from protocol.countries import LANGUAGES
from protocol.dirsearch import FIELDS, MATCHES, Reason
from protocol.errors import GlobeError, UsageError
from protocol.profile import (
    CONTACT_ROLES,
    EMAIL_RE,
    MAX_CONTACT_LANGUAGES,
    MAX_CONTACTS,
    MAX_LABEL,
    MAX_NOTE,
    OFFENCE_AREAS,
    PHONE_RE,
    Contact,
    Profile,
)

__all__ = [
    "CONTACTS", "CONTACT_POINT", "MATCH_REASON", "NOTE", "OFFENCES", "PROFILE", "PROFILE_BODY",
    "PROFILE_MAX_BODY", "PROFILE_VIEW", "TIME_ZONE", "TIME_ZONE_PATTERN", "Contacts", "Terms",
    "profile_json", "reason_json",
]  # fmt: skip

#: The API's limit on the whole body of ``PUT /api/profile`` (a profile is at most 8 KiB).
PROFILE_MAX_BODY: Final = 64 * 1024
#: ``UTC`` or an IANA zone name, at most 64 characters (``protocol.profile``'s rule).
TIME_ZONE_PATTERN: Final = "(?=.{1,64}$)(?:UTC|[A-Z][A-Za-z_-]*(?:/[A-Za-z0-9_+-]+){1,2})"
_LANGUAGE: Final = {"type": "string", "pattern": "^[a-z]{2}$"}


@dataclasses.dataclass(frozen=True, slots=True)
class Terms(Shape[tuple[str, ...]]):
    """A list of terms of a closed vocabulary, as a sorted set (repeats are harmless)."""

    vocabulary: tuple[str, ...]

    def schema(self) -> JsonObject:
        """An array of the vocabulary's terms."""
        return {"type": "array", "items": {"type": "string", "enum": list(self.vocabulary)}}

    def parse(self, value: object, name: str) -> tuple[str, ...]:
        """The terms, sorted, each once."""
        if not isinstance(value, list):
            raise UsageError(f"'{name}' is a list")
        for v in value:
            if v not in self.vocabulary:
                raise UsageError(f"'{name}': unknown value {shown(v)}")
        return tuple(sorted(set(value)))

    def dump(self, value: tuple[str, ...]) -> object:
        """The terms."""
        return list(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Contacts(Shape[tuple[Contact, ...]]):
    """Up to ``max_items`` contact points (PROTOCOL.md §6.7: roles, never people)."""

    max_items: int

    def schema(self) -> JsonObject:
        """An array of contact points."""
        return {"type": "array", "items": NEW_CONTACT_POINT, "maxItems": self.max_items}

    def parse(self, value: object, name: str) -> tuple[Contact, ...]:
        """The contacts, each checked by the protocol's rules (a ``usage`` refusal)."""
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            raise UsageError(f"'{name}' is a list of contact objects")
        if len(value) > self.max_items:
            raise UsageError(f"'{name}' lists at most {self.max_items} contact points")
        return tuple(_contact(c, f"{name}[{i}]") for i, c in enumerate(value))

    def dump(self, value: tuple[Contact, ...]) -> object:
        """The contacts as JSON."""
        return [c.to_json() for c in value]


def _contact(obj: Mapping[str, Any], what: str) -> Contact:
    """One contact, read by the protocol's own reader (``null`` is absent; languages in any
    order, each once)."""
    clean: dict[str, Any] = {k: v for k, v in obj.items() if v is not None}
    languages = clean.get("languages")
    if isinstance(languages, list) and all(isinstance(x, str) for x in languages):
        if len(set(languages)) != len(languages):
            raise UsageError(f"{what}.languages: each language once")
        clean["languages"] = sorted(languages)
        if not languages:
            del clean["languages"]
    try:
        return Contact.read(ObjectReader(clean, what), what)
    except GlobeError as exc:
        raise UsageError(exc.detail) from None


# --- the profile body ------------------------------------------------------------------------

OFFENCES = defaulted(
    "offences", Terms(tuple(OFFENCE_AREAS)), (), "Offence areas the authority handles."
)
TIME_ZONE = optional(
    "time_zone",
    Text("UTC or an IANA time zone name (e.g. Europe/Paris)", pattern=TIME_ZONE_PATTERN),
    "The authority's time zone.",
)
CONTACTS = defaulted(
    "contacts",
    Contacts(MAX_CONTACTS),
    (),
    "Contact points: a duty desk and named roles, never a person; an e-mail address or a "
    "telephone number only to publish it.",
)
_NOTE_TEXT: Final = Text(
    f"1-{MAX_NOTE} characters without control, bidi or zero-width characters (tab and "
    "newline allowed)",
    min_len=1,
    max_len=MAX_NOTE,
    pattern=multiline_text(),
)
NOTE = optional("note", _NOTE_TEXT, "How to work with the authority (what to send, when).")
PROFILE_BODY = JsonBody(
    "Profile",
    "This node's whole profile: what is absent is not published (PROTOCOL.md §6.7).",
    (OFFENCES, TIME_ZONE, CONTACTS, NOTE),
    PROFILE_MAX_BODY,
)


# --- answers ---------------------------------------------------------------------------------

#: A contact's label or hours as the protocol reads them: one line, nothing hidden.
_LABEL: Final = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_LABEL,
    "pattern": f"^{one_line_text()}$",
}
_CONTACT_OPTIONAL: Final = ("label", "hours", "languages", "email", "phone")


def _contact_schema(*, nulls: bool) -> JsonObject:
    """A contact point; with ``nulls``, as a body may send it (``null`` is absent)."""
    optional_props: dict[str, JsonObject] = {
        "label": _LABEL,
        "hours": _LABEL,
        "languages": {
            "type": "array",
            "items": _LANGUAGE,
            "maxItems": MAX_CONTACT_LANGUAGES,
            "uniqueItems": True,
        },
        "email": {"type": "string", "maxLength": 254, "pattern": f"^{ecma(EMAIL_RE)}$"},
        "phone": {"type": "string", "pattern": f"^{ecma(PHONE_RE)}$"},
    }
    if nulls:
        optional_props = {k: nullable(v) for k, v in optional_props.items()}
    return closed_object(
        "A contact point: a role or desk, never a person."
        + (" `null` is the same as absent." if nulls else ""),
        {"role": {"type": "string", "enum": list(CONTACT_ROLES)}, **optional_props},
        optional=_CONTACT_OPTIONAL,
    )


CONTACT_POINT = Component("ContactPoint", lambda: _contact_schema(nulls=False))
NEW_CONTACT_POINT = Component("NewContactPoint", lambda: _contact_schema(nulls=True))
PROFILE = Component(
    "MemberProfile",
    lambda: closed_object(
        "A member's current profile, verified from the membership log.",
        {
            "seq": {"type": "integer", "minimum": 1},
            "published": {"type": "integer", "minimum": 0},
            "offences": {"type": "array", "items": {"type": "string", "enum": list(OFFENCE_AREAS)}},
            "time_zone": nullable({"type": "string"}),
            "contacts": {"type": "array", "items": CONTACT_POINT},
            "note": nullable({"type": "string"}),
        },
    ),
)
MATCH_REASON = Component(
    "MatchReason",
    lambda: closed_object(
        "Why a member matched: the field, the value that matched (a country name in "
        "`language`) and how.",
        {
            "field": {"type": "string", "enum": list(FIELDS)},
            "value": {"type": "string"},
            "match": {"type": "string", "enum": list(MATCHES)},
            "language": nullable({"type": "string", "enum": list(LANGUAGES)}),
        },
    ),
)
PROFILE_VIEW = Component(
    "OwnProfile",
    lambda: closed_object(
        "This node's profile as its verified directory has it (`null`: none published).",
        {"authority": {"type": "string"}, "profile": nullable(PROFILE)},
    ),
)


def profile_json(profile: Profile, published: int) -> dict[str, Any]:
    """A profile as the local API shows it (:data:`PROFILE`)."""
    return {
        "seq": profile.seq,
        "published": published,
        "offences": list(profile.offences),
        "time_zone": profile.time_zone,
        "contacts": [c.to_json() for c in profile.contacts],
        "note": profile.note,
    }


def reason_json(reason: Reason) -> dict[str, Any]:
    """A search reason as the local API shows it (:data:`MATCH_REASON`)."""
    return {
        "field": reason.field,
        "value": reason.value,
        "match": reason.match,
        "language": reason.language,
    }

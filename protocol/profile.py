"""Member profiles: the directory details a member publishes itself (docs/PROTOCOL.md §6.7).

What the admins certify (name, country, competences as ``kinds``, working
languages, endpoint, keys) changes only through a quorum-signed action
(§6.3).  What a member says about how to work with it — the offence areas it
handles, its time zone, its contact points — it signs itself, with its current
identity key under ``globe/v1/profile``, in a **profile**.  The hub appends a
profile to the membership log as a *profile entry* (:class:`ProfileEntry`), so
every node verifies it from the log like any other entry and profile history
is as tamper-evident as membership.

A profile carries a sequence number: a profile applies only if its ``seq`` is
greater than that of the member's current profile, so an older profile can
never be replayed over a newer one.  It is refused for a member that is not
active, for a signature by any key but the member's current identity key, and
for any field outside its closed vocabulary or its bounds.

Contact points name roles and desks, never people: the e-mail address and
telephone number of a contact point are optional fields the member fills in
only to publish them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from protocol import canonical, crypto, labels
from protocol.canonical import JsonValue, ObjectReader
from protocol.errors import (
    BadSignature,
    MalformedError,
    NotCertified,
    SizeLimitExceeded,
    UnsupportedVersion,
    UsageError,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId
from protocol.keys import SigningKey, VerifyKey
from protocol.membership import MAX_ENTRY_SIZE, LogEntry
from protocol.signed import SignedObject, sign_object

__all__ = [
    "CONTACT_ROLES",
    "EMAIL_RE",
    "MAX_CONTACTS",
    "MAX_PROFILE_CONTAINER",
    "MAX_PROFILE_SIZE",
    "OFFENCE_AREAS",
    "PHONE_RE",
    "Contact",
    "Profile",
    "ProfileEntry",
    "decode_log_entry",
    "make_profile",
    "make_profile_entry",
]

#: Offence areas, after the offences of UNCAC chapter III (arts. 15-25); stable slugs.
OFFENCE_AREAS: Final = {
    "bribery": "bribery of national public officials (art. 15)",
    "foreign-bribery": "bribery of foreign public officials and officials of public "
    "international organisations (art. 16)",
    "embezzlement": "embezzlement, misappropriation or other diversion of property by a "
    "public official (art. 17)",
    "trading-in-influence": "trading in influence (art. 18)",
    "abuse-of-functions": "abuse of functions (art. 19)",
    "illicit-enrichment": "illicit enrichment (art. 20)",
    "private-bribery": "bribery in the private sector (art. 21)",
    "private-embezzlement": "embezzlement of property in the private sector (art. 22)",
    "money-laundering": "laundering of proceeds of crime (art. 23)",
    "concealment": "concealment (art. 24)",
    "obstruction-of-justice": "obstruction of justice (art. 25)",
}
#: Roles a contact point may have: desks and functions, never a person.
CONTACT_ROLES: Final = {
    "duty-desk": "the desk that answers at any hour it states",
    "international-cooperation": "the international cooperation unit",
    "mutual-legal-assistance": "the mutual legal assistance unit",
    "asset-recovery": "the asset-recovery unit",
    "extradition": "the extradition unit",
    "legal": "legal advice",
    "management": "the authority's management office",
    "technical": "the node's operators",
}
#: The largest profile payload (bytes), checked before any field is read.
MAX_PROFILE_SIZE: Final = 8192
#: The largest profile container the hub decodes (payload and one signature).
MAX_PROFILE_CONTAINER: Final = 16384
MAX_CONTACTS: Final = 8
MAX_NOTE: Final = 1000
MAX_LABEL: Final = 120
MAX_CONTACT_LANGUAGES: Final = 8
_TIME_ZONE_RE: Final = re.compile(r"(?:UTC|[A-Z][A-Za-z_-]*(?:/[A-Za-z0-9_+-]+){1,2})\Z", re.ASCII)
EMAIL_RE: Final = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+\Z", re.ASCII
)
PHONE_RE: Final = re.compile(r"\+[1-9][0-9]{6,14}\Z", re.ASCII)
_LANG_RE: Final = re.compile(r"[a-z]{2}\Z", re.ASCII)


def _sorted_from(values: list[str], allowed: Mapping[str, str], what: str) -> tuple[str, ...]:
    if any(v not in allowed for v in values) or values != sorted(values):
        raise MalformedError(f"{what}: sorted, each one of the defined values")
    return tuple(values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """A contact point: a role, and how to reach it if the member publishes that."""

    role: str
    label: str | None = None
    hours: str | None = None
    languages: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """The contact object as it appears in a profile (absent fields omitted)."""
        out: dict[str, JsonValue] = {"role": self.role}
        if self.label is not None:
            out["label"] = self.label
        if self.hours is not None:
            out["hours"] = self.hours
        if self.languages:
            out["languages"] = list(self.languages)
        if self.email is not None:
            out["email"] = self.email
        if self.phone is not None:
            out["phone"] = self.phone
        return out

    @classmethod
    def read(cls, r: ObjectReader, what: str) -> Contact:
        """Strictly read one contact object (§6.7: fields in read order)."""
        role = r.string("role", max_len=32)
        if role not in CONTACT_ROLES:
            raise MalformedError(f"{what}.role: one of {sorted(CONTACT_ROLES)}")
        label = r.text("label", max_len=MAX_LABEL) if r.has("label") else None
        hours = r.text("hours", max_len=MAX_LABEL) if r.has("hours") else None
        languages: tuple[str, ...] = ()
        if r.has("languages"):
            langs = r.strings("languages", min_items=1, max_items=MAX_CONTACT_LANGUAGES, max_len=2)
            if any(not _LANG_RE.match(x) for x in langs) or langs != sorted(langs):
                raise MalformedError(f"{what}.languages: sorted ISO 639-1 codes")
            languages = tuple(langs)
        email = r.string("email", max_len=254) if r.has("email") else None
        if email is not None and not EMAIL_RE.match(email):
            raise MalformedError(f"{what}.email: not an e-mail address")
        phone = r.string("phone", max_len=16) if r.has("phone") else None
        if phone is not None and not PHONE_RE.match(phone):
            raise MalformedError(f"{what}.phone: an E.164 number, + and 7-15 digits")
        r.done()
        return cls(
            role=role, label=label, hours=hours, languages=languages, email=email, phone=phone
        )


@dataclass(frozen=True, slots=True)
class Profile:
    """A decoded profile; :meth:`verify` checks its signature against the member's key."""

    signed: SignedObject
    authority: AuthorityId
    seq: int
    offences: tuple[str, ...]
    time_zone: str | None
    contacts: tuple[Contact, ...]
    note: str | None

    @property
    def digest(self) -> bytes:
        """Names this profile (its payload)."""
        return self.signed.digest()

    @classmethod
    def decode(cls, data: bytes, genesis: Genesis) -> Profile:
        """Strictly decode a profile container (signature unchecked: see :meth:`verify`)."""
        signed = SignedObject.decode(data, max_size=MAX_PROFILE_CONTAINER, what="profile")
        return cls.from_signed(signed, genesis)

    @classmethod
    def from_signed(cls, signed: SignedObject, genesis: Genesis) -> Profile:
        """Strictly read a profile's payload (§6.7), after its size cap."""
        what = "profile"
        if len(signed.payload) > MAX_PROFILE_SIZE:
            raise SizeLimitExceeded(f"profile: payload exceeds {MAX_PROFILE_SIZE} bytes")
        r = ObjectReader(signed.payload_json(what=what), what)
        if r.string("type", max_len=32) != "profile":
            raise MalformedError("profile: type must be 'profile'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("profile: only version 1 is supported")
        if r.blob("network", length=32) != genesis.digest:
            raise MalformedError("profile: made for another network")
        authority = AuthorityId.parse(r.string("authority", max_len=19))
        seq = r.integer("seq", lo=1)
        offences = _sorted_from(
            r.strings("offences", max_items=len(OFFENCE_AREAS), max_len=32),
            OFFENCE_AREAS,
            "profile.offences",
        )
        time_zone = r.string("time_zone", max_len=64) if r.has("time_zone") else None
        if time_zone is not None and not _TIME_ZONE_RE.match(time_zone):
            raise MalformedError("profile.time_zone: UTC or an IANA zone name such as Europe/Paris")
        contacts = tuple(
            Contact.read(c, f"profile.contacts[{i}]")
            for i, c in enumerate(r.objects("contacts", max_items=MAX_CONTACTS))
        )
        note = r.text("note", max_len=MAX_NOTE, multiline=True) if r.has("note") else None
        r.done()
        return cls(signed, authority, seq, offences, time_zone, contacts, note)

    def verify(self, identity: VerifyKey) -> None:
        """Require exactly one signature, by ``identity`` (the member's current identity key).

        A signature by any other key — a retired identity key, another member's,
        an admin's — is :class:`NotCertified`; a wrong signature by the right key,
        or any number of signatures but one, :class:`BadSignature`.
        """
        if len(self.signed.signatures) != 1:
            raise BadSignature("profile: must carry exactly the member's signature")
        if self.signed.signatures[0].key_id != identity.key_id:
            raise NotCertified(
                f"profile: signed by {self.signed.signatures[0].key_id}, not by the current "
                f"identity key of {self.authority}"
            )
        self.signed.verify_by(labels.PROFILE, identity)


def make_profile(
    *,
    genesis: Genesis,
    authority: AuthorityId,
    seq: int,
    identity: SigningKey,
    offences: list[str] | tuple[str, ...] = (),
    time_zone: str | None = None,
    contacts: list[Contact] | tuple[Contact, ...] = (),
    note: str | None = None,
) -> Profile:
    """Build and sign a profile; decoded again, so a profile that could not apply is refused."""
    payload: dict[str, object] = {
        "type": "profile",
        "v": 1,
        "network": canonical.b64e(genesis.digest),
        "authority": str(authority),
        "seq": seq,
        "offences": sorted(set(offences)),
        "contacts": [c.to_json() for c in contacts],
    }
    if time_zone is not None:
        payload["time_zone"] = time_zone
    if note is not None:
        payload["note"] = note
    try:
        profile = Profile.from_signed(sign_object(payload, labels.PROFILE, [identity]), genesis)
    except (MalformedError, SizeLimitExceeded) as exc:
        raise UsageError(exc.detail) from None
    return profile


# --- profile entries ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """A decoded profile entry of the log (its chain position is checked by the directory)."""

    raw: bytes
    seq: int
    prev: bytes
    time: int
    profile: Profile

    @property
    def hash(self) -> bytes:
        """The entry's chain hash (the same construction as an action entry's)."""
        return crypto.sha256(crypto.labelled(labels.LOG_ENTRY, self.raw))

    @classmethod
    def decode(cls, data: bytes, genesis: Genesis) -> ProfileEntry:
        """Strictly decode a profile entry's exact bytes (§6.7)."""
        what = "log entry"
        r = ObjectReader(
            canonical.decode(data, max_size=MAX_ENTRY_SIZE, what=what, check_values=False), what
        )
        if r.string("type", max_len=32) != "log-entry":
            raise MalformedError("log entry: type must be 'log-entry'")
        if r.integer("v") != 1:
            raise UnsupportedVersion("log entry: only version 1 is supported")
        if r.blob("network", length=32) != genesis.digest:
            raise MalformedError("log entry: made for another network")
        seq = r.integer("seq", lo=1)
        prev = r.blob("prev", length=32)
        time = r.integer("time")
        signed = SignedObject.from_json(r.raw("profile"), what="log entry.profile")
        r.done()
        return cls(data, seq, prev, time, Profile.from_signed(signed, genesis))


def make_profile_entry(
    *, genesis: Genesis, seq: int, prev: bytes, time: int, profile: SignedObject
) -> bytes:
    """The exact bytes of a profile entry (built by the hub)."""
    return canonical.encode(
        {
            "type": "log-entry",
            "v": 1,
            "network": canonical.b64e(genesis.digest),
            "seq": seq,
            "prev": canonical.b64e(prev),
            "time": time,
            "profile": profile.to_json(),
        }
    )


def decode_log_entry(data: bytes, genesis: Genesis) -> LogEntry | ProfileEntry:
    """The reference decoder of any log entry: a profile entry if it has a ``profile`` member.

    Both kinds begin with the same structure decode (§2.3), so which one an entry is
    depends on its parsed object only, never on a partial read.
    """
    obj = canonical.decode(data, max_size=MAX_ENTRY_SIZE, what="log entry", check_values=False)
    if "profile" in obj:
        return ProfileEntry.decode(data, genesis)
    return LogEntry.decode(data, genesis)

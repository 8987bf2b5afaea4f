"""Typed identifiers (docs/PROTOCOL.md §3.1).

Identifiers are small frozen classes, not strings: an :class:`AuthorityId`
cannot be passed where a :class:`KeyId` is expected, and the textual forms
are disjoint (a key id contains ``:``, which neither base64url keys nor
authority ids may contain), so an id can never be parsed as a key.

Parsing is strict and never normalises: lower case, homoglyphs, NUL,
whitespace or any non-ASCII character is refused rather than "fixed".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from protocol import labels
from protocol.crypto import Rng, labelled, sha256, system_rng
from protocol.errors import InvalidIdentifier

__all__ = [
    "AUTHORITY_RE",
    "ISO_COUNTRIES",
    "AuthorityId",
    "KeyId",
    "MessageId",
    "NetworkId",
]

#: ISO 3166-1 alpha-2 officially assigned codes.
ISO_COUNTRIES: Final = frozenset(
    [
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    ]
)

AUTHORITY_RE: Final = re.compile(r"([A-Z]{2})-([A-Z0-9]{2,16})\Z", re.ASCII)
_HEX32_RE: Final = re.compile(r"[0-9a-f]{32}\Z", re.ASCII)
_KEY_ID_RE: Final = re.compile(r"(ed25519|mlkem768x25519):([0-9a-f]{32})\Z", re.ASCII)
_NETWORK_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{2,62}\Z", re.ASCII)


def _check_text(value: object, what: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(f"{what} must be a string")
    if len(value) > max_len:
        raise InvalidIdentifier(f"{what} is too long")
    return value


@dataclass(frozen=True, slots=True)
class AuthorityId:
    """A member authority: ISO 3166-1 alpha-2 country, ``-``, 2-16 of ``A-Z0-9``.

    Example: ``FR-PNF``.  Construct with :meth:`parse`.
    """

    value: str

    @classmethod
    def parse(cls, text: object) -> AuthorityId:
        """Parse strictly; :class:`InvalidIdentifier` on anything else.

        Results are cached (ids recur in every header and log entry); only valid
        ids are cached, and only exact ``str`` inputs.
        """
        if type(text) is str and len(text) <= 19:
            return _parse_authority(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: object) -> AuthorityId:
        value = _check_text(text, "authority id", 19)
        match = AUTHORITY_RE.match(value)
        if match is None:
            raise InvalidIdentifier(
                f"authority id {value!r} must be CC-NAME: upper-case ASCII letters and digits"
            )
        if match.group(1) not in ISO_COUNTRIES:
            raise InvalidIdentifier(f"authority id {value!r}: unknown ISO 3166-1 country")
        return cls(value)

    @property
    def country(self) -> str:
        """The ISO 3166-1 alpha-2 country code."""
        return self.value[:2]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class MessageId:
    """A 128-bit random message id; text form is 32 lower-case hex digits."""

    raw: bytes

    @classmethod
    def new(cls, rng: Rng = system_rng) -> MessageId:
        """A fresh random id."""
        return cls(rng(16))

    @classmethod
    def parse(cls, text: object) -> MessageId:
        """Parse the 32-hex-digit form strictly."""
        value = _check_text(text, "message id", 32)
        if not _HEX32_RE.match(value):
            raise InvalidIdentifier("message id must be 32 lower-case hex digits")
        return cls(bytes.fromhex(value))

    def __post_init__(self) -> None:
        if len(self.raw) != 16:
            raise InvalidIdentifier("message id must be 16 bytes")

    def __str__(self) -> str:
        return self.raw.hex()


#: Algorithm tags for key ids (docs/PROTOCOL.md §3.2).
KEY_ALG_ED25519: Final = "ed25519"
KEY_ALG_KEM: Final = "mlkem768x25519"


@dataclass(frozen=True, slots=True)
class KeyId:
    """Names a public key: ``<alg>:<32 hex>``, the first 16 bytes of
    ``SHA-256("globe/v1/key-id" || 0x00 || alg || 0x00 || public key)``."""

    alg: str
    digest: bytes

    @classmethod
    def of(cls, alg: str, public: bytes) -> KeyId:
        """The key id of a public key of algorithm ``alg``."""
        if alg not in (KEY_ALG_ED25519, KEY_ALG_KEM):
            raise InvalidIdentifier(f"unknown key algorithm {alg!r}")
        digest = sha256(labelled(labels.KEY_ID, alg.encode("ascii"), b"\x00", public))[:16]
        return cls(alg, digest)

    @classmethod
    def parse(cls, text: object) -> KeyId:
        """Parse the text form strictly (valid results are cached, like authority ids)."""
        if type(text) is str and len(text) <= 64:
            return _parse_key_id(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: object) -> KeyId:
        value = _check_text(text, "key id", 64)
        match = _KEY_ID_RE.match(value)
        if match is None:
            raise InvalidIdentifier("key id must be ed25519:<32 hex> or mlkem768x25519:<32 hex>")
        return cls(match.group(1), bytes.fromhex(match.group(2)))

    def __str__(self) -> str:
        return f"{self.alg}:{self.digest.hex()}"


@dataclass(frozen=True, slots=True)
class NetworkId:
    """A network's short name: 3-63 of ``a-z0-9-``, not starting with ``-``."""

    value: str

    @classmethod
    def parse(cls, text: object) -> NetworkId:
        """Parse strictly."""
        value = _check_text(text, "network id", 63)
        if not _NETWORK_RE.match(value):
            raise InvalidIdentifier("network id must be 3-63 of a-z, 0-9 and '-'")
        return cls(value)

    def __str__(self) -> str:
        return self.value


@functools.lru_cache(maxsize=1 << 16)
def _parse_authority(text: str) -> AuthorityId:
    return AuthorityId._parse(text)


@functools.lru_cache(maxsize=1 << 16)
def _parse_key_id(text: str) -> KeyId:
    return KeyId._parse(text)

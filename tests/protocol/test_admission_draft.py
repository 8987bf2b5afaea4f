"""The admin's rule for signing a draft admission (``check_admission_draft``, R1, R4).

The hub proposes the admission an admin signs.  A hub that alters any field of the
draft, or dates it outside a sane window, gets no signature: every field the hub could
change is one row below, each with the exact error it earns.  The serial is the hub's to
choose, and validity windows at their bounds are accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from protocol import canonical
from protocol.errors import (
    GlobeError,
    MalformedError,
    MembershipError,
    NonCanonical,
    UnknownField,
    UnsupportedVersion,
)
from protocol.genesis import Genesis, make_genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    MAX_CERT_LIFETIME,
    MAX_DRAFT_AGE,
    MAX_DRAFT_AHEAD,
    Action,
    Application,
    Certificate,
    check_admission_draft,
    make_action,
    make_application,
)

NOW = 1_800_000_000
DAY = 86_400
SERIAL = "cd" * 16


def _key(n: int) -> SigningKey:
    return SigningKey(bytes([n]) * 32)


def _kem(n: int) -> KemPrivateKey:
    return KemPrivateKey.generate(lambda size: bytes([n]) * size)


def _genesis(network_id: str) -> Genesis:
    admins = [_key(i) for i in (1, 2, 3)]
    return make_genesis(
        network_id=network_id,
        name="Unit",
        admins=[(f"admin-{i}", k.verify_key) for i, k in enumerate(admins)],
        threshold=2,
        hub_key=_key(9).verify_key,
        hub_url="https://hub.example.org",
        created=NOW - 100 * DAY,
        signers=admins[:2],
    )


GENESIS = _genesis("globe-unit")
OTHER_NETWORK = _genesis("globe-other")
APPLICATION: Application = make_application(
    genesis=GENESIS,
    authority=AuthorityId.parse("ES-FCC"),
    name="Fiscalia contra la Corrupcion",
    kinds=["anti-corruption"],
    languages=["es"],
    contact="duty officer",
    legal_basis="UNCAC art. 36",
    endpoint="https://node.example.es",
    identity=_key(10),
    transport=_key(11),
    ka_key=_kem(12).public_key,
    created=NOW - DAY,
)


def _payload(
    *, not_before: int = NOW, not_after: int = NOW + 730 * DAY, issued: int = NOW
) -> dict[str, Any]:
    """The draft the hub should propose, as a JSON object to alter."""
    cert = Certificate.from_application(
        APPLICATION, serial=SERIAL, not_before=not_before, not_after=not_after
    )
    action = make_action(
        genesis=GENESIS,
        action=Action.ADMIT,
        authority=APPLICATION.authority,
        prev=None,
        issued=issued,
        certificate=cert,
    )
    return dict(action.signed.payload_json(what="draft"))


def _cert(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def alter(p: dict[str, Any]) -> None:
        if value is None:
            del p["certificate"][field]
        else:
            p["certificate"][field] = value

    return alter


def _top(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    def alter(p: dict[str, Any]) -> None:
        p[field] = value

    return alter


def _update_keys(p: dict[str, Any]) -> None:
    p["action"] = "update-keys"
    p["prev"] = canonical.b64e(b"\x01" * 32)


def _b64(data: bytes) -> str:
    return canonical.b64e(data)


MISMATCH = (MembershipError, "the draft certificate does not match the application")
NOT_PLAIN = (MembershipError, "the draft is not a plain admission of ES-FCC")


@dataclass(frozen=True)
class Altered:
    """One field the hub changed, and the refusal it earns."""

    name: str
    alter: Callable[[dict[str, Any]], None]
    error: type[GlobeError]
    detail: str


ALTERED = [
    Altered("certificate name", _cert("name", "Someone else"), *MISMATCH),
    Altered("certificate kinds", _cert("kinds", ["anti-corruption", "fiu"]), *MISMATCH),
    Altered("certificate languages", _cert("languages", ["en", "es"]), *MISMATCH),
    Altered("certificate endpoint", _cert("endpoint", "https://evil.example"), *MISMATCH),
    Altered("certificate endpoint dropped", _cert("endpoint", None), *MISMATCH),
    Altered(
        "identity key",
        _cert("identity_key", _b64(bytes(_key(20).verify_key))),
        *MISMATCH,
    ),
    Altered(
        "transport key",
        _cert("transport_key", _b64(bytes(_key(21).verify_key))),
        *MISMATCH,
    ),
    Altered("key-agreement key", _cert("ka_key", _b64(bytes(_kem(22).public_key))), *MISMATCH),
    Altered("application digest", _cert("application", _b64(b"\x05" * 32)), *MISMATCH),
    Altered(
        "certificate country",
        _cert("country", "FR"),
        MalformedError,
        "action.certificate.country: must match the authority id",
    ),
    Altered("authority", _top("authority", "ES-OTHER"), *NOT_PLAIN),
    Altered("reason added", _top("reason", "fast track"), *NOT_PLAIN),
    Altered(
        "prev added",
        _top("prev", _b64(b"\x01" * 32)),
        MalformedError,
        "action: prev is required except on admit",
    ),
    Altered("update-keys instead of admit", _update_keys, *NOT_PLAIN),
    Altered(
        "another network",
        _top("network", _b64(OTHER_NETWORK.digest)),
        MalformedError,
        "action: made for another network",
    ),
    Altered(
        "another version", _top("v", 2), UnsupportedVersion, "action: only version 1 is supported"
    ),
    Altered("an extra field", _top("note", "x"), UnknownField, "action: unknown field(s) ['note']"),
    Altered(
        "issued too early",
        _top("issued", NOW - MAX_DRAFT_AGE - 1),
        MembershipError,
        "the draft admission is dated 2026-12-16T07:59:59Z",
    ),
]


@pytest.mark.parametrize("case", ALTERED, ids=[c.name for c in ALTERED])
def test_a_draft_the_hub_altered_is_refused(case: Altered) -> None:
    payload = _payload()
    case.alter(payload)
    draft = canonical.encode(payload)
    with pytest.raises(case.error) as refused:
        check_admission_draft(APPLICATION, draft, GENESIS, now=NOW)
    assert type(refused.value) is case.error
    assert refused.value.detail == case.detail


def test_the_draft_as_recomputed_is_accepted_with_any_serial() -> None:
    payload = _payload()
    payload["certificate"]["serial"] = "ef" * 16  # the hub's choice
    action = check_admission_draft(APPLICATION, canonical.encode(payload), GENESIS, now=NOW)
    assert action.action is Action.ADMIT
    assert action.authority == APPLICATION.authority
    assert action.certificate == Certificate.from_application(
        APPLICATION, serial="ef" * 16, not_before=NOW, not_after=NOW + 730 * DAY
    )


def test_a_draft_that_is_not_an_admission_is_refused() -> None:
    suspend = make_action(
        genesis=GENESIS,
        action=Action.SUSPEND,
        authority=APPLICATION.authority,
        prev=b"\x01" * 32,
        issued=NOW,
        reason="r",
    ).signed.payload
    with pytest.raises(MembershipError) as refused:
        check_admission_draft(APPLICATION, suspend, GENESIS, now=NOW)
    assert refused.value.detail == "the draft is not a plain admission of ES-FCC"


def test_a_draft_not_canonically_encoded_is_refused() -> None:
    draft = canonical.encode(_payload()).replace(b'{"action"', b'{ "action"', 1)
    with pytest.raises(NonCanonical):
        check_admission_draft(APPLICATION, draft, GENESIS, now=NOW)


@pytest.mark.parametrize(
    ("not_before", "not_after", "issued", "detail"),
    [
        (NOW, NOW + 730 * DAY, NOW, None),
        (NOW - MAX_DRAFT_AGE, NOW + DAY, NOW - MAX_DRAFT_AGE, None),
        (NOW + MAX_DRAFT_AHEAD, NOW + DAY + MAX_CERT_LIFETIME, NOW + MAX_DRAFT_AHEAD, None),
        (
            NOW - MAX_DRAFT_AGE - 1,
            NOW + DAY,
            NOW,
            "the draft certificate starts 2026-12-16T07:59:59Z: "
            "not within 30 days before and one day after now",
        ),
        (
            NOW + MAX_DRAFT_AHEAD + 1,
            NOW + 730 * DAY,
            NOW,
            "the draft certificate starts 2027-01-16T08:00:01Z: "
            "not within 30 days before and one day after now",
        ),
        (
            NOW,
            NOW + 730 * DAY,
            NOW + MAX_DRAFT_AHEAD + 1,
            "the draft admission is dated 2027-01-16T08:00:01Z",
        ),
        (
            NOW - 10 * DAY,
            NOW,
            NOW,
            "the draft certificate's validity (2027-01-05T08:00:00Z to 2027-01-15T08:00:00Z)"
            " is not a current validity of at most five years",
        ),
        (
            NOW,
            NOW + MAX_CERT_LIFETIME + 1,
            NOW,
            "the draft certificate's validity (2027-01-15T08:00:00Z to 2032-01-16T08:00:01Z)"
            " is not a current validity of at most five years",
        ),
    ],
)
def test_the_validity_window(
    not_before: int, not_after: int, issued: int, detail: str | None
) -> None:
    draft = canonical.encode(_payload(not_before=not_before, not_after=not_after, issued=issued))
    if detail is None:
        action = check_admission_draft(APPLICATION, draft, GENESIS, now=NOW)
        assert action.certificate is not None
        assert (action.certificate.not_before, action.certificate.not_after) == (
            not_before,
            not_after,
        )
        assert action.issued == issued
    else:
        with pytest.raises(MembershipError) as refused:
            check_admission_draft(APPLICATION, draft, GENESIS, now=NOW)
        assert refused.value.detail == detail

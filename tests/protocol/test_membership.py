"""Applications, KEM proof of possession, admin quorum, genesis, checkpoints and prekeys."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest

from protocol import canonical, crypto, labels
from protocol.canonical import b64e
from protocol.devnet import GENESIS_TIME, DevNetwork
from protocol.directory import verify_log
from protocol.errors import (
    BadSignature,
    DecryptionFailed,
    ExpiredError,
    InvalidIdentifier,
    InvalidKey,
    MalformedError,
    NonCanonical,
    NotYetValid,
    QuorumNotMet,
    SizeLimitExceeded,
    UnknownField,
    UnsupportedVersion,
    UsageError,
)
from protocol.genesis import MAX_GENESIS_SIZE, Genesis, make_genesis
from protocol.ids import AuthorityId
from protocol.keys import KemPrivateKey, SigningKey
from protocol.membership import (
    MAX_ACTION_SIZE,
    Action,
    Application,
    Certificate,
    Checkpoint,
    LogEntry,
    MembershipAction,
    authority_fingerprint,
    kem_pop_answer,
    kem_pop_challenge,
    make_action,
    make_application,
    make_checkpoint,
    make_entry,
)
from protocol.prekeys import MAX_PREKEY_LIFETIME, SignedPrekey, make_prekey
from protocol.signed import Signature, SignedObject, sign_object, verify_quorum

_RNG = crypto.deterministic_rng(b"test_membership")
IDENTITY = SigningKey.generate(_RNG)
TRANSPORT = SigningKey.generate(_RNG)
THIRD = SigningKey.generate(_RNG)
KA = KemPrivateKey.generate(_RNG)
KA_OTHER = KemPrivateKey.generate(_RNG)
GB = AuthorityId.parse("GB-SFO")
FR = AuthorityId.parse("FR-PNF")
T0 = GENESIS_TIME + 3600


def _signed(payload: dict[str, Any], label: bytes, signers: list[SigningKey]) -> bytes:
    return sign_object(payload, label, signers).encode()


def _drop(payload: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in names}


# --- applications --------------------------------------------------------------------------------


def _app(net: DevNetwork, **overrides: Any) -> Application:
    args: dict[str, Any] = {
        "genesis": net.genesis,
        "authority": GB,
        "name": "Serious Fraud Office",
        "kinds": ["mla-central", "anti-corruption"],
        "languages": ["fr", "en"],
        "contact": "Duty officer\n+44 20 0000 0000",
        "legal_basis": "UNCAC art. 36",
        "endpoint": "https://sfo.example/globe",
        "identity": IDENTITY,
        "transport": TRANSPORT,
        "ka_key": KA.public_key,
        "created": T0,
    }
    args.update(overrides)
    return make_application(**args)


def _app_payload(net: DevNetwork, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "application",
        "v": 1,
        "network": b64e(net.genesis.digest),
        "authority": "GB-SFO",
        "name": "Serious Fraud Office",
        "country": "GB",
        "kinds": ["anti-corruption"],
        "languages": ["en"],
        "contact": "duty officer",
        "legal_basis": "UNCAC art. 36",
        "identity_key": b64e(bytes(IDENTITY.verify_key)),
        "transport_key": b64e(bytes(TRANSPORT.verify_key)),
        "ka_key": b64e(bytes(KA.public_key)),
        "created": T0,
    }
    payload.update(overrides)
    return payload


def test_application_round_trip(net):
    app = _app(net)
    data = app.signed.encode()
    again = Application.decode(data, net.genesis)
    assert again == app
    assert again.signed.encode() == data
    assert again.authority == GB
    assert again.kinds == ("anti-corruption", "mla-central")
    assert again.languages == ("en", "fr")
    assert again.endpoint == "https://sfo.example/globe"
    assert again.identity_key == IDENTITY.verify_key
    assert again.transport_key == TRANSPORT.verify_key
    assert again.ka_key == KA.public_key
    assert again.created == T0
    assert again.digest == app.signed.digest()
    assert len(again.signed.signatures) == 2


def test_application_without_endpoint(net):
    app = _app(net, endpoint=None)
    assert Application.decode(app.signed.encode(), net.genesis).endpoint is None


def test_hand_built_application_accepted(net):
    data = _signed(_app_payload(net), labels.APPLICATION, [IDENTITY, TRANSPORT])
    assert Application.decode(data, net.genesis).name == "Serious Fraud Office"


def _swap_keys(net: DevNetwork) -> bytes:
    app = _app(net)
    payload = canonical.decode(app.signed.payload, max_size=1 << 16, what="t")
    payload["identity_key"], payload["transport_key"] = (
        payload["transport_key"],
        payload["identity_key"],
    )
    return SignedObject(canonical.encode(payload), app.signed.signatures).encode()


def _other_name(net: DevNetwork) -> bytes:
    app = _app(net)
    payload = canonical.decode(app.signed.payload, max_size=1 << 16, what="t")
    payload["name"] = "Someone Else"
    return SignedObject(canonical.encode(payload), app.signed.signatures).encode()


_APP_SIGNATURE_CASES: list[tuple[str, Callable[[DevNetwork], bytes]]] = [
    ("no signature", lambda n: _signed(_app_payload(n), labels.APPLICATION, [])),
    ("identity only", lambda n: _signed(_app_payload(n), labels.APPLICATION, [IDENTITY])),
    ("transport only", lambda n: _signed(_app_payload(n), labels.APPLICATION, [TRANSPORT])),
    (
        "identity and a third key",
        lambda n: _signed(_app_payload(n), labels.APPLICATION, [IDENTITY, THIRD]),
    ),
    (
        "transport and a third key",
        lambda n: _signed(_app_payload(n), labels.APPLICATION, [TRANSPORT, THIRD]),
    ),
    (
        "both plus a third key",
        lambda n: _signed(_app_payload(n), labels.APPLICATION, [IDENTITY, TRANSPORT, THIRD]),
    ),
    (
        "both under another label",
        lambda n: _signed(_app_payload(n), labels.PREKEY, [IDENTITY, TRANSPORT]),
    ),
    ("identity and transport swapped after signing", _swap_keys),
    ("payload edited after signing", _other_name),
]


@pytest.mark.parametrize(
    "build", [c[1] for c in _APP_SIGNATURE_CASES], ids=[c[0] for c in _APP_SIGNATURE_CASES]
)
def test_application_signature_refused(net, build):
    with pytest.raises(BadSignature) as info:
        Application.decode(build(net), net.genesis)
    assert type(info.value) is BadSignature


_APP_FIELD_CASES: list[tuple[str, dict[str, Any], type[Exception]]] = [
    (
        "identity equals transport",
        {"transport_key": b64e(bytes(IDENTITY.verify_key))},
        MalformedError,
    ),
    ("wrong network", {"network": b64e(bytes(32))}, MalformedError),
    ("network too short", {"network": b64e(bytes(31))}, MalformedError),
    ("country mismatch", {"country": "FR"}, MalformedError),
    ("country lower case", {"country": "gb"}, MalformedError),
    ("unsorted kinds", {"kinds": ["mla-central", "anti-corruption"]}, MalformedError),
    ("unknown kind", {"kinds": ["anti-corruption", "police"]}, MalformedError),
    ("duplicate kinds", {"kinds": ["fiu", "fiu"]}, MalformedError),
    ("no kinds", {"kinds": []}, MalformedError),
    ("unsorted languages", {"languages": ["fr", "en"]}, MalformedError),
    ("upper-case language", {"languages": ["EN"]}, MalformedError),
    ("three-letter language", {"languages": ["eng"]}, MalformedError),
    ("no languages", {"languages": []}, MalformedError),
    ("wrong type", {"type": "applicaton"}, MalformedError),
    ("version 2", {"v": 2}, UnsupportedVersion),
    ("bad authority", {"authority": "gb-sfo"}, InvalidIdentifier),
    ("name with newline", {"name": "Serious\nFraud"}, MalformedError),
    ("name with bidi override", {"name": "Serious \u202eFraud"}, MalformedError),
    ("empty name", {"name": ""}, MalformedError),
    ("endpoint with query", {"endpoint": "https://x.example/?a=1"}, MalformedError),
    ("endpoint with credentials", {"endpoint": "https://u:p@x.example/"}, MalformedError),
    ("endpoint not http", {"endpoint": "ftp://x.example/"}, MalformedError),
    ("identity key not a point", {"identity_key": b64e(bytes(32))}, InvalidKey),
    ("identity key too short", {"identity_key": b64e(bytes(31))}, MalformedError),
    ("ka key too short", {"ka_key": b64e(bytes(KA.public_key)[:-1])}, MalformedError),
    (
        "ka key with low-order X25519 half",
        {"ka_key": b64e(bytes(KA.public_key)[:-32] + bytes(32))},
        InvalidKey,
    ),
    ("created a boolean", {"created": True}, MalformedError),
    ("created a string", {"created": "1"}, MalformedError),
    ("unknown field", {"comment": "hi"}, UnknownField),
]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [(c[1], c[2]) for c in _APP_FIELD_CASES],
    ids=[c[0] for c in _APP_FIELD_CASES],
)
def test_application_field_refused(net, overrides, error):
    data = _signed(_app_payload(net, **overrides), labels.APPLICATION, [IDENTITY, TRANSPORT])
    with pytest.raises(error) as info:
        Application.decode(data, net.genesis)
    assert type(info.value) is error


@pytest.mark.parametrize("name", ["type", "v", "network", "country", "kinds", "ka_key", "created"])
def test_application_missing_field(net, name):
    data = _signed(_drop(_app_payload(net), name), labels.APPLICATION, [IDENTITY, TRANSPORT])
    with pytest.raises(MalformedError):
        Application.decode(data, net.genesis)


@pytest.mark.parametrize(
    ("old", "new"), [(b'"created":7', b'"created":-7'), (b'"v":1', b'"v":1.0')]
)
def test_application_numbers_outside_subset(net, old, new):
    payload = canonical.encode(_app_payload(net, created=7)).replace(old, new)
    signed = SignedObject(payload, ())
    for key in (IDENTITY, TRANSPORT):
        signed = signed.with_signature(labels.APPLICATION, key)
    with pytest.raises(MalformedError) as info:
        Application.decode(signed.encode(), net.genesis)
    assert type(info.value) is MalformedError


def test_application_identity_equals_transport_via_make(net):
    with pytest.raises(MalformedError):
        _app(net, transport=IDENTITY)


def test_application_container_strictness(net):
    data = _app(net).signed.encode()
    with pytest.raises(NonCanonical):
        Application.decode(data.replace(b'","sigs"', b'", "sigs"'), net.genesis)
    with pytest.raises(SizeLimitExceeded):
        Application.decode(data + b" " * (16 * 1024), net.genesis)


def test_application_for_other_network(net, fresh_net):
    other = fresh_net(b"other network")
    app = _app(other)
    with pytest.raises(MalformedError):
        Application.decode(app.signed.encode(), net.genesis)


# --- KEM proof of possession ---------------------------------------------------------------------


def test_kem_pop_round_trip(net):
    app = _app(net)
    challenge, expected = kem_pop_challenge(app.ka_key, app.digest, crypto.deterministic_rng(b"c"))
    assert expected == crypto.deterministic_rng(b"c")(32)
    assert kem_pop_answer(KA, app.digest, challenge) == expected


def test_kem_pop_answered_with_another_key(net):
    app = _app(net)
    challenge, _ = kem_pop_challenge(app.ka_key, app.digest)
    with pytest.raises(DecryptionFailed):
        kem_pop_answer(KA_OTHER, app.digest, challenge)


def test_kem_pop_challenge_for_another_application(net):
    app_a = _app(net)
    app_b = _app(net, name="Another Office")
    assert app_a.digest != app_b.digest
    challenge, _ = kem_pop_challenge(app_a.ka_key, app_a.digest)
    with pytest.raises(DecryptionFailed):
        kem_pop_answer(KA, app_b.digest, challenge)


@pytest.mark.parametrize("position", [0, 100, 1087, 1119, -1])
def test_kem_pop_tampered_challenge(net, position):
    app = _app(net)
    challenge, _ = kem_pop_challenge(app.ka_key, app.digest)
    tampered = bytearray(challenge)
    tampered[position] ^= 0x01
    with pytest.raises(DecryptionFailed):
        kem_pop_answer(KA, app.digest, bytes(tampered))


def test_kem_pop_truncated_challenge(net):
    app = _app(net)
    challenge, _ = kem_pop_challenge(app.ka_key, app.digest)
    for cut in (0, 1, 1120, len(challenge) - 1):
        with pytest.raises(DecryptionFailed):
            kem_pop_answer(KA, app.digest, challenge[:cut])


# --- authority fingerprint -----------------------------------------------------------------------


def _reference_authority_fingerprint(authority: str, *keys: bytes) -> str:
    """docs/PROTOCOL.md §3.4 written out with hashlib: the authority id, then the three keys."""
    data = b"".join(len(p).to_bytes(2, "big") + p for p in (authority.encode("ascii"), *keys))
    digest = hashlib.sha512(b"globe/v1/authority-fingerprint\x00" + data).digest()
    for _ in range(1023):
        digest = hashlib.sha512(digest + data).digest()
    return " ".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100_000:05d}" for i in range(0, 60, 5)
    )


def _fp(
    authority: AuthorityId, identity: SigningKey, transport: SigningKey, ka: KemPrivateKey
) -> str:
    return authority_fingerprint(
        authority=authority,
        identity=identity.verify_key,
        transport=transport.verify_key,
        ka=ka.public_key,
    )


def test_authority_fingerprint_construction(net):
    fp = _fp(GB, IDENTITY, TRANSPORT, KA)
    assert re.fullmatch(r"[0-9]{5}( [0-9]{5}){11}", fp, re.ASCII)
    keys = (bytes(IDENTITY.verify_key), bytes(TRANSPORT.verify_key), bytes(KA.public_key))
    assert fp == _reference_authority_fingerprint("GB-SFO", *keys)
    assert fp == crypto.fingerprint_digits(
        labels.AUTHORITY_FINGERPRINT,
        b"\x00\x06GB-SFO\x00\x20" + keys[0] + b"\x00\x20" + keys[1] + b"\x04\xc0" + keys[2],
    )


def test_application_and_certificate_give_the_authority_fingerprint(net):
    app = _app(net)
    fp = _fp(GB, IDENTITY, TRANSPORT, KA)
    assert app.fingerprint() == fp
    assert Application.decode(app.signed.encode(), net.genesis).fingerprint() == fp
    cert = Certificate.from_application(app, serial="ab" * 16, not_before=T0, not_after=T0 + 1)
    assert cert.fingerprint() == fp
    pnf = net.members["FR-PNF"]
    assert pnf.application.fingerprint() == pnf.certificate.fingerprint()
    assert pnf.certificate.fingerprint() == _fp(FR, pnf.identity, pnf.transport, pnf.ka)


@pytest.mark.parametrize("serial", ["", "ab" * 15, "AB" * 16, "g" * 32, "ab" * 16 + "\n"])
def test_a_certificate_serial_is_32_lower_case_hex_digits(net, serial):
    with pytest.raises(UsageError) as info:
        Certificate.from_application(_app(net), serial=serial, not_before=T0, not_after=T0 + 1)
    assert info.value.detail == "serial must be 32 lower-case hex digits"


def test_authority_fingerprint_key_order_matters():
    swapped = _fp(GB, TRANSPORT, IDENTITY, KA)
    assert swapped != _fp(GB, IDENTITY, TRANSPORT, KA)
    assert swapped == _reference_authority_fingerprint(
        "GB-SFO", bytes(TRANSPORT.verify_key), bytes(IDENTITY.verify_key), bytes(KA.public_key)
    )


def test_authority_fingerprint_binds_the_authority_id():
    prints = {
        _fp(AuthorityId.parse(aid), IDENTITY, TRANSPORT, KA)
        for aid in ("GB-SFO", "FR-PNF", "GB-SF", "GB-SFOO")
    }
    assert len(prints) == 4


def test_authority_fingerprint_covers_every_key():
    prints = {
        _fp(GB, IDENTITY, TRANSPORT, KA),
        _fp(GB, THIRD, TRANSPORT, KA),
        _fp(GB, IDENTITY, THIRD, KA),
        _fp(GB, IDENTITY, TRANSPORT, KA_OTHER),
    }
    assert len(prints) == 4


# --- admin quorum --------------------------------------------------------------------------------


def _admit(net: DevNetwork, signers: list[SigningKey]) -> SignedObject:
    app = _app(net)
    cert = Certificate.from_application(
        app, serial="ab" * 16, not_before=T0, not_after=T0 + 86400 * 365
    )
    action = make_action(
        genesis=net.genesis,
        action=Action.ADMIT,
        authority=GB,
        prev=None,
        issued=T0,
        certificate=cert,
        signers=signers,
    )
    return action.signed


def _apply(net: DevNetwork, signed: SignedObject) -> None:
    """Append ``signed`` to a private copy of the shared log; the state is unchanged on error."""
    state = verify_log(net.genesis, net.entries)
    entry = make_entry(
        genesis=net.genesis, seq=state.seq + 1, prev=state.head, time=T0 + 10, action=signed
    )
    head = state.head
    try:
        state.apply(entry)
    except Exception:
        assert (state.seq, state.head, GB in state.members) == (len(net.entries), head, False)
        raise
    assert state.members[GB].status.value == "active"


def test_quorum_met_with_k_admins(net):
    assert net.genesis.threshold == 2
    for signers in (net.admins[:2], net.admins[1:], net.admins):
        _apply(net, _admit(net, list(signers)))


@pytest.mark.parametrize("count", [0, 1])
def test_fewer_than_k_admins(net, count):
    state = verify_log(net.genesis, net.entries)
    signed = _admit(net, net.admins[:count])
    entry = make_entry(
        genesis=net.genesis, seq=state.seq + 1, prev=state.head, time=T0 + 10, action=signed
    )
    with pytest.raises(QuorumNotMet):
        state.apply(entry)
    assert state.seq == len(net.entries)
    assert GB not in state.members


def _duplicated(net: DevNetwork) -> SignedObject:
    one = _admit(net, [net.admins[0]])
    return SignedObject(one.payload, (one.signatures[0], one.signatures[0]))


def test_same_admin_twice_in_container_counts_once(net):
    dup = _duplicated(net)
    admins = net.genesis.admin_keys
    with pytest.raises(QuorumNotMet):
        verify_quorum(dup, labels.MEMBERSHIP_ACTION, admins, 2)
    assert verify_quorum(dup, labels.MEMBERSHIP_ACTION, admins, 1) == frozenset(
        {net.admins[0].key_id}
    )


def test_duplicate_kids_refused_by_from_json(net):
    dup = _duplicated(net)
    with pytest.raises(MalformedError):
        SignedObject.from_json(dup.to_json(), what="action")
    with pytest.raises(MalformedError):
        SignedObject.decode(dup.encode(), max_size=1 << 16, what="action")


def test_duplicate_kids_refused_inside_log_entry(net):
    state = verify_log(net.genesis, net.entries)
    entry = make_entry(
        genesis=net.genesis,
        seq=state.seq + 1,
        prev=state.head,
        time=T0 + 10,
        action=_duplicated(net),
    )
    with pytest.raises(MalformedError):
        state.apply(entry)
    assert state.seq == len(net.entries)


def test_unsorted_kids_refused_by_from_json(net):
    two = _admit(net, net.admins[:2])
    swapped = SignedObject(two.payload, tuple(reversed(two.signatures)))
    with pytest.raises(MalformedError):
        SignedObject.from_json(swapped.to_json(), what="action")


def test_action_payload_size_cap(net):
    small = canonical.decode(_admit(net, []).payload, max_size=1 << 16, what="a")
    cert = small["certificate"]
    assert isinstance(cert, dict)
    cert["name"] = "n" * (MAX_ACTION_SIZE - len(_admit(net, []).payload) + 100)
    big = SignedObject(canonical.encode(small), ()).with_signature(
        labels.MEMBERSHIP_ACTION, net.admins[0]
    )
    assert len(big.payload) > MAX_ACTION_SIZE
    with pytest.raises(SizeLimitExceeded):
        MembershipAction.from_signed(big, net.genesis)
    big = big.with_signature(labels.MEMBERSHIP_ACTION, net.admins[1])
    state = verify_log(net.genesis, net.entries)
    entry = make_entry(
        genesis=net.genesis, seq=state.seq + 1, prev=state.head, time=T0 + 10, action=big
    )
    with pytest.raises(SizeLimitExceeded):
        state.apply(entry)
    assert state.seq == len(net.entries)


def test_with_signature_twice_is_one_signature(net):
    one = _admit(net, [net.admins[0]])
    again = one.with_signature(labels.MEMBERSHIP_ACTION, net.admins[0])
    assert len(again.signatures) == 1
    assert again.signatures[0].key_id == net.admins[0].key_id
    twice = again.with_signature(labels.MEMBERSHIP_ACTION, net.admins[0])
    assert len(twice.signatures) == 1
    assert SignedObject.decode(twice.encode(), max_size=1 << 16, what="a") == twice
    with pytest.raises(QuorumNotMet):
        verify_quorum(twice, labels.MEMBERSHIP_ACTION, net.genesis.admin_keys, 2)
    assert len(one.merge(twice).signatures) == 1


def test_merge_collects_distinct_admins(net):
    a = _admit(net, [net.admins[0]])
    b = _admit(net, [net.admins[1]])
    merged = a.merge(b)
    assert [s.key_id for s in merged.signatures] == sorted(
        [net.admins[0].key_id, net.admins[1].key_id], key=str
    )
    assert len(verify_quorum(merged, labels.MEMBERSHIP_ACTION, net.genesis.admin_keys, 2)) == 2
    with pytest.raises(UsageError):
        a.merge(SignedObject(b"{}", ()))


def _with_foreign(net: DevNetwork, key: SigningKey, label: bytes) -> SignedObject:
    return _admit(net, [net.admins[0]]).with_signature(label, key)


_ZERO_WEIGHT: list[tuple[str, Callable[[DevNetwork], SignedObject]]] = [
    (
        "member identity key",
        lambda n: _with_foreign(n, n.members["FR-PNF"].identity, labels.MEMBERSHIP_ACTION),
    ),
    (
        "member transport key",
        lambda n: _with_foreign(n, n.members["FR-PNF"].transport, labels.MEMBERSHIP_ACTION),
    ),
    ("hub key", lambda n: _with_foreign(n, n.hub, labels.MEMBERSHIP_ACTION)),
    ("unrelated key", lambda n: _with_foreign(n, THIRD, labels.MEMBERSHIP_ACTION)),
    ("admin under APPLICATION", lambda n: _with_foreign(n, n.admins[1], labels.APPLICATION)),
    ("admin under LOG_ENTRY", lambda n: _with_foreign(n, n.admins[1], labels.LOG_ENTRY)),
    ("admin under GENESIS", lambda n: _with_foreign(n, n.admins[1], labels.GENESIS)),
    (
        "admin kid with garbage signature",
        lambda n: SignedObject(
            _admit(n, [n.admins[0]]).payload,
            tuple(
                sorted(
                    [
                        _admit(n, [n.admins[0]]).signatures[0],
                        Signature(n.admins[1].key_id, bytes(64)),
                    ],
                    key=lambda s: str(s.key_id),
                )
            ),
        ),
    ),
]


@pytest.mark.parametrize("build", [c[1] for c in _ZERO_WEIGHT], ids=[c[0] for c in _ZERO_WEIGHT])
def test_signature_that_counts_zero(net, build):
    signed = build(net)
    assert len(signed.signatures) == 2
    with pytest.raises(QuorumNotMet):
        verify_quorum(signed, labels.MEMBERSHIP_ACTION, net.genesis.admin_keys, 2)
    with pytest.raises(QuorumNotMet):
        _apply(net, signed)


def test_signature_of_other_payload_counts_zero(net):
    mine = _admit(net, [net.admins[0]])
    other = make_action(
        genesis=net.genesis,
        action=Action.ADMIT,
        authority=GB,
        prev=None,
        issued=T0 + 1,
        certificate=Certificate.from_application(
            _app(net), serial="ab" * 16, not_before=T0, not_after=T0 + 86400
        ),
        signers=[net.admins[1]],
    ).signed
    assert other.payload != mine.payload
    sigs = sorted([*mine.signatures, *other.signatures], key=lambda s: str(s.key_id))
    with pytest.raises(QuorumNotMet):
        _apply(net, SignedObject(mine.payload, tuple(sigs)))


# --- genesis -------------------------------------------------------------------------------------


def test_genesis_round_trip(net):
    data = net.genesis.encode()
    again = Genesis.decode(data)
    assert again == net.genesis
    assert again.encode() == data
    assert again.digest == net.genesis.digest
    assert again.threshold == 2
    assert [a.key for a in again.admins] == [k.verify_key for k in net.admins]
    assert again.hub_key == net.hub.verify_key
    assert str(again.network_id) == "globe-dev"
    assert again.is_reserved_key(bytes(net.hub.verify_key))
    assert again.is_reserved_key(bytes(net.admins[2].verify_key))
    assert not again.is_reserved_key(bytes(net.members["FR-PNF"].identity.verify_key))


def test_genesis_fingerprint(net, fresh_net):
    fp = net.genesis.fingerprint()
    assert re.fullmatch(r"[0-9]{5}( [0-9]{5}){11}", fp, re.ASCII)
    assert Genesis.decode(net.genesis.encode()).fingerprint() == fp
    assert fresh_net(b"another").genesis.fingerprint() != fp


def _genesis_payload(net: DevNetwork, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "genesis",
        "v": 1,
        "network_id": "globe-test",
        "name": "Test network",
        "admins": [
            {"name": f"Admin {i}", "key": b64e(bytes(k.verify_key))}
            for i, k in enumerate(net.admins)
        ],
        "threshold": 2,
        "hub_key": b64e(bytes(net.hub.verify_key)),
        "hub_url": "https://hub.example:8443/globe",
        "created": GENESIS_TIME,
    }
    payload.update(overrides)
    return payload


def test_hand_built_genesis_accepted(net):
    g = Genesis.decode(_signed(_genesis_payload(net), labels.GENESIS, net.admins[:2]))
    assert g.hub_url == "https://hub.example:8443/globe"
    assert len(g.admins) == 3


def _admins(net: DevNetwork, keys: list[SigningKey]) -> list[dict[str, str]]:
    return [{"name": f"A{i}", "key": b64e(bytes(k.verify_key))} for i, k in enumerate(keys)]


_GENESIS_CASES: list[tuple[str, Callable[[DevNetwork], dict[str, Any]], type[Exception]]] = [
    ("threshold above n", lambda n: _genesis_payload(n, threshold=4), MalformedError),
    ("threshold zero", lambda n: _genesis_payload(n, threshold=0), MalformedError),
    (
        "duplicate admin keys",
        lambda n: _genesis_payload(n, admins=_admins(n, [n.admins[0], n.admins[0], n.admins[1]])),
        MalformedError,
    ),
    (
        "hub key equals an admin key",
        lambda n: _genesis_payload(n, hub_key=b64e(bytes(n.admins[1].verify_key))),
        MalformedError,
    ),
    ("no admins", lambda n: _genesis_payload(n, admins=[], threshold=1), MalformedError),
    ("unknown field", lambda n: _genesis_payload(n, extra=1), UnknownField),
    (
        "unknown field in an admin",
        lambda n: _genesis_payload(n, admins=[{**a, "role": "x"} for a in _admins(n, n.admins)]),
        UnknownField,
    ),
    ("wrong type", lambda n: _genesis_payload(n, type="checkpoint"), MalformedError),
    ("version 2", lambda n: _genesis_payload(n, v=2), UnsupportedVersion),
    ("bad network id", lambda n: _genesis_payload(n, network_id="Globe"), InvalidIdentifier),
    ("url with query", lambda n: _genesis_payload(n, hub_url="https://h/?x=1"), MalformedError),
    ("url with user", lambda n: _genesis_payload(n, hub_url="https://u@h/"), MalformedError),
    ("url not http", lambda n: _genesis_payload(n, hub_url="file:///etc"), MalformedError),
    ("name with newline", lambda n: _genesis_payload(n, name="a\nb"), MalformedError),
    ("hub key not a point", lambda n: _genesis_payload(n, hub_key=b64e(bytes(32))), InvalidKey),
]


@pytest.mark.parametrize(
    ("build", "error"),
    [(c[1], c[2]) for c in _GENESIS_CASES],
    ids=[c[0] for c in _GENESIS_CASES],
)
def test_genesis_refused(net, build, error):
    data = _signed(build(net), labels.GENESIS, net.admins)
    with pytest.raises(error) as info:
        Genesis.decode(data)
    assert type(info.value) is error


@pytest.mark.parametrize(
    ("signers", "label"),
    [
        ([], labels.GENESIS),
        ([0], labels.GENESIS),
        ([2], labels.GENESIS),
        ([0, 1], labels.APPLICATION),
        ([0, 1, 2], labels.MEMBERSHIP_ACTION),
    ],
)
def test_genesis_below_quorum(net, signers, label):
    data = _signed(_genesis_payload(net), label, [net.admins[i] for i in signers])
    with pytest.raises(QuorumNotMet):
        Genesis.decode(data)


def test_genesis_signed_by_non_admins_only(net):
    data = _signed(_genesis_payload(net), labels.GENESIS, [net.hub, THIRD, net.admins[0]])
    with pytest.raises(QuorumNotMet):
        Genesis.decode(data)


def test_make_genesis_checks(net):
    common: dict[str, Any] = {
        "network_id": "globe-test",
        "name": "n",
        "hub_key": net.hub.verify_key,
        "hub_url": "http://127.0.0.1:1",
        "created": 0,
    }
    admins = [(f"A{i}", k.verify_key) for i, k in enumerate(net.admins)]
    with pytest.raises(UsageError):
        make_genesis(admins=admins, threshold=4, signers=net.admins, **common)
    with pytest.raises(UsageError):
        make_genesis(admins=admins, threshold=0, signers=net.admins, **common)
    with pytest.raises(QuorumNotMet):
        make_genesis(admins=admins, threshold=3, signers=net.admins[:2], **common)
    dup = [admins[0], admins[0]]
    with pytest.raises(MalformedError):
        make_genesis(admins=dup, threshold=1, signers=net.admins, **common)
    hub_as_admin = [*admins, ("Hub", net.hub.verify_key)]
    with pytest.raises(MalformedError):
        make_genesis(admins=hub_as_admin, threshold=2, signers=net.admins, **common)


def test_genesis_size_cap(net):
    with pytest.raises(SizeLimitExceeded):
        Genesis.decode(net.genesis.encode() + b" " * MAX_GENESIS_SIZE)


# --- checkpoints ---------------------------------------------------------------------------------


def _checkpoint_payload(net: DevNetwork, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "checkpoint",
        "v": 1,
        "network": b64e(net.genesis.digest),
        "seq": net.directory.seq,
        "head": b64e(net.directory.head),
        "time": T0,
    }
    payload.update(overrides)
    return payload


def test_checkpoint_round_trip(net):
    cp = make_checkpoint(
        genesis=net.genesis, hub=net.hub, seq=net.directory.seq, head=net.directory.head, time=T0
    )
    data = cp.signed.encode()
    again = Checkpoint.decode(data, net.genesis)
    assert again == cp
    assert (again.seq, again.head, again.time) == (net.directory.seq, net.directory.head, T0)


@pytest.mark.parametrize(
    ("signers", "label", "error"),
    [
        (["admin"], labels.CHECKPOINT, BadSignature),
        (["member"], labels.CHECKPOINT, BadSignature),
        (["hub"], labels.EVIDENCE, BadSignature),
        (["hub"], labels.LOG_ENTRY, BadSignature),
        (["hub", "admin"], labels.CHECKPOINT, BadSignature),
        ([], labels.CHECKPOINT, BadSignature),
    ],
)
def test_checkpoint_signature_refused(net, signers, label, error):
    keys = {"hub": net.hub, "admin": net.admins[0], "member": net.members["FR-PNF"].identity}
    data = _signed(_checkpoint_payload(net), label, [keys[s] for s in signers])
    with pytest.raises(error) as info:
        Checkpoint.decode(data, net.genesis)
    assert type(info.value) is error


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"network": b64e(bytes(32))}, MalformedError),
        ({"head": b64e(bytes(31))}, MalformedError),
        ({"seq": False}, MalformedError),
        ({"type": "genesis"}, MalformedError),
        ({"v": 0}, UnsupportedVersion),
        ({"note": "x"}, UnknownField),
    ],
)
def test_checkpoint_field_refused(net, overrides, error):
    data = _signed(_checkpoint_payload(net, **overrides), labels.CHECKPOINT, [net.hub])
    with pytest.raises(error) as info:
        Checkpoint.decode(data, net.genesis)
    assert type(info.value) is error


def test_checkpoint_of_other_network(net, fresh_net):
    other = fresh_net(b"other")
    cp = make_checkpoint(genesis=other.genesis, hub=other.hub, seq=0, head=bytes(32), time=T0)
    with pytest.raises(MalformedError):
        Checkpoint.decode(cp.signed.encode(), net.genesis)


# --- prekeys -------------------------------------------------------------------------------------


def _prekey_payload(net: DevNetwork, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "prekey",
        "v": 1,
        "network": b64e(net.genesis.digest),
        "authority": "FR-PNF",
        "key": b64e(bytes(KA.public_key)),
        "not_before": T0,
        "not_after": T0 + 86400,
    }
    payload.update(overrides)
    return payload


def test_prekey_round_trip(net):
    fr = net.members["FR-PNF"]
    data = fr.signed_prekey.signed.encode()
    again = SignedPrekey.decode(data, net.genesis, fr.identity.verify_key, authority=FR)
    assert again == fr.signed_prekey
    assert again.key == fr.prekey.public_key
    assert again.authority == fr.authority
    pk = make_prekey(
        genesis=net.genesis,
        authority=fr.authority,
        identity=fr.identity,
        key=KA.public_key,
        not_before=T0,
        not_after=T0 + MAX_PREKEY_LIFETIME,
    )
    assert (
        SignedPrekey.decode(pk.signed.encode(), net.genesis, fr.identity.verify_key, authority=FR)
        == pk
    )


def test_prekey_signed_by_transport_key(net):
    fr = net.members["FR-PNF"]
    pk = make_prekey(
        genesis=net.genesis,
        authority=fr.authority,
        identity=fr.transport,
        key=KA.public_key,
        not_before=T0,
        not_after=T0 + 86400,
    )
    with pytest.raises(BadSignature) as info:
        SignedPrekey.decode(pk.signed.encode(), net.genesis, fr.identity.verify_key, authority=FR)
    assert type(info.value) is BadSignature


@pytest.mark.parametrize(
    ("signers", "label"),
    [
        (["identity", "transport"], labels.PREKEY),
        ([], labels.PREKEY),
        (["identity"], labels.RECEIPT),
        (["other member"], labels.PREKEY),
    ],
)
def test_prekey_signature_refused(net, signers, label):
    keys = {
        "identity": net.members["FR-PNF"].identity,
        "transport": net.members["FR-PNF"].transport,
        "other member": net.members["DE-BKA"].identity,
    }
    data = _signed(_prekey_payload(net), label, [keys[s] for s in signers])
    with pytest.raises(BadSignature) as info:
        SignedPrekey.decode(
            data, net.genesis, net.members["FR-PNF"].identity.verify_key, authority=FR
        )
    assert type(info.value) is BadSignature


@pytest.mark.parametrize("claimed", ["DE-BKA", "GB-SFO"])
def test_prekey_bound_to_its_authority(net, claimed):
    fr = net.members["FR-PNF"]
    # FR-PNF's identity key signs a prekey that claims to be another authority's...
    claims_other = _signed(_prekey_payload(net, authority=claimed), labels.PREKEY, [fr.identity])
    with pytest.raises(MalformedError):
        SignedPrekey.decode(claims_other, net.genesis, fr.identity.verify_key, authority=FR)
    # ... and FR-PNF's genuine prekey cannot be presented as another authority's.
    genuine = fr.signed_prekey.signed.encode()
    with pytest.raises(MalformedError):
        SignedPrekey.decode(
            genuine, net.genesis, fr.identity.verify_key, authority=AuthorityId.parse(claimed)
        )


@pytest.mark.parametrize(
    ("window", "ok"),
    [
        (1, True),
        (MAX_PREKEY_LIFETIME, True),
        (MAX_PREKEY_LIFETIME + 1, False),
        (0, False),
        (-1, False),
    ],
)
def test_prekey_window(net, window, ok):
    fr = net.members["FR-PNF"]
    payload = _prekey_payload(net, not_before=T0, not_after=T0 + window)
    data = _signed(payload, labels.PREKEY, [fr.identity])
    kwargs: dict[str, Any] = {
        "genesis": net.genesis,
        "authority": fr.authority,
        "identity": fr.identity,
        "key": KA.public_key,
        "not_before": T0,
        "not_after": T0 + window,
    }
    if ok:
        assert SignedPrekey.decode(
            data, net.genesis, fr.identity.verify_key, authority=FR
        ).not_after == (T0 + window)
        make_prekey(**kwargs)
    else:
        with pytest.raises(MalformedError):
            SignedPrekey.decode(data, net.genesis, fr.identity.verify_key, authority=FR)
        with pytest.raises(UsageError):
            make_prekey(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"network": b64e(bytes(32))}, MalformedError),
        ({"authority": "fr-pnf"}, InvalidIdentifier),
        ({"key": b64e(bytes(KA.public_key)[:-32] + b"\x01" + bytes(31))}, InvalidKey),
        ({"type": "checkpoint"}, MalformedError),
        ({"v": 2}, UnsupportedVersion),
        ({"usage": "x"}, UnknownField),
    ],
)
def test_prekey_field_refused(net, overrides, error):
    fr = net.members["FR-PNF"]
    data = _signed(_prekey_payload(net, **overrides), labels.PREKEY, [fr.identity])
    with pytest.raises(error) as info:
        SignedPrekey.decode(data, net.genesis, fr.identity.verify_key, authority=FR)
    assert type(info.value) is error


@pytest.mark.parametrize(
    ("offset", "error"),
    [
        (-1, NotYetValid),
        (0, None),
        (86399, None),
        (86400, ExpiredError),
        (10**6, ExpiredError),
    ],
)
def test_prekey_check_valid_at(net, offset, error):
    fr = net.members["FR-PNF"]
    pk = make_prekey(
        genesis=net.genesis,
        authority=fr.authority,
        identity=fr.identity,
        key=KA.public_key,
        not_before=T0,
        not_after=T0 + 86400,
    )
    if error is None:
        pk.check_valid_at(T0 + offset)
    else:
        with pytest.raises(error):
            pk.check_valid_at(T0 + offset)


def test_log_entry_decode_round_trip(net):
    entry = LogEntry.decode(net.entries[0], net.genesis)
    assert entry.seq == 1
    assert entry.prev == net.genesis.digest
    assert entry.raw == net.entries[0]
    assert entry.action.action is Action.ADMIT
    assert entry.action.authority == AuthorityId.parse("FR-PNF")

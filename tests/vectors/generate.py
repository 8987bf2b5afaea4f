"""Build the GlobE Link protocol v1 test vectors (tests/vectors/*.json).

Everything is derived from fixed seeds: the development network comes from
``protocol.devnet.build_devnet(b"globe vectors v1", ...)`` and every other
random input from ``protocol.crypto.deterministic_rng`` with a named seed, so
the files are byte-for-byte reproducible -- except the HPKE-wrapped content
keys of the envelopes (and what covers them: the outer signature, the
envelope bytes and hash), because ``cryptography`` draws the HPKE
encapsulation randomness itself.  Those are fixed as data and checked by
decryption (tests/protocol/test_vectors.py, tests/vectors/README.md).

Usage::

    .venv/bin/python tests/vectors/generate.py            # report which files differ
    .venv/bin/python tests/vectors/generate.py --write    # (re)write the files
    .venv/bin/python tests/vectors/generate.py --write attachment.json   # only this one

Importable: :func:`build_vectors` returns ``{filename: content}``.

While building, every vector is checked against the implementation (each
invalid case must raise exactly its error class), so a wrong vector cannot
be written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import struct
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

from protocol import canonical, crypto, errors, labels
from protocol.attachments import AttachmentDecryptor, AttachmentEncryptor, encrypted_size
from protocol.canonical import b64e
from protocol.devnet import GENESIS_TIME, DevMember, DevNetwork, build_devnet
from protocol.directory import verify_log
from protocol.envelope import (
    SealTo,
    check_recipients_active,
    content_signature,
    decode_header,
    envelope_hash,
    open_envelope,
    parse_envelope,
    seal_envelope,
    verify_envelope,
)
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey
from protocol.membership import (
    Action,
    Application,
    Certificate,
    Checkpoint,
    LogEntry,
    authority_fingerprint,
    make_action,
    make_checkpoint,
    make_entry,
)
from protocol.messages import (
    Attachment,
    Consent,
    ConsentDecision,
    Forwarded,
    Handling,
    Kind,
    MessageContent,
    Restriction,
    SignedContent,
    Tlp,
    Urgency,
)
from protocol.origin import verify_forward
from protocol.prekeys import SignedPrekey
from protocol.receipts import DeliveryReceipt, Evidence, EvidenceKind, make_evidence, make_receipt
from protocol.requestauth import parse_request_auth, sign_request, verify_request
from protocol.signed import SignedObject, sign_object

Json = dict[str, Any]

VECTOR_DIR: Final = Path(__file__).resolve().parent

#: The devnet seed and its members (admitted in this order by build_devnet).
SEED: Final = b"globe vectors v1"
MEMBERS: Final = [
    ("FR-PNF", "Parquet national financier"),
    ("DE-BKA", "Bundeskriminalamt"),
    ("ES-FCC", "Fiscalia contra la Corrupcion"),
]
#: Admitted after build_devnet, so that one sender can seal to three recipients.
FOURTH: Final = ("IT-ANAC", "Autorita Nazionale Anticorruzione")
ADMIT_AT: Final = GENESIS_TIME + 3600  # build_devnet's default admission time
SUSPEND_AT: Final = GENESIS_TIME + 4000
REINSTATE_AT: Final = GENESIS_TIME + 5000
SUSPEND_REASON: Final = "Designation under review by the national coordinator"
REINSTATE_REASON: Final = "Designation confirmed"
#: The "now" at which every vector is verified (certificates and prekeys are valid).
NOW: Final = GENESIS_TIME + 7200
ENVELOPE_CREATED: Final = NOW - 60
ENVELOPE_EXPIRES: Final = ENVELOPE_CREATED + 7 * 86400

#: RFC 8032 section 7.1, TEST 1.
RFC8032_SEED: Final = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
RFC8032_PUBLIC: Final = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)

#: Fields of the envelope vectors that change on every run (HPKE randomness).
HPKE_DEPENDENT: Final = ["envelope", "envelope_hash", "outer_signature", "recipients[].wrapped_key"]


def h(data: bytes) -> str:
    """Binary values are lower-case hex in every vector file."""
    return data.hex()


def rng_for(name: str) -> crypto.Rng:
    """The pinned rng of one vector: ``deterministic_rng(b"globe vectors v1/" + name)``."""
    return crypto.deterministic_rng(rng_seed(name))


def rng_seed(name: str) -> bytes:
    """The seed of :func:`rng_for`."""
    return SEED + b"/" + name.encode("ascii")


def expect(error: str, check: Callable[[], object]) -> str:
    """Run ``check`` and require it to raise exactly ``protocol.errors.<error>``."""
    cls = getattr(errors, error)
    try:
        check()
    except errors.GlobeError as exc:
        if type(exc) is not cls:
            raise AssertionError(f"expected {error}, got {type(exc).__name__}: {exc}") from exc
        return error
    raise AssertionError(f"expected {error}, nothing was raised")


def always(key: KemPrivateKey) -> Callable[[KeyId], KemPrivateKey | None]:
    """A private-key lookup that returns ``key`` whatever key id the header names."""
    return lambda _kid: key


def render(content: Json) -> str:
    """The text of a vector file: pretty-printed, sorted keys, trailing newline."""
    return json.dumps(content, indent=2, sort_keys=True) + "\n"


# --- the network -----------------------------------------------------------------------


def build_network() -> DevNetwork:
    """The devnet every structure vector uses: 6 log entries, 4 active members."""
    net = build_devnet(SEED, members=list(MEMBERS))
    net.admit(*FOURTH)  # entry 4; same bytes as passing it to build_devnet
    net.set_status("ES-FCC", Action.SUSPEND, SUSPEND_REASON, SUSPEND_AT)  # entry 5
    net.set_status("ES-FCC", Action.REINSTATE, REINSTATE_REASON, REINSTATE_AT)  # entry 6
    return net


def member(net: DevNetwork, authority: str) -> DevMember:
    return net.members[authority]


def message_content() -> MessageContent:
    """The fixed message sealed in the envelope vectors."""
    rng = rng_for("attachment")
    attachment = Attachment(
        name="releves-bancaires-2025.pdf",
        size=48_213,
        media_type="application/pdf",
        sha256=rng(32),
        key=rng(32),
        blob=rng(16).hex(),
    )
    return MessageContent(
        kind=Kind.REQUEST,
        subject="Bank records: Société Anonyme Exemple (case FR-PNF/2026/0042)",
        body=(
            "Dear colleagues,\n\n"
            "we ask for the account-opening documents and statements for 2024-2025 of the\n"
            "company named above (IBAN DE89 3704 0044 0532 0130 00).\n\n"
            "Intelligence only: a formal MLA request will follow.\n"
            "— PNF, bureau de l'entraide pénale internationale"
        ),
        language="en",
        urgency=Urgency.PRIORITY,
        handling=Handling(Tlp.AMBER, frozenset({Restriction.INTELLIGENCE_ONLY})),
        case="FR-PNF/2026/0042",
        deadline=GENESIS_TIME + 30 * 86400,
        attachments=(attachment,),
    )


# --- keys.json -------------------------------------------------------------------------


#: The authority id of the "same keys, another authority" fingerprint vector.
OTHER_AUTHORITY: Final = "FR-AFA"


def authority_fingerprint_data(
    authority: str, identity: bytes, transport: bytes, ka: bytes
) -> bytes:
    """The fingerprinted bytes of docs/PROTOCOL.md §3.4, built here from the text of the spec."""
    parts = (authority.encode("utf-8"), identity, transport, ka)
    return b"".join(struct.pack(">H", len(part)) + part for part in parts)


def _authority_fingerprint_case(
    name: str, authority: str, identity: VerifyKey, transport: VerifyKey, ka: KemPublicKey
) -> Json:
    data = authority_fingerprint_data(authority, bytes(identity), bytes(transport), bytes(ka))
    fp = crypto.fingerprint_digits(labels.AUTHORITY_FINGERPRINT, data)
    assert fp == authority_fingerprint(
        authority=AuthorityId.parse(authority), identity=identity, transport=transport, ka=ka
    )
    return {
        "name": name,
        "authority": authority,
        "identity_key": h(bytes(identity)),
        "transport_key": h(bytes(transport)),
        "ka_key": h(bytes(ka)),
        "data": h(data),
        "fingerprint": fp,
    }


def _authority_fingerprints(net: DevNetwork) -> list[Json]:
    m = member(net, "FR-PNF")
    app = m.application
    ident, transport, ka = app.identity_key, app.transport_key, app.ka_key
    cases = [
        _authority_fingerprint_case(
            "FR-PNF of the devnet (its keys in application.json)", "FR-PNF", ident, transport, ka
        ),
        _authority_fingerprint_case(
            "the same keys under another authority id", OTHER_AUTHORITY, ident, transport, ka
        ),
        _authority_fingerprint_case(
            "FR-PNF with its identity and transport keys swapped", "FR-PNF", transport, ident, ka
        ),
    ]
    assert app.fingerprint() == m.certificate.fingerprint() == cases[0]["fingerprint"]
    assert len({c["fingerprint"] for c in cases}) == len(cases)
    return cases


def build_keys(net: DevNetwork) -> Json:
    rng = rng_for("keys")
    ed_seeds = [RFC8032_SEED, bytes(32), bytes(range(32)), rng(32), rng(32)]
    kem_privates = [bytes(96), bytes(range(96)), rng(96), rng(96)]
    ed25519 = []
    for seed in ed_seeds:
        key = SigningKey(seed)
        ed25519.append(
            {
                "seed": h(seed),
                "public_key": h(bytes(key.verify_key)),
                "key_id": str(key.key_id),
            }
        )
    assert ed25519[0]["public_key"] == h(RFC8032_PUBLIC)
    kem = []
    for raw in kem_privates:
        priv = KemPrivateKey(raw)
        kem.append(
            {
                "private_key": h(raw),
                "public_key": h(bytes(priv.public_key)),
                "key_id": str(priv.key_id),
            }
        )
    signer = SigningKey(ed_seeds[3])
    signatures = []
    for label, message in (
        (labels.RECEIPT, b""),
        (labels.REQUEST_AUTH, b'{"hello":"world"}'),
    ):
        signatures.append(
            {
                "seed": h(signer.seed),
                "label": label.decode("ascii"),
                "message": h(message),
                "signed_bytes": h(crypto.labelled(label, message)),
                "signature": h(signer.sign(label, message)),
            }
        )
    stream = crypto.deterministic_rng(b"globe vectors v1/rng")
    calls = [{"n": n, "output": h(stream(n))} for n in (16, 32, 1, 96)]
    return {
        "description": (
            "Key derivations. ed25519: 32-byte seed -> public key, key id. "
            "kem: 96-byte hybrid private key (ML-KEM-768 seed d||z, 64 bytes, then X25519 "
            "scalar, 32 bytes) -> 1216-byte public key (ML-KEM-768 encapsulation key || "
            "X25519 public key), key id. authority_fingerprints: authority id and its "
            "identity, transport and key-agreement public keys -> data (u16be(len) || bytes, "
            "for each of the four in that order) -> fingerprint_digits("
            "'globe/v1/authority-fingerprint', data). labelled_signatures: Ed25519 over "
            "label || 0x00 || message. deterministic_rng: SHAKE-256(seed || u64be(counter)), "
            "counter starting at 1 and incremented per call, first n bytes."
        ),
        "ed25519": ed25519,
        "kem": kem,
        "authority_fingerprints": _authority_fingerprints(net),
        "labelled_signatures": signatures,
        "deterministic_rng": {"seed": h(b"globe vectors v1/rng"), "calls": calls},
    }


# --- canonical.json --------------------------------------------------------------------


def _nested(depth: int) -> Json:
    value: Json = {}
    for _ in range(depth):
        value = {"a": value}
    return value


CANONICAL_VALID: Final[list[tuple[str, Json]]] = [
    ("empty object", {}),
    ("one integer", {"a": 1}),
    (
        "keys sorted by byte value ('0' < '_' < 'b')",
        {"b": True, "a_": 0, "a0": False, "a": "x", "z9": []},
    ),
    ("integer bounds", {"max": 2**53 - 1, "zero": 0}),
    ("JCS escapes", {"s": '"\\\b\f\n\r\t\x00\x01\x1f'}),
    ("no escape for DEL, U+2028, '/', '<', non-ASCII", {"s": "\x7f\u2028/<>&é€𝄞"}),
    ("arrays and nesting", {"a": [1, [2, []], {"b": "c"}, True, False, ""]}),
    ("deepest nesting allowed (innermost object at depth 16)", _nested(16)),
]

# (name, input bytes, max_size, error)
CANONICAL_INVALID: Final[list[tuple[str, bytes, int, str]]] = [
    ("whitespace after colon", b'{"a": 1}', 4096, "NonCanonical"),
    ("leading whitespace", b' {"a":1}', 4096, "NonCanonical"),
    ("trailing newline", b'{"a":1}\n', 4096, "NonCanonical"),
    ("keys out of order", b'{"b":1,"a":2}', 4096, "NonCanonical"),
    ("duplicate key", b'{"a":1,"a":1}', 4096, "DuplicateKey"),
    ("duplicate key, nested", b'{"a":{"b":1,"b":2}}', 4096, "DuplicateKey"),
    ("needless escape of 'A'", b'{"a":"\\u0041"}', 4096, "NonCanonical"),
    ("escaped solidus", b'{"a":"\\/"}', 4096, "NonCanonical"),
    ("escaped non-ASCII", b'{"a":"\\u00e9"}', 4096, "NonCanonical"),
    ("upper-case hex in escape", b'{"a":"\\u001F"}', 4096, "NonCanonical"),
    ("\\u0008 instead of \\b", b'{"a":"\\u0008"}', 4096, "NonCanonical"),
    ("raw control character", b'{"a":"\x01"}', 4096, "MalformedError"),
    ("fraction", b'{"a":1.0}', 4096, "MalformedError"),
    ("exponent", b'{"a":1e2}', 4096, "MalformedError"),
    ("negative integer", b'{"a":-1}', 4096, "MalformedError"),
    ("integer above 2^53-1", b'{"a":9007199254740992}', 4096, "MalformedError"),
    ("integer above 2^64", b'{"a":18446744073709551616}', 4096, "MalformedError"),
    ("null", b'{"a":null}', 4096, "MalformedError"),
    ("top level is an array", b"[1]", 4096, "MalformedError"),
    ("top level is a string", b'"a"', 4096, "MalformedError"),
    ("invalid UTF-8", b'{"a":"\xff"}', 4096, "MalformedError"),
    ("lone surrogate escape", b'{"a":"\\ud800"}', 4096, "MalformedError"),
    ("byte order mark", b'\xef\xbb\xbf{"a":1}', 4096, "MalformedError"),
    ("upper-case key", b'{"A":1}', 4096, "MalformedError"),
    ("key starting with a digit", b'{"1a":1}', 4096, "MalformedError"),
    ("key with a hyphen", b'{"a-b":1}', 4096, "MalformedError"),
    ("key of 33 characters", b'{"' + b"a" * 33 + b'":1}', 4096, "MalformedError"),
    (
        "nesting too deep (innermost object at depth 17)",
        b'{"a":' * 17 + b"{}" + b"}" * 17,
        4096,
        "MalformedError",
    ),
    ("unterminated object", b'{"a":1', 4096, "MalformedError"),
    ("trailing comma", b'{"a":1,}', 4096, "MalformedError"),
    ("size cap (13 bytes, cap 12)", b'{"a":"xxxxx"}', 12, "SizeLimitExceeded"),
]

B64_VALID: Final[list[bytes]] = [b"", b"\x00", b"\xff\xfe", b"\xfb\xff", b"\x00\x00\x00", b"abcd"]
B64_INVALID: Final[list[tuple[str, str, str]]] = [
    ("padding", "AA==", "MalformedError"),
    ("length 1 mod 4", "A", "MalformedError"),
    ("standard alphabet '+'", "+_8", "MalformedError"),
    ("standard alphabet '/'", "_/8", "MalformedError"),
    ("space", "AA A", "MalformedError"),
    ("stray bits in last character (2 chars)", "AB", "NonCanonical"),
    ("stray bits in last character (3 chars)", "AAB", "NonCanonical"),
]


def build_canonical() -> Json:
    valid = []
    for name, value in CANONICAL_VALID:
        data = canonical.encode(value)
        assert canonical.decode(data, max_size=len(data), what="vector") == value
        valid.append({"name": name, "value": value, "encoding": h(data)})
    invalid = []
    for name, data, max_size, error in CANONICAL_INVALID:
        expect(error, partial(canonical.decode, data, max_size=max_size, what="vector"))
        invalid.append({"name": name, "input": h(data), "max_size": max_size, "error": error})
    b64_valid = [{"bytes": h(b), "text": b64e(b)} for b in B64_VALID]
    b64_invalid = []
    for name, text, error in B64_INVALID:
        expect(error, partial(canonical.b64d, text, what="vector"))
        b64_invalid.append({"name": name, "text": text, "error": error})
    return {
        "description": (
            "Canonical JSON (RFC 8785 subset). valid: value -> exact encoding (decode must "
            "give the value back). invalid: input bytes and the decode size cap -> error "
            "class. base64url: unpadded, URL alphabet, no stray bits."
        ),
        "valid": valid,
        "invalid": invalid,
        "base64url": {"valid": b64_valid, "invalid": b64_invalid},
    }


# --- genesis, applications, certificates, log ------------------------------------------


def _key_entry(key: SigningKey) -> Json:
    return {"seed": h(key.seed), "public_key": h(bytes(key.verify_key)), "key_id": str(key.key_id)}


def build_genesis(net: DevNetwork) -> Json:
    g = net.genesis
    return {
        "description": (
            "The devnet genesis (build_devnet(b'globe vectors v1')). The admin and hub "
            "private seeds are published for testing only."
        ),
        "genesis": h(g.encode()),
        "payload": h(g.signed.payload),
        "digest": h(g.digest),
        "fingerprint": g.fingerprint(),
        "network_id": str(g.network_id),
        "name": g.name,
        "threshold": g.threshold,
        "hub_url": g.hub_url,
        "created": g.created,
        "admins": [
            {"name": a.name, **_key_entry(k)} for a, k in zip(g.admins, net.admins, strict=True)
        ],
        "hub": _key_entry(net.hub),
        "signers": [str(s.key_id) for s in g.signed.signatures],
    }


def build_application(net: DevNetwork) -> Json:
    apps = []
    for m in net.members.values():
        a = m.application
        apps.append(
            {
                "authority": str(a.authority),
                "application": h(a.signed.encode()),
                "payload": h(a.signed.payload),
                "digest": h(a.digest),
                "name": a.name,
                "kinds": list(a.kinds),
                "languages": list(a.languages),
                "contact": a.contact,
                "legal_basis": a.legal_basis,
                "endpoint": a.endpoint,
                "created": a.created,
                "identity_seed": h(m.identity.seed),
                "identity_key": h(bytes(a.identity_key)),
                "identity_key_id": str(a.identity_key.key_id),
                "transport_seed": h(m.transport.seed),
                "transport_key": h(bytes(a.transport_key)),
                "transport_key_id": str(a.transport_key.key_id),
                "ka_private_key": h(m.ka.raw),
                "ka_key": h(bytes(a.ka_key)),
                "ka_key_id": str(a.ka_key.key_id),
            }
        )
    return {
        "description": (
            "Membership applications, each signed by the applicant's identity and transport "
            "keys under globe/v1/application. Decode against genesis.json. Private keys are "
            "published for testing only."
        ),
        "applications": apps,
    }


def _certificate_json(cert: Certificate) -> Json:
    return {
        "serial": cert.serial,
        "name": cert.name,
        "country": cert.authority.country,
        "kinds": list(cert.kinds),
        "languages": list(cert.languages),
        "endpoint": cert.endpoint,
        "identity_key": h(bytes(cert.identity_key)),
        "transport_key": h(bytes(cert.transport_key)),
        "ka_key": h(cert.ka_key_raw),
        "not_before": cert.not_before,
        "not_after": cert.not_after,
        "application": h(cert.application) if cert.application is not None else None,
    }


def build_certificate(net: DevNetwork) -> Json:
    admits = []
    for raw in net.entries:
        action = LogEntry.decode(raw, net.genesis).action
        if action.action is not Action.ADMIT:
            continue
        assert action.certificate is not None
        admits.append(
            {
                "authority": str(action.authority),
                "action": h(action.signed.encode()),
                "payload": h(action.signed.payload),
                "digest": h(action.digest),
                "issued": action.issued,
                "signers": [str(s.key_id) for s in action.signed.signatures],
                "certificate": _certificate_json(action.certificate),
            }
        )
    return {
        "description": (
            "Admit actions: signed objects under globe/v1/membership-action with k=2 admin "
            "signatures (the first two admins of genesis.json), each carrying the member's "
            "certificate. The certificate's 'application' is the application's digest."
        ),
        "admits": admits,
    }


def build_log(net: DevNetwork) -> Json:
    state = verify_log(net.genesis, net.entries)
    entries = [
        {"seq": i + 1, "entry": h(raw), "hash": h(LogEntry.decode(raw, net.genesis).hash)}
        for i, raw in enumerate(net.entries)
    ]
    members = []
    for aid in sorted(state.members, key=str):
        m = state.members[aid]
        c = m.certificate
        members.append(
            {
                "authority": str(aid),
                "status": m.status.value,
                "serial": c.serial,
                "identity_key_id": str(c.identity_key.key_id),
                "transport_key_id": str(c.transport_key.key_id),
                "ka_key_id": str(KemPublicKey(c.ka_key_raw).key_id),
                "last_action": h(m.last_action),
                "admitted_seq": m.admitted_seq,
                "updated_seq": m.updated_seq,
                "reason": m.reason,
                "not_before": c.not_before,
                "not_after": c.not_after,
            }
        )
    return {
        "description": (
            "The membership log: entries 1-4 admit FR-PNF, DE-BKA, ES-FCC, IT-ANAC; 5 "
            "suspends ES-FCC; 6 reinstates it. verify_log(genesis, entries) must give "
            "'head' at 'seq' and the member table (sorted by authority)."
        ),
        "now": NOW,
        "entries": entries,
        "seq": state.seq,
        "head": h(state.head),
        "time": state.time,
        "members": members,
    }


def build_checkpoint(net: DevNetwork) -> Json:
    state = net.directory
    cp = make_checkpoint(genesis=net.genesis, hub=net.hub, seq=state.seq, head=state.head, time=NOW)
    return {
        "description": "A hub checkpoint (globe/v1/checkpoint) of the head of log.json.",
        "checkpoint": h(cp.signed.encode()),
        "payload": h(cp.signed.payload),
        "seq": cp.seq,
        "head": h(cp.head),
        "time": cp.time,
        "hub_key": h(bytes(net.genesis.hub_key)),
    }


def build_prekey(net: DevNetwork) -> Json:
    out = []
    for m in net.members.values():
        sp = m.signed_prekey
        out.append(
            {
                "authority": str(m.authority),
                "prekey": h(sp.signed.encode()),
                "payload": h(sp.signed.payload),
                "identity_key": h(bytes(m.identity.verify_key)),
                "private_key": h(m.prekey.raw),
                "public_key": h(bytes(sp.key)),
                "key_id": str(sp.key.key_id),
                "not_before": sp.not_before,
                "not_after": sp.not_after,
            }
        )
    return {
        "description": (
            "Signed prekeys (globe/v1/prekey), verified with the member's certified identity "
            "key. Private halves published for testing only."
        ),
        "now": NOW,
        "prekeys": out,
    }


def _receipt_params() -> Json:
    rng = rng_for("receipt")
    return {
        "message_id": MessageId(rng(16)),
        "envelope_hash": rng(32),
        "sender": AuthorityId.parse("FR-PNF"),
        "recipient": AuthorityId.parse("DE-BKA"),
        "time": NOW + 30,
    }


def build_receipt(net: DevNetwork) -> Json:
    p = _receipt_params()
    recipient = member(net, "DE-BKA")
    signed = make_receipt(genesis=net.genesis, identity=recipient.identity, **p)
    receipt = DeliveryReceipt.decode(signed.encode(), net.directory)
    return {
        "description": (
            "A delivery receipt (globe/v1/receipt) by DE-BKA's identity key. The message id "
            "and envelope hash come from deterministic_rng(b'globe vectors v1/receipt') "
            "(16 then 32 bytes); they name no real envelope. Decode against the directory "
            "of log.json."
        ),
        "receipt": h(signed.encode()),
        "payload": h(signed.payload),
        "message_id": str(receipt.message_id),
        "envelope_hash": h(receipt.envelope_hash),
        "sender": str(receipt.sender),
        "recipient": str(receipt.recipient),
        "key": str(receipt.key),
        "time": receipt.time,
    }


def _evidence_list(net: DevNetwork) -> list[Evidence]:
    rng = rng_for("evidence")
    mid = MessageId(rng(16))
    env_hash = rng(32)
    fr, de, es = (AuthorityId.parse(x) for x in ("FR-PNF", "DE-BKA", "ES-FCC"))
    specs: list[tuple[EvidenceKind, list[AuthorityId], str | None, int]] = [
        (EvidenceKind.ACCEPTED, [es, de], None, NOW),
        (EvidenceKind.REJECTED, [de], "bad-signature", NOW + 1),
        (EvidenceKind.DELIVERED, [de], None, NOW + 60),
        (EvidenceKind.NON_DELIVERY, [es], "expired", NOW + 7 * 86400),
    ]
    return [
        make_evidence(
            genesis=net.genesis,
            hub=net.hub,
            kind=kind,
            message_id=mid,
            envelope_hash=env_hash,
            sender=fr,
            recipients=recipients,
            time=time,
            reason=reason,
        )
        for kind, recipients, reason, time in specs
    ]


def build_evidence(net: DevNetwork) -> Json:
    items = []
    for ev in _evidence_list(net):
        items.append(
            {
                "kind": ev.kind.value,
                "evidence": h(ev.signed.encode()),
                "payload": h(ev.signed.payload),
                "message_id": str(ev.message_id),
                "envelope_hash": h(ev.envelope_hash),
                "sender": str(ev.sender),
                "recipients": [str(r) for r in ev.recipients],
                "reason": ev.reason,
                "time": ev.time,
            }
        )
    return {
        "description": (
            "Hub evidence (globe/v1/evidence), one per kind, verified with the genesis hub "
            "key. Message id and envelope hash from deterministic_rng(b'globe vectors "
            "v1/evidence') (16 then 32 bytes)."
        ),
        "evidence": items,
    }


# --- request_auth.json -----------------------------------------------------------------

_REQUESTS: Final = [
    ("post-envelope", "FR-PNF", "POST", "/v1/envelopes", b"GLBE\x01\x01 (envelope bytes)"),
    ("get-directory", "DE-BKA", "GET", "/v1/directory/entries?since=3&limit=100", b""),
]


def build_request_auth(net: DevNetwork) -> Json:
    cases = []
    network = net.genesis.digest
    for name, who, method, target, body in _REQUESTS:
        key = member(net, who).transport
        nonce = rng_for(f"request-auth/{name}")(16)
        header = sign_request(
            key=key,
            network=network,
            audience="hub",
            method=method,
            target=target,
            body=body,
            created=NOW,
            rng=rng_for(f"request-auth/{name}"),
        )
        base = canonical.encode(
            {
                "audience": "hub",
                "body": b64e(crypto.sha256(body)),
                "created": NOW,
                "kid": str(key.key_id),
                "method": method,
                "network": b64e(network),
                "nonce": b64e(nonce),
                "target": target,
            }
        )
        auth = parse_request_auth(header)
        assert auth.nonce == nonce
        key.verify_key.verify(labels.REQUEST_AUTH, base, auth.signature)
        verify_request(
            auth,
            key=key.verify_key,
            network=network,
            audience="hub",
            method=method,
            target=target,
            body=body,
            now=NOW,
        )
        cases.append(
            {
                "name": name,
                "authority": who,
                "transport_seed": h(key.seed),
                "public_key": h(bytes(key.verify_key)),
                "key_id": str(key.key_id),
                "network": h(network),
                "audience": "hub",
                "method": method,
                "target": target,
                "body": h(body),
                "created": NOW,
                "nonce_rng_seed": h(rng_seed(f"request-auth/{name}")),
                "nonce": h(nonce),
                "signature_base": h(base),
                "signed_bytes": h(crypto.labelled(labels.REQUEST_AUTH, base)),
                "signature": h(auth.signature),
                "header": header,
                "now": NOW,
            }
        )
    return {
        "description": (
            "Signed HTTP requests (Globe-Auth header) by a member's transport key. The nonce "
            "is the first 16 bytes of deterministic_rng(nonce_rng_seed). Verify at 'now' "
            "(accepted skew 60 s)."
        ),
        "cases": cases,
    }


# --- attachment.json -------------------------------------------------------------------

#: Plaintext bytes per chunk in attachment.json (the smallest a reader accepts).
ATTACHMENT_CHUNK: Final = 4096
#: Two full chunks and a final chunk of 1,000 bytes.
ATTACHMENT_SIZE: Final = 2 * ATTACHMENT_CHUNK + 1000


def encrypt_attachment(key: bytes, blob_id: str, plaintext: bytes, chunk_size: int) -> bytes:
    """The whole blob, through the streaming encryptor."""
    enc = AttachmentEncryptor(key, blob_id, chunk_size)
    return enc.header() + enc.update(plaintext) + enc.finalize()


def decrypt_attachment(key: bytes, blob_id: str, blob: bytes) -> bytes:
    """The whole plaintext, through the streaming decryptor."""
    dec = AttachmentDecryptor(key, blob_id)
    return dec.update(blob) + dec.finalize()


def _attachment_chunk(
    key: bytes, header: bytes, blob_id: str, i: int, pt: bytes, *, final: bool
) -> Json:
    """One chunk built from §8.4.2 alone (not through protocol.attachments)."""
    nonce = bytes(4) + i.to_bytes(8, "big")
    aad = crypto.labelled(
        labels.ATTACHMENT, header, blob_id.encode(), i.to_bytes(8, "big"), bytes([final])
    )
    return {
        "index": i,
        "final": final,
        "nonce": h(nonce),
        "aad": h(aad),
        "plaintext_size": len(pt),
        "ciphertext": h(crypto.aead_encrypt(key, nonce, pt, aad)),
    }


def assemble(blob: bytes, parts: list[Json]) -> bytes:
    """An invalid case's bytes: ``blob[from:to]`` slices and literal ``hex``, concatenated."""
    return b"".join(
        blob[part["from"] : part["to"]] if "from" in part else bytes.fromhex(part["hex"])
        for part in parts
    )


def build_attachment() -> Json:
    rng = rng_for("attachment")
    key = rng(32)
    blob_id = rng(16).hex()
    plaintext = rng(ATTACHMENT_SIZE)
    other_key = rng(32)
    other_blob_id = rng(16).hex()
    size = ATTACHMENT_CHUNK
    blob = encrypt_attachment(key, blob_id, plaintext, size)
    header = blob[:16]
    pieces = [plaintext[i : i + size] for i in range(0, len(plaintext), size)]
    chunks = [
        _attachment_chunk(key, header, blob_id, i, pt, final=i == len(pieces) - 1)
        for i, pt in enumerate(pieces)
    ]
    assert header + b"".join(bytes.fromhex(c["ciphertext"]) for c in chunks) == blob
    assert len(blob) == encrypted_size(len(plaintext), size)
    assert decrypt_attachment(key, blob_id, blob) == plaintext
    n = len(blob)
    full = size + crypto.AEAD_TAG_LEN
    c0, c1, c2 = (16, 16 + full), (16 + full, 16 + 2 * full), (16 + 2 * full, n)
    # The same plaintext under the same key, for another blob id: its chunks must not fit here.
    foreign = encrypt_attachment(key, other_blob_id, plaintext, size)
    # The canonical form has no empty final chunk after full ones: chunks 0 and 1 as they
    # are (same key, header, blob id, index and flag), then an empty final chunk at index 2.
    empty_final = _attachment_chunk(key, header, blob_id, 2, b"", final=True)["ciphertext"]

    def flip(offset: int) -> list[Json]:
        return [
            {"from": 0, "to": offset},
            {"hex": h(bytes([blob[offset] ^ 0x01]))},
            {"from": offset + 1, "to": n},
        ]

    def header_patch(offset: int, patch: bytes) -> list[Json]:
        return [
            {"from": 0, "to": offset},
            {"hex": h(patch)},
            {"from": offset + len(patch), "to": n},
        ]

    def span(*ranges: tuple[int, int]) -> list[Json]:
        return [{"from": lo, "to": hi} for lo, hi in ranges]

    whole = (0, n)
    hd = (0, 16)
    cases: list[tuple[str, str, str, list[Json], Json]] = [
        ("truncated-in-header", "Truncated", "the first 10 bytes", span((0, 10)), {}),
        ("header-only", "Truncated", "the header without any chunk", span(hd), {}),
        ("truncated-in-chunk", "DecryptionFailed", "cut in the middle of chunk 1",
         span((0, c1[0] + 2000)), {}),
        ("dropped-final", "Truncated", "header, chunks 0 and 1; the final chunk dropped",
         span((0, c2[0])), {}),
        ("truncated-final-tag", "Truncated", "the final chunk cut to 10 bytes",
         span((0, c2[0] + 10)), {}),
        ("truncated-final", "DecryptionFailed", "the final chunk cut by one byte",
         span((0, n - 1)), {}),
        ("swapped-chunks", "DecryptionFailed", "chunks 0 and 1 swapped", span(hd, c1, c0, c2), {}),
        ("duplicated-chunk", "DecryptionFailed", "chunk 0 twice", span(hd, c0, c0, c1, c2), {}),
        ("dropped-middle", "DecryptionFailed", "chunk 1 dropped", span(hd, c0, c2), {}),
        ("flipped-bit-chunk", "DecryptionFailed", "bit 0 of chunk 1's first byte flipped",
         flip(c1[0]), {}),
        ("flipped-bit-final-tag", "DecryptionFailed", "bit 0 of the last byte flipped",
         flip(n - 1), {}),
        ("trailing-byte", "DecryptionFailed", "one zero byte after the final chunk",
         [*span(whole), {"hex": "00"}], {}),
        ("trailing-chunk", "DecryptionFailed", "chunk 1 again after the final chunk",
         span(whole, c1), {}),
        ("wrong-blob-id", "DecryptionFailed", "the valid blob, opened under another blob id",
         span(whole), {"blob_id": other_blob_id}),
        ("wrong-key", "DecryptionFailed", "the valid blob, opened with another key",
         span(whole), {"key": h(other_key)}),
        ("chunk-from-other-blob", "DecryptionFailed",
         "chunk 1 of the same plaintext under the same key encrypted for other_blob_id",
         [*span(hd, c0), {"hex": h(foreign[c1[0] : c1[1]])}, *span(c2)], {}),
        ("bad-magic", "MalformedError", "magic GLBB", header_patch(0, b"GLBB"), {}),
        ("version-2", "UnsupportedVersion", "version byte 2", header_patch(4, b"\x02"), {}),
        ("suite-2", "UnsupportedSuite", "suite byte 2", header_patch(5, b"\x02"), {}),
        ("reserved-nonzero", "MalformedError", "last reserved byte 1",
         header_patch(15, b"\x01"), {}),
        ("chunk-size-too-small", "MalformedError", "chunk_size 4095",
         header_patch(8, (4095).to_bytes(4, "big")), {}),
        ("chunk-size-changed", "DecryptionFailed", "chunk_size 8192 (in range, not the one used)",
         header_patch(8, (8192).to_bytes(4, "big")), {}),
        ("empty-final-after-chunks", "MalformedError",
         "the first 8192 plaintext bytes as chunks 0 and 1 (not final) and an empty final "
         "chunk 2: every tag verifies, but this is not the canonical form",
         [*span(hd, c0, c1), {"hex": empty_final}], {}),
    ]  # fmt: skip
    invalid = []
    for name, error, what, parts, override in cases:
        data = assemble(blob, parts)
        k = bytes.fromhex(override.get("key", h(key)))
        bid = override.get("blob_id", blob_id)
        expect(error, partial(decrypt_attachment, k, bid, data))
        invalid.append(
            {
                "name": name,
                "error": error,
                "mutation": what,
                "parts": parts,
                "blob_sha256": h(crypto.sha256(data)),
                **override,
            }
        )
    return {
        "description": (
            "An attachment blob (globe/v1/attachment, PROTOCOL.md 8.4.2): key, blob id and "
            "plaintext are the first three outputs of deterministic_rng(b'globe vectors "
            "v1/attachment') (32, 16 (hex) and 9192 bytes), then another key and blob id "
            "(32, 16) for the refusals. Encrypting must give 'blob' exactly; decrypting it must "
            "give the plaintext. An invalid case's bytes are its 'parts' concatenated: "
            "blob[from:to] or literal hex (their SHA-256 is 'blob_sha256'); decrypt them with "
            "'key' and 'blob_id' unless the case gives its own: that must raise exactly "
            "'error' (at update or at finalize)."
        ),
        "key": h(key),
        "blob_id": blob_id,
        "chunk_size": size,
        "plaintext": h(plaintext),
        "size": len(plaintext),
        "sha256": h(crypto.sha256(plaintext)),
        "header": h(header),
        "chunks": chunks,
        "blob": h(blob),
        "encrypted_size": len(blob),
        "other_key": h(other_key),
        "other_blob_id": other_blob_id,
        "invalid": invalid,
    }


# --- envelopes -------------------------------------------------------------------------


def _bucket(n: int) -> int:
    size = 1024
    while size < n:
        size <<= 1
    return size


def seal(net: DevNetwork, name: str, recipients: list[tuple[str, int]]) -> tuple[Json, bytes]:
    """Seal the fixed content from FR-PNF; return the vector and the envelope bytes."""
    content = message_content().encode()
    sender = member(net, "FR-PNF")
    state = net.directory
    # seal_envelope draws the message id (16 bytes) then the content key (32 bytes).
    probe = rng_for(name)
    message_id = MessageId(probe(16))
    content_key = probe(crypto.AEAD_KEY_LEN)
    raw = seal_envelope(
        genesis=net.genesis,
        sender=sender.authority,
        identity=sender.identity,
        recipients=[
            SealTo(member(net, a).authority, seq, member(net, a).signed_prekey.key)
            for a, seq in recipients
        ],
        content=content,
        created=ENVELOPE_CREATED,
        expires=ENVELOPE_EXPIRES,
        dir_seq=state.seq,
        dir_head=state.head,
        rng=rng_for(name),
    )
    env = parse_envelope(raw)
    header = env.header.raw
    header_digest = crypto.sha256(header)
    commit = crypto.sha256(crypto.labelled(labels.KEY_COMMIT, message_id.raw, content_key))
    assert env.header.message_id == message_id
    assert env.header.commit == commit
    inner = sender.identity.sign(labels.CONTENT, header_digest + content)
    framed = struct.pack(">I", len(content)) + content + inner
    plaintext = framed + bytes(_bucket(len(framed)) - len(framed))
    body = crypto.aead_encrypt(
        content_key,
        bytes(crypto.AEAD_NONCE_LEN),
        plaintext,
        crypto.labelled(labels.BODY_AAD, header),
    )
    assert body == env.body
    sender.identity.verify_key.verify(labels.ENVELOPE, raw[:-64], env.signature)
    rows = []
    for (authority, seq), wrapped in zip(sorted(recipients), env.wrapped, strict=True):
        m = member(net, authority)
        info = crypto.labelled(labels.WRAP, header_digest, authority.encode("ascii"))
        assert m.prekey.open(wrapped, info) == content_key
        opened = open_envelope(
            env, directory=state, me=m.authority, private_key=always(m.prekey), now=NOW
        )
        assert opened.content == content
        assert opened.inner_signature == inner
        rows.append(
            {
                "authority": authority,
                "seq": seq,
                "prekey_key_id": str(m.signed_prekey.key.key_id),
                "prekey_private_key": h(m.prekey.raw),
                "wrap_info": h(info),
                "wrapped_key": h(wrapped),
            }
        )
    vector = {
        "description": (
            f"An envelope from FR-PNF to {len(recipients)} recipient(s), sealed at 'created' "
            "and opened at 'now' against the directory of log.json. Message id and content "
            "key are the first two outputs (16, 32 bytes) of deterministic_rng(rng_seed). "
            "Fields in 'hpke_dependent' differ on every generation (HPKE encapsulation "
            "randomness); every other field is reproducible."
        ),
        "now": NOW,
        "created": ENVELOPE_CREATED,
        "expires": ENVELOPE_EXPIRES,
        "dir_seq": state.seq,
        "dir_head": h(state.head),
        "rng_seed": h(rng_seed(name)),
        "message_id": str(message_id),
        "content_key": h(content_key),
        "commit": h(commit),
        "sender": "FR-PNF",
        "sender_identity_key": h(bytes(sender.identity.verify_key)),
        "sender_identity_key_id": str(sender.identity.key_id),
        "content": h(content),
        "header": h(header),
        "header_digest": h(header_digest),
        "plaintext": h(plaintext),
        "body": h(body),
        "inner_signature": h(inner),
        "recipients": rows,
        "outer_signature": h(env.signature),
        "envelope": h(raw),
        "envelope_hash": h(envelope_hash(raw)),
        "hpke_dependent": list(HPKE_DEPENDENT),
    }
    return vector, raw


# --- forward.json ----------------------------------------------------------------------

FORWARD_RED: Final = Handling(Tlp.RED, frozenset({Restriction.NO_ONWARD}))


def _proof(
    net: DevNetwork, name: str, sender: str, to: str, content: MessageContent
) -> SignedContent:
    """The proof of origin (header, content, inner signature) of a message ``sender`` seals.

    Every part is reproducible: the header comes from seal_envelope with the pinned rng
    (HPKE randomness only touches the wrapped keys, which the proof does not keep) and
    Ed25519 signatures are deterministic."""
    s, r = member(net, sender), member(net, to)
    data = content.encode()
    raw = seal_envelope(
        genesis=net.genesis, sender=s.authority, identity=s.identity,
        recipients=[SealTo(r.authority, 1, r.signed_prekey.key)], content=data,
        created=ENVELOPE_CREATED, expires=ENVELOPE_EXPIRES, dir_seq=net.directory.seq,
        dir_head=net.directory.head, rng=rng_for(name),
        blobs=[a.blob for a in content.attachments],
    )  # fmt: skip
    header = parse_envelope(raw).header.raw
    return SignedContent(header, data, content_signature(s.identity, header, data))


def _attachment(name: str) -> Attachment:
    rng = rng_for(name)
    return Attachment("ledger.xlsx", 1_000_000, "application/vnd.ms-excel", rng(32), rng(32),
                      rng(16).hex())  # fmt: skip


def _message(subject: str, **kw: Any) -> MessageContent:
    base: dict[str, Any] = {
        "kind": Kind.INFORMATION, "subject": subject, "body": "See the attached ledger.",
        "language": "en", "urgency": Urgency.URGENT, "handling": FORWARD_RED,
    }  # fmt: skip
    base.update(kw)
    return MessageContent(**base)


def _decision(
    net: DevNetwork,
    name: str,
    signer: str,
    about: MessageId,
    to: list[str],
    *,
    decision: ConsentDecision = ConsentDecision.GRANTED,
) -> SignedContent:
    content = _message(
        "Re: Accounts", kind=Kind.CONSENT_DECISION, body="Consent given.",
        handling=Handling(Tlp.AMBER), in_reply_to=MessageId(rng_for(name + "/request")(16)),
        consent=Consent(about, tuple(AuthorityId.parse(a) for a in to), None, decision,
                        None if decision is ConsentDecision.GRANTED else "not now"),
    )  # fmt: skip
    return _proof(net, name, signer, "DE-BKA" if signer == "FR-PNF" else "FR-PNF", content)


def build_forward(net: DevNetwork) -> Json:
    """ES-FCC's RED message to FR-PNF, ES-FCC's grant for IT-ANAC, FR-PNF's forward."""
    origin_att = _attachment("forward/origin-attachment")
    origin = _proof(net, "forward/origin", "ES-FCC", "FR-PNF",
                    _message("Accounts", attachments=(origin_att,)))  # fmt: skip
    origin_id = parse_envelope_header_id(origin)
    grant = _decision(net, "forward/grant", "ES-FCC", origin_id, ["IT-ANAC"])
    copy_rng = rng_for("forward/copy")
    copy = Attachment(origin_att.name, origin_att.size, origin_att.media_type, origin_att.sha256,
                      copy_rng(32), copy_rng(16).hex())  # fmt: skip
    forward = _message("Fwd: Accounts", body="For the joint team.", attachments=(copy,),
                       forwarded=Forwarded(origin, (grant,)))  # fmt: skip
    state = net.directory
    verified = verify_forward(
        forward, forwarder=AuthorityId.parse("FR-PNF"), recipient=AuthorityId.parse("IT-ANAC"),
        directory=state,
    )  # fmt: skip
    assert verified.sender == AuthorityId.parse("ES-FCC")

    def case(name: str, content: MessageContent, error: str, *, forwarder: str = "FR-PNF",
             recipient: str = "IT-ANAC") -> Json:  # fmt: skip
        expect(error, lambda: verify_forward(
            content, forwarder=AuthorityId.parse(forwarder),
            recipient=AuthorityId.parse(recipient), directory=state,
        ))  # fmt: skip
        return {"name": name, "forward": h(content.encode()), "forwarder": forwarder,
                "recipient": recipient, "error": error}  # fmt: skip

    def with_(**kw: Any) -> MessageContent:
        fields = {"handling": forward.handling, "attachments": forward.attachments,
                  "forwarded": forward.forwarded}  # fmt: skip
        fields.update(kw)
        return _message("Fwd: Accounts", body="For the joint team.", **fields)

    tampered = SignedContent(origin.header, origin.content.replace(b"Accounts", b"Accountz"),
                             origin.signature)  # fmt: skip
    other_key = SignedContent(origin.header, origin.content, member(net, "DE-BKA").identity.sign(
        labels.CONTENT, crypto.sha256(origin.header) + origin.content))  # fmt: skip
    by_forwarder = _decision(net, "forward/grant-by-fr", "FR-PNF", origin_id, ["IT-ANAC"])
    refused = _decision(
        net, "forward/refusal", "ES-FCC", origin_id, ["IT-ANAC"], decision=ConsentDecision.REFUSED
    )
    elsewhere = _decision(net, "forward/grant-other", "ES-FCC",
                          MessageId(rng_for("forward/other-id")(16)), ["IT-ANAC"])  # fmt: skip
    nested = _proof(net, "forward/nested", "FR-PNF", "IT-ANAC", forward)
    cases = [
        case("recipient-without-consent", forward, "ConsentRequired", recipient="DE-BKA"),
        case("forwarder-without-consent", forward, "ConsentRequired", forwarder="DE-BKA"),
        case("no-consent-at-all", with_(forwarded=Forwarded(origin)), "ConsentRequired"),
        case("tlp-lowered", with_(handling=Handling(Tlp.AMBER, FORWARD_RED.restrictions)),
             "HandlingLowered"),
        case("restriction-dropped", with_(handling=Handling(Tlp.RED)), "HandlingLowered"),
        case("attachment-dropped", with_(attachments=()), "MalformedError"),
        case("attachment-changed", with_(attachments=(dataclasses.replace(copy, size=1),)),
             "MalformedError"),
        case("consent-by-the-forwarder", with_(forwarded=Forwarded(origin, (by_forwarder,))),
             "MalformedError"),
        case("consent-refused", with_(forwarded=Forwarded(origin, (refused,))),
             "MalformedError"),
        case("consent-for-another-message", with_(forwarded=Forwarded(origin, (elsewhere,))),
             "MalformedError"),
        case("origin-content-altered", with_(forwarded=Forwarded(tampered, (grant,))),
             "BadSignature"),
        case("origin-signed-by-another-member", with_(forwarded=Forwarded(other_key, (grant,))),
             "BadSignature"),
        case("origin-is-a-forward", with_(forwarded=Forwarded(nested, (grant,))),
             "MalformedError"),
    ]  # fmt: skip
    return {
        "description": (
            "Forwarding with proof of origin (PROTOCOL.md §8.5), checked against the directory "
            "of log.json. 'origin' is ES-FCC's RED message to FR-PNF (its header, content and "
            "inner signature), 'grant' ES-FCC's signed consent decision naming IT-ANAC, "
            "'forward' the content FR-PNF sends to IT-ANAC. verify_forward(forward, forwarder, "
            "recipient) must accept 'forward' from FR-PNF to IT-ANAC and refuse each case with "
            "exactly its error."
        ),
        "origin": {
            "header": h(origin.header),
            "content": h(origin.content),
            "signature": h(origin.signature),
            "sender": "ES-FCC",
            "message_id": str(origin_id),
        },
        "grant": {
            "header": h(grant.header),
            "content": h(grant.content),
            "signature": h(grant.signature),
        },
        "forward": h(forward.encode()),
        "forwarder": "FR-PNF",
        "recipient": "IT-ANAC",
        "invalid": cases,
    }


def parse_envelope_header_id(proof: SignedContent) -> MessageId:
    return decode_header(proof.header).message_id


# --- invalid.json ----------------------------------------------------------------------


def mutate(data: bytes, mutation: Json) -> bytes:
    """Apply a recorded mutation (also used by the tests on the committed envelopes)."""
    op = mutation["op"]
    if op == "none":
        return data
    if op == "xor":
        out = bytearray(data)
        out[mutation["offset"]] ^= mutation["mask"]
        return bytes(out)
    if op == "set":
        patch = bytes.fromhex(mutation["bytes"])
        off = mutation["offset"]
        return data[:off] + patch + data[off + len(patch) :]
    if op == "truncate":
        return data[: mutation["length"]]
    if op == "append":
        return data + bytes.fromhex(mutation["bytes"])
    raise ValueError(f"unknown mutation {op!r}")


class Cases:
    """Collects invalid cases, checking each against the implementation first."""

    def __init__(self) -> None:
        self.items: list[Json] = []

    def add(
        self, name: str, structure: str, error: str, check: Callable[[], object], **inputs: Any
    ) -> None:
        assert all(c["name"] != name for c in self.items), name
        expect(error, check)
        self.items.append({"name": name, "structure": structure, "error": error, **inputs})


def _resign(payload: Json, label: bytes, signers: list[SigningKey]) -> bytes:
    return sign_object(payload, label, signers).encode()


def _payload(signed: SignedObject) -> Json:
    return dict(signed.payload_json(what="vector"))


def _strip(signed: SignedObject, keep: int) -> SignedObject:
    return SignedObject(signed.payload, signed.signatures[:keep])


def _identifier_cases(cases: Cases) -> None:
    for name, text in [
        ("lower-case authority id", "fr-PNF"),
        ("authority id with an unassigned country", "XX-ABC"),
        ("authority id name too short", "FR-P"),
        ("authority id with a Cyrillic letter", "FR-PN\u0424"),
    ]:
        cases.add(
            name,
            "authority_id",
            "InvalidIdentifier",
            partial(AuthorityId.parse, text),
            text=text,
        )
    for name, text in [
        ("key id with upper-case hex", "ed25519:" + "AB" * 16),
        ("key id with an unknown algorithm", "x25519:" + "ab" * 16),
        ("key id digest too short", "ed25519:" + "ab" * 15),
    ]:
        cases.add(name, "key_id", "InvalidIdentifier", partial(KeyId.parse, text), text=text)


def _key_cases(cases: Cases) -> None:
    order8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
    mixed = bytes.fromhex("06903bfea2a1ddc586e78a189513f47ac6ae27e4e7803a1c2fb94c94b18f3958")
    p = 2**255 - 19
    for name, raw in [
        ("Ed25519 identity point (small order)", (1).to_bytes(32, "little")),
        ("Ed25519 point of order 8", order8),
        ("Ed25519 mixed-order point (seed 0 key + order-8 point)", mixed),
        ("Ed25519 non-canonical y (y = p)", p.to_bytes(32, "little")),
        ("Ed25519 key of 31 bytes", bytes(SigningKey(bytes(32)).verify_key)[:31]),
    ]:
        cases.add(name, "ed25519_public", "InvalidKey", partial(VerifyKey, raw), key=h(raw))
    good = bytes(KemPrivateKey(bytes(range(96))).public_key)
    ek = good[:1184]
    bad_ek = b"\xff\xff" + ek[2:]  # first coefficient 0xfff >= q = 3329
    for name, raw in [
        ("hybrid key with X25519 u = 0 (low order)", ek + bytes(32)),
        ("hybrid key with X25519 u = 1 (low order)", ek + (1).to_bytes(32, "little")),
        ("hybrid key with X25519 u = p (non-canonical)", ek + p.to_bytes(32, "little")),
        ("hybrid key with an ML-KEM coefficient >= q", bad_ek + good[1184:]),
        ("hybrid key of 1215 bytes", good[:-1]),
    ]:
        cases.add(name, "kem_public", "InvalidKey", partial(KemPublicKey, raw), key=h(raw))


def _genesis_cases(cases: Cases, net: DevNetwork) -> None:
    g = net.genesis
    base = _payload(g.signed)

    def add(name: str, error: str, data: bytes) -> None:
        cases.add(name, "genesis", error, lambda: Genesis.decode(data), genesis=h(data))

    add("genesis with 1 of 2 admin signatures", "QuorumNotMet", _strip(g.signed, 1).encode())
    outsiders = [SigningKey(crypto.sha256(b"outsider" + bytes([i]))) for i in range(2)]
    add(
        "genesis signed by two keys that are not its admins",
        "QuorumNotMet",
        _resign(base, labels.GENESIS, outsiders),
    )
    add(
        "genesis signed under the checkpoint label",
        "QuorumNotMet",
        _resign(base, labels.CHECKPOINT, net.admins[:2]),
    )
    add(
        "genesis version 2",
        "UnsupportedVersion",
        _resign({**base, "v": 2}, labels.GENESIS, net.admins[:2]),
    )
    add(
        "genesis with an unknown field",
        "UnknownField",
        _resign({**base, "extra": 1}, labels.GENESIS, net.admins[:2]),
    )
    add(
        "genesis whose hub key is an admin key",
        "MalformedError",
        _resign(
            {**base, "hub_key": b64e(bytes(net.admins[2].verify_key))},
            labels.GENESIS,
            net.admins[:2],
        ),
    )
    add(
        "genesis with threshold 0",
        "MalformedError",
        _resign({**base, "threshold": 0}, labels.GENESIS, net.admins[:2]),
    )
    text = g.encode()
    dup = text.replace(b'{"payload":', b'{"payload":"AA","payload":', 1)
    add("genesis container with a duplicate key", "DuplicateKey", dup)
    add(
        "genesis container with whitespace",
        "NonCanonical",
        text.replace(b'","sigs":', b'", "sigs":'),
    )
    sigs = g.signed.signatures
    add(
        "genesis signatures not sorted by key id",
        "MalformedError",
        canonical.encode(
            {
                "payload": b64e(g.signed.payload),
                "sigs": [{"kid": str(s.key_id), "sig": b64e(s.sig)} for s in reversed(sigs)],
            }
        ),
    )
    add("genesis above the 16 KiB cap", "SizeLimitExceeded", text + b" " * (16 * 1024))


def _application_cases(cases: Cases, net: DevNetwork) -> None:
    m = member(net, "FR-PNF")
    signed = m.application.signed
    base = _payload(signed)

    def add(name: str, error: str, data: bytes) -> None:
        cases.add(
            name,
            "application",
            error,
            lambda: Application.decode(data, net.genesis),
            application=h(data),
        )

    only_identity = SignedObject(
        signed.payload, tuple(s for s in signed.signatures if s.key_id == m.identity.key_id)
    )
    add("application without the transport key's signature", "BadSignature", only_identity.encode())
    altered = canonical.encode({**base, "name": "Parquet national financier (PNF)"})
    add(
        "application payload altered after signing",
        "BadSignature",
        SignedObject(altered, signed.signatures).encode(),
    )
    add(
        "application whose country does not match the authority",
        "MalformedError",
        _resign({**base, "country": "DE"}, labels.APPLICATION, [m.identity, m.transport]),
    )
    add(
        "application for another network",
        "MalformedError",
        _resign(
            {**base, "network": b64e(bytes(32))}, labels.APPLICATION, [m.identity, m.transport]
        ),
    )
    add(
        "application whose name contains a newline",
        "MalformedError",
        _resign(
            {**base, "name": "Parquet\nnational"}, labels.APPLICATION, [m.identity, m.transport]
        ),
    )


def _log_cases(cases: Cases, net: DevNetwork) -> None:
    g = net.genesis
    entries = net.entries
    decoded = [LogEntry.decode(e, g) for e in entries]
    hashes = [d.hash for d in decoded]

    def add(
        name: str,
        error: str,
        base_entries: int,
        extra: list[bytes],
        trusted: tuple[int, bytes] | None = None,
    ) -> None:
        cases.add(
            name,
            "log",
            error,
            lambda: verify_log(g, [*entries[:base_entries], *extra], trusted=trusted),
            base_entries=base_entries,
            entries=[h(e) for e in extra],
            trusted=None if trusted is None else {"seq": trusted[0], "head": h(trusted[1])},
        )

    def entry(seq: int, prev: bytes, time: int, action: SignedObject) -> bytes:
        return make_entry(genesis=g, seq=seq, prev=prev, time=time, action=action)

    add("log missing entry 2", "ChainBroken", 1, [entries[2]])
    add("log entries 1 and 2 swapped", "ChainBroken", 0, [entries[1], entries[0]])
    add(
        "log entry whose prev is not the previous entry's hash",
        "ChainBroken",
        1,
        [entry(2, bytes(32), decoded[1].time, decoded[1].action.signed)],
    )
    add(
        "log entry whose time goes backwards",
        "ChainBroken",
        1,
        [entry(2, hashes[0], decoded[0].time - 1, decoded[1].action.signed)],
    )
    add(
        "admit action with 1 of 2 admin signatures",
        "QuorumNotMet",
        0,
        [entry(1, g.digest, decoded[0].time, _strip(decoded[0].action.signed, 1))],
    )
    fr = member(net, "FR-PNF")
    admin_and_member = (
        _strip(decoded[0].action.signed, 0)
        .with_signature(labels.MEMBERSHIP_ACTION, net.admins[0])
        .with_signature(labels.MEMBERSHIP_ACTION, fr.identity)
    )
    add(
        "admit action with 1 admin signature and 1 member signature",
        "QuorumNotMet",
        0,
        [entry(1, g.digest, decoded[0].time, admin_and_member)],
    )
    t = REINSTATE_AT + 10
    admins = net.admins[: g.threshold]
    add(
        "admit of an authority that is already a member",
        "LogError",
        6,
        [entry(7, hashes[5], t, decoded[0].action.signed)],
    )
    es = member(net, "ES-FCC")
    stale = make_action(
        genesis=g,
        action=Action.REVOKE,
        authority=es.authority,
        prev=decoded[4].action.digest,  # the suspend, not the latest (reinstate)
        issued=t,
        reason="Revoked",
        signers=admins,
    )
    add(
        "action whose prev is not the authority's latest action",
        "LogError",
        6,
        [entry(7, hashes[5], t, stale.signed)],
    )
    reinstate_active = make_action(
        genesis=g,
        action=Action.REINSTATE,
        authority=fr.authority,
        prev=decoded[0].action.digest,
        issued=t,
        reason="Reinstated",
        signers=admins,
    )
    add(
        "reinstate of an active member",
        "LogError",
        6,
        [entry(7, hashes[5], t, reinstate_active.signed)],
    )
    cert_fr = fr.certificate
    reuse = Certificate(
        AuthorityId.parse("PT-PJ"),
        rng_for("log/serial")(16).hex(),
        "Policia Judiciaria",
        ("anti-corruption",),
        ("pt",),
        None,
        cert_fr.identity_key,
        SigningKey(rng_for("log/transport")(32)).verify_key,
        bytes(KemPrivateKey(rng_for("log/ka")(96)).public_key),
        t,
        t + 86400,
        bytes(32),
    )
    admit_reuse = make_action(
        genesis=g,
        action=Action.ADMIT,
        authority=reuse.authority,
        prev=None,
        issued=t,
        certificate=reuse,
        signers=admins,
    )
    add(
        "admit certifying another member's identity key (R4)",
        "LogError",
        6,
        [entry(7, hashes[5], t, admit_reuse.signed)],
    )
    add(
        "log entry that is not canonical (leading space)",
        "NonCanonical",
        0,
        [b" " + entries[0]],
    )
    add(
        "log shorter than a trusted head (rollback)",
        "RollbackDetected",
        5,
        [],
        trusted=(6, hashes[5]),
    )
    add(
        "log that differs from a trusted head (fork)",
        "ForkDetected",
        6,
        [],
        trusted=(3, hashes[2][::-1]),
    )


def _checkpoint_cases(cases: Cases, net: DevNetwork) -> None:
    g = net.genesis
    state = net.directory
    cp = make_checkpoint(genesis=g, hub=net.hub, seq=state.seq, head=state.head, time=NOW)
    base = _payload(cp.signed)

    def add(name: str, error: str, data: bytes) -> None:
        cases.add(name, "checkpoint", error, lambda: Checkpoint.decode(data, g), checkpoint=h(data))

    add(
        "checkpoint signed by an admin instead of the hub",
        "BadSignature",
        _resign(base, labels.CHECKPOINT, [net.admins[0]]),
    )
    add(
        "checkpoint with the hub's and an admin's signature",
        "BadSignature",
        _resign(base, labels.CHECKPOINT, [net.hub, net.admins[0]]),
    )
    add(
        "checkpoint signed under the evidence label",
        "BadSignature",
        _resign(base, labels.EVIDENCE, [net.hub]),
    )
    add(
        "checkpoint version 2",
        "UnsupportedVersion",
        _resign({**base, "v": 2}, labels.CHECKPOINT, [net.hub]),
    )


def _prekey_cases(cases: Cases, net: DevNetwork) -> None:
    g = net.genesis
    fr, de = member(net, "FR-PNF"), member(net, "DE-BKA")
    base = _payload(fr.signed_prekey.signed)

    def add(name: str, error: str, data: bytes, identity: VerifyKey) -> None:
        cases.add(
            name,
            "prekey",
            error,
            lambda: SignedPrekey.decode(data, g, identity, authority=fr.authority),
            prekey=h(data),
            identity_key=h(bytes(identity)),
            authority=str(fr.authority),
        )

    add(
        "prekey verified with another member's identity key",
        "BadSignature",
        fr.signed_prekey.signed.encode(),
        de.identity.verify_key,
    )
    add(
        "prekey signed by the transport key",
        "BadSignature",
        _resign(base, labels.PREKEY, [fr.transport]),
        fr.identity.verify_key,
    )
    add(
        "prekey valid for more than 90 days",
        "MalformedError",
        _resign(
            {**base, "not_after": base["not_before"] + 90 * 86400 + 1}, labels.PREKEY, [fr.identity]
        ),
        fr.identity.verify_key,
    )
    add(
        "prekey with an unknown field",
        "UnknownField",
        _resign({**base, "note": "x"}, labels.PREKEY, [fr.identity]),
        fr.identity.verify_key,
    )


def _receipt_cases(cases: Cases, net: DevNetwork) -> None:
    g = net.genesis
    p = _receipt_params()
    de, fr = member(net, "DE-BKA"), member(net, "FR-PNF")
    good_signed = make_receipt(genesis=g, identity=de.identity, **p)
    good = good_signed.encode()

    def add(name: str, error: str, data: bytes, log_entries: int) -> None:
        state = verify_log(g, net.entries[:log_entries])
        cases.add(
            name,
            "receipt",
            error,
            lambda: DeliveryReceipt.decode(data, state),
            receipt=h(data),
            log_entries=log_entries,
        )

    add(
        "receipt naming DE-BKA signed by FR-PNF's identity key",
        "BadSignature",
        _resign(
            {**_payload(good_signed), "key": str(fr.identity.key_id)},
            labels.RECEIPT,
            [fr.identity],
        ),
        6,
    )
    add(
        "receipt checked against a directory where the recipient is not yet admitted",
        "UnknownMember",
        good,
        1,
    )
    add(
        "receipt signed by DE-BKA's transport key",
        "BadSignature",
        _resign(
            {**_payload(good_signed), "key": str(de.transport.key_id)},
            labels.RECEIPT,
            [de.transport],
        ),
        6,
    )


def _evidence_cases(cases: Cases, net: DevNetwork) -> None:
    g = net.genesis
    evs = _evidence_list(net)
    accepted = _payload(evs[0].signed)
    rejected = _payload(evs[1].signed)

    def add(name: str, error: str, data: bytes) -> None:
        cases.add(name, "evidence", error, lambda: Evidence.decode(data, g), evidence=h(data))

    add(
        "evidence signed by an admin instead of the hub",
        "BadSignature",
        _resign(accepted, labels.EVIDENCE, [net.admins[0]]),
    )
    no_reason = {k: v for k, v in rejected.items() if k != "reason"}
    add(
        "rejected evidence without a reason",
        "MalformedError",
        _resign(no_reason, labels.EVIDENCE, [net.hub]),
    )
    add(
        "accepted evidence with a reason",
        "MalformedError",
        _resign({**accepted, "reason": "x"}, labels.EVIDENCE, [net.hub]),
    )
    add(
        "evidence with recipients not sorted",
        "MalformedError",
        _resign({**accepted, "recipients": ["ES-FCC", "DE-BKA"]}, labels.EVIDENCE, [net.hub]),
    )
    add(
        "evidence of an unknown kind",
        "MalformedError",
        _resign({**accepted, "kind": "read"}, labels.EVIDENCE, [net.hub]),
    )


def _request_cases(cases: Cases, net: DevNetwork) -> None:
    name, who, method, target, body = _REQUESTS[0]
    key = member(net, who).transport
    network = net.genesis.digest
    header = sign_request(
        key=key,
        network=network,
        audience="hub",
        method=method,
        target=target,
        body=body,
        created=NOW,
        rng=rng_for(f"request-auth/{name}"),
    )

    def add(name: str, error: str, **kw: Any) -> None:
        p: Json = {
            "header": header,
            "public_key": bytes(key.verify_key),
            "network": network,
            "audience": "hub",
            "method": method,
            "target": target,
            "body": body,
            "now": NOW,
            **kw,
        }

        def check() -> None:
            verify_request(
                parse_request_auth(p["header"]),
                key=VerifyKey(p["public_key"]),
                network=p["network"],
                audience=p["audience"],
                method=p["method"],
                target=p["target"],
                body=p["body"],
                now=p["now"],
            )

        rec = {k: h(v) if isinstance(v, bytes) else v for k, v in p.items()}
        cases.add(name, "request_auth", error, check, **rec)

    add("request with a different body", "AuthError", body=body + b"\x00")
    add("request presented to a member instead of the hub", "AuthError", audience="DE-BKA")
    add("request with a different target", "AuthError", target=target + "?x=1")
    add("request with a different method", "AuthError", method="PUT")
    add("request with a lower-case method", "AuthError", method="post")
    add("request for another network", "AuthError", network=bytes(32))
    add(
        "request verified with another member's transport key",
        "AuthError",
        public_key=bytes(member(net, "DE-BKA").transport.verify_key),
    )
    add("request 61 s after its timestamp", "StaleError", now=NOW + 61)
    add("request 61 s before its timestamp", "StaleError", now=NOW - 61)
    add("request header without the version", "AuthError", header=header.removeprefix("v1;"))
    add(
        "request header with a nonce with stray bits",
        "AuthError",
        header=re.sub(";nonce=[^;]*;", ";nonce=" + "A" * 21 + "B;", header),
    )


def _message_cases(cases: Cases) -> None:
    good = json.loads(message_content().encode())

    def add(name: str, error: str, value: Json) -> None:
        data = canonical.encode(value)
        cases.add(name, "message", error, lambda: MessageContent.decode(data), content=h(data))

    info = {k: v for k, v in good.items() if k != "deadline"}
    add("answer without in_reply_to", "MalformedError", {**info, "kind": "answer"})
    add("information with a deadline", "MalformedError", {**good, "kind": "information"})
    add("message version 2", "UnsupportedVersion", {**good, "v": 2})
    add("message with an unknown field", "UnknownField", {**good, "priority": 1})
    add("subject with a newline", "MalformedError", {**good, "subject": "Bank\nrecords"})
    add(
        "subject with a right-to-left override",
        "MalformedError",
        {**good, "subject": "Bank records \u202efdp.exe"},
    )
    add(
        "restrictions not sorted",
        "MalformedError",
        {
            **good,
            "handling": {
                "restrictions": ["no-onward-dissemination", "intelligence-only"],
                "tlp": "AMBER",
            },
        },
    )
    add(
        "unknown TLP level",
        "MalformedError",
        {**good, "handling": {"restrictions": [], "tlp": "WHITE"}},
    )


def _envelope_cases(cases: Cases, net: DevNetwork, env1: bytes, env3: bytes) -> None:
    g = net.genesis
    env = parse_envelope(env1)
    header_len = len(env.header.raw)
    body_offset = 10 + header_len + 2 + len(env.wrapped) * crypto.WRAPPED_KEY_LEN + 4
    seq_at = 10 + env.header.raw.index(b'"seq":1}')

    def parse_case(name: str, error: str, mutation: Json) -> None:
        data = mutate(env1, mutation)
        cases.add(
            name,
            "envelope_parse",
            error,
            lambda: parse_envelope(data),
            envelope=h(data),
            derived_from={"file": "envelope_1.json", "mutation": mutation},
        )

    def open_case(
        name: str,
        error: str,
        mutation: Json,
        *,
        me: str = "DE-BKA",
        key_of: str = "DE-BKA",
        now: int = NOW,
        log_entries: int = 6,
    ) -> None:
        data = mutate(env1, mutation)
        private = member(net, key_of).prekey
        state = verify_log(g, net.entries[:log_entries])

        def check() -> None:
            open_envelope(
                parse_envelope(data),
                directory=state,
                me=AuthorityId.parse(me),
                private_key=always(private),
                now=now,
            )

        cases.add(
            name,
            "envelope_open",
            error,
            check,
            envelope=h(data),
            derived_from={"file": "envelope_1.json", "mutation": mutation},
            me=me,
            prekey_private_key=h(private.raw),
            now=now,
            log_entries=log_entries,
        )

    none: Json = {"op": "none"}
    parse_case(
        "envelope with version byte 2",
        "UnsupportedVersion",
        {"op": "set", "offset": 4, "bytes": "02"},
    )
    parse_case(
        "envelope with suite byte 2", "UnsupportedSuite", {"op": "set", "offset": 5, "bytes": "02"}
    )
    parse_case(
        "envelope with a bad magic",
        "MalformedError",
        {"op": "set", "offset": 0, "bytes": "474c4246"},
    )
    parse_case(
        "envelope truncated by one byte", "Truncated", {"op": "truncate", "length": len(env1) - 1}
    )
    parse_case(
        "envelope truncated inside the header", "Truncated", {"op": "truncate", "length": 40}
    )
    parse_case("envelope with a trailing byte", "MalformedError", {"op": "append", "bytes": "00"})
    open_case(
        "envelope with one bit flipped in the body ciphertext",
        "BadSignature",
        {"op": "xor", "offset": body_offset + 100, "mask": 1},
    )
    open_case(
        "envelope with one bit flipped in the wrapped key",
        "BadSignature",
        {"op": "xor", "offset": 10 + header_len + 2 + 500, "mask": 128},
    )
    open_case(
        "envelope with one bit flipped in the outer signature",
        "BadSignature",
        {"op": "xor", "offset": len(env1) - 1, "mask": 1},
    )
    open_case(
        "envelope whose header recipient seq was changed",
        "BadSignature",
        {"op": "set", "offset": seq_at, "bytes": h(b'"seq":2}')},
    )
    open_case(
        "envelope opened by a party that is not a recipient",
        "NotARecipient",
        none,
        me="ES-FCC",
        key_of="ES-FCC",
    )
    open_case(
        "envelope opened by its own sender", "ReflectedMessage", none, me="FR-PNF", key_of="FR-PNF"
    )
    open_case(
        "envelope opened with another member's prekey", "DecryptionFailed", none, key_of="ES-FCC"
    )
    open_case("envelope opened at its expiry time", "ExpiredError", none, now=ENVELOPE_EXPIRES)
    open_case(
        "envelope opened more than 300 s before its creation time",
        "NotYetValid",
        none,
        now=ENVELOPE_CREATED - 301,
    )
    open_case(
        "envelope opened against a directory without its sender",
        "UnknownMember",
        none,
        log_entries=0,
    )
    state5 = verify_log(g, net.entries[:5])
    parsed3 = parse_envelope(env3)

    def hub_check() -> None:
        verify_envelope(parsed3, state5, NOW)
        check_recipients_active(parsed3, state5, NOW)

    cases.add(
        "envelope to a suspended recipient (hub check)",
        "envelope_hub_check",
        "MemberNotActive",
        hub_check,
        envelope=h(env3),
        derived_from={"file": "envelope_3.json", "mutation": none},
        now=NOW,
        log_entries=5,
    )


def build_invalid(net: DevNetwork, env1: bytes, env3: bytes) -> Json:
    cases = Cases()
    _identifier_cases(cases)
    _key_cases(cases)
    _genesis_cases(cases, net)
    _application_cases(cases, net)
    _log_cases(cases, net)
    _checkpoint_cases(cases, net)
    _prekey_cases(cases, net)
    _receipt_cases(cases, net)
    _evidence_cases(cases, net)
    _request_cases(cases, net)
    _message_cases(cases)
    _envelope_cases(cases, net, env1, env3)
    return {
        "description": (
            "Inputs that must be refused, each with the exact error class (protocol.errors). "
            "See README.md for the inputs of each 'structure'. Cases with 'derived_from' "
            "are a recorded mutation of another vector's envelope; their 'envelope' bytes "
            "change when the envelope vectors are regenerated."
        ),
        "now": NOW,
        "cases": cases.items,
    }


# --- all -----------------------------------------------------------------------------------


def build_vectors() -> dict[str, Json]:
    """Every vector file: ``{filename: content}``."""
    net = build_network()
    env1, raw1 = seal(net, "envelope-1", [("DE-BKA", 1)])
    env3, raw3 = seal(net, "envelope-3", [("IT-ANAC", 1), ("DE-BKA", 2), ("ES-FCC", 1)])
    return {
        "keys.json": build_keys(net),
        "canonical.json": build_canonical(),
        "genesis.json": build_genesis(net),
        "application.json": build_application(net),
        "certificate.json": build_certificate(net),
        "log.json": build_log(net),
        "checkpoint.json": build_checkpoint(net),
        "prekey.json": build_prekey(net),
        "receipt.json": build_receipt(net),
        "evidence.json": build_evidence(net),
        "request_auth.json": build_request_auth(net),
        "envelope_1.json": env1,
        "envelope_3.json": env3,
        "invalid.json": build_invalid(net, raw1, raw3),
        "attachment.json": build_attachment(),
        "forward.json": build_forward(net),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="write tests/vectors/*.json")
    parser.add_argument("names", nargs="*", help="only these files (e.g. attachment.json)")
    args = parser.parse_args(argv)
    for name, content in build_vectors().items():
        if args.names and name not in args.names:
            continue
        path = VECTOR_DIR / name
        text = render(content)
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(VECTOR_DIR.parent.parent)} ({len(text)} bytes)")
        else:
            old = path.read_text(encoding="utf-8") if path.exists() else None
            state = "missing" if old is None else ("same" if old == text else "differs")
            print(f"{name}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

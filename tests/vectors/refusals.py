"""Refusals of identifiers, keys and the signed objects (§3, §5, §6, §9, §10) for
invalid.json, and the inputs of the same structures that must be accepted (valid.json)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Final

import orjson

from protocol import canonical, crypto, labels
from protocol.devnet import DevNetwork
from protocol.genesis import Genesis
from protocol.ids import AuthorityId, KeyId, MessageId, NetworkId
from protocol.keys import KemPrivateKey, KemPublicKey, SigningKey, VerifyKey
from protocol.signed import SignedObject
from tests.vectors.vectorlib import (
    Accepts,
    Cases,
    Json,
    b64,
    h,
    padded,
    payload_of,
    resign,
    sign_raw,
    strip,
)

#: Ed25519 encodings of small order and non-canonical ones (Wycheproof, RFC 8032).
ORDER_8: Final = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
MIXED: Final = bytes.fromhex("06903bfea2a1ddc586e78a189513f47ac6ae27e4e7803a1c2fb94c94b18f3958")
IDENTITY_POINT: Final = (1).to_bytes(32, "little")
P25519: Final = 2**255 - 19


def identifier_cases(cases: Cases, accepts: Accepts) -> None:
    rule = "§3.1: identifiers"
    parsers: dict[str, Callable[[object], object]] = {
        "authority_id": AuthorityId.parse,
        "key_id": KeyId.parse,
        "message_id": MessageId.parse,
        "network_id": NetworkId.parse,
    }
    for structure, name, text in [
        ("authority_id", "lower-case authority id", "fr-PNF"),
        ("authority_id", "authority id with an unassigned country", "XX-ABC"),
        ("authority_id", "authority id name too short", "FR-P"),
        ("authority_id", "authority id with a Cyrillic letter", "FR-PN\u0424"),
        ("authority_id", "authority id with a user-assigned country (XK)", "XK-KPA"),
        ("authority_id", "authority id name of 17 characters", "FR-" + "A" * 17),
        ("authority_id", "authority id with an underscore", "FR-P_F"),
        ("authority_id", "authority id with a trailing space", "FR-PNF "),
        ("authority_id", "authority id with a trailing newline", "FR-PNF\n"),
        ("key_id", "key id with upper-case hex", "ed25519:" + "AB" * 16),
        ("key_id", "key id with an unknown algorithm", "x25519:" + "ab" * 16),
        ("key_id", "key id digest too short", "ed25519:" + "ab" * 15),
        ("key_id", "key id with an upper-case algorithm", "ED25519:" + "ab" * 16),
        ("message_id", "message id of 31 hex digits", "ab" * 15 + "a"),
        ("message_id", "message id in upper-case hex", "AB" * 16),
        ("network_id", "network id starting with a hyphen", "-globe"),
        ("network_id", "network id of 2 characters", "gl"),
        ("network_id", "network id with an upper-case letter", "Globe-dev"),
        ("network_id", "network id of 64 characters", "g" * 64),
    ]:
        cases.add(
            name,
            structure,
            "InvalidIdentifier",
            partial(parsers[structure], text),
            rule=rule,
            text=text,
        )
    for structure, name, text in [
        ("authority_id", "authority id with a 16-character name", "FR-" + "A1" * 8),
        ("authority_id", "authority id with a digit-only name", "DE-12"),
        ("key_id", "key id of a hybrid KEM key", "mlkem768x25519:" + "0f" * 16),
        ("network_id", "network id of 63 characters", "g" * 63),
        ("network_id", "network id starting with a digit", "0-net"),
    ]:
        accepts.add(name, structure, partial(parsers[structure], text), rule=rule, text=text)


def base64url_cases(cases: Cases) -> None:
    """The base64url refusal canonical.json cannot hold (its texts are ASCII)."""
    text = "AA\u00e9A"
    cases.add(
        "base64url with a non-ASCII character",
        "base64url",
        "MalformedError",
        partial(canonical.b64d, text, what="vector"),
        rule="§2.5: base64url",
        text=text,
    )


def key_cases(cases: Cases) -> None:
    rule = "§3.3: Ed25519 full validation"
    for name, raw in [
        ("Ed25519 identity point (small order)", IDENTITY_POINT),
        ("Ed25519 point of order 8", ORDER_8),
        ("Ed25519 mixed-order point (seed 0 key + order-8 point)", MIXED),
        ("Ed25519 non-canonical y (y = p)", P25519.to_bytes(32, "little")),
        ("Ed25519 key of 31 bytes", bytes(SigningKey(bytes(32)).verify_key)[:31]),
    ]:
        cases.add(
            name, "ed25519_public", "InvalidKey", partial(VerifyKey, raw), rule=rule, key=h(raw)
        )
    good = bytes(KemPrivateKey(bytes(range(96))).public_key)
    ek = good[:1184]
    bad_ek = b"\xff\xff" + ek[2:]  # first coefficient 0xfff >= q = 3329
    rule = "§3.3: hybrid KEM key validation, in order"
    for name, raw in [
        ("hybrid key with X25519 u = 0 (low order)", ek + bytes(32)),
        ("hybrid key with X25519 u = 1 (low order)", ek + (1).to_bytes(32, "little")),
        ("hybrid key with X25519 u = p (non-canonical)", ek + P25519.to_bytes(32, "little")),
        ("hybrid key with X25519 u = p - 1 (low order)", ek + (P25519 - 1).to_bytes(32, "little")),
        ("hybrid key with the X25519 top bit set", ek + good[1184:-1] + bytes([good[-1] | 0x80])),
        ("hybrid key with an ML-KEM coefficient >= q", bad_ek + good[1184:]),
        ("hybrid key of 1215 bytes", good[:-1]),
        ("hybrid key with a bad ML-KEM part and a low-order X25519 part", bad_ek + bytes(32)),
    ]:
        cases.add(
            name, "kem_public", "InvalidKey", partial(KemPublicKey, raw), rule=rule, key=h(raw)
        )


# --- every signed object: the container and the payload's common fields --------------------


def container_cases(
    cases: Cases,
    structure: str,
    decode: Callable[[bytes], object],
    *,
    valid: SignedObject,
    cap: int,
    label: bytes,
    signers: list[SigningKey],
    field: str,
    network: bool = True,
    **inputs: Any,
) -> None:
    """The defects every signed object is refused for (§2, §5.1, §5.4), one case each."""
    w = structure
    payload = valid.payload
    base = orjson.loads(payload)
    text = valid.encode()
    body = orjson.loads(text)

    def add(name: str, error: str, data: bytes, rule: str) -> None:
        cases.add(
            f"{w}: {name}",
            structure,
            error,
            partial(decode, data),
            rule=rule,
            **padded(field, data),
            **inputs,
        )

    def container(obj: Json) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

    def payload_bytes(data: bytes) -> bytes:
        return sign_raw(data, label, signers)

    def edited(**changes: Any) -> bytes:
        return payload_bytes(orjson.dumps({**base, **changes}, option=orjson.OPT_SORT_KEYS))

    add(
        "container above the cap",
        "SizeLimitExceeded",
        text + b" " * (cap + 1 - len(text)),
        "§2.7: size caps, checked before parsing",
    )
    add(
        "container with whitespace",
        "NonCanonical",
        text.replace(b'","sigs":', b'", "sigs":'),
        "§2.2: the one canonical form",
    )
    add(
        "container with a repeated key",
        "DuplicateKey",
        text.replace(b'{"payload":', b'{"payload":"AA","payload":', 1),
        "§2.3: a repeated key",
    )
    add(
        "container with an unknown field",
        "UnknownField",
        container({**body, "x": 1}),
        "§5.1: no other container field",
    )
    add(
        "container whose payload is not base64url",
        "MalformedError",
        container({**body, "payload": body["payload"] + "="}),
        "§2.5: base64url",
    )
    add(
        "container without sigs",
        "MalformedError",
        container({"payload": body["payload"]}),
        "§5.1: container fields",
    )
    sig0 = body["sigs"][0]
    add(
        "signature of 63 bytes",
        "MalformedError",
        container({**body, "sigs": [{**sig0, "sig": b64(bytes(63))}]}),
        "§5.1: sig is 64 bytes",
    )
    add(
        "signature kid that is not a key id",
        "InvalidIdentifier",
        container({**body, "sigs": [{**sig0, "kid": "ed25519:" + "AB" * 16}]}),
        "§5.4: kid parses as a key id",
    )
    add(
        "signature kid longer than 64 characters",
        "MalformedError",
        container({**body, "sigs": [{**sig0, "kid": "ed25519:" + "ab" * 29}]}),
        "§5.4: kid is a string of at most 64 characters, then a key id",
    )
    add(
        "signature object with an unknown field",
        "UnknownField",
        container({**body, "sigs": [{**sig0, "alg": "ed25519"}]}),
        "§5.1: no other field",
    )
    extra = SigningKey(crypto.sha256(b"unsorted " + structure.encode()))
    both = SignedObject(payload, valid.signatures).with_signature(label, extra)
    sigs = [{"kid": str(s.key_id), "sig": b64(s.sig)} for s in both.signatures]
    add(
        "signatures not sorted by kid",
        "MalformedError",
        container({**body, "sigs": sigs[::-1]}),
        "§5.1: sigs sorted by kid, each key once",
    )
    add(
        "a key that signs twice",
        "MalformedError",
        container({**body, "sigs": [sig0, sig0]}),
        "§5.1: sigs sorted by kid, each key once",
    )
    many = container(
        {**body, "sigs": [{"kid": f"ed25519:{i:032x}", "sig": sig0["sig"]} for i in range(65)]}
    )
    if len(many) <= cap:  # a 4 KiB container cannot hold 65 signatures
        add("65 signatures", "MalformedError", many, "§5.1: at most 64 signatures")
    add(
        "payload that is not canonical",
        "NonCanonical",
        payload_bytes(payload.replace(b'"v":1', b'"v": 1')),
        "§5.4: the payload is itself canonical JSON",
    )
    add(
        "payload with a repeated key",
        "DuplicateKey",
        payload_bytes(payload.replace(b'"v":1', b'"v":1,"v":1')),
        "§2.3: a repeated key",
    )
    add(
        "payload that is not an object",
        "MalformedError",
        payload_bytes(b"[]"),
        "§5.4: the payload is a JSON object",
    )
    add("payload version 2", "UnsupportedVersion", edited(v=2), "§2.4: v is 1")
    add(
        "payload of another type",
        "MalformedError",
        edited(type=structure + "s"),
        "§2.4: type has its one value",
    )
    add(
        "payload without a type",
        "MalformedError",
        payload_bytes(
            orjson.dumps(
                {k: v for k, v in base.items() if k != "type"}, option=orjson.OPT_SORT_KEYS
            )
        ),
        "§2.4: a required field is missing",
    )
    add("payload with an unknown field", "UnknownField", edited(zz=1), "§2.4: unknown fields")
    if network:
        add(
            "payload for another network",
            "MalformedError",
            edited(network=b64(bytes(32))),
            "§2.4: network is the genesis digest",
        )
    # Two defects: every field is read (and unknown fields refused) before any signature.
    add(
        "payload with an unknown field and no valid signature",
        "UnknownField",
        SignedObject(
            orjson.dumps({**base, "zz": 1}, option=orjson.OPT_SORT_KEYS), valid.signatures
        ).encode(),
        "§1.6, §5.5: fields before signatures",
    )


def genesis_cases(cases: Cases, accepts: Accepts, net: DevNetwork) -> None:
    g = net.genesis
    base = payload_of(g.signed)
    admins = net.admins[:2]
    container_cases(
        cases,
        "genesis",
        Genesis.decode,
        valid=g.signed,
        cap=16 * 1024,
        label=labels.GENESIS,
        signers=admins,
        field="genesis",
        network=False,
    )

    def add(name: str, error: str, data: bytes, rule: str) -> None:
        cases.add(
            name,
            "genesis",
            error,
            lambda: Genesis.decode(data),
            rule=rule,
            **padded("genesis", data),
        )

    def edit(**changes: Any) -> bytes:
        return resign({**base, **changes}, labels.GENESIS, admins)

    quorum = "§6.1: a quorum of the genesis's own admins"
    add("genesis with 1 of 2 admin signatures", "QuorumNotMet", strip(g.signed, 1).encode(), quorum)
    outsiders = [SigningKey(crypto.sha256(b"outsider" + bytes([i]))) for i in range(2)]
    add(
        "genesis signed by two keys that are not its admins",
        "QuorumNotMet",
        resign(base, labels.GENESIS, outsiders),
        quorum,
    )
    add(
        "genesis signed under the checkpoint label",
        "QuorumNotMet",
        resign(base, labels.CHECKPOINT, admins),
        quorum,
    )
    add("genesis version 2", "UnsupportedVersion", edit(v=2), "§6.1: genesis fields")
    add("genesis with an unknown field", "UnknownField", edit(extra=1), "§6.1: no other field")
    after = "§6.1: the checks after all fields"
    add(
        "genesis whose hub key is an admin key",
        "MalformedError",
        edit(hub_key=b64(bytes(net.admins[2].verify_key))),
        after,
    )
    a0 = base["admins"][0]
    add(
        "genesis naming one admin key twice",
        "MalformedError",
        edit(admins=[a0, {**a0, "name": "Admin 1 again"}, base["admins"][2]]),
        after,
    )
    fields = "§6.1: genesis fields, in read order"
    keys = "§2.5, §3.3: a key of the wrong length is malformed, a bad point invalid-key"
    text = g.encode()
    add("genesis with threshold 0", "MalformedError", edit(threshold=0), fields)
    add(
        "genesis with a threshold above its number of admins",
        "MalformedError",
        edit(threshold=4),
        fields,
    )
    add("genesis without admins", "MalformedError", edit(admins=[], threshold=1), fields)
    add("genesis with 33 admins", "MalformedError", edit(admins=[a0] * 33), fields)
    add("genesis with an invalid network id", "InvalidIdentifier", edit(network_id="Globe"), fields)
    add("genesis name with a line feed", "MalformedError", edit(name="GlobE\nLink"), fields)
    add(
        "genesis admin with an unknown field",
        "UnknownField",
        edit(admins=[{**a0, "role": "x"}, *base["admins"][1:]]),
        fields,
    )
    add(
        "genesis admin with an empty name",
        "MalformedError",
        edit(admins=[{**a0, "name": ""}, *base["admins"][1:]]),
        fields,
    )
    add(
        "genesis admin key of small order",
        "InvalidKey",
        edit(admins=[{**a0, "key": b64(ORDER_8)}, *base["admins"][1:]]),
        keys,
    )
    add(
        "genesis admin key of 31 bytes",
        "MalformedError",
        edit(admins=[{**a0, "key": b64(bytes(31))}, *base["admins"][1:]]),
        keys,
    )
    add("genesis hub key of 31 bytes", "MalformedError", edit(hub_key=b64(bytes(31))), keys)
    add(
        "genesis hub key that is the identity point",
        "InvalidKey",
        edit(hub_key=b64(IDENTITY_POINT)),
        keys,
    )
    add(
        "genesis hub URL with a query",
        "MalformedError",
        edit(hub_url="https://hub.example/?a=1"),
        "§6.1: the URL rule",
    )
    add(
        "genesis hub URL with user info",
        "MalformedError",
        edit(hub_url="https://u@hub.example"),
        "§6.1: the URL rule",
    )
    add("genesis created as a string", "MalformedError", edit(created="2026"), fields)
    order = "§1.6, §6.1: an admin is read name, key, then unknown fields"
    add(
        "genesis admin with an empty name and a small-order key",
        "MalformedError",
        edit(admins=[{"key": b64(ORDER_8), "name": ""}, *base["admins"][1:]]),
        order,
    )
    add(
        "genesis admin with a small-order key and an unknown field",
        "InvalidKey",
        edit(admins=[{**a0, "key": b64(ORDER_8), "role": "x"}, *base["admins"][1:]]),
        order,
    )
    add(
        "genesis with an unknown field and a repeated admin key",
        "UnknownField",
        edit(extra=1, admins=[a0, a0, base["admins"][2]]),
        "§1.6, §6.1: unknown fields before the checks after all fields",
    )
    add(
        "genesis above the 16 KiB cap",
        "SizeLimitExceeded",
        text + b" " * (16 * 1024),
        "§2.7: size caps, checked before parsing",
    )

    def ok(name: str, data: bytes, rule: str) -> None:
        accepts.add(
            name, "genesis", lambda: Genesis.decode(data), rule=rule, **padded("genesis", data)
        )

    ok(
        "genesis signed by all three admins (threshold 2)",
        resign(base, labels.GENESIS, net.admins),
        "§5.5: quorum counting",
    )
    ok(
        "genesis with one extra signature by a key that is not an admin",
        SignedObject(g.signed.payload, g.signed.signatures)
        .with_signature(labels.GENESIS, outsiders[0])
        .encode(),
        "§5.5, D5: extra signatures count zero and are tolerated",
    )
    ok(
        "genesis with an http hub URL with a port and a path",
        edit(hub_url="http://hub.example:8440/globe"),
        "§6.1: the URL rule",
    )
    ok(
        "genesis with threshold equal to its number of admins",
        resign({**base, "threshold": 3}, labels.GENESIS, net.admins),
        fields,
    )

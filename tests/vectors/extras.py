"""strict_json.json (§2.8), keystore.json (§3.5), kem_pop.json (§6.2) and replay.json
(§7.6 seen-set and sequence numbers, §10.3 nonce window)."""

from __future__ import annotations

from functools import partial
from typing import Any, Final

import orjson

from protocol import canonical, crypto, labels, strictjson
from protocol.devnet import DevNetwork
from protocol.errors import GlobeError
from protocol.ids import AuthorityId, KeyId, MessageId
from protocol.keys import KemPrivateKey
from protocol.keystore import KdfCost, open_secret, seal_secret
from protocol.membership import kem_pop_answer
from protocol.replay import NonceWindow, SeenSet, classify_seq
from tests.vectors.vectorlib import (
    Cases,
    HpkePool,
    Json,
    b64,
    expect,
    h,
    member,
    padded,
    rng_for,
    rng_seed,
)

# --- strict_json.json ----------------------------------------------------------------------

STRICT_CAP: Final = 4096
#: (name, input, decoded value)
STRICT_VALID: Final[list[tuple[str, bytes, Any]]] = [
    (
        "an object with white space around and inside",
        b' \t\n\r{ "a" : [1, -2, true, null] } \n',
        {"a": [1, -2, True, None]},
    ),
    (
        "the integer bounds",
        b"[9007199254740991,-9007199254740991]",
        [9007199254740991, -9007199254740991],
    ),
    ("-0 is the integer 0", b"-0", 0),
    ("a surrogate pair escape (U+1F600)", b'"\\ud83d\\ude00"', "\U0001f600"),
    ("any escape, and any key", b'{"\\u0041-b":"\\/"}', {"A-b": "/"}),
    ("a scalar at depth 32 (32 nested arrays)", b"[" * 32 + b"1" + b"]" * 32, None),
    ("33 nested empty arrays (the innermost at depth 32)", b"[" * 33 + b"]" * 33, None),
]
#: (name, input, error)
STRICT_INVALID: Final[list[tuple[str, bytes, str]]] = [
    ("not UTF-8", b'"\xff"', "InvalidJson"),
    ("a UTF-8 encoded lone surrogate", b'"\xed\xa0\x80"', "InvalidJson"),
    ("a byte-order mark", b"\xef\xbb\xbf{}", "InvalidJson"),
    ("empty", b"", "InvalidJson"),
    ("only white space", b"  ", "InvalidJson"),
    ("a syntax error", b'{"a":}', "InvalidJson"),
    ("a single quote", b"{'a':1}", "InvalidJson"),
    ("a raw control character in a string", b'"\x01"', "InvalidJson"),
    ("a key twice", b'{"a":1,"a":1}', "DuplicateKey"),
    ("a key twice, the values differing", b'{"a":null,"a":1}', "DuplicateKey"),
    ("a key twice in a nested object", b'[{"b":1,"b":2}]', "DuplicateKey"),
    ("NaN", b"NaN", "NonFiniteNumber"),
    ("Infinity", b"[Infinity]", "NonFiniteNumber"),
    ("-Infinity", b'{"a":-Infinity}', "NonFiniteNumber"),
    ("a fraction", b"1.5", "NumberOutOfRange"),
    ("a fraction equal to an integer", b"1.0", "NumberOutOfRange"),
    ("an exponent", b"1e2", "NumberOutOfRange"),
    ("2^53", b"9007199254740992", "NumberOutOfRange"),
    ("-2^53", b"-9007199254740992", "NumberOutOfRange"),
    ("an integer of 400 digits", b"9" * 400, "NumberOutOfRange"),
    ("a scalar at depth 33", b"[" * 33 + b"1" + b"]" * 33, "NestingTooDeep"),
    ("34 nested empty arrays", b"[" * 34 + b"]" * 34, "NestingTooDeep"),
    ("33 nested objects around a value", b'{"a":' * 33 + b"1" + b"}" * 33, "NestingTooDeep"),
    ("2,000 nested arrays", b"[" * 2000 + b"]" * 2000, "NestingTooDeep"),
    ("a second value", b"{}{}", "TrailingData"),
    ("a trailing NUL", b"{}\x00", "TrailingData"),
    ("a leading zero (00)", b"00", "TrailingData"),
    ("an escaped lone high surrogate", b'"\\ud800"', "InvalidUnicode"),
    ("an escaped lone low surrogate in a key", b'{"\\udc00":1}', "InvalidUnicode"),
    ("escaped surrogates in the wrong order", b'"\\udc00\\ud800"', "InvalidUnicode"),
]


def build_strict_json() -> Json:
    valid = []
    for name, data, value in STRICT_VALID:
        decoded = strictjson.loads(data, max_size=STRICT_CAP)
        if value is not None:
            assert decoded == value, name
        valid.append(
            {
                "name": name,
                "input": h(data),
                "value": decoded if value is not None else None,
                "max_size": STRICT_CAP,
            }
        )
    invalid = []
    for name, data, error in [*STRICT_INVALID]:
        expect(error, partial(strictjson.loads, data, max_size=STRICT_CAP))
        invalid.append(
            {
                "name": name,
                "input": h(data),
                "max_size": STRICT_CAP,
                "error": error,
                "rule": "§2.8: strict JSON for unsigned bodies",
            }
        )
    over = b"[" + b"1," * 2047 + b"1]"
    expect("SizeLimitExceeded", partial(strictjson.loads, over, max_size=STRICT_CAP))
    invalid.append(
        {
            "name": "a body above the endpoint's cap (4,097 bytes, cap 4,096)",
            "input": h(over),
            "max_size": STRICT_CAP,
            "error": "SizeLimitExceeded",
            "rule": "§2.8: the endpoint's size cap first",
        }
    )
    return {
        "description": (
            "The strict JSON decoder of unsigned request bodies (PROTOCOL.md §2.8, "
            "protocol.strictjson.loads with max_size). valid: input -> the decoded value "
            "(null where the value is a deep nesting of empty arrays or of [1], not repeated "
            "here); invalid: input -> exactly the error. Inputs with several defects are not "
            "listed: which one is reported is not part of the contract."
        ),
        "valid": valid,
        "invalid": invalid,
    }


# --- keystore.json -------------------------------------------------------------------------

#: The cheapest costs a reader accepts: vectors must be fast to check.
KEYSTORE_COST: Final = KdfCost(1, 8192)
PASSPHRASE: Final = b"correct horse battery staple"
PURPOSE: Final = "hub-signing-key"


def build_keystore() -> tuple[Json, list[Json]]:
    """keystore.json, and its refusals for the conformance matrix (structure ``keystore``)."""
    secret = rng_for("keystore/secret")(32)
    data = seal_secret(
        secret, PASSPHRASE, purpose=PURPOSE, cost=KEYSTORE_COST, rng=rng_for("keystore")
    )
    assert open_secret(data, PASSPHRASE, purpose=PURPOSE) == secret
    obj: Json = orjson.loads(data)
    salt = canonical.b64d(obj["salt"], what="v")
    nonce = canonical.b64d(obj["nonce"], what="v")
    key = crypto.argon2id(PASSPHRASE, salt, opslimit=1, memlimit=8192)
    aad = crypto.labelled(labels.KEYSTORE, PURPOSE.encode())
    assert crypto.aead_decrypt(key, nonce, canonical.b64d(obj["ct"], what="v"), aad) == secret

    def enc(value: Json) -> bytes:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

    cases: list[Json] = []

    def add(
        name: str,
        error: str,
        file: bytes | Json,
        rule: str,
        *,
        passphrase: bytes = PASSPHRASE,
        purpose: str = PURPOSE,
    ) -> None:
        raw = file if isinstance(file, bytes) else enc(file)
        expect(error, lambda: open_secret(raw, passphrase, purpose=purpose))
        cases.append(
            {
                "name": name,
                "structure": "keystore",
                "error": error,
                "rule": rule,
                **padded("file", raw),
                "passphrase": h(passphrase),
                "purpose": purpose,
            }
        )

    fields = "§3.5: sealed-secret fields, in read order"
    ct = canonical.b64d(obj["ct"], what="v")
    add("wrong passphrase", "DecryptionFailed", data, "§3.5: decryption", passphrase=b"wrong")
    add(
        "ciphertext with a flipped bit",
        "DecryptionFailed",
        enc({**obj, "ct": b64(ct[:-1] + bytes([ct[-1] ^ 1]))}),
        "§3.5: decryption",
    )
    add(
        "another salt", "DecryptionFailed", enc({**obj, "salt": b64(bytes(16))}), "§3.5: decryption"
    )
    add(
        "another nonce",
        "DecryptionFailed",
        enc({**obj, "nonce": b64(bytes(12))}),
        "§3.5: decryption",
    )
    add(
        "a file for another purpose",
        "MalformedError",
        data,
        "§3.5: the purpose is checked before the key is derived",
        purpose="admin-signing-key",
    )
    add("an unknown key derivation", "UnsupportedVersion", {**obj, "kdf": "argon2i13"}, fields)
    add("version 2", "UnsupportedVersion", {**obj, "v": 2}, fields)
    add("another type", "MalformedError", {**obj, "type": "secret"}, fields)
    add("ops 0", "MalformedError", {**obj, "ops": 0}, fields)
    add("ops 17", "MalformedError", {**obj, "ops": 17}, fields)
    add("mem 8,191", "MalformedError", {**obj, "mem": 8191}, fields)
    add("mem above 1 GiB", "MalformedError", {**obj, "mem": (1 << 30) + 1}, fields)
    add("a salt of 15 bytes", "MalformedError", {**obj, "salt": b64(bytes(15))}, fields)
    add("a purpose of 65 characters", "MalformedError", {**obj, "purpose": "p" * 65}, fields)
    add(
        "a ciphertext of 32,769 bytes",
        "MalformedError",
        {**obj, "ct": b64(bytes(32_769))},
        "§2.5, §3.5: ct is at most 32,768 bytes",
    )
    add("an unknown field", "UnknownField", {**obj, "hint": "x"}, fields)
    add(
        "null in an unknown field (the generic decoder of §2.3)",
        "MalformedError",
        {**obj, "hint": None},
        "§2.3, §3.5: a key file is decoded by §2.3 exactly",
    )
    add(
        "not canonical",
        "NonCanonical",
        data.replace(b'"v":1', b'"v": 1'),
        "§2.2: the one canonical form",
    )
    add(
        "a repeated key",
        "DuplicateKey",
        data.replace(b'"v":1', b'"v":1,"v":1'),
        "§2.3: a repeated key",
    )
    add(
        "above 64 KiB",
        "SizeLimitExceeded",
        data + b" " * (65_537 - len(data)),
        "§3.5: a key file is at most 65,536 bytes",
    )
    add(
        "ops 0 and another purpose",
        "MalformedError",
        {**obj, "ops": 0},
        "§1.6, §3.5: fields first",
        purpose="admin-signing-key",
    )
    add(
        "version 2 and a wrong passphrase",
        "UnsupportedVersion",
        {**obj, "v": 2},
        "§1.6, §3.5: fields before decryption",
        passphrase=b"wrong",
    )
    vector = {
        "description": (
            "A sealed key file (PROTOCOL.md §3.5) at the cheapest costs a reader accepts "
            "(ops 1, mem 8,192 bytes): salt then nonce are the first two outputs (16, 12 "
            "bytes) of deterministic_rng(rng_seed). open(file, passphrase, purpose) must give "
            "'secret'; 'key' is Argon2id(passphrase, salt, ops, mem) and 'aad' the associated "
            "data. The refusals are in invalid.json (structure 'keystore')."
        ),
        "rng_seed": h(rng_seed("keystore")),
        "secret": h(secret),
        "passphrase": h(PASSPHRASE),
        "purpose": PURPOSE,
        "file": h(data),
        "salt": h(salt),
        "nonce": h(nonce),
        "key": h(key),
        "aad": h(aad),
        "ops": 1,
        "mem": 8192,
    }
    return vector, cases


# --- kem_pop.json --------------------------------------------------------------------------


def build_kem_pop(net: DevNetwork, pool: HpkePool, cases: Cases) -> Json:
    m = member(net, "FR-PNF")
    other = member(net, "DE-BKA")
    digest = m.application.digest
    secret = rng_for("kem-pop")(32)
    info = crypto.labelled(labels.KEM_POP, digest)
    challenge = pool.seal(m.ka, info, secret)
    assert kem_pop_answer(m.ka, digest, challenge) == secret
    rule = "§6.2: the KEM proof of possession"

    def add(name: str, challenge_bytes: bytes, digest_bytes: bytes, key: KemPrivateKey) -> None:
        cases.add(
            name,
            "kem_pop",
            "DecryptionFailed",
            lambda: kem_pop_answer(key, digest_bytes, challenge_bytes),
            rule=rule,
            challenge=h(challenge_bytes),
            application_digest=h(digest_bytes),
            ka_private_key=h(key.raw),
        )

    add("KEM challenge answered for another application", challenge, other.application.digest, m.ka)
    add("KEM challenge opened with another member's key-agreement key", challenge, digest, other.ka)
    add(
        "KEM challenge with a flipped bit",
        challenge[:-1] + bytes([challenge[-1] ^ 1]),
        digest,
        m.ka,
    )
    add("KEM challenge of 1,167 bytes", challenge[:-1], digest, m.ka)
    add(
        "KEM challenge with an all-zero X25519 ciphertext",
        challenge[:1088] + bytes(32) + challenge[1120:],
        digest,
        m.ka,
    )
    return {
        "description": (
            "The proof of possession of FR-PNF's key-agreement key (PROTOCOL.md §6.2): "
            "'secret' is the first output (32 bytes) of deterministic_rng(rng_seed), 'challenge' "
            "its HPKE seal to the application's ka_key with 'info' = 'globe/v1/kem-pop' || 0x00 "
            "|| application digest (HPKE randomness: fixed as data). Opening 'challenge' with "
            "'ka_private_key' must give 'secret'. The refusals are in invalid.json (structure "
            "'kem_pop')."
        ),
        "rng_seed": h(rng_seed("kem-pop")),
        "authority": "FR-PNF",
        "application_digest": h(digest),
        "ka_private_key": h(m.ka.raw),
        "ka_key": h(bytes(m.ka.public_key)),
        "secret": h(secret),
        "info": h(info),
        "challenge": h(challenge),
    }


# --- replay.json ---------------------------------------------------------------------------


def _run_nonces(window: int, capacity: int, steps: list[Json]) -> list[str]:
    nw = NonceWindow(window=window, capacity=capacity)
    out = []
    for s in steps:
        try:
            nw.check_and_add(
                KeyId.parse(s["kid"]), bytes.fromhex(s["nonce"]), s["created"], s["now"]
            )
            out.append("ok")
        except GlobeError as exc:
            out.append(type(exc).__name__)
    return out


def build_replay(cases: Cases) -> Json:
    kid, kid2 = "ed25519:" + "11" * 16, "ed25519:" + "22" * 16
    n1, n2, n3 = (rng_for(f"replay/nonce{i}")(16).hex() for i in (1, 2, 3))
    t = 1_767_232_800

    def step(k: str, n: str, created: int, now: int, expect_: str) -> Json:
        return {"kid": k, "nonce": n, "created": created, "now": now, "expect": expect_}

    sequences = [
        (
            "a nonce is refused while remembered, and forgotten after created + 2·window",
            60,
            1_000_000,
            [
                step(kid, n1, t, t, "ok"),
                step(kid, n1, t, t + 1, "ReplayError"),
                step(kid2, n1, t, t + 1, "ok"),
                step(kid, n2, t, t + 1, "ok"),
                step(kid, n1, t, t + 120, "ReplayError"),
                step(kid, n1, t, t + 121, "ok"),
            ],
        ),
        (
            "the node's peer listener: window 120, kept until created + 240 s",
            120,
            1_000_000,
            [
                step(kid, n1, t, t + 60, "ok"),
                step(kid, n1, t, t + 240, "ReplayError"),
                step(kid, n1, t, t + 241, "ok"),
            ],
        ),
        (
            "beyond capacity the oldest pair is dropped",
            60,
            2,
            [
                step(kid, n1, t, t, "ok"),
                step(kid, n2, t, t, "ok"),
                step(kid, n3, t, t, "ok"),
                step(kid, n1, t, t, "ok"),
                step(kid, n3, t, t, "ReplayError"),
            ],
        ),
        (
            "pairs expire in insertion order: a later-inserted older pair waits for the first",
            60,
            1_000_000,
            [
                step(kid, n1, t + 30, t, "ok"),
                step(kid, n2, t - 30, t, "ok"),
                step(kid, n2, t - 30, t + 95, "ReplayError"),
                step(kid, n1, t + 30, t + 151, "ok"),
                step(kid, n2, t - 30, t + 151, "ok"),
            ],
        ),
    ]
    nonce_out = []
    for name, window, capacity, steps in sequences:
        got = _run_nonces(window, capacity, steps)
        assert got == [s["expect"] for s in steps], (name, got)
        nonce_out.append({"name": name, "window": window, "capacity": capacity, "steps": steps})
    cases.add(
        "a request nonce used twice within the window",
        "nonce_window",
        "ReplayError",
        lambda: _raise_last(_run_nonces(60, 1_000_000, sequences[0][3][:2])),
        rule="§10.3: nonce rules",
        window=60,
        capacity=1_000_000,
        steps=sequences[0][3][:2],
    )
    fr = "FR-PNF"
    m1, m2 = (str(MessageId(rng_for(f"replay/id{i}")(16))) for i in (1, 2))
    e1, e2 = (rng_for(f"replay/hash{i}")(32).hex() for i in (1, 2))
    seen_steps = [
        {"sender": fr, "id": m1, "envelope_hash": e1, "expect": "ok"},
        {"sender": fr, "id": m1, "envelope_hash": e1, "expect": "ReplayError"},
        {"sender": fr, "id": m1, "envelope_hash": e2, "expect": "ConflictError"},
        {"sender": "DE-BKA", "id": m1, "envelope_hash": e2, "expect": "ok"},
        {"sender": fr, "id": m2, "envelope_hash": e1, "expect": "ok"},
    ]
    assert _run_seen(seen_steps) == [s["expect"] for s in seen_steps]
    for name, steps, error in [
        ("the same envelope twice (replay)", seen_steps[:2], "ReplayError"),
        (
            "the same sender and message id with other bytes (conflict)",
            [seen_steps[0], seen_steps[2]],
            "ConflictError",
        ),
    ]:
        cases.add(
            name,
            "seen_set",
            error,
            partial(_raise_seen, steps),
            rule="§7.6: replay and conflict (R7)",
            steps=steps,
        )
    seq = []
    for last, n in [(0, 1), (3, 4), (3, 7), (3, 3), (3, 1)]:
        v = classify_seq(last, n)
        seq.append(
            {
                "last": last,
                "seq": n,
                "in_order": v.in_order,
                "missing": list(v.missing),
                "old": v.old,
            }
        )
    return {
        "description": (
            "Replay rules (PROTOCOL.md §7.6, §10.3). nonce_window: a NonceWindow(window, "
            "capacity) fed each step's (kid, nonce, created, now) in order must answer 'expect' "
            "('ok' or ReplayError). seen_set: a seen-set fed (sender, id, envelope_hash) in "
            "order answers ok, ReplayError or ConflictError. sequence: classify_seq(last, seq)."
        ),
        "nonce_window": nonce_out,
        "seen_set": seen_steps,
        "sequence": seq,
    }


def _run_seen(steps: list[Json]) -> list[str]:
    seen = SeenSet()
    out = []
    for s in steps:
        try:
            seen.check_and_add(
                AuthorityId.parse(s["sender"]),
                MessageId.parse(s["id"]),
                bytes.fromhex(s["envelope_hash"]),
            )
            out.append("ok")
        except GlobeError as exc:
            out.append(type(exc).__name__)
    return out


def _raise_seen(steps: list[Json]) -> None:
    _raise_last(_run_seen(steps))


def _raise_last(results: list[str]) -> None:
    """Re-raise the last step's error (for a refusal case built from a sequence)."""
    from protocol import errors  # noqa: PLC0415

    last = results[-1]
    if last != "ok":
        raise getattr(errors, last)("from the sequence")

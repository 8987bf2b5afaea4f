"""Refusals and acceptances of envelope headers (§7.2) and frames (§7.1)."""

from __future__ import annotations

import struct

import orjson

from protocol.envelope import (
    decode_header,
    parse_envelope,
)
from tests.vectors.envelopes import W, zero_frame
from tests.vectors.vectorlib import (
    Accepts,
    Cases,
    Json,
    b64,
    h,
    mutate,
    padded,
)

# --- headers (decode_header, §7.2) ---------------------------------------------------------


def header_cases(cases: Cases, accepts: Accepts, env1: bytes) -> None:
    base: Json = orjson.loads(parse_envelope(env1).header.raw)
    rcpt = base["recipients"][0]

    def enc(obj: Json) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

    def add(name: str, error: str, data: bytes | Json, rule: str) -> None:
        raw = enc(data) if isinstance(data, dict) else data
        cases.add(
            name,
            "envelope_header",
            error,
            lambda: decode_header(raw),
            rule=rule,
            **padded("header", raw),
        )

    def ok(name: str, data: Json, rule: str) -> None:
        raw = enc(data)
        accepts.add(
            name, "envelope_header", lambda: decode_header(raw), rule=rule, **padded("header", raw)
        )

    def without(key: str) -> Json:
        return {k: v for k, v in base.items() if k != key}

    fields = "§7.2: header fields, in read order"
    after = "§7.2: the checks after all fields"
    text = enc(base)
    add(
        "header not canonical (a space after a colon)",
        "NonCanonical",
        text.replace(b'"v":1', b'"v": 1'),
        "§2.2: the one canonical form",
    )
    add(
        "header with a repeated key",
        "DuplicateKey",
        text.replace(b'"v":1}', b'"v":1,"v":1}'),
        "§2.3: a repeated key",
    )
    long = text + b" " * (65_537 - len(text))
    cases.add(
        "header of 65,537 bytes",
        "envelope_header",
        "SizeLimitExceeded",
        lambda: decode_header(long),
        rule="§2.7: size caps (envelope header 65,536)",
        **padded("header", long),
    )
    for name, error, obj in [
        ("header of another type", "MalformedError", {**base, "type": "message"}),
        ("header version 2", "UnsupportedVersion", {**base, "v": 2}),
        ('header version "1" (a string)', "MalformedError", {**base, "v": "1"}),
        ("header suite 2", "UnsupportedSuite", {**base, "suite": 2}),
        ("header network of 31 bytes", "MalformedError", {**base, "network": b64(bytes(31))}),
        (
            "header network with stray bits",
            "NonCanonical",
            {**base, "network": base["network"][:-1] + "B"},
        ),
        (
            "header message id in upper-case hex",
            "InvalidIdentifier",
            {**base, "id": base["id"].upper()},
        ),
        ("header message id of 33 characters", "MalformedError", {**base, "id": base["id"] + "0"}),
        ("header sender in lower case", "InvalidIdentifier", {**base, "sender": "fr-pnf"}),
        (
            "header sender key of an unknown algorithm",
            "InvalidIdentifier",
            {**base, "sender_key": "x25519:" + "ab" * 16},
        ),
        ("header without recipients", "MalformedError", {**base, "recipients": []}),
        (
            "header with 257 recipients",
            "MalformedError",
            {**base, "recipients": [{**rcpt, "id": f"BE-R{i:03d}"} for i in range(257)]},
        ),
        (
            "header recipient with an unknown field",
            "UnknownField",
            {**base, "recipients": [{**rcpt, "note": "x"}]},
        ),
        (
            "header recipient with seq 0",
            "MalformedError",
            {**base, "recipients": [{**rcpt, "seq": 0}]},
        ),
        (
            "header recipient id in lower case",
            "InvalidIdentifier",
            {**base, "recipients": [{**rcpt, "id": "de-bka"}]},
        ),
        (
            "header recipient prekey id in upper-case hex",
            "InvalidIdentifier",
            {**base, "recipients": [{**rcpt, "prekey": rcpt["prekey"].upper()}]},
        ),
        (
            "header recipient without a prekey id",
            "MalformedError",
            {**base, "recipients": [{"id": "DE-BKA", "seq": 1}]},
        ),
        (
            "header whose expiry equals its creation time",
            "MalformedError",
            {**base, "expires": base["created"]},
        ),
        (
            "header expiring 30 days and 1 second after creation",
            "MalformedError",
            {**base, "expires": base["created"] + 2_592_001},
        ),
        ("header creation time as a string", "MalformedError", {**base, "created": "now"}),
        ("header dir without head", "MalformedError", {**base, "dir": {"seq": 6}}),
        (
            "header dir with an unknown field",
            "UnknownField",
            {**base, "dir": {**base["dir"], "time": 1}},
        ),
        ("header dir seq -1", "MalformedError", {**base, "dir": {**base["dir"], "seq": -1}}),
        ("header commit of 33 bytes", "MalformedError", {**base, "commit": b64(bytes(33))}),
        ("header without commit", "MalformedError", without("commit")),
        ("header with an empty blobs array", "MalformedError", {**base, "blobs": []}),
        (
            "header with 65 blob ids",
            "MalformedError",
            {**base, "blobs": [f"{i:032x}" for i in range(65)]},
        ),
        ("header blob id in upper-case hex", "InvalidIdentifier", {**base, "blobs": ["AB" * 16]}),
        ("header blob id of 33 characters", "MalformedError", {**base, "blobs": ["a" * 33]}),
        ("header blob id that is not a string", "MalformedError", {**base, "blobs": [1]}),
        ("header blobs that is not an array", "MalformedError", {**base, "blobs": "a" * 32}),
        ("header with an unknown field", "UnknownField", {**base, "priority": 1}),
    ]:
        add(name, error, obj, fields)
    two = [{**rcpt, "id": "DE-BKA"}, {**rcpt, "id": "ES-FCC"}]
    for name, error, obj in [
        ("header recipients not sorted", "MalformedError", {**base, "recipients": two[::-1]}),
        (
            "header naming a recipient twice",
            "MalformedError",
            {**base, "recipients": [two[0], two[0]]},
        ),
        ("header blob ids not sorted", "MalformedError", {**base, "blobs": ["b" * 32, "a" * 32]}),
        ("header naming a blob id twice", "MalformedError", {**base, "blobs": ["a" * 32] * 2}),
        (
            "header whose sender is among the recipients",
            "ReflectedMessage",
            {**base, "recipients": [two[0], {**rcpt, "id": "FR-PNF"}]},
        ),
    ]:
        add(name, error, obj, after)
    # Two defects (§1.6): the earlier check decides.
    order = "§1.6, §7.2: fields in read order, then unknown fields, then the checks after"
    for name, error, obj in [
        ("header version 2 and suite 2", "UnsupportedVersion", {**base, "v": 2, "suite": 2}),
        (
            "header with an unknown field and recipients not sorted",
            "UnknownField",
            {**base, "priority": 1, "recipients": two[::-1]},
        ),
        (
            "header with an invalid recipient id and an unknown field",
            "InvalidIdentifier",
            {**base, "priority": 1, "recipients": [{**rcpt, "id": "de-bka"}]},
        ),
        (
            "header whose sender is among unsorted recipients",
            "MalformedError",
            {**base, "recipients": [{**rcpt, "id": "FR-PNF"}, two[0]]},
        ),
        (
            "header with unsorted blob ids and the sender among the recipients",
            "MalformedError",
            {
                **base,
                "blobs": ["b" * 32, "a" * 32],
                "recipients": [two[0], {**rcpt, "id": "FR-PNF"}],
            },
        ),
        (
            "header whose sender is a recipient and whose expiry is beyond 30 days",
            "ReflectedMessage",
            {
                **base,
                "expires": base["created"] + 2_592_001,
                "recipients": [two[0], {**rcpt, "id": "FR-PNF"}],
            },
        ),
    ]:
        add(name, error, obj, order)
    # Values outside the canonical subset inside a structure (§2.3, structures).
    subset = "§2.3: structures: values outside the subset are judged by the field readers"
    add("header commit null", "MalformedError", {**base, "commit": None}, subset)
    add(
        "header with an unknown field whose value is null",
        "UnknownField",
        {**base, "note": None},
        subset,
    )
    add("header version 1.0", "MalformedError", text.replace(b'"v":1', b'"v":1.0'), subset)
    add(
        "header creation time written 1E9",
        "NonCanonical",
        text.replace(f'"created":{base["created"]}'.encode(), b'"created":1E9'),
        subset,
    )
    add(
        "header creation time above 2^64",
        "NonCanonical",
        text.replace(f'"created":{base["created"]}'.encode(), b'"created":18446744073709551616'),
        subset,
    )
    add(
        "header with a repeated key whose last value is null",
        "DuplicateKey",
        text.replace(b'"v":1}', b'"v":1,"v":null}'),
        subset,
    )
    add("header with an upper-case key", "UnknownField", {**base, "X": 1}, subset)
    # Inputs that must be accepted.
    ok(
        "header expiring exactly 30 days after creation",
        {**base, "expires": base["created"] + 2_592_000},
        fields,
    )
    ok(
        "header whose sender key names a key-agreement key (refused only when opened)",
        {**base, "sender_key": "mlkem768x25519:" + "ab" * 16},
        "§7.2: any key id parses; the algorithm is judged at §7.6 step 18",
    )
    ok(
        "header whose prekey id names an Ed25519 key (refused only when opened)",
        {**base, "recipients": [{**rcpt, "prekey": "ed25519:" + "ab" * 16}]},
        "§7.2: any key id parses; the algorithm is judged at §7.6 step 21",
    )
    ok(
        "header with 256 recipients",
        {**base, "recipients": [{**rcpt, "id": f"BE-R{i:03d}"} for i in range(256)]},
        fields,
    )
    ok("header with 64 blob ids", {**base, "blobs": [f"{i:032x}" for i in range(64)]}, fields)
    ok("header without blobs", without("blobs"), fields)
    ok(
        "header with created 0 and dir seq 0",
        {**base, "created": 0, "expires": 1, "dir": {**base["dir"], "seq": 0}},
        fields,
    )


# --- frames (parse_envelope, §7.1) ---------------------------------------------------------


def frame_cases(cases: Cases, accepts: Accepts, env1: bytes) -> None:
    env = parse_envelope(env1)
    hl = len(env.header.raw)
    count_at = 10 + hl
    body_len_at = count_at + 2 + W * len(env.wrapped)
    rule = "§7.1: the parse procedure"

    def add(
        name: str, error: str, mutation: Json, *, max_size: int | None = None, rule: str = rule
    ) -> None:
        data = mutate(env1, mutation)
        kw = {} if max_size is None else {"max_size": max_size}
        cases.add(
            name,
            "envelope_parse",
            error,
            lambda: parse_envelope(data, **kw),
            rule=rule,
            envelope=h(data),
            derived_from={"file": "envelope_1.json", "mutation": mutation},
            **kw,
        )

    def crafted(name: str, error: str, data: bytes, rule: str) -> None:
        cases.add(
            name, "envelope_parse", error, lambda: parse_envelope(data), rule=rule, envelope=h(data)
        )

    def u32(n: int) -> str:
        return struct.pack(">I", n).hex()

    add(
        "envelope with version byte 2",
        "UnsupportedVersion",
        {"op": "set", "offset": 4, "bytes": "02"},
    )
    add("envelope with suite byte 2", "UnsupportedSuite", {"op": "set", "offset": 5, "bytes": "02"})
    add(
        "envelope with a bad magic",
        "MalformedError",
        {"op": "set", "offset": 0, "bytes": "474c4246"},
    )
    add("envelope truncated by one byte", "Truncated", {"op": "truncate", "length": len(env1) - 1})
    add("envelope truncated inside the header", "Truncated", {"op": "truncate", "length": 40})
    add("envelope with a trailing byte", "MalformedError", {"op": "append", "bytes": "00"})
    add("empty envelope", "Truncated", {"op": "truncate", "length": 0})
    add("envelope of 3 bytes (inside the magic)", "Truncated", {"op": "truncate", "length": 3})
    add("envelope ending after the magic", "Truncated", {"op": "truncate", "length": 4})
    add(
        "envelope ending inside the wrapped keys",
        "Truncated",
        {"op": "truncate", "length": count_at + 2 + 100},
    )
    add(
        "envelope ending inside the body length",
        "Truncated",
        {"op": "truncate", "length": body_len_at + 2},
    )
    add(
        "envelope with a header length of 65,537",
        "SizeLimitExceeded",
        {"op": "set", "offset": 6, "bytes": u32(65_537)},
        rule="§7.1: header_len ≤ 65,536",
    )
    add(
        "envelope with 0 wrapped keys",
        "MalformedError",
        {"op": "set", "offset": count_at, "bytes": "0000"},
        rule="§7.1: 1 ≤ count ≤ 256",
    )
    add(
        "envelope with 257 wrapped keys",
        "MalformedError",
        {"op": "set", "offset": count_at, "bytes": "0101"},
        rule="§7.1: 1 ≤ count ≤ 256",
    )
    add(
        "envelope with 2 wrapped keys for 1 header recipient",
        "MalformedError",
        {
            "op": "steps",
            "steps": [
                {"op": "set", "offset": count_at, "bytes": "0002"},
                {"op": "insert", "offset": count_at + 2, "bytes": bytes(W).hex()},
            ],
        },
        rule="§7.1: count = the number of header recipients",
    )
    bucket_rule = "§7.1: B - 16 is a power of two in [1,024, 1,048,576]"
    add(
        "envelope body of 1,041 bytes (not a bucket)",
        "MalformedError",
        {"op": "set", "offset": body_len_at, "bytes": u32(1041)},
        rule=bucket_rule,
    )
    add(
        "envelope body of 528 bytes (bucket below 1 KiB)",
        "MalformedError",
        {"op": "set", "offset": body_len_at, "bytes": u32(528)},
        rule=bucket_rule,
    )
    add(
        "envelope body of 2 MiB + 16 bytes (bucket above 1 MiB)",
        "MalformedError",
        {"op": "set", "offset": body_len_at, "bytes": u32((2 << 20) + 16)},
        rule=bucket_rule,
    )
    add(
        "envelope announcing a 2 KiB body it does not carry",
        "Truncated",
        {"op": "set", "offset": body_len_at, "bytes": u32(2048 + 16)},
    )
    add(
        "envelope above the caller's cap",
        "SizeLimitExceeded",
        {"op": "none"},
        max_size=len(env1) - 1,
        rule="§2.7, §7.1: the envelope cap (a caller may pass a smaller one)",
    )
    order = "§1.6, §7.1: the frame is checked in order before the header is decoded"
    add(
        "envelope with a bad magic and version byte 2",
        "MalformedError",
        {"op": "set", "offset": 0, "bytes": "474c424602"},
        rule=order,
    )
    add(
        "envelope with version byte 2 and suite byte 2",
        "UnsupportedVersion",
        {"op": "set", "offset": 4, "bytes": "0202"},
        rule=order,
    )
    add(
        "envelope with suite byte 2 and a header length of 65,537",
        "UnsupportedSuite",
        {"op": "set", "offset": 5, "bytes": "02" + u32(65_537)},
        rule=order,
    )
    header = env.header.raw
    bad_v = header.replace(b'"v":1', b'"v":2')
    crafted(
        "envelope whose header is version 2 and that has a trailing byte",
        "MalformedError",
        zero_frame(bad_v) + b"\x00",
        order,
    )
    crafted(
        "envelope whose header is version 2 and whose body is cut short",
        "Truncated",
        zero_frame(bad_v)[:-100],
        order,
    )
    crafted(
        "envelope whose header is not canonical",
        "NonCanonical",
        zero_frame(header.replace(b'"v":1', b'"v": 1')),
        "§7.1: then decode_header (§7.2)",
    )
    crafted(
        "envelope whose header names the sender as a recipient",
        "ReflectedMessage",
        zero_frame(header.replace(b'"id":"DE-BKA"', b'"id":"FR-PNF"')),
        "§7.1: then decode_header (§7.2)",
    )
    accepts.add(
        "envelope exactly at the caller's cap",
        "envelope_parse",
        lambda: parse_envelope(env1, max_size=len(env1)),
        rule="§7.1: the parse procedure",
        envelope=h(env1),
        max_size=len(env1),
        derived_from={"file": "envelope_1.json", "mutation": {"op": "none"}},
    )

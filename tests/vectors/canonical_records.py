"""canonical.json: the generic canonical JSON decoder of §2.3 and base64url (§2.5)."""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from protocol import canonical
from protocol.canonical import b64e
from tests.vectors.vectorlib import Json, expect, h

# --- canonical.json --------------------------------------------------------------------


def _nested(depth: int) -> Json:
    value: Json = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _arrays(depth: int) -> Json:
    """``{"a": [[...[1]...]]}`` with ``depth`` arrays: the 1 is at depth ``depth + 1``."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return {"a": value}


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
    ("15 nested arrays: the integer 1 at depth 16 (the example of §2.1)", _arrays(15)),
    (
        "the worked example of §2.6",
        {
            "note": 'café "q" \\ \t\n\x01 \u2028 /',
            "n": 0,
            "ok": True,
            "list": [2, 1],
        },
    ),
]

_C: Final = "§2.2: the one canonical form"
_S: Final = "§2.1: the value subset"
_P: Final = "§2.3: parse as RFC 8259 JSON"
_D: Final = "§2.3: a repeated key"
# (name, input bytes, max_size, error, rule)
CANONICAL_INVALID: Final[list[tuple[str, bytes, int, str, str]]] = [
    ("whitespace after colon", b'{"a": 1}', 4096, "NonCanonical", _C),
    ("leading whitespace", b' {"a":1}', 4096, "NonCanonical", _C),
    ("trailing newline", b'{"a":1}\n', 4096, "NonCanonical", _C),
    ("keys out of order", b'{"b":1,"a":2}', 4096, "NonCanonical", _C),
    ("duplicate key", b'{"a":1,"a":1}', 4096, "DuplicateKey", _D),
    ("duplicate key, nested", b'{"a":{"b":1,"b":2}}', 4096, "DuplicateKey", _D),
    ("needless escape of 'A'", b'{"a":"\\u0041"}', 4096, "NonCanonical", _C),
    ("escaped solidus", b'{"a":"\\/"}', 4096, "NonCanonical", _C),
    ("escaped non-ASCII", b'{"a":"\\u00e9"}', 4096, "NonCanonical", _C),
    ("upper-case hex in escape", b'{"a":"\\u001F"}', 4096, "NonCanonical", _C),
    ("\\u0008 instead of \\b", b'{"a":"\\u0008"}', 4096, "NonCanonical", _C),
    ("surrogate-pair escape of U+1F600", b'{"a":"\\ud83d\\ude00"}', 4096, "NonCanonical", _C),
    ("-0 (parses as 0, re-encodes as 0)", b'{"a":-0}', 4096, "NonCanonical", _C),
    ("raw control character", b'{"a":"\x01"}', 4096, "MalformedError", _P),
    ("fraction", b'{"a":1.0}', 4096, "MalformedError", _S),
    ("exponent", b'{"a":1e2}', 4096, "MalformedError", _S),
    ("negative integer", b'{"a":-1}', 4096, "MalformedError", _S),
    ("integer above 2^53-1", b'{"a":9007199254740992}', 4096, "MalformedError", _S),
    ("integer above 2^64", b'{"a":18446744073709551616}', 4096, "MalformedError", _S),
    ("null", b'{"a":null}', 4096, "MalformedError", _S),
    ("top level is an array", b"[1]", 4096, "MalformedError", _S),
    ("top level is a string", b'"a"', 4096, "MalformedError", _S),
    ("invalid UTF-8", b'{"a":"\xff"}', 4096, "MalformedError", _P),
    ("lone surrogate escape", b'{"a":"\\ud800"}', 4096, "MalformedError", _P),
    ("byte order mark", b'\xef\xbb\xbf{"a":1}', 4096, "MalformedError", _P),
    ("empty input", b"", 4096, "MalformedError", _P),
    ("True instead of true", b'{"a":True}', 4096, "MalformedError", _P),
    ("NaN", b'{"a":NaN}', 4096, "MalformedError", _P),
    ("Infinity", b'{"a":Infinity}', 4096, "MalformedError", _P),
    ("leading zero (01)", b'{"a":01}', 4096, "MalformedError", _P),
    ("trailing NUL", b'{"a":1}\x00', 4096, "MalformedError", _P),
    ("upper-case key", b'{"A":1}', 4096, "MalformedError", _S),
    ("key starting with a digit", b'{"1a":1}', 4096, "MalformedError", _S),
    ("key with a hyphen", b'{"a-b":1}', 4096, "MalformedError", _S),
    ("key of 33 characters", b'{"' + b"a" * 33 + b'":1}', 4096, "MalformedError", _S),
    (
        "nesting too deep (innermost object at depth 17)",
        b'{"a":' * 17 + b"{}" + b"}" * 17,
        4096,
        "MalformedError",
        _S,
    ),
    (
        "16 nested arrays: the integer 1 at depth 17",
        b'{"a":' + b"[" * 16 + b"1" + b"]" * 16 + b"}",
        4096,
        "MalformedError",
        _S,
    ),
    ("unterminated object", b'{"a":1', 4096, "MalformedError", _P),
    ("trailing comma", b'{"a":1,}', 4096, "MalformedError", _P),
    ("size cap (13 bytes, cap 12)", b'{"a":"xxxxx"}', 12, "SizeLimitExceeded", "§2.7: size caps"),
    # Precedence (§2.3): the subset check runs on the last-wins parse first.
    (
        "repeated key, the surviving value null",
        b'{"a":1,"a":null}',
        4096,
        "MalformedError",
        "§2.3: precedence: subset check before duplicate keys",
    ),
    (
        "repeated key, the dropped value null",
        b'{"a":null,"a":1}',
        4096,
        "DuplicateKey",
        "§2.3: precedence: subset check before duplicate keys",
    ),
    (
        "repeated key and whitespace",
        b'{"a":1, "a":1}',
        4096,
        "DuplicateKey",
        "§2.3: precedence: duplicate-key before non-canonical",
    ),
    (
        "size cap and not JSON",
        b"x" * 13,
        12,
        "SizeLimitExceeded",
        "§2.3: precedence: the cap before parsing",
    ),
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
    ("stray bits in Zm9 ('fo' is Zm8)", "Zm9", "NonCanonical"),
]


def build_canonical() -> Json:
    valid = []
    for name, value in CANONICAL_VALID:
        data = canonical.encode(value)
        assert canonical.decode(data, max_size=len(data), what="vector") == value
        valid.append({"name": name, "value": value, "encoding": h(data)})
    invalid = []
    for name, data, max_size, error, rule in CANONICAL_INVALID:
        expect(error, partial(canonical.decode, data, max_size=max_size, what="vector"))
        invalid.append(
            {"name": name, "input": h(data), "max_size": max_size, "error": error, "rule": rule}
        )
    b64_valid = [{"bytes": h(b), "text": b64e(b)} for b in B64_VALID]
    b64_invalid = []
    for name, text, error in B64_INVALID:
        expect(error, partial(canonical.b64d, text, what="vector"))
        b64_invalid.append({"name": name, "text": text, "error": error, "rule": "§2.5: base64url"})
    return {
        "description": (
            "Canonical JSON (RFC 8785 subset) through the generic decoder of §2.3. valid: "
            "value -> exact encoding (decode must give the value back). invalid: input bytes "
            "and the decode size cap -> error class. base64url: unpadded, URL alphabet, no "
            "stray bits."
        ),
        "valid": valid,
        "invalid": invalid,
        "base64url": {"valid": b64_valid, "invalid": b64_invalid},
    }

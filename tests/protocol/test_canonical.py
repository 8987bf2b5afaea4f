"""Canonical JSON and base64url strictness (protocol/canonical.py, docs/PROTOCOL.md §2)."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import canonical
from protocol.canonical import MAX_INT, ObjectReader, b64d, b64e, decode, encode
from protocol.errors import (
    DecodeError,
    DuplicateKey,
    MalformedError,
    NonCanonical,
    SizeLimitExceeded,
    UnknownField,
    UsageError,
)

CAP = 4096


def _decode(data: bytes, cap: int = CAP) -> dict[str, canonical.JsonValue]:
    return decode(data, max_size=cap, what="test")


# --- accepted inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"{}", {}),
        (b'{"a":0}', {"a": 0}),
        (b'{"a":9007199254740991}', {"a": MAX_INT}),
        (b'{"a":true,"b":false}', {"a": True, "b": False}),
        (b'{"a":"","b":[],"c":{}}', {"a": "", "b": [], "c": {}}),
        (b'{"a":[1,"x",[true]]}', {"a": [1, "x", [True]]}),
        (b'{"a":"\\"\\\\"}', {"a": '"\\'}),
        (b'{"a":"\\b\\t\\n\\f\\r"}', {"a": "\b\t\n\f\r"}),
        (b'{"a":"\\u0000\\u001f"}', {"a": "\x00\x1f"}),
        (b'{"a":"\x7f"}', {"a": "\x7f"}),
        (b'{"a":"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80"}', {"a": "\u00e9\u2028\U0001f600"}),
        (b'{"a":1,"a0":2,"a_":3,"b":4}', {"a": 1, "a0": 2, "a_": 3, "b": 4}),
        (b'{"' + b"a" * 32 + b'":1}', {"a" * 32: 1}),
    ],
)
def test_canonical_inputs_decode(data, value):
    assert _decode(data) == value
    assert encode(value) == data


# --- refused inputs: exact error class -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        # whitespace outside strings
        (b'{"a": 1}', NonCanonical),
        (b'{ "a":1}', NonCanonical),
        (b'{"a":1 }', NonCanonical),
        (b'{"a" :1}', NonCanonical),
        (b'{"a":1,"b":2}\n', NonCanonical),
        (b' {"a":1}', NonCanonical),
        (b'{"a":[1, 2]}', NonCanonical),
        (b'{\t"a":1}', NonCanonical),
        # key order
        (b'{"b":1,"a":2}', NonCanonical),
        (b'{"a":{"d":1,"c":2}}', NonCanonical),
        (b'{"a_":1,"a0":2}', NonCanonical),
        # duplicate keys, at any depth, same or different values
        (b'{"a":1,"a":1}', DuplicateKey),
        (b'{"a":1,"a":2}', DuplicateKey),
        (b'{"a":{"b":1,"b":1}}', DuplicateKey),
        (b'{"a":[{"b":1,"b":2}]}', DuplicateKey),
        # escapes outside the JCS set
        (b'{"a":"\\u0041"}', NonCanonical),
        (b'{"a":"\\/"}', NonCanonical),
        (b'{"a":"\\u0009"}', NonCanonical),
        (b'{"a":"\\u000a"}', NonCanonical),
        (b'{"a":"\\u001F"}', NonCanonical),
        (b'{"a":"\\u007f"}', NonCanonical),
        (b'{"a":"\\u00e9"}', NonCanonical),
        (b'{"a":"\\ud83d\\ude00"}', NonCanonical),
        (b'{"\\u0061":1}', NonCanonical),
        # numbers outside the subset
        (b'{"a":1.0}', MalformedError),
        (b'{"a":1.5}', MalformedError),
        (b'{"a":1e2}', MalformedError),
        (b'{"a":1E2}', MalformedError),
        (b'{"a":0.0}', MalformedError),
        (b'{"a":-0}', NonCanonical),
        (b'{"a":-1}', MalformedError),
        (b'{"a":-9007199254740991}', MalformedError),
        (b'{"a":9007199254740992}', MalformedError),
        (b'{"a":18446744073709551615}', MalformedError),
        (b'{"a":18446744073709551616}', MalformedError),
        (b'{"a":01}', MalformedError),
        (b'{"a":+1}', MalformedError),
        (b'{"a":NaN}', MalformedError),
        (b'{"a":Infinity}', MalformedError),
        (b'{"a":null}', MalformedError),
        (b'{"a":[null]}', MalformedError),
        (b'{"a":True}', MalformedError),
        # invalid UTF-8 and lone surrogates
        (b'{"a":"\xff"}', MalformedError),
        (b'{"a":"\xc3"}', MalformedError),
        (b'{"a":"\xc0\xaf"}', MalformedError),
        (b'{"a":"\xed\xa0\x80"}', MalformedError),
        (b'{"a":"\\ud800"}', MalformedError),
        (b'{"a":"\\udc00"}', MalformedError),
        (b'{"a":"\\ud800x"}', MalformedError),
        # raw control characters inside strings (they must be escaped)
        (b'{"a":"\t"}', MalformedError),
        (b'{"a":"\n"}', MalformedError),
        (b'{"a":"\x00"}', MalformedError),
        (b'{"a":"\x1f"}', MalformedError),
        (b'{"a":"x"}\x00', MalformedError),
        (b'\xef\xbb\xbf{"a":1}', MalformedError),
        # keys outside [a-z][a-z0-9_]{0,31}
        (b'{"A":1}', MalformedError),
        (b'{"aB":1}', MalformedError),
        (b'{"":1}', MalformedError),
        (b'{"0a":1}', MalformedError),
        (b'{"_a":1}', MalformedError),
        (b'{"a-b":1}', MalformedError),
        (b'{"a b":1}', MalformedError),
        (b'{"\xc3\xa9":1}', MalformedError),
        (b'{"a\\n":1}', MalformedError),
        (b'{"' + b"a" * 33 + b'":1}', MalformedError),
        (b'{"a":{"B":1}}', MalformedError),
        # not an object, or not JSON at all
        (b"", MalformedError),
        (b"[]", MalformedError),
        (b'"a"', MalformedError),
        (b"1", MalformedError),
        (b"true", MalformedError),
        (b"null", MalformedError),
        (b'{"a":1', MalformedError),
        (b'{"a":1,}', MalformedError),
        (b"{'a':1}", MalformedError),
        (b'{"a":1}{}', MalformedError),
    ],
)
def test_refused_inputs(data, error):
    with pytest.raises(error) as info:
        _decode(data)
    assert type(info.value) is error
    assert isinstance(info.value, DecodeError)


def _nested(depth: int, inner: bytes) -> bytes:
    return b'{"a":' * depth + inner + b"}" * depth


@pytest.mark.parametrize(
    ("depth", "inner", "ok"),
    [
        (16, b"0", True),  # scalar at depth 16
        (16, b"{}", True),  # 17 nested objects, the innermost at depth 16
        (16, b"[]", True),
        (16, b"[0]", False),  # scalar at depth 17
        (17, b"0", False),
        (17, b"{}", False),
        (17, b"[]", False),
        (200, b"0", False),
    ],
)
def test_nesting_depth(depth, inner, ok):
    data = _nested(depth, inner)
    if ok:
        assert encode(_decode(data)) == data
    else:
        with pytest.raises(MalformedError):
            _decode(data)


def test_nesting_depth_on_encode_is_usage_error():
    value: dict[str, object] = {"a": 0}
    for _ in range(16):
        value = {"a": value}
    with pytest.raises(UsageError):
        encode(value)


def test_deep_arrays_refused():
    with pytest.raises(MalformedError):
        _decode(b'{"a":' + b"[" * 40 + b"]" * 40 + b"}")


# --- size cap: checked before anything else ------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "cap", "error"),
    [
        (b'{"a":"' + b"x" * 100 + b'"}', 108, None),
        (b'{"a":"' + b"x" * 100 + b'"}', 107, SizeLimitExceeded),
        (b"\xff" * 10, 9, SizeLimitExceeded),  # garbage over the cap: size wins
        (b'{"b":1,"a":1}', 12, SizeLimitExceeded),  # non-canonical over the cap: size wins
        (b"", 0, MalformedError),
    ],
)
def test_size_cap(data, cap, error):
    if error is None:
        assert _decode(data, cap) == {"a": "x" * 100}
    else:
        with pytest.raises(error) as info:
            _decode(data, cap)
        assert type(info.value) is error


# --- encode: values outside the subset are local errors ------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"a": None},
        {"a": 1.0},
        {"a": -1},
        {"a": MAX_INT + 1},
        {"A": 1},
        {"": 1},
        {"a" * 33: 1},
        {1: 1},
        {"a": b"bytes"},
        {"a": {1, 2}},
        {"a": [None]},
        {"a": {"b": object()}},
    ],
)
def test_encode_refuses_values_outside_subset(value):
    with pytest.raises(UsageError):
        encode(value)


@pytest.mark.parametrize(
    ("value", "data"),
    [
        ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
        ({"a": (1, 2)}, b'{"a":[1,2]}'),
        ({"a": "\u00e9\n\x01"}, b'{"a":"\xc3\xa9\\n\\u0001"}'),
        ({"z": {"y": [], "x": True}}, b'{"z":{"x":true,"y":[]}}'),
    ],
)
def test_encode_exact_bytes(value, data):
    assert encode(value) == data


def test_encode_lone_surrogate_is_usage_error():
    # A str with a lone surrogate (e.g. a file name read with surrogateescape) is
    # outside the subset; encode() promises UsageError, not orjson.JSONEncodeError.
    with pytest.raises(UsageError):
        encode({"a": "\udcff"})


class _Kind(enum.StrEnum):
    INFORMATION = "information"


class _Level(enum.IntEnum):
    LOW = 1
    NEGATIVE = -1


class _Text(str):
    """A str subclass, as a library may hand back."""


@pytest.mark.parametrize(
    ("value", "data"),
    [
        ({"kind": _Kind.INFORMATION}, b'{"kind":"information"}'),
        ({"level": _Level.LOW}, b'{"level":1}'),
        ({"name": _Text("x")}, b'{"name":"x"}'),
        ({"a": [_Kind.INFORMATION, _Level.LOW]}, b'{"a":["information",1]}'),
    ],
)
def test_encode_takes_str_and_int_subclasses_as_their_values(value, data):
    assert encode(value) == data


def test_encode_checks_the_range_of_an_int_subclass():
    with pytest.raises(UsageError, match=r"^integer out of range$"):
        encode({"level": _Level.NEGATIVE})


def test_the_valid_key_cache_is_bounded():
    """Hostile input with many distinct valid keys cannot grow the cache past 4,096."""
    many = {f"k{i}": i for i in range(5000)}
    assert decode(encode(many), max_size=1 << 20, what="test") == many
    assert len(canonical._VALID_KEYS) == 4096
    again = {f"z{i}": i for i in range(100)}  # new keys are still checked, not cached
    assert decode(encode(again), max_size=1 << 20, what="test") == again
    assert len(canonical._VALID_KEYS) == 4096
    with pytest.raises(MalformedError, match=r"^invalid object key 'Zz'$"):
        decode(b'{"Zz":1}', max_size=CAP, what="test")


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], []), (["b", "a", "b"], ["a", "b"]), (("x",), ["x"]), (iter(["c", "a"]), ["a", "c"])],
)
def test_sorted_unique(values, expected):
    assert canonical.sorted_unique(values) == expected


# --- base64url -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("", b""),
        ("AA", b"\x00"),
        ("AQ", b"\x01"),
        ("AAE", b"\x00\x01"),
        ("AAAA", b"\x00\x00\x00"),
        ("_w", b"\xff"),
        ("-w", b"\xfb"),
        ("__8", b"\xff\xff"),
        ("AQID", b"\x01\x02\x03"),
    ],
)
def test_b64_accepted(text, raw):
    assert b64d(text, what="t") == raw
    assert b64e(raw) == text


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # padding
        ("AA==", MalformedError),
        ("AAE=", MalformedError),
        ("AAAA====", MalformedError),
        # the standard (non-url) alphabet
        ("+w", MalformedError),
        ("/w", MalformedError),
        ("A+/A", MalformedError),
        # stray bits in the last character
        ("AB", NonCanonical),
        ("AR", NonCanonical),
        ("_x", NonCanonical),
        ("AAF", NonCanonical),
        ("AAB", NonCanonical),
        ("__9", NonCanonical),
        # impossible length, whitespace, non-ASCII
        ("A", MalformedError),
        ("AAAAA", MalformedError),
        ("AA AA", MalformedError),
        ("AA\n", MalformedError),
        ("\u00c0A", MalformedError),
        ("\uff21\uff21", MalformedError),  # fullwidth "AA"
    ],
)
def test_b64_refused(text, error):
    with pytest.raises(error) as info:
        b64d(text, what="t")
    assert type(info.value) is error


@given(st.binary(max_size=80))
@settings(max_examples=50, deadline=None)
def test_b64_round_trip(raw):
    text = b64e(raw)
    assert "=" not in text
    assert b64d(text, what="t") == raw


# --- ObjectReader --------------------------------------------------------------------------------

_OBJ: dict[str, canonical.JsonValue] = {
    "s": "abc",
    "t": "line\ttab\nok",
    "i": 5,
    "b": True,
    "blob": "AQID",
    "arr": [1, 2],
    "strs": ["x", "y"],
    "o": {"k": 1},
    "os": [{"k": 1}, {"k": 2}],
}


def _reader() -> ObjectReader:
    return ObjectReader(dict(_OBJ), "obj")


def test_reader_reads_everything():
    r = _reader()
    assert r.string("s", max_len=3) == "abc"
    assert r.text("t", max_len=20, multiline=True) == "line\ttab\nok"
    assert r.integer("i", lo=5, hi=5) == 5
    assert r.boolean("b") is True
    assert r.blob("blob", length=3) == b"\x01\x02\x03"
    assert r.array("arr", max_items=2) == [1, 2]
    assert r.strings("strs", max_items=2, max_len=1) == ["x", "y"]
    inner = r.object("o")
    assert inner.integer("k") == 1
    inner.done()
    assert [o.integer("k") for o in r.objects("os", max_items=2)] == [1, 2]
    r.done()


def test_reader_unknown_field():
    r = _reader()
    r.string("s", max_len=3)
    with pytest.raises(UnknownField):
        r.done()


def test_reader_nested_unknown_field():
    r = ObjectReader({"o": {"k": 1, "extra": 2}}, "obj")
    inner = r.object("o")
    inner.integer("k")
    with pytest.raises(UnknownField):
        inner.done()


def test_reader_missing_field():
    with pytest.raises(MalformedError):
        _reader().string("absent", max_len=10)


def test_reader_has_does_not_consume():
    r = ObjectReader({"a": 1}, "obj")
    assert r.has("a")
    assert not r.has("b")
    with pytest.raises(UnknownField):
        r.done()


@pytest.mark.parametrize(
    ("read", "field"),
    [
        (lambda r, f: r.string(f, max_len=100), "i"),
        (lambda r, f: r.string(f, max_len=100), "b"),
        (lambda r, f: r.string(f, max_len=100), "arr"),
        (lambda r, f: r.string(f, max_len=2), "s"),  # too long
        (lambda r, f: r.string(f, max_len=10, min_len=4), "s"),  # too short
        (lambda r, f: r.text(f, max_len=100), "i"),
        (lambda r, f: r.integer(f), "s"),
        (lambda r, f: r.integer(f), "b"),  # a boolean is not an integer
        (lambda r, f: r.integer(f, lo=6), "i"),
        (lambda r, f: r.integer(f, hi=4), "i"),
        (lambda r, f: r.boolean(f), "i"),
        (lambda r, f: r.boolean(f), "s"),
        (lambda r, f: r.blob(f, length=2), "blob"),
        (lambda r, f: r.blob(f, length=3), "i"),
        (lambda r, f: r.blob(f, length=3), "s"),  # "abc": length 3 mod 4 ok, but 2 bytes
        (lambda r, f: r.array(f, max_items=10), "o"),
        (lambda r, f: r.array(f, max_items=1), "arr"),
        (lambda r, f: r.array(f, max_items=10, min_items=3), "arr"),
        (lambda r, f: r.strings(f, max_items=10, max_len=10), "arr"),
        (lambda r, f: r.strings(f, max_items=10, max_len=10), "s"),
        (lambda r, f: r.object(f), "arr"),
        (lambda r, f: r.object(f), "s"),
        (lambda r, f: list(r.objects(f, max_items=10)), "arr"),
        (lambda r, f: list(r.objects(f, max_items=1)), "os"),
    ],
)
def test_reader_wrong_types(read, field):
    with pytest.raises(MalformedError) as info:
        read(_reader(), field)
    assert type(info.value) is MalformedError


@pytest.mark.parametrize(
    ("items", "ok"),
    [
        (["a", "b"], True),
        (["a", "a"], False),
        (["a", ""], False),
        (["a", "abcd"], False),
    ],
)
def test_reader_strings_items(items, ok):
    r = ObjectReader({"x": items}, "obj")
    if ok:
        assert r.strings("x", max_items=4, max_len=3) == items
    else:
        with pytest.raises(MalformedError):
            r.strings("x", max_items=4, max_len=3)


def test_reader_strings_repeats_allowed_when_not_unique():
    r = ObjectReader({"x": ["a", "a"]}, "obj")
    assert r.strings("x", max_items=4, max_len=3, unique=False) == ["a", "a"]


@pytest.mark.parametrize(
    ("text", "single", "multi"),
    [
        ("plain", True, True),
        ("\u00e9\u4e2d \U0001f600", True, True),
        ("tab\there", False, True),
        ("new\nline", False, True),
        ("cr\r", False, False),
        ("nul\x00", False, False),
        ("bell\x07", False, False),
        ("vt\x0b", False, False),
        ("esc\x1b", False, False),
        ("del\x7f", False, False),
        ("c1\x85", False, False),
        ("c1\x9f", False, False),
        ("zero\u200bwidth", False, False),
        ("rlm\u200f", True, True),
        ("lrm\u200e", True, True),
        ("zwnj\u200c", True, True),
        ("zwj\u200d", True, True),
        ("rlo\u202e", False, False),
        ("lre\u202a", False, False),
        ("isolate\u2066", False, False),
        ("word joiner\u2060", False, False),
        ("bom\ufeff", False, False),
        ("line separator\u2028", False, False),
        ("paragraph separator\u2029", False, False),
        ("arabic letter mark\u061c", True, True),
        ("", False, False),
    ],
)
def test_reader_text_controls(text, single, multi):
    for multiline, ok in ((False, single), (True, multi)):
        r = ObjectReader({"x": text}, "obj")
        if ok:
            assert r.text("x", max_len=100, multiline=multiline) == text
        else:
            with pytest.raises(MalformedError):
                r.text("x", max_len=100, multiline=multiline)


def test_reader_refuses_non_object():
    with pytest.raises(MalformedError):
        ObjectReader([1], "obj")


# --- Hypothesis: round trips ---------------------------------------------------------------------

_keys = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=0, max_value=MAX_INT),
    st.text(st.characters(codec="utf-8"), max_size=20),
)


def _values(depth: int) -> st.SearchStrategy[canonical.JsonValue]:
    if depth == 0:
        return _scalars
    inner = _values(depth - 1)
    return st.one_of(
        _scalars,
        st.lists(inner, max_size=4),
        st.dictionaries(_keys, inner, max_size=4),
    )


_objects = st.dictionaries(_keys, _values(4), max_size=6)


@given(_objects)
@settings(max_examples=50, deadline=None)
def test_round_trip(value):
    data = encode(value)
    decoded = decode(data, max_size=len(data), what="t")
    assert decoded == value
    assert encode(decoded) == data


@given(_objects)
@settings(max_examples=50, deadline=None)
def test_extra_whitespace_never_accepted(value):
    data = encode(value)
    with pytest.raises(NonCanonical):
        decode(data + b" ", max_size=len(data) + 1, what="t")

"""The one strict decoder of JSON request bodies (PROTOCOL.md §2.8), defect by defect."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import errors, strictjson

CASES: list[tuple[bytes, str]] = [
    (b'{"a":1,"a":1}', "DuplicateKey"),
    (b'{"a":{"b":1,"b":2}}', "DuplicateKey"),
    (b"[NaN]", "NonFiniteNumber"),
    (b"[Infinity]", "NonFiniteNumber"),
    (b"[-Infinity]", "NonFiniteNumber"),
    (b"[9007199254740992]", "NumberOutOfRange"),
    (b"[-9007199254740992]", "NumberOutOfRange"),
    (b"[99999999999999999999]", "NumberOutOfRange"),
    (b"[" + b"9" * 5000 + b"]", "NumberOutOfRange"),  # never converted: no quadratic cost
    (b"[1.5]", "NumberOutOfRange"),
    (b"[1e3]", "NumberOutOfRange"),
    (b"[-0.0]", "NumberOutOfRange"),
    (b'["\\ud800"]', "InvalidUnicode"),
    (b'{"\\udfff":1}', "InvalidUnicode"),
    (b"{} {}", "TrailingData"),
    (b"1 2", "TrailingData"),
    (b"[]\x00", "TrailingData"),
    (b"[" * 34 + b"]" * 34, "NestingTooDeep"),
    (b"[" * 100_000 + b"]" * 100_000, "NestingTooDeep"),
    (b"", "InvalidJson"),
    (b"   ", "InvalidJson"),
    (b"\xef\xbb\xbf{}", "InvalidJson"),
    (b'["\xff"]', "InvalidJson"),
    (b"{'a':1}", "InvalidJson"),
    (b'{"a":1,}', "InvalidJson"),
    (b'["tab\tinside"]', "InvalidJson"),
]


@pytest.mark.parametrize(("data", "error"), CASES, ids=[e for _, e in CASES])
def test_each_defect_is_refused_with_its_own_error(data: bytes, error: str) -> None:
    with pytest.raises(getattr(errors, error)) as info:
        strictjson.loads(data, max_size=1 << 24)
    assert type(info.value) is getattr(errors, error)
    assert len(info.value.detail) < 120  # bounded: the input is never echoed


def test_the_size_cap_comes_first() -> None:
    with pytest.raises(errors.SizeLimitExceeded):
        strictjson.loads(b'{"a":1,"a":2}', max_size=5)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b' {"a": [1, -2, true, false, null, "\\u00e9\\ud83d\\ude00"]} \n',
         {"a": [1, -2, True, False, None, "é😀"]}),
        (b"[9007199254740991, -9007199254740991]", [2**53 - 1, -(2**53 - 1)]),
        (b"[" * 33 + b"]" * 33, json.loads(b"[" * 33 + b"]" * 33)),
        (b'"text"', "text"),
    ],
)  # fmt: skip
def test_what_it_accepts(data: bytes, value: object) -> None:
    assert strictjson.loads(data, max_size=1 << 20) == value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_round_trip_of_every_accepted_value(value: object) -> None:
    data = json.dumps(value, ensure_ascii=False).encode()
    assert strictjson.loads(data, max_size=1 << 20) == value

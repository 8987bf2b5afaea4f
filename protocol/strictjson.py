"""The one strict decoder for JSON request bodies (docs/PROTOCOL.md §2.8).

Signed structures use canonical JSON (:mod:`protocol.canonical`).  Every other
JSON body that a listener takes — the hub API's unsigned bodies, a node's peer
listener and its local API — goes through :func:`loads`, which accepts I-JSON
(RFC 7493) narrowed to what the APIs use, and refuses everything a parser
could read two ways:

=================================  ======================  =========================
refused                            error                   slug
=================================  ======================  =========================
not UTF-8, a BOM, bad syntax       :class:`InvalidJson`    ``invalid-json``
an object key twice                :class:`DuplicateKey`   ``duplicate-key``
``NaN``, ``Infinity``              :class:`NonFiniteNumber` ``non-finite-number``
a fraction, an exponent, |n| ≥ 2^53 :class:`NumberOutOfRange` ``number-out-of-range``
nesting deeper than ``max_depth``  :class:`NestingTooDeep`  ``nesting-too-deep``
anything after the value           :class:`TrailingData`   ``trailing-data``
a lone surrogate escape            :class:`InvalidUnicode` ``invalid-unicode``
=================================  ======================  =========================

The decoder never converts an over-long digit string to an integer, never
recurses deeper than ``max_depth`` on its own, and never echoes input in an
error message.
"""

from __future__ import annotations

import json
import re
from typing import Final

from protocol.errors import (
    DuplicateKey,
    InvalidJson,
    InvalidUnicode,
    NestingTooDeep,
    NonFiniteNumber,
    NumberOutOfRange,
    SizeLimitExceeded,
    TrailingData,
)

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "JsonAny", "loads"]

#: The deepest nesting accepted: the top-level value is at depth 0.
MAX_DEPTH: Final = 32
#: Largest magnitude of an integer (RFC 7493 §2.2: exact in an IEEE 754 double).
MAX_SAFE_INTEGER: Final = 2**53 - 1
_MAX_DIGITS: Final = len(str(MAX_SAFE_INTEGER))

#: A decoded value.
JsonAny = dict[str, "JsonAny"] | list["JsonAny"] | str | int | bool | None


def _pairs(pairs: list[tuple[str, JsonAny]]) -> dict[str, JsonAny]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise DuplicateKey("an object repeats a key")
    return obj


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:  # before int(): no quadratic conversion
        raise NumberOutOfRange(f"integers are within ±{MAX_SAFE_INTEGER}")
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise NumberOutOfRange(f"integers are within ±{MAX_SAFE_INTEGER}")
    return value


def _fraction(_text: str) -> float:
    raise NumberOutOfRange("numbers are integers, without fraction or exponent")


def _constant(_text: str) -> float:
    raise NonFiniteNumber("NaN and Infinity are not JSON")


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_int=_integer, parse_float=_fraction, parse_constant=_constant
)


def loads(data: bytes, *, max_size: int, max_depth: int = MAX_DEPTH) -> JsonAny:
    """Decode one JSON value from ``data`` strictly; raise the error of the table above.

    ``max_size`` is checked first (:class:`~protocol.errors.SizeLimitExceeded`).
    Which defect is reported for a body with several is not specified.
    """
    if len(data) > max_size:
        raise SizeLimitExceeded(f"body of {len(data)} bytes exceeds {max_size}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("the body is not UTF-8") from None
    if text.startswith("\ufeff"):
        raise InvalidJson("the body starts with a byte order mark")
    try:
        value, end = _DECODER.raw_decode(text, _skip(text, 0))
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"not JSON ({exc.msg} at byte offset {_offset(text, exc.pos)})") from None
    except RecursionError:
        raise NestingTooDeep(f"nesting deeper than {max_depth}") from None
    if _skip(text, end) != len(text):
        raise TrailingData(f"data after the JSON value at byte offset {_offset(text, end)}")
    _check(value, max_depth)
    result: JsonAny = value
    return result


_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return pos if match is None else match.end()


def _offset(text: str, pos: int) -> int:
    return len(text[:pos].encode("utf-8", "surrogatepass"))


def _check(value: JsonAny, max_depth: int) -> None:
    """Depth and Unicode: one iterative walk (no recursion on hostile input)."""
    stack: list[tuple[JsonAny, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise NestingTooDeep(f"nesting deeper than {max_depth}")
        if isinstance(item, str):
            _scalar_values(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _scalar_values(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _scalar_values(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUnicode("a string holds a lone surrogate") from None

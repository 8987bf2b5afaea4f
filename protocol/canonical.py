"""Canonical JSON: the one encoding of every signed structure (docs/PROTOCOL.md §2).

The encoding is RFC 8785 (JCS) restricted to a subset that leaves nothing to
interpretation:

* values are objects, arrays, strings, ``true``/``false`` and integers in
  ``[0, 2**53 - 1]``; no ``null``, no fractions, no exponents, no negatives;
* object keys match ``[a-z][a-z0-9_]{0,31}`` and appear in ascending byte
  order, each once;
* strings are UTF-8 with the JCS escapes only (``\\"``, ``\\\\``, ``\\b``,
  ``\\t``, ``\\n``, ``\\f``, ``\\r``, ``\\u00xx`` for the other C0 controls);
* no whitespace outside strings;
* byte strings travel as unpadded base64url (RFC 4648 §5) whose last
  character carries no stray bits.

Decoding is strict and cheap: parse, check the value subset, then re-encode
and compare bytes.  A value outside the subset (a fraction such as ``1.0``,
an exponent, a negative number, ``null``, a bad key) is
:class:`~protocol.errors.MalformedError`; a value inside the subset written
any other way than its canonical bytes (whitespace, key order, escapes,
``-0``) is :class:`~protocol.errors.NonCanonical`, and a repeated key is
:class:`~protocol.errors.DuplicateKey`.  So "the bytes that were signed" and
"the value that was checked" can never differ (R5, R9).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, NoReturn

import orjson

from protocol.errors import (
    DuplicateKey,
    MalformedError,
    NonCanonical,
    SizeLimitExceeded,
    UnknownField,
    UsageError,
)

__all__ = [
    "HIDDEN_CHARS_RE",
    "MAX_INT",
    "JsonValue",
    "ObjectReader",
    "b64d",
    "b64e",
    "decode",
    "encode",
]

#: A decoded canonical value.
JsonValue = dict[str, "JsonValue"] | list["JsonValue"] | str | int | bool

MAX_INT: Final = 2**53 - 1
_KEY_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
_MAX_DEPTH: Final = 16


def encode(value: Mapping[str, object] | list[object]) -> bytes:
    """Encode a value canonically.  Raise :class:`UsageError` for values outside the subset."""
    _check_value(value, 0, local=True)
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # e.g. a lone surrogate in a string
        raise UsageError(f"value cannot be encoded: {exc}") from exc


def decode(
    data: bytes, *, max_size: int, what: str, check_values: bool = True
) -> dict[str, JsonValue]:
    """Strictly decode a canonical JSON object of at most ``max_size`` bytes.

    Order of checks (R9): size cap, syntax, value subset, canonical bytes.
    ``check_values=False`` skips the walk over every value; use it only when an
    :class:`ObjectReader` will read every field (and call ``done()``), since the
    typed accessors then refuse the same values.  A key outside the subset is
    then refused as :class:`~protocol.errors.UnknownField`.
    """
    if len(data) > max_size:
        raise SizeLimitExceeded(f"{what}: {len(data)} bytes exceeds the cap of {max_size}")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(f"{what}: not valid UTF-8 JSON") from exc
    if not isinstance(value, dict):
        raise MalformedError(f"{what}: must be a JSON object")
    if check_values:
        _check_value(value, 0, local=False)
    if orjson.dumps(value, option=orjson.OPT_SORT_KEYS) != data:
        if _has_duplicate_keys(data):
            raise DuplicateKey(f"{what}: an object repeats a key")
        raise NonCanonical(f"{what}: not in canonical form")
    return value


def _has_duplicate_keys(data: bytes) -> bool:
    found = False

    def hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        nonlocal found
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            found = True
        return dict(pairs)

    json.loads(data, object_pairs_hook=hook)
    return found


def _fail(local: bool, message: str) -> NoReturn:
    if local:
        raise UsageError(message)
    raise MalformedError(message)


def _check_value(value: object, depth: int, *, local: bool) -> None:  # noqa: PLR0912
    """Refuse anything outside the subset.  Iterative, with exact-type fast paths:
    this runs on every decoded structure, so it is on the hot path."""
    stack: list[tuple[object, int]] = [(value, depth)]
    valid_keys = _VALID_KEYS
    while stack:
        item, level = stack.pop()
        if level > _MAX_DEPTH:
            _fail(local, "nesting too deep")
        kind = type(item)
        if kind is str or kind is bool:
            continue
        if kind is int:
            if not 0 <= item <= MAX_INT:  # type: ignore[operator]
                _fail(local, "integer out of range")
            continue
        if kind is dict:
            for key, child in item.items():  # type: ignore[attr-defined]
                if key not in valid_keys:
                    if type(key) is not str or not _KEY_RE.match(key):
                        _fail(local, f"invalid object key {key!r}")
                    if len(valid_keys) < 4096:
                        valid_keys.add(key)
                stack.append((child, level + 1))
        elif kind is list or kind is tuple:
            stack.extend((child, level + 1) for child in item)  # type: ignore[attr-defined]
        elif isinstance(item, bool | str):
            continue
        elif isinstance(item, int):
            if not 0 <= item <= MAX_INT:
                _fail(local, "integer out of range")
        else:
            _fail(local, f"value of type {kind.__name__} is outside the canonical subset")


# Keys already seen to match _KEY_RE (bounded, so hostile input cannot grow it).
_VALID_KEYS: set[str] = set()
# base64url -> standard alphabet; '+', '/' and '=' become '!' so strict decoding refuses them.
_B64_TRANSLATE: Final = bytes.maketrans(b"-_+/=", b"+/!!!")
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_VALUE: Final = {c: i for i, c in enumerate(_B64_ALPHABET)}


def b64e(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str, *, what: str) -> bytes:
    """Strict inverse of :func:`b64e`: alphabet, no padding, canonical last character."""
    n = len(text)
    if n % 4 == 1 or not text.isascii():
        raise MalformedError(f"{what}: not unpadded base64url")
    if n == 0:
        return b""
    try:
        out = binascii.a2b_base64(
            text.encode("ascii").translate(_B64_TRANSLATE) + b"=" * (-n % 4), strict_mode=True
        )
    except (binascii.Error, ValueError):
        raise MalformedError(f"{what}: not unpadded base64url") from None
    # The last character of a 2- or 3-character final group carries 4 or 2 unused
    # bits; canonical encodings set them to zero (RFC 4648 §3.5).
    spare = {2: 0x0F, 3: 0x03}.get(n % 4, 0)
    if spare and _B64_VALUE[text[-1]] & spare:
        raise NonCanonical(f"{what}: base64url has stray bits")
    return out


class ObjectReader:
    """Typed, strict field access over a decoded object.

    Each accessor consumes a field; :meth:`done` refuses any field left
    unconsumed, so unknown fields never pass silently.
    """

    __slots__ = ("_obj", "_seen", "_what")

    def __init__(self, obj: JsonValue, what: str) -> None:
        if not isinstance(obj, dict):
            raise MalformedError(f"{what}: must be an object")
        self._obj = obj
        self._what = what
        self._seen: set[str] = set()

    def _get(self, name: str) -> JsonValue:
        self._seen.add(name)
        try:
            return self._obj[name]
        except KeyError:
            raise MalformedError(f"{self._what}: missing field {name!r}") from None

    def has(self, name: str) -> bool:
        """Whether an optional field is present."""
        return name in self._obj

    def string(self, name: str, *, max_len: int, min_len: int = 0) -> str:
        """A string field, length counted in code points."""
        value = self._get(name)
        if not isinstance(value, str):
            raise MalformedError(f"{self._what}.{name}: must be a string")
        if not min_len <= len(value) <= max_len:
            raise MalformedError(f"{self._what}.{name}: length must be {min_len}..{max_len}")
        return value

    def text(self, name: str, *, max_len: int, min_len: int = 1, multiline: bool = False) -> str:
        """Human text: no controls, bidi or zero-width marks; newline and tab only if multiline."""
        value = self.string(name, max_len=max_len, min_len=min_len)
        if HIDDEN_CHARS_RE.search(value) or (not multiline and ("\n" in value or "\t" in value)):
            raise MalformedError(f"{self._what}.{name}: control characters are not allowed")
        return value

    def integer(self, name: str, *, lo: int = 0, hi: int = MAX_INT) -> int:
        """An integer field within ``[lo, hi]``."""
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedError(f"{self._what}.{name}: must be an integer")
        if not lo <= value <= hi:
            raise MalformedError(f"{self._what}.{name}: must be within {lo}..{hi}")
        return value

    def boolean(self, name: str) -> bool:
        """A boolean field."""
        value = self._get(name)
        if not isinstance(value, bool):
            raise MalformedError(f"{self._what}.{name}: must be true or false")
        return value

    def blob(self, name: str, *, length: int | None = None, max_len: int | None = None) -> bytes:
        """A base64url byte-string field of an exact or bounded length.

        The text is first bounded (``4 * n // 3 + 4`` characters, a cheap filter before
        decoding), then the decoded bytes must be exactly ``length`` or at most
        ``max_len`` (docs/PROTOCOL.md §2.5): the filter alone would let a bounded field
        hold up to two bytes more than its limit.
        """
        value = self.string(name, max_len=4 * (max_len or length or 0) // 3 + 4)
        out = b64d(value, what=f"{self._what}.{name}")
        if length is not None and len(out) != length:
            raise MalformedError(f"{self._what}.{name}: must be {length} bytes")
        if max_len is not None and len(out) > max_len:
            raise MalformedError(f"{self._what}.{name}: at most {max_len} bytes")
        return out

    def array(self, name: str, *, max_items: int, min_items: int = 0) -> list[JsonValue]:
        """An array field with a bounded number of items."""
        value = self._get(name)
        if not isinstance(value, list):
            raise MalformedError(f"{self._what}.{name}: must be an array")
        if not min_items <= len(value) <= max_items:
            raise MalformedError(f"{self._what}.{name}: must have {min_items}..{max_items} items")
        return value

    def strings(
        self, name: str, *, max_items: int, max_len: int, min_items: int = 0, unique: bool = True
    ) -> list[str]:
        """An array of strings, optionally without repeats."""
        items = self.array(name, max_items=max_items, min_items=min_items)
        out: list[str] = []
        for item in items:
            if not isinstance(item, str) or not 1 <= len(item) <= max_len:
                raise MalformedError(f"{self._what}.{name}: items must be strings")
            out.append(item)
        if unique and len(set(out)) != len(out):
            raise MalformedError(f"{self._what}.{name}: items must not repeat")
        return out

    def object(self, name: str) -> ObjectReader:
        """A nested object field."""
        return ObjectReader(self._get(name), f"{self._what}.{name}")

    def objects(self, name: str, *, max_items: int, min_items: int = 0) -> Iterator[ObjectReader]:
        """An array of objects."""
        items = self.array(name, max_items=max_items, min_items=min_items)
        for index, item in enumerate(items):
            yield ObjectReader(item, f"{self._what}.{name}[{index}]")

    def raw(self, name: str) -> JsonValue:
        """A field's decoded value, unchecked (the caller validates it)."""
        return self._get(name)

    def done(self) -> None:
        """Refuse any field that no accessor consumed."""
        extra = set(self._obj) - self._seen
        if extra:
            raise UnknownField(f"{self._what}: unknown field(s) {sorted(extra)}")


# C0/C1 controls except tab and newline; line and paragraph separators; and the
# invisible or direction-changing characters that let a displayed name or
# subject read differently from its bytes (zero-width space, bidi embeddings,
# overrides and isolates, word joiner and invisible operators, BOM).  ZWNJ,
# ZWJ and the LRM/RLM/ALM marks stay allowed: Persian, Urdu, Arabic and Indic
# text needs them.
HIDDEN_CHARS_RE: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028-\u202e\u2060-\u2069\ufeff]"
)


def has_hidden_chars(text: str) -> bool:
    """Whether ``text`` holds a character that :meth:`ObjectReader.text` refuses."""
    return HIDDEN_CHARS_RE.search(text) is not None


def sorted_unique(values: Iterable[str]) -> list[str]:
    """Sorted, de-duplicated list (the canonical order of a set of strings)."""
    return sorted(set(values))

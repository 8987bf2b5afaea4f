"""Typed JSON answers declared once: a frozen dataclass whose fields are its JSON.

A :class:`WireResult` subclass declares its fields, in the order its JSON
object lists them, with their Python types; from that declaration alone come
:meth:`WireResult.to_json` (the exact JSON object, for the side that answers)
and :meth:`WireResult.from_json` (a strict reader, for the side that asks), and
``hub/apidoc/results.py`` derives the schema's keys from the same fields.  The field
name is the JSON key.

Types and their JSON: ``str``, ``int`` (never a ``bool``), ``bool``, ``bytes``
(canonical unpadded base64url, :func:`protocol.canonical.b64e`), ``X | None``
(``null``), ``tuple[X, ...]`` (an array), ``dict[str, Any]`` (any JSON object,
taken as it is) and any class with ``to_json()`` and ``from_json(value, *,
what)`` (another result, or a :class:`~protocol.signed.SignedObject`).  Two
field markers refine that: :func:`omitted_when_none` (the key is left out
rather than ``null``) and :func:`one_of` (a string from a closed set).

:meth:`~WireResult.from_json` is strict: every key the class declares must be
present (except those omitted when ``None``), no other key may be, and every
value must have its declared type; anything else is a
:class:`~protocol.errors.MalformedError` (an unknown key an
:class:`~protocol.errors.UnknownField`) naming the offending path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Self

from protocol import canonical
from protocol.errors import MalformedError, UnknownField

__all__ = ["WireField", "WireResult", "omitted_when_none", "one_of", "wire_fields"]

#: Keys of a field's ``metadata`` (set by :func:`omitted_when_none` and :func:`one_of`).
_OMIT: Final = "globe.omit-when-none"
_CHOICES: Final = "globe.one-of"

Encoder = Callable[[Any], Any]
Decoder = Callable[[Any, str], Any]


def omitted_when_none() -> Any:
    """Mark an optional field whose key is absent, never ``null``, when it is ``None``."""
    return dataclasses.field(default=None, metadata={_OMIT: True})


def one_of(choices: Iterable[str], *, default: str | None = None) -> Any:
    """Mark a string field whose value is one of ``choices`` (a closed set, in order)."""
    if default is None:
        return dataclasses.field(metadata={_CHOICES: tuple(choices)})
    return dataclasses.field(default=default, metadata={_CHOICES: tuple(choices)})


@dataclass(frozen=True, slots=True)
class WireField:
    """How one field travels: its key, type, markers and codec (derived once per class)."""

    name: str
    hint: Any
    omit_none: bool
    choices: tuple[str, ...] | None
    encode: Encoder | None  # None: the value is its own JSON
    decode: Decoder


class WireResult:
    """Base of the typed answers: JSON derived from the dataclass fields (module docstring)."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """The exact JSON object this value travels as."""
        out: dict[str, Any] = {}
        for f in wire_fields(type(self)):
            value = getattr(self, f.name)
            if value is None:
                if not f.omit_none:
                    out[f.name] = None
            else:
                out[f.name] = value if f.encode is None else f.encode(value)
        return out

    @classmethod
    def from_json(cls, value: object, *, what: str) -> Self:
        """Strictly read the JSON object :meth:`to_json` writes (see the module docstring)."""
        if not isinstance(value, dict):
            raise MalformedError(f"{what}: must be an object")
        plan = wire_fields(cls)
        unknown = value.keys() - {f.name for f in plan}
        if unknown:
            raise UnknownField(f"{what}: unknown field(s) {sorted(unknown)}")
        found: dict[str, Any] = {}
        for f in plan:
            if f.name not in value:
                if not f.omit_none:
                    raise MalformedError(f"{what}: missing field {f.name!r}")
                continue
            item = value[f.name]
            if item is None and f.omit_none:
                raise MalformedError(f"{what}.{f.name}: must be absent rather than null")
            found[f.name] = f.decode(item, f"{what}.{f.name}")
        made: Self = cls(**found)
        return made


_PLANS: dict[type, tuple[WireField, ...]] = {}


def wire_fields(cls: type) -> tuple[WireField, ...]:
    """The fields of a :class:`WireResult` dataclass, in JSON order, with their codecs."""
    plan = _PLANS.get(cls)
    if plan is None:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"{cls!r} is not a dataclass")
        hints = typing.get_type_hints(cls)
        made = []
        for f in dataclasses.fields(cls):
            choices: tuple[str, ...] | None = f.metadata.get(_CHOICES)
            encode, decode = _codec(hints[f.name], choices)
            made.append(WireField(f.name, hints[f.name], bool(f.metadata.get(_OMIT)), choices,
                                  encode, decode))  # fmt: skip
        plan = _PLANS[cls] = tuple(made)
    return plan


# --- codecs by type --------------------------------------------------------------------------


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedError(f"{what}: must be a string")
    return value


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedError(f"{what}: must be an integer")
    return value


def _boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise MalformedError(f"{what}: must be true or false")
    return value


def _base64(value: Any, what: str) -> bytes:
    return canonical.b64d(_string(value, what), what=what)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedError(f"{what}: must be an object")
    return value


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedError(f"{what}: must be an array")
    return value


_SCALARS: Final[dict[Any, tuple[Encoder | None, Decoder]]] = {
    str: (None, _string),
    int: (None, _integer),
    bool: (None, _boolean),
    bytes: (canonical.b64e, _base64),
}


def _codec(hint: Any, choices: tuple[str, ...] | None = None) -> tuple[Encoder | None, Decoder]:
    """How a value of type ``hint`` is written and strictly read."""
    if choices is not None:
        if hint is not str:
            raise TypeError(f"one_of() marks a str field, not {hint!r}")
        allowed = frozenset(choices)

        def choice(value: Any, what: str) -> str:
            if _string(value, what) not in allowed:
                raise MalformedError(f"{what}: must be one of {', '.join(choices)}")
            return str(value)

        return None, choice
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args and len(args) == 2:
        (other,) = (a for a in args if a is not type(None))
        return _nullable(*_codec(other))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _array_of(*_codec(args[0]))
    if origin is dict and args and args[0] is str:
        return None, _object
    if isinstance(hint, type) and callable(getattr(hint, "from_json", None)):
        nested: Any = hint
        return (lambda v: v.to_json()), (lambda v, what: nested.from_json(v, what=what))
    raise TypeError(f"no JSON form for {hint!r}")


def _nullable(enc: Encoder | None, dec: Decoder) -> tuple[Encoder | None, Decoder]:
    """``X | None``: ``null`` or an ``X``."""

    def encode(value: Any) -> Any:
        return None if value is None or enc is None else enc(value)

    def decode(value: Any, what: str) -> Any:
        return None if value is None else dec(value, what)

    return (None if enc is None else encode), decode


def _array_of(enc: Encoder | None, dec: Decoder) -> tuple[Encoder | None, Decoder]:
    """``tuple[X, ...]``: an array of ``X``."""

    def encode(value: Any) -> list[Any]:
        return list(value) if enc is None else [enc(x) for x in value]

    def decode(value: Any, what: str) -> tuple[Any, ...]:
        return tuple(dec(x, f"{what}[{i}]") for i, x in enumerate(_array(value, what)))

    return encode, decode

"""JSON Schema building blocks of the local API's document, shared by its declarations.

Patterns are written so that ECMA-262 (the document's dialect) and Python read
them alike; a value must match the whole pattern (``re.fullmatch`` in the
parsers, ``^(?:...)$`` in the document).  Lengths are counted in code points, as
JSON Schema counts them, so they are never folded into a pattern.  A schema may
hold a :class:`Component` anywhere: :mod:`globe_node.apidoc` turns it into a
``$ref`` and lists it once under ``components/schemas``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from protocol.canonical import HIDDEN_CHARS_RE as HIDDEN_CHAR

__all__ = [
    "HEX32",
    "Component",
    "JsonObject",
    "anchored",
    "closed_object",
    "compiled",
    "ecma",
    "enum_of",
    "multiline_text",
    "nullable",
    "one_line_text",
    "view_schema",
    "visible",
]

JsonObject = dict[str, Any]

#: 32 lower-case hex digits: a message id, an upload id (PROTOCOL.md §3.1).
HEX32: Final = "[0-9a-f]{32}"


def _escape(text: str) -> str:
    """Characters outside printable ASCII as ``\\uXXXX`` (ECMA-262 and Python regex alike)."""
    return "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in text)


#: The characters ``canonical.has_hidden_chars`` finds (control, bidi, zero-width), as a class body.
_HIDDEN: Final = _escape(HIDDEN_CHAR.pattern.removeprefix("[").removesuffix("]"))


def visible(extra: str = "") -> str:
    """One character that ``canonical.has_hidden_chars`` does not find, nor one of ``extra``
    (a character class body)."""
    return f"[^{_HIDDEN}{extra}]"


def one_line_text() -> str:
    """Text as ``ObjectReader.text`` takes it on one line: nothing hidden, no tab or newline."""
    return visible("\\t\\n") + "*"


def multiline_text() -> str:
    """Text as ``ObjectReader.text(multiline=True)`` takes it: tab and newline allowed."""
    return visible() + "*"


def ecma(regex: re.Pattern[str]) -> str:
    """A Python pattern anchored with ``\\Z`` (used with ``match``) as a whole-value pattern."""
    return regex.pattern.removesuffix("\\Z")


def anchored(pattern: str) -> str:
    """``pattern`` as the document states it: the whole value must match."""
    return f"^(?:{pattern})$"


@functools.cache
def compiled(pattern: str) -> re.Pattern[str]:
    """``pattern``, compiled once."""
    return re.compile(pattern)


# --- named schemas ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Component:
    """A named schema, ``#/components/schemas/<name>`` in the document.

    ``build`` is called when the document is made, so components may refer to
    each other (and to themselves) in any order.  A schema value anywhere may be
    a :class:`Component`; :mod:`globe_node.apidoc` turns it into a ``$ref``.
    """

    name: str
    build: Callable[[], JsonObject]


def nullable(schema: JsonObject | Component) -> JsonObject:
    """``schema`` or ``null``."""
    if isinstance(schema, Component):
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif "enum" not in out:
        return {"anyOf": [schema, {"type": "null"}]}
    return out


_SCALARS: Final[dict[type, str]] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: Any, refs: Mapping[type, Component]) -> JsonObject | Component:
    """The JSON Schema of a value of type ``hint`` as ``to_json`` writes it."""
    if hint in refs:
        return refs[hint]
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        (other,) = (a for a in args if a is not type(None))
        return nullable(_type_schema(other, refs))
    if origin in (tuple, list) and (origin is list or args[1:] == (Ellipsis,)):
        return {"type": "array", "items": _type_schema(args[0], refs)}
    if origin is dict and args[0] is str:
        return {"type": "object", "additionalProperties": _type_schema(args[1], refs)}
    raise TypeError(f"no schema for {hint!r}: declare the property")


def view_schema(
    cls: type,
    *,
    rename: Mapping[str, str] | None = None,
    omit: tuple[str, ...] = (),
    props: Mapping[str, JsonObject | Component] | None = None,
    refs: Mapping[type, Component] | None = None,
) -> JsonObject:
    """The schema of ``cls().to_json()``, derived from the dataclass's fields.

    ``rename`` maps a field to its JSON key, ``omit`` names fields ``to_json``
    leaves out, ``props`` gives a key's schema outright (an enumeration, say),
    and ``refs`` names the components of nested views.  Every key is required
    and no other is allowed, so a test validating ``to_json`` output against it
    fails on any disagreement.
    """
    rename, props, refs = rename or {}, props or {}, refs or {}
    hints = typing.get_type_hints(cls)
    properties: JsonObject = {}
    for f in dataclasses.fields(cls):
        if f.name in omit:
            continue
        key = rename.get(f.name, f.name)
        properties[key] = props[key] if key in props else _type_schema(hints[f.name], refs)
    unknown = set(props) - set(properties)
    if unknown:
        raise TypeError(f"{cls.__name__} has no properties {sorted(unknown)}")
    return closed_object((cls.__doc__ or "").strip().splitlines()[0], properties)


def closed_object(
    description: str, properties: JsonObject, *, optional: tuple[str, ...] = ()
) -> JsonObject:
    """An object with exactly these properties (all required unless listed in ``optional``)."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": [p for p in properties if p not in optional],
        "additionalProperties": False,
    }


def enum_of(values: Iterable[Any], *extra: str) -> JsonObject:
    """A string naming one of ``values`` (enum members or strings), or one of ``extra``."""
    names = [getattr(v, "value", v) for v in values]
    return {"type": "string", "enum": [*names, *extra]}

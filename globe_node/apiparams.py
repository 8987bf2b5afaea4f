"""The vocabulary the local API declares its routes in: parameters, bodies, answers.

A route (:class:`ApiRoute`) states, as data, its path parameters, query
parameters, body, success answer and refusals.  The same objects parse the
request (:func:`parse_request`, called by the one guard in :mod:`globe_node.api`)
and describe it (:mod:`globe_node.apidoc` renders each as JSON Schema in the
OpenAPI document), so a limit, a pattern or a field's type is written once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar, cast

from aiohttp import web

from globe_io.errors import LengthRequired, NotFound, PayloadTooLarge
from globe_io.web import read_json
from globe_node.apischema import Component, JsonObject, anchored, compiled, nullable
from globe_node.roles import Permission
from globe_node.users import Principal
from protocol.errors import GlobeError, UsageError

__all__ = [
    "ApiRoute", "Call", "Choice", "ChoiceSet", "Field", "Handler", "Integer", "JsonBody", "Key",
    "Param", "PathParam", "QFlag", "QInt", "QOptInt", "QRequired", "QText", "Query",
    "QueryShape",
    "RawBody", "Reply", "Shape", "Text", "defaulted", "optional", "parse_request", "required",
    "shown",
]  # fmt: skip

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
_E = TypeVar("_E", bound=Enum)


def shown(value: object) -> str:
    """A client's value in an error message: bounded and on one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- values: how one JSON value is checked and described -------------------------------------


class Shape(ABC, Generic[T]):
    """How one JSON value (a body field, a path segment) is parsed and described."""

    __slots__ = ()
    #: What :meth:`parse` can refuse with (the document lists them).
    refusals: ClassVar[tuple[type[GlobeError], ...]] = (UsageError,)

    @abstractmethod
    def schema(self) -> JsonObject | Component:
        """Its JSON Schema."""

    @abstractmethod
    def parse(self, value: object, name: str) -> T:
        """The value, or the refusal (a :class:`GlobeError`) naming ``name``."""

    def dump(self, value: T) -> object:
        """The JSON form of a parsed value (a default, in the document)."""
        return value


@dataclass(frozen=True, slots=True)
class Text(Shape[str]):
    """A string of ``min_len..max_len`` code points matching ``pattern``."""

    rule: str  # completes "'<name>' is ..." in the refusal
    min_len: int = 0
    max_len: int | None = None
    pattern: str | None = None

    def schema(self) -> JsonObject:
        """``type: string`` with its bounds."""
        out: JsonObject = {"type": "string"}
        if self.min_len:
            out["minLength"] = self.min_len
        if self.max_len is not None:
            out["maxLength"] = self.max_len
        if self.pattern is not None:
            out["pattern"] = anchored(self.pattern)
        return out

    def parse(self, value: object, name: str) -> str:
        """The string, if it keeps to the bounds."""
        if not isinstance(value, str):
            raise UsageError(f"'{name}' is a string")
        if (
            len(value) < self.min_len
            or (self.max_len is not None and len(value) > self.max_len)
            or (self.pattern is not None and not compiled(self.pattern).fullmatch(value))
        ):
            raise UsageError(f"'{name}' is {self.rule}")
        return value


@dataclass(frozen=True, slots=True)
class Integer(Shape[int]):
    """A JSON integer (never ``true``, never ``2.0``) within ``minimum..maximum``."""

    minimum: int
    maximum: int

    def schema(self) -> JsonObject:
        """``type: integer`` with its bounds."""
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}

    def parse(self, value: object, name: str) -> int:
        """The integer, if in range."""
        if type(value) is not int or not self.minimum <= value <= self.maximum:
            if self.minimum == 0:
                raise UsageError(f"'{name}' is a non-negative integer")
            raise UsageError(f"'{name}' is an integer {self.minimum}-{self.maximum}")
        return value


@dataclass(frozen=True, slots=True)
class Choice(Shape[_E]):
    """One value of an enumeration; ``allowed`` narrows it, with its own refusal."""

    cls: type[_E]
    allowed: tuple[_E, ...] | None = None
    refusal: str = ""

    def schema(self) -> JsonObject:
        """``type: string`` and the accepted values."""
        return {"type": "string", "enum": [m.value for m in (self.allowed or tuple(self.cls))]}

    def parse(self, value: object, name: str) -> _E:
        """The member, if ``value`` names one that is allowed."""
        try:
            member = self.cls(value)
        except ValueError:
            raise UsageError(f"'{name}': unknown value {shown(value)}") from None
        if self.allowed is not None and member not in self.allowed:
            raise UsageError(self.refusal)
        return member

    def dump(self, value: _E) -> object:
        """The member's value."""
        return value.value


@dataclass(frozen=True, slots=True)
class ChoiceSet(Shape[frozenset[_E]]):
    """A list of values of an enumeration, as a set (repeats are harmless)."""

    cls: type[_E]

    def schema(self) -> JsonObject:
        """An array of the enumeration's values."""
        return {"type": "array", "items": Choice(self.cls).schema()}

    def parse(self, value: object, name: str) -> frozenset[_E]:
        """The members named."""
        if not isinstance(value, list):
            raise UsageError(f"'{name}' is a list")
        item = Choice(self.cls)
        return frozenset(item.parse(v, name) for v in value)

    def dump(self, value: frozenset[_E]) -> object:
        """The values, sorted."""
        return sorted(m.value for m in value)


@dataclass(frozen=True, slots=True)
class Key(Shape[str]):
    """A path segment naming a resource; one that cannot name any is simply not found."""

    refusals: ClassVar[tuple[type[GlobeError], ...]] = (NotFound,)

    pattern: str
    what: str  # "no <what> <value>"

    def schema(self) -> JsonObject:
        """``type: string`` and the pattern of every such key."""
        return {"type": "string", "pattern": anchored(self.pattern)}

    def parse(self, value: object, name: str) -> str:
        """The key, or :class:`NotFound`."""
        if not isinstance(value, str) or not compiled(self.pattern).fullmatch(value):
            raise NotFound(f"no {self.what} {value}")
        return value


# --- parameters: where a value comes from ----------------------------------------------------


class Param(Generic[T_co]):
    """A declared input of a route; :class:`Call` maps each to its parsed value."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, eq=False)
class Field(Param[T]):
    """A field of a JSON body.  Absent and ``null`` are the same: the default applies."""

    name: str
    shape: Shape[Any]
    description: str
    required: bool = False
    default: object = None

    def read(self, obj: Mapping[str, object]) -> T:
        """The field's value in ``obj`` (a required field's absence is its type's refusal)."""
        value = obj.get(self.name)
        if value is None and not self.required:
            return cast(T, self.default)
        return cast(T, self.shape.parse(value, self.name))

    def schema(self) -> JsonObject:
        """The property's schema: ``null`` allowed unless required; the default stated."""
        base = self.shape.schema()
        if not self.required:
            out = nullable(base)
        else:
            out = dict(base) if isinstance(base, dict) else {"allOf": [base]}
        if self.default is not None:
            out["default"] = self.shape.dump(self.default)
        out["description"] = self.description
        return out


def required(name: str, shape: Shape[T], description: str) -> Field[T]:
    """A field the body must carry."""
    return Field(name, shape, description, required=True)


def optional(name: str, shape: Shape[T], description: str) -> Field[T | None]:
    """A field that may be absent (or ``null``): ``None``."""
    return Field(name, shape, description)


def defaulted(name: str, shape: Shape[T], default: T, description: str) -> Field[T]:
    """A field that may be absent (or ``null``): ``default``."""
    return Field(name, shape, description, default=default)


class QueryShape(ABC, Generic[T]):
    """How one query parameter's text is parsed and described."""

    __slots__ = ()
    required: bool = False

    @abstractmethod
    def schema(self) -> JsonObject:
        """Its JSON Schema."""

    @abstractmethod
    def parse(self, raw: str | None, name: str) -> T:
        """The value (``raw`` is ``None`` when absent), or a :class:`UsageError`."""


@dataclass(frozen=True, slots=True)
class QInt(QueryShape[int]):
    """Decimal digits (no sign), ``lo..hi``; ``default`` when absent."""

    lo: int
    hi: int
    default: int

    def schema(self) -> JsonObject:
        """``type: integer`` with bounds and default."""
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi, "default": self.default}

    def parse(self, raw: str | None, name: str) -> int:
        """The integer; digits beyond ``hi``'s are refused unparsed."""
        if raw is None:
            return self.default
        if (
            not (raw.isascii() and raw.isdigit())
            or len(raw) > len(str(self.hi))
            or not self.lo <= int(raw) <= self.hi
        ):
            raise UsageError(f"'{name}' is an integer {self.lo}-{self.hi}")
        return int(raw)


@dataclass(frozen=True, slots=True)
class QOptInt(QueryShape[int | None]):
    """Decimal digits (no sign), ``lo..hi``; ``None`` when absent."""

    lo: int
    hi: int

    def schema(self) -> JsonObject:
        """``type: integer`` with bounds."""
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}

    def parse(self, raw: str | None, name: str) -> int | None:
        """The integer, or ``None``; digits beyond ``hi``'s are refused unparsed."""
        if raw is None:
            return None
        return QInt(self.lo, self.hi, self.lo).parse(raw, name)


@dataclass(frozen=True, slots=True)
class QFlag(QueryShape[bool]):
    """``1`` is true; anything else (or nothing) is false."""

    def schema(self) -> JsonObject:
        """Any string; ``1`` is the one that means something."""
        return {"type": "string", "examples": ["1"]}

    def parse(self, raw: str | None, name: str) -> bool:
        """Whether the flag is set."""
        return raw == "1"


@dataclass(frozen=True, slots=True)
class QText(QueryShape[str | None]):
    """One of ``choices``, or text of at most ``max_len`` code points matching ``pattern``;
    empty is the same as absent (``None``)."""

    rule: str  # completes "'<name>' is ..." in the refusal
    max_len: int
    pattern: str = ".*"
    choices: frozenset[str] | None = None

    def schema(self) -> JsonObject:
        """``type: string`` with the choices, or the length and pattern (empty allowed)."""
        if self.choices is not None:
            return {"type": "string", "enum": ["", *sorted(self.choices)]}
        return {"type": "string", "maxLength": self.max_len, "pattern": f"^(?:{self.pattern})?$"}

    def parse(self, raw: str | None, name: str) -> str | None:
        """The text, or ``None`` for absent or empty."""
        if not raw:
            return None
        if self.choices is not None:
            ok = raw in self.choices
        else:
            ok = len(raw) <= self.max_len and compiled(self.pattern).fullmatch(raw) is not None
        if not ok:
            raise UsageError(f"'{name}' is {self.rule}")
        return raw


@dataclass(frozen=True, slots=True)
class QRequired(QueryShape[str]):
    """A :class:`QText` (without choices) that must be given, and not empty."""

    text: QText
    missing: str  # the refusal when it is absent or empty
    required: bool = True

    def schema(self) -> JsonObject:
        """The text's schema, at least one character."""
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": self.text.max_len,
            "pattern": anchored(self.text.pattern),
        }

    def parse(self, raw: str | None, name: str) -> str:
        """The text."""
        value = self.text.parse(raw, name)
        if value is None:
            raise UsageError(self.missing)
        return value


@dataclass(frozen=True, slots=True, eq=False)
class Query(Param[T]):
    """A query parameter."""

    name: str
    shape: QueryShape[T]
    description: str

    def read(self, request: web.Request) -> T:
        """Its value in ``request`` (the first, if given twice)."""
        return self.shape.parse(request.query.get(self.name), self.name)


@dataclass(frozen=True, slots=True, eq=False)
class PathParam(Param[T]):
    """A ``{name}`` segment of the route's path."""

    name: str
    shape: Shape[T]
    description: str

    def read(self, request: web.Request) -> T:
        """Its value in ``request``."""
        return self.shape.parse(request.match_info[self.name], self.name)


# --- bodies and answers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A JSON object body read by the one strict decoder (PROTOCOL.md §2.8).

    Only the declared fields are accepted (a typo must not silently drop a
    restriction); an empty body is ``{}``.
    """

    name: str  # its component
    description: str
    fields: tuple[Field[Any], ...]
    max_bytes: int

    def parse(self, obj: Mapping[str, object]) -> dict[Param[Any], object]:
        """Each field's value; unknown fields are refused after the known ones are read."""
        values: dict[Param[Any], object] = {f: f.read(obj) for f in self.fields}
        extra = sorted(set(obj) - {f.name for f in self.fields})
        if extra:
            raise UsageError(f"unknown field(s): {', '.join(shown(x) for x in extra[:5])}")
        return values

    def schema(self) -> JsonObject:
        """The object: its fields, required ones listed, nothing else allowed."""
        return {
            "type": "object",
            "description": self.description,
            "properties": {f.name: f.schema() for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": False,
        }


@dataclass(frozen=True, slots=True)
class RawBody:
    """Bytes streamed by the handler, announced by ``Content-Length`` (never chunked)."""

    description: str
    max_bytes: int
    what: str  # "<what> is at most N bytes"
    media_type: str = "application/octet-stream"

    def check(self, request: web.Request) -> None:
        """Refuse a body of unstated or excessive length before any of it is read."""
        if request.content_length is None:
            raise LengthRequired(f"{self.what} states its size in Content-Length")
        if request.content_length > self.max_bytes:
            raise PayloadTooLarge(f"{self.what} is at most {self.max_bytes} bytes")


@dataclass(frozen=True, slots=True)
class Reply:
    """A route's success: status, and what the body holds (``None``: no body).

    ``links`` name the routes (by handler) that take the ``id`` this answer holds
    as their ``{id}``: OpenAPI links, which clients and test generators follow.
    """

    status: int
    description: str
    schema: Component | None = None
    media_type: str = "application/json"
    headers: Mapping[str, JsonObject] = field(default_factory=dict)
    links: Mapping[str, Handler] = field(default_factory=dict)


class Call:
    """The declared inputs of one request, parsed: ``call[PARAM]`` is its value."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[Param[Any], object]) -> None:
        self._values = dict(values)

    def __getitem__(self, param: Param[T]) -> T:
        return cast(T, self._values[param])

    def with_values(self, values: Mapping[Param[Any], object]) -> Call:
        """The same call with these inputs replaced (the guard's resolved ids)."""
        return Call({**self._values, **values})


Handler = Callable[[web.Request, Principal, Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One route of the local API: the permission it needs and everything it takes and answers.

    ``refusals`` are the route's own; :mod:`globe_node.apidoc` adds those every
    route shares (authentication, the role check, the HTTP layer, storage) and
    those its body and parameters imply.
    """

    method: str
    path: str  # aiohttp's form: a segment may carry its regex, ``{n:[0-9]{1,3}}``
    permission: Permission
    handler: Handler
    reply: Reply
    path_params: tuple[PathParam[Any], ...] = ()
    query: tuple[Query[Any], ...] = ()
    body: JsonBody | RawBody | None = None
    refusals: tuple[type[GlobeError], ...] = ()


async def parse_request(route: ApiRoute, request: web.Request) -> Call:
    """Every declared input of ``request``: body first, then query, then path."""
    values: dict[Param[Any], object] = {}
    if isinstance(route.body, JsonBody):
        values.update(
            route.body.parse(await read_json(request, route.body.max_bytes, empty_ok=True))
        )
    elif isinstance(route.body, RawBody):
        route.body.check(request)
    for q in route.query:
        values[q] = q.read(request)
    for p in route.path_params:
        values[p] = p.read(request)
    return Call(values)

"""Building blocks of the hub's OpenAPI document: limits, references, values, operations.

:mod:`hub.openapi` assembles the document from :mod:`hub.apidoc.schemas` (the wire's
values and request bodies), :mod:`hub.apidoc.results` (the answers, derived from
:mod:`globe_io.hubapi`), :mod:`hub.apidoc.paths` and :mod:`hub.apidoc.messages` (the
operations); these helpers state each rule once for all of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

from hub.config import Limits
from hub.web import CURSOR_MAX, TextQuery
from protocol.canonical import HIDDEN_CHARS_RE as HIDDEN_CHAR
from protocol.errors import MalformedError

__all__ = [
    "KEM_CHALLENGE_BYTES",
    "ONCE",
    "VISIBLE_TEXT",
    "ApiLimits",
    "JsonObject",
    "b64",
    "b64_chars",
    "closed_object",
    "error_response",
    "int_param",
    "integer",
    "json_content",
    "not_blank_text",
    "ok_response",
    "operation",
    "query_param",
    "ref",
    "schema_ref",
    "text_param",
]

JsonObject = dict[str, Any]

_DEFAULTS: Final = Limits()
#: Bytes of the KEM proof-of-possession challenge (an HPKE ciphertext, PROTOCOL.md §6.2).
KEM_CHALLENGE_BYTES: Final = 1168


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The configurable limits the document states, as the serving application has them.

    :func:`hub.web.create_app` fills these from its own arguments, its router's
    and its blob store's limits; the defaults are :class:`hub.config.Limits`'.
    """

    max_body: int = _DEFAULTS.max_body
    page_size: int = _DEFAULTS.page_size
    mailbox_page: int = _DEFAULTS.page_size
    max_envelope: int = _DEFAULTS.max_envelope
    max_blob: int = _DEFAULTS.max_blob


# --- values --------------------------------------------------------------------------------


def ref(kind: str, name: str) -> JsonObject:
    """A reference to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def schema_ref(name: str) -> JsonObject:
    """A reference to the component schema ``name``."""
    return ref("schemas", name)


#: The base64url alphabet in value order (RFC 4648 §5).
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_CHAR: Final = "[A-Za-z0-9_-]"
#: Canonical last characters (unused bits zero, ``canonical.b64d``) of a final group of
#: 2 characters (4 unused bits) and of 3 characters (2 unused bits).
_B64_LAST: Final = {
    2: "[" + "".join(c for i, c in enumerate(_B64_ALPHABET) if i & 0x0F == 0) + "]",
    3: "[" + "".join(c for i, c in enumerate(_B64_ALPHABET) if i & 0x03 == 0) + "]",
}


def b64_chars(size: int) -> int:
    """Characters of unpadded base64url for ``size`` bytes."""
    return (4 * size + 2) // 3


def b64(
    description: str,
    *,
    size: int | None = None,
    max_bytes: int | None = None,
    min_bytes: int = 0,
) -> JsonObject:
    """Canonical unpadded base64url (as ``canonical.b64d`` takes it) of ``size`` bytes
    exactly, or of ``min_bytes`` to ``max_bytes``."""
    out: JsonObject = {"type": "string", "contentEncoding": "base64url"}
    if size is not None:
        chars = b64_chars(size)
        tail = chars % 4
        body = f"{_B64_CHAR}{{{chars - 1}}}{_B64_LAST[tail]}" if tail else f"{_B64_CHAR}{{{chars}}}"
        out["pattern"] = f"^{body}$"
        out["minLength"] = out["maxLength"] = chars
    else:
        out["pattern"] = (
            f"^(?:{_B64_CHAR}{{4}})*(?:{_B64_CHAR}{_B64_LAST[2]}|{_B64_CHAR}{{2}}{_B64_LAST[3]})?$"
        )
        if min_bytes:
            out["minLength"] = b64_chars(min_bytes)
        if max_bytes is not None:
            out["maxLength"] = b64_chars(max_bytes)
    out["description"] = description
    return out


def _escape(text: str) -> str:
    """Characters outside printable ASCII as ``\\uXXXX`` (ECMA-262 and Python regex alike)."""
    return "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in text)


#: The characters ``canonical.has_hidden_chars`` finds (control, bidi, zero-width), as a class body.
_HIDDEN: Final = _escape(HIDDEN_CHAR.pattern.removeprefix("[").removesuffix("]"))
#: Text without them (tab and newline are not hidden: single-line fields refuse them apart).
VISIBLE_TEXT: Final = f"^[^{_HIDDEN}]*$"


@functools.cache
def not_blank_text() -> str:
    """Visible text (newlines and tabs allowed) with a character ``str.strip()`` keeps."""
    space = _escape("".join(chr(c) for c in range(0x110000) if chr(c).isspace()))
    return f"^[^{_HIDDEN}]*[^{_HIDDEN}{space}][^{_HIDDEN}]*$"


def integer(description: str, *, minimum: int = 0, maximum: int = CURSOR_MAX) -> JsonObject:
    """An integer in ``minimum..maximum`` (by default a count or cursor, 0..2^53 - 1)."""
    return {
        "type": "integer",
        "format": "int64",
        "minimum": minimum,
        "maximum": maximum,
        "description": description,
    }


def closed_object(
    description: str, properties: JsonObject, *, optional: tuple[str, ...] = ()
) -> JsonObject:
    """A closed object: every property is required unless listed in ``optional``."""
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": [p for p in properties if p not in optional],
        "additionalProperties": False,
    }


# --- operations ----------------------------------------------------------------------------


def json_content(schema: JsonObject) -> JsonObject:
    """A JSON body of this schema."""
    return {"application/json": {"schema": schema}}


def ok_response(description: str, schema: JsonObject) -> JsonObject:
    """A success answering a JSON body of this schema."""
    return {"description": description, "content": json_content(schema)}


def error_response(name: str, description: str | None = None) -> JsonObject:
    """A reference to a shared error response, optionally saying what it means here."""
    out = ref("responses", name)
    if description is not None:
        out["description"] = description
    return out


_STATUS_RESPONSES: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    409: "Conflict",
    410: "Gone",
    411: "LengthRequired",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    507: "InsufficientStorage",
}


def operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: JsonObject,
    *,
    errors: dict[int, str | None],
    parameters: list[JsonObject] | None = None,
    body: JsonObject | None = None,
    signed: bool = False,
) -> JsonObject:
    """An operation; every one can also be rate limited (429) or fail unexpectedly (500).

    The responses are closed: no ``default``, every status the hub can answer the
    operation with is listed (405 for a method the path does not take is the only
    refusal that belongs to no operation).
    """
    out: JsonObject = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
    }
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = body
    all_errors: dict[int, str | None] = {**errors}
    all_errors.setdefault(429, None)
    all_errors.setdefault(500, None)
    out["responses"] = {
        **responses,
        **{str(s): error_response(_STATUS_RESPONSES[s], d) for s, d in sorted(all_errors.items())},
    }
    if signed:
        out["security"] = [{"GlobeAuth": []}]
    return out


#: What every query parameter's description ends with.
ONCE: Final = (
    f"Given at most once; anything the schema excludes is a 400 `{MalformedError.slug}` problem."
)


def query_param(name: str, description: str, schema: JsonObject) -> JsonObject:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def int_param(name: str, description: str, *, default: int, lo: int, hi: int) -> JsonObject:
    """A query integer as ``web._int_param`` reads it: decimal digits only, ``lo..hi``."""
    return query_param(
        name,
        f"{description} Decimal digits only (no sign), {lo}..{hi}.  {ONCE}",
        {
            "type": "integer",
            "format": "int64",
            "minimum": lo,
            "maximum": hi,
            "default": default,
        },
    )


def text_param(param: TextQuery, description: str) -> JsonObject:
    """A query string as :meth:`hub.web.TextQuery.read` reads it; empty means absent."""
    schema: JsonObject = {"type": "string"}
    if param.choices is not None:
        schema["enum"] = ["", *sorted(param.choices)]
    else:
        schema["maxLength"] = param.max_len
        schema["pattern"] = (
            VISIBLE_TEXT if param.pattern is None else f"^(?:{param.pattern.pattern})?$"
        )
    rules = (
        "one of the listed values"
        if param.choices is not None
        else f"at most {param.max_len} characters, no control, bidi or zero-width character"
    )
    return query_param(
        param.name,
        f"{description} {rules.capitalize()}; empty is the same as absent.  {ONCE}",
        schema,
    )

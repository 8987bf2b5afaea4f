"""The OpenAPI 3.1 document of the node's local API, generated from its route table.

Nothing here restates a rule: each operation comes from one
:class:`~globe_node.apiparams.ApiRoute` (method, path, permission, parameters,
body, answer, refusals), each schema from the declarations the handlers parse
with (:mod:`globe_node.apimodels`) and the answers' schemas
(:mod:`globe_node.apiresults`), the roles from :data:`globe_node.roles.GRANTS`
and the problem types from the :class:`~protocol.errors.GlobeError` class tree.
:func:`globe_node.api.create_api_app` serves the result at
``GET /api/openapi.json``.  ``tests/node/test_api_openapi.py`` validates it and
checks it against live answers; ``tests/node/test_api_schemathesis.py``
generates requests from it against a live node.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any, Final

from globe_io.errors import LengthRequired, PayloadTooLarge
from globe_io.httpguard import BadHttpRequest, HeaderFieldsTooLarge, RequestTimeout, UriTooLong
from globe_io.web import PROBLEM_TYPE
from globe_node.apiparams import ApiRoute, Handler, JsonBody, QFlag, RawBody
from globe_node.apischema import Component, JsonObject
from globe_node.errors import Forbidden, Unauthenticated
from globe_node.roles import GRANTS, Permission, Role
from protocol.errors import (
    PROBLEM_BASE,
    DuplicateKey,
    GlobeError,
    InvalidJson,
    InvalidUnicode,
    MalformedError,
    NestingTooDeep,
    NonFiniteNumber,
    NumberOutOfRange,
    StorageError,
    TrailingData,
    UsageError,
)

__all__ = ["doc_path", "openapi_document", "operation_id", "problem_types", "refusals"]

#: The modules whose error classes the local API can answer with: the protocol's, the
#: HTTP layer's and the node's own.  Named, not found by walking packages: clients define
#: errors too (``apiclient``, ``backup``), and what is imported must not change the document.
_ERROR_MODULES: Final = frozenset({
    "protocol.errors", "globe_io.errors", "globe_io.web", "globe_io.httpguard",
    "globe_node.errors", "globe_node.uploads",
})  # fmt: skip
#: Refusals any request can meet: authentication, the HTTP layer, storage, a bug of ours.
_EVERY_ROUTE: Final[tuple[type[GlobeError], ...]] = (
    Unauthenticated, BadHttpRequest, RequestTimeout, UriTooLong, HeaderFieldsTooLarge,
    StorageError, GlobeError,
)  # fmt: skip
#: What the one strict JSON decoder refuses (PROTOCOL.md §2.8), and a body over its cap.
_JSON_BODY: Final[tuple[type[GlobeError], ...]] = (
    InvalidJson, DuplicateKey, NonFiniteNumber, NumberOutOfRange, InvalidUnicode,
    TrailingData, NestingTooDeep, MalformedError, UsageError, PayloadTooLarge,
)  # fmt: skip
_TAGS: Final = {
    "inbox": "messages", "outbox": "messages", "messages": "messages", "uploads": "uploads",
    "cases": "cases", "stats": "cases", "directory": "directory", "ping": "directory",
}  # fmt: skip
_TAG_TEXT: Final = {
    "messages": "Sending, reading and handling messages.",
    "uploads": "Attachment bytes, staged before a message names them.",
    "cases": "Cases, requests and statistics.",
    "directory": "The verified member directory.",
    "node": "The node itself: status, sync, keys, backups, alerts, audit, users, this document.",
}


def problem_types() -> list[dict[str, Any]]:
    """Every problem type the local API can answer with, sorted by ``type`` URI.

    Walks :class:`~protocol.errors.GlobeError` and its subclasses, keeping each
    class defined in :data:`_ERROR_MODULES` (all imported here) that sets its own
    ``slug``.
    """
    for name in sorted(_ERROR_MODULES):
        importlib.import_module(name)
    found: dict[str, dict[str, Any]] = {}
    stack: list[type[GlobeError]] = [GlobeError]
    seen: set[type[GlobeError]] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if cls.__module__ not in _ERROR_MODULES or "slug" not in vars(cls):
            continue
        found[cls.type_uri()] = {
            "type": cls.type_uri(), "slug": cls.slug, "status": cls.status, "title": cls.title,
            "class": cls.__name__,
        }  # fmt: skip
    return [found[uri] for uri in sorted(found)]


def doc_path(path: str) -> str:
    """An aiohttp path as OpenAPI writes it: ``{n:[0-9]{1,3}}`` becomes ``{n}``."""
    return re.sub(r"\{(\w+):(?:[^{}]|\{[^{}]*\})*\}", r"{\1}", path)


def refusals(route: ApiRoute) -> dict[int, list[type[GlobeError]]]:
    """Every refusal ``route`` can answer, by status: its own and those its inputs imply."""
    classes: list[type[GlobeError]] = [*_EVERY_ROUTE, *route.refusals]
    if any(route.permission not in GRANTS[role] for role in Role):
        classes.append(Forbidden)
    if isinstance(route.body, JsonBody):
        classes.extend(_JSON_BODY)
        for f in route.body.fields:
            classes.extend(f.shape.refusals)
    elif isinstance(route.body, RawBody):
        classes.extend((LengthRequired, PayloadTooLarge))
    if any(not isinstance(q.shape, QFlag) for q in route.query):
        classes.append(UsageError)
    for p in route.path_params:
        classes.extend(p.shape.refusals)
    by_status: dict[int, list[type[GlobeError]]] = {}
    for cls in classes:
        listed = by_status.setdefault(cls.status, [])
        if cls not in listed:
            listed.append(cls)
    return dict(sorted(by_status.items()))


class _Components:
    """The document's named schemas, each rendered once and referred to by ``$ref``."""

    def __init__(self) -> None:
        self.schemas: JsonObject = {}
        self._named: dict[str, Component] = {}
        self._bodies: dict[int, Component] = {}

    def render(self, node: Any) -> Any:
        """``node`` with every :class:`Component` replaced by its ``$ref``."""
        if isinstance(node, Component):
            known = self._named.get(node.name)
            if known is None:
                self._named[node.name] = node
                self.schemas[node.name] = {}  # reserved: a component may refer to itself
                self.schemas[node.name] = self.render(node.build())
            elif known is not node:
                raise ValueError(f"two schemas are named {node.name}")
            return {"$ref": f"#/components/schemas/{node.name}"}
        if isinstance(node, dict):
            return {k: self.render(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [self.render(v) for v in node]
        return node

    def body(self, body: JsonBody) -> JsonObject:
        """A JSON body's schema, as a component of its own (one per declaration)."""
        comp = self._bodies.setdefault(id(body), Component(body.name, body.schema))
        return dict(self.render(comp))


def _roles(permission: Permission) -> str:
    return ", ".join(role.value for role in Role if permission in GRANTS[role])


def operation_id(handler: Handler) -> str:
    """A route's ``operationId``: its handler's name, ``api_status_update`` -> ``statusUpdate``."""
    first, *rest = handler.__name__.removeprefix("api_").split("_")
    return first + "".join(word.capitalize() for word in rest)


def _responses(route: ApiRoute, comps: _Components) -> JsonObject:
    ok = route.reply
    success: JsonObject = {"description": ok.description}
    if ok.headers:
        success["headers"] = {
            name: {"required": True, "schema": schema} for name, schema in ok.headers.items()
        }
    if ok.links:
        success["links"] = {
            name: {"operationId": operation_id(target), "parameters": {"id": "$response.body#/id"}}
            for name, target in ok.links.items()
        }
    if ok.schema is not None:
        success["content"] = {ok.media_type: {"schema": comps.render(ok.schema)}}
    elif ok.status != 204:
        success["content"] = {ok.media_type: {"schema": {"type": "string", "format": "binary"}}}
    out: JsonObject = {str(ok.status): success}
    for status, classes in refusals(route).items():
        out[str(status)] = {
            "description": ", ".join(f"`{c.slug}` ({c.title})" for c in classes) + ".",
            "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def _operation(route: ApiRoute, comps: _Components) -> JsonObject:
    summary, _, rest = (route.handler.__doc__ or "").strip().partition("\n")
    description = " ".join(rest.split())
    needs = f"Needs the `{route.permission.value}` permission (roles: {_roles(route.permission)})."
    op: JsonObject = {
        "operationId": operation_id(route.handler),
        "tags": [_TAGS.get(route.path.split("/")[2], "node")],
        "summary": summary.strip(),
        "description": f"{description}  {needs}".strip(),
        "security": [{"bearerAuth": []}],
    }
    params = [
        {"name": p.name, "in": "path", "required": True, "description": p.description,
         "schema": comps.render(p.shape.schema())}
        for p in route.path_params
    ] + [
        {"name": q.name, "in": "query", "required": q.shape.required,
         "description": q.description, "schema": comps.render(q.shape.schema())}
        for q in route.query
    ]  # fmt: skip
    if params:
        op["parameters"] = params
    if isinstance(route.body, JsonBody):
        op["requestBody"] = {
            "required": any(f.required for f in route.body.fields),
            "description": f"At most {route.body.max_bytes} bytes of JSON; no body is `{{}}`.",
            "content": {"application/json": {"schema": comps.body(route.body)}},
        }
    elif isinstance(route.body, RawBody):
        op["requestBody"] = {
            "required": False,  # no body is an empty file: HTTP cannot tell them apart
            "description": route.body.description,
            "content": {route.body.media_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    op["responses"] = _responses(route, comps)
    return op


def _problem(types: list[dict[str, Any]]) -> JsonObject:
    return {
        "type": "object",
        "description": (
            "An RFC 9457 problem, served as `application/problem+json` with `status` as the "
            f"HTTP status.  `type` is a stable identifier (not a link) `{PROBLEM_BASE}<slug>`; "
            "slugs and statuses are part of the contract, `title` and `detail` are for "
            "humans.  The types (see `x-problem-types` for status and title): "
            + ", ".join(t["type"] for t in types)
            + "."
        ),
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {
                "type": "string",
                "format": "uri-reference",
                "description": "The request path.",
            },
            "evidence": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
        },
        "required": ["type", "title", "status", "detail", "instance"],
        "x-problem-types": types,
    }


def _description() -> str:
    roles = "; ".join(
        f"`{role.value}`: " + ", ".join(sorted(p.value for p in GRANTS[role])) for role in Role
    )
    return (
        "The API of one GlobE Link node, served on its `api_host:api_port` (127.0.0.1 by "
        "default) for the `globe-node` CLI and the web UI.  Every request carries "
        "`Authorization: Bearer <token>`: a user's token, made with `globe-node users add` on "
        f"the node (or, for operators, `POST /api/users`).  Each route needs one permission; "
        f"the roles hold these: {roles}.  A JSON body goes through the node's one strict "
        "decoder (PROTOCOL.md §2.8: no duplicate keys, no fractions or exponents in numbers, "
        "integers within ±(2^53-1), valid UTF-8, bounded nesting) and carries only the "
        "declared fields: an unknown one is refused, never ignored.  An optional field may be "
        "`null`, which is the same as absent.  In a query, empty is the same as absent.  "
        "Every refusal is an RFC 9457 problem (`application/problem+json`, see `Problem`); "
        "a method a path does not take is a 405 `method-not-allowed` naming the others in "
        "`Allow`.  The node never opens a file a request names: attachments arrive as bytes "
        "(`POST /api/uploads`) and messages name them by upload id.  Every send, read, "
        "forward and export is written to the node's hash-chained audit log."
    )


def openapi_document(routes: Sequence[ApiRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes``."""
    comps = _Components()
    paths: JsonObject = {}
    for route in routes:
        paths.setdefault(doc_path(route.path), {})[route.method.lower()] = _operation(route, comps)
    types = problem_types()
    tags = sorted({op["tags"][0] for item in paths.values() for op in item.values()})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "GlobE Link node local API",
            "version": "1",
            "description": _description(),
        },
        "servers": [{"url": "/", "description": "This node's local API."}],
        "tags": [{"name": t, "description": _TAG_TEXT[t]} for t in tags],
        "paths": paths,
        "components": {
            "schemas": {**dict(sorted(comps.schemas.items())), "Problem": _problem(types)},
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A local API user's token (shown once when the user "
                    "is made; the node keeps only its SHA-256).",
                }
            },
        },
    }

"""The OpenAPI 3.1 document of the hub API v1, served at ``/v1/openapi.json``.

The document describes :func:`hub.web.create_app` and :class:`hub.service.HubService`.
Where it can, it is built from the code it describes rather than restating it:
problem types come from the :class:`~protocol.errors.GlobeError` class tree,
request rules from :mod:`hub.web` (query parameters, item counts, text lengths),
configurable limits from the application that serves it (:class:`ApiLimits`,
defaults from :class:`hub.config.Limits`), enumerations and caps from the
protocol, and the shape of every answer (its keys, which are required, closed
sets of values) from the typed results of :mod:`globe_io.hubapi` the handlers
serialise.  ``tests/hub/test_openapi.py`` checks that it names exactly the
routes the application registers and that live responses match the documented
schemas; ``tests/hub/test_schemathesis.py`` generates requests from it against
a live hub.

This module assembles the document from its parts in :mod:`hub.apidoc`: the
wire's values and request bodies (:mod:`~hub.apidoc.schemas`), the answers
(:mod:`~hub.apidoc.results`), the operations (:mod:`~hub.apidoc.paths`,
:mod:`~hub.apidoc.messages`) and their shared building blocks
(:mod:`~hub.apidoc.build`); the problem types and the shared error responses
are made here.
"""

from __future__ import annotations

from typing import Any, Final

from globe_io.errors import (
    NotFound,
    PayloadTooLarge,
    RateLimited,
)
from hub.apidoc.build import (
    ApiLimits,
    JsonObject,
    schema_ref,
)
from hub.apidoc.paths import paths
from hub.apidoc.results import result_schemas
from hub.apidoc.schemas import wire_schemas
from hub.web import BATCH_MAX_BODY
from protocol.errors import (
    AuthError,
    BadSignature,
    GlobeError,
    MalformedError,
    ReplayError,
    SizeLimitExceeded,
    StaleError,
    StorageError,
)
from protocol.requestauth import HEADER, HUB_AUDIENCE, MAX_SKEW

__all__ = ["ApiLimits", "openapi_document", "problem_types"]

#: Modules whose error classes the hub can render (others in the process are not ours).
_ERROR_PACKAGES: Final = frozenset({"protocol", "globe_io", "hub"})


# --- problem types -------------------------------------------------------------------------


def problem_types() -> list[dict[str, Any]]:
    """Every problem type the hub can render, sorted by ``type`` URI.

    Walks :class:`~protocol.errors.GlobeError` and its subclasses recursively
    (those defined in ``protocol`` and ``hub``; each class that sets its own
    ``slug``), the HTTP-level refusals of :mod:`globe_io.web` included.
    """
    import globe_io.web  # noqa: F401, PLC0415 - registers the HTTP-layer refusals

    found: dict[str, dict[str, Any]] = {}
    stack: list[type[GlobeError]] = [GlobeError]
    seen: set[type[GlobeError]] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if cls.__module__.partition(".")[0] not in _ERROR_PACKAGES or "slug" not in vars(cls):
            continue
        found.setdefault(
            cls.type_uri(),
            {
                "type": cls.type_uri(),
                "slug": cls.slug,
                "status": cls.status,
                "title": cls.title,
                "class": cls.__name__,
            },
        )
    return [found[uri] for uri in sorted(found)]


def _slugs_with_status(types: list[dict[str, Any]], status: int) -> str:
    return ", ".join(f"`{t['slug']}`" for t in types if t.get("status") == status)


# --- components ----------------------------------------------------------------------------


def _responses(types: list[dict[str, Any]], limits: ApiLimits) -> JsonObject:
    def problem(description: str, status: int | None = None) -> JsonObject:
        if status is not None:
            description += f"  Types with this status: {_slugs_with_status(types, status)}."
        return {
            "description": description,
            "content": {"application/problem+json": {"schema": schema_ref("Problem")}},
        }

    def retry_after(response: JsonObject, minimum: int) -> JsonObject:
        response["headers"] = {
            "Retry-After": {
                "description": f"Seconds to wait before retrying (at least {minimum}).",
                "required": True,
                "schema": {"type": "integer", "minimum": minimum},
            }
        }
        return response

    return {
        "BadRequest": problem("The request is malformed or breaks a protocol rule.", 400),
        "Unauthorized": problem(
            f"The `{HEADER}` signature was refused (uniform `{AuthError.slug}`), the "
            f"timestamp is outside the window (`{StaleError.slug}`), or a signature in the "
            f"body does not verify (`{BadSignature.slug}`).",
            401,
        ),
        "Forbidden": problem("A membership check failed.", 403),
        "RequestTimeout": problem("The body did not arrive in time; nothing was stored.", 408),
        "LengthRequired": problem("A streamed upload must declare its Content-Length.", 411),
        "NotFound": problem("No such resource.", 404),
        "MethodNotAllowed": {
            **problem(
                "The path exists but not with this method (any route; not listed per operation).",
                405,
            ),
            "headers": {
                "Allow": {
                    "description": "The methods the path takes (RFC 9110 §15.5.6).",
                    "required": True,
                    "schema": {"type": "string", "examples": ["GET,HEAD"]},
                }
            },
        },
        "Conflict": problem("The request conflicts with the current state.", 409),
        "Gone": problem("The envelope has expired.", 410),
        "PayloadTooLarge": problem(
            f"The body exceeds the route's cap (refused before it is buffered, "
            f"`{PayloadTooLarge.slug}`; `max_body`, {limits.max_body} bytes on this hub, "
            f"unless the operation states another) or the cap of the structure it carries "
            f"(`{SizeLimitExceeded.slug}`).",
            413,
        ),
        "TooManyRequests": retry_after(
            problem(
                "Rate limited: a token bucket per client address (every request) and per key "
                "(authenticated requests, after the signature verified) is empty.",
                429,
            ),
            1,
        ),
        "InternalError": problem(
            "An unexpected failure; the request was not applied (no traceback is sent).", 500
        ),
        "ServiceUnavailable": retry_after(
            problem(
                f"The database is unavailable (`{StorageError.slug}`); nothing was "
                "half-written, retry later.",
                503,
            ),
            1,
        ),
        "InsufficientStorage": problem(
            "A recipient's mailbox, or the uploader's blob quota or the hub's disk, is full; "
            "nothing was stored.  Retry once the recipient has drained its mailbox (or the "
            "uploader's blobs were released).",
            507,
        ),
    }


_SECURITY_DESCRIPTION: Final = f"""\
A signed request (PROTOCOL.md §10), in the style of RFC 9421.  Members sign with their \
certified **transport** key (`PUT /v1/prekeys` and the message routes `POST /v1/messages`, \
`POST /v1/messages/batch`, `GET /v1/mailbox`, `POST /v1/mailbox/ack`), admins with their \
genesis **admin** key (`/v1/admin/*`); never with an identity key.  One header, matching \
exactly:

    {HEADER}: v1;kid=ed25519:<32 hex>;created=<unix seconds>;nonce=<22 base64url>;sig=<86 base64url>

`nonce` is 16 random bytes and `sig` the 64-byte Ed25519 signature, both unpadded canonical \
base64url.  The signature is over `"globe/v1/request-auth" || 0x00 || base`, where `base` is \
the canonical JSON object (keys in this order, no whitespace)

    {{"audience":"{HUB_AUDIENCE}","body":b64(SHA-256(exact body bytes)),"created":created,\
"kid":kid,"method":"GET|POST|PUT","network":b64(network digest),"nonce":nonce,\
"target":path and query exactly as sent}}

with audience `"{HUB_AUDIENCE}"` for every request to the hub, `network` the digest of the \
pinned genesis and `body` the hash of the empty string for a request without a body.  The \
hub refuses a `created` more than {MAX_SKEW} s (configurable `clock_skew`) from its clock \
(401 `{StaleError.slug}`), any other defect with the same 401 `{AuthError.slug}` (unknown, \
suspended or revoked key included), and a `(kid, nonce)` pair seen inside the window with 409 \
`{ReplayError.slug}`.  The nonce is recorded only after the signature verified: durably for \
admin and prekey requests, in the hub process's memory for the message routes (which are \
idempotent: a replayed submission gets the same evidence, a replayed receipt releases nothing \
new).
"""


def _info_description(limits: ApiLimits) -> str:
    return f"""\
The GlobE Link hub: membership applications, quorum-signed membership actions, the \
hash-chained membership log and its signed checkpoints, the directory, members' signed \
prekeys, and store-and-forward delivery of encrypted envelopes (per-recipient mailboxes, \
signed receipts, hub-signed evidence).  The hub stores and sequences; it never decides \
membership nor reads content, and clients verify everything it serves against their pinned \
genesis (PROTOCOL.md §6).

**Signed requests.**  `PUT /v1/prekeys`, the message routes and every `/v1/admin/*` route \
need the `{HEADER}` header (security scheme `GlobeAuth`), checked before any work.  Bodies \
that carry signed objects (applications, actions, prekeys) are the exact canonical JSON bytes \
of a signed-object container (PROTOCOL.md §2, §5.1): signatures cover those bytes, so send \
them unchanged.  An envelope is sent as its exact binary bytes (PROTOCOL.md §7).

**Errors.**  Every refusal is an RFC 9457 problem served as `application/problem+json` with \
`type`, `title`, `status`, `detail` and `instance` (the request path, percent-encoded: a \
URI reference); the type URIs are listed in the `Problem` schema (`x-problem-types`).  Each \
operation lists every status it can answer.  An unknown path is a 404 `{NotFound.slug}` and \
a known path with another method a 405 `method-not-allowed` problem with `Allow` (not \
repeated under each operation).  Every route may answer 429 `{RateLimited.slug}` with \
`Retry-After` and 500 `error` (unexpected failure, nothing applied); routes that touch the \
database may answer 503 `{StorageError.slug}` with `Retry-After`.

**JSON bodies** are read by the protocol's one strict decoder (PROTOCOL.md §2.8, I-JSON \
narrowed): integers are written without fraction or exponent (`2`, never `2.0`, although \
JSON Schema's `integer` cannot tell them apart), keys once, no lone surrogate escapes; \
anything else is a 400 problem.

**Query parameters** are each given at most once; one given twice, or outside its schema, \
is a 400 `{MalformedError.slug}` problem.  Unknown query parameters are ignored.

**Limits** (this hub's configuration).  Request bodies are capped before they are buffered \
(413): `max_body` = {limits.max_body} bytes, envelopes `max_envelope` = \
{limits.max_envelope} bytes, message batches {BATCH_MAX_BODY} bytes (fixed), attachment \
blobs `max_blob` = {limits.max_blob} bytes.  Pages \
hold at most `page_size` = {limits.page_size} items (mailbox pages {limits.mailbox_page}).  \
Mailboxes have quotas (items and bytes waiting per recipient; 507 when over).  `HEAD` is \
accepted on every `GET` route but `GET /v1/blobs/{{blob_id}}`.
"""


def openapi_document(limits: ApiLimits | None = None) -> dict[str, Any]:
    """The OpenAPI document for a hub with ``limits`` (default: the default configuration)."""
    limits = limits or ApiLimits()
    types = problem_types()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "GlobE Link hub API",
            "version": "1",
            "description": _info_description(limits),
        },
        "servers": [{"url": "/", "description": "This hub."}],
        "tags": [
            {"name": "operations", "description": "Health and this document."},
            {"name": "directory", "description": "Genesis, log, checkpoints and search."},
            {"name": "applications", "description": "Applying for membership."},
            {"name": "key-updates", "description": "A member asking for new keys (§6.8)."},
            {"name": "prekeys", "description": "Members' signed prekeys."},
            {
                "name": "messages",
                "description": "Envelopes, mailboxes, receipts and evidence (signed).",
            },
            {"name": "admin", "description": "Admin review and quorum signing (signed)."},
        ],
        "paths": paths(limits),
        "components": {
            "schemas": {**wire_schemas(types, limits), **result_schemas(limits)},
            "responses": _responses(types, limits),
            "securitySchemes": {
                "GlobeAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": HEADER,
                    "description": _SECURITY_DESCRIPTION,
                }
            },
        },
    }

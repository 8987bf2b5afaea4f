"""The schemas of the wire's values, signed containers and request bodies (the problem too)."""

from __future__ import annotations

from typing import Any

from hub.apidoc.build import (
    ApiLimits,
    JsonObject,
    b64,
    closed_object,
    integer,
    not_blank_text,
    schema_ref,
)
from hub.web import (
    ACK_MAX_ITEMS,
    BATCH_MAX_ITEMS,
    POP_ANSWER_BYTES,
    REJECTION_REASON_MAX,
)
from protocol.errors import (
    PROBLEM_BASE,
)
from protocol.ids import ISO_COUNTRIES
from protocol.receipts import MAX_RECEIPT_SIZE
from protocol.signed import MAX_SIGNATURES

__all__ = ["wire_schemas"]


def wire_schemas(types: list[dict[str, Any]], limits: ApiLimits) -> JsonObject:
    """The components that document the wire's values, containers and request bodies."""
    return {
        "Problem": {
            "type": "object",
            "description": (
                "An RFC 9457 problem, served as `application/problem+json` with `status` as "
                "the HTTP status.  `type` is a stable identifier (not a link) "
                f"`{PROBLEM_BASE}<slug>`; slugs and statuses are part of the contract, "
                "`title` and `detail` are for humans.  Clients must tolerate types not "
                "listed here.  The types are (from the error class tree, see "
                "`x-problem-types` for status and title): "
                + ", ".join(t["type"] for t in types)
                + "."
            ),
            "properties": {
                "type": {
                    "type": "string",
                    "format": "uri",
                    "description": "The problem type.",
                    "examples": [t["type"] for t in types[:3]],
                },
                "title": {"type": "string", "description": "Short summary of the type."},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string", "description": "Free text; not part of the contract."},
                "instance": {
                    "type": "string",
                    "format": "uri-reference",
                    "description": "The request path.",
                },
                "evidence": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]+$",
                    "description": (
                        "Only on a final refusal of `POST /v1/messages` whose body is a "
                        "genuine envelope of the authenticated member: base64url of the "
                        "hub-signed `rejected` evidence (PROTOCOL.md §9.2)."
                    ),
                },
            },
            "required": ["type", "title", "status", "detail", "instance"],
            "x-problem-types": types,
        },
        "ApplicationId": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": "An application id: 32 lower-case hex digits (128 random bits).",
        },
        "KeyUpdateId": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": (
                "A key-update id: 32 lower-case hex digits, the first half of the request's "
                "digest (PROTOCOL.md §5.3)."
            ),
        },
        "Country": {
            "type": "string",
            "enum": sorted(ISO_COUNTRIES),
            "description": "An ISO 3166-1 alpha-2 country code (the protocol's list).",
        },
        "AuthorityId": {
            "type": "string",
            "pattern": f"^(?:{'|'.join(sorted(ISO_COUNTRIES))})-[A-Z0-9]{{2,16}}$",
            "maxLength": 19,
            "description": (
                "A member authority: ISO 3166-1 alpha-2 country, `-`, 2-16 of `A-Z0-9` "
                "(PROTOCOL.md §3.1), e.g. `FR-PNF`."
            ),
        },
        "KeyId": {
            "type": "string",
            "pattern": "^(ed25519|mlkem768x25519):[0-9a-f]{32}$",
            "description": "A key id (PROTOCOL.md §3.2): `<alg>:<32 hex>`.",
        },
        "Fingerprint": {
            "type": "string",
            "pattern": "^[0-9]{5}( [0-9]{5}){11}$",
            "description": "Twelve groups of five digits for out-of-band comparison (§3.4).",
        },
        "Timestamp": integer("Unix time in seconds."),
        "Signature": closed_object(
            "One detached Ed25519 signature.",
            {
                "kid": {
                    "type": "string",
                    "maxLength": 64,
                    "description": "Key id of the signer (§3.1).",
                },
                "sig": b64("The 64-byte signature.", size=64),
            },
        ),
        "SignedObject": closed_object(
            "A signed-object container (PROTOCOL.md §5.1): the exact canonical payload "
            "bytes, base64url, and detached signatures over `label || 0x00 || payload`.  "
            "On input the container must itself be canonical JSON (§2: sorted keys, no "
            "whitespace) and `sigs` sorted by `kid`, each key once.",
            {
                "payload": b64(
                    "The payload bytes: a canonical JSON object with `type` and `v`.",
                    max_bytes=3 * (1 << 22) // 4,
                ),
                "sigs": {
                    "type": "array",
                    "items": schema_ref("Signature"),
                    "maxItems": MAX_SIGNATURES,
                },
            },
        ),
        "Proof": closed_object(
            "The answer to the KEM challenge.",
            {
                "answer": b64(
                    f"The {POP_ANSWER_BYTES}-byte secret opened from the challenge.",
                    size=POP_ANSWER_BYTES,
                )
            },
        ),
        "Rejection": closed_object(
            "An admin's rejection of an open application.",
            {
                "reason": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": REJECTION_REASON_MAX,
                    "pattern": not_blank_text(),
                    "description": (
                        "Why (text; newlines and tabs allowed, no other control, bidi or "
                        "zero-width characters; not blank)."
                    ),
                }
            },
        ),
        "MessageId": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": "A message id (PROTOCOL.md §3.1): 32 lower-case hex digits, unique "
            "per sender.",
        },
        "Ack": closed_object(
            "Signed receipts for envelopes received, and cursors of notices read.",
            {
                "receipts": {
                    "type": "array",
                    "items": b64(
                        "The exact bytes of a delivery receipt container (PROTOCOL.md §9) "
                        "signed by the member's identity key.",
                        min_bytes=1,
                        max_bytes=MAX_RECEIPT_SIZE,
                    ),
                    "maxItems": ACK_MAX_ITEMS,
                },
                "notices": {
                    "type": "array",
                    "items": integer("The cursor of a notice to drop."),
                    "maxItems": ACK_MAX_ITEMS,
                },
            },
        ),
        "Batch": closed_object(
            "Envelopes to submit in one request (PROTOCOL.md §10.6), each judged as "
            "`POST /v1/messages` would judge it alone.",
            {
                "envelopes": {
                    "type": "array",
                    "items": b64(
                        "The exact bytes of one envelope (binary, PROTOCOL.md §7).  Its size "
                        "is checked as the single route checks it: an envelope over "
                        "`max_envelope` is refused alone, in the answer.",
                        min_bytes=1,
                    ),
                    "minItems": 1,
                    "maxItems": BATCH_MAX_ITEMS,
                    "description": "In the order the answer's results follow.",
                },
            },
        ),
        "OpenApiDocument": {
            "type": "object",
            "description": "This document.",
            "required": ["openapi", "info", "paths"],
        },
    }

"""The message routes' operations: envelopes, the mailbox, acknowledgements, push and blobs."""

from __future__ import annotations

from globe_io.errors import (
    BlobQuotaExceeded,
    Conflict,
    LengthRequired,
    MailboxFull,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UploadTimeout,
)
from hub.apidoc.build import (
    ApiLimits,
    JsonObject,
    int_param,
    json_content,
    ok_response,
    operation,
    schema_ref,
)
from hub.push import STREAM_PATH
from hub.web import (
    ACK_MAX_BODY,
    ACK_MAX_ITEMS,
    BATCH_MAX_BODY,
    BATCH_MAX_ITEMS,
    CURSOR_MAX,
)
from protocol.envelope import MAX_LIFETIME
from protocol.envelope import MAX_SKEW as ENVELOPE_SKEW
from protocol.errors import (
    BadSignature,
    ConflictError,
    DecodeError,
    ExpiredError,
    InvalidIdentifier,
    MalformedError,
    MemberNotActive,
    NotCertified,
    NotYetValid,
    ReplayError,
    StorageError,
    Truncated,
    UnknownField,
    UnknownMember,
    UnsupportedSuite,
    UnsupportedVersion,
)
from protocol.receipts import MAX_RECEIPT_SIZE
from protocol.requestauth import HEADER

__all__ = ["message_paths", "stream_and_blob_paths"]


def message_paths(auth_401: str, replay_409: str, limits: ApiLimits) -> JsonObject:
    """Store-and-forward: submission, the mailbox and acknowledgements."""
    member_409 = f"{replay_409}  (Per hub process: these routes are idempotent.)"
    too_large = f"`{PayloadTooLarge.slug}`: the body exceeds `max_body` ({limits.max_body} bytes)."
    return {
        "/v1/messages": {
            "post": operation(
                "submitMessage",
                "messages",
                "Submit an envelope",
                "The sender submits an envelope (PROTOCOL.md §7), authenticating the request "
                "with its transport key.  Checked in this order (R9): size cap, strict parse, "
                "sender certified and active, outer signature, every recipient active, "
                "idempotency, every recipient's mailbox quota.  The hub answers only after the "
                "envelope and one mailbox item per recipient are durably committed (R10; "
                "submissions are group-committed), with its signed `accepted` evidence "
                "(PROTOCOL.md §9).  The envelope waits in each recipient's mailbox until that "
                "recipient's signed receipt releases it, or until it expires (the sender then "
                "gets `non-delivery` evidence).",
                {
                    "201": ok_response(
                        "Accepted: the hub's `accepted` evidence container (canonical JSON) "
                        "naming the message id, the envelope hash, the sender and the "
                        "recipients.",
                        schema_ref("SignedObject"),
                    ),
                    "200": ok_response(
                        "These exact bytes were accepted before: the original evidence, "
                        "byte for byte (resubmitting is safe).",
                        schema_ref("SignedObject"),
                    ),
                },
                errors={
                    400: f"`{Truncated.slug}`, `{MalformedError.slug}` (bad magic, trailing "
                    "bytes, made for another network, or not submitted by its sender), "
                    f"`{UnsupportedVersion.slug}`, `{UnsupportedSuite.slug}`, or "
                    f"`{NotYetValid.slug}`: created more than {ENVELOPE_SKEW} s in the "
                    "future.",
                    401: f"{auth_401}  Or `{BadSignature.slug}`: the envelope's signature does "
                    "not verify under the sender's certified identity key.",
                    403: f"`{UnknownMember.slug}` or `{MemberNotActive.slug}`: a recipient is "
                    f"not an active member; `{NotCertified.slug}`: signed with a key that is "
                    "not the sender's certified identity key.",
                    409: f"{member_409}  Or `{ConflictError.slug}`: the sender used this "
                    "message id before for other bytes; both are kept as evidence.",
                    410: f"`{ExpiredError.slug}`: the envelope's expiry has passed (lifetime "
                    f"at most {MAX_LIFETIME // 86400} days).",
                    413: f"`{PayloadTooLarge.slug}`: the body exceeds `max_envelope` "
                    f"({limits.max_envelope} bytes).",
                    503: None,
                    507: f"`{MailboxFull.slug}`: a recipient's mailbox is over its quota; "
                    "nothing was stored for any recipient.",
                },
                body={
                    "required": True,
                    "description": (
                        "The envelope's exact bytes (binary, PROTOCOL.md §7), at most "
                        f"`max_envelope` ({limits.max_envelope}) bytes."
                    ),
                    "content": {
                        "application/octet-stream": {
                            "schema": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            }
                        }
                    },
                },
                signed=True,
            )
        },
        "/v1/messages/batch": {
            "post": operation(
                "submitMessages",
                "messages",
                "Submit several envelopes",
                f"The sender submits 1 to {BATCH_MAX_ITEMS} envelopes in one request "
                "(PROTOCOL.md §10.6), authenticating it with its transport key.  The request "
                "as a whole is read, authenticated and checked for shape first: any defect "
                "refuses it with a problem and submits nothing.  Then each envelope is judged "
                "exactly as `POST /v1/messages` would judge it alone (the same checks in the "
                "same order, the same idempotency, the same durable group commit), "
                "concurrently, so that one commit holds them all.  Each envelope after the "
                "first takes one token of the sender key's rate limit (the request's own "
                "token covers the first); an envelope for which none is left is refused "
                f"alone, with `{RateLimited.slug}` and its `retry_after`.  The answer lists "
                "one result per envelope, in request order: `status` (201 accepted now, 200 "
                "an exact resubmission, else the status `POST /v1/messages` would refuse it "
                "with), `evidence` (the hub's signed `accepted` evidence, the original one "
                "for a resubmission; on a refusal, the hub's signed `rejected` evidence "
                "exactly when the single route's problem would carry it), `type` and "
                "`detail` (the refusal's problem type and detail) and `retry_after` (seconds "
                f"to wait, on a `{RateLimited.slug}` or `{StorageError.slug}` refusal).",
                {
                    "200": ok_response(
                        "Each envelope's outcome, in request order (whether or not any "
                        "was accepted).",
                        schema_ref("Submissions"),
                    ),
                },
                errors={
                    400: f"`{MalformedError.slug}`, `{UnknownField.slug}` or `{DecodeError.slug}` "
                    "family: not a batch (a strictly decoded JSON object whose only field "
                    f"`envelopes` holds 1 to {BATCH_MAX_ITEMS} canonical base64url strings of "
                    "at least one byte each); nothing was submitted.  An envelope itself "
                    "refused is a result in the 200 answer, never a 400.",
                    401: auth_401,
                    409: member_409,
                    413: f"`{PayloadTooLarge.slug}`: the body exceeds {BATCH_MAX_BODY} bytes "
                    "(refused before it is buffered; an envelope over `max_envelope` is "
                    "refused alone, in the 200 answer).",
                    429: f"`{RateLimited.slug}`: the client address's bucket, or the sender "
                    "key's bucket for the request's own token (which covers the first "
                    "envelope), is empty; nothing was submitted.  The other envelopes' tokens "
                    "are taken one by one after that: an envelope without one is refused "
                    "alone, in the 200 answer.",
                },
                body={
                    "required": True,
                    "description": (
                        f"At most {BATCH_MAX_BODY} bytes (see 413).  Each envelope is its "
                        "exact bytes (PROTOCOL.md §7), base64url."
                    ),
                    "content": json_content(schema_ref("Batch")),
                },
                signed=True,
            )
        },
        "/v1/mailbox": {
            "get": operation(
                "pullMailbox",
                "messages",
                "Pull the mailbox",
                "Items waiting for the authenticated member after `after`, oldest first.  "
                "Pulling does not remove anything: envelopes stay until a receipt releases "
                "them (`POST /v1/mailbox/ack`), notices until they are dropped by cursor.",
                {"200": ok_response("A page of items.", schema_ref("MailboxPage"))},
                errors={401: auth_401, 409: member_409, 413: too_large, 400: None, 503: None},
                parameters=[
                    int_param(
                        "after",
                        "Return items with a greater cursor.",
                        default=0,
                        lo=0,
                        hi=CURSOR_MAX,
                    ),
                    int_param(
                        "limit",
                        "Page size (at most the router's `page_size`).",
                        default=limits.mailbox_page,
                        lo=1,
                        hi=limits.mailbox_page,
                    ),
                ],
                signed=True,
            )
        },
        "/v1/mailbox/ack": {
            "post": operation(
                "acknowledgeMailbox",
                "messages",
                "Acknowledge envelopes and notices",
                "Each receipt, signed by the authenticated member's identity key over the "
                "exact bytes of an envelope waiting in its mailbox, releases that envelope: "
                "the hub records the receipt and puts it, with its `delivered` evidence, in "
                "the sender's mailbox.  Any other receipt releases nothing and is listed in "
                "`refused` (e.g. `bad-signature`, `malformed` when presented by another "
                f"member than its signer, `{NotFound.slug}` for no such envelope waiting).  "
                "`notices` drops the member's own receipt and non-delivery notices by cursor; "
                "envelopes are never dropped by cursor.",
                {"200": ok_response("What was released and dropped.", schema_ref("AckResult"))},
                errors={
                    400: f"`{MalformedError.slug}` or `{DecodeError.slug}` family: not an "
                    "acknowledgement (receipts are canonical base64url of 1 to "
                    f"{MAX_RECEIPT_SIZE} bytes, notices cursors, at most {ACK_MAX_ITEMS} each).",
                    401: auth_401,
                    409: member_409,
                    413: f"`{PayloadTooLarge.slug}`: the body exceeds "
                    f"{max(limits.max_body, ACK_MAX_BODY)} bytes (the larger of `max_body` and "
                    "the largest acknowledgement the item limits allow, so that a body within "
                    "them is never refused for its size).",
                    503: None,
                },
                body={
                    "required": True,
                    "description": (
                        f"At most {max(limits.max_body, ACK_MAX_BODY)} bytes (see 413).  A "
                        "node acknowledges a whole mailbox page in one request."
                    ),
                    "content": json_content(schema_ref("Ack")),
                },
                signed=True,
            )
        },
    }


def stream_and_blob_paths(auth_401: str, limits: ApiLimits) -> JsonObject:
    """Push delivery (WebSocket) and attachment blobs."""
    blob_id = {
        "name": "blob_id",
        "in": "path",
        "required": True,
        "description": "32 lower-case hex digits, chosen by the uploader (PROTOCOL.md §8.4.1).",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    }
    octets = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    return {
        STREAM_PATH: {
            "get": operation(
                "stream",
                "messages",
                "Push delivery over a WebSocket",
                "A WebSocket opening handshake (RFC 6455 §4.1: `Upgrade: websocket`, "
                "`Connection: Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`; "
                "connection machinery, not parameters).  The hub sends "
                '`{"type":"challenge","nonce":<b64url 32 bytes>}`; the member answers with one '
                f'message `{{"type":"auth","auth":<{HEADER} value>,"after":<cursor>}}` '
                '(optionally with `"max_items":<2..256>`) whose '
                f"signature covers method `GET`, target `{STREAM_PATH}` and the raw challenge "
                "as the body (audience `hub`, its transport key).  The hub then sends every "
                'mailbox item after the cursor as `{"type":"item","cursor","kind","data"}` '
                '(or, to a member that gave `max_items`, as `{"type":"items","items":[...]}` '
                "frames of at most that many items, in cursor order; PROTOCOL.md §10.5) "
                "and each new one as soon as its commit is done (across hub processes on "
                "PostgreSQL via LISTEN/NOTIFY).  Acknowledgements go to `POST /v1/mailbox/ack`.  "
                'A refusal is sent as `{"type":"error","problem":<RFC 9457>}` and the socket '
                "closes (4401 authentication, 1008 protocol, 1013 slow reader, 4409 replaced).",
                {"101": {"description": "Switching Protocols: the WebSocket is open."}},
                errors={
                    400: f"`{MalformedError.slug}`: not a WebSocket opening handshake (a plain "
                    "HTTP request, or an incomplete handshake); nothing is upgraded.",
                },
            )
        },
        "/v1/blobs/{blob_id}": {
            "put": operation(
                "putBlob",
                "messages",
                "Upload an encrypted attachment",
                "The sender streams an attachment's ciphertext before submitting the "
                "envelope that lists its id.  The body is hashed while it is written to "
                f"disk, and the `{HEADER}` signature is checked against that digest before "
                "the blob is kept.",
                {"201": ok_response("Stored.", schema_ref("BlobStored"))},
                errors={
                    400: f"`{InvalidIdentifier.slug}`: the blob id is not 32 lower-case hex "
                    "digits.",
                    401: auth_401,
                    404: "The id holds a `/` (no such route).",
                    408: f"`{UploadTimeout.slug}`.",
                    409: f"`{Conflict.slug}`: this blob id is already used; or "
                    f"`{ReplayError.slug}`: the request nonce was already used.",
                    411: f"`{LengthRequired.slug}`.",
                    413: f"`{PayloadTooLarge.slug}`: larger than `max_blob` "
                    f"({limits.max_blob} bytes).",
                    503: None,
                    507: f"`{BlobQuotaExceeded.slug}`: the uploader's quota or the hub's disk "
                    "is full.",
                },
                parameters=[blob_id],
                body={
                    # No body is an empty blob: HTTP cannot tell the two apart.
                    "required": False,
                    "description": f"The ciphertext: 0 to {limits.max_blob} bytes, with a "
                    "`Content-Length` (no chunked upload); no body is an empty blob.",
                    "content": octets,
                },
                signed=True,
            ),
            "get": operation(
                "getBlob",
                "messages",
                "Download an encrypted attachment",
                "Only a recipient of an accepted envelope that lists the blob may fetch it; "
                "everyone else gets the same 404.  Streamed from disk.",
                {
                    "200": {
                        "description": "The ciphertext.",
                        "headers": {
                            "Repr-Digest": {
                                "description": "SHA-256 of the ciphertext (RFC 9530).",
                                "required": True,
                                "schema": {
                                    "type": "string",
                                    "pattern": "^sha-256=:[A-Za-z0-9+/]{43}=:$",
                                },
                            }
                        },
                        "content": octets,
                    }
                },
                errors={
                    401: auth_401,
                    404: "No such blob for this member.",
                    409: f"`{ReplayError.slug}`: the request nonce was already used.",
                    413: f"`{PayloadTooLarge.slug}`: the (signed) body exceeds `max_body` "
                    f"({limits.max_body} bytes).",
                    503: None,
                },
                parameters=[blob_id],
                signed=True,
            ),
        },
    }

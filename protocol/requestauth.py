"""Signed HTTP requests, in the style of RFC 9421 (docs/PROTOCOL.md §10).

A member or admin authenticates an HTTP request with its *transport* key
(members) or admin key (admins), never with its identity key (R3).  The
client sends one header::

    Globe-Auth: v1;kid=<key id>;created=<unix seconds>;nonce=<22 b64url>;sig=<86 b64url>

The signature is Ed25519 over ``"globe/v1/request-auth" || 0x00 ||`` the
canonical JSON object ``{"audience", "body", "created", "kid", "method",
"network", "nonce", "target"}`` where ``audience`` names the party the
request is for (``"hub"``, or the receiving member's authority id for direct
peer delivery) so a request made for one server is refused by any other,
``body`` is the base64url SHA-256 of the exact request body, ``method`` is
upper case and ``target`` is the request path with its query string exactly
as sent.  The verifier refuses a ``created``
outside ``now ± max_skew`` and a ``(kid, nonce)`` seen inside the window.

A streamed body (an attachment blob) need not be held in memory: signer and
verifier may pass ``body_digest``, its SHA-256 computed while streaming, instead
of ``body``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from protocol import canonical, crypto, labels
from protocol.errors import AuthError, BadSignature, DecodeError, StaleError, UsageError
from protocol.ids import KeyId
from protocol.keys import SigningKey, VerifyKey

__all__ = [
    "HEADER",
    "HUB_AUDIENCE",
    "MAX_SKEW",
    "RequestAuth",
    "parse_request_auth",
    "sign_request",
    "verify_request",
]

HEADER: Final = "Globe-Auth"
MAX_SKEW: Final = 60
_HEADER_RE: Final = re.compile(
    r"v1;kid=((?:ed25519):[0-9a-f]{32});created=(0|[1-9][0-9]{0,15});"
    r"nonce=([A-Za-z0-9_-]{22});sig=([A-Za-z0-9_-]{86})\Z",
    re.ASCII,
)
_METHOD_RE: Final = re.compile(r"[A-Z]{3,7}\Z", re.ASCII)
_TARGET_RE: Final = re.compile(r"/[\x21-\x7e]{0,4095}\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class RequestAuth:
    """The parsed ``Globe-Auth`` header."""

    key_id: KeyId
    created: int
    nonce: bytes
    signature: bytes


#: The audience of requests to the hub.
HUB_AUDIENCE: Final = "hub"
_AUDIENCE_RE: Final = re.compile(r"hub\Z|[A-Z]{2}-[A-Z0-9]{2,16}\Z", re.ASCII)


def _body_digest(body: bytes, body_digest: bytes | None) -> bytes:
    if body_digest is None:
        return crypto.sha256(body)
    if body or len(body_digest) != crypto.HASH_LEN:
        raise UsageError("pass the body or its 32-byte SHA-256, not both")
    return body_digest


def _base(
    network: bytes, audience: str, method: str, target: str, digest: bytes, *, a: RequestAuth
) -> bytes:
    if (
        not _METHOD_RE.match(method)
        or not _TARGET_RE.match(target)
        or not _AUDIENCE_RE.match(audience)
    ):
        raise AuthError("request authentication failed")
    return canonical.encode(
        {
            "audience": audience,
            "body": canonical.b64e(digest),
            "created": a.created,
            "kid": str(a.key_id),
            "method": method,
            "network": canonical.b64e(network),
            "nonce": canonical.b64e(a.nonce),
            "target": target,
        }
    )


def sign_request(
    *,
    key: SigningKey,
    network: bytes,
    audience: str,
    method: str,
    target: str,
    body: bytes,
    created: int,
    rng: crypto.Rng = crypto.system_rng,
    body_digest: bytes | None = None,
) -> str:
    """The ``Globe-Auth`` header value for this request.

    ``body_digest`` (with ``body=b""``) signs a body by its SHA-256 alone.
    """
    digest = _body_digest(body, body_digest)
    unsigned = RequestAuth(key.key_id, created, rng(16), b"")
    sig = key.sign(
        labels.REQUEST_AUTH, _base(network, audience, method, target, digest, a=unsigned)
    )
    return (
        f"v1;kid={key.key_id};created={created};"
        f"nonce={canonical.b64e(unsigned.nonce)};sig={canonical.b64e(sig)}"
    )


def parse_request_auth(value: str | None) -> RequestAuth:
    """Parse the header strictly; any defect is the same :class:`AuthError`."""
    match = _HEADER_RE.match(value or "")
    if match is None:
        raise AuthError("request authentication failed")
    try:
        nonce = canonical.b64d(match.group(3), what="nonce")
        sig = canonical.b64d(match.group(4), what="sig")
    except DecodeError as exc:
        raise AuthError("request authentication failed") from exc
    return RequestAuth(KeyId.parse(match.group(1)), int(match.group(2)), nonce, sig)


def verify_request(
    auth: RequestAuth,
    *,
    key: VerifyKey,
    network: bytes,
    audience: str,
    method: str,
    target: str,
    body: bytes,
    now: int,
    max_skew: int = MAX_SKEW,
    body_digest: bytes | None = None,
) -> None:
    """Check time window and signature.  The caller checks the nonce (see ``replay``).

    ``body_digest`` (with ``body=b""``) is the SHA-256 of a body that was streamed
    rather than held: the signature is checked against it.
    """
    if abs(now - auth.created) > max_skew:
        raise StaleError("request timestamp outside the accepted window")
    if key.key_id != auth.key_id:
        raise AuthError("request authentication failed")
    digest = _body_digest(body, body_digest)
    try:
        key.verify(
            labels.REQUEST_AUTH,
            _base(network, audience, method, target, digest, a=auth),
            auth.signature,
        )
    except BadSignature as exc:
        raise AuthError("request authentication failed") from exc

"""One error hierarchy for the whole protocol (docs/PROTOCOL.md §11).

Every refusal the protocol can produce is a subclass of :class:`GlobeError`.
Errors are split, as h11 does, into *remote* errors (the peer or the input
misbehaved: :class:`ProtocolError` and its branches) and *local* errors (the
caller misused the API: :class:`UsageError`).  Each class carries a stable
``slug`` (the last path segment of the RFC 9457 problem ``type`` URI) and an
HTTP status hint, so the hub and the node can render any of them as
problem+json without a mapping table of their own.
"""

from __future__ import annotations

from base64 import b64encode
from typing import ClassVar

__all__ = [
    "PROBLEM_BASE",
    "AuthError",
    "BadSignature",
    "ChainBroken",
    "ConflictError",
    "ConsentRequired",
    "CryptoError",
    "DecodeError",
    "DecryptionFailed",
    "DuplicateKey",
    "ExpiredError",
    "ForkDetected",
    "GenesisMismatch",
    "GlobeError",
    "HandlingLowered",
    "InvalidIdentifier",
    "InvalidJson",
    "InvalidKey",
    "InvalidUnicode",
    "ItemAltered",
    "ItemMissing",
    "ItemUnlisted",
    "LogError",
    "LogStale",
    "MalformedError",
    "MemberNotActive",
    "MembershipError",
    "NestingTooDeep",
    "NonCanonical",
    "NonFiniteNumber",
    "NotARecipient",
    "NotCertified",
    "NotYetValid",
    "NumberOutOfRange",
    "ProtocolError",
    "QuorumNotMet",
    "ReflectedMessage",
    "ReplayError",
    "RollbackDetected",
    "SizeLimitExceeded",
    "StaleError",
    "StorageError",
    "TrailingData",
    "TransportError",
    "Truncated",
    "UnknownField",
    "UnknownMember",
    "UnsupportedSuite",
    "UnsupportedVersion",
    "UsageError",
    "WorkflowError",
    "error_class",
]

#: Prefix of every problem ``type`` URI.  The URI is an identifier, not a link.
PROBLEM_BASE = "https://globe-link.invalid/problems/"


#: Every error class that names its own slug, by slug (see :func:`error_class`).
_REGISTRY: dict[str, type[GlobeError]] = {}


class GlobeError(Exception):
    """Root of every error raised by GlobE Link code.

    A subclass that sets its own ``slug`` registers it; a second class with the
    same slug is refused when its module is imported, so a problem ``type``
    always names exactly one class (PROTOCOL.md §11).
    """

    slug: ClassVar[str] = "error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    #: Hub-signed ``rejected`` evidence (§9.2) that goes with a refused envelope, if any.
    evidence: bytes | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "slug" not in cls.__dict__:
            return
        known = _REGISTRY.get(cls.slug)
        same = known is not None and (known.__module__, known.__qualname__) == (
            cls.__module__,
            cls.__qualname__,
        )  # the same class defined again (a module imported twice)
        if known is not None and not same:
            raise TypeError(
                f"problem slug {cls.slug!r} of {cls.__module__}.{cls.__qualname__} is already"
                f" used by {known.__module__}.{known.__qualname__}"
            )
        _REGISTRY[cls.slug] = cls

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title

    @classmethod
    def type_uri(cls) -> str:
        """The stable RFC 9457 problem ``type`` for this error class."""
        return PROBLEM_BASE + cls.slug

    def to_problem(self) -> dict[str, object]:
        """Render as an RFC 9457 problem object (without ``instance``)."""
        out: dict[str, object] = {
            "type": self.type_uri(),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.evidence is not None:
            out["evidence"] = b64encode(self.evidence, b"-_").rstrip(b"=").decode("ascii")
        return out


def error_class(slug: str) -> type[GlobeError] | None:
    """The error class registered for ``slug`` (among the modules imported so far)."""
    return _REGISTRY.get(slug)


_REGISTRY[GlobeError.slug] = GlobeError


class UsageError(GlobeError):
    """Local error: the caller passed arguments the API does not accept.

    Fix the calling code; nothing was sent or stored.
    """

    slug = "usage"
    status = 400
    title = "Invalid argument"


class ProtocolError(GlobeError):
    """Remote error: input from a peer, the hub or a file broke a protocol rule."""

    slug = "protocol"
    status = 400
    title = "Protocol violation"


# --- decoding (docs/PROTOCOL.md §2) -------------------------------------------------


class DecodeError(ProtocolError):
    """The bytes are not a valid encoding of the expected structure."""

    slug = "decode"
    title = "Malformed input"


class SizeLimitExceeded(DecodeError):
    """The input is larger than the cap for its kind; it was not parsed."""

    slug = "size-limit"
    status = 413
    title = "Input too large"


class Truncated(DecodeError):
    """The input ended before the structure was complete."""

    slug = "truncated"
    title = "Truncated input"


class MalformedError(DecodeError):
    """A field has the wrong type, length or value range."""

    slug = "malformed"
    title = "Malformed field"


class UnknownField(DecodeError):
    """An object carries a field this version does not define."""

    slug = "unknown-field"
    title = "Unknown field"


class DuplicateKey(DecodeError):
    """An object names the same key twice."""

    slug = "duplicate-key"
    title = "Duplicate key"


class NonCanonical(DecodeError):
    """The input decodes but is not the one canonical encoding of its value."""

    slug = "non-canonical"
    title = "Non-canonical encoding"


# --- strict JSON of API bodies (docs/PROTOCOL.md §2.8) ---------------------------------


class InvalidJson(DecodeError):
    """The body is not JSON text (syntax, encoding, or an empty or BOM-prefixed body)."""

    slug = "invalid-json"
    title = "Not JSON"


class NonFiniteNumber(DecodeError):
    """The body uses ``NaN``, ``Infinity`` or ``-Infinity``, which JSON does not define."""

    slug = "non-finite-number"
    title = "Non-finite number"


class NumberOutOfRange(DecodeError):
    """A number is not an integer within ±(2^53 - 1) written without fraction or exponent."""

    slug = "number-out-of-range"
    title = "Number outside the accepted range"


class NestingTooDeep(DecodeError):
    """Objects and arrays are nested deeper than the decoder's fixed limit."""

    slug = "nesting-too-deep"
    title = "Nesting too deep"


class TrailingData(DecodeError):
    """Something other than white space follows the JSON value."""

    slug = "trailing-data"
    title = "Trailing data after the JSON value"


class InvalidUnicode(DecodeError):
    """A string holds a lone surrogate (an escape that is no Unicode scalar value)."""

    slug = "invalid-unicode"
    title = "Invalid Unicode in a string"


class InvalidIdentifier(DecodeError):
    """An identifier (authority id, message id, key id) is not well formed."""

    slug = "invalid-identifier"
    title = "Invalid identifier"


class InvalidKey(DecodeError):
    """A public key is malformed, non-canonical or of low order."""

    slug = "invalid-key"
    title = "Invalid public key"


class UnsupportedVersion(ProtocolError):
    """The structure names a protocol version this software does not speak (R8)."""

    slug = "unsupported-version"
    title = "Unsupported protocol version"


class UnsupportedSuite(ProtocolError):
    """The structure names a cipher suite this software does not accept (R8)."""

    slug = "unsupported-suite"
    title = "Unsupported cipher suite"


# --- cryptography -------------------------------------------------------------------


class CryptoError(ProtocolError):
    """A cryptographic check failed."""

    slug = "crypto"
    status = 400
    title = "Cryptographic check failed"


class BadSignature(CryptoError):
    """A signature does not verify over the bytes and context it must cover."""

    slug = "bad-signature"
    status = 401
    title = "Signature verification failed"


class DecryptionFailed(CryptoError):
    """A ciphertext or wrapped key did not open (wrong key, tampered or misbound)."""

    slug = "decryption-failed"
    title = "Decryption failed"


# --- envelopes ----------------------------------------------------------------------


class NotARecipient(ProtocolError):
    """The envelope is not addressed to the party trying to open it."""

    slug = "not-a-recipient"
    status = 403
    title = "Not a recipient"


class ReflectedMessage(ProtocolError):
    """The envelope names its own sender as a recipient, or came back to it."""

    slug = "reflected"
    title = "Message reflected to its sender"


class ExpiredError(ProtocolError):
    """The structure's validity or expiry time has passed."""

    slug = "expired"
    status = 410
    title = "Expired"


class NotYetValid(ProtocolError):
    """The structure's validity has not started (or its clock is in the future)."""

    slug = "not-yet-valid"
    title = "Not yet valid"


class ReplayError(ProtocolError):
    """This exact message (or request nonce) was already seen (R7)."""

    slug = "replay"
    status = 409
    title = "Replay"


class ConflictError(ProtocolError):
    """A message id was seen before with different bytes; both are kept (R7)."""

    slug = "conflict"
    status = 409
    title = "Conflicting message for a seen id"


# --- originator control (§8.5) -------------------------------------------------------


class ConsentRequired(ProtocolError):
    """Restricted material passes to another authority only with its originator's consent."""

    slug = "consent-required"
    status = 403
    title = "Originator consent required"


class HandlingLowered(ProtocolError):
    """A forward may keep or raise the originator's handling code, never lower it."""

    slug = "handling-lowered"
    status = 400
    title = "Handling code lowered"


class WorkflowError(ProtocolError):
    """A status update the request's workflow does not allow (docs/PROTOCOL.md §8.2.1): from
    the wrong party, about a request never exchanged with its sender, or an extension that
    is not later than the request's deadline.  The receiving node refuses it."""

    slug = "workflow"
    status = 409
    title = "Request workflow violation"


# --- membership and the log (R1, R2) ------------------------------------------------


class MembershipError(ProtocolError):
    """A membership rule was broken."""

    slug = "membership"
    status = 403
    title = "Membership check failed"


class UnknownMember(MembershipError):
    """The authority or key is not in the verified directory."""

    slug = "unknown-member"
    title = "Unknown member"


class NotCertified(MembershipError):
    """A key is not the one certified for that authority and purpose."""

    slug = "not-certified"
    title = "Key not certified"


class MemberNotActive(MembershipError):
    """The authority is suspended or revoked."""

    slug = "member-not-active"
    title = "Member not active"


class QuorumNotMet(MembershipError):
    """Fewer than k distinct admin signatures verify."""

    slug = "quorum-not-met"
    title = "Admin quorum not met"


class LogError(MembershipError):
    """The membership log is inconsistent."""

    slug = "log"
    status = 409
    title = "Membership log inconsistent"


class ChainBroken(LogError):
    """An entry's sequence number or previous-hash link is wrong."""

    slug = "chain-broken"
    title = "Membership log chain broken"


class RollbackDetected(LogError):
    """The presented log is shorter than a head this party already trusts."""

    slug = "rollback"
    title = "Membership log rollback"


class ForkDetected(LogError):
    """Two signed heads disagree about the same position of the log."""

    slug = "fork"
    title = "Membership log fork"


# --- evidence bundles (§9.3) ----------------------------------------------------------


class ItemAltered(CryptoError):
    """A bundle item's bytes differ from the digest recorded for them (the manifest's SHA-256,
    the container's CRC-32, or the signed content's digest of an attachment): the bundle was
    altered after it was made.  Ask its exporter for a fresh copy."""

    slug = "item-altered"
    title = "Evidence item altered"


class ItemMissing(DecodeError):
    """An item the bundle must hold is not in it (listed by the manifest, or part of a message
    the bundle carries).  Ask the exporter for the whole bundle."""

    slug = "item-missing"
    title = "Evidence item missing"


class ItemUnlisted(DecodeError):
    """The bundle holds an item its signed manifest does not list: something was added after
    the export."""

    slug = "item-unlisted"
    title = "Unlisted evidence item"


class GenesisMismatch(MembershipError):
    """The bundle's genesis is not the network the verifier pinned: compare the fingerprint
    with the one the network's secretariat publishes."""

    slug = "genesis-mismatch"
    title = "Genesis is not the pinned one"


class LogStale(MembershipError):
    """The bundle's hub checkpoint predates a time at which it must show a signer's
    membership, so a later suspension or revocation could be missing: export again after a
    directory sync."""

    slug = "log-stale"
    status = 409
    title = "Membership log slice too old"


# --- request authentication ----------------------------------------------------------


class AuthError(ProtocolError):
    """A signed HTTP request was refused.  The detail is deliberately uniform."""

    slug = "unauthorized"
    status = 401
    title = "Request authentication failed"


class StaleError(AuthError):
    """The request's timestamp is outside the accepted clock-skew window."""

    slug = "stale-request"
    title = "Request timestamp outside the accepted window"


# --- used by the I/O layers -----------------------------------------------------------


class TransportError(GlobeError):
    """A network operation failed; the operation may be retried."""

    slug = "transport"
    status = 502
    title = "Transport failure"


class StorageError(GlobeError):
    """A storage operation failed; nothing was half-written."""

    slug = "storage"
    status = 503
    title = "Storage failure"

"""Errors of the HTTP APIs (hub, node peer listener, node local API), beside the
protocol's own (``protocol.errors``); every one is rendered as an RFC 9457 problem.

Each class registers its slug with :func:`protocol.errors.error_class`, so a
client turns a problem ``type`` back into the same class wherever it runs.
"""

from __future__ import annotations

from protocol.errors import GlobeError, ProtocolError, StorageError

__all__ = [
    "BlobQuotaExceeded",
    "CommandError",
    "ConfigError",
    "Conflict",
    "KeyNotOpened",
    "LengthRequired",
    "MailboxFull",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RemoteError",
    "StorageError",
    "UploadTimeout",
]


class NotFound(GlobeError):
    """The resource does not exist."""

    slug = "not-found"
    status = 404
    title = "Not found"


class Conflict(ProtocolError):
    """The request conflicts with the current state (e.g. an open application exists)."""

    slug = "state-conflict"
    status = 409
    title = "Conflicts with the current state"


class PayloadTooLarge(ProtocolError):
    """The request body exceeds the cap for this endpoint; it was not read."""

    slug = "payload-too-large"
    status = 413
    title = "Request body too large"


class RateLimited(ProtocolError):
    """Too many requests from this key or address; retry after ``retry_after`` seconds."""

    slug = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class MailboxFull(ProtocolError):
    """The recipient's mailbox is over its quota; retry later (RFC 9457, HTTP 507)."""

    slug = "mailbox-full"
    status = 507
    title = "Recipient mailbox full"


class LengthRequired(ProtocolError):
    """An upload must state its size in ``Content-Length`` (no chunked encoding)."""

    slug = "length-required"
    status = 411
    title = "Content-Length required"


class UploadTimeout(ProtocolError):
    """The body did not arrive in time; nothing was stored."""

    slug = "upload-timeout"
    status = 408
    title = "Request body not received in time"


class BlobQuotaExceeded(ProtocolError):
    """The owner's blob quota (or the hub's disk) has no room for this blob."""

    slug = "blob-quota-exceeded"
    status = 507
    title = "Blob storage quota exceeded"


class ConfigError(GlobeError):
    """A configuration or file is unusable; the message says what to fix."""

    slug = "config"
    status = 500
    title = "Configuration error"


class KeyNotOpened(ConfigError):
    """A sealed key file that the passphrase given does not open: the wrong passphrase, or
    a file altered since it was sealed (the two cannot be told apart, by design)."""


class RemoteError(GlobeError):
    """A server (or a proxy in front of it) refused a request with an unknown problem type."""

    slug = "remote"
    status = 502
    title = "The server refused the request"

    def __init__(self, detail: str, *, http_status: int, type_uri: str | None = None) -> None:
        super().__init__(detail)
        self.http_status = http_status
        self.type_uri_received = type_uri


class CommandError(GlobeError):
    """A command refused to act; the detail says what to do instead."""

    slug = "command"
    status = 400
    title = "Command refused"

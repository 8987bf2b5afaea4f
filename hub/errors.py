"""Errors the hub adds to the protocol's hierarchy (rendered as RFC 9457 problems)."""

from __future__ import annotations

from protocol.errors import GlobeError, ProtocolError, StorageError

__all__ = [
    "ConfigError",
    "Conflict",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "StorageError",
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


class ConfigError(GlobeError):
    """The hub's configuration or files are unusable; the message says what to fix."""

    slug = "config"
    status = 500
    title = "Configuration error"

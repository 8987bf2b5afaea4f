"""Errors the node adds to the protocol's hierarchy (RFC 9457 problems on its APIs)."""

from __future__ import annotations

from globe_io.errors import ConfigError, Conflict, NotFound
from protocol.errors import ConsentRequired, GlobeError

__all__ = [
    "AmbiguousId",
    "ConfigError",
    "Conflict",
    "ConsentRequired",
    "DirectoryStale",
    "Forbidden",
    "NotFound",
    "Unauthenticated",
]


class DirectoryStale(GlobeError):
    """The verified directory is older than the configured limit: sync before sending."""

    slug = "directory-stale"
    status = 503
    title = "Directory too old to send"


class Unauthenticated(GlobeError):
    """The local API needs a valid user token."""

    slug = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(GlobeError):
    """The user's role does not allow this operation."""

    slug = "forbidden"
    status = 403
    title = "Not allowed for this role"


class AmbiguousId(GlobeError):
    """A shortened id matches more than one: give more of its digits (the detail lists
    the candidates)."""

    slug = "ambiguous-id"
    status = 409
    title = "Ambiguous id prefix"

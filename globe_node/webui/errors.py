"""The web UI's own refusals (RFC 9457 slugs like every other error of the project).

Everything else a page can meet is the local API's own refusal (the page called the
API's route), shown with its status and detail.
"""

from __future__ import annotations

from protocol.errors import GlobeError

__all__ = ["CsrfRejected", "MisdirectedHost"]


class CsrfRejected(GlobeError):
    """A state-changing request without this session's form token, or sent by another
    site (its ``Origin`` is not this node's): reload the page and submit it again."""

    slug = "csrf-rejected"
    status = 403
    title = "Request not sent from this node's own page"


class MisdirectedHost(GlobeError):
    """The request's ``Host`` names no address this node's web UI answers to (a DNS
    rebinding attempt, or a proxy that does not pass the node's own host name)."""

    slug = "misdirected-host"
    status = 421
    title = "Host not served here"

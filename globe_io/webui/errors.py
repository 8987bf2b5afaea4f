"""The web UIs' own refusals (RFC 9457 slugs like every other error of the project).

Everything else a page can meet is the refusal of what the page called (the node's
local API, the hub), shown with its status and detail.
"""

from __future__ import annotations

from protocol.errors import GlobeError

__all__ = ["CsrfRejected", "MisdirectedHost"]


class CsrfRejected(GlobeError):
    """A state-changing request without this session's form token, or sent by another
    site (its ``Origin`` is not this page's own): reload the page and submit it again."""

    slug = "csrf-rejected"
    status = 403
    title = "Request not sent from this site's own page"


class MisdirectedHost(GlobeError):
    """The request's ``Host`` names no address this web UI answers to (a DNS rebinding
    attempt, or a proxy that does not pass the listener's own host name)."""

    slug = "misdirected-host"
    status = 421
    title = "Host not served here"

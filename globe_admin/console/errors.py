"""The console's own refusals (beside those of :mod:`globe_io.webui.errors` and the hub's).

A wrong passphrase and an action that changed since its page showed it are refused by
the signing code the command line shares (:mod:`globe_admin.session`).
"""

from __future__ import annotations

from protocol.errors import GlobeError

__all__ = ["NotSignedIn", "SignInRefused"]


class NotSignedIn(GlobeError):
    """No live session: open the sign-in link ``globe-admin ui`` printed (or start it again
    for a new link if that one was used and its session ended)."""

    slug = "not-signed-in"
    status = 401
    title = "Sign in with the console's link"


class SignInRefused(GlobeError):
    """A sign-in link whose secret is not this console's, or was used already: start
    ``globe-admin ui`` again for a new link."""

    slug = "sign-in-refused"
    status = 401
    title = "Sign-in link not valid"

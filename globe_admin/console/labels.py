"""The words the console shows for the hub's and the log's values (application and member
states, membership actions, competences, refusals).

Each is a gettext message marked with :func:`~globe_io.webui.i18n.N_` and translated where
it is shown (``_(labels.ACTIONS[a])`` in a template); the values stay what they are on
the wire.
"""

from __future__ import annotations

from typing import Final

from babel import Locale, UnknownLocaleError

from globe_io.webui.i18n import N_

__all__ = [
    "ACTIONS",
    "APPLICATION_STATES",
    "AUTHORITY_KINDS",
    "MEMBER_STATES",
    "METRICS",
    "PROBLEMS",
    "language_name",
]

APPLICATION_STATES: Final = {
    "awaiting-pop": N_("Awaiting proof of key possession"),
    "pending": N_("Pending approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}
MEMBER_STATES: Final = {
    "active": N_("Active"),
    "suspended": N_("Suspended"),
    "revoked": N_("Revoked"),
}
ACTIONS: Final = {
    "admit": N_("Admission"),
    "update-keys": N_("New certificate (keys or certified entry)"),
    "suspend": N_("Suspension"),
    "reinstate": N_("Reinstatement"),
    "revoke": N_("Revocation"),
    "profile": N_("Profile published by the member"),
}
#: The competences of protocol.membership.AUTHORITY_KINDS.
AUTHORITY_KINDS: Final = {
    "anti-corruption": N_("Anti-corruption law enforcement"),
    "mla-central": N_("MLA central authority"),
    "asset-recovery": N_("Asset-recovery focal point"),
    "fiu": N_("Financial intelligence unit"),
    "prevention": N_("Prevention authority"),
    "extradition": N_("Extradition authority"),
    "civil-administrative": N_("Civil and administrative proceedings"),
}
#: The hub's Prometheus series the network page shows, by name.
METRICS: Final = {
    "globe_hub_log_entries": N_("Entries in the hub's membership log"),
    "globe_hub_messages_accepted_total": N_("Messages accepted"),
    "globe_hub_messages_duplicate_total": N_("Resubmissions answered with the original evidence"),
    "globe_hub_receipts_total": N_("Messages released against a receipt"),
    "globe_hub_expired_total": N_("Messages expired undelivered"),
    "globe_hub_mailbox_items": N_("Messages waiting in mailboxes"),
    "globe_hub_mailbox_bytes": N_("Bytes waiting in mailboxes"),
    "globe_hub_refused_total": N_("Requests refused"),
}
#: The title of a refusal, by its problem slug (others show the error's own title).
PROBLEMS: Final = {
    "csrf-rejected": N_("This form was not sent from this console's own page"),
    "misdirected-host": N_("This address is not served here"),
    "not-signed-in": N_("Sign in with the console's link"),
    "sign-in-refused": N_("This sign-in link is not valid"),
    "wrong-passphrase": N_("The passphrase does not open your admin key"),
    "changed-since-shown": N_("It changed since the page showed it"),
    "command": N_("The console refused to do this"),
    "not-found": N_("Not found"),
    "transport": N_("The hub cannot be reached"),
    "unauthorized": N_("The hub refused the admin key"),
    "stale-request": N_("The hub refused the request's time"),
    "bad-signature": N_("A signature does not verify"),
    "membership": N_("The membership rules refuse this"),
}


def language_name(code: str, language: str) -> str:
    """A working language (ISO 639-1 ``code``) by its name in the page's ``language``
    (CLDR's, through Babel), else the code itself."""
    try:
        name = Locale.parse(code).get_display_name(language)
    except (ValueError, UnknownLocaleError):
        return code
    return name or code

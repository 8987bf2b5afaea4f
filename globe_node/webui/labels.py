"""The words the pages show for the API's values (kinds, states, competences, …).

Each is a gettext message marked with :func:`~globe_node.webui.i18n.N_` and translated
where it is shown (``_(KINDS[k])`` in a template).  The API's values stay what they
are on the wire; only their labels change with the language.  TLP levels are not
translated: TLP 2.0 labels are the same in every language by design.
"""

from __future__ import annotations

from typing import Final

from globe_io.webui.i18n import N_

__all__ = [
    "ALERTS",
    "AUTHORITY_KINDS",
    "DELIVERY",
    "KEY_UPDATE_STATES",
    "KINDS",
    "MEMBERSHIP",
    "OFFENCES",
    "PROBLEMS",
    "REQUEST_STATES",
    "RESTRICTIONS",
    "ROLES",
    "TLP_MEANING",
    "URGENCIES",
]

KINDS: Final = {
    "information": N_("Information"),
    "request": N_("Request"),
    "answer": N_("Answer"),
    "status": N_("Status update"),
    "consent-request": N_("Consent request"),
    "consent-decision": N_("Consent decision"),
    "bulletin": N_("Bulletin"),
}
URGENCIES: Final = {
    "urgent": N_("Urgent"),
    "priority": N_("Priority"),
    "routine": N_("Routine"),
}
REQUEST_STATES: Final = {
    "sent": N_("Sent"),
    "received": N_("Received"),
    "acknowledged": N_("Acknowledged"),
    "in-progress": N_("In progress"),
    "answered": N_("Answered"),
    "declined": N_("Declined"),
    "closed": N_("Closed"),
    "withdrawn": N_("Withdrawn"),
}
DELIVERY: Final = {
    "queued": N_("Queued"),
    "sent": N_("Sent to the hub"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
}
RESTRICTIONS: Final = {
    "intelligence-only": N_("Intelligence only: not evidence without formal MLA"),
    "no-onward-dissemination": N_("No onward dissemination without the originator's consent"),
}
AUTHORITY_KINDS: Final = {
    "anti-corruption": N_("Anti-corruption law enforcement"),
    "mla-central": N_("MLA central authority"),
    "asset-recovery": N_("Asset-recovery focal point"),
    "fiu": N_("Financial intelligence unit"),
    "prevention": N_("Prevention authority"),
    "extradition": N_("Extradition authority"),
    "civil-administrative": N_("Civil and administrative proceedings"),
}
OFFENCES: Final = {
    "bribery": N_("Bribery of national public officials"),
    "foreign-bribery": N_("Bribery of foreign public officials"),
    "embezzlement": N_("Embezzlement by a public official"),
    "trading-in-influence": N_("Trading in influence"),
    "abuse-of-functions": N_("Abuse of functions"),
    "illicit-enrichment": N_("Illicit enrichment"),
    "private-bribery": N_("Bribery in the private sector"),
    "private-embezzlement": N_("Embezzlement in the private sector"),
    "money-laundering": N_("Laundering of proceeds of crime"),
    "concealment": N_("Concealment"),
    "obstruction-of-justice": N_("Obstruction of justice"),
}
#: This node's standing in the directory (``GET /api/status``'s ``membership``).
MEMBERSHIP: Final = {
    "active": N_("Active"),
    "suspended": N_("Suspended: the hub and the other members refuse this node's messages"),
    "revoked": N_("Revoked"),
    "not admitted": N_("Not admitted yet"),
}
#: A user's role (``GET /api/accounts``).
ROLES: Final = {
    "investigator": N_("Investigator"),
    "supervisor": N_("Supervisor"),
    "operator": N_("Operator"),
}
#: Where a key update this node asked for stands (``GET /api/keys``'s ``update.state``).
KEY_UPDATE_STATES: Final = {
    "requested": N_("Asked for: the directory does not certify the new keys yet"),
    "certified": N_("Certified: the node switches to the new keys at its next sync"),
}
#: What each TLP 2.0 level asks of the reader (the handling banner says it).
TLP_MEANING: Final = {
    "CLEAR": N_("Disclosure is not limited."),
    "GREEN": N_("Limited disclosure: within the community, not publicly."),
    "AMBER": N_("Limited disclosure: your organisation and its clients, on a need-to-know basis."),
    "AMBER+STRICT": N_("Limited disclosure: your organisation only, on a need-to-know basis."),
    "RED": N_("For the named recipients only: no further disclosure."),
}
#: The title of a refusal, by its problem slug (others show the API's own title).
PROBLEMS: Final = {
    "usage": N_("The request was not accepted"),
    "not-found": N_("Not found"),
    "forbidden": N_("Not allowed for your role"),
    "unauthenticated": N_("Sign-in required"),
    "csrf-rejected": N_("This form was not sent from this node's own page"),
    "misdirected-host": N_("This address is not served here"),
    "state-conflict": N_("This conflicts with the current state"),
    "directory-stale": N_("The directory is too old to send: sync first"),
    "consent-required": N_("The originator's consent is required"),
    "rate-limited": N_("Too many attempts: wait, then try again"),
}
#: What an alert of ``GET /api/alerts`` is about, by its kind (others show the kind itself).
ALERTS: Final = {
    "directory-fork": N_("Directory fork: a membership log other than this node's was signed"),
    "directory-rollback": N_("Directory rollback: the hub served an older membership log"),
    "directory-invalid": N_("Invalid directory: the hub served a log that does not verify"),
    "directory-behind-peer": N_("Behind a peer: the hub may be hiding membership changes"),
    "conflict": N_("Conflict: a message arrived twice with different contents"),
    "refused": N_("Refused: something received did not verify"),
    "keys-not-certified": N_("This node's keys are no longer the certified ones"),
    "membership-suspended": N_("This node was suspended"),
    "membership-revoked": N_("This node was revoked"),
    "request-due-soon": N_("Reminder: a request is due soon"),
    "request-overdue": N_("Reminder: a request is overdue"),
}

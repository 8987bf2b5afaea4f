"""Roles of a node's users and what each may do: one table, checked in one place.

The roles form a lattice ordered by their permission sets: a role is *at or
below* another when every permission it holds the other holds too.  A
principal may only create users of a role at or below its own, and the roles
that read case material (investigator, supervisor) are never created over the
local API at all: only ``globe-node users add``, run by someone with file
access to the node, creates them (THREAT-MODEL.md, the insider with a token).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

__all__ = [
    "API_CREATABLE",
    "GRANTS",
    "NAME_RE",
    "Permission",
    "Role",
    "at_or_below",
    "may_create",
    "sees_every_case",
]

#: A user or team name: 1-64 of letters, digits and ``. _ @ -``, starting with a letter or
#: digit.
NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")


class Permission(Enum):
    """What a local API route needs."""

    READ = "read"  # case material: messages, attachments, cases, statistics
    SEND = "send"  # send, reply, status updates, forward, consent, uploads
    STATUS = "status"  # the node's health, directory search, ping, sync, alerts
    AUDIT = "audit"  # the node's audit log
    OPERATE = "operate"  # keys, operator users, alert handling
    HOLD = "hold"  # place and release legal holds on cases (globe_node/holds.py)


class Role(Enum):
    """A user's role on one node."""

    INVESTIGATOR = "investigator"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"


#: The permissions of each role.  Operators run the node; they never read case material.
GRANTS: Final[dict[Role, frozenset[Permission]]] = {
    Role.INVESTIGATOR: frozenset({Permission.READ, Permission.SEND, Permission.STATUS}),
    Role.SUPERVISOR: frozenset(
        {Permission.READ, Permission.SEND, Permission.STATUS, Permission.AUDIT, Permission.HOLD}
    ),
    Role.OPERATOR: frozenset({Permission.STATUS, Permission.OPERATE, Permission.AUDIT}),
}

#: Roles that may be created over the local API (by a principal at or above them).
API_CREATABLE: Final = frozenset({Role.OPERATOR})


def at_or_below(role: Role, other: Role) -> bool:
    """Whether ``role`` holds no permission that ``other`` lacks."""
    return GRANTS[role] <= GRANTS[other]


def sees_every_case(role: Role) -> bool:
    """Whether the role reads every case whatever its team (globe_node/compartments.py):
    supervisors do; investigators see their teams' cases."""
    return role is Role.SUPERVISOR


def may_create(creator: Role, role: Role) -> bool:
    """Whether a user of role ``creator`` may create a ``role`` user over the local API."""
    return (
        role in API_CREATABLE
        and Permission.OPERATE in GRANTS[creator]
        and at_or_below(role, creator)
    )

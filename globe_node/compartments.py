"""Compartments: which cases, messages, requests, notes and reminders a user sees.

The rules, in one place (docs/ARCHITECTURE.md §2.2, "Compartments"):

* A user belongs to teams (``globe-node users add --team``).  Every case record has a
  team, or none while it is unassigned; every stored message, request and reminder
  carries the team of what it belongs to (:class:`Placement`), kept in step when a
  case is assigned to another team.
* **Supervisors** see everything.  An **investigator** sees what carries one of its
  teams, and, if it works the intake (a member of the node's ``intake_team``, or a
  user in no team at all), what carries no team: cases opened by an incoming message,
  and messages in no case that answer nothing this node holds.  A node whose users
  have no teams is therefore one open compartment, as before teams existed.
  **Operators** see no case material at all.
* What a user cannot see does not exist for it: every read route answers
  ``not-found`` (404), as for an unknown id, never ``forbidden``, and lists and
  searches leave it out.  The guard of the local API resolves every message id and
  case reference of a path with :func:`require` before a handler runs, and every
  list query filters with :func:`visible`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, false, or_, true
from sqlalchemy.orm import InstrumentedAttribute

from globe_node.errors import NotFound
from globe_node.roles import GRANTS, Permission, Role, sees_every_case
from globe_node.users import Principal
from protocol.errors import UsageError

__all__ = ["WHOLE_NODE", "Placement", "choose_team", "reads", "require", "sees", "visible"]

#: The node itself, for its own work and its tests: it sees every compartment.  The local
#: API never uses it: every route reads as the user who called it.
WHOLE_NODE: Final = Principal("node", Role.SUPERVISOR)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a stored message or request belongs here: the case it is filed under (if any)
    and the team that sees it (``None``: unassigned, the intake team's)."""

    case: str | None
    team: str | None


def reads(who: Principal) -> bool:
    """Whether ``who``'s role reads case material at all."""
    return Permission.READ in GRANTS[who.role]


def sees(who: Principal, team: str | None) -> bool:
    """Whether ``who`` sees material of ``team`` (``None``: unassigned)."""
    if not reads(who):
        return False
    if sees_every_case(who.role):
        return True
    return who.intake if team is None else team in who.teams


def visible(who: Principal, column: InstrumentedAttribute[str | None]) -> ColumnElement[bool]:
    """The SQL condition "``who`` sees this row" on a table's ``team`` column."""
    if not reads(who):
        return false()
    if sees_every_case(who.role):
        return true()
    conditions: list[ColumnElement[bool]] = []
    if who.teams:
        conditions.append(column.in_(sorted(who.teams)))
    if who.intake:
        conditions.append(column.is_(None))
    return or_(*conditions) if conditions else false()


def require(who: Principal, team: str | None, missing: str) -> None:
    """:class:`NotFound` (``missing`` as its detail) unless ``who`` sees ``team``."""
    if not sees(who, team):
        raise NotFound(missing)


def choose_team(who: Principal, team: str | None) -> str | None:
    """The team new material of ``who`` goes to when no case decides it: ``team`` if
    given (one of its own, or any for a supervisor), else its first team, else none."""
    if team is not None:
        if team not in who.teams and not sees_every_case(who.role):
            raise UsageError(f"'team': {team} is not one of your teams")
        return team
    return min(who.teams) if who.teams else None

"""Who a web UI session is, as the local API would see its user now.

A session (:mod:`globe_io.webui.sessions`) is opened by signing in with the user's API
token (:func:`globe_node.users.authenticate`, the local API's own check) or the
password set for the user with ``globe-node users password``.  On every request the
user is read again from the users table by name *and* token hash (:func:`principal`): a
user removed, or whose token was rotated, loses every session at once, and a change of
teams applies from the next page.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from globe_io.webui.sessions import Session
from globe_node import db
from globe_node.roles import Role
from globe_node.users import Principal

__all__ = ["principal"]


async def principal(
    sessions: async_sessionmaker[AsyncSession], session: Session, *, intake: str
) -> Principal | None:
    """The user of ``session`` as the local API would authenticate it now, or ``None``
    when the user is gone, its token was rotated or its role is unknown.

    The principal is built as :func:`globe_node.users.authenticate` builds it: its role,
    its teams, and whether it works the intake (a member of ``intake``, or in no team).
    """
    async with sessions() as s:
        user = (
            await s.execute(
                select(db.User).where(
                    db.User.name == session.user, db.User.token_hash == session.token_hash
                )
            )
        ).scalar_one_or_none()
        if user is None:
            return None
        teams = frozenset(
            (await s.execute(select(db.TeamRow.team).where(db.TeamRow.user == user.name)))
            .scalars()
            .all()
        )
    try:
        role = Role(user.role)
    except ValueError:
        return None
    return Principal(user.name, role, teams, intake in teams or not teams)

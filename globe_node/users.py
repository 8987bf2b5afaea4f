"""Users of a node's local API: bearer tokens stored only as their SHA-256, and roles.

Tokens are 32 random bytes, shown once when a user is made.  The daemon and
``globe-node users add`` both use :func:`add_user`; the daemon authenticates
each request with :func:`authenticate`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from globe_io.errors import Conflict
from globe_node import db
from globe_node.errors import Unauthenticated
from globe_node.roles import Role
from protocol import canonical
from protocol.errors import UsageError

__all__ = ["USER_NAME", "Principal", "add_user", "authenticate", "token_hash"]

#: A user name: 1-64 of letters, digits and ``. _ @ -``, starting with a letter or digit.
USER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
#: Longest ``Authorization`` value looked at (a token is 43 characters).
_MAX_AUTHORIZATION: Final = 200


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user of the local API."""

    name: str
    role: Role


def token_hash(token: str) -> bytes:
    """What the users table stores of a token."""
    return hashlib.sha256(token.encode()).digest()


def check_name(name: str) -> str:
    """``name`` if it is a valid user name, else :class:`UsageError`."""
    if not USER_NAME.match(name):
        raise UsageError(
            "a user name is 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"
        )
    return name


async def add_user(
    sessions: async_sessionmaker[AsyncSession], name: str, role: Role, *, now: int
) -> str:
    """Create a user; return its token (shown once, stored only as a hash)."""
    check_name(name)
    token = canonical.b64e(secrets.token_bytes(32))
    async with sessions.begin() as s:
        if await s.get(db.User, name) is not None:
            raise Conflict(f"user {name} exists")
        s.add(db.User(name=name, role=role.value, token_hash=token_hash(token), created=now))
    return token


async def authenticate(
    sessions: async_sessionmaker[AsyncSession], authorization: str | None
) -> Principal:
    """The user an ``Authorization: Bearer`` value names, else :class:`Unauthenticated`."""
    header = authorization or ""
    if not header.startswith("Bearer ") or len(header) > _MAX_AUTHORIZATION:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    digest = token_hash(header[7:].strip())
    async with sessions() as s:
        user = (
            await s.execute(select(db.User).where(db.User.token_hash == digest))
        ).scalar_one_or_none()
    if user is None:
        raise Unauthenticated("unknown token")
    try:
        role = Role(user.role)
    except ValueError:  # a row edited by hand: no role, no access
        raise Unauthenticated("this token's user has no valid role") from None
    return Principal(user.name, role)

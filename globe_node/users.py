"""Users of a node's local API: bearer tokens stored only as their SHA-256, roles and teams,
and the web UI passwords stored only as their Argon2id hash.

Tokens are 32 random bytes, shown once when a user is made or its token rotated.  The
daemon and ``globe-node users add`` both use :func:`add_user`; ``globe-node users
remove|rotate|teams|password`` use :func:`remove_user`, :func:`rotate_token`,
:func:`set_teams` and :func:`set_password`.  Given an :class:`~globe_node.audit.AuditLog`,
each change writes its audit row in the transaction that makes it, naming who made it (a
user, or ``cli:<OS user>``).

A password is optional and serves the web UI's sign-in only (the local API takes tokens
alone).  It is normalised (Unicode NFKC, so that the same characters typed on another
keyboard or system are the same password), at least :data:`MIN_PASSWORD` characters,
and kept as an Argon2id PHC string (:func:`protocol.crypto.password_hash`, libsodium's
"interactive" costs: a sign-in waits for it).  An :class:`Account`'s
:attr:`~Account.binding` digests both credentials: a web UI session keeps it, so that
a new token or a new (or cleared) password ends every session the user had.

The daemon authenticates each request with :func:`authenticate`, which reads the users
table every time (nothing caches a principal): a token removed or rotated is refused on
the next request, by whatever process changed the table.  A response already streaming
(an attachment or an evidence bundle being downloaded) was authorised when it started
and runs to its end.  :func:`authenticate` also loads the user's teams: what a user may
see of the node's cases follows from them (:mod:`globe_node.compartments`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
import unicodedata
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from globe_io.errors import Conflict, NotFound
from globe_node import db
from globe_node.errors import Unauthenticated
from globe_node.roles import NAME_RE, Role
from globe_node.sql import Sql
from protocol import canonical, crypto, keystore
from protocol.errors import StorageError, UsageError

if TYPE_CHECKING:  # audit -> store -> compartments -> users: only the type is needed here
    from globe_node.audit import AuditLog
    from globe_node.store import Store

__all__ = [
    "LAST_USED_STEP",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "PASSWORD_COST",
    "USER_NAME",
    "Account",
    "LastOperator",
    "Principal",
    "Removed",
    "UserInfo",
    "UserRecord",
    "account",
    "add_user",
    "authenticate",
    "check_team",
    "hash_password",
    "list_users",
    "new_password",
    "note_use",
    "password_bytes",
    "remove_user",
    "rotate_token",
    "set_password",
    "set_teams",
    "token_hash",
    "user_records",
]

log = logging.getLogger("globe.node.users")

#: A user name (and a team name): 1-64 of letters, digits and ``. _ @ -``, starting with a
#: letter or digit.
USER_NAME: Final = NAME_RE
#: Longest ``Authorization`` value looked at (a token is 43 characters).
_MAX_AUTHORIZATION: Final = 200
#: Teams one user may belong to.
MAX_TEAMS: Final = 16
#: ``last_used`` is written again only when it is at least this many seconds old.
LAST_USED_STEP: Final = 60

# Statements of every request, built once.
_USERS: Final = db.Base.metadata.tables[db.User.__tablename__]
_TEAMS: Final = db.Base.metadata.tables[db.TeamRow.__tablename__]
_USER_BY_TOKEN: Final = Sql(select(_USERS).where(_USERS.c.token_hash == bindparam("digest")))
_TEAMS_OF: Final = Sql(select(_TEAMS.c.team).where(_TEAMS.c.user == bindparam("name")))
_NOTE_USE: Final = Sql(
    update(_USERS)
    .where(_USERS.c.name == bindparam("b_name"))
    .where(_USERS.c.token_hash == bindparam("b_digest"))
    .where(or_(_USERS.c.last_used.is_(None), _USERS.c.last_used <= bindparam("b_due")))
    .values(last_used=bindparam("b_when"))
)
#: The shortest password, in characters: what NIST SP 800-63B-4 §3.1.1.2 asks of a
#: password that is the only factor.
MIN_PASSWORD: Final = 15
#: The longest password, in characters (a passphrase fits; the form's size stays bounded).
MAX_PASSWORD: Final = 256
#: Argon2id costs of a new password hash: libsodium's "interactive" (about 0.1 s and
#: 64 MiB), since every password sign-in waits for one.
PASSWORD_COST: Final = keystore.INTERACTIVE


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user of the local API, with the teams whose cases it sees and
    whether it works the node's intake (which sees what is not yet assigned): the
    members of the intake team, and users in no team at all."""

    name: str
    role: Role
    teams: frozenset[str] = frozenset()
    intake: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    """A user as it signs in: who it is to the local API, its credentials (the token's
    SHA-256, the password's PHC string or ``None``) and its last use."""

    who: Principal
    token_hash: bytes
    password_hash: str | None
    last_used: int | None

    @property
    def binding(self) -> bytes:
        """The digest of both credentials that a web UI session keeps: it no longer
        matches once the token is rotated or the password set, changed or cleared."""
        password = (self.password_hash or "").encode()
        return hashlib.sha256(b"globe/v1/webui-session\x00" + self.token_hash + password).digest()


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as listed (never its token)."""

    name: str
    role: str
    teams: tuple[str, ...]
    created: int

    def to_json(self) -> dict[str, object]:
        """The local API's form."""
        return {"name": self.name, "role": self.role, "teams": list(self.teams),
                "created": self.created}  # fmt: skip


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as those who run the node review it (``globe-node users list``, an operator's
    ``GET /api/accounts``): as ``GET /api/users`` lists it, when it last made an
    authenticated request (``None``: never; to :data:`LAST_USED_STEP` seconds), and
    whether it has a web UI password.  Never its token or its password's hash; colleagues
    who assign cases see neither the last use nor the password (docs/OPERATIONS.md §11.5)."""

    user: UserInfo
    last_used: int | None
    password: bool

    def to_json(self) -> dict[str, object]:
        """The form of ``globe-node users list --json`` and of ``GET /api/accounts``."""
        return {**self.user.to_json(), "last_used": self.last_used, "password": self.password}


@dataclass(frozen=True, slots=True)
class Removed:
    """A user removed: its role, and the cases it was the assignee of, now unassigned
    (they stay in their team, seen by its members and the supervisors)."""

    name: str
    role: str
    unassigned: tuple[str, ...]


class LastOperator(Conflict):
    """The user is the node's last operator: add another operator first, so that someone
    can still run the node (keys, alerts, operator users)."""


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


def password_bytes(password: str) -> bytes:
    """What is hashed of ``password``: its NFKC form in UTF-8."""
    return unicodedata.normalize("NFKC", password).encode()


def new_password(password: str) -> bytes:
    """``password`` as :func:`password_bytes` if it may be set, else :class:`UsageError`."""
    normal = password_bytes(password).decode()
    if not MIN_PASSWORD <= len(normal) <= MAX_PASSWORD:
        raise UsageError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if any(unicodedata.category(c) == "Cc" for c in normal):
        raise UsageError("a password holds no control characters (line breaks, tabs)")
    return normal.encode()


def hash_password(password: bytes, *, rng: crypto.Rng = crypto.system_rng) -> str:
    """The PHC string stored for ``password`` (:data:`PASSWORD_COST`)."""
    return crypto.password_hash(
        password, opslimit=PASSWORD_COST.ops, memlimit=PASSWORD_COST.mem, rng=rng
    )


def check_team(team: str) -> str:
    """``team`` if it is a valid team name (the shape of a user name), else UsageError."""
    if not USER_NAME.match(team):
        raise UsageError(
            "a team name is 1-64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"
        )
    return team


def _teams(teams: Iterable[str]) -> list[str]:
    out = sorted({check_team(t) for t in teams})
    if len(out) > MAX_TEAMS:
        raise UsageError(f"a user belongs to at most {MAX_TEAMS} teams")
    return out


async def _hold_write_lock(s: AsyncSession) -> None:
    """Take the database's write lock now, at the start of ``s``'s transaction.

    SQLite (through pysqlite) begins a transaction only at its first write, so reads
    before it would see a state that another process (the daemon, a second ``globe-node
    users`` command) may change before this one writes.  A write that matches no row
    begins it: what the change reads afterwards (is this the last operator?) holds until
    it commits.
    """
    no_row = update(db.User).where(db.User.name == "").values(name=db.User.name)
    await s.execute(no_row.execution_options(synchronize_session=False))


@contextlib.asynccontextmanager
async def _change(
    sessions: async_sessionmaker[AsyncSession], audit: AuditLog | None
) -> AsyncIterator[AsyncSession]:
    """One change of the users: a transaction holding the write lock from its start, and
    the audit log's lock when the change is audited (its row commits with it)."""
    async with contextlib.AsyncExitStack() as stack:
        if audit is not None:
            await stack.enter_async_context(audit.lock)
        s = await stack.enter_async_context(sessions.begin())
        await _hold_write_lock(s)
        yield s


async def _audit(
    audit: AuditLog | None, s: AsyncSession, *, now: int, by: str, action: str, subject: str
) -> None:
    """The change's audit row, in its transaction (nothing when it is not audited)."""
    if audit is not None:
        await audit.add(s, now, by, action, subject)


def _new_token() -> str:
    return canonical.b64e(secrets.token_bytes(32))


async def add_user(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    role: Role,
    *,
    now: int,
    teams: Iterable[str] = (),
    audit: AuditLog | None = None,
    by: str = "",
) -> str:
    """Create a user in ``teams``; return its token (shown once, stored only as a hash).

    With ``audit``, the row ``add-user`` by ``by`` commits with the user."""
    check_name(name)
    members = _teams(teams)
    token = _new_token()
    async with _change(sessions, audit) as s:
        if await s.get(db.User, name) is not None:
            raise Conflict(f"user {name} exists")
        s.add(db.User(name=name, role=role.value, token_hash=token_hash(token), created=now))
        s.add_all(db.TeamRow(user=name, team=t) for t in members)
        subject = f"{name} ({role.value})" + (f" teams {' '.join(members)}" if members else "")
        await _audit(audit, s, now=now, by=by, action="add-user", subject=subject)
    return token


async def rotate_token(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    *,
    now: int,
    audit: AuditLog | None = None,
    by: str = "",
) -> tuple[str, str]:
    """Give user ``name`` a new token; ``(token, role)``.  The old token is refused from
    the next request on (:func:`authenticate` reads the table every time)."""
    token = _new_token()
    async with _change(sessions, audit) as s:
        user = await s.get(db.User, name)
        if user is None:
            raise NotFound(f"no user {name}")
        user.token_hash = token_hash(token)
        await _audit(
            audit, s, now=now, by=by, action="rotate-token", subject=f"{name} ({user.role})"
        )
        return token, user.role


async def set_password(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    password: str | None,
    *,
    now: int,
    audit: AuditLog | None = None,
    by: str = "",
) -> str:
    """Set user ``name``'s web UI password (``None``: clear it); the user's role.

    The password is checked (:func:`new_password`) and hashed before the transaction
    begins, so the write lock is not held for the hash.  The user's web UI sessions end
    at their next request (their :attr:`Account.binding` no longer matches).  With
    ``audit``, the row ``set-password`` or ``clear-password`` by ``by`` commits with it.
    """
    stored = None if password is None else hash_password(new_password(password))
    async with _change(sessions, audit) as s:
        user = await s.get(db.User, name)
        if user is None:
            raise NotFound(f"no user {name}")
        user.password_hash = stored
        action = "clear-password" if stored is None else "set-password"
        await _audit(audit, s, now=now, by=by, action=action, subject=f"{name} ({user.role})")
        return user.role


async def remove_user(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    *,
    now: int,
    audit: AuditLog | None = None,
    by: str = "",
) -> Removed:
    """Remove user ``name``, its teams and its assignments; what was removed.

    The node's last operator is never removed (:class:`LastOperator`).  Cases assigned to
    the user are unassigned rather than refused: the person may be gone, and an operator
    (who cannot read cases) could not reassign them; each is audited (``case-assign``).
    The user's past (audit rows, notes, the requests it sent) keeps its name.
    """
    async with _change(sessions, audit) as s:
        user = await s.get(db.User, name)
        if user is None:
            raise NotFound(f"no user {name}")
        if user.role == Role.OPERATOR.value:
            operators = (
                await s.execute(
                    select(func.count()).select_from(db.User)
                    .where(db.User.role == Role.OPERATOR.value)
                )
            ).scalar_one()  # fmt: skip
            if operators <= 1:
                raise LastOperator(
                    f"user {name} is the node's last operator: add another operator first"
                    " (globe-node users add NAME --role operator)"
                )
        cases = tuple(
            (
                await s.execute(
                    select(db.CaseRow.ref).where(db.CaseRow.assignee == name)
                    .order_by(db.CaseRow.ref)
                )
            ).scalars()
        )  # fmt: skip
        if cases:
            await s.execute(
                update(db.CaseRow).where(db.CaseRow.assignee == name)
                .values(assignee=None, updated=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
        await s.execute(delete(db.TeamRow).where(db.TeamRow.user == name))
        await s.delete(user)
        await _audit(
            audit, s, now=now, by=by, action="remove-user", subject=f"{name} ({user.role})"
        )
        for ref in cases:
            subject = f"{ref} assignee (none): {name} removed"
            await _audit(audit, s, now=now, by=by, action="case-assign", subject=subject)
        return Removed(name, user.role, cases)


async def set_teams(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    teams: Iterable[str],
    *,
    now: int = 0,
    audit: AuditLog | None = None,
    by: str = "",
) -> list[str]:
    """Make ``teams`` exactly the teams of user ``name``; the teams, sorted.

    With ``audit``, the row ``set-teams`` by ``by`` at ``now`` commits with them."""
    members = _teams(teams)
    async with _change(sessions, audit) as s:
        if await s.get(db.User, name) is None:
            raise NotFound(f"no user {name}")
        await s.execute(delete(db.TeamRow).where(db.TeamRow.user == name))
        s.add_all(db.TeamRow(user=name, team=t) for t in members)
        await _audit(
            audit,
            s,
            now=now,
            by=by,
            action="set-teams",
            subject=f"{name}: {' '.join(members) or '(none)'}",
        )
    return members


async def user_records(sessions: async_sessionmaker[AsyncSession]) -> list[UserRecord]:
    """Every user with its teams, last use and whether it has a password, by name."""
    async with sessions() as s:
        users = (await s.execute(select(db.User).order_by(db.User.name))).scalars().all()
        rows = (await s.execute(select(db.TeamRow.user, db.TeamRow.team))).all()
    teams: dict[str, list[str]] = {}
    for user, team in rows:
        teams.setdefault(user, []).append(team)
    return [
        UserRecord(
            UserInfo(u.name, u.role, tuple(sorted(teams.get(u.name, []))), u.created),
            u.last_used,
            u.password_hash is not None,
        )
        for u in users
    ]


async def list_users(sessions: async_sessionmaker[AsyncSession]) -> list[UserInfo]:
    """Every user with its teams, by name (what the local API lists)."""
    return [r.user for r in await user_records(sessions)]


async def _teams_of(s: AsyncSession, name: str) -> frozenset[str]:
    found = await s.execute(select(db.TeamRow.team).where(db.TeamRow.user == name))
    return frozenset(found.scalars().all())


def _account(user: db.User, teams: frozenset[str], intake: str) -> Account | None:
    """``user`` as it signs in, or ``None`` for a row whose role is not a role (edited by
    hand: no role, no access)."""
    try:
        role = Role(user.role)
    except ValueError:
        return None
    # A user in no team works the intake: a node without teams is one open compartment.
    who = Principal(user.name, role, teams, intake in teams or not teams)
    return Account(who, user.token_hash, user.password_hash, user.last_used)


async def account(
    sessions: async_sessionmaker[AsyncSession], name: str, *, intake: str = ""
) -> Account | None:
    """User ``name`` as the local API would authenticate it now, with its credentials;
    ``None`` when there is no such user or its role is not a role.  Read from the users
    table on every call, like :func:`authenticate`."""
    async with sessions() as s:
        user = await s.get(db.User, name)
        if user is None:
            return None
        teams = await _teams_of(s, name)
    return _account(user, teams, intake)


async def authenticate(
    store: Store,
    authorization: str | None,
    *,
    intake: str = "",
    now: int | None = None,
) -> Principal:
    """The user an ``Authorization: Bearer`` value names, else :class:`Unauthenticated`.

    ``intake`` names the node's intake team (``intake_team`` in node.toml).  The users
    table is read on every call, never cached: a removed or rotated token is refused
    from the next request on.  One read on the node's reader thread (this runs with
    every request).  The user's last use is recorded (:func:`note_use`).
    """
    header = authorization or ""
    if not header.startswith("Bearer ") or len(header) > _MAX_AUTHORIZATION:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    digest = token_hash(header[7:].strip())

    def read(c: Connection) -> tuple[db.User, frozenset[str]] | None:
        row = _USER_BY_TOKEN.first(c, {"digest": digest})
        if row is None:
            return None
        teams = frozenset(_TEAMS_OF.scalars(c, {"name": row.name}))
        return db.User(**row._asdict()), teams

    held = await store.query(read)
    if held is None:
        raise Unauthenticated("unknown token")
    found = _account(*held, intake)
    if found is None:
        raise Unauthenticated("this token's user has no valid role")
    await note_use(store, found, int(time.time()) if now is None else now)
    return found.who


async def note_use(store: Store, user: Account, now: int) -> None:
    """Record that ``user`` made a request at ``now`` (an API request, a web UI page).

    ``last_used`` is written only when it is :data:`LAST_USED_STEP` seconds old or more:
    a write on every request would turn each read of the API into a durable write
    (``synchronous=FULL``: an fsync) queued behind the node's one writer, and "last
    used" to the minute is what an operator reviewing tokens needs.  The write is best
    effort: a database that cannot take it does not refuse the request.
    """
    if user.last_used is None or now - user.last_used >= LAST_USED_STEP:
        await _record_use(store, user.who.name, user.token_hash, now)


async def _record_use(store: Store, name: str, digest: bytes, when: int) -> None:
    """Set ``last_used``, unless another request already did (or the token changed)."""
    params = {"b_name": name, "b_digest": digest, "b_when": when, "b_due": when - LAST_USED_STEP}
    try:
        await store.transact(lambda c: _NOTE_USE.run(c, params))
    except StorageError:  # locked or full: the request itself needs no write (logged)
        log.warning("could not record the last use of user %s", name)

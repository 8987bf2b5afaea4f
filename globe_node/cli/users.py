"""Local API users (``globe-node users add|list|remove|rotate|teams|password``) and the node
database they live in, worked on directly (SQLite in WAL mode lets the daemon run
meanwhile: it reads the users table on every request, so a change counts from the
daemon's next request on).

The changes are :mod:`globe_node.users`'s, as the daemon makes them, each written to the
node's audit log in its own transaction by ``cli:<OS user>`` (:func:`cli_actor`).
Who can run these commands can write the node directory: the highest trust on the node,
which is why they reach every role, and why the local API offers none of them but
operators adding operators (docs/OPERATIONS.md §11.5).  SQLAlchemy and Alembic are
imported only when a command needs the database.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import pwd
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from globe_io import cli
from globe_io.errors import CommandError, Conflict, NotFound
from globe_node.cli.common import dir_option, text
from globe_node.config import NodeConfig, load_config
from globe_node.keys import write_private
from globe_node.roles import Role
from globe_node.users import MIN_PASSWORD, USER_NAME, token_hash

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from globe_node.audit import AuditLog

__all__ = [
    "audited",
    "cli_actor",
    "create_database",
    "private_db_files",
    "replace_operator",
    "users",
]

_T = TypeVar("_T")

users = cli.GlobeGroup(
    name="users", short_help="local API users (investigators, supervisors, operators)"
)


def cli_actor() -> str:
    """Who a command's audit rows name: ``cli:`` and the OS user running it (by its real
    uid, not an environment variable)."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (a container)
        name = str(uid)
    return f"cli:{name}"[:64]


def private_db_files(db_path: Path) -> None:
    """Make the database and its WAL files readable by the owner only."""
    for suffix in ("", "-wal", "-shm"):
        path = db_path.with_name(db_path.name + suffix)
        if path.exists():
            os.chmod(path, 0o600)


async def _create(db_path: Path) -> str:
    from globe_node import db  # noqa: PLC0415 - SQLAlchemy and Alembic only where needed
    from globe_node.users import add_user  # noqa: PLC0415

    engine = db.make_engine(db_path)
    try:
        await db.migrate(engine)
        sessions = db.session_factory(engine)
        return await add_user(sessions, "operator", Role.OPERATOR, now=int(time.time()))
    finally:
        await engine.dispose()


def create_database(db_path: Path) -> str:
    """Create and migrate the node database with an ``operator`` user; its API token."""
    from alembic.util.exc import CommandError as AlembicError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    try:
        token = asyncio.run(_create(db_path))
    except (SQLAlchemyError, AlembicError, ImportError) as exc:
        detail = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
        raise CommandError(
            f"cannot create the database {db_path}: {cli.one_line(detail)}"
        ) from None
    private_db_files(db_path)
    return token


async def _add(db_path: Path, name: str, role: Role, *, replace: bool) -> str:
    from globe_node import db  # noqa: PLC0415 - SQLAlchemy only where needed
    from globe_node.users import add_user  # noqa: PLC0415

    engine = db.make_engine(db_path)
    try:
        sessions = db.session_factory(engine)
        if replace:  # a restored node: the operator's old token must stop working
            async with sessions.begin() as s:
                old = await s.get(db.User, name)
                if old is not None:
                    await s.delete(old)
        return await add_user(sessions, name, role, now=int(time.time()))
    finally:
        await engine.dispose()


def _on_database(db_path: Path, work: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run ``work`` on the existing database ``db_path``; its errors as one line."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    if not db_path.is_file():  # the engine would create an empty one
        raise CommandError(f"{db_path} not found: run 'globe-node init' first")
    try:
        return asyncio.run(work())
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
        raise CommandError(f"database {db_path}: {cli.one_line(detail)}") from None


def replace_operator(db_path: Path) -> str:
    """Give the ``operator`` user a fresh token (the old one stops working); the token."""
    return _on_database(db_path, lambda: _add(db_path, "operator", Role.OPERATOR, replace=True))


Audited = Callable[["async_sessionmaker[AsyncSession]", "AuditLog"], Awaitable[_T]]


def audited(db_path: Path, work: Audited[_T]) -> _T:
    """Run ``work(sessions, audit)`` on the existing node database ``db_path`` (its errors
    as one line): the changes it makes write their audit rows by :func:`cli_actor`."""

    async def go() -> _T:
        from globe_node import db  # noqa: PLC0415 - SQLAlchemy only where needed
        from globe_node.audit import AuditLog  # noqa: PLC0415
        from globe_node.store import Store  # noqa: PLC0415

        store = Store(db.make_engine(db_path))
        try:
            return await work(store.sessions, AuditLog(store))
        finally:
            await store.close()

    return _on_database(db_path, go)


def _check_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise CommandError(
            f"user name {name!r}: 1-64 of letters, digits and . _ @ - (starting alphanumeric)"
        )
    return name


async def _token_owner(sessions: async_sessionmaker[AsyncSession], path: Path) -> str | None:
    """The user whose token ``DIR/api.token`` holds, if any."""
    from sqlalchemy import select  # noqa: PLC0415 - SQLAlchemy only where needed

    from globe_node import db  # noqa: PLC0415

    try:
        held = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    async with sessions() as s:
        return (
            await s.execute(select(db.User.name).where(db.User.token_hash == token_hash(held)))
        ).scalar_one_or_none()


def _teams_text(teams: list[str] | tuple[str, ...]) -> str:
    return " ".join(text(t) for t in teams) if teams else "none (works the intake)"


@users.command(
    "add",
    help="Add a user directly in the database (with or without the daemon running); "
    "audited as cli:<OS user>.",
    short_help="add a user and print its token once",
)
@click.argument("name", metavar="NAME")
@click.option("--role", required=True, type=cli.choice_of(Role), help="the user's role")
@click.option(
    "--team", "teams", multiple=True, metavar="TEAM", help="a team of the user, repeatable"
)
@dir_option
def add(*, name: str, role: str, teams: tuple[str, ...], directory: Path) -> cli.Result:
    """Add a local API user and print its token once."""
    from globe_node.users import add_user  # noqa: PLC0415 - SQLAlchemy only where needed

    _check_name(name)
    config = load_config(directory)
    by, now = cli_actor(), int(time.time())
    try:
        token = audited(
            config.db_path,
            lambda sessions, audit: add_user(
                sessions, name, Role(role), now=now, teams=teams, audit=audit, by=by
            ),
        )
    except Conflict:
        raise CommandError(f"user {name!r} already exists") from None
    data = {"name": name, "role": role, "token": token}
    return data, [f"user {name} ({role}) added; token (shown only this once):", token]


@users.command(
    "remove",
    help="Remove a user: its token is refused from the daemon's next request on (a download "
    "already streaming finishes). Cases assigned to it are unassigned (they stay in their "
    "team). The node's last operator is never removed. Audited as cli:<OS user>.",
    short_help="remove a user (its token stops working at once)",
)
@click.argument("name", metavar="NAME")
@dir_option
def remove(*, name: str, directory: Path) -> cli.Result:
    """Remove a local API user."""
    from globe_node.users import Removed, remove_user  # noqa: PLC0415 - SQLAlchemy

    _check_name(name)
    config = load_config(directory)
    by, now = cli_actor(), int(time.time())

    async def work(
        sessions: async_sessionmaker[AsyncSession], audit: AuditLog
    ) -> tuple[Removed, str | None]:
        owner = await _token_owner(sessions, config.token_path)
        return await remove_user(sessions, name, now=now, audit=audit, by=by), owner

    try:
        removed, owner = audited(config.db_path, work)
    except NotFound:
        raise CommandError(f"no user {name!r}") from None
    data = {"name": name, "role": removed.role, "unassigned": list(removed.unassigned)}
    lines = [f"user {name} ({removed.role}) removed; its token is refused from now on"]
    if removed.unassigned:
        cases = ", ".join(text(c) for c in removed.unassigned)
        lines.append(f"no longer assigned to {name} (still in their teams): {cases}")
    if owner == name:
        lines.append(
            f"{config.token_path} holds this user's token, which no longer works: "
            "put another operator's token there"
        )
    return data, lines


@users.command(
    "rotate",
    help="Give a user a new token and print it once: the old one is refused from the "
    "daemon's next request on (a download already streaming finishes). If DIR/api.token "
    "held the old token, it gets the new one. Audited as cli:<OS user>.",
    short_help="replace a user's token and print the new one once",
)
@click.argument("name", metavar="NAME")
@dir_option
def rotate(*, name: str, directory: Path) -> cli.Result:
    """Replace a local API user's token."""
    from globe_node.users import rotate_token  # noqa: PLC0415 - SQLAlchemy only where needed

    _check_name(name)
    config = load_config(directory)
    by, now = cli_actor(), int(time.time())

    async def work(
        sessions: async_sessionmaker[AsyncSession], audit: AuditLog
    ) -> tuple[str, str, str | None]:
        owner = await _token_owner(sessions, config.token_path)
        token, role = await rotate_token(sessions, name, now=now, audit=audit, by=by)
        return token, role, owner

    try:
        token, role, owner = audited(config.db_path, work)
    except NotFound:
        raise CommandError(f"no user {name!r}") from None
    lines = [f"token of user {name} ({role}) replaced; the old one is refused from now on"]
    if owner == name:
        _write_token(config, token)
        lines.append(f"{config.token_path} held the old token: it now holds the new one")
    lines += ["new token (shown only this once):", token]
    return {"name": name, "role": role, "token": token}, lines


def _write_token(config: NodeConfig, token: str) -> None:
    write_private(config.token_path, f"{token}\n".encode())


@users.command(
    "teams",
    help="Make the --team options exactly the user's teams (none: no team, so the user "
    "works the intake). Counts from the daemon's next request. Audited as cli:<OS user>.",
    short_help="set a user's teams",
)
@click.argument("name", metavar="NAME")
@click.option(
    "--team", "teams", multiple=True, metavar="TEAM", help="a team of the user, repeatable"
)
@dir_option
def teams_(*, name: str, teams: tuple[str, ...], directory: Path) -> cli.Result:
    """Set a local API user's teams."""
    from globe_node.users import set_teams  # noqa: PLC0415 - SQLAlchemy only where needed

    _check_name(name)
    config = load_config(directory)
    by, now = cli_actor(), int(time.time())
    try:
        members = audited(
            config.db_path,
            lambda sessions, audit: set_teams(sessions, name, teams, now=now, audit=audit, by=by),
        )
    except NotFound:
        raise CommandError(f"no user {name!r}") from None
    return {"name": name, "teams": members}, [f"user {name}: teams {_teams_text(members)}"]


def _read_password(name: str, password_file: Path | None) -> str:
    """The new password: the first line of ``password_file``, else asked twice on a
    terminal; never from the command line or the environment."""
    if password_file is not None:
        try:
            raw = password_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise CommandError(
                f"cannot read password file {password_file}: {exc.strerror}"
            ) from None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandError(f"password file {password_file} is not UTF-8 text") from None
    if not sys.stdin.isatty():
        raise CommandError(
            "no password: pass --password-file FILE (or run on a terminal to be asked)"
        )
    value = getpass.getpass(f"New web UI password for {name} ({MIN_PASSWORD}+ characters): ")
    if getpass.getpass("Repeat the password: ") != value:
        raise CommandError("the two passwords differ")
    return value


@users.command(
    "password",
    help="Set a user's web UI password (it then signs in with its name and this password, "
    "or with its token as before): from --password-file FILE, else asked twice on a "
    f"terminal, never on the command line; at least {MIN_PASSWORD} characters. --clear "
    "removes it (token sign-in only). Either way the user's open web UI sessions end. "
    "Audited as cli:<OS user>.",
    short_help="set or clear a user's web UI password",
)
@click.argument("name", metavar="NAME")
@click.option(
    "--password-file",
    type=cli.PATH,
    metavar="FILE",
    help="read the password from FILE's first line (default: asked twice on a terminal)",
)
@click.option("--clear", is_flag=True, help="remove the password instead of setting one")
@dir_option
def password(*, name: str, password_file: Path | None, clear: bool, directory: Path) -> cli.Result:
    """Set or clear a local API user's web UI password."""
    from globe_node.users import account, set_password  # noqa: PLC0415 - SQLAlchemy

    _check_name(name)
    if clear and password_file is not None:
        raise click.UsageError("--clear takes no --password-file")
    config = load_config(directory)
    # the user is looked for before the password is asked for, not after it was typed twice
    found = _on_database(
        config.db_path, lambda: _records(config.db_path, lambda s: account(s, name))
    )
    if found is None:
        raise CommandError(f"no user {name!r}")
    secret = None if clear else _read_password(name, password_file)
    by, now = cli_actor(), int(time.time())
    try:
        role = audited(
            config.db_path,
            lambda sessions, audit: set_password(
                sessions, name, secret, now=now, audit=audit, by=by
            ),
        )
    except NotFound:
        raise CommandError(f"no user {name!r}") from None
    done = "cleared" if clear else "set"
    lines = [
        f"web UI password of user {name} ({role}) {done}; its web UI sessions end at their "
        "next page"
    ]
    return {"name": name, "role": role, "password": done}, lines


@users.command("list", short_help="list the users, with their last use and password")
@dir_option
def list_(*, directory: Path) -> cli.Result:
    """List the local API users: role, created, last authenticated request, whether a web UI
    password is set (else: the token only), teams."""
    from globe_node.users import user_records  # noqa: PLC0415 - SQLAlchemy only where needed

    config = load_config(directory)
    found = _on_database(config.db_path, lambda: _records(config.db_path, user_records))
    rows = [r.to_json() for r in found]
    lines = [
        f"{text(r.user.name):<24} {text(r.user.role):<13} {cli.iso(r.user.created)}  "
        f"{'never used' if r.last_used is None else 'used ' + cli.iso(r.last_used):<26}"
        f"{'password' if r.password else 'token only':<12}"
        f"{'teams ' + ' '.join(text(t) for t in r.user.teams) if r.user.teams else ''}".rstrip()
        for r in found
    ]
    return {"users": rows}, lines or ["no users"]


async def _records(
    db_path: Path, read: Callable[[async_sessionmaker[AsyncSession]], Awaitable[_T]]
) -> _T:
    from globe_node import db  # noqa: PLC0415 - SQLAlchemy only where needed

    engine = db.make_engine(db_path)
    try:
        return await read(db.session_factory(engine))
    finally:
        await engine.dispose()

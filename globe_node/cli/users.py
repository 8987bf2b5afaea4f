"""Local API users (``globe-node users add|list``) and the node database they live in,
worked on directly (SQLite in WAL mode lets the daemon run meanwhile).

Users are made by :func:`globe_node.users.add_user`, as the daemon makes them; SQLAlchemy
and Alembic are imported only when a command needs the database.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from globe_io import cli
from globe_io.errors import CommandError, Conflict
from globe_node.cli.common import dir_option, text
from globe_node.config import load_config
from globe_node.roles import Role
from globe_node.users import USER_NAME

__all__ = ["create_database", "private_db_files", "replace_operator", "users"]

_T = TypeVar("_T")

users = cli.GlobeGroup(
    name="users", short_help="local API users (investigators, supervisors, operators)"
)


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


async def _list(db_path: Path) -> list[dict[str, Any]]:
    from sqlalchemy import select  # noqa: PLC0415 - SQLAlchemy only where needed

    from globe_node import db  # noqa: PLC0415

    engine = db.make_engine(db_path)
    try:
        async with db.session_factory(engine)() as s:
            rows = (await s.execute(select(db.User).order_by(db.User.name))).scalars()
            return [{"name": u.name, "role": u.role, "created": u.created} for u in rows]
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


@users.command(
    "add",
    help="Add a user directly in the database (with or without the daemon running).",
    short_help="add a user and print its token once",
)
@click.argument("name", metavar="NAME")
@click.option("--role", required=True, type=cli.choice_of(Role), help="the user's role")
@dir_option
def add(*, name: str, role: str, directory: Path) -> cli.Result:
    """Add a local API user and print its token once."""
    if not USER_NAME.match(name):
        raise CommandError(
            f"user name {name!r}: 1-64 of letters, digits and . _ @ - (starting alphanumeric)"
        )
    config = load_config(directory)
    try:
        token = _on_database(
            config.db_path, lambda: _add(config.db_path, name, Role(role), replace=False)
        )
    except Conflict:
        raise CommandError(f"user {name!r} already exists") from None
    data = {"name": name, "role": role, "token": token}
    return data, [f"user {name} ({role}) added; token (shown only this once):", token]


@users.command("list", short_help="list the users")
@dir_option
def list_(*, directory: Path) -> cli.Result:
    """List the local API users."""
    config = load_config(directory)
    found = _on_database(config.db_path, lambda: _list(config.db_path))
    lines = [f"{text(u['name']):<24} {text(u['role']):<13} {cli.iso(u['created'])}" for u in found]
    return {"users": found}, lines or ["no users"]

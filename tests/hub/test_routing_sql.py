"""The SQLite writer's plain statements name the tables and columns of hub.db."""

from __future__ import annotations

import re

from hub import db, routing_sql


def columns(sql: str) -> tuple[str, list[str]]:
    match = re.match(r"INSERT INTO (\w+) \(([^)]*)\)", sql)
    assert match is not None, sql
    return match.group(1), [c.strip() for c in match.group(2).split(",")]


def test_statements_match_the_schema() -> None:
    for sql, model in (
        (routing_sql.SQLITE_MESSAGES_HEAD, db.Message),
        (routing_sql.SQLITE_MAILBOX, db.MailboxItem),
        (routing_sql.SQLITE_LINKS, db.MessageBlob),
    ):
        table, names = columns(sql)
        assert table == model.__tablename__
        known = {c.name for c in model.__table__.columns}
        assert set(names) <= known
        # every column without a default or autoincrement is given
        required = {
            c.name for c in model.__table__.columns
            if (not c.nullable and not c.primary_key) or (c.primary_key and model is db.MessageBlob)
        }  # fmt: skip
        assert required <= set(names), (table, required - set(names))
    assert list(routing_sql.MESSAGE_COLUMNS) == columns(routing_sql.SQLITE_MESSAGES_HEAD)[1]
    assert list(routing_sql.MAILBOX_COLUMNS) == columns(routing_sql.SQLITE_MAILBOX)[1]
    assert routing_sql.ROW8.count("?") == len(routing_sql.MESSAGE_COLUMNS)

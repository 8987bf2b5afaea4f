"""Cases as records of their own, teams (compartments), request handling codes, the
request's own deadline and end, and reminders kept with the alerts.

Every case reference already stored gets a case record (open, unassigned: visible to
the intake team and supervisors until someone assigns it, docs/OPERATIONS.md §11.5).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TEAM = sa.String(length=64)


def upgrade() -> None:
    """Add the tables and columns, and a record for every case already referenced."""
    op.create_table(
        "cases",
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("title", sa.LargeBinary(), nullable=True),
        sa.Column("team", _TEAM, nullable=True),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ref"),
    )
    op.create_index(op.f("ix_cases_team"), "cases", ["team"], unique=False)
    op.create_table(
        "case_notes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_case_notes_case"), "case_notes", ["case"], unique=False)
    op.create_table(
        "user_teams",
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("team", _TEAM, nullable=False),
        sa.PrimaryKeyConstraint("user", "team"),
    )
    for table in ("inbox", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("team", _TEAM, nullable=True))
            batch.create_index(op.f(f"ix_{table}_team"), ["team"], unique=False)
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("team", _TEAM, nullable=True))
        batch.add_column(sa.Column("tlp", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("restrictions", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("asked", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("declined", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("ended", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("user", sa.String(length=64), nullable=True))
        batch.create_index(op.f("ix_requests_team"), ["team"], unique=False)
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("material", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("team", _TEAM, nullable=True))
        batch.add_column(sa.Column("user", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(length=32), nullable=True))
    op.execute("UPDATE requests SET asked = deadline")
    op.execute("UPDATE requests SET declined = first_response WHERE state = 'declined'")
    op.execute(
        """
        INSERT INTO cases (ref, title, team, assignee, state, created, created_by, updated)
        SELECT "case", NULL, NULL, NULL, 'open', MIN(time), 'migration', MAX(time) FROM (
            SELECT "case", received AS time FROM inbox WHERE "case" IS NOT NULL
            UNION ALL
            SELECT "case", created AS time FROM outbox WHERE "case" IS NOT NULL
        ) GROUP BY "case"
        """
    )


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("alerts") as batch:
        for column in ("message_id", "user", "team", "material"):
            batch.drop_column(column)
    with op.batch_alter_table("requests") as batch:
        batch.drop_index(op.f("ix_requests_team"))
        for column in ("user", "ended", "declined", "asked", "restrictions", "tlp", "team"):
            batch.drop_column(column)
    for table in ("outbox", "inbox"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(op.f(f"ix_{table}_team"))
            batch.drop_column("team")
    op.drop_table("user_teams")
    op.drop_index(op.f("ix_case_notes_case"), table_name="case_notes")
    op.drop_table("case_notes")
    op.drop_index(op.f("ix_cases_team"), table_name="cases")
    op.drop_table("cases")

"""Retention and legal holds: what a purge left of a message, when a case was closed, and
the holds on cases.

A message a retention rule purged keeps its row (ids, times, counterparts, hashes,
receipts, evidence) and says when, under which rule and what went (``purged``,
``purge_rule``, ``purged_what``; NULL: nothing).  A case's ``closed`` is the time it
was closed, NULL while open: a case already closed gets its last change as the best
time known.  ``legal_holds`` keeps every hold, the released ones too (docs/OPERATIONS.md
§11.11).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PURGE = ("purged", "purge_rule", "purged_what")


def upgrade() -> None:
    """Add the columns and the table; date the cases already closed."""
    for table in ("inbox", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("purged", sa.BigInteger(), nullable=True))
            batch.add_column(sa.Column("purge_rule", sa.String(length=64), nullable=True))
            batch.add_column(sa.Column("purged_what", sa.String(length=16), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("closed", sa.BigInteger(), nullable=True))
    op.execute("UPDATE cases SET closed = updated WHERE state = 'closed'")
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.LargeBinary(), nullable=False),
        sa.Column("placed", sa.BigInteger(), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("released", sa.BigInteger(), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_legal_holds_case"), "legal_holds", ["case"], unique=False)


def downgrade() -> None:
    """Drop them again (holds and purge marks are lost; purged content stays purged)."""
    op.drop_index(op.f("ix_legal_holds_case"), table_name="legal_holds")
    op.drop_table("legal_holds")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("closed")
    for table in ("inbox", "outbox"):
        with op.batch_alter_table(table) as batch:
            for column in reversed(_PURGE):
                batch.drop_column(column)

"""Store-and-forward routing: messages, conflicts, mailboxes, deliveries.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the routing tables."""
    op.create_table(
        "messages",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(19), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False, index=True),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("evidence", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("sender", "message_id"),
    )
    op.create_table(
        "conflicts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(19), nullable=False, index=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "mailbox",
        sa.Column("seq", _ID, primary_key=True, autoincrement=True),
        sa.Column("recipient", sa.String(19), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message", sa.BigInteger(), nullable=True, index=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        # A cursor names one item forever: SQLite must never reuse the seq of a
        # deleted item (PostgreSQL sequences never do).
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mailbox_recipient_seq", "mailbox", ["recipient", "seq"])
    op.create_table(
        "deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("message", sa.BigInteger(), nullable=False, index=True),
        sa.Column("recipient", sa.String(19), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=True),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("message", "recipient"),
    )


def downgrade() -> None:
    """Drop the routing tables."""
    for table in ("deliveries", "mailbox", "conflicts", "messages"):
        op.drop_table(table)

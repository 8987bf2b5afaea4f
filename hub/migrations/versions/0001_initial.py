"""Initial hub schema: applications, proposals, log entries, prekeys, nonces, audit.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the first tables."""
    op.create_table(
        "applications",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("authority", sa.String(19), nullable=False, index=True),
        sa.Column("digest", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("pop_challenge", sa.LargeBinary(), nullable=False),
        sa.Column("pop_digest", sa.LargeBinary(32), nullable=False),
        sa.Column("draft", sa.LargeBinary(), nullable=True),
        sa.Column("identity_key", sa.LargeBinary(32), nullable=False),
        sa.Column("transport_key", sa.LargeBinary(32), nullable=False),
        sa.Column("ka_key", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "proposals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("authority", sa.String(19), nullable=False, index=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("signatures", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("application_id", sa.String(32), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "prekeys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("authority", sa.String(19), nullable=False, index=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("not_after", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("authority", "key_id"),
    )
    op.create_table(
        "nonces",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.LargeBinary(16), primary_key=True),
        sa.Column("expires", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_nonces_expires", "nonces", ["expires"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("time", sa.BigInteger(), nullable=False, index=True),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop everything."""
    for table in ("audit", "nonces", "prekeys", "log_entries", "proposals", "applications"):
        op.drop_table(table)

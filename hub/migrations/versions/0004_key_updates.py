"""Key-update requests: a member's new keys awaiting the admins (PROTOCOL.md §6.8).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the key-update table."""
    op.create_table(
        "key_updates",
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
        sa.Column("replaced", sa.String(48), nullable=False),
        sa.Column("fingerprint", sa.String(71), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    """Drop the key-update table."""
    op.drop_table("key_updates")

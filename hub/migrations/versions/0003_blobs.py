"""Attachment blobs: stored blobs and the messages that reference them.

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


def upgrade() -> None:
    """Create the blob tables."""
    op.create_table(
        "blobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(19), nullable=False, index=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_table(
        "message_blobs",
        sa.Column("message", sa.BigInteger(), primary_key=True),
        sa.Column("blob", sa.String(32), sa.ForeignKey("blobs.id"), primary_key=True, index=True),
    )


def downgrade() -> None:
    """Drop the blob tables."""
    for table in ("message_blobs", "blobs"):
        op.drop_table(table)

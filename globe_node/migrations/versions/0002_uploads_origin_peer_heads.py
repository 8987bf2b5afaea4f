"""Staged uploads, inner signatures (proof of origin for forwards), suspect messages and
peers' heads ahead of this node's log.

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


def upgrade() -> None:
    """Add the tables and columns."""
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("blob", sa.String(length=32), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=129), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("blob"),
    )
    op.create_index(op.f("ix_uploads_user"), "uploads", ["user"], unique=False)
    op.create_index(op.f("ix_uploads_created"), "uploads", ["created"], unique=False)
    op.create_table(
        "peer_heads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=19), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.LargeBinary(length=32), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("alerted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_peer_heads_seq"), "peer_heads", ["seq"], unique=False)
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("inner_signature", sa.LargeBinary(length=64), nullable=True))
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("inner_signature", sa.LargeBinary(length=64), nullable=True))
        batch.add_column(sa.Column("suspect", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("suspect")
        batch.drop_column("inner_signature")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("inner_signature")
    op.drop_index(op.f("ix_peer_heads_seq"), table_name="peer_heads")
    op.drop_table("peer_heads")
    op.drop_index(op.f("ix_uploads_created"), table_name="uploads")
    op.drop_index(op.f("ix_uploads_user"), table_name="uploads")
    op.drop_table("uploads")

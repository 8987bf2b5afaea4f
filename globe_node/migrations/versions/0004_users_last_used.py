"""When each local API user last made an authenticated request (``users list``).

Null until the user's first request after this revision; the daemon records it at most
once a minute per user (globe_node/users.py).

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
    """Add the column."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_used", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_used")

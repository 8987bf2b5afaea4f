"""A web UI password for each local API user (``globe-node users password``).

Null: the user signs in to the web UI with its API token only.  The column holds an
Argon2id hash as a PHC string (globe_node/users.py), never the password.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(length=160), nullable=True))


def downgrade() -> None:
    """Drop it again (every password is lost; the tokens still sign in)."""
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")

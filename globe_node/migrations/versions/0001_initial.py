"""Initial node schema: log, prekeys, pairs, outbox, inbox, conflicts, attachments,
requests, alerts, users and the audit chain.

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
    """Create the tables."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evidence", sa.LargeBinary(), nullable=True),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_alerts_kind"), "alerts", ["kind"], unique=False)
    op.create_table(
        "attachments",
        sa.Column("sender", sa.String(length=19), nullable=False),
        sa.Column("blob", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("sender", "blob"),
    )
    op.create_index(op.f("ix_attachments_message_id"), "attachments", ["message_id"], unique=False)
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=19), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=19), nullable=False),
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("case", sa.String(length=64), nullable=True),
        sa.Column("in_reply_to", sa.String(length=32), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("order", sa.String(length=16), nullable=False),
        sa.Column("head_relation", sa.String(length=16), nullable=False),
        sa.Column("receipt", sa.LargeBinary(), nullable=False),
        sa.Column("receipt_acked", sa.Boolean(), nullable=False),
        sa.Column("read_at", sa.BigInteger(), nullable=True),
        sa.Column("read_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sender", "message_id"),
    )
    op.create_index(op.f("ix_inbox_case"), "inbox", ["case"], unique=False)
    op.create_index(op.f("ix_inbox_in_reply_to"), "inbox", ["in_reply_to"], unique=False)
    op.create_index(op.f("ix_inbox_message_id"), "inbox", ["message_id"], unique=False)
    op.create_index(op.f("ix_inbox_received"), "inbox", ["received"], unique=False)
    op.create_index(op.f("ix_inbox_sender"), "inbox", ["sender"], unique=False)
    op.create_table(
        "log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("head", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "outbox",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("case", sa.String(length=64), nullable=True),
        sa.Column("in_reply_to", sa.String(length=32), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.BigInteger(), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("pending_blobs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index(op.f("ix_outbox_case"), "outbox", ["case"], unique=False)
    op.create_index(op.f("ix_outbox_created"), "outbox", ["created"], unique=False)
    op.create_table(
        "pairs",
        sa.Column("peer", sa.String(length=19), nullable=False),
        sa.Column("next_out", sa.BigInteger(), nullable=False),
        sa.Column("last_in", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("peer"),
    )
    op.create_table(
        "prekeys",
        sa.Column("key_id", sa.String(length=80), nullable=False),
        sa.Column("signed", sa.LargeBinary(), nullable=False),
        sa.Column("private", sa.LargeBinary(), nullable=True),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("not_after", sa.BigInteger(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("erased", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "requests",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("counterpart", sa.String(length=19), nullable=False),
        sa.Column("case", sa.String(length=64), nullable=True),
        sa.Column("urgency", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("expected", sa.BigInteger(), nullable=True),
        sa.Column("first_response", sa.BigInteger(), nullable=True),
        sa.Column("answered", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", "direction", "counterpart"),
    )
    op.create_index(op.f("ix_requests_case"), "requests", ["case"], unique=False)
    op.create_index(op.f("ix_requests_deadline"), "requests", ["deadline"], unique=False)
    op.create_table(
        "users",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "outbox_recipients",
        sa.Column("message_id", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=19), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("evidence", sa.LargeBinary(), nullable=True),
        sa.Column("receipt", sa.LargeBinary(), nullable=True),
        sa.Column("delivered", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox.message_id"],
        ),
        sa.PrimaryKeyConstraint("message_id", "recipient"),
    )
    op.create_index(
        op.f("ix_outbox_recipients_next_attempt"),
        "outbox_recipients",
        ["next_attempt"],
        unique=False,
    )
    op.create_index(
        op.f("ix_outbox_recipients_state"), "outbox_recipients", ["state"], unique=False
    )


def downgrade() -> None:
    """Drop every table."""
    for table in (
        "users", "requests", "prekeys", "pairs", "outbox_recipients", "outbox", "meta", "log",
        "inbox", "conflicts", "audit", "attachments", "alerts",
    ):  # fmt: skip
        op.drop_table(table)

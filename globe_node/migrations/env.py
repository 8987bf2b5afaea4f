"""Alembic environment: runs on the connection :func:`globe_node.db.migrate` passes in."""

from __future__ import annotations

from alembic import context

from globe_node.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only globe_node.db.migrate drives migrations
    raise RuntimeError("run migrations through globe_node.db.migrate (globe-node init / run)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

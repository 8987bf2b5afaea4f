"""Alembic environment: runs on the connection :func:`hub.db.migrate` passes in."""

from __future__ import annotations

from alembic import context

from hub.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only hub.db.migrate drives migrations
    raise RuntimeError("run migrations through hub.db.migrate (globe-hub init / serve)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

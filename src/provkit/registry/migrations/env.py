"""Alembic environment: runs on the connection the registry passes in (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from provkit.registry.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("provkit registry migrations run through provkit.registry.engine.upgrade_schema")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

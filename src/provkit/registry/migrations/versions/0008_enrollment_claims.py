"""First-to-claim enrollments find their device's connection by certificate fingerprint.

Revision ID: dm_api_0002
Revises: 0007_attempt_counts
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "dm_api_0002"
down_revision = "0007_attempt_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_connections_fingerprint", "connections", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_connections_fingerprint", "connections")

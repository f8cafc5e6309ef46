"""The FCU session id of a by_device attempt, recorded when its first message is prepared.

Revision ID: 0009_session_id
Revises: dm_api_0002
Create Date: 2026-12-03

A ``by_device`` attempt's first message (the CSR request) carries a session id the device
echoes, and the certificate message must carry it too. Recording it with the prepared
bundle lets ``batch inject`` build that second message in another process than ``batch
prepare`` without reading the bundle back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_session_id"
down_revision = "dm_api_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("session_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("session_id")

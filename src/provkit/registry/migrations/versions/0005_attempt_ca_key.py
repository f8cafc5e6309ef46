"""Record which CA key signed each device certificate (a token key's URI or a key file's fingerprint).

Revision ID: 0005_ca_key
Revises: dm_api_0001
Create Date: 2026-12-03

Attempts recorded before this revision keep NULL: which key signed them is not known.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_ca_key"
down_revision = "dm_api_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("ca_key", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("ca_key")

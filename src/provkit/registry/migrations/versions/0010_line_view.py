"""What the line view reads: recent activity by time, and device certificates.

Revision ID: 0010_line_view
Revises: 0009_session_id
Create Date: 2026-12-03

The line view's overview reads the last hours of a registry of millions: attempts by
``provisioned_at`` (the chart; with ``station_id``, the index covers it) and
``updated_at`` (yield, failures), and each station's latest activity
(``station_id, updated_at``: one index probe per station).
``device_cert`` keeps the device certificate itself (DER, public), so a device's page
shows its subject, issuer and validity. (An enrollment id is found by the certificate
fingerprint it is made of, whose index exists.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_line_view"
down_revision = "0009_session_id"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_attempts_provisioned_at", ["provisioned_at", "station_id"]),
    ("ix_attempts_updated_at", ["updated_at"]),
    ("ix_attempts_station_updated", ["station_id", "updated_at"]),
)


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("device_cert", sa.LargeBinary, nullable=True))
    for name, columns in _INDEXES:
        op.create_index(name, "attempts", columns)


def downgrade() -> None:
    for name, _columns in reversed(_INDEXES):
        op.drop_index(name, "attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("device_cert")

"""Identity reservations: who may send a bundle for an endpoint name / serial number.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

The provisioned identities are reserved by their attempts, so a registry upgraded in
the middle of the line refuses to send an identity that is provisioned already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    reservations = op.create_table(
        "reservations",
        sa.Column("endpoint_name", sa.String(256), primary_key=True),
        sa.Column("serial_number", sa.String(256), nullable=False),
        sa.Column("attempt_id", sa.Integer, sa.ForeignKey("attempts.id"), nullable=False),
        sa.Column("inherited", sa.Boolean, nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("serial_number", name="uq_reservations_serial"),
        sa.UniqueConstraint("attempt_id", name="uq_reservations_attempt"),
    )
    assert reservations is not None
    provisioned = sa.table(
        "provisioned",
        sa.column("endpoint_name"),
        sa.column("serial_number"),
        sa.column("attempt_id"),
        sa.column("provisioned_at"),
    )
    held = sa.select(
        provisioned.c.endpoint_name,
        provisioned.c.serial_number,
        provisioned.c.attempt_id,
        sa.true(),
        provisioned.c.provisioned_at,
    )
    op.execute(
        reservations.insert().from_select(
            ["endpoint_name", "serial_number", "attempt_id", "inherited", "reserved_at"], held
        )
    )


def downgrade() -> None:
    op.drop_table("reservations")

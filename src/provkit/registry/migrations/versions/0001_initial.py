"""Initial registry schema: batches, attempts, provisioned identities, allocation.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), nullable=True),
        sa.Column("slot", sa.String(256), nullable=True),
        sa.Column("address", sa.String(256), nullable=True),
        sa.Column("endpoint_name", sa.String(256), nullable=False),
        sa.Column("serial_number", sa.String(256), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("key_mode", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("bundle_sha256", sa.String(64)),
        sa.Column("device_cert_sha256", sa.String(64)),
        sa.Column("device_cert_serial", sa.String(64)),
        sa.Column("ca_sha256", sa.String(64)),
        sa.Column("response", sa.LargeBinary),
        sa.Column("return_status", sa.Integer),
        sa.Column("info_message", sa.Text),
        sa.Column("warnings", sa.Text),
        sa.Column("enrollment_id", sa.String(256)),
        sa.Column("error_code", sa.Integer),
        sa.Column("error_message", sa.Text),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("supersedes_id", sa.Integer),
        sa.Column("superseded_by_id", sa.Integer),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("provisioned_at", _TS),
    )
    op.create_index("ix_attempts_batch_slot", "attempts", ["batch_id", "slot"])
    op.create_index("ix_attempts_endpoint", "attempts", ["endpoint_name"])
    op.create_index("ix_attempts_serial", "attempts", ["serial_number"])
    op.create_table(
        "provisioned",
        sa.Column("endpoint_name", sa.String(256), primary_key=True),
        sa.Column("serial_number", sa.String(256), nullable=False),
        sa.Column("attempt_id", sa.Integer, sa.ForeignKey("attempts.id"), nullable=False),
        sa.Column("provisioned_at", _TS, nullable=False),
        sa.UniqueConstraint("serial_number", name="uq_provisioned_serial"),
        sa.UniqueConstraint("attempt_id", name="uq_provisioned_attempt"),
    )
    op.create_table(
        "sequences",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("next_value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pool", sa.String(128), nullable=False),
        sa.Column("endpoint_name", sa.String(256), nullable=False),
        sa.Column("serial_number", sa.String(256), nullable=False),
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("allocated_at", _TS, nullable=False),
        sa.UniqueConstraint("endpoint_name", name="uq_allocations_endpoint"),
        sa.UniqueConstraint("serial_number", name="uq_allocations_serial"),
    )
    op.create_table(
        "pool_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pool", sa.String(128), nullable=False),
        sa.Column("endpoint_name", sa.String(256), nullable=False),
        sa.Column("serial_number", sa.String(256), nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claimed_at", _TS),
        sa.UniqueConstraint("pool", "endpoint_name", name="uq_pool_endpoint"),
        sa.UniqueConstraint("pool", "serial_number", name="uq_pool_serial"),
    )
    op.create_index("ix_pool_unclaimed", "pool_entries", ["pool", "claimed_by", "id"])


def downgrade() -> None:
    op.drop_index("ix_pool_unclaimed", "pool_entries")
    op.drop_table("pool_entries")
    op.drop_table("allocations")
    op.drop_table("sequences")
    op.drop_table("provisioned")
    op.drop_index("ix_attempts_serial", "attempts")
    op.drop_index("ix_attempts_endpoint", "attempts")
    op.drop_index("ix_attempts_batch_slot", "attempts")
    op.drop_table("attempts")
    op.drop_table("batches")

"""Device Management API: account, API keys, developer CA and certificates, enrollments.

Revision ID: dm_api_0001
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "dm_api_0001"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    accounts = op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    assert accounts is not None
    # The one account of a self-hosted server, made here because migrations run under a
    # lock: two servers starting at once must not make two accounts. Its id has the shape
    # of the other ids (provkit.registry.ids.new_id), written out because a migration
    # must not change when that module does.
    account_id = f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"
    op.bulk_insert(accounts, [{"id": account_id, "display_name": "provkit", "created_at": datetime.now(UTC)}])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS),
        sa.Column("revoked_at", _TS),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
    )
    op.create_table(
        "developer_cas",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "developer_certificates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("endpoint_name", sa.String(64), nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("ca_id", sa.String(32), sa.ForeignKey("developer_cas.id"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("name", name="uq_developer_certificates_name"),
        sa.UniqueConstraint("endpoint_name", name="uq_developer_certificates_endpoint"),
        sa.UniqueConstraint("fingerprint", name="uq_developer_certificates_fingerprint"),
    )
    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("enrollment_identity", sa.String(128), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("claimed_at", _TS),
        sa.Column("enrolled_device_id", sa.String(32)),
        sa.Column("endpoint_name", sa.String(256)),
        sa.UniqueConstraint("enrollment_identity", name="uq_enrollments_identity"),
    )


def downgrade() -> None:
    op.drop_table("enrollments")
    op.drop_table("developer_certificates")
    op.drop_table("developer_cas")
    op.drop_table("api_keys")
    op.drop_table("accounts")

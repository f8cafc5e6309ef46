"""First connection: trusted CA certificates, revocations, connections, PSK credentials.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "trusted_certificates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_developer_certificate", sa.Boolean, nullable=False),
        sa.Column("certificate", sa.LargeBinary, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=False),
        sa.Column("not_before", _TS, nullable=False),
        sa.Column("not_after", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("service", "fingerprint", name="uq_trusted_service_fingerprint"),
    )
    op.create_table(
        "revocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint_name", sa.String(256)),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("issuer", sa.Text),
        sa.Column("serial_number", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("revoked_at", _TS, nullable=False),
        sa.UniqueConstraint("endpoint_name", name="uq_revocations_endpoint"),
        sa.UniqueConstraint("fingerprint", name="uq_revocations_fingerprint"),
    )
    op.create_table(
        "connections",
        sa.Column("endpoint_name", sa.String(256), primary_key=True),
        sa.Column("service", sa.String(16), primary_key=True),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("failure", sa.String(32)),
        sa.Column("error_code", sa.Integer),
        sa.Column("detail", sa.Text),
        sa.Column("location", sa.String(64)),
        sa.Column("lifetime", sa.Integer),
        sa.Column("binding", sa.String(16)),
        sa.Column("lwm2m_version", sa.String(16)),
        sa.Column("objects", sa.Text),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("server_id", sa.String(128), nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.UniqueConstraint("location", name="uq_connections_location"),
    )
    op.create_index("ix_connections_last_seen", "connections", ["last_seen"])
    op.create_table(
        "psk_credentials",
        sa.Column("service", sa.String(16), primary_key=True),
        sa.Column("identity", sa.String(256), primary_key=True),
        sa.Column("endpoint_name", sa.String(256), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("sealing_key_id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("service", "endpoint_name", name="uq_psk_service_endpoint"),
    )
    op.create_table(
        "server_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    trust_revision = op.create_table(
        "trust_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    assert trust_revision is not None
    op.bulk_insert(trust_revision, [{"id": 1, "revision": 1}])


def downgrade() -> None:
    op.drop_table("trust_revision")
    op.drop_table("server_keys")
    op.drop_table("psk_credentials")
    op.drop_index("ix_connections_last_seen", "connections")
    op.drop_table("connections")
    op.drop_table("revocations")
    op.drop_table("trusted_certificates")

"""Indexes for a registry of millions: lookups, keyset pages, a batch's unfinished attempts.

Revision ID: 0006_lookup_indexes
Revises: 0005_ca_key
Create Date: 2026-12-03

``show`` by certificate fingerprint, ``list`` pages by state or batch in id order,
and a resumed batch reading only its unfinished attempts. On a large PostgreSQL
registry the upgrade holds writes for as long as the indexes take to build (seconds
per million attempts).
"""

from __future__ import annotations

from alembic import op

revision = "0006_lookup_indexes"
down_revision = "0005_ca_key"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_attempts_cert_sha256", ["device_cert_sha256"]),
    ("ix_attempts_state_id", ["state", "id"]),
    ("ix_attempts_batch_id", ["batch_id", "id"]),
    ("ix_attempts_batch_state_id", ["batch_id", "state", "id"]),
)


def upgrade() -> None:
    for name, columns in _INDEXES:
        op.create_index(name, "attempts", columns)


def downgrade() -> None:
    for name, _columns in reversed(_INDEXES):
        op.drop_index(name, "attempts")

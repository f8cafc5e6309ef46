"""Tables of the device registry (SQLAlchemy Core).

The registry is both the record of every provisioning attempt and the journal a batch
resumes from. Uniqueness is enforced by the database itself: the ``reservations`` table's primary key
and unique constraint decide which attempt may send a bundle for an identity, the
``provisioned`` table's which device holds it, so several stations writing to one
PostgreSQL can neither send nor record the same endpoint name or serial number twice.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)


class AttemptState(StrEnum):
    """Where a provisioning attempt stands; the order is the order of the line."""

    ALLOCATED = "allocated"
    """Identity assigned, no bundle recorded yet."""
    PREPARED = "prepared"
    """Bundle prepared and its digest recorded."""
    SENDING = "sending"
    """Recorded just before the bundle goes to the device (the write-ahead mark)."""
    INJECTED = "injected"
    """The device answered; its response is stored, not yet checked."""
    VERIFIED = "verified"
    """The response was checked and the device is recorded as provisioned."""
    FAILED = "failed"
    """The attempt ended without provisioning the device."""
    SUPERSEDED = "superseded"
    """A later attempt for the same identity replaced this one."""


TERMINAL_STATES: Final = frozenset({AttemptState.VERIFIED, AttemptState.FAILED, AttemptState.SUPERSEDED})

metadata = MetaData()

batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("station_id", String(128), nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), ForeignKey("batches.id"), nullable=True),
    Column("slot", String(256), nullable=True),
    Column("address", String(256), nullable=True),
    Column("endpoint_name", String(256), nullable=False),
    Column("serial_number", String(256), nullable=False),
    Column("station_id", String(128), nullable=False),
    Column("key_mode", String(32), nullable=False, default=""),
    Column("state", String(16), nullable=False),
    Column("bundle_sha256", String(64), nullable=True),
    Column("device_cert_sha256", String(64), nullable=True),
    Column("device_cert_serial", String(64), nullable=True),
    Column("ca_sha256", String(64), nullable=True),
    # Which CA key signed the device certificate: a token key's PKCS#11 URI (token label and
    # serial, object label and id), or "sha256:<hex>" of a key file's public key.
    Column("ca_key", String(512), nullable=True),
    Column("response", LargeBinary, nullable=True),
    Column("return_status", Integer, nullable=True),
    Column("info_message", Text, nullable=True),
    Column("warnings", Text, nullable=True),
    Column("enrollment_id", String(256), nullable=True),
    Column("error_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("tries", Integer, nullable=False, default=0),
    Column("supersedes_id", Integer, nullable=True),
    Column("superseded_by_id", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("provisioned_at", DateTime(timezone=True), nullable=True),
    Column("session_id", String(64), nullable=True),
    # The device certificate itself (DER; public material), for a device's page.
    Column("device_cert", LargeBinary, nullable=True),
    Index("ix_attempts_batch_slot", "batch_id", "slot"),
    Index("ix_attempts_endpoint", "endpoint_name"),
    Index("ix_attempts_serial", "serial_number"),
    Index("ix_attempts_cert_sha256", "device_cert_sha256"),
    Index("ix_attempts_state_id", "state", "id"),
    Index("ix_attempts_batch_id", "batch_id", "id"),
    Index("ix_attempts_batch_state_id", "batch_id", "state", "id"),
    Index("ix_attempts_provisioned_at", "provisioned_at", "station_id"),
    Index("ix_attempts_updated_at", "updated_at"),
    Index("ix_attempts_station_updated", "station_id", "updated_at"),
)
"""Every attempt; a batch's journal.

The indexes serve the queries a registry of millions answers in milliseconds (each
is EXPLAIN-checked in the tests): ``show`` by endpoint name, serial number or
certificate fingerprint; a page of ``list`` (by id, in a state, in a batch — keyset
pagination); a batch's rows by slot, and a resumed batch's unfinished attempts by state;
the line view's last hours (by ``provisioned_at`` and ``updated_at``), each station's latest
activity.
"""

provisioned = Table(
    "provisioned",
    metadata,
    Column("endpoint_name", String(256), primary_key=True),
    Column("serial_number", String(256), nullable=False),
    Column("attempt_id", Integer, ForeignKey("attempts.id"), nullable=False),
    Column("provisioned_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("serial_number", name="uq_provisioned_serial"),
    UniqueConstraint("attempt_id", name="uq_provisioned_attempt"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("endpoint_name", String(256), primary_key=True),
    Column("serial_number", String(256), nullable=False),
    Column("attempt_id", Integer, ForeignKey("attempts.id"), nullable=False),
    Column("inherited", Boolean, nullable=False, default=False),
    Column("reserved_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("serial_number", name="uq_reservations_serial"),
    UniqueConstraint("attempt_id", name="uq_reservations_attempt"),
)
"""Who holds each identity on the line: written with the ``sending`` mark, before any
bundle leaves, and kept while a device may hold the identity (also once provisioned).

``inherited`` is set when the attempt got the reservation from another one (a resume
handing it to the superseding attempt, or ``--reprovision`` taking it over): a device
may then hold the identity from that earlier attempt, so it is not released when this
attempt's own bundle never reached its device.
"""

attempt_counts = Table(
    "attempt_counts",
    metadata,
    Column("station_id", String(128), primary_key=True),
    Column("state", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
)
"""Attempts per station and state, kept by database triggers on ``attempts`` (``stats``).

On SQLite (one writer at a time) a row trigger updates the count in place. On
PostgreSQL, where stations write at once, a statement trigger appends the statement's
net changes to ``attempt_count_deltas`` instead — appends never wait for each other,
where updates of one shared count would make every station's transaction queue on it
(and, taken in different orders, deadlock) — and the deltas are folded into
``attempt_counts`` now and then (:func:`provkit.registry.counts.fold`). A count is its
row here plus its deltas.
"""

attempt_count_deltas = Table(
    "attempt_count_deltas",
    metadata,
    Column("station_id", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("n", BigInteger, nullable=False),
)
"""Net changes to ``attempt_counts`` not folded in yet (PostgreSQL; empty on SQLite)."""

sequences = Table(
    "sequences",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

allocations = Table(
    "allocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pool", String(128), nullable=False),
    Column("endpoint_name", String(256), nullable=False),
    Column("serial_number", String(256), nullable=False),
    Column("station_id", String(128), nullable=False),
    Column("allocated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("endpoint_name", name="uq_allocations_endpoint"),
    UniqueConstraint("serial_number", name="uq_allocations_serial"),
)

pool_entries = Table(
    "pool_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pool", String(128), nullable=False),
    Column("endpoint_name", String(256), nullable=False),
    Column("serial_number", String(256), nullable=False),
    Column("claimed_by", String(128), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("pool", "endpoint_name", name="uq_pool_endpoint"),
    UniqueConstraint("pool", "serial_number", name="uq_pool_serial"),
    Index("ix_pool_unclaimed", "pool", "claimed_by", "id"),
)

# ---------------------------------------------------------------------- first connection
# Written by the LwM2M server (provkit.server) and by the stations that provision devices
# for it; read by the Device Management API.

trusted_certificates = Table(
    "trusted_certificates",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("service", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("is_developer_certificate", Boolean, nullable=False, default=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("service", "fingerprint", name="uq_trusted_service_fingerprint"),
)
"""CA certificates whose devices the server accepts, per service (``bootstrap`` / ``lwm2m``)."""

revocations = Table(
    "revocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_name", String(256), nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("issuer", Text, nullable=True),
    Column("serial_number", String(64), nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("revoked_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("endpoint_name", name="uq_revocations_endpoint"),
    UniqueConstraint("fingerprint", name="uq_revocations_fingerprint"),
)
"""Refused devices: a whole endpoint, or one certificate (by fingerprint, or issuer + serial)."""

connections = Table(
    "connections",
    metadata,
    Column("endpoint_name", String(256), primary_key=True),
    Column("service", String(16), primary_key=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("address", String(256), nullable=False, default=""),
    Column("mode", String(16), nullable=False, default=""),
    Column("outcome", String(16), nullable=False),
    Column("failure", String(32), nullable=True),
    Column("error_code", Integer, nullable=True),
    Column("detail", Text, nullable=True),
    Column("location", String(64), nullable=True),
    Column("lifetime", Integer, nullable=True),
    Column("binding", String(16), nullable=True),
    Column("lwm2m_version", String(16), nullable=True),
    Column("objects", Text, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("server_id", String(128), nullable=False, default=""),
    Column("successes", Integer, nullable=False, default=0),
    UniqueConstraint("location", name="uq_connections_location"),
    Index("ix_connections_last_seen", "last_seen"),
    Index("ix_connections_fingerprint", "fingerprint"),
)
"""The last connection of every endpoint to each service, and when it was first seen."""

psk_credentials = Table(
    "psk_credentials",
    metadata,
    Column("service", String(16), primary_key=True),
    Column("identity", String(256), primary_key=True),
    Column("endpoint_name", String(256), nullable=False),
    Column("sealed_key", LargeBinary, nullable=False),
    Column("sealing_key_id", String(64), nullable=False),
    Column("source", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("service", "endpoint_name", name="uq_psk_service_endpoint"),
)
"""PSK identities and keys the server accepts; keys sealed to the server's sealing key."""

server_keys = Table(
    "server_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""Public keys of the server published to stations (the PSK sealing key)."""

trust_revision = Table(
    "trust_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)
"""One row whose counter grows with every change of trust or revocations: servers poll it."""

# ---------------------------------------------------------------------- Device Management API
# Written and read by the Device Management API of ``provkit server`` (provkit.server.api).

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("display_name", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""The account a self-hosted server serves: one row, made on first use (its id is the ``aid``)."""

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("role", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("name", name="uq_api_keys_name"),
)
"""API keys: the key's id is part of the key itself, its secret is kept only as a SHA-256."""

developer_cas = Table(
    "developer_cas",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("certificate", LargeBinary, nullable=False),
    Column("sealed_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""The CA that signs developer certificates; its private key is sealed by the server."""

developer_certificates = Table(
    "developer_certificates",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("endpoint_name", String(64), nullable=False),
    Column("certificate", LargeBinary, nullable=False),
    Column("sealed_key", LargeBinary, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("ca_id", String(32), ForeignKey("developer_cas.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", name="uq_developer_certificates_name"),
    UniqueConstraint("endpoint_name", name="uq_developer_certificates_endpoint"),
    UniqueConstraint("fingerprint", name="uq_developer_certificates_fingerprint"),
)
"""Developer certificates the server issued: device certificate and (sealed) private key."""

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.id"), nullable=False),
    Column("enrollment_identity", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=True),
    Column("enrolled_device_id", String(32), nullable=True),
    Column("endpoint_name", String(256), nullable=True),
    UniqueConstraint("enrollment_identity", name="uq_enrollments_identity"),
)
"""First-to-claim enrollment ids (``A-`` + the device certificate's SHA-256 fingerprint)."""

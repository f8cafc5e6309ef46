"""Device registry: provisioning attempts, identities, and what the first connection needs.

Every provisioning attempt, provisioned identities and identity allocation; trusted CAs,
revocations, connections and PSK credentials for the LwM2M server.
``Registry.open(url_or_path)`` connects to a SQLite file or PostgreSQL and runs the
Alembic migrations shipped in :mod:`provkit.registry.migrations`. The first-connection
tables are reached through ``registry.trust`` (:class:`TrustStore`), ``registry.revocations``
(:class:`Revocations`), ``registry.connections`` (:class:`Connections`) and ``registry.psk``
(:class:`PskCredentials`).
"""

from provkit.registry.allocation import Identity, IdentityPattern, parse_identity_csv
from provkit.registry.api import Registry, default_station_id
from provkit.registry.changes import StateChange
from provkit.registry.connections import Connection, ConnectionEvent, ConnectionOutcome, Connections
from provkit.registry.credentials import PskCredential, PskCredentials, SealedPsk
from provkit.registry.records import Attempt, NewAttempt, RegistryStats
from provkit.registry.schema import TERMINAL_STATES, AttemptState
from provkit.registry.trust import (
    Revocation,
    Revocations,
    RevocationSet,
    Service,
    TrustedCertificate,
    TrustStatus,
    TrustStore,
)

__all__ = [
    "TERMINAL_STATES",
    "Attempt",
    "AttemptState",
    "Connection",
    "ConnectionEvent",
    "ConnectionOutcome",
    "Connections",
    "Identity",
    "IdentityPattern",
    "NewAttempt",
    "PskCredential",
    "PskCredentials",
    "Registry",
    "RegistryStats",
    "Revocation",
    "RevocationSet",
    "Revocations",
    "SealedPsk",
    "Service",
    "StateChange",
    "TrustStatus",
    "TrustStore",
    "TrustedCertificate",
    "default_station_id",
    "parse_identity_csv",
]

"""Device registry: every provisioning attempt, provisioned identities, identity allocation.

``Registry.open(url_or_path)`` connects to a SQLite file or PostgreSQL and runs the
Alembic migrations shipped in :mod:`provkit.registry.migrations`.
"""

from provkit.registry.allocation import Identity, IdentityPattern, parse_identity_csv
from provkit.registry.api import Registry, default_station_id
from provkit.registry.changes import StateChange
from provkit.registry.records import Attempt, NewAttempt, RegistryStats
from provkit.registry.schema import TERMINAL_STATES, AttemptState

__all__ = [
    "TERMINAL_STATES",
    "Attempt",
    "AttemptState",
    "Identity",
    "IdentityPattern",
    "NewAttempt",
    "Registry",
    "RegistryStats",
    "StateChange",
    "default_station_id",
    "parse_identity_csv",
]

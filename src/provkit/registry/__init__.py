"""Device registry: every provisioning attempt, provisioned identities, identity allocation.

``Registry.open(url_or_path)`` connects to a SQLite file or PostgreSQL and runs the
Alembic migrations shipped in :mod:`provkit.registry.migrations`.
"""

from provkit.registry.allocation import Identity, IdentityPattern, parse_identity_csv
from provkit.registry.api import NewAttempt, Registry, default_station_id
from provkit.registry.records import Attempt, RegistryStats
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
    "default_station_id",
    "parse_identity_csv",
]

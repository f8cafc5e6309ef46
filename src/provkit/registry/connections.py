"""Device connections: the last connection of every endpoint to each service.

One row per endpoint and service (``bootstrap``, ``lwm2m``): when the device was first
and last seen, from which address, in which security mode, and how the last connection
ended — bootstrapped, registered, updated, de-registered, or failed with a
classification (``tls-alert``, ``ca-untrusted``, ``cn-mismatch``, ``revoked``,
``timeout``, …). The server records what succeeded; the end-of-line check
(``batch verify --connect``) records what failed as the device saw it. A server records
many events at once with :meth:`Connections.record` (one transaction, one upsert per
row), which is what keeps hundreds of registrations a second cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection as DbConnection
from sqlalchemy import case, func, select

from provkit.registry.allocator import dialect_insert
from provkit.registry.schema import connections
from provkit.registry.trust import aware

if TYPE_CHECKING:
    from provkit.registry.api import Registry


class ConnectionOutcome(StrEnum):
    """How a connection ended."""

    BOOTSTRAPPED = "bootstrapped"
    """Bootstrap-Finish acknowledged: the device holds its LwM2M server account."""
    REGISTERED = "registered"
    """Register answered 2.01 Created."""
    UPDATED = "updated"
    """Registration Update answered 2.04 Changed."""
    DEREGISTERED = "deregistered"
    """De-register answered 2.02 Deleted."""
    FAILED = "failed"
    """The connection failed; ``failure`` classifies it."""


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """One connection to record.

    Attributes:
        endpoint_name: the device's endpoint name.
        service: ``bootstrap`` or ``lwm2m``.
        outcome: how it ended.
        at: when (default: now).
        address: the device's ``host:port`` as the server saw it, or the server's as the device saw it.
        mode: ``certificate``, ``psk`` or ``nosec``.
        failure: the classification of a failed connection.
        error_code: the provkit code of a failed connection.
        detail: a human-readable explanation.
        location: the registration's location (``/rd/<id>``); ``None`` clears it.
        lifetime: the registration lifetime in seconds.
        binding: the binding mode (``U``).
        lwm2m_version: the LwM2M version the device registered with.
        objects: the registered objects, CoRE link format.
        fingerprint: SHA-256 of the device certificate (certificate mode).
    """

    endpoint_name: str
    service: str
    outcome: ConnectionOutcome
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    address: str = ""
    mode: str = ""
    failure: str | None = None
    error_code: int | None = None
    detail: str | None = None
    location: str | None = None
    lifetime: int | None = None
    binding: str | None = None
    lwm2m_version: str | None = None
    objects: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Connection:
    """The recorded state of one endpoint's connections to one service.

    Attributes are those of :class:`ConnectionEvent` (of the last event), plus:

    Attributes:
        first_seen: the first connection recorded.
        last_seen: the last one.
        successes: how many connections succeeded.
        server_id: which server (or station) recorded the last event.
    """

    endpoint_name: str
    service: str
    outcome: ConnectionOutcome
    first_seen: datetime
    last_seen: datetime
    address: str
    mode: str
    failure: str | None
    error_code: int | None
    detail: str | None
    location: str | None
    lifetime: int | None
    binding: str | None
    lwm2m_version: str | None
    objects: str | None
    fingerprint: str | None
    successes: int
    server_id: str

    @property
    def ok(self) -> bool:
        """Whether the last connection succeeded."""
        return self.outcome is not ConnectionOutcome.FAILED


def _connection(row: Any) -> Connection:
    return Connection(
        endpoint_name=row.endpoint_name,
        service=row.service,
        outcome=ConnectionOutcome(row.outcome),
        first_seen=aware(row.first_seen),
        last_seen=aware(row.last_seen),
        address=row.address,
        mode=row.mode,
        failure=row.failure,
        error_code=row.error_code,
        detail=row.detail,
        location=row.location,
        lifetime=row.lifetime,
        binding=row.binding,
        lwm2m_version=row.lwm2m_version,
        objects=row.objects,
        fingerprint=row.fingerprint,
        successes=row.successes,
        server_id=row.server_id,
    )


_UPDATED_ON_CONFLICT = (
    "last_seen",
    "address",
    "mode",
    "outcome",
    "failure",
    "error_code",
    "detail",
    "lifetime",
    "binding",
    "lwm2m_version",
    "objects",
    "fingerprint",
    "server_id",
)


def _last_per_key(events: Sequence[ConnectionEvent]) -> list[ConnectionEvent]:
    """The events in order, keeping only the last of each endpoint and service (one upsert per row)."""
    last: dict[tuple[str, str], ConnectionEvent] = {}
    for event in events:
        key = (event.endpoint_name, event.service)
        last.pop(key, None)
        last[key] = event
    return list(last.values())


def _row(event: ConnectionEvent, recorder: str) -> dict[str, Any]:
    return {
        "endpoint_name": event.endpoint_name,
        "service": event.service,
        "first_seen": event.at,
        "last_seen": event.at,
        "address": event.address,
        "mode": event.mode,
        "outcome": event.outcome.value,
        "failure": event.failure,
        "error_code": event.error_code,
        "detail": event.detail,
        "location": event.location,
        "lifetime": event.lifetime,
        "binding": event.binding,
        "lwm2m_version": event.lwm2m_version,
        "objects": event.objects,
        "fingerprint": event.fingerprint,
        "server_id": recorder,
        "successes": 0 if event.outcome is ConnectionOutcome.FAILED else 1,
    }


_UPSERTS: dict[tuple[str, bool], Any] = {}


def _upsert(conn: Any, *, keep_location: bool) -> Any:
    """``INSERT … ON CONFLICT (endpoint_name, service) DO UPDATE`` for rows of :func:`_row`.

    Built once per dialect: SQLAlchemy then reuses its compiled form for every commit.
    """
    key = (conn.dialect.name, keep_location)
    if key not in _UPSERTS:
        _UPSERTS[key] = _build_upsert(conn, keep_location=keep_location)
    return _UPSERTS[key]


def _build_upsert(conn: Any, *, keep_location: bool) -> Any:
    insert = dialect_insert(conn, connections)
    changes: dict[str, Any] = {name: insert.excluded[name] for name in _UPDATED_ON_CONFLICT}
    changes["successes"] = connections.c.successes + insert.excluded.successes
    if not keep_location:
        changes["location"] = insert.excluded.location
    return insert.on_conflict_do_update(index_elements=["endpoint_name", "service"], set_=changes)


class Connections:
    """Connection records of a registry (``registry.connections``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def record(
        self,
        events: Sequence[ConnectionEvent],
        *,
        server_id: str | None = None,
        connection: DbConnection | None = None,
    ) -> None:
        """Record ``events`` in one transaction (the last event of an endpoint and service wins).

        A successful event keeps the registration location it carries (``None`` after a
        de-registration); a failed one leaves the location alone, so a device that
        failed to reconnect keeps the registration it still holds.

        ``connection`` (from :meth:`Registry.connect`) spares a frequent writer such as the
        server the pool checkout.

        Raises:
            RegistryError: the registry is unavailable (nothing is written).
        """
        if not events:
            return
        recorder = server_id if server_id is not None else self._registry.station_id
        rows = [_row(event, recorder) for event in _last_per_key(events)]
        succeeded = [row for row in rows if row["outcome"] != ConnectionOutcome.FAILED.value]
        failed = [row for row in rows if row["outcome"] == ConnectionOutcome.FAILED.value]
        with self._registry.transaction(connection) as conn:
            for group, keep_location in ((succeeded, False), (failed, True)):
                if group:
                    # One statement for the group (executemany): compiled once, sent in a batch.
                    conn.execute(_upsert(conn, keep_location=keep_location), group)

    def get(self, endpoint_name: str) -> list[Connection]:
        """The connection records of ``endpoint_name`` (one per service it reached)."""
        with self._registry.transaction() as conn:
            rows = conn.execute(
                select(connections)
                .where(connections.c.endpoint_name == endpoint_name)
                .order_by(connections.c.service)
            ).all()
        return [_connection(row) for row in rows]

    def by_location(self, location: str) -> Connection | None:
        """The registration holding ``location``, if any."""
        with self._registry.transaction() as conn:
            row = conn.execute(select(connections).where(connections.c.location == location)).first()
        return None if row is None else _connection(row)

    def find(
        self,
        *,
        service: str | None = None,
        outcome: ConnectionOutcome | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Connection]:
        """Connection records, most recently seen first."""
        query = select(connections).order_by(connections.c.last_seen.desc(), connections.c.endpoint_name)
        if service is not None:
            query = query.where(connections.c.service == service)
        if outcome is not None:
            query = query.where(connections.c.outcome == outcome.value)
        if since is not None:
            query = query.where(connections.c.last_seen >= since)
        if limit is not None:
            query = query.limit(limit)
        with self._registry.transaction() as conn:
            return [_connection(row) for row in conn.execute(query)]

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of endpoints per service and last outcome."""
        query = select(connections.c.service, connections.c.outcome, func.count()).group_by(
            connections.c.service, connections.c.outcome
        )
        result: dict[str, dict[str, int]] = {}
        with self._registry.transaction() as conn:
            for service, outcome, count in conn.execute(query):
                result.setdefault(service, {})[outcome] = int(count)
        return result

    def registered_count(self) -> int:
        """How many endpoints hold a registration now."""
        query = select(func.sum(case((connections.c.location.is_not(None), 1), else_=0)))
        with self._registry.transaction() as conn:
            return int(conn.execute(query).scalar() or 0)

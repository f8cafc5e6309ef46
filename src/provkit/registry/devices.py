"""The device directory: every endpoint that connected to ``provkit server``, and its state.

A device is an endpoint name with a connection record for the bootstrap server, the LwM2M
server or both (``connections``, written by the servers). Its state follows Device
Management's device directory:

* ``registered`` — it holds a registration now (the LwM2M record keeps its location);
* ``deregistered`` — its last LwM2M event was a de-registration;
* ``bootstrapped`` — it succeeded before (bootstrap, or a registration it no longer holds);
* ``unenrolled`` — every connection it tried failed.

The state is one SQL expression (:data:`device_state`), so a listing filtered by state is one
query, and a page is read on the ``(endpoint_name, service)`` primary key after the
cursor: the same cost on the first page and the last of 100 000 devices. The device id is
the endpoint name, the unique key of a device here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from sqlalchemy import case, func, literal, select

from provkit.errors import ApiNotFound
from provkit.registry.paging import Order, Page, read_page
from provkit.registry.schema import connections, developer_certificates, provisioned

if TYPE_CHECKING:
    from provkit.registry.api import Registry

DeviceState = Literal["registered", "deregistered", "bootstrapped", "unenrolled"]
STATES: Final = ("registered", "deregistered", "bootstrapped", "unenrolled")

_LWM2M: Final = connections.c.service == "lwm2m"
_LOCATION: Final = func.max(case((_LWM2M, connections.c.location)))
_LWM2M_OUTCOME: Final = func.max(case((_LWM2M, connections.c.outcome)))
device_state: Final = case(
    (_LOCATION.is_not(None), literal("registered")),
    (_LWM2M_OUTCOME == "deregistered", literal("deregistered")),
    (func.sum(connections.c.successes) > 0, literal("bootstrapped")),
    else_=literal("unenrolled"),
)
"""The device state of one endpoint's connection records (grouped by endpoint name)."""


@dataclass(frozen=True, slots=True)
class Device:
    """One device of the directory.

    Attributes:
        endpoint_name: its endpoint name (also its id).
        state: see the module docstring.
        first_seen: its first connection.
        last_seen: its last connection.
        bootstrapped_at: when it last bootstrapped, if it did.
        address: where it connected from last.
        mode: ``certificate``, ``psk`` or ``nosec`` (of the last connection).
        last_failure: the classification of its last failed connection, if the last failed.
        fingerprint: SHA-256 of its bootstrap (else LwM2M) certificate, hex.
        serial_number: the serial number provisioned with the endpoint name, if the registry has it.
        developer: whether its certificate is one of this server's developer certificates.
    """

    endpoint_name: str
    state: DeviceState
    first_seen: datetime
    last_seen: datetime
    bootstrapped_at: datetime | None
    address: str
    mode: str
    last_failure: str | None
    fingerprint: str | None
    serial_number: str | None
    developer: bool


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class DeviceDirectory:
    """The devices of a registry (``registry.devices``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def page(
        self,
        *,
        limit: int,
        after: str | None = None,
        order: Order = "ASC",
        count: bool = False,
        state: DeviceState | None = None,
        endpoint_name: str | None = None,
    ) -> Page:
        """One page of devices by endpoint name (rows are :class:`Device`)."""
        query = select(connections.c.endpoint_name, device_state.label("state")).group_by(
            connections.c.endpoint_name
        )
        if endpoint_name is not None:
            query = query.where(connections.c.endpoint_name == endpoint_name)
        if state is not None:
            query = query.having(device_state == state)
        with self._registry.transaction() as conn:
            names = read_page(
                conn,
                query,
                connections.c.endpoint_name,
                limit=limit,
                after=after,
                order=order,
                count=count and state is not None,
            )
            total = names.total_count
            if count and state is None:
                # Without a state there is nothing to aggregate: count the names on the key.
                distinct = select(func.count(func.distinct(connections.c.endpoint_name)))
                if endpoint_name is not None:
                    distinct = distinct.where(connections.c.endpoint_name == endpoint_name)
                total = int(conn.execute(distinct).scalar_one())
            devices = self._details(conn, [(row.endpoint_name, row.state) for row in names.rows])
        return Page(devices, names.has_more, total)

    def get(self, endpoint_name: str) -> Device:
        """The device with ``endpoint_name``.

        Raises:
            ApiNotFound: no endpoint of that name ever connected.
        """
        found = self.page(limit=1, endpoint_name=endpoint_name).rows
        if not found:
            raise ApiNotFound(f"no device {endpoint_name!r} has connected")
        device = found[0]
        assert isinstance(device, Device)
        return device

    def _details(self, conn: Any, named: Sequence[tuple[str, str]]) -> list[Device]:
        if not named:
            return []
        names = [name for name, _ in named]
        rows: dict[str, list[Any]] = {}
        for row in conn.execute(select(connections).where(connections.c.endpoint_name.in_(names))):
            rows.setdefault(row.endpoint_name, []).append(row)
        serials = dict(
            conn.execute(
                select(provisioned.c.endpoint_name, provisioned.c.serial_number).where(
                    provisioned.c.endpoint_name.in_(names)
                )
            ).all()
        )
        prints = [row.fingerprint for group in rows.values() for row in group if row.fingerprint]
        developer = set(
            conn.execute(
                select(developer_certificates.c.fingerprint).where(
                    developer_certificates.c.fingerprint.in_(prints)
                )
            ).scalars()
        )
        return [_device(name, state, rows[name], serials.get(name), developer) for name, state in named]


def _device(name: str, state: str, rows: Sequence[Any], serial: str | None, developer: set[str]) -> Device:
    last = max(rows, key=lambda row: _aware(row.last_seen) or datetime.min.replace(tzinfo=UTC))
    by_service = {row.service: row for row in rows}
    bootstrap = by_service.get("bootstrap")
    identified = bootstrap if bootstrap is not None and bootstrap.fingerprint else by_service.get("lwm2m")
    fingerprint = identified.fingerprint if identified is not None else None
    first_seen = min(_aware(row.first_seen) or last.first_seen for row in rows)
    bootstrapped_at = (
        _aware(bootstrap.last_seen) if bootstrap is not None and bootstrap.successes > 0 else None
    )
    assert state in STATES
    return Device(
        endpoint_name=name,
        state=state,  # type: ignore[arg-type]
        first_seen=first_seen,
        last_seen=_aware(last.last_seen) or first_seen,
        bootstrapped_at=bootstrapped_at,
        address=last.address,
        mode=last.mode,
        last_failure=last.failure if last.outcome == "failed" else None,
        fingerprint=fingerprint,
        serial_number=serial,
        developer=fingerprint in developer,
    )

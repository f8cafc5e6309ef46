"""Read-only registry queries, each run on a connection the caller's transaction owns."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, or_, select

from provkit.registry.records import Attempt, RegistryStats
from provkit.registry.schema import AttemptState, attempts, provisioned, reservations

_IN_CHUNK = 500
"""Values per ``IN`` list: well under every database's bound-parameter limit."""


def get_attempt(conn: Connection, attempt_id: int) -> Attempt | None:
    """The attempt with ``attempt_id``, or ``None``."""
    row = conn.execute(select(attempts).where(attempts.c.id == attempt_id)).mappings().first()
    return None if row is None else Attempt.from_row(row)


def batch_attempts(conn: Connection, batch_id: str) -> dict[str, Attempt]:
    """The latest attempt of every slot of ``batch_id`` (ids grow, so the last row wins)."""
    rows = conn.execute(
        select(attempts).where(attempts.c.batch_id == batch_id).order_by(attempts.c.id)
    ).mappings()
    return {str(row["slot"]): Attempt.from_row(row) for row in rows}


def find(
    conn: Connection,
    *,
    endpoint_name: str | None = None,
    state: AttemptState | None = None,
    batch_id: str | None = None,
    provisioned_only: bool = False,
    limit: int | None = None,
) -> list[Attempt]:
    """Attempts matching all given filters, oldest first."""
    query = select(attempts).order_by(attempts.c.id)
    if provisioned_only:
        query = query.join(provisioned, provisioned.c.attempt_id == attempts.c.id)
    if endpoint_name is not None:
        query = query.where(attempts.c.endpoint_name == endpoint_name)
    if state is not None:
        query = query.where(attempts.c.state == state.value)
    if batch_id is not None:
        query = query.where(attempts.c.batch_id == batch_id)
    if limit is not None:
        query = query.limit(limit)
    return [Attempt.from_row(row) for row in conn.execute(query).mappings()]


def provisioned_holders(
    conn: Connection, endpoint_names: Sequence[str], serial_numbers: Sequence[str]
) -> list[Attempt]:
    """Attempts currently holding any of these endpoint names or serial numbers."""
    found: dict[int, Attempt] = {}
    for start in range(0, max(len(endpoint_names), len(serial_numbers)), _IN_CHUNK):
        query = (
            select(attempts)
            .join(provisioned, provisioned.c.attempt_id == attempts.c.id)
            .where(
                or_(
                    provisioned.c.endpoint_name.in_(endpoint_names[start : start + _IN_CHUNK]),
                    provisioned.c.serial_number.in_(serial_numbers[start : start + _IN_CHUNK]),
                )
            )
        )
        for row in conn.execute(query).mappings():
            found[int(row["id"])] = Attempt.from_row(row)
    return list(found.values())


def reserved(
    conn: Connection, endpoint_names: Sequence[str], serial_numbers: Sequence[str]
) -> dict[str, int]:
    """Which attempt holds the reservation of each of these endpoint names and serial numbers."""
    held: dict[str, int] = {}
    for start in range(0, max(len(endpoint_names), len(serial_numbers)), _IN_CHUNK):
        query = select(reservations).where(
            or_(
                reservations.c.endpoint_name.in_(endpoint_names[start : start + _IN_CHUNK]),
                reservations.c.serial_number.in_(serial_numbers[start : start + _IN_CHUNK]),
            )
        )
        for row in conn.execute(query):
            held[row.endpoint_name] = held[row.serial_number] = int(row.attempt_id)
    return held


def provisioned_owner(conn: Connection, endpoint_name: str, serial_number: str) -> Attempt | None:
    """The attempt currently holding ``endpoint_name`` or ``serial_number``, if any."""
    row = (
        conn.execute(
            select(attempts)
            .join(provisioned, provisioned.c.attempt_id == attempts.c.id)
            .where(
                or_(
                    provisioned.c.endpoint_name == endpoint_name,
                    provisioned.c.serial_number == serial_number,
                )
            )
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else Attempt.from_row(row)


def stats(conn: Connection) -> RegistryStats:
    """Counts of attempts by state and of provisioned devices by station."""
    by_state = {
        str(state): int(count)
        for state, count in conn.execute(
            select(attempts.c.state, func.count()).group_by(attempts.c.state)
        ).all()
    }
    by_station = {
        str(station): int(count)
        for station, count in conn.execute(
            select(attempts.c.station_id, func.count())
            .join(provisioned, provisioned.c.attempt_id == attempts.c.id)
            .group_by(attempts.c.station_id)
        ).all()
    }
    total_provisioned = conn.execute(select(func.count()).select_from(provisioned)).scalar_one()
    return RegistryStats(
        attempts=sum(by_state.values()),
        provisioned=int(total_provisioned),
        by_state=by_state,
        by_station=by_station,
    )

"""Atomic allocation of identities inside a registry transaction.

Pattern sequences advance with one ``UPDATE … RETURNING`` statement, which both SQLite
(one writer at a time) and PostgreSQL (row lock until commit) make atomic, so two
stations never receive the same sequence number. Every allocated identity is also
inserted into ``allocations``, whose unique constraints make reuse impossible even
across pools (a CSV pool and a pattern that happen to produce the same value). A
pattern also skips values some attempt already used (an endpoint name or serial
number given explicitly in a devices file), which would otherwise only be refused
after the device had been provisioned.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from provkit.errors import AllocationError, PatternConflictError
from provkit.registry.allocation import Identity, IdentityPattern, uses_prefix
from provkit.registry.schema import allocations, attempts, pool_entries, sequences

_MAX_ROUNDS: Final = 8
_IN_CHUNK: Final = 500
"""Values per ``IN`` list: well under every database's bound-parameter limit."""


def dialect_insert(conn: Connection, table: Any) -> Any:
    """Dialect insert supporting ``ON CONFLICT DO NOTHING``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _reserve(conn: Connection, name: str, count: int) -> range:
    """Advance sequence ``name`` by ``count`` and return the numbers reserved."""
    conn.execute(dialect_insert(conn, sequences).values(name=name, next_value=1).on_conflict_do_nothing())
    end = conn.execute(
        update(sequences)
        .where(sequences.c.name == name)
        .values(next_value=sequences.c.next_value + count)
        .returning(sequences.c.next_value)
    ).scalar_one()
    return range(int(end) - count, int(end))


def _record(conn: Connection, pool: str, identities: Sequence[Identity], station_id: str) -> set[str]:
    """Insert allocations, a few hundred rows per statement; returns the endpoint names inserted.

    A value ever allocated before is left out (``ON CONFLICT DO NOTHING``): the unique
    constraints decide, across stations and pools.
    """
    now = datetime.now(UTC)
    inserted: set[str] = set()
    for start in range(0, len(identities), _IN_CHUNK):
        rows = [
            {
                "pool": pool,
                "endpoint_name": identity.endpoint_name,
                "serial_number": identity.serial_number,
                "station_id": station_id,
                "allocated_at": now,
            }
            for identity in identities[start : start + _IN_CHUNK]
        ]
        result = conn.execute(
            dialect_insert(conn, allocations)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(allocations.c.endpoint_name)
        )
        inserted.update(row.endpoint_name for row in result)
    return inserted


def _used(conn: Connection, identities: Sequence[Identity]) -> tuple[set[str], set[str]]:
    """Endpoint names and serial numbers among ``identities`` that some attempt already used."""
    endpoints: set[str] = set()
    serials: set[str] = set()
    for start in range(0, len(identities), _IN_CHUNK):
        chunk = identities[start : start + _IN_CHUNK]
        rows = conn.execute(
            select(attempts.c.endpoint_name, attempts.c.serial_number).where(
                or_(
                    attempts.c.endpoint_name.in_([i.endpoint_name for i in chunk]),
                    attempts.c.serial_number.in_([i.serial_number for i in chunk]),
                )
            )
        ).all()
        endpoints.update(row.endpoint_name for row in rows)
        serials.update(row.serial_number for row in rows)
    return endpoints, serials


def allocate_from_pattern(
    conn: Connection,
    pattern: IdentityPattern,
    count: int,
    station_id: str,
    avoid: Collection[str] = (),
) -> list[Identity]:
    """Allocate ``count`` identities from ``pattern`` (see module docstring).

    Args:
        conn: the caller's transaction.
        pattern: the templates and prefix.
        count: how many identities.
        station_id: recorded on each allocation.
        avoid: endpoint names and serial numbers about to be used otherwise (given
            explicitly next to the allocated ones), skipped like used ones.

    Raises:
        AllocationError: ``count`` is not positive, or values keep clashing with
            identities allocated or used elsewhere.
    """
    if count < 1:
        raise AllocationError(f"cannot allocate {count} identities")
    _refuse_shared_template(conn, pattern)
    result: list[Identity] = []
    for _ in range(_MAX_ROUNDS):
        candidates = [pattern.render(seq) for seq in _reserve(conn, pattern.pool, count - len(result))]
        used_endpoints, used_serials = _used(conn, candidates)
        fresh = [
            identity
            for identity in candidates
            if identity.endpoint_name not in used_endpoints
            and identity.serial_number not in used_serials
            and identity.endpoint_name not in avoid
            and identity.serial_number not in avoid
        ]
        recorded = _record(conn, pattern.pool, fresh, station_id)
        result += [identity for identity in fresh if identity.endpoint_name in recorded]
        if len(result) == count:
            return result
    raise AllocationError(
        f"pattern {pattern.endpoint!r} / {pattern.serial or pattern.endpoint!r} with prefix "
        f"{pattern.prefix!r} keeps producing identities that were already allocated or used",
        hint="choose another prefix, or give the batch explicit identities",
    )


def _refuse_shared_template(conn: Connection, pattern: IdentityPattern) -> None:
    """Refuse, before allocating, a template whose values another prefix already drew.

    A template without ``{prefix}`` gives the same values under every prefix, while each
    prefix has a sequence of its own starting at 1: the new sequence would only meet
    values allocated already, and every row would end in 4002.

    Raises:
        PatternConflictError: naming the template to change.
    """
    templates = (("endpoint", pattern.endpoint), ("serial", pattern.serial or pattern.endpoint))
    free = [(label, template) for label, template in templates if not uses_prefix(template)]
    if not free:
        return
    start = conn.execute(select(sequences.c.next_value).where(sequences.c.name == pattern.pool)).scalar()
    identity = pattern.render(int(start or 1))
    for label, template in free:
        column = allocations.c.endpoint_name if label == "endpoint" else allocations.c.serial_number
        value = identity.endpoint_name if label == "endpoint" else identity.serial_number
        other = conn.execute(
            select(allocations.c.pool).where(
                column == value, allocations.c.pool != pattern.pool, allocations.c.pool.like("pattern:%")
            )
        ).scalar()
        if other is not None:
            raise PatternConflictError(
                f"the {label} pattern {template!r} has no {{prefix}}: every prefix draws the same values "
                f"from it, and {value!r}, next for prefix {pattern.prefix!r}, was already allocated "
                f"under another prefix ({other.removeprefix('pattern:').split('|', 1)[0]!r})",
                hint=f"put {{prefix}} in the {label} pattern (e.g. '{{prefix}}-{template}'), "
                "or keep the prefix its values were drawn with",
            )


def load_pool(conn: Connection, pool: str, identities: Sequence[Identity]) -> int:
    """Add identities to a CSV pool, skipping ones already in it; returns how many were added."""
    added = 0
    for start in range(0, len(identities), _IN_CHUNK):
        rows = [
            {"pool": pool, "endpoint_name": i.endpoint_name, "serial_number": i.serial_number}
            for i in identities[start : start + _IN_CHUNK]
        ]
        result = conn.execute(
            dialect_insert(conn, pool_entries)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(pool_entries.c.id)
        )
        added += len(result.all())
    return added


def claim_from_pool(conn: Connection, pool: str, count: int, station_id: str) -> list[Identity]:
    """Claim ``count`` unclaimed entries of ``pool`` in file order.

    ``FOR UPDATE SKIP LOCKED`` lets PostgreSQL stations claim different rows at once;
    on SQLite the whole transaction already holds the write lock.

    Raises:
        AllocationError: fewer than ``count`` unclaimed entries remain.
    """
    if count < 1:
        raise AllocationError(f"cannot allocate {count} identities")
    query = (
        select(pool_entries.c.id, pool_entries.c.endpoint_name, pool_entries.c.serial_number)
        .where(pool_entries.c.pool == pool, pool_entries.c.claimed_by.is_(None))
        .order_by(pool_entries.c.id)
        .limit(count)
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(query).all()
    if len(rows) < count:
        raise AllocationError(
            f"identity pool {pool!r} has only {len(rows)} unclaimed entries, {count} needed"
        )
    identities = [Identity(row.endpoint_name, row.serial_number) for row in rows]
    recorded = _record(conn, pool, identities, station_id)
    for identity in identities:
        if identity.endpoint_name not in recorded:
            raise AllocationError(
                f"identity {identity.endpoint_name}/{identity.serial_number} in pool {pool!r} "
                "was already allocated elsewhere"
            )
    now = datetime.now(UTC)
    ids = [row.id for row in rows]
    for start in range(0, len(ids), _IN_CHUNK):
        conn.execute(
            update(pool_entries)
            .where(pool_entries.c.id.in_(ids[start : start + _IN_CHUNK]))
            .values(claimed_by=station_id, claimed_at=now)
        )
    return identities

"""Identity reservations: no bundle for an endpoint name or serial number leaves twice.

An attempt reserves its identity in the transaction that records its write-ahead
``sending`` mark, with one ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` for the
whole group of marks: the ``reservations`` table's primary key (endpoint name) and unique
constraint (serial number) decide between stations, not a check in Python. An attempt
whose identity another attempt holds is refused there (4001) and its bundle never leaves.

A reservation lives as long as a device may hold the identity:

* kept when the attempt is verified (the provisioned identity stays reserved), and when
  it fails after its bundle may have reached the device;
* released when the attempt fails without its bundle having reached the device (no
  connection on any try), unless it was inherited from an earlier attempt;
* handed to the superseding attempt when a resume retries the attempt;
* taken over only by an attempt sent with ``--reprovision`` — never silently: a crashed
  station's reservation waits for that batch's resume.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, false, literal, or_, select, true, update

from provkit.registry.allocator import dialect_insert
from provkit.registry.schema import attempts, provisioned, reservations

_COLUMNS = ["endpoint_name", "serial_number", "attempt_id", "inherited", "reserved_at"]


def reserve(conn: Connection, attempt_ids: Collection[int], now: datetime) -> set[int]:
    """Reserve the identities of ``attempt_ids`` where nobody holds them.

    Returns the ids that hold their reservation afterwards (newly, or already before:
    inherited from the attempt they supersede, or marked sending again).
    """
    if not attempt_ids:
        return set()
    ids = sorted(attempt_ids)
    # In endpoint-name order: two stations inserting overlapping groups on PostgreSQL
    # then wait for each other in the same order instead of deadlocking.
    mine = _rows_of(ids, inherited=False, now=now).order_by(attempts.c.endpoint_name)
    rows = conn.execute(_insert(conn, mine).returning(reservations.c.attempt_id)).all()
    held = {int(row.attempt_id) for row in rows}
    if len(held) < len(ids):
        already = select(reservations.c.attempt_id).where(
            reservations.c.attempt_id.in_([i for i in ids if i not in held])
        )
        held |= {int(row.attempt_id) for row in conn.execute(already)}
    return held


def take_over(conn: Connection, attempt_id: int, now: datetime) -> bool:
    """``--reprovision``: reserve ``attempt_id``'s identity, removing whoever holds it.

    Returns whether the attempt holds the reservation afterwards (a station taking it at
    the same moment may win).
    """
    me = conn.execute(
        select(attempts.c.endpoint_name, attempts.c.serial_number).where(attempts.c.id == attempt_id)
    ).one()
    conn.execute(
        reservations.delete().where(
            or_(
                reservations.c.endpoint_name == me.endpoint_name,
                reservations.c.serial_number == me.serial_number,
            ),
            reservations.c.attempt_id != attempt_id,
        )
    )
    # Inherited: the device of the attempt it was taken from may hold the identity.
    conn.execute(_insert(conn, _rows_of([attempt_id], inherited=True, now=now)))
    found = conn.execute(select(reservations.c.attempt_id).where(reservations.c.attempt_id == attempt_id))
    return found.first() is not None


def refusals(conn: Connection, attempt_ids: Sequence[int]) -> dict[int, str]:
    """Why each of ``attempt_ids`` could not reserve its identity: who holds it, and how it is freed."""
    if not attempt_ids:
        return {}
    me = attempts.alias("me")
    holder = attempts.alias("holder")
    query = (
        select(
            me.c.id.label("refused"),
            me.c.endpoint_name,
            me.c.serial_number,
            holder.c.id,
            holder.c.station_id,
            holder.c.batch_id,
            holder.c.state,
            provisioned.c.attempt_id.label("provisioned"),
        )
        .select_from(me)
        .join(
            reservations,
            or_(
                reservations.c.endpoint_name == me.c.endpoint_name,
                reservations.c.serial_number == me.c.serial_number,
            ),
        )
        .join(holder, holder.c.id == reservations.c.attempt_id)
        .outerjoin(provisioned, provisioned.c.attempt_id == holder.c.id)
        .where(me.c.id.in_(list(attempt_ids)))
        .order_by(me.c.id, holder.c.id)
    )
    why: dict[int, str] = {}
    for row in conn.execute(query):
        if row.refused in why:
            continue
        identity = f"{row.endpoint_name} / {row.serial_number}"
        if row.provisioned is not None:
            why[row.refused] = (
                f"{identity} is already provisioned (attempt {row.id}, station {row.station_id}); "
                "use --reprovision to replace it"
            )
        else:
            why[row.refused] = (
                f"{identity} is reserved by attempt {row.id} of station {row.station_id} "
                f"({'' if row.batch_id is None else f'batch {row.batch_id}, '}{row.state}): "
                "its device may hold a bundle for it. "
                "The reservation is freed when that batch is run again (resume), "
                "or taken over with --reprovision"
            )
    for refused in attempt_ids:  # the holder let go between the insert and this query
        why.setdefault(refused, "identity reserved by another attempt meanwhile; run the batch again")
    return why


def release(conn: Connection, attempt_ids: Collection[int]) -> None:
    """Free the reservations the attempts took themselves (an inherited one is kept)."""
    if attempt_ids:
        conn.execute(
            reservations.delete().where(
                and_(reservations.c.attempt_id.in_(sorted(attempt_ids)), reservations.c.inherited == false())
            )
        )


def hand_over(conn: Connection, links: Sequence[tuple[int, int]]) -> None:
    """Pass each ``(old, new)`` attempt's reservation, if it still has one, to its successor."""
    if links:
        conn.execute(
            update(reservations)
            .where(reservations.c.attempt_id == bindparam("_old"))
            .values(attempt_id=bindparam("_new"), inherited=True),
            [{"_old": old, "_new": new} for old, new in links],
        )


def keep(conn: Connection, attempt_ids: Collection[int], now: datetime) -> None:
    """A verified attempt keeps its identity reserved (taken now if it had none)."""
    if attempt_ids:
        conn.execute(_insert(conn, _rows_of(sorted(attempt_ids), inherited=True, now=now)))


def _rows_of(attempt_ids: Collection[int], *, inherited: bool, now: datetime) -> Select[Any]:
    """The reservation rows of ``attempt_ids``: their identity, id, ``inherited`` and ``now``."""
    return select(
        attempts.c.endpoint_name,
        attempts.c.serial_number,
        attempts.c.id,
        true() if inherited else false(),
        literal(now),
    ).where(attempts.c.id.in_(list(attempt_ids)))


def _insert(conn: Connection, rows: Select[Any]) -> Any:
    """``INSERT INTO reservations … SELECT … ON CONFLICT DO NOTHING``: a held identity stays held."""
    return dialect_insert(conn, reservations).from_select(_COLUMNS, rows).on_conflict_do_nothing()

"""Read-only registry queries, each run on a connection the caller's transaction owns.

Every query a user or a batch runs against a registry of millions is built here by a
``*_query`` function and answered from an index (the tests EXPLAIN each one on SQLite
and PostgreSQL): ``show`` by endpoint name, serial number, certificate fingerprint or
id; ``list`` one page at a time (keyset pagination: ``WHERE id > last seen ORDER BY id
LIMIT n``, as fast on page 10,000 as on page 1). ``stats`` reads the counts the
database keeps (:mod:`provkit.registry.counts`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, RowMapping, Select, func, or_, select

from provkit.registry import counts
from provkit.registry.records import Attempt, RegistryStats
from provkit.registry.schema import AttemptState, attempts, provisioned, reservations

_IN_CHUNK = 500
"""Values per ``IN`` list: well under every database's bound-parameter limit."""

LISTED: Final = tuple(c for c in attempts.c if c.name not in {"response", "device_cert"})
"""Columns of a listed or shown attempt: all but the device's raw answer and certificate
(``get_attempt`` has both)."""
WORKING: Final = tuple(c for c in attempts.c if c.name != "device_cert")
"""Columns a batch works with: all but the device certificate, which only a device's page
reads (a batch of 100,000 would otherwise hold 50 MB of certificates it never looks at)."""

_HEX64: Final = re.compile(r"[0-9a-f]{64}")


def fingerprint_of(key: str) -> str | None:
    """The certificate SHA-256 fingerprint ``key`` names, as the registry stores it, or ``None``.

    Accepts 64 hex digits with or without colons, either case, and an enrollment id
    (``A-`` + colon-separated SHA-256).
    """
    text = key.strip()
    if text[:2] in ("A-", "a-"):
        text = text[2:]
    text = text.replace(":", "").lower()
    return text if _HEX64.fullmatch(text) else None


def get_attempt(conn: Connection, attempt_id: int) -> Attempt | None:
    """The attempt with ``attempt_id`` (with its raw answer), or ``None``."""
    row = conn.execute(select(attempts).where(attempts.c.id == attempt_id)).mappings().first()
    return None if row is None else Attempt.from_row(row)


def batch_attempts(conn: Connection, batch_id: str, slots: Sequence[str] | None = None) -> dict[str, Attempt]:
    """The latest attempt of every slot of ``batch_id``, or of ``slots`` only.

    Ids grow, so the last row of a slot wins. With ``slots`` it is one index range per
    slot (``batch_id, slot``): a batch works through its rows a chunk at a time,
    whatever their number.
    """
    if slots is None:
        rows = conn.execute(
            select(*WORKING).where(attempts.c.batch_id == batch_id).order_by(attempts.c.id)
        ).mappings()
        return {str(row["slot"]): Attempt.from_row(row) for row in rows}
    found: list[RowMapping] = []
    for start in range(0, len(slots), _IN_CHUNK):
        # No ORDER BY and no other condition: either would let SQLite's planner walk the
        # whole batch on the batch + id (or batch + state) index instead of probing
        # batch + slot once per slot. The few rows are put in id order here.
        query = select(*WORKING).where(
            attempts.c.batch_id == batch_id, attempts.c.slot.in_(slots[start : start + _IN_CHUNK])
        )
        found += conn.execute(query).mappings().all()
    found.sort(key=lambda row: int(row["id"]))
    return {str(row["slot"]): Attempt.from_row(row) for row in found}


def batch_state_count(
    conn: Connection, batch_id: str, state: AttemptState, slots: Sequence[str] | None = None
) -> int:
    """How many of ``batch_id``'s attempts (of ``slots`` only, if given) are in ``state``.

    Counted on an index: batch + state for the whole batch; for given slots, their
    attempts are found by batch + slot and counted here.
    """
    if slots is None:
        query = select(func.count()).where(attempts.c.batch_id == batch_id, attempts.c.state == state)
        return int(conn.execute(query).scalar_one())
    total = 0
    for start in range(0, len(slots), _IN_CHUNK):
        # The states are counted here: a state condition in SQL would let SQLite's planner
        # walk the batch + state index (every such attempt of the batch) instead.
        query = select(attempts.c.state).where(
            attempts.c.batch_id == batch_id, attempts.c.slot.in_(slots[start : start + _IN_CHUNK])
        )
        total += sum(1 for row in conn.execute(query) if row.state == state)
    return total


def lookup_query(key: str) -> Select[Any]:
    """Attempts whose endpoint name, serial number, certificate fingerprint or id is ``key``."""
    matches: list[ColumnElement[bool]] = [attempts.c.endpoint_name == key, attempts.c.serial_number == key]
    fingerprint = fingerprint_of(key)
    if fingerprint is not None:
        matches.append(attempts.c.device_cert_sha256 == fingerprint)
    if key.isascii() and key.isdigit() and len(key) < 19:  # an attempt id (a 64-bit integer)
        matches.append(attempts.c.id == int(key))
    return select(*LISTED).where(or_(*matches)).order_by(attempts.c.id)


def lookup(conn: Connection, key: str) -> list[Attempt]:
    """Every attempt ``key`` names (see :func:`lookup_query`), oldest first."""
    return [Attempt.from_row(row) for row in conn.execute(lookup_query(key)).mappings()]


@dataclass(frozen=True, slots=True)
class PageFilter:
    """Which attempts a page of ``list`` holds, and where it starts.

    Attributes:
        endpoint_name: only this endpoint name's attempts.
        state: only attempts in this state.
        batch_id: only this batch's attempts.
        provisioned_only: only the attempts currently holding a provisioned identity.
        after: only ids above this one (the last id of the previous page, oldest first).
        before: only ids below this one (the last id of the previous page, newest first).
        newest: newest first instead of oldest first.
        limit: at most this many (``None``: all, for small filtered sets).
    """

    endpoint_name: str | None = None
    state: AttemptState | None = None
    batch_id: str | None = None
    provisioned_only: bool = False
    after: int | None = None
    before: int | None = None
    newest: bool = False
    limit: int | None = None


def page_query(page: PageFilter) -> Select[Any]:
    """The ``list`` query for ``page``: keyset pagination in id order, from an index.

    With ``provisioned_only`` the walk goes along ``provisioned``'s attempt ids, joining
    each attempt by its primary key.
    """
    if page.provisioned_only:
        key = provisioned.c.attempt_id
        query = select(*LISTED).select_from(provisioned.join(attempts, attempts.c.id == key))
    else:
        key = attempts.c.id
        query = select(*LISTED)
    if page.endpoint_name is not None:
        query = query.where(attempts.c.endpoint_name == page.endpoint_name)
    if page.state is not None:
        query = query.where(attempts.c.state == page.state.value)
    if page.batch_id is not None:
        query = query.where(attempts.c.batch_id == page.batch_id)
    # With provisioned_only the bound is given on both sides of the join: a planner then
    # starts both index walks at the cursor.
    for column in {key, attempts.c.id}:
        if page.after is not None:
            query = query.where(column > page.after)
        if page.before is not None:
            query = query.where(column < page.before)
    query = query.order_by(key.desc() if page.newest else key)
    return query if page.limit is None else query.limit(page.limit)


def find(conn: Connection, page: PageFilter) -> list[Attempt]:
    """The attempts of one ``list`` page (see :class:`PageFilter`)."""
    return [Attempt.from_row(row) for row in conn.execute(page_query(page)).mappings()]


def provisioned_holders(
    conn: Connection, endpoint_names: Sequence[str], serial_numbers: Sequence[str]
) -> list[Attempt]:
    """Attempts currently holding any of these endpoint names or serial numbers."""
    found: dict[int, Attempt] = {}
    for start in range(0, max(len(endpoint_names), len(serial_numbers)), _IN_CHUNK):
        query = (
            select(*WORKING)
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
            select(*WORKING)
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
    """Counts of attempts by state and of provisioned devices by station, from the kept counts.

    A device is provisioned exactly while its attempt is ``verified``: the verdict that
    claims the identity in ``provisioned`` sets the state in the same transaction, and
    superseding the holder changes both together. So the counts per station and state
    answer all of it.
    """
    by_state: dict[str, int] = {}
    by_station: dict[str, int] = {}
    for station, state, count in conn.execute(counts.counts_query()).all():
        by_state[str(state)] = by_state.get(str(state), 0) + int(count)
        if state == AttemptState.VERIFIED.value:
            by_station[str(station)] = int(count)
    return RegistryStats(
        attempts=sum(by_state.values()),
        provisioned=sum(by_station.values()),
        by_state=dict(sorted(by_state.items())),
        by_station=dict(sorted(by_station.items())),
    )

"""Writes of attempts: recording them, state changes many per transaction, the provisioned claim.

A device counts as provisioned when its attempt holds its endpoint name and serial
number in the ``provisioned`` table. The claim is one ``INSERT … SELECT … ON CONFLICT
DO NOTHING``: the database's unique constraints decide, so two stations racing for an
identity cannot both win, whether one or a hundred attempts are claimed at once. The
``sending`` marks reserve their identities the same way, before any bundle leaves
(:mod:`provkit.registry.reservations`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, literal, or_, select, update

from provkit.errors import DuplicateIdentityError
from provkit.registry import reservations
from provkit.registry.allocator import dialect_insert
from provkit.registry.records import NewAttempt
from provkit.registry.schema import AttemptState, attempts, provisioned


@dataclass(frozen=True, slots=True)
class StateChange:
    """One attempt's move to a new state, for :meth:`~provkit.registry.Registry.apply_changes`.

    Attributes:
        attempt_id: the attempt.
        state: the new state; ``SENDING`` also counts a try and first reserves the
            identity, ``VERIFIED`` first claims it in ``provisioned``.
        values: other ``attempts`` columns to store with the state.
        reprovision: ``SENDING``: take the reservation over from whoever holds it;
            ``VERIFIED``: supersede the holder (settled alone by the caller).
        release: ``FAILED``: the bundle never reached the device, so the reservation
            the attempt took is freed.
    """

    attempt_id: int
    state: AttemptState
    values: Mapping[str, Any] = field(default_factory=dict)
    reprovision: bool = False
    release: bool = False


def insert_attempts(
    conn: Connection, batch_id: str | None, station_id: str, items: Sequence[NewAttempt], now: datetime
) -> list[int]:
    """Insert new attempts in state ``allocated``; returns their ids in the order of ``items``.

    One multi-row ``INSERT … RETURNING`` for all of them, then one update linking each
    superseded attempt to its successor.
    """
    if not items:
        return []
    rows = [
        {
            "batch_id": batch_id,
            "slot": item.slot,
            "address": item.address,
            "endpoint_name": item.endpoint_name,
            "serial_number": item.serial_number,
            "station_id": station_id,
            "key_mode": item.key_mode,
            "state": AttemptState.ALLOCATED.value,
            "tries": 0,
            "supersedes_id": item.supersedes_id,
            "created_at": now,
            "updated_at": now,
        }
        for item in items
    ]
    result = conn.execute(attempts.insert().returning(attempts.c.id, sort_by_parameter_order=True), rows)
    ids = [int(row.id) for row in result]
    links = [
        {"_old": item.supersedes_id, "_new": new_id}
        for item, new_id in zip(items, ids, strict=True)
        if item.supersedes_id is not None
    ]
    if links:
        conn.execute(
            update(attempts)
            .where(attempts.c.id == bindparam("_old"))
            .values(superseded_by_id=bindparam("_new"), updated_at=now),
            links,
        )
        reservations.hand_over(conn, [(link["_old"], link["_new"]) for link in links])
    return ids


def claim_identities(conn: Connection, attempt_ids: Collection[int], now: datetime) -> set[int]:
    """Insert the identities of ``attempt_ids`` into ``provisioned`` where nobody holds them.

    Returns the ids that now hold their identity. An id left out wrote nothing: its
    endpoint name or serial number is taken (possibly by itself, verified before).
    """
    if not attempt_ids:
        return set()
    mine = select(attempts.c.endpoint_name, attempts.c.serial_number, attempts.c.id, literal(now)).where(
        attempts.c.id.in_(sorted(attempt_ids))
    )
    rows = conn.execute(
        dialect_insert(conn, provisioned)
        .from_select(["endpoint_name", "serial_number", "attempt_id", "provisioned_at"], mine)
        .on_conflict_do_nothing()
        .returning(provisioned.c.attempt_id)
    ).all()
    return {int(row.attempt_id) for row in rows}


def apply_changes(conn: Connection, changes: Sequence[StateChange], now: datetime) -> list[bool]:
    """Apply ``changes`` on ``conn`` (one statement per kind of change, not per attempt).

    Returns, per change, whether it was applied. A ``SENDING`` change whose identity
    another attempt has reserved is refused: it is recorded as failed with 4001 and the
    holder's description instead, and its bundle must not be sent. A ``VERIFIED`` change
    whose identity could not be claimed writes nothing, and the caller settles it alone
    (:func:`settle_verified`) to learn why.
    """
    # Released first: an identity freed in this group can be reserved in it.
    reservations.release(
        conn, [c.attempt_id for c in changes if c.state is AttemptState.FAILED and c.release]
    )
    refused = _reserve_sending(conn, [c for c in changes if c.state is AttemptState.SENDING], now)
    verdicts = [c.attempt_id for c in changes if c.state is AttemptState.VERIFIED]
    claimed = claim_identities(conn, verdicts, now)
    reservations.keep(conn, claimed, now)
    applied = [
        c.attempt_id in claimed if c.state is AttemptState.VERIFIED else c.attempt_id not in refused
        for c in changes
    ]
    groups: dict[tuple[AttemptState, tuple[str, ...]], list[dict[str, Any]]] = {}
    for change, ok in zip(changes, applied, strict=True):
        if not ok:
            continue
        values = dict(change.values)
        if change.state is AttemptState.VERIFIED:
            values["provisioned_at"] = now
        key = (change.state, tuple(sorted(values)))
        groups.setdefault(key, []).append({**values, "_id": change.attempt_id})
    for (state, columns), params in groups.items():
        base: dict[str, Any] = {"state": state.value, "updated_at": now}
        if state is AttemptState.SENDING:
            base["tries"] = attempts.c.tries + 1
        if not columns:  # e.g. the sending marks: one statement for the whole group
            ids = [p["_id"] for p in params]
            conn.execute(update(attempts).where(attempts.c.id.in_(ids)).values(base))
        else:
            sets = {c: bindparam(c) for c in columns} | base
            conn.execute(update(attempts).where(attempts.c.id == bindparam("_id")).values(sets), params)
    return applied


def _reserve_sending(conn: Connection, sending: Sequence[StateChange], now: datetime) -> set[int]:
    """Reserve the identities of the ``sending`` marks; returns the ids refused (recorded as failed)."""
    if not sending:
        return set()
    held = reservations.reserve(conn, [c.attempt_id for c in sending], now)
    missing = [c for c in sending if c.attempt_id not in held]
    refused = [
        c.attempt_id
        for c in missing
        if not (c.reprovision and reservations.take_over(conn, c.attempt_id, now))
    ]
    if refused:
        why = reservations.refusals(conn, refused)
        conn.execute(
            update(attempts)
            .where(attempts.c.id == bindparam("_id"))
            .values(
                state=AttemptState.FAILED.value,
                error_code=DuplicateIdentityError.default_code,
                error_message=bindparam("_why"),
                updated_at=now,
            ),
            [{"_id": attempt_id, "_why": why[attempt_id]} for attempt_id in refused],
        )
    return set(refused)


def settle_verified(
    conn: Connection, attempt_id: int, now: datetime, *, reprovision: bool, values: dict[str, Any]
) -> str | None:
    """Record ``attempt_id`` as provisioned, looking at who holds its identity.

    Returns ``None`` when the attempt holds its identity afterwards (newly, or already
    before: verifying twice is harmless), or why it was refused (without
    ``reprovision``, another attempt holds the endpoint name or serial number). With
    ``reprovision`` the holders are superseded. Nothing is written on refusal.
    """
    if not reprovision and claim_identities(conn, [attempt_id], now):
        reservations.keep(conn, [attempt_id], now)
        _set_verified(conn, attempt_id, now, values)
        return None
    me = conn.execute(
        select(attempts.c.endpoint_name, attempts.c.serial_number).where(attempts.c.id == attempt_id)
    ).one()
    holders = conn.execute(
        select(provisioned.c.endpoint_name, provisioned.c.attempt_id)
        .where(
            or_(
                provisioned.c.endpoint_name == me.endpoint_name,
                provisioned.c.serial_number == me.serial_number,
            )
        )
        .with_for_update()
    ).all()
    others = [h for h in holders if h.attempt_id != attempt_id]
    if others and not reprovision:
        return f"held by attempt {others[0].attempt_id}"
    for holder in others:
        conn.execute(provisioned.delete().where(provisioned.c.endpoint_name == holder.endpoint_name))
        conn.execute(
            update(attempts)
            .where(attempts.c.id == holder.attempt_id)
            .values(state=AttemptState.SUPERSEDED.value, superseded_by_id=attempt_id, updated_at=now)
        )
    if reprovision:  # the identity is this attempt's now, on the line as in provisioned
        reservations.take_over(conn, attempt_id, now)
    if len(others) < len(holders):
        return None
    conn.execute(
        provisioned.insert().values(
            endpoint_name=me.endpoint_name,
            serial_number=me.serial_number,
            attempt_id=attempt_id,
            provisioned_at=now,
        )
    )
    _set_verified(conn, attempt_id, now, values)
    return None


def _set_verified(conn: Connection, attempt_id: int, now: datetime, values: dict[str, Any]) -> None:
    conn.execute(
        update(attempts)
        .where(attempts.c.id == attempt_id)
        .values(state=AttemptState.VERIFIED.value, provisioned_at=now, updated_at=now, **values)
    )

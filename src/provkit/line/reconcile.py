"""Giving every unfinished row of a batch a live attempt (the resume rules).

See :mod:`provkit.line.batch` for the states. Rows without an attempt get a fresh one
(their identity given or allocated); an attempt left ``sending`` is closed as failed
and superseded; a failed one is retried unless its identity is provisioned elsewhere
or still reserved by another attempt (error 4001; ``--reprovision`` takes it over).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from provkit.errors import AllocationError, DuplicateIdentityError, PatternConflictError
from provkit.line.context import BatchContext
from provkit.line.devices import DeviceRow
from provkit.registry import Attempt, AttemptState, NewAttempt, StateChange

_LOST: Final = "interrupted after sending: response lost; superseded by a new attempt"


def reconcile(ctx: BatchContext, rows: Sequence[DeviceRow]) -> dict[str, Attempt]:
    """Record the attempts every unfinished row of ``rows`` needs, and refuse those that would clash.

    Attempts not sent yet, new or waiting from an earlier step (``batch prepare`` now,
    ``batch inject`` later), whose identity another attempt holds by now are failed
    with 4001 before any bundle leaves (unless ``reprovision``). A batch calls this a
    chunk of rows at a time; it returns the newest attempt of each of those rows after
    the changes (empty when every row is verified: a resumed batch passes over its
    finished chunks with one count each).
    """
    slots = [row.slot for row in rows]
    # A verified attempt is always its row's newest (only another attempt superseding it
    # changes its state), so a full count means nothing in this chunk is left to do.
    if ctx.registry.batch_state_count(ctx.batch_id, AttemptState.VERIFIED, slots) == len(slots):
        return {}
    latest = ctx.latest(slots)
    fresh: list[DeviceRow] = []
    items: list[NewAttempt] = []
    interrupted: list[StateChange] = []
    refused: list[tuple[DeviceRow, Attempt]] = []
    for row in rows:
        attempt = latest.get(row.slot)
        if attempt is None:
            fresh.append(row)
        elif attempt.state is AttemptState.SENDING:
            interrupted.append(
                StateChange(attempt.id, AttemptState.FAILED, {"error_code": None, "error_message": _LOST})
            )
            items.append(_retry(row, attempt))
        elif attempt.state is AttemptState.FAILED and (
            ctx.options.reprovision or attempt.error_code != DuplicateIdentityError.default_code
        ):
            items.append(_retry(row, attempt))
        elif attempt.state is AttemptState.FAILED:
            refused.append((row, attempt))
    items += [_retry(row, attempt) for row, attempt in _freed(ctx, refused)]
    # Closed before their successors are recorded: killed in between, they are retried.
    ctx.registry.apply_changes(interrupted)
    items += _new_attempts(ctx, fresh)
    ids = ctx.registry.record_attempts(ctx.batch_id, items) if items else []
    refused_now = False
    if not ctx.options.reprovision:
        unsent = [(i, item.endpoint_name, item.serial_number) for i, item in zip(ids, items, strict=True)]
        unsent += [
            (a.id, a.endpoint_name, a.serial_number)
            for a in latest.values()
            if a.state in (AttemptState.ALLOCATED, AttemptState.PREPARED)
        ]
        refused_now = _refuse_provisioned(ctx, unsent)
    if not (items or interrupted or refused_now):
        return latest  # nothing changed: the view read above is the registry's
    return ctx.latest(slots)


def _freed(ctx: BatchContext, refused: list[tuple[DeviceRow, Attempt]]) -> list[tuple[DeviceRow, Attempt]]:
    """The attempts refused as duplicates whose identity nobody holds any more.

    The holder failed before its bundle reached its device, so they are retried like any
    failure.
    """
    if not refused:
        return []
    held = ctx.registry.reserved([a.endpoint_name for _, a in refused], [a.serial_number for _, a in refused])
    return [
        (row, attempt)
        for row, attempt in refused
        if attempt.endpoint_name not in held and attempt.serial_number not in held
    ]


def _refuse_provisioned(ctx: BatchContext, unsent: list[tuple[int, str, str]]) -> bool:
    """Fail, in one transaction, the unsent attempts whose identity another attempt holds.

    Returns whether any was failed.
    """
    if not unsent:
        return False
    holders = ctx.registry.provisioned_holders([u[1] for u in unsent], [u[2] for u in unsent])
    by_value = {h.endpoint_name: h for h in holders} | {h.serial_number: h for h in holders}
    refusals = []
    for attempt_id, endpoint, serial in unsent:
        owner = by_value.get(endpoint) or by_value.get(serial)
        if owner is not None and owner.id != attempt_id:
            message = (
                f"{owner.endpoint_name} / {owner.serial_number} is already provisioned "
                f"(attempt {owner.id}); use --reprovision to replace it"
            )
            values = {"error_code": DuplicateIdentityError.default_code, "error_message": message}
            refusals.append(StateChange(attempt_id, AttemptState.FAILED, values))
    ctx.registry.apply_changes(refusals)
    return bool(refusals)


def _retry(row: DeviceRow, attempt: Attempt) -> NewAttempt:
    return NewAttempt(
        attempt.endpoint_name, attempt.serial_number, row.slot, row.address, supersedes_id=attempt.id
    )


def _new_attempts(ctx: BatchContext, rows: list[DeviceRow]) -> list[NewAttempt]:
    given = [r for r in rows if r.endpoint_name is not None and r.serial_number is not None]
    items = [NewAttempt(r.endpoint_name or "", r.serial_number or "", r.slot, r.address) for r in given]
    needing = [r for r in rows if r.endpoint_name is None]
    if not needing:
        return items
    try:
        if ctx.options.pool is not None:
            identities = ctx.registry.allocate_from_pool(ctx.options.pool, len(needing))
        elif ctx.options.pattern is not None:
            # Identities given in this batch are not all in the registry yet (later chunks'
            # rows have no attempt): skipped explicitly.
            identities = ctx.registry.allocate(ctx.options.pattern, len(needing), ctx.given_identities())
        else:
            raise AllocationError(
                "row has no endpoint_name/serial_number and no identity pattern or pool was given"
            )
    except PatternConflictError:
        raise  # the same for every row: the batch stops and says which pattern to change
    except AllocationError as exc:
        for row in needing:
            ctx.note(row.slot, exc.code, f"line {row.line}: {exc.message}")
        return items
    items += [
        NewAttempt(i.endpoint_name, i.serial_number, r.slot, r.address)
        for r, i in zip(needing, identities, strict=True)
    ]
    return items

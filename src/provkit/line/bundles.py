"""The prepare step of a batch: bundles for every attempt that needs one, recorded in groups."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Final

from provkit.errors import BatchError, RegistryError
from provkit.line.context import BatchContext, token_failure
from provkit.line.inject import BY_DEVICE
from provkit.line.layout import write_atomic
from provkit.line.prepare import PreparedBundle, PrepareJob, prepare_many
from provkit.registry import Attempt, AttemptState, StateChange

FLUSH_EVERY: Final = 64
"""Prepared bundles recorded per registry transaction."""


def bundle_ok(ctx: BatchContext, attempt: Attempt) -> bool:
    """Whether the attempt's bundle file is there and is the one recorded (SHA-256)."""
    path = ctx.layout.bundle(attempt.id, attempt.endpoint_name)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == attempt.bundle_sha256
    except OSError:
        return False


Recorded = Callable[[list[Attempt]], None]
"""Called with attempts whose bundles were just recorded as prepared (now in that state)."""


def needing_bundles(ctx: BatchContext, latest: dict[str, Attempt]) -> list[Attempt]:
    """Allocated attempts, and prepared ones whose bundle file is gone or altered.

    A ``by_device`` bundle prepared before its session id was recorded with it (an older
    provkit) is prepared again too: its certificate message could not be built.
    """
    return [
        a
        for a in latest.values()
        if a.state is AttemptState.ALLOCATED
        or (a.state is AttemptState.PREPARED and not (bundle_ok(ctx, a) and _session_known(a)))
    ]


def _session_known(attempt: Attempt) -> bool:
    return attempt.key_mode != BY_DEVICE or attempt.session_id is not None


def prepare_pending(ctx: BatchContext) -> None:
    """Prepare the bundles of every attempt that needs one (see :func:`needing_bundles`)."""
    prepare_bundles(ctx, needing_bundles(ctx, ctx.latest()))


def prepare_bundles(ctx: BatchContext, todo: list[Attempt], on_recorded: Recorded | None = None) -> None:
    """Prepare ``todo``'s bundles over the worker processes, recording them in groups.

    Each group is committed as ``prepared`` before ``on_recorded`` hears of it, so a
    caller that injects them right away keeps the journal's order of states.
    """
    ctx.progress.start("prepare", len(todo))
    if not todo:
        return
    by_id = {a.id: a for a in todo}
    keys = {row.slot: row.device_keys_location for row in ctx.devices.rows if row.device_keys_location}
    seal_key = ctx.seal_key()  # sealed copies are written by the workers, next to the bundles
    jobs = [
        PrepareJob(
            a.id,
            a.endpoint_name,
            a.serial_number,
            ctx.layout.bundle(a.id, a.endpoint_name),
            Path(keys[a.slot]) if a.slot in keys else None,
            seal_to=seal_key,
        )
        for a in todo
    ]
    options = ctx.options
    results = prepare_many(
        jobs,
        home_dir=options.home_dir,
        config_file=options.config_file,
        workers=options.workers,
        ca_key=options.ca_key,
    )
    done: list[dict[str, Any]] = []
    with contextlib.closing(results):
        for result in results:
            halt = token_failure(result.error_code, result.error_message)
            if halt is not None:
                # The CA key's token cannot sign: stop here. Bundles signed so far are recorded
                # below; this attempt and the rest stay allocated for the next run.
                ctx.halt(halt)
                break
            attempt = by_id[result.attempt_id]
            ctx.guard(attempt, partial(_store_bundle, ctx, attempt, result, done))
            ctx.progress.advance("prepare")
            if len(done) >= FLUSH_EVERY:
                _flush_prepared(ctx, done, by_id, on_recorded)
    _flush_prepared(ctx, done, by_id, on_recorded)


def _flush_prepared(
    ctx: BatchContext, done: list[dict[str, Any]], by_id: dict[int, Attempt], on_recorded: Recorded | None
) -> None:
    """Record a group of prepared bundles in one transaction."""
    if not done:
        return
    try:
        ctx.registry.apply_changes(
            [
                StateChange(
                    r["id"], AttemptState.PREPARED, {k: v for k, v in r.items() if k not in ("id", "slot")}
                )
                for r in done
            ]
        )
    except RegistryError as exc:
        for row in done:
            ctx.note(row["slot"], exc.code, f"registry unavailable, bundle not recorded: {exc}")
    else:
        if on_recorded is not None:
            columns = [k for k in done[0] if k not in ("id", "slot")]
            on_recorded(
                [
                    replace(by_id[r["id"]], state=AttemptState.PREPARED, **{c: r[c] for c in columns})
                    for r in done
                ]
            )
    done.clear()


def _store_bundle(
    ctx: BatchContext, attempt: Attempt, result: PreparedBundle, done: list[dict[str, Any]]
) -> None:
    if not result.ok:
        ctx.registry.mark_failed(attempt.id, result.error_code, f"preparation failed: {result.error_message}")
        return
    path = ctx.layout.bundle(attempt.id, attempt.endpoint_name)
    if result.written_to is None:
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(path, result.config_data, durable=False)
        except OSError as exc:
            ctx.registry.mark_failed(attempt.id, BatchError.default_code, f"cannot write {path}: {exc}")
            return
    done.append(
        {
            "id": attempt.id,
            "slot": attempt.slot,
            "bundle_sha256": result.sha256,
            "key_mode": result.key_mode,
            "device_cert_sha256": result.device_cert_sha256,
            "device_cert_serial": result.device_cert_serial,
            "ca_sha256": result.ca_sha256,
            "ca_key": result.ca_key,
            "device_cert": result.device_cert,
            "warnings": "\n".join(result.warnings),
            "enrollment_id": result.enrollment_id,
            "session_id": result.session_id,
        }
    )

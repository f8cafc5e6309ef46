"""The prepare step of a batch: bundles for every attempt that needs one, recorded in groups."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Final, Self

from provkit.errors import BatchError, RegistryError
from provkit.line.context import BatchContext, token_failure
from provkit.line.inject import BY_DEVICE
from provkit.line.layout import write_atomic
from provkit.line.prepare import PreparedBundle, PrepareJob, PreparePool, Preparer, default_workers
from provkit.registry import Attempt, AttemptState, StateChange

FLUSH_EVERY: Final = 64
"""Prepared bundles recorded per registry transaction."""

_IN_PROCESS_BELOW: Final = 64
"""With one worker, batches of fewer rows are prepared in this process."""


def bundle_ok(ctx: BatchContext, attempt: Attempt) -> bool:
    """Whether the attempt's bundle file is there and is the one recorded (SHA-256)."""
    path = ctx.layout.bundle(attempt.id, attempt.endpoint_name)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == attempt.bundle_sha256
    except OSError:
        return False


Recorded = Callable[[list[Attempt]], None]
"""Called with attempts whose bundles were just recorded as prepared (now in that state)."""


def needing_bundles(ctx: BatchContext, latest: Mapping[str, Attempt]) -> list[Attempt]:
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


@dataclass(slots=True)
class _Pending:
    """One chunk's bundles, handed to the workers and not yet recorded."""

    by_id: dict[int, Attempt]
    results: Iterator[PreparedBundle]


class BundleMaker:
    """Prepares a step's bundles chunk after chunk over one set of worker processes.

    :meth:`take` hands a chunk's jobs to the workers at once, then records the chunk
    taken before it (its results in order, in groups): the workers stay a chunk ahead
    and never wait for the registry. :meth:`finish` records the last chunk. With one
    worker and a small batch the bundles are made in this process (no pool start-up).

    Args:
        ctx: the batch.
        on_recorded: hears of each group once it is committed as ``prepared`` (the
            send step hands them to its threads).
    """

    def __init__(self, ctx: BatchContext, on_recorded: Recorded | None = None) -> None:
        self._ctx = ctx
        self._on_recorded = on_recorded
        self._pool: PreparePool | None = None
        self._here: Preparer | None = None
        self._keys: dict[str, str] | None = None
        self._seal_key: bytes | None = None
        self._waiting: _Pending | None = None

    def take(self, todo: list[Attempt]) -> None:
        """Start preparing ``todo``'s bundles, then record those of the chunk taken before.

        Raises:
            BatchError: the archive key is unusable.
        """
        following = self._submit(todo)
        self.finish()
        self._waiting = following

    def finish(self) -> None:
        """Record the bundles of the chunk taken last."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._record(waiting)

    def _submit(self, todo: list[Attempt]) -> _Pending:
        ctx = self._ctx
        if not todo:
            return _Pending({}, iter(()))
        if self._keys is None:
            # externally_supplied key mode: where each row's own key lies (usually none).
            rows = ctx.devices.rows
            self._keys = {row.slot: row.device_keys_location for row in rows if row.device_keys_location}
            self._seal_key = ctx.seal_key()  # sealed copies are written by the workers, next to the bundles
        jobs = [
            PrepareJob(
                a.id,
                a.endpoint_name,
                a.serial_number,
                ctx.layout.bundle(a.id, a.endpoint_name),
                Path(self._keys[a.slot]) if a.slot in self._keys else None,
                seal_to=self._seal_key,
            )
            for a in todo
        ]
        return _Pending({a.id: a for a in todo}, self._results(jobs))

    def _results(self, jobs: list[PrepareJob]) -> Iterator[PreparedBundle]:
        options = self._ctx.options
        workers = options.workers or default_workers()
        if workers == 1 and len(self._ctx.devices.rows) < _IN_PROCESS_BELOW:
            if self._here is None:
                self._here = Preparer(options.home_dir, options.config_file, options.ca_key)
            return (self._here.prepare(job) for job in jobs)
        if self._pool is None:
            self._pool = PreparePool(workers, options.home_dir, options.config_file, options.ca_key)
        return self._pool.map(jobs)

    def _record(self, pending: _Pending) -> None:
        """Record ``pending``'s bundles as they come, ``FLUSH_EVERY`` per transaction.

        Each group is committed as ``prepared`` before ``on_recorded`` hears of it, so a
        caller that injects them right away keeps the journal's order of states. Once the
        batch is halted nothing more is recorded (those attempts stay allocated).
        """
        ctx, on_recorded = self._ctx, self._on_recorded
        done: list[dict[str, Any]] = []
        results = pending.results
        try:
            for result in results:
                if ctx.halted is not None:
                    break
                halt = token_failure(result.error_code, result.error_message)
                if halt is not None:
                    # The CA key's token cannot sign: stop here. Bundles signed so far are
                    # recorded below; this attempt and the rest stay allocated for the next run.
                    ctx.halt(halt)
                    break
                attempt = pending.by_id[result.attempt_id]
                ctx.guard(attempt, partial(_store_bundle, ctx, attempt, result, done))
                ctx.progress.advance("prepare")
                if len(done) >= FLUSH_EVERY:
                    _flush_prepared(ctx, done, pending.by_id, on_recorded)
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # a halted chunk's jobs not started yet are cancelled
        _flush_prepared(ctx, done, pending.by_id, on_recorded)

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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

r"""Batch provisioning with the registry as the journal: prepare, inject, verify, resume.

Each input row (a *slot*) has a chain of attempts in the registry; the newest one says
where the row stands::

    allocated -> prepared -> sending -> injected -> verified
                                 \-> failed        \-> failed

Every state change is committed before the next side effect (``sending`` before the
bundle leaves), so a batch killed at any moment is resumed by running it again:

* ``allocated``/``prepared``: carried on (a missing or altered bundle is prepared again);
* ``sending``: the bundle may or may not have reached the device and its answer was
  lost. The attempt is closed as failed ("response lost") and a new attempt for the
  same identity supersedes it, with a fresh bundle: reprovisioning semantics, recorded.
  Devices start a fresh factory session per connection (the reference agent wipes its
  storage before the first message), so the re-injection is accepted;
* ``injected``: the stored answer is verified, nothing is re-sent;
* ``failed``: retried with a new superseding attempt (except identity clashes, which
  only ``--reprovision`` resolves); ``verified``: done.

``run`` and ``inject`` overlap the steps: a group of bundles is sent as soon as it is
recorded as ``prepared``, so the order of states per attempt is unchanged.

Every step takes the rows up ``chunk_rows`` at a time (reconciled, prepared, sent,
verified, reported), so what a batch holds is bounded by a chunk whatever the size of
its devices file, and a resumed batch passes over its finished chunks with one count
each.

Only a verified attempt enters the ``provisioned`` table, whose constraints keep
endpoint names and serial numbers unique across every station. The ``sending`` mark
reserves the identity first (:mod:`provkit.registry.reservations`), so a bundle for an
identity another attempt holds is never sent.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from provkit.errors import BatchError, RegistryError
from provkit.line.boards import provision_boards
from provkit.line.bundles import BundleMaker, needing_bundles
from provkit.line.connect import ConnectCheck, ConnectSettings, check_connections
from provkit.line.context import CHUNK_ROWS, BatchContext, BatchOptions, chunks
from provkit.line.devices import (
    BoardRow,
    DeviceList,
    DeviceRow,
    InputProblem,
    devices_digest,
    load_devices,
    parse_devices,
)
from provkit.line.layout import BatchDir
from provkit.line.outcome import BatchReport, DeviceOutcome, NoProgress, Progress
from provkit.line.reconcile import reconcile
from provkit.line.send import Checker, Sender, sendable, verify_one
from provkit.registry import Attempt, AttemptState, Registry

__all__ = ["CHUNK_ROWS", "Batch", "BatchOptions", "ConnectSettings"]


class Batch:
    """One batch directory bound to a registry (see the module docstring)."""

    def __init__(
        self,
        layout: BatchDir,
        batch_id: str,
        devices: DeviceList,
        registry: Registry,
        options: BatchOptions,
        progress: Progress | None = None,
    ) -> None:
        self.ctx = BatchContext(layout, batch_id, devices, registry, options, progress or NoProgress())
        self._checker = Checker(self.ctx)

    @property
    def batch_id(self) -> str:
        """The batch's id in the registry."""
        return self.ctx.batch_id

    @property
    def layout(self) -> BatchDir:
        """The batch directory."""
        return self.ctx.layout

    @property
    def registry(self) -> Registry:
        """The registry the batch records into."""
        return self.ctx.registry

    @property
    def devices(self) -> DeviceList:
        """The batch's input rows."""
        return self.ctx.devices

    @property
    def options(self) -> BatchOptions:
        """The batch's settings."""
        return self.ctx.options

    @classmethod
    def open(
        cls,
        directory: Path,
        registry: Registry,
        devices: Path | None = None,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> Batch:
        """Open the batch in ``directory``, creating it from ``devices`` if it is new.

        Raises:
            BatchError: no batch there and no devices file, or the devices file differs
                from the one the batch was created with.
            RegistryError: the registry is unavailable.
        """
        layout = BatchDir(directory)
        manifest = layout.read_manifest()
        if manifest is None:
            if devices is None:
                raise BatchError(f"{directory} holds no batch", hint="give the `devices` file (devices.csv)")
            parsed = load_devices(devices)
            text = devices.read_text(encoding="utf-8-sig")
            batch_id = layout.create(text, parsed.sha256)
        else:
            batch_id = str(manifest["batch_id"])
            layout.secure_bundles()
            try:
                parsed = parse_devices(layout.devices.read_text(encoding="utf-8"))
            except OSError as exc:
                raise BatchError(f"batch input {layout.devices} is unreadable: {exc}") from exc
            if devices is not None and devices_digest(devices) != manifest.get("devices_sha256"):
                raise BatchError(
                    f"{directory} holds a batch made from a different devices file",
                    hint="use a new `out` directory for a new device list",
                )
        registry.create_batch(batch_id, source=str(devices or layout.devices))
        return cls(layout, batch_id, parsed, registry, options or BatchOptions(), progress)

    # ------------------------------------------------------------------ steps
    def prepare(self) -> BatchReport:
        """Record attempts for new and retried rows and prepare their bundles."""
        started = datetime.now(UTC)
        ctx = self.ctx
        ctx.progress.start("prepare", self._open_rows())
        with BundleMaker(ctx) as maker:
            for rows in chunks(ctx.devices.rows, ctx.options.chunk_rows):
                if ctx.halted is not None:
                    break
                maker.take(needing_bundles(ctx, reconcile(ctx, rows)))
            maker.finish()
        return self._finish("prepare", started)

    def inject(self, *, verify: bool = False) -> BatchReport:
        """Send prepared bundles (preparing any that are missing); with ``verify`` also check them.

        The rows are taken a chunk at a time (``chunk_rows`` of the options):
        reconciled, their bundles handed to the workers, and sent as soon as each group
        is recorded as prepared, so the devices, the inject threads and the workers are
        busy at once and what the step holds does not grow with the batch.
        """
        started = datetime.now(UTC)
        ctx = self.ctx
        open_rows = self._open_rows()
        ctx.progress.start("inject", open_rows)
        ctx.progress.start("prepare", open_rows)
        states = sendable(verify=verify)
        with (
            Sender(ctx, self._checker, verify=verify) as sender,
            BundleMaker(ctx, on_recorded=sender.submit) as maker,
        ):
            for rows in chunks(ctx.devices.rows, ctx.options.chunk_rows):
                if ctx.halted is not None:
                    break
                latest = reconcile(ctx, rows)
                to_prepare = needing_bundles(ctx, latest)
                again = {a.id for a in to_prepare}
                maker.take(to_prepare)
                sender.wait_for_room(2 * ctx.options.chunk_rows)  # the next chunk waits while two are queued
                sender.submit([a for a in latest.values() if a.state in states and a.id not in again])
            maker.finish()
        provision_boards(ctx, ctx.options.boards)  # Zephyr boards: blob, upload and result in one go
        return self._finish("run" if verify else "inject", started)

    def verify(self, connect: ConnectSettings | None = None) -> BatchReport:
        """Check every stored device response and record the device as provisioned or failed.

        With ``connect`` every provisioned device must then make its first connection too
        (:mod:`provkit.line.connect`); one that fails is reported ``connect-failed``.
        """
        started = datetime.now(UTC)
        ctx = self.ctx
        ctx.progress.start("verify", self._count(AttemptState.INJECTED))
        for rows in chunks(ctx.devices.rows, ctx.options.chunk_rows):
            latest = ctx.latest([row.slot for row in rows])
            for attempt in latest.values():
                if attempt.state is AttemptState.INJECTED:
                    ctx.guard(attempt, partial(verify_one, ctx, self._checker, attempt, ctx.registry))
                    ctx.progress.advance("verify")
        return self._finish("verify", started, connect)

    def run(self, connect: ConnectSettings | None = None) -> BatchReport:
        """Prepare, inject and verify every device that is not provisioned yet (then check connections)."""
        report = self.inject(verify=True)
        if connect is None:
            return report
        return self._finish("run", report.started_at, connect)

    def _open_rows(self) -> int:
        """Rows not provisioned yet (for progress)."""
        return max(0, len(self.ctx.devices.rows) - self._count(AttemptState.VERIFIED))

    def _count(self, state: AttemptState) -> int:
        """The batch's attempts in ``state``, for a progress bar (one count on an index).

        0 when the registry cannot say: each device's step then reports why.
        """
        try:
            return self.ctx.registry.batch_state_count(self.batch_id, state)
        except RegistryError:
            return 0

    def _finish(self, step: str, started: datetime, connect: ConnectSettings | None = None) -> BatchReport:
        """Write the step's report; raise the error that halted the batch, if one did.

        Raises:
            HsmError: the CA key's token failed during the step (the report is written first).
            BatchError: the report cannot be written.
        """
        if connect is not None:
            self.ctx.progress.start("connect", self._count(AttemptState.VERIFIED))
        outcomes = heapq.merge(
            self._row_outcomes(connect),
            (_problem_outcome(p) for p in self.ctx.devices.problems),
            self._board_outcomes(),
            key=lambda outcome: outcome.line,
        )
        try:
            report = BatchReport.stream(self.ctx.layout.report, self.ctx.batch_id, step, outcomes, started)
        except OSError as exc:
            raise BatchError(f"cannot write report {self.ctx.layout.report}: {exc}") from exc
        self.ctx.raise_if_halted()
        return report

    def _row_outcomes(self, connect: ConnectSettings | None) -> Iterator[DeviceOutcome]:
        """The device agents' outcomes in line order, read (and connection-checked) a chunk at a time."""
        for rows in chunks(self.ctx.devices.rows, self.ctx.options.chunk_rows):
            latest = self._settled_view(rows)
            checks = check_connections(self.ctx, connect, rows, latest) if connect is not None else {}
            for row in rows:
                yield self._outcome(row, latest.pop(row.slot, None), checks.get(row.slot))

    def _board_outcomes(self) -> Iterator[DeviceOutcome]:
        """The Zephyr boards' outcomes in line order."""
        boards = self.ctx.devices.boards
        if boards:
            latest = self._settled_view(boards)
            yield from (self._outcome(board, latest.get(board.slot), None) for board in boards)

    def _settled_view(self, rows: Sequence[DeviceRow | BoardRow]) -> dict[str, Attempt]:
        """The newest attempts of ``rows``, their finished bundles sealed (or removed) first.

        Bundles of finished attempts that a killed run, a verify step or an unverified
        inject left in clear are settled here. A registry failure is noted on each row.
        """
        ctx = self.ctx
        try:
            latest = ctx.latest([row.slot for row in rows])
            ctx.settle_finished(latest)
        except RegistryError as exc:
            for row in rows:
                ctx.notes.setdefault(row.slot, (exc.code, f"registry unavailable: {exc}"))
            return {}
        return latest

    def _outcome(
        self, row: DeviceRow | BoardRow, attempt: Attempt | None, check: ConnectCheck | None
    ) -> DeviceOutcome:
        ctx = self.ctx
        if attempt is not None:
            outcome = DeviceOutcome.from_attempt(row.line, attempt, ctx.latency.get(row.slot))
        else:
            outcome = DeviceOutcome(
                row.slot, row.line, row.address, row.endpoint_name, row.serial_number, "pending"
            )
        note = ctx.notes.get(row.slot)
        if note is not None and outcome.status != "provisioned":
            outcome = _with_note(outcome, *note)
        if check is not None and outcome.status == "provisioned":
            outcome = _with_connection(outcome, check)
        return outcome


def _problem_outcome(problem: InputProblem) -> DeviceOutcome:
    return DeviceOutcome(
        problem.slot,
        problem.line,
        problem.address,
        None,
        None,
        "rejected",
        code=problem.code,
        reason=problem.reason,
    )


def _with_note(outcome: DeviceOutcome, code: int | None, reason: str) -> DeviceOutcome:
    return replace(outcome, status="failed", code=code, reason=reason)


def _with_connection(outcome: DeviceOutcome, check: ConnectCheck) -> DeviceOutcome:
    if check.ok:
        return replace(outcome, connection="connected", location=check.location)
    return replace(
        outcome,
        status="connect-failed",
        connection=check.failure,
        connection_code=check.code,
        connection_reason=check.reason,
        code=check.code,
        reason=f"first connection failed ({check.failure}): {check.reason}",
    )

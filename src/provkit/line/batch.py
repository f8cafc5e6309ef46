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

Only a verified attempt enters the ``provisioned`` table, whose constraints keep
endpoint names and serial numbers unique across every station. The ``sending`` mark
reserves the identity first (:mod:`provkit.registry.reservations`), so a bundle for an
identity another attempt holds is never sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from provkit.errors import BatchError, RegistryError
from provkit.line.boards import provision_boards
from provkit.line.bundles import needing_bundles, prepare_bundles, prepare_pending
from provkit.line.connect import ConnectCheck, ConnectSettings, check_connections
from provkit.line.context import BatchContext, BatchOptions
from provkit.line.devices import BoardRow, DeviceList, DeviceRow, load_devices, parse_devices
from provkit.line.layout import BatchDir
from provkit.line.outcome import BatchReport, DeviceOutcome, NoProgress, Progress
from provkit.line.reconcile import reconcile
from provkit.line.send import Checker, Sender, sendable, verify_one
from provkit.registry import AttemptState, Registry

__all__ = ["Batch", "BatchOptions", "ConnectSettings"]


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
            if devices is not None and load_devices(devices).sha256 != manifest.get("devices_sha256"):
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
        reconcile(self.ctx)
        prepare_pending(self.ctx)
        return self._finish("prepare", started)

    def inject(self, *, verify: bool = False) -> BatchReport:
        """Send prepared bundles (preparing any that are missing); with ``verify`` also check them."""
        started = datetime.now(UTC)
        ctx = self.ctx
        reconcile(ctx)
        latest = ctx.latest()
        to_prepare = needing_bundles(ctx, latest)
        again = {a.id for a in to_prepare}
        ready = [a for a in latest.values() if a.state in sendable(verify=verify) and a.id not in again]
        ctx.progress.start("inject", len(ready) + len(to_prepare))
        # Bundles are sent as soon as their group is recorded as prepared, so the devices
        # and the inject threads work while the rest is still being prepared.
        with Sender(ctx, self._checker, verify=verify) as sender:
            sender.submit(ready)
            prepare_bundles(ctx, to_prepare, on_recorded=sender.submit)
        provision_boards(ctx, ctx.options.boards)  # Zephyr boards: blob, upload and result in one go
        return self._finish("run" if verify else "inject", started)

    def verify(self, connect: ConnectSettings | None = None) -> BatchReport:
        """Check every stored device response and record the device as provisioned or failed.

        With ``connect`` every provisioned device must then make its first connection too
        (:mod:`provkit.line.connect`); one that fails is reported ``connect-failed``.
        """
        started = datetime.now(UTC)
        ctx = self.ctx
        pending = [a for a in ctx.latest().values() if a.state is AttemptState.INJECTED]
        ctx.progress.start("verify", len(pending))
        for attempt in pending:
            ctx.guard(attempt, partial(verify_one, ctx, self._checker, attempt, ctx.registry))
            ctx.progress.advance("verify")
        return self._finish("verify", started, connect)

    def run(self, connect: ConnectSettings | None = None) -> BatchReport:
        """Prepare, inject and verify every device that is not provisioned yet (then check connections)."""
        report = self.inject(verify=True)
        if connect is None:
            return report
        return self._finish("run", report.started_at, connect)

    def _finish(self, step: str, started: datetime, connect: ConnectSettings | None = None) -> BatchReport:
        """Write the step's report; raise the error that halted the batch, if one did.

        Raises:
            HsmError: the CA key's token failed during the step (the report is written first).
            BatchError: the report cannot be written.
        """
        report = self._report(step, started, connect)
        self.ctx.raise_if_halted()
        return report

    def _report(self, step: str, started: datetime, connect: ConnectSettings | None) -> BatchReport:
        checks = check_connections(self.ctx, connect) if connect is not None else {}
        try:
            latest = self.ctx.latest()
            # Bundles of finished attempts that a killed run, a verify step or an unverified
            # inject left in clear are sealed (or removed) now.
            self.ctx.settle_finished(latest)
        except RegistryError as exc:
            latest = {}
            slots = [r.slot for r in self.ctx.devices.rows] + [b.slot for b in self.ctx.devices.boards]
            for slot in slots:
                self.ctx.notes.setdefault(slot, (exc.code, f"registry unavailable: {exc}"))
        outcomes: list[DeviceOutcome] = [
            DeviceOutcome(p.slot, p.line, p.address, None, None, "rejected", code=p.code, reason=p.reason)
            for p in self.ctx.devices.problems
        ]
        every: list[DeviceRow | BoardRow] = [*self.ctx.devices.rows, *self.ctx.devices.boards]
        for row in every:
            # Taken out as its outcome is made: the journal view and the outcomes are not
            # both held whole.
            attempt = latest.pop(row.slot, None)
            note = self.ctx.notes.get(row.slot)
            if attempt is not None:
                outcome = DeviceOutcome.from_attempt(row.line, attempt, self.ctx.latency.get(row.slot))
            else:
                outcome = DeviceOutcome(
                    row.slot, row.line, row.address, row.endpoint_name, row.serial_number, "pending"
                )
            if note is not None and outcome.status != "provisioned":
                outcome = _with_note(outcome, *note)
            check = checks.get(row.slot)
            if check is not None and outcome.status == "provisioned":
                outcome = _with_connection(outcome, check)
            outcomes.append(outcome)
        outcomes.sort(key=lambda o: o.line)
        report = BatchReport(self.ctx.batch_id, step, outcomes, started)
        try:
            report.write(self.ctx.layout.report)
        except OSError as exc:
            raise BatchError(f"cannot write report {self.ctx.layout.report}: {exc}") from exc
        return report


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

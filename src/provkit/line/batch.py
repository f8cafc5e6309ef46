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

Only a verified attempt enters the ``provisioned`` table, whose constraints keep
endpoint names and serial numbers unique across every station.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provkit.errors import AllocationError, BatchError, DuplicateIdentityError, ProvkitError, RegistryError
from provkit.line.devices import DeviceList, DeviceRow, load_devices, parse_devices
from provkit.line.inject import InjectSettings, conclude, exchange, verify_attempt
from provkit.line.layout import BatchDir, write_atomic
from provkit.line.outcome import BatchReport, DeviceOutcome, NoProgress, Progress
from provkit.line.prepare import PrepareJob, prepare_many
from provkit.registry import Attempt, AttemptState, IdentityPattern, NewAttempt, Registry

_FLUSH_EVERY = 64
"""Prepared bundles recorded per registry transaction."""


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """Settings of a batch command.

    Attributes:
        home_dir: FCU home (``None``: ``FCU_HOME_DIR`` or the working directory).
        config_file: ``fcu.yml`` to use instead of the home's.
        pattern: identity templates for rows without endpoint name and serial number.
        pool: CSV identity pool to allocate from instead of ``pattern``.
        workers: preparation processes (0: one per core).
        concurrency: devices injected at once.
        inject: timeouts and retries.
        reprovision: replace devices already recorded as provisioned.
    """

    home_dir: Path | None = None
    config_file: Path | None = None
    pattern: IdentityPattern | None = None
    pool: str | None = None
    workers: int = 0
    concurrency: int = 16
    inject: InjectSettings = field(default_factory=InjectSettings)
    reprovision: bool = False


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
        self.layout = layout
        self.batch_id = batch_id
        self.devices = devices
        self.registry = registry
        self.options = options
        self.progress: Progress = progress or NoProgress()
        self._notes: dict[str, tuple[int | None, str]] = {}
        self._latency: dict[str, float] = {}
        self._lock = threading.Lock()
        self._checker: Any = None

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
                raise BatchError(f"{directory} holds no batch", hint="give --devices devices.csv")
            parsed = load_devices(devices)
            text = devices.read_text(encoding="utf-8-sig")
            batch_id = layout.create(text, parsed.sha256)
        else:
            batch_id = str(manifest["batch_id"])
            try:
                parsed = parse_devices(layout.devices.read_text(encoding="utf-8"))
            except OSError as exc:
                raise BatchError(f"batch input {layout.devices} is unreadable: {exc}") from exc
            if devices is not None and load_devices(devices).sha256 != manifest.get("devices_sha256"):
                raise BatchError(
                    f"{directory} holds a batch made from a different devices file",
                    hint="use a new --out directory for a new device list",
                )
        registry.create_batch(batch_id, source=str(devices or layout.devices))
        return cls(layout, batch_id, parsed, registry, options or BatchOptions(), progress)

    # ------------------------------------------------------------------ steps
    def prepare(self) -> BatchReport:
        """Record attempts for new and retried rows and prepare their bundles."""
        started = datetime.now(UTC)
        self._reconcile()
        self._prepare_pending()
        return self._finish("prepare", started)

    def inject(self, *, verify: bool = False) -> BatchReport:
        """Send prepared bundles (preparing any that are missing); with ``verify`` also check them."""
        started = datetime.now(UTC)
        self._reconcile()
        self._prepare_pending()
        self._send_all(verify=verify)
        return self._finish("run" if verify else "inject", started)

    def verify(self) -> BatchReport:
        """Check every stored device response and record the device as provisioned or failed."""
        started = datetime.now(UTC)
        pending = [a for a in self._latest().values() if a.state is AttemptState.INJECTED]
        self.progress.start("verify", len(pending))
        for attempt in pending:
            self._guard(attempt, lambda a=attempt: self._verify(self.registry.get_attempt(a.id)))
            self.progress.advance("verify")
        return self._finish("verify", started)

    def run(self) -> BatchReport:
        """Prepare, inject and verify every device that is not provisioned yet."""
        return self.inject(verify=True)

    # ------------------------------------------------------------------ internals
    def _latest(self) -> dict[str, Attempt]:
        return self.registry.batch_attempts(self.batch_id)

    def _reconcile(self) -> None:
        """Give every unfinished row a live attempt (see the module docstring)."""
        latest = self._latest()
        fresh: list[DeviceRow] = []
        items: list[NewAttempt] = []
        for row in self.devices.rows:
            attempt = latest.get(row.slot)
            if attempt is None:
                fresh.append(row)
            elif attempt.state is AttemptState.SENDING:
                self.registry.mark_failed(
                    attempt.id, None, "interrupted after sending: response lost; superseded by a new attempt"
                )
                items.append(self._retry(row, attempt))
            elif attempt.state is AttemptState.FAILED and (
                self.options.reprovision or attempt.error_code != DuplicateIdentityError.default_code
            ):
                items.append(self._retry(row, attempt))
        items += self._new_attempts(fresh)
        if not items:
            return
        ids = self.registry.record_attempts(self.batch_id, items)
        if self.options.reprovision:
            return
        holders = self.registry.provisioned_holders(
            [i.endpoint_name for i in items], [i.serial_number for i in items]
        )
        by_value = {h.endpoint_name: h for h in holders} | {h.serial_number: h for h in holders}
        for attempt_id, item in zip(ids, items, strict=True):
            owner = by_value.get(item.endpoint_name) or by_value.get(item.serial_number)
            if owner is not None:
                self.registry.mark_failed(
                    attempt_id,
                    DuplicateIdentityError.default_code,
                    f"{owner.endpoint_name} / {owner.serial_number} is already provisioned "
                    f"(attempt {owner.id}); use --reprovision to replace it",
                )

    @staticmethod
    def _retry(row: DeviceRow, attempt: Attempt) -> NewAttempt:
        return NewAttempt(
            attempt.endpoint_name, attempt.serial_number, row.slot, row.address, supersedes_id=attempt.id
        )

    def _new_attempts(self, rows: list[DeviceRow]) -> list[NewAttempt]:
        given = [r for r in rows if r.endpoint_name is not None and r.serial_number is not None]
        items = [NewAttempt(r.endpoint_name or "", r.serial_number or "", r.slot, r.address) for r in given]
        needing = [r for r in rows if r.endpoint_name is None]
        if not needing:
            return items
        try:
            if self.options.pool is not None:
                identities = self.registry.allocate_from_pool(self.options.pool, len(needing))
            elif self.options.pattern is not None:
                identities = self.registry.allocate(self.options.pattern, len(needing))
            else:
                raise AllocationError(
                    "row has no endpoint_name/serial_number and no identity pattern or pool was given"
                )
        except AllocationError as exc:
            for row in needing:
                self._notes[row.slot] = (exc.code, f"line {row.line}: {exc.message}")
            return items
        items += [
            NewAttempt(i.endpoint_name, i.serial_number, r.slot, r.address)
            for r, i in zip(needing, identities, strict=True)
        ]
        return items

    def _bundle_ok(self, attempt: Attempt) -> bool:
        path = self.layout.bundle(attempt.id, attempt.endpoint_name)
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == attempt.bundle_sha256
        except OSError:
            return False

    def _prepare_pending(self) -> None:
        todo = [
            a
            for a in self._latest().values()
            if a.state is AttemptState.ALLOCATED
            or (a.state is AttemptState.PREPARED and not self._bundle_ok(a))
        ]
        self.progress.start("prepare", len(todo))
        if not todo:
            return
        by_id = {a.id: a for a in todo}
        jobs = [
            PrepareJob(a.id, a.endpoint_name, a.serial_number, self.layout.bundle(a.id, a.endpoint_name))
            for a in todo
        ]
        results = prepare_many(
            jobs,
            home_dir=self.options.home_dir,
            config_file=self.options.config_file,
            workers=self.options.workers,
        )
        done: list[dict[str, Any]] = []
        for result in results:
            attempt = by_id[result.attempt_id]
            self._guard(attempt, lambda r=result, a=attempt: self._store_bundle(a, r, done))
            self.progress.advance("prepare")
            if len(done) >= _FLUSH_EVERY:
                self._flush_prepared(done)
        self._flush_prepared(done)

    def _flush_prepared(self, done: list[dict[str, Any]]) -> None:
        """Record a group of prepared bundles in one transaction."""
        if not done:
            return
        try:
            self.registry.update_many(
                AttemptState.PREPARED, [{k: v for k, v in r.items() if k != "slot"} for r in done]
            )
        except RegistryError as exc:
            for row in done:
                self._notes[row["slot"]] = (exc.code, f"registry unavailable, bundle not recorded: {exc}")
        done.clear()

    def _store_bundle(self, attempt: Attempt, result: Any, done: list[dict[str, Any]]) -> None:
        if not result.ok:
            self.registry.mark_failed(
                attempt.id, result.error_code, f"preparation failed: {result.error_message}"
            )
            return
        path = self.layout.bundle(attempt.id, attempt.endpoint_name)
        if result.written_to is None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, result.config_data, durable=False)
            except OSError as exc:
                self.registry.mark_failed(attempt.id, BatchError.default_code, f"cannot write {path}: {exc}")
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
                "warnings": "\n".join(result.warnings),
                "enrollment_id": result.enrollment_id,
            }
        )

    def _send_all(self, *, verify: bool) -> None:
        wanted = {AttemptState.PREPARED, AttemptState.INJECTED} if verify else {AttemptState.PREPARED}
        todo = [a for a in self._latest().values() if a.state in wanted]
        self.progress.start("inject", len(todo))
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            for _ in pool.map(lambda a: self._send_one(a, verify=verify), todo):
                pass

    def _send_one(self, attempt: Attempt, *, verify: bool) -> None:
        started = time.monotonic()
        self._guard(attempt, lambda: self._deliver(attempt, verify=verify))
        with self._lock:
            self._latency[attempt.slot or ""] = time.monotonic() - started
        self.progress.advance("inject")

    def _deliver(self, attempt: Attempt, *, verify: bool) -> None:
        if attempt.state is AttemptState.PREPARED:
            path = self.layout.bundle(attempt.id, attempt.endpoint_name)
            try:
                bundle = path.read_bytes()
            except OSError as exc:
                self.registry.mark_failed(attempt.id, BatchError.default_code, f"bundle unreadable: {exc}")
                return
            if hashlib.sha256(bundle).hexdigest() != attempt.bundle_sha256:
                self.registry.mark_failed(attempt.id, BatchError.default_code, f"bundle {path} was altered")
                return
            host, _, port = (attempt.address or "").rpartition(":")
            self.registry.mark_sending(attempt.id)  # write-ahead: before any byte is sent
            try:
                response, _tries = exchange(host.strip("[]"), int(port), bundle, self.options.inject)
            except ProvkitError as exc:
                self.registry.mark_failed(attempt.id, exc.code, f"device {attempt.address}: {exc}")
                return
            # With verify the answer is checked first and recorded with its verdict in one
            # transaction; killed before that, the attempt is still "sending" (see above).
            checker = self._get_checker() if verify else None
            conclude(self.registry, checker, attempt, response, reprovision=self.options.reprovision)
        elif verify:
            self._verify(attempt)

    def _get_checker(self) -> Any:
        with self._lock:
            if self._checker is None:
                from provkit.factory.api import FactoryToolApi

                options = self.options
                self._checker = FactoryToolApi(home_dir=options.home_dir, config_file=options.config_file)
            return self._checker

    def _verify(self, attempt: Attempt) -> None:
        if attempt.response is None:
            attempt = self.registry.get_attempt(attempt.id)
        verify_attempt(self.registry, self._get_checker(), attempt, reprovision=self.options.reprovision)

    def _guard(self, attempt: Attempt, action: Any) -> None:
        """Run one device's step; a registry failure is noted for that device only."""
        try:
            action()
        except RegistryError as exc:
            with self._lock:
                self._notes[attempt.slot or ""] = (
                    exc.code,
                    f"registry unavailable, outcome not recorded: {exc}",
                )

    def _finish(self, step: str, started: datetime) -> BatchReport:
        try:
            latest = self._latest()
        except RegistryError as exc:
            latest = {}
            for row in self.devices.rows:
                self._notes.setdefault(row.slot, (exc.code, f"registry unavailable: {exc}"))
        outcomes: list[DeviceOutcome] = [
            DeviceOutcome(p.slot, p.line, "", None, None, "rejected", code=p.code, reason=p.reason)
            for p in self.devices.problems
        ]
        for row in self.devices.rows:
            attempt = latest.get(row.slot)
            note = self._notes.get(row.slot)
            if attempt is not None:
                outcome = DeviceOutcome.from_attempt(row.line, attempt, self._latency.get(row.slot))
            else:
                outcome = DeviceOutcome(
                    row.slot, row.line, row.address, row.endpoint_name, row.serial_number, "pending"
                )
            if note is not None and outcome.status != "provisioned":
                outcome = _with_note(outcome, *note)
            outcomes.append(outcome)
        outcomes.sort(key=lambda o: o.line)
        report = BatchReport(self.batch_id, step, outcomes, started)
        try:
            report.write(self.layout.report)
        except OSError as exc:
            raise BatchError(f"cannot write report {self.layout.report}: {exc}") from exc
        return report


def _with_note(outcome: DeviceOutcome, code: int | None, reason: str) -> DeviceOutcome:
    from dataclasses import replace

    return replace(outcome, status="failed", code=code, reason=reason)

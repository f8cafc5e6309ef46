"""What every step of a batch shares: its directory, rows, registry, options and notes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provkit.errors import RegistryError
from provkit.line.devices import DeviceList
from provkit.line.inject import InjectSettings
from provkit.line.layout import BatchDir
from provkit.line.outcome import NoProgress, Progress
from provkit.registry import Attempt, IdentityPattern, Registry


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


@dataclass(slots=True)
class BatchContext:
    """One batch's shared state; the step modules read it and add notes and latencies.

    Attributes:
        layout: the batch directory.
        batch_id: the batch's id in the registry.
        devices: the parsed input rows.
        registry: where attempts are recorded.
        options: the command's settings.
        progress: progress sink.
        notes: per slot, an error code and reason the registry could not hold.
        latency: per slot, seconds from the send step's start to the recorded outcome.
    """

    layout: BatchDir
    batch_id: str
    devices: DeviceList
    registry: Registry
    options: BatchOptions
    progress: Progress = field(default_factory=NoProgress)
    notes: dict[str, tuple[int | None, str]] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def latest(self) -> dict[str, Attempt]:
        """The newest attempt of every slot (raises ``RegistryError``)."""
        return self.registry.batch_attempts(self.batch_id)

    def note(self, slot: str | None, code: int | None, reason: str) -> None:
        """Remember why a device's outcome is not what the registry says."""
        with self.lock:
            self.notes[slot or ""] = (code, reason)

    def guard(self, attempt: Attempt, action: Callable[[], Any]) -> None:
        """Run one device's step; a registry failure is noted for that device only."""
        try:
            action()
        except RegistryError as exc:
            self.note(attempt.slot, exc.code, f"registry unavailable, outcome not recorded: {exc}")

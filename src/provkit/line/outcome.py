"""Per-device outcomes of a batch and the JSON report."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol

from provkit.line.layout import write_atomic
from provkit.registry import Attempt, AttemptState

STATUS_OF_STATE = {
    AttemptState.ALLOCATED: "pending",
    AttemptState.PREPARED: "prepared",
    AttemptState.SENDING: "interrupted",
    AttemptState.INJECTED: "injected",
    AttemptState.VERIFIED: "provisioned",
    AttemptState.FAILED: "failed",
    AttemptState.SUPERSEDED: "superseded",
}


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    """Where one input row ended up.

    Attributes:
        status: ``provisioned``, ``failed``, ``prepared``, ``injected``, ``pending``,
            ``interrupted``, ``superseded``, ``rejected`` (bad input row), or
            ``connect-failed`` (provisioned, but its first connection failed).
        reason: why it failed (empty on success).
        latency_s: send-to-recorded time measured in this run, if the device was injected.
        connection: ``connected``, or the class of its first connection's failure
            (``tls-alert``, ``ca-untrusted``, ``cn-mismatch``, ``revoked``, ``timeout`` …);
            ``None`` when the connection was not checked.
        connection_code: the provkit code of that failure.
        connection_reason: what went wrong.
        location: the registration location at the LwM2M server.
    """

    slot: str
    line: int
    address: str
    endpoint_name: str | None
    serial_number: str | None
    status: str
    attempt_id: int | None = None
    code: int | None = None
    reason: str = ""
    return_status: int | None = None
    info_message: str | None = None
    warnings: list[str] = field(default_factory=list)
    tries: int = 0
    device_cert_sha256: str | None = None
    enrollment_id: str | None = None
    latency_s: float | None = None
    connection: str | None = None
    connection_code: int | None = None
    connection_reason: str = ""
    location: str | None = None

    @classmethod
    def from_attempt(cls, line: int, attempt: Attempt, latency_s: float | None = None) -> DeviceOutcome:
        """Outcome as recorded by ``attempt``."""
        return cls(
            slot=attempt.slot or "",
            line=line,
            address=attempt.address or "",
            endpoint_name=attempt.endpoint_name,
            serial_number=attempt.serial_number,
            status=STATUS_OF_STATE[attempt.state],
            attempt_id=attempt.id,
            code=attempt.error_code,
            reason=attempt.error_message or "",
            return_status=attempt.return_status,
            info_message=attempt.info_message,
            warnings=[w for w in (attempt.warnings or "").split("\n") if w],
            tries=attempt.tries,
            device_cert_sha256=attempt.device_cert_sha256,
            enrollment_id=attempt.enrollment_id,
            latency_s=latency_s,
        )


class Progress(Protocol):
    """Receives progress of a batch step (the CLI draws a rich progress bar)."""

    def start(self, step: str, total: int) -> None:
        """A step begins with ``total`` devices to handle."""

    def advance(self, step: str, outcome: DeviceOutcome | None = None) -> None:
        """One device of ``step`` is done."""


class NoProgress:
    """A :class:`Progress` that ignores everything."""

    def start(self, step: str, total: int) -> None:
        """Ignore."""

    def advance(self, step: str, outcome: DeviceOutcome | None = None) -> None:
        """Ignore."""


FAILED_STATUSES: Final = frozenset({"failed", "rejected", "interrupted", "connect-failed"})
"""Statuses of a row that went wrong (rather than one a later step takes further)."""


class BatchReport:
    """Outcome of every input row of a batch after one command.

    A report built from a list holds it; one a batch writes with :meth:`stream` holds
    only its counts and first failures, and :attr:`devices` reads the rest back from
    the JSON report when asked (a batch of 100,000 devices is never held whole).

    Args:
        batch_id: the batch's id in the registry.
        step: the command (``prepare``, ``inject``, ``verify``, ``run``).
        devices: every row's outcome, in line order.
        started_at: when the command started.
        finished_at: when it finished (default: now).
    """

    FAILURES_KEPT: Final = 100
    """Failed rows a streamed report keeps in memory (the CLI shows fewer)."""

    def __init__(
        self,
        batch_id: str,
        step: str,
        devices: Iterable[DeviceOutcome],
        started_at: datetime,
        finished_at: datetime | None = None,
    ) -> None:
        self.batch_id = batch_id
        self.step = step
        self.started_at = started_at
        self.finished_at = finished_at or datetime.now(UTC)
        self._devices: list[DeviceOutcome] | None = list(devices)
        self._counts = Counter(d.status for d in self._devices)
        failures = [d for d in self._devices if d.status in FAILED_STATUSES]
        self._failed = len(failures)
        self._failures = failures[: self.FAILURES_KEPT]
        self._spool: IO[bytes] | None = None

    @classmethod
    def stream(
        cls, path: Path, batch_id: str, step: str, outcomes: Iterable[DeviceOutcome], started_at: datetime
    ) -> BatchReport:
        """Write the JSON report of ``outcomes`` to ``path`` as they come, and return it.

        The devices are spooled to an unnamed file next to ``path`` while they are
        counted (the counts come first in the document), then the report is written
        atomically. The report keeps the spool: :attr:`devices` reads it back when asked,
        whatever later commands write to ``path``.

        Raises:
            OSError: the report cannot be written.
        """
        report = cls(batch_id, step, (), started_at)
        spool = tempfile.TemporaryFile(dir=path.parent)  # noqa: SIM115 - the report owns it
        try:
            for index, outcome in enumerate(outcomes):
                spool.write(_device_json(index, outcome))
                report._count(outcome)
            report.finished_at = datetime.now(UTC)
            spool.seek(0)
            write_atomic(path, report._document(iter(lambda: spool.read(1 << 20), b"")))
        except BaseException:
            spool.close()
            raise
        report._devices = None
        report._spool = spool
        return report

    def _count(self, outcome: DeviceOutcome) -> None:
        self._counts[outcome.status] += 1
        if outcome.status in FAILED_STATUSES:
            self._failed += 1
            if len(self._failures) < self.FAILURES_KEPT:
                self._failures.append(outcome)

    @property
    def devices(self) -> list[DeviceOutcome]:
        """Every row's outcome, in line order (read back from the report file if need be)."""
        if self._devices is None:
            assert self._spool is not None, "a streamed report keeps its spool"
            self._spool.seek(0)
            listed = json.loads(b"[" + self._spool.read() + b"]")
            self._devices = [DeviceOutcome(**device) for device in listed]
        return self._devices

    @property
    def failures(self) -> list[DeviceOutcome]:
        """The first :attr:`FAILURES_KEPT` rows whose status is one of :data:`FAILED_STATUSES`."""
        return list(self._failures)

    @property
    def failed(self) -> int:
        """How many rows have a status of :data:`FAILED_STATUSES`."""
        return self._failed

    def counts(self) -> dict[str, int]:
        """Devices per status."""
        return dict(self._counts)

    @property
    def ok(self) -> bool:
        """Whether every device is provisioned (or at least reached the step's goal)."""
        goal = {"prepare": "prepared", "inject": "injected"}.get(self.step, "provisioned")
        return set(self._counts) <= {"provisioned", goal}

    def to_json(self) -> dict[str, Any]:
        """The JSON report document."""
        return {**self._head(), "devices": [asdict(d) for d in self.devices]}

    def _head(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "step": self.step,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "counts": self.counts(),
        }

    def write(self, path: Path) -> None:
        """Write the JSON report atomically (the text of ``json.dumps(to_json(), indent=2)``).

        Written device by device: the document is never built whole.
        """
        devices = (_device_json(index, device) for index, device in enumerate(self.devices))
        write_atomic(path, self._document(devices))

    def _document(self, devices: Iterator[bytes]) -> Iterator[bytes]:
        """The report's bytes around the devices' (from :func:`_device_json`)."""
        head = json.dumps(self._head(), indent=2)
        first = next(devices, None)
        if first is None:
            yield (head[:-2] + ',\n  "devices": []\n}').encode()
            return
        yield (head[:-2] + ',\n  "devices": [').encode()
        yield first
        yield from devices
        yield b"\n  ]\n}"


def _device_json(index: int, device: DeviceOutcome) -> bytes:
    """One device of the report's ``devices`` list, as ``json.dumps(..., indent=2)`` places it."""
    text = json.dumps(asdict(device), indent=2).replace("\n", "\n    ")
    return (("," if index else "") + "\n    " + text).encode()

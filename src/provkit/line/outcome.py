"""Per-device outcomes of a batch and the JSON report."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

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


@dataclass(slots=True)
class BatchReport:
    """Outcome of every input row of a batch after one command."""

    batch_id: str
    step: str
    devices: list[DeviceOutcome]
    started_at: datetime
    finished_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def counts(self) -> dict[str, int]:
        """Devices per status."""
        return dict(Counter(d.status for d in self.devices))

    @property
    def ok(self) -> bool:
        """Whether every device is provisioned (or at least reached the step's goal)."""
        goal = {"prepare": "prepared", "inject": "injected"}.get(self.step, "provisioned")
        good = {"provisioned", goal}
        return all(d.status in good for d in self.devices)

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

        Written device by device: a report of 100,000 devices is never built whole.
        """
        write_atomic(path, self._chunks())

    def _chunks(self) -> Iterator[bytes]:
        head = json.dumps(self._head(), indent=2)
        if not self.devices:
            yield (head[:-2] + ',\n  "devices": []\n}').encode()
            return
        yield (head[:-2] + ',\n  "devices": [').encode()
        for index, device in enumerate(self.devices):
            text = json.dumps(asdict(device), indent=2).replace("\n", "\n    ")
            yield (("," if index else "") + "\n    " + text).encode()
        yield b"\n  ]\n}"

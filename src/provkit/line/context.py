"""What every step of a batch shares: its directory, rows, registry, options and notes."""

from __future__ import annotations

import logging
import math
import threading
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from provkit.codes import FcuErrorCode
from provkit.errors import HsmError, ProvkitError, RegistryError
from provkit.factory.ca_key import CaKeySource
from provkit.factory.paths import FcuPaths
from provkit.line.archive import BundleArchive, SettledBundles
from provkit.line.devices import DeviceList
from provkit.line.layout import BatchDir
from provkit.line.outcome import NoProgress, Progress
from provkit.registry import TERMINAL_STATES, Attempt, IdentityPattern, Registry
from provkit.transport.link import LINE_LINK_SETTINGS, LinkSettings

if TYPE_CHECKING:
    from provkit.line.boards import BoardOptions

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

TOKEN_FAILURES: Final = frozenset(
    code for code in FcuErrorCode if code.name.startswith("HSM_") and code is not FcuErrorCode.HSM_KEY_EXISTS
)
"""FCU codes of a CA key token that cannot sign (400–408): they stop a batch, whatever the device."""


def token_failure(code: int | None, message: str | None) -> HsmError | None:
    """The error that halts a batch when a device step failed with a token code, else ``None``."""
    if code not in TOKEN_FAILURES:
        return None
    return HsmError(
        message or f"the CA key's token failed (error {code})",
        code=code,
        hint="bundles signed before the failure are recorded; fix or reconnect the token, then run the "
        "same batch command again to continue",
    )


CHUNK_ROWS: Final = 1000
"""Input rows a batch reconciles, prepares, sends and reports at a time: what a step
holds in memory is bounded by this, not by the number of devices in the batch."""


def chunks(items: Sequence[_T], size: int = CHUNK_ROWS) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most ``size`` (at least one)."""
    size = max(1, size)
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Latencies:
    """Seconds from a device's turn to its recorded outcome, by slot, 8 bytes per row.

    Slots are the rows' CSV line numbers, so the figures live in one flat array of
    doubles rather than a dictionary entry per device.
    """

    def __init__(self) -> None:
        self._seconds = array("d")

    def __setitem__(self, slot: str, seconds: float) -> None:
        index = _index(slot)
        if index is None:
            return
        if index >= len(self._seconds):
            self._seconds.extend([math.nan] * (index + 1 - len(self._seconds)))
        self._seconds[index] = seconds

    def setdefault(self, slot: str, seconds: float) -> None:
        """Record ``seconds`` unless the slot has a figure already."""
        if self.get(slot) is None:
            self[slot] = seconds

    def get(self, slot: str) -> float | None:
        """The slot's figure, if one was recorded in this run."""
        index = _index(slot)
        if index is None or index >= len(self._seconds):
            return None
        value = self._seconds[index]
        return None if math.isnan(value) else value


def _index(slot: str) -> int | None:
    return int(slot) if slot.isascii() and slot.isdigit() else None


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
        inject: timeouts and retries (the line's own unless told otherwise).
        reprovision: replace devices already recorded as provisioned.
        ca_key: the factory CA key in a PKCS#11 token, when given on the command line
            (else fcu.yml or the keystore say where the key is).
        boards: what Zephyr boards (``smp-*`` rows) are provisioned with (``None``: no
            LwM2M configuration given; such rows fail with the reason).
        settled_bundles: what becomes of a bundle once its attempt is over (sealed to the
            archive key, or removed; see :mod:`provkit.line.archive`).
        archive_key: the archive public key to seal to (``None``: the FCU keystore's).
        chunk_rows: input rows a step takes up at a time (memory is bounded by it).
    """

    home_dir: Path | None = None
    config_file: Path | None = None
    pattern: IdentityPattern | None = None
    pool: str | None = None
    workers: int = 0
    concurrency: int = 16
    inject: LinkSettings = LINE_LINK_SETTINGS
    reprovision: bool = False
    ca_key: CaKeySource | None = None
    boards: BoardOptions | None = None
    settled_bundles: SettledBundles = SettledBundles.SEAL
    archive_key: Path | None = None
    chunk_rows: int = CHUNK_ROWS


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
    latency: Latencies = field(default_factory=Latencies)
    lock: threading.Lock = field(default_factory=threading.Lock)
    halted: ProvkitError | None = None
    """Set when the CA key's token failed: no more bundles are signed or sent in this run."""
    _archive: BundleArchive | None = field(default=None, init=False, repr=False)
    _given: frozenset[str] | None = field(default=None, init=False, repr=False)

    def given_identities(self) -> frozenset[str]:
        """Every endpoint name and serial number the batch's rows give explicitly.

        Identities allocated from a pattern skip them, including those of rows a later
        chunk records (built on first use: only a batch that allocates needs it).
        """
        if self._given is None:
            self._given = frozenset(
                value
                for row in self.devices.rows
                if row.endpoint_name is not None and row.serial_number is not None
                for value in (row.endpoint_name, row.serial_number)
            )
        return self._given

    def archive(self) -> BundleArchive:
        """The bundle archive (opened, and its key pair made, on first use).

        Raises:
            BatchError: the archive key is unusable.
        """
        with self.lock:
            if self._archive is None:
                keystore = FcuPaths.resolve(self.options.home_dir).keystore
                options = self.options
                self._archive = BundleArchive.open(keystore, options.settled_bundles, options.archive_key)
            return self._archive

    def seal_key(self) -> bytes | None:
        """The public key bundles are sealed to where they are written (``None``: they are removed).

        Raises:
            BatchError: the archive key is unusable.
        """
        if self.options.settled_bundles is not SettledBundles.SEAL:
            return None
        return self.archive().public_key_der

    def settle_bundle(self, attempt_id: int, endpoint_name: str) -> None:
        """Seal or remove the bundle of an attempt that is over (a failure is noted, not raised)."""
        path = self.layout.bundle(attempt_id, endpoint_name)
        try:
            self.archive().settle(path)
        except ProvkitError as exc:
            _log.warning("bundle %s left in clear: %s", path.name, exc)

    def settle_finished(self, latest: Mapping[str, Attempt]) -> None:
        """Seal or remove the bundles of every finished attempt still in clear (after a step)."""
        for attempt in latest.values():
            if (
                attempt.state in TERMINAL_STATES
                and self.layout.bundle(attempt.id, attempt.endpoint_name).exists()
            ):
                self.settle_bundle(attempt.id, attempt.endpoint_name)

    def halt(self, error: ProvkitError) -> None:
        """Stop the batch: nothing more is prepared or sent; the command then fails with ``error``."""
        with self.lock:
            if self.halted is None:
                self.halted = error

    def raise_if_halted(self) -> None:
        """Raise the error that halted the batch, if any."""
        if self.halted is not None:
            raise self.halted

    def latest(self, slots: Sequence[str] | None = None) -> dict[str, Attempt]:
        """The newest attempt of every slot, or of ``slots`` only (raises ``RegistryError``)."""
        return self.registry.batch_attempts(self.batch_id, slots)

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

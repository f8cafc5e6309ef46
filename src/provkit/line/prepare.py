"""Bundle preparation in worker processes, the FCU loaded once per worker.

Preparing a bundle is CPU work (key generation, certificate signing), so a batch spreads
it over a :class:`~concurrent.futures.ProcessPoolExecutor`. Each worker builds its
:class:`~provkit.factory.api.FactoryToolApi` in the pool initializer and keeps it for
every device it prepares; only small picklable records cross the process boundary.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from provkit.errors import BatchError, ProvkitError
from provkit.factory.ca_key import CaKeySource
from provkit.line.archive import write_sealed_copy
from provkit.line.layout import write_atomic
from provkit.line.lifeline import Lifeline, hold


@dataclass(frozen=True, slots=True)
class PrepareJob:
    """One device to prepare: the attempt it belongs to and its identity."""

    attempt_id: int
    endpoint_name: str
    serial_number: str
    out_path: Path | None = None
    """Where the worker writes the bundle (then only its digest travels back)."""
    device_keys_location: Path | None = None
    """``externally_supplied``: the folder with this device's key and certificate."""
    seal_to: bytes | None = None
    """The bundle archive's public key (DER): the worker also writes the sealed copy."""


@dataclass(frozen=True, slots=True)
class PreparedBundle:
    """A prepared bundle with what the registry records about it.

    ``error_code``/``error_message`` are set (and ``config_data`` empty) when the FCU
    refused the device.
    """

    attempt_id: int
    config_data: bytes = b""
    bundle_sha256: str = ""
    written_to: Path | None = None
    warnings: tuple[str, ...] = ()
    key_mode: str = ""
    """fcu.yml ``device-key-generation-mode``: ``by_tool``, ``externally_supplied`` or ``by_device``."""
    device_cert_sha256: str | None = None
    device_cert_serial: str | None = None
    ca_sha256: str | None = None
    ca_key: str | None = None
    """The CA key that signed the device certificate (``None``: provkit signed none in this bundle)."""
    device_cert: bytes | None = None
    """The device certificate (DER) the bundle carries, recorded for the device's page."""
    enrollment_id: str | None = None
    session_id: str | None = None
    """``by_device``: the session id of the first message (the certificate message needs it)."""
    error_code: int | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a bundle was produced."""
        return self.error_message is None

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bundle."""
        return self.bundle_sha256 or hashlib.sha256(self.config_data).hexdigest()


class Preparer:
    """Prepares bundles in the current process with one FCU instance."""

    def __init__(
        self, home_dir: Path | None, config_file: Path | None = None, ca_key: CaKeySource | None = None
    ) -> None:
        # Imported here so worker start-up cost is paid once, in the initializer.
        from provkit.factory.api import FactoryToolApi
        from provkit.factory.paths import FcuPaths

        self.api = FactoryToolApi(home_dir=home_dir, config_file=config_file, ca_key=ca_key)
        self.ca_sha256 = _ca_fingerprint(FcuPaths.resolve(home_dir, config_file=config_file).ca_cert)

    def prepare(self, job: PrepareJob) -> PreparedBundle:
        """Prepare one bundle; FCU errors are returned, not raised."""
        try:
            request = self.api.prepare_device_configuration(
                job.endpoint_name, job.serial_number, job.device_keys_location
            )
            key_mode = str(self.api.config.key_mode)
        except ProvkitError as exc:
            return PreparedBundle(job.attempt_id, error_code=exc.code, error_message=str(exc))
        config_data = request.config_data
        certificate = request.device_certificate
        written_to = None
        if job.out_path is not None:
            # Writing in the worker keeps the parent (which shares the cores) nearly idle.
            try:
                job.out_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                write_atomic(job.out_path, config_data, durable=False)
                if job.seal_to is not None:
                    write_sealed_copy(job.out_path, config_data, job.seal_to)
            except OSError as exc:
                return PreparedBundle(
                    job.attempt_id,
                    error_code=BatchError.default_code,
                    error_message=f"cannot write {job.out_path}: {exc}",
                )
            written_to = job.out_path
        return PreparedBundle(
            job.attempt_id,
            config_data=b"" if written_to else config_data,
            bundle_sha256=hashlib.sha256(config_data).hexdigest(),
            written_to=written_to,
            warnings=tuple(warning.message for warning in request.warnings),
            # Described once, when the bundle was built: nothing is read back from it.
            enrollment_id=None if certificate is None else certificate.enrollment_id,
            session_id=request.session_id,
            key_mode=key_mode,
            device_cert_sha256=None if certificate is None else certificate.sha256,
            device_cert_serial=None if certificate is None else certificate.serial,
            ca_sha256=self.ca_sha256,
            ca_key=None if certificate is None else certificate.ca_key,
            device_cert=None if certificate is None or not certificate.der else certificate.der,
        )


def _ca_fingerprint(path: Path) -> str | None:
    from provkit.crypto.x509 import load_certificate, sha256_fingerprint

    try:
        return sha256_fingerprint(load_certificate(path.read_bytes())).hex()
    except (OSError, ProvkitError):
        return None


# ---------------------------------------------------------------- worker processes
_worker: Preparer | None = None


def _init_worker(
    home_dir: Path | None, config_file: Path | None, ca_key: CaKeySource | None, lifeline: tuple[int, int]
) -> None:
    global _worker  # one FCU per worker process is the point of the pool
    hold(lifeline)  # first: a parent killed while this worker starts still takes it along
    _worker = Preparer(home_dir, config_file, ca_key)


def _prepare_in_worker(job: PrepareJob) -> PreparedBundle:
    assert _worker is not None, "worker initializer did not run"
    return _worker.prepare(job)


def default_workers() -> int:
    """One worker per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class PreparePool:
    """Worker processes, each with its FCU loaded, for preparing many bundles.

    Args:
        workers: number of processes (0: one per core).
        home_dir: FCU home.
        config_file: ``fcu.yml`` to use instead of the home's.
        ca_key: the CA key in a token, when not found through fcu.yml or the keystore. Each
            worker opens its own PKCS#11 session (and reads the PIN itself).

    The workers die with this process, even when it is killed (see
    :mod:`provkit.line.lifeline`): none is left behind to hold the registry or the cores.
    """

    def __init__(
        self,
        workers: int,
        home_dir: Path | None,
        config_file: Path | None = None,
        ca_key: CaKeySource | None = None,
    ) -> None:
        self.workers = workers or default_workers()
        self._lifeline = Lifeline()
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=Lifeline.context(),
            initializer=_init_worker,
            initargs=(home_dir, config_file, ca_key, self._lifeline.fds),
        )

    def warm_up(self) -> None:
        """Start every worker now (so start-up is not counted as preparation time)."""
        list(self._pool.map(_ready, range(self.workers * 2)))

    def map(self, jobs: list[PrepareJob]) -> Iterator[PreparedBundle]:
        """Prepare ``jobs`` and yield the results in order."""
        chunk = max(1, min(128, len(jobs) // (self.workers * 4) or 1))
        return self._pool.map(_prepare_in_worker, jobs, chunksize=chunk)

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(cancel_futures=True)
        self._lifeline.close()

    def __enter__(self) -> PreparePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _ready(_: int) -> bool:
    return _worker is not None

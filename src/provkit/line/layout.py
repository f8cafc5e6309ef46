"""The batch directory: manifest, a copy of the input, bundles, report.

::

    DIR/batch.json          batch id and digest of the input (written once)
    DIR/devices.csv         the input the batch was created from
    DIR/bundles/<id>.cbor   one bundle per attempt (attempt id in the name), 0600 in a 0700
                            directory; sealed (<id>.cbor.sealed) or removed once the
                            attempt is over (see provkit.line.archive)
    DIR/report.json         outcome of every device, rewritten after each step

Files are written to a temporary name and renamed, so a batch killed mid-write never
leaves a truncated bundle or manifest behind.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provkit.errors import BatchError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write_atomic(path: Path, data: bytes | Iterable[bytes], *, durable: bool = True) -> None:
    """Write ``data`` (bytes, or chunks of it) to ``path`` via a temporary file and rename.

    The rename makes the write all-or-nothing for a killed process. ``durable`` also
    syncs to disk (against power loss); bundles skip it because the registry holds their
    digest and a bundle that does not match is simply prepared again. Chunks are written
    as they come, so a large document (a report) is never held whole.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 in one step: bundles hold private keys, and nothing a batch writes is
    # meant for other users of the station.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        for chunk in (data,) if isinstance(data, bytes) else data:
            handle.write(chunk)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    tmp.replace(path)


@dataclass(frozen=True, slots=True)
class BatchDir:
    """Paths of one batch directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        """``batch.json``."""
        return self.root / "batch.json"

    @property
    def devices(self) -> Path:
        """The copy of the input CSV."""
        return self.root / "devices.csv"

    @property
    def report(self) -> Path:
        """``report.json``."""
        return self.root / "report.json"

    @property
    def bundles(self) -> Path:
        """The directory of bundle files (mode 0700)."""
        return self.root / "bundles"

    def bundle(self, attempt_id: int, endpoint_name: str) -> Path:
        """Bundle file of one attempt (endpoint name made filesystem-safe)."""
        return self.bundles / f"{attempt_id:08d}-{_UNSAFE.sub('_', endpoint_name)[:80]}.cbor"

    def secure_bundles(self) -> None:
        """Create the bundle directory with mode 0700, or narrow an existing one to it.

        Raises:
            BatchError: the directory cannot be created or its mode set.
        """
        try:
            self.bundles.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self.bundles.stat().st_mode) != 0o700:
                self.bundles.chmod(0o700)  # a directory made by an older provkit, or by hand
        except OSError as exc:
            raise BatchError(f"cannot secure bundle directory {self.bundles}: {exc}") from exc

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or ``None`` for a new directory.

        Raises:
            BatchError: the manifest exists but is unreadable.
        """
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BatchError(f"batch manifest {self.manifest} is unreadable: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("batch_id"), str):
            raise BatchError(f"batch manifest {self.manifest} has no batch_id")
        return data

    def create(self, devices_text: str, devices_sha256: str) -> str:
        """Create the directory and manifest for a new batch; returns the batch id.

        Raises:
            BatchError: the directory cannot be written.
        """
        batch_id = uuid.uuid4().hex
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.secure_bundles()
            write_atomic(self.devices, devices_text.encode())
            manifest = {
                "batch_id": batch_id,
                "devices_sha256": devices_sha256,
                "created_at": datetime.now(UTC).isoformat(),
            }
            write_atomic(self.manifest, json.dumps(manifest, indent=2).encode())
        except OSError as exc:
            raise BatchError(f"cannot write batch directory {self.root}: {exc}") from exc
        return batch_id

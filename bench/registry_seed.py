"""Seed a registry with a year of a factory's realistic records, fast (bulk insert).

The rows look like what ``provkit batch run`` records: batches of a few thousand
devices per station; per device an attempt with its certificate fingerprint and serial,
the CA's fingerprint, the device's answer (about 180 bytes), InfoMessage, warnings and
enrollment id; the identity in ``provisioned`` and kept in ``reservations``, and the
pattern allocation in ``allocations``. Some devices needed a retry (a failed attempt
superseded by the next one), a few never got provisioned, a few were reprovisioned
later (a verified attempt superseded by one of a later batch).

Rows go in with the driver's bulk paths — ``executemany`` in large transactions on
SQLite, ``COPY`` on PostgreSQL — not one provisioning at a time; the registry's own
triggers keep its ``stats`` counts meanwhile.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from provkit.registry import Registry
from provkit.registry.schema import allocations, attempts, batches, provisioned, reservations, sequences

STATIONS: Final = ("line-1", "line-2", "line-3", "line-4")
BATCH_SIZE: Final = 5000
RETRIED: Final = 0.02
"""Share of devices whose first attempt failed (no answer in time) and was retried."""
UNPROVISIONED: Final = 0.005
"""Share of devices whose last attempt failed (the device refused the bundle)."""
REPROVISIONED: Final = 0.003
"""Share of devices provisioned again later by ``--reprovision``."""

_RESPONSE: Final = bytes.fromhex(
    "bf6d536368656d6556657273696f6e65302e302e316c52657475726e53746174757300"
    "6b496e666f4d657373616765781e54686520466163746f72792070726f636573732073"
    "75636365656465640a6b5761726e696e67496e666f83781e4974656d206e6f74207365"
    "743a6d6265642e557064617465417574684365727478174974656d206e6f7420736574"
    "3a6d6265642e436c617373496478184974656d206e6f74207365743a6d6265642e5665"
    "6e646f724964ff"
)
_WARNINGS: Final = "Item not set:mbed.UpdateAuthCert\nItem not set:mbed.ClassId\nItem not set:mbed.VendorId"
_TIMEOUT: Final = "device 10.0.{0}.{1}:7777: no answer within 30.0 s"
_REFUSED: Final = (
    "Execution failed on device with error #11: Invalid certificate: "
    "mbed.LwM2MDeviceCert does not match mbed.LwM2MDevicePrivateKey"
)


@dataclass(frozen=True, slots=True)
class Seeded:
    """What was written."""

    attempts: int
    provisioned: int
    batches: int
    seconds: float


def _sha(seed: int, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{seed}".encode()).hexdigest()


def _enrollment(sha: str) -> str:
    raw = sha.upper()
    return "A-" + ":".join(raw[i : i + 2] for i in range(0, 64, 2))


@dataclass(slots=True)
class _Chunk:
    """The rows of one batch, per table (written together, then dropped)."""

    batches: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    allocations: list[dict[str, Any]]
    holders: list[dict[str, Any]]
    """Attempts holding their identity (``provisioned`` and ``reservations`` rows)."""


class _Rows:
    """Generates the rows batch by batch, in id order, from a seeded random source.

    A batch is handed out only once the next one is generated: a device reprovisioned
    in batch ``k`` supersedes its attempt of batch ``k - 1``, which is then still here.
    """

    def __init__(self, devices: int, seed: int = 17, end: datetime | None = None) -> None:
        self.devices = devices
        self.random = random.Random(seed)
        self.year = timedelta(days=365)
        self.start = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)
        if end is not None:
            # The last batch starts ten minutes before ``end``: the year ends now.
            last = (max(0, devices - 1) // BATCH_SIZE) * BATCH_SIZE
            self.start = end - timedelta(minutes=10) - self.year * last / max(1, devices)
        self.ca = {s: _sha(n, "ca") for n, s in enumerate(STATIONS)}
        self.attempts = 0
        self.provisioned = 0
        self.batches = 0
        self.pools: set[str] = set()

    def chunks(self) -> Iterator[_Chunk]:
        """Every batch's rows (about 1.02 attempts per device)."""
        held: list[dict[str, Any]] = []
        pending: _Chunk | None = None
        next_id = 1
        for first in range(0, self.devices, BATCH_SIZE):
            chunk, next_id = self._batch(first, next_id, held)
            if pending is not None:
                yield self._final(pending)
            pending = chunk
        if pending is not None:
            yield self._final(pending)

    def _final(self, chunk: _Chunk) -> _Chunk:
        chunk.holders = [a for a in chunk.attempts if a["state"] == "verified"]
        self.attempts += len(chunk.attempts)
        self.provisioned += len(chunk.holders)
        self.batches += 1
        return chunk

    def _batch(self, first: int, next_id: int, later: list[dict[str, Any]]) -> tuple[_Chunk, int]:
        rnd = self.random
        count = min(BATCH_SIZE, self.devices - first)
        station = STATIONS[(first // BATCH_SIZE) % len(STATIONS)]
        batch_id = _sha(first, "batch")[:32]
        when = self.start + self.year * first / max(1, self.devices)
        pool = f"pattern:{station}|{{prefix}}-{{seq:08d}}|SN{{seq:010d}}"
        self.pools.add(pool)
        chunk = _Chunk(
            [{"id": batch_id, "station_id": station, "source": "devices.csv", "created_at": when}], [], [], []
        )
        # Devices of the previous batch sent back and reprovisioned in this one.
        for old in later:
            again = self._attempt(next_id, batch_id, f"r{old['id']}", station, when, first)
            again.update(endpoint_name=old["endpoint_name"], serial_number=old["serial_number"])
            old.update(state="superseded", superseded_by_id=next_id)
            chunk.attempts.append(again)
            next_id += 1
        later.clear()
        for n in range(first, first + count):
            moment = when + timedelta(seconds=(n - first) / 300)
            identity = (f"{station}-{n:08d}", f"SN{n:010d}")
            chunk.allocations.append(
                {
                    "pool": pool,
                    "endpoint_name": identity[0],
                    "serial_number": identity[1],
                    "station_id": station,
                    "allocated_at": moment,
                }
            )
            slot = str(n - first + 2)
            previous = None
            if rnd.random() < RETRIED:
                previous = self._attempt(next_id, batch_id, slot, station, moment, n)
                previous.update(
                    state="failed",
                    error_code=1012,
                    error_message=_TIMEOUT.format(n % 250, n % 200),
                    response=None,
                    return_status=None,
                    info_message=None,
                    warnings=None,
                    provisioned_at=None,
                )
                chunk.attempts.append(previous)
                next_id += 1
            attempt = self._attempt(next_id, batch_id, slot, station, moment, n)
            attempt.update(endpoint_name=identity[0], serial_number=identity[1])
            if previous is not None:
                previous.update(
                    endpoint_name=identity[0], serial_number=identity[1], superseded_by_id=next_id
                )
                attempt.update(supersedes_id=previous["id"], tries=2)
            next_id += 1
            chunk.attempts.append(attempt)
            if rnd.random() < UNPROVISIONED:
                attempt.update(
                    state="failed",
                    error_code=1004,
                    error_message=_REFUSED,
                    return_status=11,
                    provisioned_at=None,
                    enrollment_id=None,
                )
            elif rnd.random() < REPROVISIONED:
                later.append(attempt)
        return chunk, next_id

    def _attempt(
        self, attempt_id: int, batch_id: str, slot: str, station: str, moment: datetime, n: int
    ) -> dict[str, Any]:
        cert = _sha(attempt_id, "cert")
        return {
            "id": attempt_id,
            "batch_id": batch_id,
            "slot": slot,
            "address": f"10.0.{n % 250}.{n % 200}:7777",
            "endpoint_name": "",
            "serial_number": "",
            "station_id": station,
            "key_mode": "by_tool",
            "state": "verified",
            "bundle_sha256": _sha(attempt_id, "bundle"),
            "device_cert_sha256": cert,
            "device_cert_serial": _sha(attempt_id, "serial")[:40],
            "ca_sha256": self.ca[station],
            "response": _RESPONSE,
            "return_status": 0,
            "info_message": "The Factory process succeeded",
            "warnings": _WARNINGS,
            "enrollment_id": _enrollment(cert),
            "error_code": None,
            "error_message": None,
            "tries": 1,
            "supersedes_id": None,
            "superseded_by_id": None,
            "created_at": moment,
            "updated_at": moment + timedelta(milliseconds=150),
            "provisioned_at": moment + timedelta(milliseconds=150),
        }


def _provisioned(holders: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for attempt in holders:
        yield {
            "endpoint_name": attempt["endpoint_name"],
            "serial_number": attempt["serial_number"],
            "attempt_id": attempt["id"],
            "provisioned_at": attempt["provisioned_at"],
        }


def _reservations(holders: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for attempt in holders:
        yield {
            "endpoint_name": attempt["endpoint_name"],
            "serial_number": attempt["serial_number"],
            "attempt_id": attempt["id"],
            "inherited": True,
            "reserved_at": attempt["provisioned_at"],
        }


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy's SQLite DateTime storage format (the registry reads these back).
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def _columns(table: Any) -> list[str]:
    # Allocation ids are the database's own; attempt and batch ids are given.
    return [c.name for c in table.columns if c.name != "id" or table is not allocations]


def _bulk_sqlite(raw: Any, table: Any, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    names = _columns(table)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    cursor = raw.cursor()
    cursor.executemany(sql, ([_sqlite_value(row.get(n)) for n in names] for row in rows))
    cursor.close()


def _bulk_postgres(raw: Any, table: Any, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    names = _columns(table)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row.get(n) for n in names])


def seed(url: str, devices: int, seed_value: int = 17, end: datetime | None = None) -> Seeded:
    """Seed the (empty) registry at ``url`` with ``devices`` devices' worth of records.

    The year of records starts on 2025-01-06, or, with ``end``, ends then (its last batch
    made ten minutes before): a line view then finds a batch in its last hours.
    """
    import time

    started = time.perf_counter()
    rows = _Rows(devices, seed_value, end)
    with Registry.open(url, station_id="seed") as registry:
        with registry.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            postgres = conn.dialect.name == "postgresql"
            bulk = _bulk_postgres if postgres else _bulk_sqlite
            if not postgres:
                raw.execute("BEGIN IMMEDIATE")
            for chunk in rows.chunks():
                bulk(raw, batches, chunk.batches)
                bulk(raw, attempts, chunk.attempts)
                bulk(raw, provisioned, _provisioned(chunk.holders))
                bulk(raw, reservations, _reservations(chunk.holders))
                bulk(raw, allocations, chunk.allocations)
            bulk(raw, sequences, [{"name": p, "next_value": devices + 1} for p in sorted(rows.pools)])
            if postgres:
                # Ids were given explicitly: move the id sequences past them.
                raw.execute("SELECT setval(pg_get_serial_sequence('attempts', 'id'), max(id)) FROM attempts")
            raw.commit()
            if postgres:
                raw.autocommit = True
                raw.execute("VACUUM ANALYZE")
                raw.autocommit = False
            else:
                raw.execute("ANALYZE")
        registry.fold_counts()
    return Seeded(rows.attempts, rows.provisioned, rows.batches, time.perf_counter() - started)

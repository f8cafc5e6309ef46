"""The batch input: ``devices.csv``, one device per row.

Columns (header required, order free): ``address`` (``host:port`` of the device's
factory agent, or ``smp-serial:PORT[@BAUD]`` / ``smp-udp:HOST[:PORT]`` of a Zephyr board
running Anjay's provisioning image, which takes an LwM2M blob over SMP; required),
``endpoint_name`` and ``serial_number`` (both given, or both
empty to allocate them from the registry), and in ``externally_supplied`` key mode
``device_keys_location`` (the folder with the device's own key and certificate, as
the FCU's ``device_keys_location``; relative to the working directory). A bad row or
a row repeating an address or identity of an earlier row is reported as a
:class:`InputProblem` and left out; the batch goes on with the others.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provkit.errors import AllocationError, BatchError, LinkSpecError
from provkit.registry.allocation import check_identity_value, csv_records, read_csv_file
from provkit.transport.spec import SmpTarget, parse_host_port, parse_link

REQUIRED_COLUMNS: Final = ("address",)
_EXTRA: Final = "\x00extra"  # where DictReader puts surplus cells of a row
KNOWN_COLUMNS: Final = frozenset({"address", "endpoint_name", "serial_number", "device_keys_location"})


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One usable input row.

    Attributes:
        slot: stable key of the row within its batch (the CSV line number).
        line: CSV line number (1 is the header).
        host: device agent host.
        port: device agent TCP port.
        endpoint_name: given endpoint name, or ``None`` to allocate.
        serial_number: given serial number, or ``None`` to allocate.
        device_keys_location: ``externally_supplied`` mode: the folder holding this
            device's key and certificate (relative to the working directory).
    """

    slot: str
    line: int
    host: str
    port: int
    endpoint_name: str | None
    serial_number: str | None
    device_keys_location: str | None = None

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One input row naming a Zephyr board reached over SMP (an ``smp-*`` address).

    Attributes:
        slot: stable key of the row within its batch (the CSV line number).
        line: CSV line number.
        target: the board's SMP link target.
        endpoint_name: given endpoint name, or ``None`` to take the board's ``endpoint.txt``.
        serial_number: given serial number, or ``None`` (the endpoint name is recorded as it).
    """

    slot: str
    line: int
    target: SmpTarget
    endpoint_name: str | None = None
    serial_number: str | None = None

    @property
    def address(self) -> str:
        """The link spec, ``smp-serial:PORT`` or ``smp-udp:HOST:PORT``."""
        return self.target.spec()


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A row that cannot be provisioned, and why."""

    slot: str
    line: int
    reason: str
    code: int = BatchError.default_code
    address: str = ""
    """The row's ``address`` cell as written (to find the device on the line)."""


@dataclass(frozen=True, slots=True)
class DeviceList:
    """A parsed ``devices.csv``: the usable rows, the problems, and the file's digest."""

    rows: tuple[DeviceRow, ...]
    problems: tuple[InputProblem, ...]
    sha256: str
    boards: tuple[BoardRow, ...] = ()
    """Rows naming Zephyr boards over SMP; :attr:`rows` are the FCC device agents."""


def parse_address(text: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too), by the one link parser's rules.

    Raises:
        BatchError: not a host and a port in 1–65535.
    """
    try:
        return parse_host_port(text)
    except LinkSpecError as exc:
        raise BatchError(f"address {text!r} is not host:port ({exc.message})") from exc


def _board(line: int, address: str, endpoint: str | None, serial: str | None, keys: str | None) -> BoardRow:
    try:
        target = parse_link(address)
    except LinkSpecError as exc:
        raise BatchError(f"address {address!r}: {exc.message}") from exc
    if not isinstance(target, SmpTarget):
        raise BatchError(f"address {address!r} is not an SMP board")
    if keys is not None:
        raise BatchError("device_keys_location does not apply to an SMP board")
    if serial is not None and endpoint is None:
        raise BatchError("a serial_number for an SMP board needs its endpoint_name too")
    for value, column in ((endpoint, "endpoint_name"), (serial, "serial_number")):
        if value is not None:
            try:
                check_identity_value(value, column)
            except AllocationError as exc:
                raise BatchError(exc.message) from exc
    return BoardRow(str(line), line, target, endpoint, serial)


def _row(line: int, record: dict[str, str]) -> DeviceRow | BoardRow:
    if _EXTRA in record or None in record.values():
        raise BatchError("wrong number of columns")
    address = (record.get("address") or "").strip()
    endpoint = (record.get("endpoint_name") or "").strip() or None
    serial = (record.get("serial_number") or "").strip() or None
    if address.startswith("smp-"):
        keys = (record.get("device_keys_location") or "").strip() or None
        return _board(line, address, endpoint, serial, keys)
    host, port = parse_address(address)
    if (endpoint is None) != (serial is None):
        raise BatchError("give both endpoint_name and serial_number, or neither (to allocate)")
    try:
        if endpoint is not None and serial is not None:
            check_identity_value(endpoint, "endpoint_name")
            check_identity_value(serial, "serial_number")
    except AllocationError as exc:
        raise BatchError(exc.message) from exc
    keys = (record.get("device_keys_location") or "").strip() or None
    return DeviceRow(str(line), line, host, port, endpoint, serial, keys)


def parse_devices(text: str) -> DeviceList:
    """Parse ``devices.csv`` content (see the module docstring).

    Raises:
        BatchError: the header is missing or lacks a required column (the whole file is
            unusable); individual bad rows become problems instead.
    """
    digest = hashlib.sha256(text.encode()).hexdigest()
    reader = csv.DictReader(io.StringIO(text), restkey=_EXTRA)
    try:
        header = [name.strip() for name in reader.fieldnames or []]
    except csv.Error as exc:
        raise BatchError(f"devices CSV header is unreadable: {exc}") from exc
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise BatchError(f"devices CSV names column(s) {repeated} more than once")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise BatchError(
            f"devices CSV has no {', '.join(missing)} column",
            hint="the header must name address[,endpoint_name,serial_number][,device_keys_location]",
        )
    unknown = sorted(set(header) - KNOWN_COLUMNS)
    if unknown:
        raise BatchError(f"devices CSV has unknown column(s) {unknown}")
    reader.fieldnames = header
    rows: list[DeviceRow] = []
    boards: list[BoardRow] = []
    problems: list[InputProblem] = []
    seen: dict[str, int] = {}
    for line, record in csv_records(reader):
        if isinstance(record, csv.Error):
            problems.append(InputProblem(str(line), line, f"line {line}: unreadable CSV row: {record}"))
            continue
        if not any((value or "").strip() for value in record.values() if isinstance(value, str)):
            continue
        try:
            row = _row(line, record)
        except BatchError as exc:
            address = str(record.get("address") or "").strip()
            problems.append(InputProblem(str(line), line, f"line {line}: {exc.message}", address=address))
            continue
        keys = [f"address {row.address}"]
        if row.endpoint_name is not None:
            keys += [
                f"endpoint name {row.endpoint_name}",
                f"serial number {row.serial_number or row.endpoint_name}",
            ]
        clash = next((key for key in keys if key in seen), None)
        if clash is not None:
            reason = f"line {line}: duplicate {clash} (line {seen[clash]})"
            problems.append(InputProblem(row.slot, line, reason, address=row.address))
            continue
        seen.update(dict.fromkeys(keys, line))
        if isinstance(row, BoardRow):
            boards.append(row)
        else:
            rows.append(row)
    return DeviceList(tuple(rows), tuple(problems), digest, tuple(boards))


def devices_digest(path: Path) -> str:
    """The SHA-256 a batch records for the ``devices.csv`` at ``path`` (without parsing it).

    Raises:
        BatchError: the file cannot be read.
    """
    return hashlib.sha256(read_csv_file(path, BatchError, "devices file").encode()).hexdigest()


def load_devices(path: Path) -> DeviceList:
    """Read and parse a ``devices.csv`` file.

    Raises:
        BatchError: the file cannot be read or has no usable header.
    """
    return parse_devices(read_csv_file(path, BatchError, "devices file"))

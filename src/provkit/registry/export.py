"""Streaming export of the provisioned devices: CSV, JSON, or the enrollment ids alone.

The rows come from one query walked with a server-side cursor (``yield_per``), and are
written out a few thousand at a time, so exporting a million devices takes the memory
of one chunk, not of the million. The enrollment-id file is what a cloud bulk
device-ownership upload takes: one ``A-…`` id per line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, TextIO

from sqlalchemy import Connection, Select, select

from provkit.registry.schema import attempts, provisioned

EXPORT_COLUMNS: Final = (
    "enrollment_id",
    "endpoint_name",
    "serial_number",
    "device_cert_sha256",
    "device_cert_serial",
    "ca_sha256",
    "ca_key",
    "key_mode",
    "station_id",
    "provisioned_at",
)
"""Columns of an export (one row per provisioned device), in CSV order."""

ExportFormat = Literal["csv", "json", "enrollment"]

_CHUNK: Final = 2000
"""Rows fetched from the cursor, and written, at a time."""


def export_query() -> Select[Any]:
    """The provisioned devices in attempt-id order, walked along ``provisioned``'s unique index."""
    columns = [attempts.c[name] for name in EXPORT_COLUMNS]
    return (
        select(*columns)
        .select_from(provisioned.join(attempts, attempts.c.id == provisioned.c.attempt_id))
        .order_by(provisioned.c.attempt_id)
    )


def utc_iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``+00:00`` (SQLite hands back naive UTC, PostgreSQL the session's zone)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.isoformat() + "+00:00"
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat()


def csv_line(values: Sequence[str | None]) -> str:
    """One CSV record, as ``csv.writer`` writes it (minimal quoting, a line feed at the end).

    Identity values rarely need quoting, so the plain join is taken when the joined
    line shows none was needed (no quote, no line break, no comma inside a value), and
    the csv module writes the rare record that does.
    """
    if None in values:
        values = ["" if v is None else v for v in values]
    line = ",".join(values)  # type: ignore[arg-type]  # (None replaced above)
    if (
        len(values) > 1
        and line.count(",") == len(values) - 1
        and '"' not in line
        and "\n" not in line
        and "\r" not in line
    ):
        return line + "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _rows(conn: Connection) -> Iterator[tuple[str | None, ...]]:
    """Each provisioned device's export values, ``provisioned_at`` as ISO 8601 text."""
    last = len(EXPORT_COLUMNS) - 1
    for row in conn.execution_options(yield_per=_CHUNK).execute(export_query()):
        yield (*row[:last], utc_iso(row[last]))


def _chunks(lines: Iterable[str]) -> Iterator[str]:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= _CHUNK:
            yield "".join(batch)
            batch.clear()
    if batch:
        yield "".join(batch)


def write_export(conn: Connection, out: TextIO, fmt: ExportFormat = "csv") -> int:
    """Write every provisioned device to ``out`` as ``fmt``; returns how many were written.

    ``csv``: a header and one record per device; ``json``: an array of objects (the
    same text ``json.dumps(records, indent=2)`` gives, written as it goes);
    ``enrollment``: the enrollment ids, one per line (devices without one left out).
    """
    count = 0

    def counted(rows: Iterator[tuple[str | None, ...]]) -> Iterator[tuple[str | None, ...]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    rows = counted(_rows(conn))
    if fmt == "enrollment":
        lines: Iterator[str] = (f"{row[0]}\n" for row in rows if row[0])
    elif fmt == "json":
        lines = _json_lines(rows)
    else:
        out.write(csv_line(EXPORT_COLUMNS))
        lines = (csv_line(row) for row in rows)
    for chunk in _chunks(lines):
        out.write(chunk)
    if fmt == "json" and count == 0:
        out.write("[]\n")
    return count


_encode = json.JSONEncoder().encode
_JSON_RECORD: Final = "{" + ",".join(f'\n    "{name}": %s' for name in EXPORT_COLUMNS) + "\n  }"
"""One record as ``json.dumps(record, indent=2)`` writes it, indented one level more."""


def _json_record(row: tuple[str | None, ...]) -> str:
    """The JSON text of one exported record, its values encoded by the C string encoder.

    (``json.dumps`` with ``indent`` takes the pure-Python encoder, several times slower.)
    """
    return _JSON_RECORD % tuple(["null" if value is None else _encode(value) for value in row])


def _json_lines(rows: Iterator[tuple[str | None, ...]]) -> Iterator[str]:
    """``json.dumps(list_of_records, indent=2)``, one record at a time (no text if there are none)."""
    separator = "[\n  "
    for row in rows:
        yield separator + _json_record(row)
        separator = ",\n  "
    if separator != "[\n  ":
        yield "\n]\n"

"""Identity patterns: ``{prefix}-{seq:06d}`` style templates for endpoint names and serials.

Only two fields exist: ``prefix`` (a fixed text chosen per line) and ``seq`` (the
sequence number the registry hands out atomically). Validating the template up front
turns a typo into an :class:`~provkit.errors.AllocationError` instead of a crash in
the middle of a batch.
"""

from __future__ import annotations

import csv
import io
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from provkit.errors import AllocationError, ProvkitError

_FIELDS: Final = frozenset({"prefix", "seq"})
MAX_IDENTITY_LENGTH: Final = 256
_Row = TypeVar("_Row")


@dataclass(frozen=True, slots=True)
class Identity:
    """An endpoint name and serial number allocated together."""

    endpoint_name: str
    serial_number: str


@dataclass(frozen=True, slots=True)
class IdentityPattern:
    """Templates for the endpoint name and the serial number of one sequence.

    Attributes:
        endpoint: e.g. ``"{prefix}-{seq:06d}"``.
        serial: e.g. ``"SN{seq:08d}"``; defaults to the endpoint template.
        prefix: the value of ``{prefix}``.
    """

    endpoint: str
    serial: str = ""
    prefix: str = ""

    def __post_init__(self) -> None:
        for template in (self.endpoint, self.serial or self.endpoint):
            check_template(template)

    @property
    def pool(self) -> str:
        """The sequence name: templates and prefix together identify a sequence."""
        return f"pattern:{self.prefix}|{self.endpoint}|{self.serial or self.endpoint}"[:128]

    def render(self, seq: int) -> Identity:
        """Return the identity for sequence number ``seq``."""
        endpoint = self.endpoint.format(prefix=self.prefix, seq=seq)
        serial = (self.serial or self.endpoint).format(prefix=self.prefix, seq=seq)
        return Identity(endpoint, serial)


def _field_names(template: str) -> list[str]:
    """The fields a template uses, by base name (``seq`` for ``{seq:06d}``)."""
    return [
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name is not None
    ]


def check_template(template: str) -> None:
    """Validate an identity template.

    Raises:
        AllocationError: unknown field, no ``{seq}``, or a malformed template.
    """
    try:
        fields = _field_names(template)
        template.format(prefix="", seq=0)
    except (ValueError, KeyError, IndexError) as exc:
        raise AllocationError(f"malformed identity pattern {template!r}: {exc}") from exc
    unknown = set(fields) - _FIELDS
    if unknown:
        raise AllocationError(
            f"identity pattern {template!r} uses unknown field(s) {sorted(unknown)}",
            hint="only {prefix} and {seq} are available, e.g. {prefix}-{seq:06d}",
        )
    if "seq" not in fields:
        raise AllocationError(
            f"identity pattern {template!r} has no {{seq}} field, so every value would be the same"
        )


def uses_prefix(template: str) -> bool:
    """Whether an identity template contains the ``{prefix}`` field."""
    return "prefix" in _field_names(template)


def parse_identity_csv(text: str) -> list[Identity]:
    """Parse a CSV pool of pre-assigned identities (``endpoint_name,serial_number``).

    A header row naming those two columns is optional. Every value must be non-empty,
    printable and unique within the file.

    Raises:
        AllocationError: naming the first bad line.
    """
    rows: list[list[str]] = []
    for line, row in csv_records(csv.reader(io.StringIO(text))):
        if isinstance(row, csv.Error):  # a pool is used whole: one unreadable row refuses the file
            raise AllocationError(f"identity CSV line {line}: unreadable: {row}")
        rows.append(row)
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["endpoint_name", "serial_number"]:
        rows = rows[1:]
        first_line = 2
    else:
        first_line = 1
    seen_endpoints: set[str] = set()
    seen_serials: set[str] = set()
    identities: list[Identity] = []
    for line, row in enumerate(rows, start=first_line):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise AllocationError(f"identity CSV line {line}: expected 2 columns, got {len(row)}")
        endpoint, serial = (cell.strip() for cell in row)
        for label, value in (("endpoint name", endpoint), ("serial number", serial)):
            check_identity_value(value, f"identity CSV line {line}: {label}")
        if endpoint in seen_endpoints or serial in seen_serials:
            raise AllocationError(f"identity CSV line {line}: duplicate identity {endpoint}/{serial}")
        seen_endpoints.add(endpoint)
        seen_serials.add(serial)
        identities.append(Identity(endpoint, serial))
    return identities


def read_csv_file(path: Path, error: type[ProvkitError], what: str) -> str:
    """The text of the CSV file ``path`` (UTF-8, a BOM allowed).

    Raises:
        ProvkitError: of class ``error``, naming ``what`` the file is, when it cannot be read.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from exc


def csv_records(reader: Iterator[_Row]) -> Iterator[tuple[int, _Row | csv.Error]]:
    """Each row of a ``csv`` reader with the line it ends on, or the error refusing it.

    A row the csv module refuses (an over-long field, say) is yielded as its
    :class:`csv.Error`, and reading goes on with the next line. The line of a refused
    row is counted here: the reader's own count does not always include it.
    """
    line = int(getattr(reader, "line_num", 0))  # a DictReader has read its header already
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line += 1
            yield line, exc
            continue
        line = int(getattr(reader, "line_num", line + 1))
        yield line, row


def check_identity_value(value: str, where: str) -> None:
    """Refuse an empty, over-long or non-printable endpoint name or serial number.

    Raises:
        AllocationError: with ``where`` as the message prefix.
    """
    if not value:
        raise AllocationError(f"{where} is empty")
    if len(value) > MAX_IDENTITY_LENGTH:
        raise AllocationError(f"{where} is longer than {MAX_IDENTITY_LENGTH} characters")
    if not value.isprintable():
        raise AllocationError(f"{where} contains non-printable characters")

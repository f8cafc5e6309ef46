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
from dataclasses import dataclass
from typing import Final

from provkit.errors import AllocationError

_FIELDS: Final = frozenset({"prefix", "seq"})
MAX_IDENTITY_LENGTH: Final = 256


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


def check_template(template: str) -> None:
    """Validate an identity template.

    Raises:
        AllocationError: unknown field, no ``{seq}``, or a malformed template.
    """
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        template.format(prefix="", seq=0)
    except (ValueError, KeyError, IndexError) as exc:
        raise AllocationError(f"malformed identity pattern {template!r}: {exc}") from exc
    unknown = {name.split(".")[0].split("[")[0] for name in fields} - _FIELDS
    if unknown:
        raise AllocationError(
            f"identity pattern {template!r} uses unknown field(s) {sorted(unknown)}",
            hint="only {prefix} and {seq} are available, e.g. {prefix}-{seq:06d}",
        )
    if "seq" not in fields:
        raise AllocationError(
            f"identity pattern {template!r} has no {{seq}} field, so every value would be the same"
        )


def parse_identity_csv(text: str) -> list[Identity]:
    """Parse a CSV pool of pre-assigned identities (``endpoint_name,serial_number``).

    A header row naming those two columns is optional. Every value must be non-empty,
    printable and unique within the file.

    Raises:
        AllocationError: naming the first bad line.
    """
    rows = list(csv.reader(io.StringIO(text)))
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

"""SenML (RFC 8428) records, and the LwM2M provisioning view of them.

Two views of a SenML pack:

* :class:`Record` — the generic view: any RFC 8428 label, with base name/time/unit/value
  resolved (``bn`` + ``n``, ``bt`` + ``t``, ``bv`` + ``v``) as RFC 8428 §4.6 describes.
* :class:`Entry` — what factory provisioning writes: one absolute LwM2M path and one
  typed value. A provisioning blob is encoded as one map per entry with the name label
  and exactly one of ``v`` / ``vs`` / ``vb`` / ``vd`` / ``vlo``, never ``bn``, ``bt`` or
  ``t`` — the form Anjay's tool writes (``serialize_senml_cbor.py``) and its device reads
  (``anjay_senml_in.c``).

The wire codecs live in :mod:`provkit.lwm2m.senml_cbor` and :mod:`provkit.lwm2m.senml_json`;
the device's acceptance rules in :mod:`provkit.lwm2m.strict`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from provkit.errors import SenmlError
from provkit.lwm2m.paths import parse_resource_path

CBOR_LABELS: Final[dict[int | str, str]] = {
    -1: "bver",
    -2: "bn",
    -3: "bt",
    -4: "bu",
    -5: "bv",
    -6: "bs",
    0: "n",
    1: "u",
    2: "v",
    3: "vs",
    4: "vb",
    5: "s",
    6: "t",
    7: "ut",
    8: "vd",
    "vlo": "vlo",
}
"""CBOR label → JSON label name (RFC 8428 Table 4, plus LwM2M's text-keyed ``vlo``)."""

LABEL_KEYS: Final[dict[str, int | str]] = {name: key for key, name in CBOR_LABELS.items()}
"""JSON label name → CBOR label."""

VALUE_LABELS: Final = ("v", "vs", "vb", "vd", "vlo")
"""Labels that carry a record's value; a record has at most one."""


@dataclass(frozen=True, slots=True, order=True)
class Objlnk:
    """An LwM2M object link ``oid:iid`` (SenML label ``vlo``)."""

    oid: int
    iid: int

    def __post_init__(self) -> None:
        for part in (self.oid, self.iid):
            # Configs may pass anything here, whatever the annotations say.
            if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= 65535:  # type: ignore[redundant-expr]
                raise SenmlError(f"object link part {part!r} is not an integer 0..65535")

    def __str__(self) -> str:
        return f"{self.oid}:{self.iid}"

    @classmethod
    def parse(cls, text: str) -> Objlnk:
        """Parse ``"oid:iid"``; each part 0..65535 in plain decimal.

        Raises:
            SenmlError: anything else (``"32:42foo"``, ``"1:423444"``).
        """
        head, sep, tail = text.partition(":")
        if not sep or not all(p.isascii() and p.isdigit() and len(p) <= 5 for p in (head, tail)):
            raise SenmlError(f"object link {text!r} is not 'oid:iid'")
        if int(head) > 65535 or int(tail) > 65535:
            raise SenmlError(f"object link {text!r} has a part above 65535")
        return cls(int(head), int(tail))


Value = bool | int | float | str | bytes | Objlnk
"""A provisioned resource value."""


def value_label(value: Value) -> str:
    """Return the SenML label that carries ``value`` (bool is checked before int).

    Raises:
        SenmlError: an unsupported type or a non-finite float.
    """
    if isinstance(value, bool):
        return "vb"
    if isinstance(value, int):
        return "v"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SenmlError(f"value {value!r} is not a finite number")
        return "v"
    if isinstance(value, str):
        return "vs"
    if isinstance(value, bytes):
        return "vd"
    if isinstance(value, Objlnk):
        return "vlo"
    raise SenmlError(f"unsupported value type {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One provisioned resource (instance): absolute path and typed value.

    Raises:
        SenmlError: the path does not name a resource, or the value type is unsupported.
    """

    path: str
    value: Value

    def __post_init__(self) -> None:
        parse_resource_path(self.path)
        value_label(self.value)
        if isinstance(self.value, int) and not isinstance(self.value, bool) and abs(self.value) >= 1 << 64:
            raise SenmlError(f"{self.path}: integer {self.value} does not fit in 64 bits")

    @property
    def ids(self) -> tuple[int, ...]:
        """The path's ids."""
        return parse_resource_path(self.path)


@dataclass(frozen=True, slots=True)
class Record:
    """A resolved generic SenML record.

    Attributes:
        name: base name + name.
        value: the value (base value added to ``v``), or ``None``.
        label: the label that carried the value (``"v"``, ``"vs"`` …), or ``None``.
        time: base time + time, or ``None`` when neither is present.
        unit: the unit (``u``, else ``bu``), or ``None``.
        sum: base sum + sum, or ``None``.
        extra: any other labels (``ut``, ``bver``), as ``(name, value)`` pairs.
    """

    name: str
    value: Value | None = None
    label: str | None = None
    time: float | None = None
    unit: str | None = None
    sum: float | None = None
    extra: tuple[tuple[str, object], ...] = ()


def _number(label: str, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SenmlError(f"label {label!r} must be a number, not {type(value).__name__}")
    return value


def _check_value(label: str, value: object) -> Value:
    if label == "v":
        return _number(label, value)
    expected: dict[str, type] = {"vs": str, "vb": bool, "vd": bytes, "vlo": str}
    if not isinstance(value, expected[label]):
        raise SenmlError(f"label {label!r} must be {expected[label].__name__}, not {type(value).__name__}")
    return Objlnk.parse(value) if label == "vlo" and isinstance(value, str) else value  # type: ignore[return-value]


def resolve(raw: Iterable[Sequence[tuple[str, object]]]) -> list[Record]:
    """Resolve raw records (label name → value pairs) into :class:`Record` s (RFC 8428 §4.6).

    Raises:
        SenmlError: a must-understand label (``..._``), a duplicate label, two values in
            one record, a value of the wrong type, or a record without a name.
    """
    base_name, base_time, base_unit, base_value, base_sum = "", 0.0, None, 0.0, 0.0
    records: list[Record] = []
    for index, pairs in enumerate(raw):
        fields: dict[str, object] = {}
        for label, raw_value in pairs:
            if label.endswith("_"):
                raise SenmlError(f"record {index}: must-understand label {label!r} is not supported")
            if label in fields:
                raise SenmlError(f"record {index}: label {label!r} appears twice")
            fields[label] = raw_value
        if "bn" in fields:
            if not isinstance(fields["bn"], str):
                raise SenmlError(f"record {index}: 'bn' must be text")
            base_name = fields["bn"]
        if "bt" in fields:
            base_time = _number("bt", fields["bt"])
        if "bu" in fields:
            unit = fields["bu"]
            base_unit = unit if isinstance(unit, str) else None
        if "bv" in fields:
            base_value = _number("bv", fields["bv"])
        if "bs" in fields:
            base_sum = _number("bs", fields["bs"])
        name = fields.get("n", "")
        if not isinstance(name, str):
            raise SenmlError(f"record {index}: 'n' must be text")
        labels = [label for label in VALUE_LABELS if label in fields]
        if len(labels) > 1:
            raise SenmlError(f"record {index}: more than one value ({', '.join(labels)})")
        value: Value | None = None
        if labels:
            value = _check_value(labels[0], fields[labels[0]])
            if labels[0] == "v" and base_value:
                value = _number("v", value) + base_value
        time = None
        if "t" in fields or "bt" in fields:
            time = base_time + _number("t", fields.get("t", 0))
        unit_value = fields.get("u", base_unit)
        unit_text = unit_value if isinstance(unit_value, str) else None
        total = None
        if "s" in fields:
            total = base_sum + _number("s", fields["s"])
        known = {"bn", "bt", "bu", "bv", "bs", "n", "u", "t", "s", *VALUE_LABELS}
        extra = tuple((k, v) for k, v in fields.items() if k not in known)
        if not base_name + name:
            raise SenmlError(f"record {index}: no name (neither 'bn' nor 'n')")
        records.append(
            Record(
                base_name + name,
                value,
                labels[0] if labels else None,
                time,
                unit_text,
                total,
                extra,
            )
        )
    return records


def to_entries(records: Iterable[Record]) -> list[Entry]:
    """Turn resolved records into provisioning entries (each must name a resource and carry a value).

    Raises:
        SenmlError: a record has no value or its name is not a resource path.
    """
    entries = []
    for record in records:
        if record.value is None:
            raise SenmlError(f"record {record.name!r} has no value")
        entries.append(Entry(record.name, record.value))
    return entries

"""The Anjay device's acceptance rules for a provisioning blob (``anjay_senml_in.c``).

:func:`decode_strict` reads a SenML CBOR blob exactly as strictly as the device:

* the top level is an array and every element a map;
* only the labels ``bt`` (-3), ``bn`` (-2), ``n`` (0), ``v`` (2), ``vs`` (3), ``vb`` (4),
  ``t`` (6), ``vd`` (8) and the text label ``"vlo"``; any other label (``bver``, ``bu``,
  ``bv``, ``bs``, ``u``, ``s``, ``ut``, other text labels) rejects the whole blob;
* no label twice in one record;
* ``v`` a number (integers, floats, tag-4 decimal fractions), ``vs`` and ``vlo`` text,
  ``vb`` a boolean, ``vd`` a byte string; ``null`` (LwM2M 1.2 deletion) is refused;
* object links ``oid:iid`` with parts 0..65535;
* the base name persists until replaced; base name + name must be a path of at most
  24 bytes reaching a Resource (``/oid/iid/rid[/riid]``), ids 0..65534;
* every record carries a value (a provisioning blob writes, it never reads);
* no path twice.

Time labels are tolerated (when numbers), and ignored, because the device accepts the
keys; provkit never emits them. Tags other than 4 are ignored, as by the device (so a
self-described blob, tag 55799, reads like a plain one). Unlike the device, trailing
bytes after the array are refused: a truncated-then-padded transfer must not pass as a
good blob.
"""

from __future__ import annotations

import math
from typing import Final

from provkit.errors import SenmlError
from provkit.lwm2m.senml import CBOR_LABELS, LABEL_KEYS, Entry, Objlnk, Value
from provkit.lwm2m.senml_cbor import plain, raw_records, untagged
from provkit.lwm2m.senml_json import raw_json

ACCEPTED_LABELS: Final[frozenset[int | str]] = frozenset({-3, -2, 0, 2, 3, 4, 6, 8, "vlo"})
"""The labels the device understands; anything else rejects the blob."""

_VALUE_KEYS: Final = (2, 3, 4, 8, "vlo")


def _label_text(key: object) -> str:
    name = CBOR_LABELS.get(key) if isinstance(key, int | str) and not isinstance(key, bool) else None
    return f"{key!r} ({name})" if name and name != key else repr(key)


def _value(index: int, key: int | str, value: object) -> Value:
    value = plain(value)
    if value is None:
        raise SenmlError(f"record {index}: null values (LwM2M 1.2 deletes) are not accepted")
    if key == 2:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SenmlError(f"record {index}: 'v' must be a number, not {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SenmlError(f"record {index}: 'v' must be finite")
        return value
    expected: dict[int | str, type] = {3: str, 4: bool, 8: bytes, "vlo": str}
    if not isinstance(value, expected[key]):
        raise SenmlError(
            f"record {index}: {_label_text(key)} must be {expected[key].__name__}, not {type(value).__name__}"
        )
    if key == "vlo":
        assert isinstance(value, str)
        return Objlnk.parse(value)
    assert isinstance(value, str | bool | bytes)
    return value


def check_records(records: list[list[tuple[object, object]]]) -> list[Entry]:
    """Apply the device's rules to records given as ``(cbor_label, value)`` pairs.

    Raises:
        SenmlError: the first rule broken, with the record index and the reason.
    """
    base_name = ""
    entries: list[Entry] = []
    seen: set[str] = set()
    for index, pairs in enumerate(records):
        fields: dict[int | str, object] = {}
        for tagged_key, value in pairs:
            key = untagged(tagged_key)
            if isinstance(key, bool) or not isinstance(key, int | str) or key not in ACCEPTED_LABELS:
                raise SenmlError(f"record {index}: label {_label_text(key)} is not accepted by the device")
            if key in fields:
                raise SenmlError(f"record {index}: label {_label_text(key)} appears twice")
            fields[key] = value
        for key in (-3, 6):
            if key in fields:
                stamp = plain(fields[key])
                if isinstance(stamp, bool) or not isinstance(stamp, int | float):
                    raise SenmlError(f"record {index}: {_label_text(key)} must be a number")
        if -2 in fields:
            bn = plain(fields[-2])
            if not isinstance(bn, str):
                raise SenmlError(f"record {index}: 'bn' must be text")
            base_name = bn
        name = plain(fields.get(0, ""))
        if not isinstance(name, str):
            raise SenmlError(f"record {index}: 'n' must be text")
        values = [key for key in _VALUE_KEYS if key in fields]
        if len(values) > 1:
            raise SenmlError(f"record {index}: more than one value label")
        if not values:
            raise SenmlError(f"record {index}: no value (a provisioning blob must write every record)")
        path = base_name + name
        try:
            entry = Entry(path, _value(index, values[0], fields[values[0]]))
        except SenmlError as exc:
            if str(exc).startswith("record "):
                raise
            raise type(exc)(f"record {index}: {exc}") from exc
        if path in seen:
            raise SenmlError(f"record {index}: path {path} is written twice")
        seen.add(path)
        entries.append(entry)
    return entries


def decode_strict(data: bytes) -> list[Entry]:
    """Decode a SenML CBOR provisioning blob under the device's rules.

    Raises:
        SenmlError: broken CBOR or any rule above, with a reason naming the record.
    """
    return check_records([list(pairs.items) for pairs in raw_records(data)])


def decode_strict_json(text: str | bytes) -> list[Entry]:
    """Decode a SenML JSON pack under the same rules (labels by their JSON names)."""
    records = [[(LABEL_KEYS.get(label, label), value) for label, value in pairs] for pairs in raw_json(text)]
    return check_records(records)  # type: ignore[arg-type]

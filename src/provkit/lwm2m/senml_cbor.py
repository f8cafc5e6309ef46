"""SenML CBOR (RFC 8428 §6, content format 112): encoder for provisioning entries, generic decoder.

The encoder writes the Anjay provisioning form: a definite array with one definite map
per entry, the name label ``0`` first, then exactly one value label; never ``bn``, ``bt``
or ``t``. The generic decoder accepts any RFC 8428 pack (indefinite lengths, base
fields, units, times) and resolves it into :class:`~provkit.lwm2m.senml.Record` s; the
device's stricter reading is :func:`provkit.lwm2m.strict.decode_strict`.
"""

from __future__ import annotations

from collections.abc import Iterable

from provkit.errors import SenmlError
from provkit.lwm2m import cbor
from provkit.lwm2m.senml import CBOR_LABELS, LABEL_KEYS, Entry, Objlnk, Record, resolve, value_label


def entry_map(entry: Entry) -> dict[int | str, object]:
    """Return the CBOR map of one entry: ``{0: path, <label>: value}``."""
    label = value_label(entry.value)
    value = str(entry.value) if isinstance(entry.value, Objlnk) else entry.value
    return {0: entry.path, LABEL_KEYS[label]: value}


def encode_cbor(entries: Iterable[Entry]) -> bytes:
    """Encode entries as a SenML CBOR provisioning blob.

    Raises:
        SenmlError: no entries, or the same path twice (the device would keep only one).
    """
    items = list(entries)
    if not items:
        raise SenmlError("nothing to encode: the configuration has no resources")
    seen: set[str] = set()
    for entry in items:
        if entry.path in seen:
            raise SenmlError(f"path {entry.path} appears twice")
        seen.add(entry.path)
    return cbor.dumps([entry_map(entry) for entry in items])


def _decimal_fraction(tag: cbor.Tag) -> float:
    value = tag.value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(part, int) and not isinstance(part, bool) for part in value)
    ):
        exponent, mantissa = value
        if isinstance(exponent, int) and isinstance(mantissa, int) and abs(exponent) <= 400:
            return float(mantissa) * 10.0**exponent
    raise SenmlError("tag 4 decimal fraction is not [exponent, mantissa]")


def plain(value: object) -> object:
    """Unwrap tag 4 decimal fractions to floats; refuse other tags and ``undefined``."""
    if isinstance(value, cbor.Tag):
        if value.tag == 4:
            return _decimal_fraction(value)
        raise SenmlError(f"unsupported CBOR tag {value.tag}")
    if value is cbor.UNDEFINED:
        raise SenmlError("CBOR 'undefined' is not a SenML value")
    return value


def raw_records(data: bytes) -> list[cbor.Pairs]:
    """Decode the outer array of maps without interpreting labels.

    Raises:
        SenmlError: broken CBOR, or not an array of maps.
    """
    top = cbor.loads(data)
    if not isinstance(top, list):
        raise SenmlError("a SenML pack must be a CBOR array")
    for index, item in enumerate(top):
        if not isinstance(item, cbor.Pairs):
            raise SenmlError(f"record {index} is not a CBOR map")
    return top


def decode_cbor(data: bytes) -> list[Record]:
    """Decode any RFC 8428 SenML CBOR pack and resolve base values.

    Raises:
        SenmlError: broken CBOR, unknown integer labels, wrong value types, bad names.
    """
    named: list[list[tuple[str, object]]] = []
    for index, pairs in enumerate(raw_records(data)):
        record = []
        for key, value in pairs.items:
            if isinstance(key, bool) or key not in CBOR_LABELS:
                if isinstance(key, str):
                    # RFC 8428 §4.4: extensions use text labels; keep them as they are.
                    record.append((key, plain(value)))
                    continue
                raise SenmlError(f"record {index}: unknown SenML label {key!r}")
            record.append((CBOR_LABELS[key], plain(value)))
        named.append(record)
    return resolve(named)

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


def untagged(value: object) -> object:
    """Strip every tag except 4 (decimal fraction): the device reads tagged items as plain ones.

    This is how a self-described blob (tag 55799, ``d9 d9 f7`` in front) or a tagged string
    still reads as the device reads it (``ignore_tag`` in Anjay's ``anjay_json_like_cbor_decoder.c``).
    """
    while isinstance(value, cbor.Tag) and value.tag != 4:
        value = value.value
    return value


def plain(value: object) -> object:
    """Unwrap tag 4 decimal fractions to floats, ignore other tags; refuse ``undefined``."""
    value = untagged(value)
    if isinstance(value, cbor.Tag):
        return _decimal_fraction(value)
    if value is cbor.UNDEFINED:
        raise SenmlError("CBOR 'undefined' is not a SenML value")
    return value


def raw_records(data: bytes) -> list[cbor.Pairs]:
    """Decode the outer array of maps without interpreting labels.

    Raises:
        SenmlError: broken CBOR, or not an array of maps.
    """
    top = untagged(cbor.loads(data))
    if not isinstance(top, list):
        raise SenmlError("a SenML pack must be a CBOR array")
    records = [untagged(item) for item in top]
    for index, item in enumerate(records):
        if not isinstance(item, cbor.Pairs):
            raise SenmlError(f"record {index} is not a CBOR map")
    return records  # type: ignore[return-value]


def decode_cbor(data: bytes) -> list[Record]:
    """Decode any RFC 8428 SenML CBOR pack and resolve base values.

    Raises:
        SenmlError: broken CBOR, unknown integer labels, wrong value types, bad names.
    """
    named: list[list[tuple[str, object]]] = []
    for index, pairs in enumerate(raw_records(data)):
        record = []
        for tagged_key, value in pairs.items:
            key = untagged(tagged_key)
            if isinstance(key, bool) or not isinstance(key, int | str) or key not in CBOR_LABELS:
                if isinstance(key, str):
                    # RFC 8428 §4.4: extensions use text labels; keep them as they are.
                    record.append((key, plain(value)))
                    continue
                raise SenmlError(f"record {index}: unknown SenML label {key!r}")
            record.append((CBOR_LABELS[key], plain(value)))
        named.append(record)
    return resolve(named)

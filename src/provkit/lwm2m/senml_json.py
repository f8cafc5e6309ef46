"""SenML JSON (RFC 8428 §5, content format 110) for provisioning entries and generic packs.

Data values (``vd``) are base64url without padding, as RFC 8428 §5 specifies; the decoder
also accepts padded input. Duplicate labels are detected (``json`` would keep the last).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from provkit.errors import SenmlError
from provkit.lwm2m.senml import Entry, Objlnk, Record, resolve, value_label


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """Decode base64url with or without padding.

    Raises:
        SenmlError: not base64url.
    """
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SenmlError(f"'vd' value {text[:20]!r} is not base64url") from exc


def entry_object(entry: Entry) -> dict[str, object]:
    """Return the JSON object of one entry: ``{"n": path, <label>: value}``."""
    label = value_label(entry.value)
    value: object = entry.value
    if isinstance(value, bytes):
        value = _b64encode(value)
    elif isinstance(value, Objlnk):
        value = str(value)
    return {"n": entry.path, label: value}


def encode_json(entries: Iterable[Entry], *, indent: int | None = None) -> str:
    """Encode entries as a SenML JSON array (same records as the CBOR blob)."""
    return json.dumps([entry_object(entry) for entry in entries], indent=indent, ensure_ascii=False)


def _pairs(pairs: list[tuple[str, object]]) -> list[tuple[str, object]]:
    # Keep every pair so duplicates can be reported by the resolver.
    return pairs


def _no_constant(name: str) -> object:
    raise SenmlError(f"{name} is not a SenML number")


def raw_json(text: str | bytes) -> list[list[tuple[str, object]]]:
    """Parse a SenML JSON array into per-record ``(label, value)`` pairs, ``vd`` decoded.

    Raises:
        SenmlError: not JSON, not an array of objects, or a bad ``vd``.
    """
    try:
        top = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise SenmlError(f"not valid SenML JSON: {exc}") from exc
    if not isinstance(top, list):
        raise SenmlError("a SenML pack must be a JSON array")
    records = []
    for index, item in enumerate(top):
        if not isinstance(item, list) or not all(isinstance(p, tuple) for p in item):
            raise SenmlError(f"record {index} is not a JSON object")
        pairs = []
        for label, value in item:
            if label == "vd":
                if not isinstance(value, str):
                    raise SenmlError(f"record {index}: 'vd' must be a base64url string")
                value = b64decode(value)
            pairs.append((label, value))
        records.append(pairs)
    return records


def decode_json(text: str | bytes) -> list[Record]:
    """Decode any RFC 8428 SenML JSON pack and resolve base values.

    Raises:
        SenmlError: as :func:`raw_json`, plus the resolver's checks.
    """
    return resolve(raw_json(text))

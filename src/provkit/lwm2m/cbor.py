"""SenML's CBOR rules on top of the shared reader/writer (:mod:`provkit.cbor`).

The Anjay device accepts indefinite-length items, needs at most 2 levels for a pack
(array → map, tag 4 adds 2) and knows no simple values beyond false/true/null/undefined.
Integers stay within 64 bits (Anjay has no bignums) and floats are written in the
shortest of half/single/double precision that is exact. Maps come back as
:class:`Pairs` (wire order, duplicates kept) so that a label given twice is seen.

Every failure is a :class:`~provkit.errors.SenmlError`. No I/O.
"""

from __future__ import annotations

from typing import Final

from provkit import cbor
from provkit.cbor import UNDEFINED, CborDecodeError, Undefined
from provkit.cbor import CborMap as Pairs
from provkit.cbor import CborTag as Tag
from provkit.errors import SenmlError

__all__ = ["MAX_DEPTH", "UNDEFINED", "Pairs", "Tag", "Undefined", "dumps", "loads"]

MAX_DEPTH: Final = 8
"""Deepest nesting accepted; a SenML pack needs 2 (array → map), tag 4 adds 2."""


def loads(data: bytes) -> object:
    """Decode exactly one CBOR item spanning all of ``data``.

    Returns:
        ``int``, ``float``, ``bytes``, ``str``, ``bool``, ``None``, :data:`UNDEFINED`,
        ``list``, :class:`Pairs` or :class:`Tag`.

    Raises:
        SenmlError: truncated, malformed, too deeply nested, or followed by extra bytes.
    """
    try:
        return cbor.loads(data, max_depth=MAX_DEPTH, indefinite=True, unassigned_simple=False)
    except CborDecodeError as exc:
        raise SenmlError(f"broken CBOR: {exc}") from exc


def dumps(value: object) -> bytes:
    """Encode ints, floats, bools, ``None``, bytes, text, lists and dicts (insertion order).

    Raises:
        SenmlError: an unsupported type or an integer beyond 64 bits.
    """
    try:
        return cbor.dumps(value, floats=True, bignums=False)
    except (TypeError, ValueError) as exc:
        raise SenmlError(str(exc)) from exc

"""The wire formats' CBOR rules on top of the shared reader/writer (:mod:`provkit.cbor`).

FCC's tinycbor parser only accepts definite-length items (``strict``, the request
bundles); responses are read leniently because every FCC generation writes an
indefinite top map. Unassigned simple values come back as ``CborTag(-1, n)`` for the
bundle decoder to refuse as a wrong type, as tinycbor does. The writer refuses floats:
neither bundles nor responses carry any.

Decoding errors stay :class:`CborDecodeError`; the bundle and response decoders
translate them into :class:`~provkit.errors.BundleDecodeError` /
:class:`~provkit.errors.ResponseDecodeError` with their own statuses.
"""

from __future__ import annotations

from typing import Final

from provkit import cbor
from provkit.cbor import CborDecodeError, CborMap, CborTag, encode_head

__all__ = ["MAX_DEPTH", "CborDecodeError", "CborMap", "CborTag", "dumps", "encode_head", "loads"]

MAX_DEPTH: Final = 16
"""Deepest nesting accepted; a bundle needs 4 (map → array → map → Ext map)."""


def loads(data: bytes, *, strict: bool = True) -> object:
    """Decode exactly one CBOR item that must end at the end of ``data``.

    Args:
        data: the encoded item.
        strict: refuse indefinite-length strings, arrays and maps (tinycbor rules).

    Returns:
        ``int``, ``bytes``, ``str``, ``list``, :class:`CborMap`, :class:`CborTag`,
        ``bool``, ``None``, ``float`` or :data:`provkit.cbor.UNDEFINED`.

    Raises:
        CborDecodeError: truncated, trailing bytes, malformed, too deep, or refused form.
    """
    return cbor.loads(data, max_depth=MAX_DEPTH, indefinite=not strict, unassigned_simple=True)


def dumps(value: object) -> bytes:
    """Encode ``value`` with definite lengths and shortest integer forms.

    Supports ``int`` (tag 2 / tag 3 bignums beyond 64 bits), ``bytes``, ``str``,
    sequences (arrays), ``Mapping`` and :class:`CborMap` (maps, insertion order kept),
    ``bool`` and ``None``. Callers that need 0/1 integers convert booleans first.

    Raises:
        TypeError: for any other type, floats included.
    """
    return cbor.dumps(value, floats=False, bignums=True)

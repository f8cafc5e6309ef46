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
from provkit.cbor import CborDecodeError, CborMap, CborTag, WireBytes, WireText, encode_head

__all__ = [
    "MAX_DEPTH",
    "CborDecodeError",
    "CborMap",
    "CborTag",
    "WireBytes",
    "WireText",
    "dumps",
    "encode_head",
    "loads",
]

MAX_DEPTH: Final = 16
"""Deepest nesting accepted; a bundle needs 4 (map → array → map → Ext map)."""


def loads(data: bytes, *, strict: bool = True, located: bool = False, raw_text: bool = False) -> object:
    """Decode exactly one CBOR item that must end at the end of ``data``.

    Args:
        data: the encoded item.
        strict: refuse indefinite-length strings, arrays and maps (tinycbor rules).
        located: read strings as FCC's C parser sees them: text that is not UTF-8 is kept
            byte for byte (``surrogateescape``) instead of refused, and every string is a
            :class:`WireBytes` / :class:`WireText` that knows its offset in ``data``.
        raw_text: keep text that is not UTF-8 byte for byte (``surrogateescape``) without
            locating strings: what a device echoes from a bundle is read as it was sent.

    Returns:
        ``int``, ``bytes``, ``str``, ``list``, :class:`CborMap`, :class:`CborTag`,
        ``bool``, ``None``, ``float`` or :data:`provkit.cbor.UNDEFINED`.

    Raises:
        CborDecodeError: truncated, trailing bytes, malformed, too deep, or refused form.
    """
    return cbor.loads(
        data,
        max_depth=MAX_DEPTH,
        indefinite=not strict,
        unassigned_simple=True,
        text_errors="surrogateescape" if located or raw_text else "strict",
        positions=located,
    )


def dumps(value: object) -> bytes:
    """Encode ``value`` with definite lengths and shortest integer forms.

    Supports ``int`` (tag 2 / tag 3 bignums beyond 64 bits), ``bytes``, ``str``,
    sequences (arrays), ``Mapping`` and :class:`CborMap` (maps, insertion order kept),
    ``bool`` and ``None``. Callers that need 0/1 integers convert booleans first.

    Raises:
        TypeError: for any other type, floats included.
    """
    return cbor.dumps(value, floats=False, bignums=True)

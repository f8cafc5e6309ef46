"""A small CBOR (RFC 8949) reader and writer for the provisioning wire formats.

Why not just ``cbor2``? FCC's tinycbor parser only accepts *definite-length* strings,
arrays and maps, and it processes a map's pairs in wire order (duplicates included).
``cbor2`` silently joins indefinite-length chunks and folds maps into dicts, which hides
exactly the defects the device must refuse. This reader therefore:

* walks the raw bytes once, with bounded nesting depth (no recursion bombs) and with
  every declared length checked against the bytes that remain (no allocation bombs);
* in ``strict`` mode refuses indefinite-length items, as tinycbor does;
* returns maps as :class:`CborMap` (the pairs in wire order) and unknown tags as
  :class:`CborTag`, so callers decide what a tag 2 bignum means where.

The writer produces definite-length items only; the response encoder in
:mod:`provkit.wire.response` writes its indefinite maps with :func:`encode_head`.

No I/O, no clocks, no randomness.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from provkit.errors import WireError

MAX_DEPTH: Final = 16
"""Deepest nesting accepted; a bundle needs 4 (map → array → map → Ext map)."""

_BREAK: Final = 0xFF
_UINT64_LIMIT: Final = 1 << 64


class CborDecodeError(WireError, ValueError):
    """The bytes are not well-formed CBOR, or use a form the caller refused.

    Internal to the wire layer: bundle and response decoders translate it into
    :class:`~provkit.errors.BundleDecodeError` / :class:`~provkit.errors.ResponseDecodeError`.
    """


@dataclass(frozen=True, slots=True)
class CborMap:
    """A decoded CBOR map: its key/value pairs in wire order, duplicates kept.

    Attributes:
        pairs: the ``(key, value)`` pairs as they appeared on the wire.
        indefinite: whether the map was encoded with indefinite length.
    """

    pairs: tuple[tuple[object, object], ...]
    indefinite: bool = False

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[object, object]]:
        return iter(self.pairs)

    def get(self, key: object, default: object = None) -> object:
        """Return the value of the first pair whose key equals ``key``, else ``default``."""
        for k, v in self.pairs:
            if type(k) is type(key) and k == key:
                return v
        return default


@dataclass(frozen=True, slots=True)
class CborTag:
    """A tagged item the reader does not interpret (e.g. tag 2 + byte string)."""

    tag: int
    value: object


def loads(data: bytes, *, strict: bool = True) -> object:
    """Decode exactly one CBOR item that must end at the end of ``data``.

    Args:
        data: the encoded item.
        strict: refuse indefinite-length strings, arrays and maps (tinycbor rules).

    Returns:
        ``int``, ``bytes``, ``str``, ``list``, :class:`CborMap`, :class:`CborTag`,
        ``bool``, ``None`` or ``float``.

    Raises:
        CborDecodeError: truncated, trailing bytes, malformed, too deep, or refused form.
    """
    reader = _Reader(bytes(data), strict)
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise CborDecodeError(f"{len(reader.data) - reader.pos} trailing bytes after the CBOR item")
    return value


class _Reader:
    """Cursor over the raw bytes; one method per CBOR construct."""

    def __init__(self, data: bytes, strict: bool) -> None:
        self.data = data
        self.pos = 0
        self.strict = strict

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise CborDecodeError("truncated CBOR item")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def head(self) -> tuple[int, int, int | None]:
        """Read an initial byte and its argument; argument ``None`` means indefinite."""
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, info
        if info <= 27:
            return major, info, int.from_bytes(self.take(1 << (info - 24)), "big")
        if info == 31 and major in (2, 3, 4, 5, 7):
            if major == 7:
                raise CborDecodeError("unexpected break byte")
            if self.strict:
                raise CborDecodeError("indefinite-length items are not accepted")
            return major, info, None
        raise CborDecodeError(f"reserved additional information {info} in initial byte 0x{initial:02x}")

    def at_break(self) -> bool:
        if self.pos >= len(self.data):
            raise CborDecodeError("truncated indefinite-length item")
        if self.data[self.pos] == _BREAK:
            self.pos += 1
            return True
        return False

    def item(self, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise CborDecodeError(f"nesting deeper than {MAX_DEPTH}")
        major, info, arg = self.head()
        if major == 0:
            return arg
        if major == 1:
            assert arg is not None
            return -1 - arg
        if major in (2, 3):
            return self.string(major, arg)
        if major == 4:
            return self.array(arg, depth)
        if major == 5:
            return self.map(arg, depth)
        if major == 6:
            assert arg is not None
            return CborTag(arg, self.item(depth + 1))
        return self.simple(info, arg)

    def string(self, major: int, length: int | None) -> bytes | str:
        if length is None:
            parts = []
            while not self.at_break():
                chunk_major, _, chunk_len = self.head()
                if chunk_major != major or chunk_len is None:
                    raise CborDecodeError("bad chunk inside an indefinite-length string")
                parts.append(self.take(chunk_len))
            raw = b"".join(parts)
        else:
            raw = self.take(length)
        if major == 2:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CborDecodeError("text string is not valid UTF-8") from exc

    def array(self, count: int | None, depth: int) -> list[object]:
        items: list[object] = []
        if count is None:
            while not self.at_break():
                items.append(self.item(depth + 1))
            return items
        # Every item takes at least one byte: refuse counts the buffer cannot hold.
        if count > len(self.data) - self.pos:
            raise CborDecodeError("array length exceeds the remaining bytes")
        for _ in range(count):
            items.append(self.item(depth + 1))
        return items

    def map(self, count: int | None, depth: int) -> CborMap:
        pairs: list[tuple[object, object]] = []
        if count is None:
            while not self.at_break():
                key = self.item(depth + 1)
                pairs.append((key, self.item(depth + 1)))
            return CborMap(tuple(pairs), indefinite=True)
        if 2 * count > len(self.data) - self.pos:
            raise CborDecodeError("map length exceeds the remaining bytes")
        for _ in range(count):
            key = self.item(depth + 1)
            pairs.append((key, self.item(depth + 1)))
        return CborMap(tuple(pairs))

    def simple(self, info: int, arg: int | None) -> object:
        assert arg is not None
        if info == 25:
            return float(struct.unpack(">e", arg.to_bytes(2, "big"))[0])
        if info == 26:
            return float(struct.unpack(">f", arg.to_bytes(4, "big"))[0])
        if info == 27:
            return float(struct.unpack(">d", arg.to_bytes(8, "big"))[0])
        if info == 24 and arg < 32:
            raise CborDecodeError("two-byte simple value below 32 is not well-formed")
        return {20: False, 21: True, 22: None}.get(arg, CborTag(-1, arg))


# ---------------------------------------------------------------- writer


def encode_head(major: int, argument: int) -> bytes:
    """Encode an initial byte with the shortest argument form (RFC 8949 §3)."""
    if argument < 24:
        return bytes([(major << 5) | argument])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([(major << 5) | info]) + argument.to_bytes(size, "big")
    raise ValueError("CBOR argument does not fit in 64 bits")


def dumps(value: object) -> bytes:
    """Encode ``value`` with definite lengths and shortest integer forms.

    Supports ``int`` (tag 2 / tag 3 bignums beyond 64 bits), ``bytes``, ``str``,
    sequences (arrays), ``Mapping`` and :class:`CborMap` (maps, insertion order kept),
    ``bool`` and ``None``. Callers that need 0/1 integers convert booleans first.

    Raises:
        TypeError: for any other type.
    """
    out = bytearray()
    _dump(value, out)
    return bytes(out)


def _dump(value: object, out: bytearray) -> None:
    if value is None or isinstance(value, bool):
        out.append({None: 0xF6, False: 0xF4, True: 0xF5}[value])
    elif isinstance(value, int):
        _dump_int(value, out)
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out += encode_head(2, len(raw)) + raw
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += encode_head(3, len(raw)) + raw
    elif isinstance(value, CborMap | Mapping):
        pairs = value.pairs if isinstance(value, CborMap) else tuple(value.items())
        out += encode_head(5, len(pairs))
        for key, item in pairs:
            _dump(key, out)
            _dump(item, out)
    elif isinstance(value, Sequence):
        out += encode_head(4, len(value))
        for item in value:
            _dump(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def _dump_int(value: int, out: bytearray) -> None:
    if 0 <= value < _UINT64_LIMIT:
        out += encode_head(0, value)
    elif -_UINT64_LIMIT <= value < 0:
        out += encode_head(1, -1 - value)
    else:
        # Bignum: tag 2 (positive) or 3 (negative) around the big-endian magnitude.
        tag, magnitude = (2, value) if value > 0 else (3, -1 - value)
        raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        out += encode_head(6, tag) + encode_head(2, len(raw)) + raw

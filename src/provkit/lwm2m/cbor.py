"""A small CBOR reader and writer for SenML, with the strictness the Anjay device applies.

Why not ``cbor2`` alone? It folds maps into dicts, so a record that carries the same
label twice (which Anjay refuses) would silently lose one of them. This reader keeps
every map as its key/value pairs in wire order, bounds nesting depth, and checks each
declared length against the bytes that remain, so hostile blobs cannot allocate or
recurse without limit. It accepts indefinite-length items (Anjay does) and keeps tags
as :class:`Tag` for the caller to interpret (tag 4 decimal fractions are numbers).

The writer emits definite lengths, shortest integer heads, and floats in the shortest
of half/single/double precision that is exact.

No I/O.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Final

from provkit.errors import SenmlError

MAX_DEPTH: Final = 8
"""Deepest nesting accepted; a SenML pack needs 2 (array → map), tag 4 adds 2."""


class Undefined:
    """The CBOR ``undefined`` simple value (SenML never uses it; strict mode refuses it)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = Undefined()


@dataclass(frozen=True, slots=True)
class Pairs:
    """A decoded CBOR map: ``(key, value)`` pairs in wire order, duplicates kept."""

    items: tuple[tuple[object, object], ...]


@dataclass(frozen=True, slots=True)
class Tag:
    """A tagged item left for the caller to interpret."""

    tag: int
    value: object


def loads(data: bytes) -> object:
    """Decode exactly one CBOR item spanning all of ``data``.

    Returns:
        ``int``, ``float``, ``bytes``, ``str``, ``bool``, ``None``, :data:`UNDEFINED`,
        ``list``, :class:`Pairs` or :class:`Tag`.

    Raises:
        SenmlError: truncated, malformed, too deeply nested, or followed by extra bytes.
    """
    reader = _Reader(bytes(data))
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise SenmlError(f"broken CBOR: {len(reader.data) - reader.pos} bytes follow the SenML array")
    return value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise SenmlError("broken CBOR: the data ends inside an item")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def head(self) -> tuple[int, int, int | None]:
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, info
        if info <= 27:
            return major, info, int.from_bytes(self.take(1 << (info - 24)), "big")
        if info == 31 and major in (2, 3, 4, 5):
            return major, info, None
        raise SenmlError(f"broken CBOR: invalid initial byte 0x{initial:02x} at offset {self.pos - 1}")

    def at_break(self) -> bool:
        if self.pos >= len(self.data):
            raise SenmlError("broken CBOR: indefinite-length item is not terminated")
        if self.data[self.pos] == 0xFF:
            self.pos += 1
            return True
        return False

    def item(self, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise SenmlError(f"broken CBOR: nesting deeper than {MAX_DEPTH}")
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
            return Tag(arg, self.item(depth + 1))
        return self.simple(info, arg)

    def string(self, major: int, length: int | None) -> bytes | str:
        if length is None:
            parts = []
            while not self.at_break():
                chunk_major, _, chunk_len = self.head()
                if chunk_major != major or chunk_len is None:
                    raise SenmlError("broken CBOR: bad chunk in an indefinite-length string")
                parts.append(self.take(chunk_len))
            raw = b"".join(parts)
        else:
            raw = self.take(length)
        if major == 2:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SenmlError("broken CBOR: text string is not valid UTF-8") from exc

    def array(self, count: int | None, depth: int) -> list[object]:
        items: list[object] = []
        if count is None:
            while not self.at_break():
                items.append(self.item(depth + 1))
            return items
        if count > len(self.data) - self.pos:
            raise SenmlError("broken CBOR: array length exceeds the data")
        for _ in range(count):
            items.append(self.item(depth + 1))
        return items

    def map(self, count: int | None, depth: int) -> Pairs:
        pairs: list[tuple[object, object]] = []
        if count is None:
            while not self.at_break():
                key = self.item(depth + 1)
                pairs.append((key, self.item(depth + 1)))
            return Pairs(tuple(pairs))
        if 2 * count > len(self.data) - self.pos:
            raise SenmlError("broken CBOR: map length exceeds the data")
        for _ in range(count):
            key = self.item(depth + 1)
            pairs.append((key, self.item(depth + 1)))
        return Pairs(tuple(pairs))

    def simple(self, info: int, arg: int | None) -> object:
        assert arg is not None
        if info == 25:
            return float(struct.unpack(">e", arg.to_bytes(2, "big"))[0])
        if info == 26:
            return float(struct.unpack(">f", arg.to_bytes(4, "big"))[0])
        if info == 27:
            return float(struct.unpack(">d", arg.to_bytes(8, "big"))[0])
        known: dict[int, object] = {20: False, 21: True, 22: None, 23: UNDEFINED}
        if arg in known:
            return known[arg]
        raise SenmlError(f"broken CBOR: unsupported simple value {arg}")


def _head(major: int, argument: int) -> bytes:
    if argument < 24:
        return bytes([(major << 5) | argument])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([(major << 5) | info]) + argument.to_bytes(size, "big")
    raise SenmlError(f"integer {argument} does not fit in 64 bits")


def _float(value: float) -> bytes:
    if math.isnan(value) or math.isinf(value):
        return b"\xf9" + struct.pack(">e", value)
    for marker, fmt in ((b"\xf9", ">e"), (b"\xfa", ">f")):
        try:
            packed = struct.pack(fmt, value)
        except OverflowError:
            continue
        if struct.unpack(fmt, packed)[0] == value:
            return marker + packed
    return b"\xfb" + struct.pack(">d", value)


def dumps(value: object) -> bytes:
    """Encode ints, floats, bools, ``None``, bytes, text, lists and dicts (insertion order).

    Raises:
        SenmlError: an unsupported type or an integer beyond 64 bits.
    """
    out = bytearray()
    _dump(value, out)
    return bytes(out)


def _dump(value: object, out: bytearray) -> None:
    if value is None or isinstance(value, bool):
        out.append({None: 0xF6, False: 0xF4, True: 0xF5}[value])
    elif isinstance(value, int):
        out += _head(0, value) if value >= 0 else _head(1, -1 - value)
    elif isinstance(value, float):
        out += _float(value)
    elif isinstance(value, bytes):
        out += _head(2, len(value)) + value
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += _head(3, len(raw)) + raw
    elif isinstance(value, dict):
        out += _head(5, len(value))
        for key, item in value.items():
            _dump(key, out)
            _dump(item, out)
    elif isinstance(value, list | tuple):
        out += _head(4, len(value))
        for item in value:
            _dump(item, out)
    else:
        raise SenmlError(f"cannot encode {type(value).__name__} as CBOR")

"""The one CBOR (RFC 8949) reader and writer behind the bundle and SenML codecs.

Why not ``cbor2`` alone? Its decoder folds maps into dicts and silently joins
indefinite-length chunks, which hides exactly the defects a device must see: FCC's
tinycbor walks a map's pairs in wire order (duplicates included) and refuses indefinite
lengths; Anjay refuses a SenML record that carries the same label twice. So the reader
is ours. It:

* walks the raw bytes once, with a caller-chosen nesting limit (no recursion bombs) and
  with every declared length checked against the bytes that remain (no allocation bombs);
* accepts indefinite-length items only when the caller allows them;
* returns maps as :class:`CborMap` (pairs in wire order) and tags as :class:`CborTag`,
  so callers decide what tag 2 (bignum) or tag 4 (decimal fraction) means where.

The writer is ``cbor2``'s: once every map has been turned into an ordered
:class:`CborMap` (written pair by pair, so ``cbor2``'s canonical key sorting never
applies), its canonical mode gives exactly the bytes both formats need — definite
lengths, shortest integer heads, tag 2/3 bignums, shortest exact floats.

Callers translate :class:`CborDecodeError` into their own error type
(:mod:`provkit.wire.cbor_strict`, :mod:`provkit.lwm2m.cbor`). No I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import cbor2

from provkit.errors import ProvkitError

_BREAK: Final = 0xFF
_UINT64_LIMIT: Final = 1 << 64


class CborDecodeError(ProvkitError, ValueError):
    """The bytes are not well-formed CBOR, or use a form the caller refused.

    Never leaves provkit: the wire and LwM2M codecs translate it into their own errors.
    """


@dataclass(frozen=True, slots=True)
class CborMap:
    """A CBOR map: its key/value pairs in wire order, duplicates kept.

    Attributes:
        pairs: the ``(key, value)`` pairs as they appear on the wire.
        indefinite: whether the map was encoded with indefinite length.
    """

    pairs: tuple[tuple[object, object], ...]
    indefinite: bool = False

    @property
    def items(self) -> tuple[tuple[object, object], ...]:
        """The pairs, under the name the SenML code uses for a record's labels."""
        return self.pairs

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


class WireBytes(bytes):
    """A byte string read with positions on: ``at`` is where its payload starts in the input."""

    at: int


class WireText(str):
    """A text string read with positions on: ``at`` is where its payload starts in the input."""

    at: int


@dataclass(frozen=True, slots=True)
class CborTag:
    """A tagged item the reader does not interpret (tag ``-1``: an unassigned simple value)."""

    tag: int
    value: object


class Undefined:
    """The CBOR ``undefined`` simple value (neither format uses it; callers refuse it)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = Undefined()
_SIMPLE: Final[dict[int, object]] = {20: False, 21: True, 22: None, 23: UNDEFINED}


def loads(
    data: bytes,
    *,
    max_depth: int,
    indefinite: bool,
    unassigned_simple: bool,
    text_errors: str = "strict",
    positions: bool = False,
) -> object:
    """Decode exactly one CBOR item that must end at the end of ``data``.

    Args:
        data: the encoded item.
        max_depth: deepest nesting accepted (0 = a lone scalar).
        indefinite: accept indefinite-length strings, arrays and maps (tinycbor does not).
        unassigned_simple: return simple values other than false/true/null/undefined as
            ``CborTag(-1, n)`` instead of refusing them.
        text_errors: how text strings that are not UTF-8 decode (a ``str.decode`` error
            handler): ``"strict"`` refuses them; ``"surrogateescape"`` keeps their bytes
            (``text.encode("utf-8", "surrogateescape")`` gives them back), as a C reader
            that never checks UTF-8 sees them.
        positions: return strings as :class:`WireBytes` / :class:`WireText`, which know
            where their payload starts in ``data``.

    Returns:
        ``int``, ``float``, ``bytes``, ``str``, ``bool``, ``None``, :data:`UNDEFINED`,
        ``list``, :class:`CborMap` or :class:`CborTag`.

    Raises:
        CborDecodeError: truncated, trailing bytes, malformed, too deep, or refused form.
    """
    reader = _Reader(bytes(data), max_depth, indefinite, unassigned_simple, text_errors, positions)
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise CborDecodeError(f"{len(reader.data) - reader.pos} trailing bytes after the CBOR item")
    return value


class _Reader:
    """Cursor over the raw bytes; one method per CBOR construct."""

    def __init__(
        self,
        data: bytes,
        max_depth: int,
        indefinite: bool,
        unassigned_simple: bool,
        text_errors: str,
        positions: bool,
    ) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth
        self.indefinite = indefinite
        self.unassigned_simple = unassigned_simple
        self.text_errors = text_errors
        self.positions = positions

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
        if info == 31 and major in (2, 3, 4, 5):
            if not self.indefinite:
                raise CborDecodeError("indefinite-length items are not accepted")
            return major, info, None
        if initial == _BREAK:
            raise CborDecodeError(f"unexpected break byte at offset {self.pos - 1}")
        raise CborDecodeError(f"invalid initial byte 0x{initial:02x} at offset {self.pos - 1}")

    def at_break(self) -> bool:
        if self.pos >= len(self.data):
            raise CborDecodeError("indefinite-length item is not terminated")
        if self.data[self.pos] == _BREAK:
            self.pos += 1
            return True
        return False

    def item(self, depth: int) -> object:
        if depth > self.max_depth:
            raise CborDecodeError(f"nesting deeper than {self.max_depth}")
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
        try:
            value: bytes | str = raw if major == 2 else raw.decode("utf-8", self.text_errors)
        except UnicodeDecodeError as exc:
            raise CborDecodeError("text string is not valid UTF-8") from exc
        if not self.positions or length is None:
            return value
        located = WireBytes(value) if isinstance(value, bytes) else WireText(value)
        located.at = self.pos - length
        return located

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
        if count is not None and 2 * count > len(self.data) - self.pos:
            raise CborDecodeError("map length exceeds the remaining bytes")
        pairs: list[tuple[object, object]] = []
        while (not self.at_break()) if count is None else len(pairs) < count:
            key = self.item(depth + 1)
            pairs.append((key, self.item(depth + 1)))
        return CborMap(tuple(pairs), indefinite=count is None)

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
        if arg in _SIMPLE:
            return _SIMPLE[arg]
        if self.unassigned_simple:
            return CborTag(-1, arg)
        raise CborDecodeError(f"unsupported simple value {arg}")


# ---------------------------------------------------------------- writer


def encode_head(major: int, argument: int) -> bytes:
    """Encode an initial byte with the shortest argument form (RFC 8949 §3).

    For hand-assembled items ``cbor2`` cannot express, such as an indefinite map
    around definite pairs.

    Raises:
        ValueError: ``argument`` does not fit in 64 bits.
    """
    if argument < 24:
        return bytes([(major << 5) | argument])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if argument < 1 << (8 * size):
            return bytes([(major << 5) | info]) + argument.to_bytes(size, "big")
    raise ValueError("CBOR argument does not fit in 64 bits")


def dumps(value: object, *, floats: bool, bignums: bool) -> bytes:
    """Encode ``value`` with definite lengths, shortest heads and map pairs in order.

    Supports ``int``, ``bytes`` (also ``bytearray``/``memoryview``), ``str``, ``bool``,
    ``None``, sequences (arrays), ``Mapping`` and :class:`CborMap` (maps, insertion order
    and duplicates kept), and, when allowed, ``float`` (shortest exact precision).

    Args:
        value: what to encode.
        floats: accept floats; otherwise they are refused with ``TypeError``.
        bignums: write integers beyond 64 bits as tag 2/3 bignums; otherwise refuse them.

    Raises:
        TypeError: a type outside the list above.
        ValueError: an integer beyond 64 bits when ``bignums`` is false.
    """
    data: bytes = cbor2.dumps(_ordered(value, floats, bignums), canonical=True, default=_write_map)
    return data


def dumps_prechecked(value: object) -> bytes:
    """Encode a value whose types the caller has already checked, in ``cbor2``'s C encoder.

    For ``int`` (tag 2/3 beyond 64 bits), ``bytes``, ``str``, ``None``, ``list``/``tuple``
    and ``dict`` (pairs in insertion order) it writes exactly what :func:`dumps` writes
    with ``bignums=True`` — definite lengths, shortest heads — without walking the value
    in Python first. Callers guarantee there is nothing else in ``value`` (no floats, no
    booleans where integers are meant): the bundle encoder checks a bundle once, or checks
    a template of many bundles once, and then writes through here.
    """
    data: bytes = cbor2.dumps(value)
    return data


def _ordered(value: object, floats: bool, bignums: bool) -> object:
    """Check the types and turn every map into a :class:`CborMap`, so ``cbor2`` keeps pair order."""
    if value is None or isinstance(value, bool | int | str | bytes):
        if isinstance(value, int) and not bignums and not -_UINT64_LIMIT <= value < _UINT64_LIMIT:
            raise ValueError(f"integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, float) and floats:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, CborMap | Mapping):
        pairs = value.pairs if isinstance(value, CborMap) else tuple(value.items())
        return CborMap(tuple((_ordered(k, floats, bignums), _ordered(v, floats, bignums)) for k, v in pairs))
    if isinstance(value, Sequence):
        return [_ordered(item, floats, bignums) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def _write_map(encoder: cbor2.CBOREncoder, value: object) -> None:
    # Only _ordered's CborMaps reach here; anything else was refused before cbor2 ran.
    assert isinstance(value, CborMap)
    encoder.encode_length(5, len(value.pairs))
    for key, item in value.pairs:
        encoder.encode(key)
        encoder.encode(item)

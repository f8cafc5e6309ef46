"""The small CBOR reader: strict versus lenient forms, limits and odd items."""

from __future__ import annotations

import pytest

from provkit.wire.cbor_strict import MAX_DEPTH, CborDecodeError, CborMap, CborTag, dumps, encode_head, loads


def test_indefinite_items_only_in_lenient_mode() -> None:
    """Indefinite strings, arrays and maps are refused when strict and joined when lenient."""
    data = bytes.fromhex("bf617a9f5f4101420203ff7f6161ffffff")
    with pytest.raises(CborDecodeError):
        loads(data)
    value = loads(data, strict=False)
    assert value == CborMap((("z", [b"\x01\x02\x03", "a"]),), indefinite=True)


@pytest.mark.parametrize(
    "data",
    ["ff", "1c", "5f41ff", "5f6161ff", "7f4161ff", "9f", "f818", "a1", "5a00000010", "a161610101", "c2"],
)
def test_malformed_lenient(data: str) -> None:
    """Malformed items are refused even in lenient mode."""
    with pytest.raises(CborDecodeError):
        loads(bytes.fromhex(data), strict=False)


def test_depth_limit() -> None:
    """Nesting past MAX_DEPTH is refused without recursion errors."""
    ok = b"\x81" * MAX_DEPTH + b"\x00"
    assert loads(ok) is not None
    with pytest.raises(CborDecodeError):
        loads(b"\x81" * (MAX_DEPTH + 1) + b"\x00")


def test_simple_values_floats_and_tags() -> None:
    """Floats, simple values and tags decode to Python values or CborTag."""
    assert loads(bytes.fromhex("f93e00")) == 1.5
    assert loads(bytes.fromhex("fa3fc00000")) == 1.5
    assert loads(bytes.fromhex("fb3ff8000000000000")) == 1.5
    assert loads(b"\xf4") is False and loads(b"\xf5") is True and loads(b"\xf6") is None
    assert loads(bytes.fromhex("c24101")) == CborTag(2, b"\x01")
    assert CborMap((("a", 1), ("a", 2))).get("a") == 1


def test_writer_heads_and_bignums() -> None:
    """The writer uses shortest heads and tag 2/3 bignums beyond 64 bits."""
    assert encode_head(0, 23) == b"\x17"
    assert encode_head(0, 24) == b"\x18\x18"
    assert encode_head(2, 256) == b"\x59\x01\x00"
    assert dumps(2**64) == bytes.fromhex("c249010000000000000000")
    assert dumps(-(2**64) - 1) == bytes.fromhex("c349010000000000000000")
    assert dumps(CborMap((("a", 1), ("a", 2)))) == bytes.fromhex("a2616101616102")
    with pytest.raises(TypeError):
        dumps(1.5)
    with pytest.raises(ValueError, match="64 bits"):
        encode_head(0, 2**64)


def test_unassigned_simple_values_and_undefined() -> None:
    """Unassigned simple values come back as CborTag(-1, n) for the decoders to refuse; 0xf7 is undefined."""
    assert loads(b"\xf0") == CborTag(-1, 16)
    assert loads(bytes.fromhex("f820")) == CborTag(-1, 32)
    assert repr(loads(b"\xf7")) == "undefined"


def test_writer_keeps_pair_order_and_byte_like_values() -> None:
    """Maps are written in insertion order (never sorted); bytearray and memoryview are byte strings."""
    value = {"b": 1, "a": [bytearray(b"x"), memoryview(b"y")]}
    assert dumps(value) == bytes.fromhex("a261620161618241784179")

"""SenML's CBOR profile over the shared codec: what it accepts, refuses and writes."""

from __future__ import annotations

import pytest

from provkit.errors import SenmlError
from provkit.lwm2m import cbor


def test_map_pairs_keep_insertion_order_not_canonical_order() -> None:
    """cbor2's canonical mode must not sort maps: the response's keys stay as given."""
    data = cbor.dumps({"Result": 0, "Reason": "", "Written": 1})
    assert data == bytes.fromhex("a3") + b"\x66Result\x00" + b"\x66Reason\x60" + b"\x67Written\x01"
    assert cbor.dumps({2: 1, 0: "/1"}) == bytes.fromhex("a2020100622f31")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(1.5, "f93e00"), (100000.0, "fa47c35000"), (0.1, "fb3fb999999999999a"), (-0.0, "f98000")],
)
def test_floats_take_the_shortest_exact_form(value: float, encoded: str) -> None:
    """Half, single or double precision, whichever holds the value exactly."""
    assert cbor.dumps(value) == bytes.fromhex(encoded)
    assert cbor.loads(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize("value", [1 << 64, -(1 << 64) - 1, object(), {1, 2}])
def test_writer_refuses_bignums_and_foreign_types(value: object) -> None:
    """Anjay has no bignums; other types are not CBOR SenML values."""
    with pytest.raises(SenmlError):
        cbor.dumps(value)


@pytest.mark.parametrize("data", ["f0", "f820", "f814", "ff", "1c", "5f41ff"])
def test_reader_refuses_unknown_simple_values_and_ill_formed_items(data: str) -> None:
    """Unassigned simple values, two-byte simple values below 32 and stray breaks are broken CBOR."""
    with pytest.raises(SenmlError, match="broken CBOR"):
        cbor.loads(bytes.fromhex(data))


def test_reader_reads_undefined_duplicates_and_tags() -> None:
    """undefined, duplicate labels and tags reach the caller for it to judge."""
    assert cbor.loads(b"\xf7") is cbor.UNDEFINED
    assert cbor.loads(bytes.fromhex("a2000100 02".replace(" ", ""))) == cbor.Pairs(((0, 1), (0, 2)))
    assert cbor.loads(bytes.fromhex("c482200f")) == cbor.Tag(4, [-1, 15])


def test_depth_limit() -> None:
    """Nesting past MAX_DEPTH is broken CBOR."""
    assert cbor.loads(b"\x81" * cbor.MAX_DEPTH + b"\x00") is not None
    with pytest.raises(SenmlError, match="nesting"):
        cbor.loads(b"\x81" * (cbor.MAX_DEPTH + 1) + b"\x00")

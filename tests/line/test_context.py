"""What a batch's steps share: row chunks and per-row latencies."""

from __future__ import annotations

from provkit.line.context import Latencies, chunks


def test_chunks_cover_every_item_once_in_order() -> None:
    items = list(range(10))
    assert [list(c) for c in chunks(items, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [list(c) for c in chunks(items, 0)] == [[n] for n in items]  # at least one per chunk
    assert list(chunks([], 4)) == []


def test_latencies_are_kept_per_slot() -> None:
    latencies = Latencies()
    assert latencies.get("7") is None
    latencies["7"] = 0.25
    latencies.setdefault("7", 9.0)  # an earlier figure stays
    latencies.setdefault("3", 0.5)
    latencies["3"] = 0.125  # a later commit's figure replaces it
    assert latencies.get("7") == 0.25 and latencies.get("3") == 0.125
    assert latencies.get("5") is None and latencies.get("100000") is None
    latencies[""] = 1.0  # a row without a slot has no figure
    assert latencies.get("") is None

"""The registry's user queries: show by any key, keyset pages, stats, streamed export."""

from __future__ import annotations

import csv
import io
import json
import threading
import tracemalloc
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from provkit.errors import RegistryError
from provkit.registry import AttemptState, NewAttempt, Registry
from provkit.registry.export import EXPORT_COLUMNS, csv_line, utc_iso
from provkit.registry.queries import fingerprint_of
from provkit.registry.schema import attempts, provisioned


def _fingerprint(n: int) -> str:
    return f"{n:064x}"


def _provision(registry: Registry, batch: str | None, n: int, *, reprovision: bool = False) -> int:
    (attempt_id,) = registry.record_attempts(batch, [NewAttempt(f"ep-{n}", f"sn-{n}", slot=str(n))])
    registry.mark_sending(attempt_id, reprovision=reprovision)
    registry.mark_verified(
        attempt_id,
        reprovision=reprovision,
        device_cert_sha256=_fingerprint(attempt_id),
        enrollment_id=f"A-{attempt_id:02X}",
        key_mode="by_tool",
    )
    return attempt_id


@pytest.fixture
def filled(registry_url: str) -> Registry:
    """Two batches: six provisioned devices, a failed one, one reprovisioned (superseded)."""
    registry = Registry.open(registry_url, station_id="line-1")
    registry.create_batch("b1")
    registry.create_batch("b2")
    for n in range(4):
        _provision(registry, "b1", n)
    (failed,) = registry.record_attempts("b1", [NewAttempt("ep-9", "sn-9", slot="9")])
    registry.mark_failed(failed, 1012, "no answer")
    other = Registry(registry.engine, station_id="line-2")
    for n in (4, 5):
        _provision(other, "b2", n)
    _provision(other, "b2", 0, reprovision=True)
    yield registry
    registry.close()


def test_show_finds_a_device_by_any_of_its_keys(filled: Registry) -> None:
    """Endpoint name, serial number, fingerprint (any spelling), enrollment id and id all find it."""
    (attempt,) = filled.lookup("ep-2")
    sha = attempt.device_cert_sha256 or ""
    colons = ":".join(sha[i : i + 2] for i in range(0, 64, 2)).upper()
    for key in ("ep-2", "sn-2", sha, sha.upper(), colons, f"A-{colons}", str(attempt.id)):
        assert [a.id for a in filled.lookup(key)] == [attempt.id], key
    assert filled.lookup("nothing-like-it") == []
    # Every attempt of a reprovisioned device, oldest first; the raw answer is left out.
    assert [a.state for a in filled.lookup("ep-0")] == [AttemptState.SUPERSEDED, AttemptState.VERIFIED]
    assert all(a.response is None for a in filled.lookup("ep-0"))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ab" * 32, "ab" * 32),
        ("AB:" * 31 + "AB", "ab" * 32),
        ("A-" + "AB:" * 31 + "AB", "ab" * 32),
        ("ab" * 31, None),
        ("zz" * 32, None),
        ("ep-1", None),
    ],
)
def test_fingerprint_spellings(key: str, expected: str | None) -> None:
    """Hex with or without colons, either case, or an enrollment id; anything else is none."""
    assert fingerprint_of(key) == expected


def test_pages_walk_the_whole_list_either_way(filled: Registry) -> None:
    """Keyset pages, oldest or newest first, together give every attempt once, in order."""
    everything = [a.id for a in filled.find()]
    assert everything == sorted(everything) and len(everything) == 8
    forward: list[int] = []
    after = None
    while page := filled.find(after=after, limit=2):
        forward += [a.id for a in page]
        after = page[-1].id
    backward: list[int] = []
    before = None
    while page := filled.find(before=before, newest=True, limit=4):
        backward += [a.id for a in page]
        before = page[-1].id
    assert forward == everything and backward == everything[::-1]


def test_pages_keep_their_filters(filled: Registry) -> None:
    """State, batch and provisioned filters hold on every page."""
    failed = filled.find(state=AttemptState.FAILED)
    assert [a.endpoint_name for a in failed] == ["ep-9"]
    b2 = [a.id for a in filled.find(batch_id="b2")]
    assert filled.find(batch_id="b2", after=b2[0], limit=1)[0].id == b2[1]
    held = [a.id for a in filled.find(provisioned_only=True)]
    assert len(held) == 6 and held == sorted(held)
    second = filled.find(provisioned_only=True, after=held[2], limit=2)
    assert [a.id for a in second] == held[3:5]
    assert [a.id for a in filled.find(provisioned_only=True, newest=True, limit=1)] == held[-1:]


def test_stats_agree_with_the_tables(filled: Registry) -> None:
    """Stats count attempts per state and provisioned devices per station, as the rows say."""
    stats = filled.stats()
    with filled.engine.connect() as conn:
        held = conn.execute(select(func.count()).select_from(provisioned)).scalar_one()
        total = conn.execute(select(func.count()).select_from(attempts)).scalar_one()
    assert stats.provisioned == held == 6 and stats.attempts == total == 8
    assert stats.by_state == {"failed": 1, "superseded": 1, "verified": 6}
    assert stats.by_station == {"line-1": 3, "line-2": 3}


def test_csv_export_is_what_the_csv_module_writes(filled: Registry) -> None:
    """One header and one record per provisioned device, in attempt order."""
    out = io.StringIO()
    assert filled.export(out, "csv") == 6
    expected = io.StringIO()
    writer = csv.DictWriter(expected, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for attempt in filled.find(provisioned_only=True):
        record = attempt.to_json()
        writer.writerow({k: record[k] for k in EXPORT_COLUMNS})
    assert out.getvalue() == expected.getvalue()
    assert out.getvalue().count("+00:00") == 6


def test_json_and_enrollment_exports(filled: Registry) -> None:
    """JSON is the text json.dumps(records, indent=2) gives; the id file has one id per line."""
    out = io.StringIO()
    filled.export(out, "json")
    records = json.loads(out.getvalue())
    assert out.getvalue() == json.dumps(records, indent=2) + "\n"
    assert [r["endpoint_name"] for r in records] == ["ep-1", "ep-2", "ep-3", "ep-4", "ep-5", "ep-0"]
    assert list(records[0]) == list(EXPORT_COLUMNS)
    ids = io.StringIO()
    filled.export(ids, "enrollment")
    assert ids.getvalue().splitlines() == [r["enrollment_id"] for r in records]


def test_empty_registry_exports(tmp_path: object) -> None:
    """No devices: a CSV header alone, an empty JSON array, an empty id file."""
    with Registry.open(f"{tmp_path}/r.sqlite", station_id="s") as registry:
        texts = {}
        for fmt in ("csv", "json", "enrollment"):
            out = io.StringIO()
            assert registry.export(out, fmt) == 0  # type: ignore[arg-type]
            texts[fmt] = out.getvalue()
    assert texts == {"csv": ",".join(EXPORT_COLUMNS) + "\n", "json": "[]\n", "enrollment": ""}


@pytest.mark.integration
def test_export_streams_in_constant_memory(registry_url: str) -> None:
    """Exporting 20,000 devices takes a small fraction of what holding them would."""
    now = datetime.now(UTC)
    with Registry.open(registry_url, station_id="s") as registry:
        rows = [
            {
                "endpoint_name": f"endpoint-{n:08d}",
                "serial_number": f"serial-{n:08d}",
                "station_id": "s",
                "key_mode": "by_tool",
                "state": "verified",
                "device_cert_sha256": _fingerprint(n),
                "enrollment_id": f"A-{n:064X}",
                "tries": 1,
                "created_at": now,
                "updated_at": now,
                "provisioned_at": now,
            }
            for n in range(1, 20_001)
        ]
        with registry.engine.begin() as conn:
            conn.execute(insert(attempts), rows)
            conn.execute(
                insert(provisioned),
                [
                    {"endpoint_name": r["endpoint_name"], "serial_number": r["serial_number"]}
                    | {"attempt_id": n, "provisioned_at": now}
                    for n, r in enumerate(rows, start=1)
                ],
            )
        del rows
        out = io.StringIO()
        registry.export(out, "csv")  # warm: imports, compiled statements
        sink = _CountingSink()
        tracemalloc.start()
        try:
            count = registry.export(sink, "csv")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == 20_000 and sink.lines == 20_001
    # Held whole, the text alone is 20,000 x ~300 bytes = 6 MB; a stream holds one chunk.
    assert peak < 2_500_000, peak


class _CountingSink(io.TextIOBase):
    """A text file that keeps nothing, only counts the lines written."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=6))
def test_csv_line_is_the_csv_modules_record(values: list[str | None]) -> None:
    """The fast CSV record is exactly what csv.writer writes, quoting included."""
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerow(values)
    assert csv_line(values) == expected.getvalue()


def test_utc_iso_normalises_every_zone() -> None:
    """Naive (SQLite) and other-zone (PostgreSQL session) timestamps come out in UTC."""
    from datetime import timedelta, timezone

    moment = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    assert utc_iso(moment.replace(tzinfo=None)) == "2026-01-02T03:04:05.006000+00:00"
    assert utc_iso(moment.astimezone(timezone(timedelta(hours=5)))) == "2026-01-02T03:04:05.006000+00:00"
    assert utc_iso(None) is None


def test_reads_neither_wait_for_nor_block_a_writer(tmp_path: object) -> None:
    """On SQLite a reader's snapshot does not take the write lock: a batch keeps writing."""
    with Registry.open(f"{tmp_path}/r.sqlite", station_id="s") as registry:
        _provision(registry, None, 1)
        wrote = threading.Event()
        with registry.reading() as conn:
            before = conn.execute(select(func.count()).select_from(attempts)).scalar_one()
            writer = threading.Thread(target=lambda: (_provision(registry, None, 2), wrote.set()))
            writer.start()
            writer.join(timeout=20)
            assert wrote.is_set()
            # The reader keeps its snapshot.
            assert conn.execute(select(func.count()).select_from(attempts)).scalar_one() == before
        assert registry.stats().provisioned == 2


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_reads_are_read_only(pg_url: str) -> None:
    """A read transaction on PostgreSQL refuses to write."""
    with (
        Registry.open(pg_url, station_id="s") as registry,
        pytest.raises(RegistryError, match="read-only"),
        registry.reading() as conn,
    ):
        conn.execute(insert(attempts).values(endpoint_name="x"))


@given(st.lists(st.one_of(st.none(), st.text()), min_size=len(EXPORT_COLUMNS), max_size=len(EXPORT_COLUMNS)))
def test_json_record_is_what_json_dumps_writes(values: list[str | None]) -> None:
    """Each exported JSON record is json.dumps(record, indent=2)'s text, whatever the values hold."""
    from provkit.registry.export import _json_lines

    text = "".join(_json_lines(iter([tuple(values), tuple(values)])))
    records = [dict(zip(EXPORT_COLUMNS, values, strict=True))] * 2
    assert text == json.dumps(records, indent=2) + "\n"

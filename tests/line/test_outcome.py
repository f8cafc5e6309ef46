"""The batch report: streamed as it is made, the same document as one built from a list."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from provkit.line.outcome import BatchReport, DeviceOutcome

STARTED = datetime(2026, 12, 4, tzinfo=UTC)


def _outcomes(count: int, failing_every: int = 0) -> list[DeviceOutcome]:
    return [
        DeviceOutcome(
            str(n + 2),
            n + 2,
            f"127.0.0.1:{n + 1}",
            f"ep-{n}",
            f"sn-{n}",
            "failed" if failing_every and n % failing_every == 0 else "provisioned",
            code=1021 if failing_every and n % failing_every == 0 else None,
            latency_s=n / 1000,
        )
        for n in range(count)
    ]


def test_a_streamed_report_is_the_document_a_listed_one_writes(tmp_path: Path) -> None:
    """Same bytes as ``BatchReport(...).write`` (and ``json.dumps(to_json(), indent=2)``)."""
    for devices in (_outcomes(5, failing_every=2), []):
        streamed = BatchReport.stream(tmp_path / "streamed.json", "b1", "run", iter(devices), STARTED)
        listed = BatchReport("b1", "run", devices, STARTED, finished_at=streamed.finished_at)
        listed.write(tmp_path / "listed.json")
        text = (tmp_path / "streamed.json").read_text()
        assert text == (tmp_path / "listed.json").read_text()
        assert text == json.dumps(listed.to_json(), indent=2)
        assert streamed.counts() == listed.counts() and streamed.ok == listed.ok == (not devices)
        assert streamed.devices == devices
        assert not list(tmp_path.glob(".*"))  # no spool or temporary file left behind


def test_a_streamed_report_keeps_counts_and_first_failures_and_reads_devices_back(tmp_path: Path) -> None:
    """Only counts and the first failures are held; devices come back from the report's own spool,
    even after the report file was replaced by a later command."""
    devices = _outcomes(1000, failing_every=3)
    path = tmp_path / "report.json"
    report = BatchReport.stream(path, "b1", "run", iter(devices), STARTED)
    assert report.counts() == {"failed": 334, "provisioned": 666}
    assert report.failed == 334 and not report.ok
    assert report.failures == [d for d in devices if d.status == "failed"][: BatchReport.FAILURES_KEPT]
    BatchReport.stream(path, "b2", "verify", iter(devices[:1]), STARTED)  # a later step's report
    assert report.devices == devices
    assert [asdict(d) for d in report.devices] == json.loads(json.dumps([asdict(d) for d in devices]))


def test_ok_is_the_steps_goal() -> None:
    """A prepare step is ok with every row prepared; a run needs every row provisioned."""
    prepared = [DeviceOutcome("2", 2, "h:1", "e", "s", "prepared")]
    assert BatchReport("b", "prepare", prepared, STARTED).ok
    assert not BatchReport("b", "run", prepared, STARTED).ok
    assert BatchReport("b", "run", [], STARTED).ok

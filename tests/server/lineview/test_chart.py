"""The chart's SVG and the words for codes: unit tests."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from provkit.codes import FtErrorCode
from provkit.registry.activity import StationSeries
from provkit.server.lineview.chart import MAX_POINTS, nice_top, render_chart
from provkit.server.lineview.texts import code_text, device_status_text

UNTIL = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def _points(svg: str, station: str) -> list[tuple[float, float]]:
    root = ET.fromstring(svg)
    (line,) = [p for p in root.iter(f"{SVG}polyline") if p.get("data-station") == station]
    return [tuple(map(float, pair.split(","))) for pair in (line.get("points") or "").split()]  # type: ignore[misc]


def test_three_hours_one_point_a_minute() -> None:
    """A point per minute; a busy minute is the peak, quiet minutes sit on the axis."""
    since = UNTIL - timedelta(hours=3)
    busy = UNTIL - timedelta(minutes=30)
    series = (StationSeries("st-a", ((busy, 40), (busy + timedelta(minutes=1), 10))),)
    svg = render_chart(series, since, UNTIL)
    root = ET.fromstring(svg)
    assert root.get("data-total") == "50" and root.get("data-peak") == "40"
    assert root.get("data-bucket-minutes") == "1"
    points = _points(svg, "st-a")
    assert len(points) == 181
    heights = sorted({y for _x, y in points})
    assert len(heights) == 3  # zero, 10 and 40
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tick"]
    assert "0" in ticks and "50" in ticks and "09:30" in ticks and "11:30" in ticks


def test_a_week_is_averaged_into_few_points() -> None:
    """A week is drawn with at most MAX_POINTS points a line, as devices per minute."""
    since = UNTIL - timedelta(days=7)
    # 600 devices in one minute: averaged over a 28-minute bucket, about 21 per minute.
    series = (StationSeries("st-a", ((UNTIL - timedelta(days=1), 600),)),)
    svg = render_chart(series, since, UNTIL)
    root = ET.fromstring(svg)
    bucket = int(root.get("data-bucket-minutes") or 0)
    assert bucket == 28
    assert len(_points(svg, "st-a")) <= MAX_POINTS + 1
    assert float(root.get("data-peak") or 0) == pytest.approx(600 / bucket, rel=1e-4)
    assert root.get("data-total") == "600"


def test_empty_chart_says_so() -> None:
    """No device in the window: an empty chart with a sentence, no polyline."""
    svg = render_chart((), UNTIL - timedelta(hours=1), UNTIL)
    assert "No device provisioned in this window" in svg and "<polyline" not in svg
    ET.fromstring(svg)  # well-formed


def test_station_names_are_escaped() -> None:
    """A station id is data, not markup."""
    series = (StationSeries('line"<x>', ((UNTIL - timedelta(minutes=5), 1),)),)
    svg = render_chart(series, UNTIL - timedelta(hours=1), UNTIL)
    ET.fromstring(svg)
    assert "<x>" not in svg


def test_nice_axis_tops() -> None:
    """1, 2 or 5 times a power of ten, never below 5."""
    assert [nice_top(n) for n in (0, 5, 6, 11, 99, 101, 250, 5001)] == [5, 5, 10, 20, 100, 200, 500, 10000]


def test_codes_in_their_tools_words() -> None:
    """FCU, factory-tool and provkit codes; device statuses with their FCC names."""
    assert code_text(int(FtErrorCode.TCP_CONNECT_FAILED)) == "Error connecting to device on IP … port …"
    assert code_text(1004) == "Execution failed on device with error #…"
    assert code_text(4100).startswith("Batch input is unusable")
    assert not re.search(r"\{\}", code_text(100))
    assert code_text(99999) == "unknown code"
    assert device_status_text(17).startswith("FCC_STATUS_KCM_FILE_EXIST_ERROR: ")
    assert device_status_text(12345) == "FCC status 12345"

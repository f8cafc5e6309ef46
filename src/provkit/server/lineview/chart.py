"""The line view's chart: devices provisioned per minute and station, as SVG.

Drawn on the server (no chart library, nothing fetched by the browser): one line per
station over the window (a point per minute, or on a long window the average per minute
of a few: at most :data:`MAX_POINTS` points a line), a time axis with a label every ten
minutes, half hour or hour (as the window's length suits) and a count axis rounded to a
readable maximum. The SVG scales to its box; the text stays legible on a 1080p screen
across a room.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from provkit.registry.activity import StationSeries

WIDTH: Final = 960
HEIGHT: Final = 280
_LEFT: Final = 56
_RIGHT: Final = 16
_TOP: Final = 16
_BOTTOM: Final = 40
PALETTE: Final = ("#2f7ed8", "#e4572e", "#17a589", "#f2a541", "#8e44ad", "#5d6d7e", "#c0392b", "#27ae60")
"""Station colours, in station order (the legend uses the same)."""
MAX_POINTS: Final = 360
"""Points per station at most: beyond, each point averages several minutes (a week is 10,080)."""
_STYLE: Final = (
    ".grid{stroke:#c8ccd0;stroke-width:1}"
    ".tick{font:15px system-ui,sans-serif;fill:#4a5058}"
    ".empty{font:20px system-ui,sans-serif;fill:#7a8088}"
)


@dataclass(frozen=True, slots=True)
class _Frame:
    since: datetime
    minutes: int
    top: int
    bucket: int
    """Minutes per point: a long window is drawn as averages of a few minutes each."""

    def x(self, moment: datetime) -> float:
        span = WIDTH - _LEFT - _RIGHT
        offset = (moment - self.since).total_seconds() / 60
        return _LEFT + span * min(max(offset, 0.0), self.minutes) / self.minutes

    def y(self, count: float) -> float:
        span = HEIGHT - _TOP - _BOTTOM
        return _TOP + span * (1 - count / self.top)


def nice_top(peak: int) -> int:
    """The y axis maximum for a peak count: 1, 2 or 5 times a power of ten, at least 5."""
    if peak <= 5:
        return 5
    power = int(10 ** math.floor(math.log10(peak)))
    for step in (1, 2, 5, 10):
        if peak <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def station_colour(index: int) -> str:
    """The colour of the ``index``-th station."""
    return PALETTE[index % len(PALETTE)]


def _averages(series: StationSeries, frame: _Frame) -> list[tuple[datetime, float]]:
    """Devices per minute in each of the frame's buckets, from its start (empty ones at zero)."""
    start = frame.since.replace(second=0, microsecond=0)
    totals = [0] * (frame.minutes // frame.bucket + 1)
    for minute, n in series.counts:
        index = int((minute - start).total_seconds() // 60) // frame.bucket
        if 0 <= index < len(totals):
            totals[index] += n
    step = timedelta(minutes=frame.bucket)
    return [(start + step * index, total / frame.bucket) for index, total in enumerate(totals)]


def _polyline(station_id: str, averages: list[tuple[datetime, float]], frame: _Frame, colour: str) -> str:
    points = " ".join(f"{frame.x(moment):.1f},{frame.y(value):.1f}" for moment, value in averages)
    return (
        f'<polyline class="series" data-station={quoteattr(station_id)} fill="none" '
        f'stroke="{colour}" stroke-width="2.5" stroke-linejoin="round" points="{points}"/>'
    )


def _axes(frame: _Frame) -> list[str]:
    parts = []
    bottom = HEIGHT - _BOTTOM
    for fraction in (0.0, 0.5, 1.0):
        count = round(frame.top * fraction)
        y = frame.y(count)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{_LEFT - 8}" y="{y + 5:.1f}" text-anchor="end">{count}</text>')
    if frame.minutes <= 90:
        step = 10
    elif frame.minutes <= 6 * 60:
        step = 30
    else:
        step = 60 * max(1, frame.minutes // (12 * 60))
    first = frame.since.replace(second=0, microsecond=0)
    first += timedelta(minutes=(-first.minute) % step)
    moment = first
    while moment <= frame.since + timedelta(minutes=frame.minutes):
        x = frame.x(moment)
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{bottom}"/>')
        label = moment.strftime("%H:%M")
        parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 22}" text-anchor="middle">{label}</text>')
        moment += timedelta(minutes=step)
    return parts


def render_chart(series: tuple[StationSeries, ...], since: datetime, until: datetime) -> str:
    """An SVG document of ``series`` from ``since`` to ``until`` (times in UTC)."""
    minutes = max(1, round((until - since).total_seconds() / 60))
    bucket = math.ceil(minutes / MAX_POINTS)
    shape = _Frame(since, minutes, 1, bucket)
    drawn = [_averages(line, shape) for line in series]
    peak = max((value for points in drawn for _moment, value in points), default=0.0)
    frame = _Frame(since, minutes, nice_top(math.ceil(peak)), bucket)
    total = sum(line.total for line in series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" data-total="{total}" data-peak="{peak:g}" data-bucket-minutes="{bucket}" '
        f'aria-label="Devices provisioned per minute and station, {total} in all">',
        "<title>Devices provisioned per minute and station (UTC)"
        + ("" if bucket == 1 else f", averaged over {bucket} minutes")
        + "</title>",
        f"<style>{_STYLE}</style>",
        *_axes(frame),
    ]
    parts += [
        _polyline(line.station_id, points, frame, station_colour(index))
        for index, (line, points) in enumerate(zip(series, drawn, strict=True))
    ]
    if not series:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            f"{escape('No device provisioned in this window')}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)

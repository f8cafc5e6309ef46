"""The line's recent activity, as a line supervisor's screen shows it.

:func:`line_activity` reads the last hours of a registry of any size with a handful of
indexed queries: devices provisioned per minute and station (``provisioned_at``), the
latest batches with their progress, yields and failures of the attempts settled in the
window (``updated_at``), and each station's latest activity (one index probe per station,
``station_id, updated_at``). Nothing here scans the registry: the cost follows what
happened in the window, not how many devices the factory has made.

Yield, over the attempts settled in the window:

* **first pass** — attempts that were the first for their identity (they supersede no
  other) and provisioned the device on their first send, over all such attempts settled;
* **after retries** — the last attempt of each identity (superseded by none) that is
  verified, over those verified or failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import BigInteger, and_, case, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from provkit.registry.counts import counts_query
from provkit.registry.schema import TERMINAL_STATES, AttemptState, attempts, batches

RECENT_BATCHES: Final = 8
"""Batches the overview shows: the newest ones, running or not."""

_SETTLED: Final = tuple(state.value for state in TERMINAL_STATES)
_OPEN: Final = tuple(state.value for state in AttemptState if state not in TERMINAL_STATES)


@dataclass(frozen=True, slots=True)
class StationSeries:
    """Devices one station provisioned per minute.

    Attributes:
        station_id: the station.
        counts: ``(minute, devices)`` for each minute with any, oldest first; ``minute`` is
            the minute's start (UTC).
    """

    station_id: str
    counts: tuple[tuple[datetime, int], ...]

    @property
    def total(self) -> int:
        """Devices provisioned in the whole series."""
        return sum(n for _minute, n in self.counts)


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Where one batch stands.

    Attributes:
        batch_id: the batch.
        station_id: the station that made it.
        source: where its devices came from (a CSV file, a pattern).
        created_at: when it started.
        total: its attempts.
        verified: attempts that provisioned their device.
        failed: attempts that ended without (including those a retry superseded).
        pending: attempts not settled yet.
        rate_per_minute: while it runs, settled attempts per minute since it started
            (``None`` before any, and once it is over).
        eta_seconds: time until the pending ones are settled at that rate (``None`` when
            nothing is pending or no rate is known yet).
    """

    batch_id: str
    station_id: str
    source: str
    created_at: datetime
    total: int
    verified: int
    failed: int
    pending: int
    rate_per_minute: float | None
    eta_seconds: float | None

    @property
    def running(self) -> bool:
        """Whether attempts of the batch are still open."""
        return self.pending > 0

    @property
    def progress(self) -> float:
        """Settled share of the batch, 0 to 1."""
        return 1.0 if self.total == 0 else (self.total - self.pending) / self.total


@dataclass(frozen=True, slots=True)
class FailureCount:
    """Failed attempts of one code in the window.

    Attributes:
        code: the error code recorded (an FCU, factory-tool or provkit code).
        device_status: the device's ``ReturnStatus`` when the device refused (code 1004).
        count: attempts.
        example: one of their messages.
    """

    code: int
    device_status: int | None
    count: int
    example: str


@dataclass(frozen=True, slots=True)
class StationActivity:
    """A station's latest activity.

    Attributes:
        station_id: the station.
        last_activity: its latest recorded change.
        quiet: whether it has recorded nothing for the quiet limit although it was busy
            within the window.
    """

    station_id: str
    last_activity: datetime | None
    quiet: bool


@dataclass(frozen=True, slots=True)
class Yields:
    """Yield of the attempts settled in the window (see the module's definitions).

    Attributes:
        first_tries: first attempts of an identity, settled.
        first_pass: those that provisioned their device on their first send.
        last_tries: last attempts of an identity, verified or failed.
        after_retries: those verified.
    """

    first_tries: int
    first_pass: int
    last_tries: int
    after_retries: int

    @property
    def first_pass_yield(self) -> float | None:
        """First-pass yield, 0 to 1 (``None`` with nothing settled)."""
        return None if self.first_tries == 0 else self.first_pass / self.first_tries

    @property
    def final_yield(self) -> float | None:
        """Yield after retries, 0 to 1 (``None`` with nothing settled)."""
        return None if self.last_tries == 0 else self.after_retries / self.last_tries


@dataclass(frozen=True, slots=True)
class LineActivity:
    """The line's last hours.

    Attributes:
        since: the window's start.
        until: the window's end (when it was read).
        provisioned_total: devices the registry holds as provisioned, all time.
        attempts_total: attempts recorded, all time.
        series: per-minute counts of each station active in the window.
        batches: the newest batches.
        yields: yields in the window.
        failures: failures in the window by code, most frequent first.
        stations: every station the registry knows, with its latest activity.
    """

    since: datetime
    until: datetime
    provisioned_total: int
    attempts_total: int
    series: tuple[StationSeries, ...]
    batches: tuple[BatchProgress, ...]
    yields: Yields
    failures: tuple[FailureCount, ...]
    stations: tuple[StationActivity, ...]

    @property
    def provisioned_in_window(self) -> int:
        """Devices provisioned in the window."""
        return sum(series.total for series in self.series)

    def provisioned_since(self, moment: datetime) -> int:
        """Devices provisioned from ``moment`` (within the window) on."""
        start = moment.replace(second=0, microsecond=0)
        return sum(n for series in self.series for minute, n in series.counts if minute >= start)


def aware(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time (SQLite returns naive UTC times)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _minute_number(conn: Connection, column: Any) -> ColumnElement[Any]:
    """Minutes since the epoch of ``column``, as the database computes them."""
    if conn.dialect.name == "postgresql":
        return func.floor(func.extract("epoch", column) / 60)
    # SQLite keeps timestamps as UTC text; strftime('%s') reads them as UTC.
    return cast(func.strftime("%s", column), BigInteger) // 60


def _series(conn: Connection, since: datetime) -> tuple[StationSeries, ...]:
    minute = _minute_number(conn, attempts.c.provisioned_at).label("minute")
    # Grouped by minute first: grouped by station first, SQLite would rather walk the whole
    # (station_id, updated_at) index in station order than read the window's range.
    rows = conn.execute(
        select(attempts.c.station_id, minute, func.count())
        .where(attempts.c.provisioned_at >= since)
        .group_by(minute, attempts.c.station_id)
        .order_by(minute, attempts.c.station_id)
    ).all()
    by_station: dict[str, list[tuple[datetime, int]]] = {}
    for station, number, count in rows:
        moment = datetime.fromtimestamp(int(number) * 60, tz=since.tzinfo)
        by_station.setdefault(str(station), []).append((moment, int(count)))
    return tuple(StationSeries(station, tuple(counts)) for station, counts in sorted(by_station.items()))


def _batches(conn: Connection, now: datetime) -> tuple[BatchProgress, ...]:
    newest = conn.execute(
        select(batches.c.id, batches.c.station_id, batches.c.source, batches.c.created_at)
        .order_by(batches.c.created_at.desc(), batches.c.id.desc())
        .limit(RECENT_BATCHES)
    ).all()
    if not newest:
        return ()
    ids = [str(row.id) for row in newest]
    counts: dict[str, dict[str, int]] = {batch_id: {} for batch_id in ids}
    for batch_id, state, count in conn.execute(
        select(attempts.c.batch_id, attempts.c.state, func.count())
        .where(attempts.c.batch_id.in_(ids))
        .group_by(attempts.c.batch_id, attempts.c.state)
    ).all():
        counts[str(batch_id)][str(state)] = int(count)
    # Counted from (batch_id, state, id), an index that holds all it needs: no row is read.
    return tuple(_progress(row, counts[str(row.id)], now) for row in newest)


def _progress(row: Any, states: dict[str, int], now: datetime) -> BatchProgress:
    created = aware(row.created_at)
    total = sum(states.values())
    pending = sum(states.get(state, 0) for state in _OPEN)
    verified = states.get(AttemptState.VERIFIED.value, 0)
    settled = total - pending
    # While it runs: settled attempts per minute since it started, and the rest at that pace.
    minutes = max((now - created).total_seconds() / 60, 1 / 60)
    rate = settled / minutes if settled and pending else None
    eta = pending / rate * 60 if rate else None
    return BatchProgress(
        batch_id=str(row.id),
        station_id=str(row.station_id),
        source=str(row.source or ""),
        created_at=created,
        total=total,
        verified=verified,
        failed=settled - verified,
        pending=pending,
        rate_per_minute=rate,
        eta_seconds=eta,
    )


def _yields(conn: Connection, since: datetime) -> Yields:
    def count_if(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    first = attempts.c.supersedes_id.is_(None)
    last = and_(attempts.c.superseded_by_id.is_(None), attempts.c.state.in_(("verified", "failed")))
    row = conn.execute(
        select(
            count_if(first),
            count_if(and_(first, attempts.c.tries <= 1, attempts.c.provisioned_at.is_not(None))),
            count_if(last),
            count_if(and_(last, attempts.c.state == AttemptState.VERIFIED.value)),
        ).where(attempts.c.updated_at >= since, attempts.c.state.in_(_SETTLED))
    ).one()
    return Yields(*(int(value) for value in row))


def _failures(conn: Connection, since: datetime) -> tuple[FailureCount, ...]:
    rows = conn.execute(
        select(
            attempts.c.error_code,
            attempts.c.return_status,
            func.count().label("n"),
            func.max(attempts.c.error_message),
        )
        .where(attempts.c.updated_at >= since, attempts.c.error_code.is_not(None))
        .group_by(attempts.c.error_code, attempts.c.return_status)
        .order_by(func.count().desc(), attempts.c.error_code)
    ).all()
    return tuple(
        FailureCount(int(code), None if status is None else int(status), int(n), str(example or ""))
        for code, status, n, example in rows
    )


def _stations(conn: Connection, since: datetime, quiet_from: datetime) -> tuple[StationActivity, ...]:
    known = sorted({str(station) for station, _state, _n in conn.execute(counts_query()).all()})
    found = []
    for station in known:
        # One probe of (station_id, updated_at) per station: stations are few, rows many.
        latest = conn.execute(
            select(func.max(attempts.c.updated_at)).where(attempts.c.station_id == station)
        ).scalar()
        moment = None if latest is None else aware(latest)
        quiet = moment is not None and since <= moment < quiet_from
        found.append(StationActivity(station, moment, quiet))
    return tuple(found)


def line_activity(
    conn: Connection, *, now: datetime, hours: float = 3.0, quiet_after: timedelta = timedelta(minutes=5)
) -> LineActivity:
    """The line's last ``hours`` until ``now`` (an aware UTC time).

    Args:
        conn: a registry connection (one read transaction makes the figures consistent).
        now: the window's end.
        hours: the window's length.
        quiet_after: how long a station that was busy in the window may record nothing
            before it counts as quiet.
    """
    since = now - timedelta(hours=hours)
    provisioned_total = 0
    attempts_total = 0
    for _station, state, count in conn.execute(counts_query()).all():
        attempts_total += int(count)
        if state == AttemptState.VERIFIED.value:
            provisioned_total += int(count)
    return LineActivity(
        since=since,
        until=now,
        provisioned_total=provisioned_total,
        attempts_total=attempts_total,
        series=_series(conn, since),
        batches=_batches(conn, now),
        yields=_yields(conn, since),
        failures=_failures(conn, since),
        stations=_stations(conn, since, now - quiet_after),
    )


def device_certificate(conn: Connection, attempt_ids: Sequence[int]) -> tuple[int, bytes] | None:
    """The newest certificate recorded among ``attempt_ids``: ``(attempt id, DER)``, or ``None``."""
    if not attempt_ids:
        return None
    row = conn.execute(
        select(attempts.c.id, attempts.c.device_cert)
        .where(attempts.c.id.in_(list(attempt_ids)), attempts.c.device_cert.is_not(None))
        .order_by(attempts.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row.id), bytes(row.device_cert))

"""The line's recent activity: per-minute series, batches, yields, failures, quiet stations.

A registry is filled with a small line whose every figure is known (times set relative
to one moment), on SQLite and PostgreSQL; then the window's queries are EXPLAINed on a
registry of thousands of older attempts: they read the window by index, not the table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text, update

from provkit.registry import Registry
from provkit.registry.activity import device_certificate, line_activity
from provkit.registry.schema import attempts, batches
from support import bulk
from support.plans import plans_of

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _minutes(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


def _attempt(n: int, station: str, batch: str, state: str, at: datetime, **values: Any) -> dict[str, Any]:
    row = {
        "id": n,
        "batch_id": batch,
        "slot": str(n),
        "endpoint_name": f"ep-{n}",
        "serial_number": f"sn-{n}",
        "station_id": station,
        "key_mode": "by_tool",
        "state": state,
        "tries": 1,
        "created_at": at - timedelta(minutes=1),
        "updated_at": at,
        "provisioned_at": at if state == "verified" else None,
    }
    # Every row has every key: an executemany insert takes its columns from the first row.
    optional = ("error_code", "error_message", "return_status", "supersedes_id", "superseded_by_id")
    return row | dict.fromkeys(optional) | values


def _line(registry: Registry) -> None:
    """Three stations: one busy now, one gone quiet 100 minutes ago, one idle for days.

    Attempt ids count on from the registry's last (the figures do not depend on them).
    """
    with registry.reading() as conn:
        base = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM attempts")).scalar_one())
    rows = [
        _attempt(1, "st-a", "b1", "verified", _minutes(20)),
        _attempt(2, "st-a", "b1", "verified", _minutes(19), tries=2),  # a resend: not first pass
        _attempt(3, "st-a", "b1", "superseded", _minutes(18), error_code=1021, superseded_by_id=4),
        _attempt(4, "st-a", "b1", "verified", _minutes(10), supersedes_id=3),  # the retry
        _attempt(5, "st-a", "b1", "failed", _minutes(9), error_code=1004, return_status=17),
        _attempt(6, "st-a", "b1", "prepared", _minutes(1)),
        _attempt(7, "st-b", "b2", "verified", _minutes(100)),
        _attempt(8, "st-b", "b2", "verified", _minutes(100)),
        _attempt(9, "st-c", "b3", "verified", _minutes(5 * 24 * 60)),
    ]
    # A failed attempt's verdict carries its message; the retry's superseding keeps it.
    for row in rows:
        for key in ("id", "supersedes_id", "superseded_by_id"):
            row[key] = None if row[key] is None else row[key] + base
        if row.get("error_code"):
            row["error_message"] = f"code {row['error_code']} on {row['endpoint_name']}"
    with registry.transaction() as conn:
        conn.execute(
            insert(batches),
            [
                {"id": "b1", "station_id": "st-a", "source": "line-a.csv", "created_at": _minutes(30)},
                {"id": "b2", "station_id": "st-b", "source": "line-b.csv", "created_at": _minutes(120)},
                {"id": "b3", "station_id": "st-c", "source": "old.csv", "created_at": _minutes(6 * 24 * 60)},
            ],
        )
        conn.execute(insert(attempts), rows)
        conn.execute(update(attempts).where(attempts.c.id == base + 4).values(device_cert=b"cert-4"))


def test_a_line_in_figures(registry_url: str) -> None:
    """Every figure of the overview, on a line whose figures are known."""
    with Registry.open(registry_url) as registry:
        _line(registry)
        with registry.reading() as conn:
            activity = line_activity(conn, now=NOW, hours=3, quiet_after=timedelta(minutes=5))

    series = {line.station_id: line.counts for line in activity.series}
    assert series == {
        "st-a": ((_minutes(20), 1), (_minutes(19), 1), (_minutes(10), 1)),
        "st-b": ((_minutes(100), 2),),
    }
    assert activity.provisioned_in_window == 5
    assert activity.provisioned_since(_minutes(60)) == 3
    assert (activity.provisioned_total, activity.attempts_total) == (6, 9)

    yields = activity.yields
    assert (yields.first_tries, yields.first_pass) == (6, 3)  # attempts 1,2,3,5,7,8; passed 1,7,8
    assert (yields.last_tries, yields.after_retries) == (6, 5)  # attempts 1,2,4,5,7,8; failed 5
    assert yields.first_pass_yield == pytest.approx(0.5)
    assert yields.final_yield == pytest.approx(5 / 6)

    failures = [(f.code, f.device_status, f.count) for f in activity.failures]
    assert sorted(failures, key=str) == sorted([(1021, None, 1), (1004, 17, 1)], key=str)
    assert all(f.example.startswith(f"code {f.code} on ep-") for f in activity.failures)

    b1, b2, b3 = activity.batches
    assert (b1.batch_id, b1.total, b1.verified, b1.failed, b1.pending) == ("b1", 6, 3, 2, 1)
    assert b1.running and b1.progress == pytest.approx(5 / 6)
    assert b1.rate_per_minute == pytest.approx(5 / 30)
    assert b1.eta_seconds == pytest.approx(1 / (5 / 30) * 60)
    assert (b2.batch_id, b2.total, b2.pending, b2.running) == ("b2", 2, 0, False)
    assert b2.rate_per_minute is None and b2.eta_seconds is None  # over: no pace to show
    assert b3.batch_id == "b3"

    stations = {s.station_id: (s.last_activity, s.quiet) for s in activity.stations}
    assert stations == {
        "st-a": (_minutes(1), False),
        "st-b": (_minutes(100), True),  # busy in the window, silent for more than 5 minutes
        "st-c": (_minutes(5 * 24 * 60), False),  # silent for days: not "gone quiet" in this window
    }

    with Registry.open(registry_url) as registry, registry.reading() as conn:
        assert device_certificate(conn, [1, 2, 3, 4]) == (4, b"cert-4")
        assert device_certificate(conn, [1, 2]) is None
        assert device_certificate(conn, []) is None


def test_an_empty_registry(registry_url: str) -> None:
    """No line yet: empty figures, no yield rather than a division by zero."""
    with Registry.open(registry_url) as registry, registry.reading() as conn:
        activity = line_activity(conn, now=NOW)
    assert activity.series == () and activity.batches == () and activity.stations == ()
    assert activity.yields.first_pass_yield is None and activity.yields.final_yield is None
    assert activity.provisioned_in_window == 0


def test_the_window_is_read_by_index(registry_url: str) -> None:
    """On thousands of older attempts, every overview query reads by index (EXPLAIN)."""
    with Registry.open(registry_url) as registry:
        bulk.fill(registry.engine, 4000)
        with registry.transaction() as conn:
            old = NOW - timedelta(days=30)
            conn.execute(update(attempts).values(created_at=old, updated_at=old))
            conn.execute(
                update(attempts).where(attempts.c.provisioned_at.is_not(None)).values(provisioned_at=old)
            )
        _line(registry)
        with registry.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()

        def overview() -> None:
            with registry.reading() as conn:
                line_activity(conn, now=NOW)

        plans = plans_of(registry.engine, overview)
    on_attempts = {
        statement: [a for a in plan if a.table == "attempts" and a.how != "search"]
        for statement, plan in plans.items()
        if "FROM attempts" in statement
    }
    assert len(on_attempts) >= 5  # series, batch counts, yields, failures, stations
    bad = {statement: found for statement, found in on_attempts.items() if found}
    assert not bad, "\n\n".join(f"{s}\n  -> {found}" for s, found in bad.items())

"""Fill a registry with many attempts quickly (bulk inserts), and give the planner its statistics.

Query plans on a table of ten rows say little: a planner rightly reads a tiny table
whole. With a few thousand rows spread like a line's (several stations and batches,
mostly verified, some failed and superseded) and fresh statistics, it plans as on a
registry of millions.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, insert, text

from provkit.registry.schema import attempts, batches, provisioned, reservations

STATES = ("verified",) * 36 + ("failed", "superseded", "prepared", "sending")
"""How attempts are spread over states (one in ten not verified)."""


def fill(engine: Engine, count: int, *, batch_size: int = 1000) -> None:
    """Add ``count`` attempts in batches ``bulk-N`` of four stations, their provisioned rows,
    then ANALYZE."""
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        state = STATES[n % len(STATES)]
        rows.append(
            {
                "batch_id": f"bulk-{n // batch_size}",
                "slot": str(n % batch_size + 2),
                "address": f"10.0.{n % 250}.{n % 200}:7777",
                "endpoint_name": f"bulk-{n:08d}",
                "serial_number": f"BSN{n:010d}",
                "station_id": f"line-{n % 4}",
                "key_mode": "by_tool",
                "state": state,
                "device_cert_sha256": f"{n:064x}",
                "tries": 1,
                "created_at": now,
                "updated_at": now,
                "provisioned_at": now if state == "verified" else None,
            }
        )
    with engine.begin() as conn:
        first = conn.execute(text("SELECT coalesce(max(id), 0) FROM attempts")).scalar_one() + 1
        conn.execute(
            insert(batches),
            [
                {"id": f"bulk-{b}", "station_id": "line-0", "source": "bulk", "created_at": now}
                for b in range((count + batch_size - 1) // batch_size)
            ],
        )
        conn.execute(insert(attempts), rows)
        held = [
            {
                "endpoint_name": r["endpoint_name"],
                "serial_number": r["serial_number"],
                "attempt_id": first + n,
            }
            for n, r in enumerate(rows)
            if r["state"] == "verified"
        ]
        conn.execute(insert(provisioned), [h | {"provisioned_at": now} for h in held])
        conn.execute(insert(reservations), [h | {"inherited": True, "reserved_at": now} for h in held])
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()

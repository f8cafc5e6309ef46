"""Attempts per station and state from the counts the database keeps (``stats`` in constant time).

Triggers on ``attempts`` keep ``attempt_counts`` (see its description in
:mod:`provkit.registry.schema`); on PostgreSQL the latest changes wait in
``attempt_count_deltas`` until :func:`fold` moves them into the counts. Reading a
count is reading its row and its few pending deltas, whatever the number of attempts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, func, literal_column, select, text, union_all

from provkit.registry.schema import attempt_count_deltas, attempt_counts

_FOLD = text(
    "WITH moved AS (DELETE FROM attempt_count_deltas RETURNING station_id, state, n) "
    "INSERT INTO attempt_counts (station_id, state, n) "
    "SELECT station_id, state, sum(n) FROM moved GROUP BY station_id, state ORDER BY station_id, state "
    "ON CONFLICT (station_id, state) DO UPDATE SET n = attempt_counts.n + excluded.n"
)
"""Deltas into counts in one statement. Counts are updated in key order, so two folds
running at once wait for each other in the same order instead of deadlocking; the
triggers only ever append deltas, so folds never wait for a batch, nor a batch for them."""


def counts_query() -> Select[Any]:
    """Attempts per station and state: each count's row plus its pending deltas."""
    both = union_all(
        select(attempt_counts.c.station_id, attempt_counts.c.state, attempt_counts.c.n),
        select(attempt_count_deltas.c.station_id, attempt_count_deltas.c.state, attempt_count_deltas.c.n),
    ).subquery()
    total = func.sum(both.c.n)
    return (
        select(both.c.station_id, both.c.state, total.label("n"))
        .group_by(both.c.station_id, both.c.state)
        .having(total != literal_column("0"))
    )


def fold(conn: Connection) -> None:
    """Move the pending deltas into the counts (PostgreSQL; SQLite keeps none)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_FOLD)

"""Attempts per station and state, kept by triggers: ``stats`` in constant time.

Revision ID: 0007_attempt_counts
Revises: 0006_lookup_indexes
Create Date: 2026-12-03

The counts are filled from the existing attempts once, then kept by triggers on
``attempts`` (see ``provkit.registry.schema.attempt_counts``): a row trigger updating
the count in place on SQLite; on PostgreSQL a statement trigger appending the
statement's net changes to ``attempt_count_deltas`` (no shared row to wait for).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_attempt_counts"
down_revision = "0006_lookup_indexes"
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER attempts_count_insert AFTER INSERT ON attempts
    BEGIN
        INSERT INTO attempt_counts (station_id, state, n) VALUES (NEW.station_id, NEW.state, 1)
        ON CONFLICT (station_id, state) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER attempts_count_update AFTER UPDATE OF state, station_id ON attempts
    WHEN OLD.state IS NOT NEW.state OR OLD.station_id IS NOT NEW.station_id
    BEGIN
        UPDATE attempt_counts SET n = n - 1 WHERE station_id = OLD.station_id AND state = OLD.state;
        INSERT INTO attempt_counts (station_id, state, n) VALUES (NEW.station_id, NEW.state, 1)
        ON CONFLICT (station_id, state) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER attempts_count_delete AFTER DELETE ON attempts
    BEGIN
        UPDATE attempt_counts SET n = n - 1 WHERE station_id = OLD.station_id AND state = OLD.state;
    END""",
)

_PG_FUNCTION = """CREATE FUNCTION provkit_count_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO attempt_count_deltas (station_id, state, n)
        SELECT station_id, state, count(*) FROM new_rows GROUP BY station_id, state;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO attempt_count_deltas (station_id, state, n)
        SELECT station_id, state, sum(n) FROM (
            SELECT station_id, state, 1 AS n FROM new_rows
            UNION ALL
            SELECT station_id, state, -1 AS n FROM old_rows
        ) AS moved
        GROUP BY station_id, state HAVING sum(n) <> 0;
    ELSE
        INSERT INTO attempt_count_deltas (station_id, state, n)
        SELECT station_id, state, -count(*) FROM old_rows GROUP BY station_id, state;
    END IF;
    RETURN NULL;
END
$$"""

_PG_TRIGGERS = (
    "CREATE TRIGGER attempts_count_insert AFTER INSERT ON attempts "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION provkit_count_attempts()",
    "CREATE TRIGGER attempts_count_update AFTER UPDATE ON attempts "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION provkit_count_attempts()",
    "CREATE TRIGGER attempts_count_delete AFTER DELETE ON attempts "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION provkit_count_attempts()",
)


def upgrade() -> None:
    op.create_table(
        "attempt_counts",
        sa.Column("station_id", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "attempt_count_deltas",
        sa.Column("station_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    postgres = _postgres()
    if postgres:
        # No attempt may change between the count and the trigger's creation.
        op.execute("LOCK TABLE attempts IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "INSERT INTO attempt_counts (station_id, state, n) "
        "SELECT station_id, state, count(*) FROM attempts GROUP BY station_id, state"
    )
    if postgres:
        op.execute(_PG_FUNCTION)
        for trigger in _PG_TRIGGERS:
            op.execute(trigger)
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    for name in ("attempts_count_insert", "attempts_count_update", "attempts_count_delete"):
        op.execute(f"DROP TRIGGER {name} ON attempts" if _postgres() else f"DROP TRIGGER {name}")
    if _postgres():
        op.execute("DROP FUNCTION provkit_count_attempts()")
    op.drop_table("attempt_count_deltas")
    op.drop_table("attempt_counts")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"

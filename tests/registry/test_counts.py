"""The attempt counts the database keeps for ``stats`` agree with the attempts, whatever writes them."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, func, select, text, update

from provkit.registry import AttemptState, NewAttempt, Registry, StateChange
from provkit.registry.engine import MIGRATIONS_DIR, create_registry_engine
from provkit.registry.schema import attempt_count_deltas, attempts
from support import bulk


def _counted(registry: Registry) -> Counter[tuple[str, str]]:
    """Attempts per station and state, counted from the rows themselves."""
    with registry.engine.connect() as conn:
        rows = conn.execute(
            select(attempts.c.station_id, attempts.c.state, func.count()).group_by(
                attempts.c.station_id, attempts.c.state
            )
        ).all()
    return Counter({(station, state): n for station, state, n in rows})


def _kept(registry: Registry) -> Counter[tuple[str, str]]:
    from provkit.registry.counts import counts_query

    with registry.reading() as conn:
        return Counter({(station, state): int(n) for station, state, n in conn.execute(counts_query())})


def _pending(registry: Registry) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(attempt_count_deltas)).scalar_one())


def test_counts_follow_inserts_updates_and_deletes(registry_url: str) -> None:
    """Bulk inserts, multi-row state changes, raw updates and deletes: the counts follow each."""
    with Registry.open(registry_url, station_id="s") as registry:
        bulk.fill(registry.engine, 400)
        assert _kept(registry) == _counted(registry)
        with registry.engine.begin() as conn:
            conn.execute(update(attempts).where(attempts.c.state == "prepared").values(state="failed"))
            conn.execute(update(attempts).where(attempts.c.id < 50).values(station_id="moved"))
            conn.execute(update(attempts).where(attempts.c.id < 80).values(tries=attempts.c.tries + 1))
            conn.execute(delete(attempts).where(attempts.c.state == "sending"))
        assert _kept(registry) == _counted(registry)
        registry.fold_counts()
        registry.fold_counts()
        assert _pending(registry) == 0
        assert _kept(registry) == _counted(registry)
        stats = registry.stats()
    assert stats.attempts == 400 - 10 and sum(stats.by_station.values()) == stats.provisioned


def test_a_line_s_changes_are_counted(registry_url: str) -> None:
    """Recording, group commits, refusals and reprovisioning keep the counts right."""
    with Registry.open(registry_url, station_id="a") as registry:
        ids = registry.record_attempts(None, [NewAttempt(f"ep-{n}", f"sn-{n}") for n in range(6)])
        registry.apply_changes([StateChange(i, AttemptState.SENDING) for i in ids])
        registry.apply_changes([StateChange(i, AttemptState.VERIFIED) for i in ids[:4]])
        registry.mark_failed(ids[4], 1012, "no answer")
        (again,) = registry.record_attempts(None, [NewAttempt("ep-0", "sn-0")])
        with pytest.raises(Exception, match="already provisioned"):
            registry.mark_sending(again)
        (replacing,) = registry.record_attempts(None, [NewAttempt("ep-1", "sn-1")])
        registry.mark_sending(replacing, reprovision=True)
        registry.mark_verified(replacing, reprovision=True)
        assert _kept(registry) == _counted(registry)
        assert registry.stats().by_state == {"failed": 2, "sending": 1, "superseded": 1, "verified": 4}


def test_the_upgrade_counts_the_attempts_already_there(registry_url: str) -> None:
    """A registry upgraded from before the counts gets them filled from its attempts."""
    engine = create_registry_engine(registry_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0006_lookup_indexes")
        bulk.fill(engine, 300)
        with engine.connect() as conn:
            assert "attempt_counts" not in {
                row[0]
                for row in conn.execute(
                    text(
                        "SELECT name FROM sqlite_master"
                        if engine.dialect.name == "sqlite"
                        else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                    )
                )
            }
    finally:
        engine.dispose()
    with Registry.open(registry_url, station_id="s") as registry:
        assert _kept(registry) == _counted(registry) and sum(_kept(registry).values()) == 300
        ids = registry.record_attempts(None, [NewAttempt("new", "new")])
        registry.mark_failed(ids[0], 1, "x")
        assert _kept(registry) == _counted(registry)


@pytest.mark.integration
@pytest.mark.postgres
def test_stations_writing_and_folding_at_once(pg_url: str) -> None:
    """Four stations recording and moving attempts while two of them fold: counts exact, no
    statement waits on another's count (none fails on a deadlock)."""
    errors: list[BaseException] = []

    def station(name: str) -> None:
        try:
            with Registry.open(pg_url, station_id=name, migrate=False) as registry:
                for round_ in range(15):
                    items = [NewAttempt(f"{name}-{round_}-{n}", f"{name}-{round_}-{n}") for n in range(8)]
                    ids = registry.record_attempts(None, items)
                    registry.apply_changes([StateChange(i, AttemptState.SENDING) for i in ids])
                    registry.apply_changes(
                        [StateChange(i, AttemptState.VERIFIED) for i in ids[:6]]
                        + [StateChange(i, AttemptState.FAILED, {"error_code": 1}) for i in ids[6:]]
                    )
                    if name in ("s0", "s1"):
                        registry.fold_counts()
        except BaseException as exc:  # reported below, with the others'
            errors.append(exc)

    Registry.open(pg_url, station_id="setup").close()
    threads = [threading.Thread(target=station, args=(f"s{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with Registry.open(pg_url, station_id="check") as registry:
        assert _kept(registry) == _counted(registry)
        stats = registry.stats()
        assert _pending(registry) == 0
    assert stats.by_station == {f"s{n}": 90 for n in range(4)}
    assert stats.by_state == {"failed": 120, "verified": 360}

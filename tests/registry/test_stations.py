"""Several station processes provisioning into one registry at once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from provkit.registry import AttemptState, Registry

STATION = r"""
import sys
from provkit.errors import DuplicateIdentityError
from provkit.registry import AttemptState, IdentityPattern, NewAttempt, Registry

url, station, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
pattern = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="line")
with Registry.open(url, station_id=station) as registry:
    contested = [(f"shared-{i}", f"SHARED{i}") for i in range(10)]
    for n in range(count):
        (identity,) = registry.allocate(pattern, 1)
        todo = [(identity.endpoint_name, identity.serial_number)]
        if n < len(contested):
            todo.append(contested[n])
        for endpoint, serial in todo:
            (aid,) = registry.record_attempts(None, [NewAttempt(endpoint, serial)])
            try:
                registry.mark_sending(aid)  # reserves the identity: a loser sends nothing
            except DuplicateIdentityError:
                continue
            registry.update_attempt(aid, AttemptState.INJECTED, return_status=0)
            registry.mark_verified(aid)
print("done", station)
"""

PER_STATION = 25


def _run_stations(url: str, tmp_path: Path) -> None:
    Registry.open(url, station_id="setup").close()  # migrate once; stations race only on data
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STATION, url, f"station-{i}", str(PER_STATION)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.startswith("done")


def _assert_unique(url: str) -> None:
    with Registry.open(url, station_id="check") as registry:
        verified = registry.find(state=AttemptState.VERIFIED)
        failed = registry.find(state=AttemptState.FAILED)
        stats = registry.stats()
    endpoints = Counter(a.endpoint_name for a in verified)
    serials = Counter(a.serial_number for a in verified)
    assert max(endpoints.values()) == 1
    assert max(serials.values()) == 1
    # 100 allocated identities, and each of the 10 contested ones won by exactly one station.
    assert stats.provisioned == 4 * PER_STATION + 10
    assert len([e for e in endpoints if e.startswith("shared-")]) == 10
    assert sorted(e for e in endpoints if e.startswith("line-")) == [
        f"line-{i:06d}" for i in range(1, 4 * PER_STATION + 1)
    ]
    assert stats.by_state["failed"] == 30  # the 3 losers of each contested identity
    # Every loser was refused at its sending mark (no try counted: nothing was sent),
    # naming the winner; a verdict is never the first to notice the clash.
    assert all(a.tries == 0 and a.error_code == 4001 for a in failed)
    winners = {a.endpoint_name: a.id for a in verified}
    assert all(f"attempt {winners[a.endpoint_name]}" in (a.error_message or "") for a in failed)


@pytest.mark.integration
@pytest.mark.postgres
def test_four_stations_on_postgres_never_duplicate(pg_url: str, tmp_path: Path) -> None:
    """Four processes on one PostgreSQL produce no duplicate endpoint or serial and lose no number."""
    _run_stations(pg_url, tmp_path)
    _assert_unique(pg_url)


@pytest.mark.integration
def test_four_stations_on_sqlite_never_duplicate(tmp_path: Path) -> None:
    """Four processes on one SQLite file produce no duplicate endpoint or serial and lose no number."""
    url = str(tmp_path / "shared.sqlite")
    _run_stations(url, tmp_path)
    _assert_unique(url)

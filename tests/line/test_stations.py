"""Four ``provkit batch run`` station processes provisioning into one PostgreSQL at once.

Each station has its own devices on a shared farm and its own batch directory; they all
allocate from one identity pattern, then from one CSV pool, and all try to provision the
same few explicitly named identities. The schema is created by whichever station comes
first (the others wait on the migration lock). The farm keeps each device's storage in a
file, so the test sees which devices were actually given each identity.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from provkit.line.farm import DeviceFarm
from provkit.registry import AttemptState, Registry
from support import pg

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

STATIONS = 4
ALLOCATED = 10  # per station, from the pattern
POOLED = 5  # per station, from the CSV pool
CONTESTED = 3  # explicit identities every station tries to provision


def _station(home: Path, devices: Path, out: Path, url: str, station: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "provkit.cli", "--home-dir", str(home), "batch", "run",
        "--devices", str(devices), "--out", str(out), "--registry", url, "--station", station,
        "--workers", "1", "--concurrency", "4", "--retries", "0", "--no-progress", *extra,
    ]  # fmt: skip


def _run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Start every station, then wait for all of them (they run at the same time)."""
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        for cmd in commands
    ]
    done = []
    for proc, cmd in zip(procs, commands, strict=True):
        out, err = proc.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return done


def _stored_endpoints(storage: Path, count: int) -> dict[int, str]:
    """Device index -> the endpoint name its storage holds (devices never written left out)."""
    from provkit.device.kcm import ItemType, Kcm
    from provkit.device.storage import open_storage
    from provkit.errors import ItemNotFoundError

    found = {}
    for index in range(count):
        backend = open_storage(storage / f"device-{index:05d}.sqlite")
        try:
            found[index] = Kcm(backend).item_get("mbed.EndpointName", ItemType.CONFIG).decode()
        except ItemNotFoundError:
            pass
        finally:
            backend.close()
    return found


def _report(out: Path) -> dict[str, dict[str, object]]:
    document = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {str(d["endpoint_name"]): d for d in document["devices"]}


def test_four_station_processes_on_one_postgres_never_duplicate(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], tmp_path: Path
) -> None:
    """No endpoint name or serial number is provisioned twice, none is allocated twice, and
    each contested identity is won by exactly one station (the others are refused with 4001)."""
    per_station = ALLOCATED + CONTESTED + POOLED
    storage = tmp_path / "farm"
    farm = farm_factory(STATIONS * per_station, storage=storage)
    addresses = [f"{h}:{p}" for h, p in farm.addresses()]
    pool = tmp_path / "pool.csv"
    pool.write_text(
        "endpoint_name,serial_number\n"
        + "".join(f"pool-{n:03d},PSN{n:03d}\n" for n in range(STATIONS * POOLED + 4)),
        encoding="utf-8",
    )
    with pg.fresh_schema() as url:
        plain = "postgresql://" + url.split("://", 1)[1]
        patterned, pooled = [], []
        for s in range(STATIONS):
            mine = addresses[s * per_station : (s + 1) * per_station]
            rows = [f"{a},," for a in mine[:ALLOCATED]]
            rows += [
                f"{a},shared-{k},SHARED{k}" for k, a in enumerate(mine[ALLOCATED : ALLOCATED + CONTESTED])
            ]
            first = tmp_path / f"station-{s}-a.csv"
            first.write_text("address,endpoint_name,serial_number\n" + "\n".join(rows) + "\n")
            second = tmp_path / f"station-{s}-b.csv"
            second.write_text(
                "address,endpoint_name,serial_number\n"
                + "".join(f"{a},,\n" for a in mine[ALLOCATED + CONTESTED :])
            )
            allocate = ["--endpoint-pattern", "{prefix}-{seq:06d}", "--serial-pattern", "SN{seq:08d}"]
            allocate += ["--prefix", "line"]
            patterned.append(
                _station(fcu_home, first, tmp_path / f"out-{s}-a", plain, f"station-{s}", *allocate)
            )
            pooled.append(
                _station(
                    fcu_home,
                    second,
                    tmp_path / f"out-{s}-b",
                    plain,
                    f"station-{s}",
                    "--identities",
                    str(pool),
                )
            )
        results = _run_all(patterned) + _run_all(pooled)
        with Registry.open(url, station_id="check") as registry:
            verified = registry.find(state=AttemptState.VERIFIED)
            failed = registry.find(state=AttemptState.FAILED)
            stats = registry.stats()

    for result in results:
        assert result.returncode in (0, 1), result.stderr  # 1: a contested identity was lost
        assert "Traceback" not in result.stderr, result.stderr
    endpoints = Counter(a.endpoint_name for a in verified)
    serials = Counter(a.serial_number for a in verified)
    assert set(endpoints.values()) == {1} and set(serials.values()) == {1}
    # The pattern handed out one unbroken sequence, each number to one station only.
    assert sorted(e for e in endpoints if e.startswith("line-")) == [
        f"line-{n:06d}" for n in range(1, STATIONS * ALLOCATED + 1)
    ]
    assert sorted(e for e in endpoints if e.startswith("pool-")) == [
        f"pool-{n:03d}" for n in range(STATIONS * POOLED)
    ]
    assert sorted(e for e in endpoints if e.startswith("shared-")) == [
        f"shared-{k}" for k in range(CONTESTED)
    ]
    assert stats.provisioned == STATIONS * (ALLOCATED + POOLED) + CONTESTED
    assert sum(stats.by_station.values()) == stats.provisioned
    # Every station provisioned all of its allocated devices; the contested ones were
    # lost by exactly three stations each, with the duplicate-identity reason.
    losers = [a for a in failed if a.endpoint_name.startswith("shared-")]
    assert len(losers) == CONTESTED * (STATIONS - 1) and len(failed) == len(losers)
    assert all(a.error_code == 4001 and "--reprovision" in (a.error_message or "") for a in losers)
    # Refused before sending: a contested identity reached one device only, the winner's,
    # and every other device holds the identity it is recorded with.
    stored = _stored_endpoints(storage, len(addresses))
    held = Counter(stored.values())
    assert all(held[f"shared-{k}"] == 1 for k in range(CONTESTED)), held
    index_of = {address: n for n, address in enumerate(addresses)}
    assert {index_of[str(a.address)]: a.endpoint_name for a in verified} == stored
    assert all(a.tries == 0 for a in losers)
    for s in range(STATIONS):
        for step in ("a", "b"):
            for name, device in _report(tmp_path / f"out-{s}-{step}").items():
                expected = {"provisioned", "failed"} if name.startswith("shared-") else {"provisioned"}
                assert device["status"] in expected, device

"""Factory line benchmark: 1,000 virtual devices over loopback TCP.

Figures, each measured ``--runs`` times (best and median printed; the machine may be
shared, so single runs are noisy):

* **prepare**: bundles/s of a warmed-up :class:`PreparePool` with 1 and with 2 worker
  processes, ``--prepare-count`` bundles per measurement, the two alternating so that
  background load hits both alike; the ratio is given for the best and the median runs.
* **end-to-end**: ``Batch.run`` over a fresh batch of ``--devices`` devices, from
  opening the batch to its report (recording attempts, preparing the bundles with 2
  workers, injecting at ``--concurrency``, verifying, recording) — devices/s
  provisioned, and p50/p99 per-device latency (start of the device's turn to its
  outcome committed). The phases are timed too; ``inject`` is send + verify + record.
  With a SQLite registry and, if reachable, PostgreSQL. The device farm runs in its
  own process so the farm and the batch do not share a GIL.

Usage: ``.venv/bin/python bench/line.py [--devices 1000] [--runs 3] [--postgres URL]``
Targets on a 2-core machine: >= 300 devices/s end to end; 2 workers >= 1.7x one.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from provkit.factory.api import FactoryToolApi
from provkit.factory.home import make_demo_home
from provkit.line.batch import Batch, BatchOptions
from provkit.line.inject import InjectSettings
from provkit.line.prepare import PrepareJob, PreparePool
from provkit.registry import Registry

FARM = "import sys; from provkit.cli.farm_cmd import farm_cmd; farm_cmd(sys.argv[1:])"


def start_farm(count: int, work: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    ports_file = work / "ports.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", FARM, "--count", str(count), "--ports-file", str(ports_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not ports_file.exists() or not ports_file.stat().st_size:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("device farm did not start")
        time.sleep(0.05)
    return proc, json.loads(ports_file.read_text())["ports"]


def prepare_rate(pool: PreparePool, home: Path, count: int, tag: str) -> float:
    """Bundles/s of one measurement on a warmed-up pool."""
    out = home / f"bundles-{tag}"
    jobs = [
        PrepareJob(n, f"prep-{tag}-{n:06d}", f"PSN{tag}{n:06d}", out / f"{n:06d}.cbor") for n in range(count)
    ]
    started = time.perf_counter()
    results = list(pool.map(jobs))
    elapsed = time.perf_counter() - started
    assert all(r.ok for r in results), next(r for r in results if not r.ok)
    return count / elapsed


def bench_prepare(home: Path, count: int, runs: int) -> None:
    """1 and 2 workers, alternating, each pool warmed up (workers started, FCU loaded, one round done)."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    with PreparePool(1, home) as one, PreparePool(2, home) as two:
        for pool in (one, two):
            pool.warm_up()
            prepare_rate(pool, home, 64 * pool.workers, f"w{pool.workers}")  # caches, page faults
        for run in range(runs):
            for pool in (one, two) if run % 2 == 0 else (two, one):
                rates[pool.workers].append(prepare_rate(pool, home, count, f"{pool.workers}-{run}"))
    best = {w: max(r) for w, r in rates.items()}
    median = {w: statistics.median(r) for w, r in rates.items()}
    for workers in (1, 2):
        each = ", ".join(f"{r:.0f}" for r in rates[workers])
        print(
            f"prepare {workers} worker{'s' if workers > 1 else ' '}: best {best[workers]:7.1f} bundles/s, "
            f"median {median[workers]:7.1f} ({each}; {count} bundles each)"
        )
    print(f"prepare scaling  : best {best[2] / best[1]:.2f}x, median {median[2] / median[1]:.2f}x")


class StepClock:
    """A Progress that notes when each step starts (to split the run into phases)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def start(self, step: str, total: int) -> None:
        self.marks.append((step, time.perf_counter()))

    def advance(self, step: str, outcome: object = None) -> None:
        pass


@dataclass(frozen=True)
class RunFigures:
    """One end-to-end run."""

    provisioned: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    phases: dict[str, float]

    @property
    def rate(self) -> float:
        """Devices provisioned per second, whole batch."""
        return self.provisioned / self.elapsed_s


def bench_run(
    home: Path, work: Path, name: str, registry_url: str, ports: list[int], offset: int, concurrency: int
) -> RunFigures:
    csv_path = work / f"devices-{name}-{offset}.csv"
    rows = [
        f"127.0.0.1:{port},{name}-{n + offset:06d},SN-{name}-{n + offset:06d}" for n, port in enumerate(ports)
    ]
    csv_path.write_text("address,endpoint_name,serial_number\n" + "\n".join(rows) + "\n")
    options = BatchOptions(
        home_dir=home, workers=2, concurrency=concurrency, inject=InjectSettings(timeout_s=30, retries=1)
    )
    with Registry.open(registry_url, station_id=f"bench-{name}") as registry:
        started = time.perf_counter()
        clock = StepClock()
        report = Batch.open(work / f"out-{name}-{offset}", registry, csv_path, options, clock).run()
        elapsed = time.perf_counter() - started
    marks = [("open", started), *clock.marks, ("end", started + elapsed)]
    phases = {a: b_t - a_t for (a, a_t), (_, b_t) in itertools.pairwise(marks)}
    latencies = sorted(d.latency_s for d in report.devices if d.latency_s is not None)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    ok = report.counts().get("provisioned", 0)
    return RunFigures(ok, elapsed, statistics.median(latencies) * 1000, p99 * 1000, phases)


def report_runs(name: str, devices: int, runs: list[RunFigures]) -> None:
    for run in runs:
        split = ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in run.phases.items())
        print(
            f"end-to-end [{name:8}] {run.provisioned}/{devices} provisioned in {run.elapsed_s:.2f} s: "
            f"{run.rate:7.1f} devices/s, latency p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms ({split})"
        )
    rates = [r.rate for r in runs]
    inject = [devices / r.phases["inject"] for r in runs]
    print(
        f"end-to-end [{name:8}] best {max(rates):.1f} devices/s, median {statistics.median(rates):.1f} "
        f"(inject phase alone: best {max(inject):.1f}, median {statistics.median(inject):.1f})"
    )


def postgres_url(explicit: str | None) -> str | None:
    import psycopg

    url = (
        explicit or os.environ.get("PROVKIT_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    )
    libpq = "postgresql://" + url.split("://", 1)[1]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(libpq, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        print(f"end-to-end [postgres] skipped: {exc}".splitlines()[0])
        return None
    return f"{url}?options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    libpq = "postgresql://" + url.split("://", 1)[1].split("?", 1)[0]
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="measurements of each figure")
    parser.add_argument("--concurrency", type=int, default=8, help="devices injected at once")
    parser.add_argument("--prepare-count", type=int, default=3000, help="bundles per prepare measurement")
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $PROVKIT_TEST_POSTGRES_URL or local)")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} before the benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "fcu"
        make_demo_home(home)
        assert FactoryToolApi(home_dir=home).setup_factory_configurator_utility().ok
        bench_prepare(home, args.prepare_count, args.runs)
        farm, ports = start_farm(args.devices, work)
        try:
            path = str(work / "registry.sqlite")
            sqlite_runs = [
                bench_run(home, work, "sqlite", path, ports, run * args.devices, args.concurrency)
                for run in range(args.runs)
            ]
            report_runs("sqlite", args.devices, sqlite_runs)
            url = postgres_url(args.postgres)
            if url is not None:
                try:
                    pg_runs = [
                        bench_run(home, work, "postgres", url, ports, run * args.devices, args.concurrency)
                        for run in range(args.runs)
                    ]
                    report_runs("postgres", args.devices, pg_runs)
                finally:
                    drop_schema(url)
        finally:
            farm.terminate()
            farm.wait(timeout=10)


if __name__ == "__main__":
    main()

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
  outcome committed). Each step's span is printed too (seconds from the batch's
  start: first device started .. last device done); prepare and inject overlap, as
  bundles are sent once their group is recorded as prepared.
  With a SQLite registry and, if reachable, PostgreSQL. The device farm runs in its
  own process so the farm and the batch do not share a GIL.

Usage: ``.venv/bin/python bench/line.py [--devices 1000] [--runs 3] [--postgres URL]``
Targets on a 2-core machine: >= 300 devices/s end to end; 2 workers >= 1.7x one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from provkit.factory.api import FactoryToolApi
from provkit.factory.home import make_demo_home
from provkit.line.batch import Batch, BatchOptions
from provkit.line.prepare import PrepareJob, PreparePool
from provkit.registry import Registry
from provkit.transport.link import LINE_LINK_SETTINGS

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


def _busy_jiffies() -> tuple[int, int]:
    """CPU time (clock ticks) used by the whole machine and by this process tree so far."""
    with Path("/proc/stat").open(encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    machine = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    ours = 0
    pids = [os.getpid()]
    while pids:
        pid = pids.pop()
        try:
            with Path(f"/proc/{pid}/stat").open(encoding="ascii") as stat:
                values = stat.read().rsplit(")", 1)[1].split()
            ours += int(values[11]) + int(values[12])  # utime, stime
            for task in Path(f"/proc/{pid}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # a process that just ended
    return machine, ours


def prepare_rate(pool: PreparePool, home: Path, count: int, tag: str) -> tuple[float, float, float]:
    """Bundles/s of one measurement on a warmed-up pool, the cores other processes used
    meanwhile, and the CPU milliseconds this process tree spent per bundle."""
    out = home / f"bundles-{tag}"
    jobs = [
        PrepareJob(n, f"prep-{tag}-{n:06d}", f"PSN{tag}{n:06d}", out / f"{n:06d}.cbor") for n in range(count)
    ]
    machine0, ours0 = _busy_jiffies()
    started = time.perf_counter()
    results = list(pool.map(jobs))
    elapsed = time.perf_counter() - started
    machine1, ours1 = _busy_jiffies()
    assert all(r.ok for r in results), next(r for r in results if not r.ok)
    hertz = os.sysconf("SC_CLK_TCK")
    others = ((machine1 - machine0) - (ours1 - ours0)) / hertz / elapsed
    return count / elapsed, max(0.0, others), (ours1 - ours0) / hertz / count * 1000


def bench_prepare(home: Path, count: int, runs: int) -> None:
    """1 and 2 workers, alternating, each pool warmed up (workers started, FCU loaded, 1,000 bundles each)."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    others: dict[int, list[float]] = {1: [], 2: []}
    cpu_ms: dict[int, list[float]] = {1: [], 2: []}
    with PreparePool(1, home) as one, PreparePool(2, home) as two:
        for pool in (one, two):
            pool.warm_up()
            prepare_rate(pool, home, 1000 * pool.workers, f"w{pool.workers}")  # lazy imports, caches
        for run in range(runs):
            for pool in (one, two) if run % 2 == 0 else (two, one):
                rate, busy, cost = prepare_rate(pool, home, count, f"{pool.workers}-{run}")
                rates[pool.workers].append(rate)
                others[pool.workers].append(busy)
                cpu_ms[pool.workers].append(cost)
    best = {w: max(r) for w, r in rates.items()}
    median = {w: statistics.median(r) for w, r in rates.items()}
    for workers in (1, 2):
        each = ", ".join(f"{r:.0f}" for r in rates[workers])
        print(
            f"prepare {workers} worker{'s' if workers > 1 else ' '}: best {best[workers]:7.1f} bundles/s, "
            f"median {median[workers]:7.1f} ({each}; {count} bundles each; "
            f"{statistics.median(cpu_ms[workers]):.2f} CPU ms per bundle; other processes used "
            f"{statistics.median(others[workers]):.2f} of {os.cpu_count()} cores meanwhile)"
        )
    print(f"prepare scaling  : best {best[2] / best[1]:.2f}x, median {median[2] / median[1]:.2f}x")


class StepClock:
    """A Progress that notes when each step starts and when its last device is done."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self, step: str, total: int) -> None:
        self.first.setdefault(step, time.perf_counter())

    def advance(self, step: str, outcome: object = None) -> None:
        now = time.perf_counter()  # called from the inject threads too
        with self._lock:
            self.last[step] = now


@dataclass(frozen=True)
class RunFigures:
    """One end-to-end run."""

    provisioned: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    phases: dict[str, tuple[float, float]]

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
        home_dir=home,
        workers=2,
        concurrency=concurrency,
        inject=replace(LINE_LINK_SETTINGS, timeout_s=30, retries=1),
    )
    with Registry.open(registry_url, station_id=f"bench-{name}") as registry:
        started = time.perf_counter()
        clock = StepClock()
        report = Batch.open(work / f"out-{name}-{offset}", registry, csv_path, options, clock).run()
        elapsed = time.perf_counter() - started
    # Steps overlap (bundles are sent as soon as their group is recorded), so each is
    # given as its span from the start of the batch: first start .. last device done.
    phases = {
        step: (begin - started, clock.last.get(step, begin) - started) for step, begin in clock.first.items()
    }
    latencies = sorted(d.latency_s for d in report.devices if d.latency_s is not None)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    ok = report.counts().get("provisioned", 0)
    return RunFigures(ok, elapsed, statistics.median(latencies) * 1000, p99 * 1000, phases)


def report_runs(name: str, devices: int, runs: list[RunFigures]) -> None:
    for run in runs:
        split = ", ".join(f"{step} {a:.2f}-{b:.2f} s" for step, (a, b) in run.phases.items())
        print(
            f"end-to-end [{name:8}] {run.provisioned}/{devices} provisioned in {run.elapsed_s:.2f} s: "
            f"{run.rate:7.1f} devices/s, latency p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms ({split})"
        )
    rates = [r.rate for r in runs]
    print(f"end-to-end [{name:8}] best {max(rates):.1f} devices/s, median {statistics.median(rates):.1f}")


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

"""Factory line benchmark: 1,000 virtual devices over loopback TCP.

Prints end-to-end devices/s and p50/p99 per-device latency (send to recorded) of
``batch run`` with a SQLite registry and, if reachable, PostgreSQL; and bundle
preparation throughput with 1 and 2 worker processes. The device farm runs in its own
process so the farm and the batch do not share a GIL.

Usage: ``.venv/bin/python bench/line.py [--devices 1000] [--postgres URL]``
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


def bench_prepare(home: Path, workers: int, count: int) -> float:
    out = home / f"bundles-{workers}"
    jobs = [PrepareJob(n, f"prep-{n:06d}", f"PSN{n:06d}", out / f"{n:06d}.cbor") for n in range(count)]
    with PreparePool(workers, home) as pool:
        pool.warm_up()
        started = time.perf_counter()
        results = list(pool.map(jobs))
        elapsed = time.perf_counter() - started
    assert all(r.ok for r in results), results[0]
    return count / elapsed


class StepClock:
    """A Progress that notes when each step starts (to split the run into phases)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def start(self, step: str, total: int) -> None:
        self.marks.append((step, time.perf_counter()))

    def advance(self, step: str, outcome: object = None) -> None:
        pass


def bench_run(home: Path, work: Path, name: str, registry_url: str, ports: list[int], offset: int) -> None:
    csv_path = work / f"devices-{name}.csv"
    rows = [
        f"127.0.0.1:{port},{name}-{n + offset:06d},SN-{name}-{n + offset:06d}" for n, port in enumerate(ports)
    ]
    csv_path.write_text("address,endpoint_name,serial_number\n" + "\n".join(rows) + "\n")
    options = BatchOptions(
        home_dir=home, workers=2, concurrency=8, inject=InjectSettings(timeout_s=30, retries=1)
    )
    with Registry.open(registry_url, station_id=f"bench-{name}") as registry:
        started = time.perf_counter()
        clock = StepClock()
        report = Batch.open(work / f"out-{name}", registry, csv_path, options, clock).run()
        elapsed = time.perf_counter() - started
    phases = [*clock.marks, ("end", started + elapsed)]
    split = ", ".join(f"{a} {b_t - a_t:.2f} s" for (a, a_t), (_, b_t) in itertools.pairwise(phases))
    latencies = sorted(d.latency_s for d in report.devices if d.latency_s is not None)
    ok = report.counts().get("provisioned", 0)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"end-to-end [{name:8}] {ok}/{len(ports)} provisioned in {elapsed:.2f} s: "
        f"{ok / elapsed:7.1f} devices/s, latency p50 {p50:.1f} ms, p99 {p99:.1f} ms ({split})"
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
    parser.add_argument("--prepare-count", type=int, default=2000)
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $PROVKIT_TEST_POSTGRES_URL or local)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "fcu"
        make_demo_home(home)
        assert FactoryToolApi(home_dir=home).setup_factory_configurator_utility().ok
        one = bench_prepare(home, 1, args.prepare_count)
        two = bench_prepare(home, 2, args.prepare_count)
        print(f"prepare 1 worker : {one:7.1f} bundles/s")
        print(f"prepare 2 workers: {two:7.1f} bundles/s  ({two / one:.2f}x)")
        farm, ports = start_farm(args.devices, work)
        try:
            bench_run(home, work, "sqlite", str(work / "registry.sqlite"), ports, 0)
            url = postgres_url(args.postgres)
            if url is not None:
                try:
                    bench_run(home, work, "postgres", url, ports, args.devices)
                finally:
                    drop_schema(url)
        finally:
            farm.terminate()
            farm.wait(timeout=10)


if __name__ == "__main__":
    main()

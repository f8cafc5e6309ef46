"""Scale benchmark: a registry of a million devices, runs of 1k, 10k and 100k on top of it.

For SQLite and (if reachable) PostgreSQL:

1. **seed** the registry with ``--registry-rows`` devices of realistic records (a year of
   a four-station factory, see ``registry_seed.py``) by bulk insert;
2. **registry queries** as ``provkit registry`` runs them: ``show`` by endpoint name,
   serial number and certificate fingerprint (median and p99 over random devices),
   ``stats``, a page of ``list`` (first, deep, filtered), and ``export`` (rows/s, streamed
   to a file, and the memory it took);
3. **end-to-end runs** of each ``--runs`` size (``Batch.run`` in a fresh process: allocate
   identities from a pattern, record attempts, prepare bundles with 2 workers, inject at
   ``--concurrency``, verify, record, write the report) against a device farm on
   loopback: devices/s, p50/p99 per-device latency, the rate of the first and last tenth
   of the run (a per-device cost that grows shows there first), and the run's peak RSS.
   The first size is run again at the end, so the ratio of each size to it is taken
   from runs next to each other; ``--repeat`` runs the whole sequence again;
4. **resume**: a batch of ``--resume-devices`` is killed with SIGKILL half-way, and run
   again: the time until its first device is sent again, and the rate of the rest.

The machine may be shared: figures are given as ratios of runs measured next to each
other where that is what the target is about (devices/s at 100k vs 1k), and the load
average is printed before and after.

Usage::

    .venv/bin/python bench/scale.py                  # 1M rows; runs of 1k, 10k, 100k
    .venv/bin/python bench/scale.py --small          # 20k rows; runs of 200, 1k, 5k
    .venv/bin/python bench/scale.py --registry-rows 200000 --runs 1000,20000 --backends sqlite

Targets: devices/s at 100k within 5% of 1k; show < 50 ms; stats < 500 ms; export
>= 50,000 rows/s in constant memory; RSS flat in the run size; resume in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from line import drop_schema, postgres_url  # bench/line.py: a fresh PostgreSQL schema

FARM_IP_BASE: Final = "127.0.1."
FARM_BASE_PORT: Final = 20000
FARM_PER_PROCESS: Final = 12500
"""Devices per farm process: listeners are file descriptors (the limit is per process)."""
FARM = "import sys; from provkit.cli.farm_cmd import farm_cmd; farm_cmd(sys.argv[1:])"


# ---------------------------------------------------------------- device farm
class FarmPool:
    """Enough device farm processes for ``count`` devices, on 127.0.1.k:20000+."""

    def __init__(self, count: int, work: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.addresses: list[str] = []
        for index, first in enumerate(range(0, count, FARM_PER_PROCESS)):
            size = min(FARM_PER_PROCESS, count - first)
            ip = f"{FARM_IP_BASE}{index + 1}"
            ports_file = work / f"farm-{index}.json"
            args = ["--count", str(size), "--ip", ip, "--base-port", str(FARM_BASE_PORT)]
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", FARM, *args, "--ports-file", str(ports_file)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.addresses += [f"{ip}:{FARM_BASE_PORT + n}" for n in range(size)]
            deadline = time.monotonic() + 120
            while not ports_file.exists() or not ports_file.stat().st_size:
                if self.procs[-1].poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise SystemExit(f"device farm {ip} did not start (ports {FARM_BASE_PORT}+ in use?)")
                time.sleep(0.05)

    def cpu_s(self) -> float:
        """CPU seconds the farm processes used so far."""
        total = 0
        for proc in self.procs:
            values = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(values[11]) + int(values[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the farm processes together."""
        return sum(_rss_mb(p.pid) for p in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ---------------------------------------------------------------- registry queries
def _timed(action: Any, times: int) -> list[float]:
    spans = []
    for _ in range(times):
        began = time.perf_counter()
        action()
        spans.append((time.perf_counter() - began) * 1000)
    return spans


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def bench_queries(url: str, work: Path, rows: int) -> dict[str, Any]:
    """Latencies of the registry commands' queries on the seeded registry."""
    from provkit.registry import AttemptState, Registry

    figures: dict[str, Any] = {}
    rnd = random.Random(7)
    with Registry.open(url, station_id="bench") as registry:
        picks = [registry.get_attempt(rnd.randrange(1, rows)) for _ in range(200)]
        for what, key in (
            ("endpoint", lambda a: a.endpoint_name),
            ("serial", lambda a: a.serial_number),
            ("fingerprint", lambda a: a.device_cert_sha256),
        ):
            spans = []
            for attempt in picks:
                began = time.perf_counter()
                found = registry.lookup(key(attempt))
                spans.append((time.perf_counter() - began) * 1000)
                assert any(f.id == attempt.id for f in found), (what, attempt.id)
            figures[f"show by {what}"] = (statistics.median(spans), _p99(spans))
        stats = _timed(registry.stats, 7)
        figures["stats"] = (statistics.median(stats), max(stats))
        deep = rows // 2
        batch = picks[0].batch_id
        failed = AttemptState.FAILED
        for label, action in (
            ("list first page", lambda: registry.find(limit=100)),
            ("list newest page", lambda: registry.find(limit=100, newest=True)),
            ("list deep page", lambda: registry.find(after=deep, limit=100)),
            ("list failed page", lambda: registry.find(state=failed, limit=100)),
            ("list failed deep page", lambda: registry.find(state=failed, after=deep, limit=100)),
            ("list batch page", lambda: registry.find(batch_id=batch, after=picks[0].id, limit=100)),
            ("list provisioned page", lambda: registry.find(provisioned_only=True, after=deep, limit=100)),
        ):
            spans = _timed(action, 21)
            figures[label] = (statistics.median(spans), max(spans))
        for fmt in ("csv", "json"):
            out = work / f"export.{fmt}"
            rss0 = _rss_mb(os.getpid())
            began, cpu = time.perf_counter(), time.process_time()
            with out.open("w", encoding="utf-8", newline="") as handle:
                count = registry.export(handle, fmt)  # type: ignore[arg-type]
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
            figures[f"export {fmt}"] = (count / elapsed, count / cpu, _rss_mb(os.getpid()) - rss0, count)
            out.unlink()
    return figures


def print_queries(name: str, figures: dict[str, Any]) -> None:
    for label, value in figures.items():
        if label.startswith("export"):
            rate, cpu_rate, grew, count = value
            print(
                f"[{name:8}] {label:22} {rate:10,.0f} rows/s ({cpu_rate:,.0f} per CPU second of this "
                f"process; {count:,} rows; RSS grew {grew:.1f} MB)"
            )
        else:
            print(f"[{name:8}] {label:22} median {value[0]:7.2f} ms, worst/p99 {value[1]:7.2f} ms")


# ---------------------------------------------------------------- end-to-end runs
class Clock:
    """A Progress that notes when each device's inject turn ends, and the first one."""

    def __init__(self) -> None:
        self.done = array("d")
        self.first_inject: float | None = None
        self._lock = threading.Lock()

    def start(self, step: str, total: int) -> None:
        pass

    def advance(self, step: str, outcome: object = None) -> None:
        if step != "inject":
            return
        now = time.perf_counter()
        with self._lock:
            if self.first_inject is None:
                self.first_inject = now
            self.done.append(now)


def child_run(args: argparse.Namespace) -> None:
    """One ``Batch.run`` in this process; prints its figures as JSON on stdout."""
    from provkit.line.batch import Batch, BatchOptions
    from provkit.registry import IdentityPattern, Registry
    from provkit.transport.link import LINE_LINK_SETTINGS

    options = BatchOptions(
        home_dir=Path(args.home),
        workers=args.workers,
        concurrency=args.concurrency,
        pattern=IdentityPattern("{prefix}-{seq:07d}", "SN-{prefix}-{seq:07d}", prefix=args.prefix),
        inject=replace(LINE_LINK_SETTINGS, timeout_s=60, retries=1),
    )
    clock = Clock()
    began = time.perf_counter()
    with Registry.open(args.registry, station_id=args.prefix) as registry:
        batch = Batch.open(Path(args.out), registry, Path(args.devices), options, clock)
        opened = time.perf_counter()
        report = batch.run()
    elapsed = time.perf_counter() - began
    # Read before the report's devices are loaded below (the run itself never holds them all).
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = report.counts()
    latencies = sorted(d.latency_s for d in report.devices if d.latency_s is not None)
    done = sorted(clock.done)
    tenth = max(1, len(done) // 10)

    def rate(part: list[float]) -> float:
        return (len(part) - 1) / (part[-1] - part[0]) if len(part) > 1 and part[-1] > part[0] else 0.0

    print(
        json.dumps(
            {
                "devices": len(report.devices),
                "counts": counts,
                "elapsed_s": elapsed,
                "open_s": opened - began,
                "first_send_s": None if clock.first_inject is None else clock.first_inject - began,
                "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
                "p99_ms": _p99(latencies) * 1000 if latencies else None,
                "first_tenth_rate": rate(done[:tenth]),
                "last_tenth_rate": rate(done[-tenth:]),
                "rss_mb": rss_mb,
                "cpu_batch_s": _cpu(resource.RUSAGE_SELF),
                "cpu_workers_s": _cpu(resource.RUSAGE_CHILDREN),
            }
        )
    )


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def write_devices(path: Path, addresses: list[str]) -> Path:
    path.write_text("address\n" + "\n".join(addresses) + "\n", encoding="utf-8")
    return path


def _child_command(url: str, home: Path, devices: Path, out: Path, prefix: str, args: Any) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--child",
        "--registry",
        url,
        "--home",
        str(home),
        "--devices",
        str(devices),
        "--out",
        str(out),
        "--prefix",
        prefix,
        "--workers",
        str(args.workers),
        "--concurrency",
        str(args.concurrency),
    ]


def run_once(
    url: str, home: Path, work: Path, farm: FarmPool, size: int, tag: str, args: Any
) -> dict[str, Any]:
    devices = write_devices(work / f"devices-{tag}.csv", farm.addresses[:size])
    command = _child_command(url, home, devices, work / f"out-{tag}", tag, args)
    farm_cpu = farm.cpu_s()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["cpu_farm_s"] = farm.cpu_s() - farm_cpu
    figures["size"] = size
    figures["rate"] = figures["counts"].get("provisioned", 0) / figures["elapsed_s"]
    return figures


def print_run(name: str, run: dict[str, Any]) -> None:
    print(
        f"[{name:8}] run {run['size']:>7,}: {run['counts'].get('provisioned', 0):>7,} provisioned in "
        f"{run['elapsed_s']:7.1f} s = {run['rate']:6.1f} devices/s; p50 {run['p50_ms']:6.1f} ms, "
        f"p99 {run['p99_ms']:6.1f} ms; first/last tenth {run['first_tenth_rate']:6.1f}/"
        f"{run['last_tenth_rate']:6.1f} devices/s; peak RSS {run['rss_mb']:6.1f} MB; CPU ms/device: "
        f"batch {run['cpu_batch_s'] * 1000 / run['size']:.2f}, prepare workers "
        f"{run['cpu_workers_s'] * 1000 / run['size']:.2f}, farm {run['cpu_farm_s'] * 1000 / run['size']:.2f}"
    )


def bench_resume(url: str, home: Path, work: Path, farm: FarmPool, size: int, args: Any) -> dict[str, Any]:
    """Kill a batch of ``size`` half-way with SIGKILL and run it again."""
    from sqlalchemy import func, select

    from provkit.registry import Registry
    from provkit.registry.schema import attempts

    tag = f"resume{uuid.uuid4().hex[:4]}"
    devices = write_devices(work / f"devices-{tag}.csv", farm.addresses[:size])
    out = work / f"out-{tag}"
    command = _child_command(url, home, devices, out, tag, args)
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    with Registry.open(url, station_id="watch") as registry:
        while victim.poll() is None:
            time.sleep(0.5)
            manifest = out / "batch.json"
            if not manifest.exists():
                continue
            batch_id = json.loads(manifest.read_text())["batch_id"]
            with registry.engine.connect() as conn:
                done = conn.execute(
                    select(func.count())
                    .select_from(attempts)
                    .where(attempts.c.batch_id == batch_id, attempts.c.state == "verified")
                ).scalar_one()
            if done >= size // 2:
                victim.send_signal(signal.SIGKILL)
                break
    victim.wait()
    resumed = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(resumed.stdout.strip().splitlines()[-1])
    figures["killed_after"] = done
    figures["size"] = size
    return figures


# ---------------------------------------------------------------- main
def bench_backend(name: str, url: str, home: Path, work: Path, farm: FarmPool, args: Any) -> None:
    import registry_seed

    seeded = registry_seed.seed(url, args.registry_rows)
    print(
        f"[{name:8}] seeded {seeded.attempts:,} attempts, {seeded.provisioned:,} provisioned devices, "
        f"{seeded.batches} batches in {seeded.seconds:.1f} s"
    )
    print_queries(name, bench_queries(url, work, seeded.attempts))
    sizes = [*args.runs, args.runs[0]]
    runs: dict[int, list[dict[str, Any]]] = {}
    for repeat in range(args.repeat):
        for index, size in enumerate(sizes):
            run = run_once(url, home, work, farm, size, f"{name}{repeat}x{index}", args)
            runs.setdefault(size, []).append(run)
            print_run(name, run)
    base = statistics.median(r["rate"] for r in runs[args.runs[0]])
    for size in args.runs[1:]:
        rates = [r["rate"] for r in runs[size]]
        print(
            f"[{name:8}] devices/s at {size:,} vs {args.runs[0]:,}: {statistics.median(rates) / base:.3f} "
            f"(target >= 0.95); peak RSS {max(r['rss_mb'] for r in runs[size]):.1f} MB vs "
            f"{max(r['rss_mb'] for r in runs[args.runs[0]]):.1f} MB"
        )
    if args.resume_devices:
        resume = bench_resume(url, home, work, farm, args.resume_devices, args)
        rest = resume["counts"].get("provisioned", 0) - resume["killed_after"]
        print(
            f"[{name:8}] resume of {resume['size']:,} killed after {resume['killed_after']:,} verified: "
            f"batch opened in {resume['open_s']:.2f} s, "
            f"first device sent after {resume['first_send_s']:.2f} s; "
            f"{resume['counts'].get('provisioned', 0):,} provisioned in the end, the remaining ~{rest:,} "
            f"in {resume['elapsed_s']:.1f} s; peak RSS {resume['rss_mb']:.1f} MB"
        )
    print(f"[{name:8}] device farm RSS {farm.rss_mb():.0f} MB")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry-rows", type=int, default=1_000_000, help="devices to seed")
    parser.add_argument("--runs", default="1000,10000,100000", help="end-to-end run sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="times to repeat the run sequence")
    parser.add_argument("--resume-devices", type=int, default=100_000, help="resume batch size (0: skip)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $PROVKIT_TEST_POSTGRES_URL or local)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="20k rows; runs of 200, 1k, 5k; resume 2k")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temporary directory)")
    # One run in a child process (used by the benchmark itself).
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--registry", "--home", "--devices", "--out", "--prefix"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.small:
        args.registry_rows, args.runs, args.resume_devices = 20_000, "200,1000,5000", 2000
    args.runs = [int(x) for x in str(args.runs).split(",") if x]
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child_run(args)
        return
    from provkit.factory.api import FactoryToolApi
    from provkit.factory.home import make_demo_home

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} before the benchmark")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        home = work / "fcu"
        make_demo_home(home)
        assert FactoryToolApi(home_dir=home).setup_factory_configurator_utility().ok
        farm = FarmPool(max([*args.runs, args.resume_devices]), work)
        try:
            for name in args.backends.split(","):
                if name == "sqlite":
                    bench_backend(name, str(work / "registry.sqlite"), home, work, farm, args)
                    continue
                url = postgres_url(args.postgres)  # a fresh schema, or None when unreachable
                if url is None:
                    continue
                try:
                    bench_backend(name, url, home, work, farm, args)
                finally:
                    drop_schema(url)
        finally:
            farm.close()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: load average {load} after the benchmark")


if __name__ == "__main__":
    main()

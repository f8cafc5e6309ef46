"""Line view page latency on a registry of a million devices (``bench/server.py --pages``).

For each backend (SQLite, and PostgreSQL if reachable): seed the registry with
``--registry-rows`` devices of a year of a four-station factory that ends now
(``registry_seed.py``: its last batch ten minutes ago, so the overview's window is not
empty), record a real device certificate on the devices looked up, start
``provkit server run --http-port 0`` on it in its own process, and time each page over
keep-alive HTTP from this process: the overview (3 hours and a week), its live part and
JSON, a device's page (random devices across the year), and a search by serial number
and by certificate fingerprint. Prints median, p95 and max per page; the target is
< 200 ms for the overview and device pages.
"""

from __future__ import annotations

import datetime as dt
import http.client
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Final
from urllib.parse import quote

from sqlalchemy import select, update

from provkit.crypto import issue, keys, x509
from provkit.registry import Registry
from provkit.registry.schema import attempts
from provkit.server import init_home
from registry_seed import seed
from server import wait_ready  # bench/server.py

TARGET_MS: Final = 200.0
SAMPLE: Final = 200
"""Devices looked up (random across the registry)."""


def _sample(url: str, count: int) -> list[tuple[str, str, str]]:
    """``count`` random devices (endpoint, serial, fingerprint), each given a real certificate."""
    now = dt.datetime.now(dt.UTC)
    ca_key = keys.generate_p256()
    ca = issue.create_ca(ca_key, {"common-name": "bench factory CA"}, now=now)
    with Registry.open(url) as registry:
        with registry.reading() as conn:
            top = int(
                conn.execute(select(attempts.c.id).order_by(attempts.c.id.desc()).limit(1)).scalar_one()
            )
        chosen = random.Random(5).sample(range(1, top + 1), count)
        found = []
        with registry.transaction() as conn:
            for attempt_id in chosen:
                row = conn.execute(
                    select(attempts.c.endpoint_name, attempts.c.serial_number).where(
                        attempts.c.id == attempt_id
                    )
                ).one()
                cert = issue.issue_device_certificate(
                    ca_key, ca, keys.generate_p256().public_key(), common_name=row.endpoint_name,
                    subject={}, not_before=now, validity_years=1,
                )  # fmt: skip
                der = x509.certificate_der(cert)
                fingerprint = x509.der_fingerprint(der).hex()
                conn.execute(
                    update(attempts)
                    .where(attempts.c.id == attempt_id)
                    .values(device_cert=der, device_cert_sha256=fingerprint)
                )
                found.append((str(row.endpoint_name), str(row.serial_number), fingerprint))
    return found


def _start_server(home: Path, url: str, root: Path) -> tuple[subprocess.Popen[str], int]:
    ready = root / f"ready-{time.monotonic_ns()}.json"
    command = [
        sys.executable, "-m", "provkit.cli", "server", "run", "--server-home", str(home), "--registry", url,
        "--no-bootstrap", "--lwm2m-port", "0", "--http-port", "0", "--ready-file", str(ready),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    http_url = wait_ready(process, ready)["http"]
    return process, int(http_url.rsplit(":", 1)[1].rstrip("/"))


def _time(conn: http.client.HTTPConnection, paths: list[str], warmup: int = 3) -> list[float]:
    took = []
    for n, path in enumerate([*paths[:warmup], *paths]):
        started = time.perf_counter()
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            raise SystemExit(f"GET {path}: {answer.status} {body[:200]!r}")
        if n >= warmup:
            took.append(elapsed)
    return took


def _pages(devices: list[tuple[str, str, str]], requests: int) -> list[tuple[str, list[str], bool]]:
    """(name, paths, has a target) of each page timed."""
    pick = [devices[n % len(devices)] for n in range(requests)]
    return [
        ("overview, last 3 h", ["/line"] * requests, True),
        ("overview, last 7 days", ["/line?hours=168"] * requests, True),
        ("live part (every 3 s)", ["/line/live"] * requests, True),
        ("overview JSON", ["/line/now.json"] * requests, False),
        ("device page", [f"/line/device?endpoint={quote(ep)}" for ep, _sn, _fp in pick], True),
        ("search by serial", [f"/line/devices?q={quote(sn)}" for _ep, sn, _fp in pick], False),
        ("search by fingerprint", [f"/line/devices?q={fp}" for _ep, _sn, fp in pick], False),
    ]


def run_pages(url: str, label: str, rows: int, requests: int, root: Path) -> dict[str, float]:
    """Seed ``url`` with ``rows`` devices, serve it, time the pages; returns p95 ms by page."""
    seeded = seed(url, rows, end=dt.datetime.now(dt.UTC))
    print(
        f"[{label}] seeded {seeded.attempts:,} attempts ({seeded.provisioned:,} provisioned, "
        f"{seeded.batches} batches) in {seeded.seconds:.0f} s"
    )
    devices = _sample(url, SAMPLE)
    home = root / "server-home"
    if not home.exists():
        init_home(home, ["127.0.0.1"])
    process, port = _start_server(home, url, root)
    p95s: dict[str, float] = {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for name, paths, targeted in _pages(devices, requests):
            took = sorted(_time(conn, paths))
            p95 = took[min(len(took) - 1, round(0.95 * (len(took) - 1)))]
            p95s[name] = p95
            mark = ("ok" if p95 < TARGET_MS else "OVER") if targeted else "  "
            print(
                f"  [{label}] {name:<24} median {statistics.median(took):7.1f} ms  p95 {p95:7.1f} ms  "
                f"max {took[-1]:7.1f} ms  {mark}"
            )
        conn.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    return p95s

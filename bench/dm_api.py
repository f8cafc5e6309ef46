"""Device Management API: developer-certificate creations per second, device-list latency at 100k devices.

The API runs as ``provkit server`` serves it (FastAPI under uvicorn, one process) on a
registry (SQLite by default, ``--postgres postgresql://…`` for PostgreSQL) and is called
over HTTP on 127.0.0.1, as the developer flow and SDKs call it.

* creations/s: ``--clients`` threads POST ``/v3/developer-certificates`` (each answer
  carries a fresh P-256 key, a certificate signed by the developer CA and its
  ``mbed_cloud_dev_credentials.c``), next to a loop of the crypto alone (key generation,
  signature, sealing to the server key; no HTTP, no database, no C file) in the same run;
* device list: the connection records of ``--devices`` devices are bulk-inserted (a
  bootstrap and an LwM2M record each, as the servers write them), then ``GET
  /v3/devices`` pages are timed: the first page, a page in the middle (``after`` cursor),
  the last page, a page filtered by state, and the first page with ``include=total_count``.

Run: .venv/bin/python bench/dm_api.py [--devices 100000] [--certificates 200] [--clients 4] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg

from provkit.crypto import certconfig, issue, keys, x509
from provkit.registry import Registry
from provkit.registry.engine import normalise_url
from provkit.registry.schema import connections
from provkit.server.api import ApiContext, DeveloperAuthority, ServerIdentity, create_app
from provkit.server.api.developer import ServerKeySealer
from provkit.server.api.http import BackgroundApi
from provkit.server.http_settings import HttpSettings

NOW = dt.datetime.now(dt.UTC)


def _get(url: str, key: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def _post(url: str, key: str, body: dict[str, object]) -> int:
    data = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()
        return int(answer.status)


def bare_issue_rate(authority: DeveloperAuthority, sealer: ServerKeySealer, seconds: float) -> float:
    """Keys, certificates and sealed keys per second without HTTP or database."""
    ca_key = keys.generate_p256()
    issuer = issue.DeviceCertificateIssuer(ca_key, authority.ca_certificate, {}, 20)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key = keys.generate_p256()
        issuer.issue(key.public_key(), f"{count:032x}", NOW)
        sealer.seal(certconfig.private_key_pkcs8(key), b"bench")
        count += 1
    return count / (time.perf_counter() - start)


def creation_rate(url: str, key: str, total: int, clients: int) -> float:
    """Developer certificates created per second over HTTP by ``clients`` threads."""
    per_client = total // clients
    failures: list[int] = []

    def work(client: int) -> None:
        for i in range(per_client):
            status = _post(f"{url}/v3/developer-certificates", key, {"name": f"bench-{client}-{i}"})
            if status != 201:
                failures.append(status)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    assert not failures, failures
    return per_client * clients / elapsed


def seed_devices(registry: Registry, count: int) -> None:
    """Bulk-insert the connection records of ``count`` devices (registered, some only bootstrapped)."""
    rows = []
    for n in range(count):
        name = f"dev-{n:07d}"
        seen = NOW - dt.timedelta(seconds=count - n)
        common = {"endpoint_name": name, "first_seen": seen, "last_seen": seen, "address": "10.0.0.1:5683"}
        common |= {"mode": "certificate", "fingerprint": f"{n:064x}", "server_id": "bench", "successes": 1}
        rows.append({**common, "service": "bootstrap", "outcome": "bootstrapped", "location": None})
        if n % 10:  # one device in ten bootstrapped and never registered
            rows.append({**common, "service": "lwm2m", "outcome": "registered", "location": f"/rd/{n:x}"})
    with registry.engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(connections.insert(), rows[start : start + 20_000])
    # What autovacuum does soon after a bulk load: without statistics PostgreSQL takes the
    # grouped page for a small table and aggregates all of it (0.3 s instead of 0.1 ms).
    with registry.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE connections")


def latency(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and 95th percentile of ``repeats`` calls, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


@contextmanager
def _registry_url(postgres: str | None, scratch: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh schema of ``postgres`` (dropped at the end)."""
    if postgres is None:
        yield str(scratch / "registry.sqlite")
        return
    libpq = "postgresql://" + postgres.split("://", 1)[1]
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in postgres else "?"
        yield f"{normalise_url(postgres)}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run on this PostgreSQL database, in a schema of its own dropped afterwards (default: SQLite)",
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--certificates", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        _registry_url(args.postgres, Path(scratch)) as url,
        Registry.open(url) as registry,
    ):
        sealer = ServerKeySealer(keys.generate_p256())  # as provkit server seals, to its sealing key
        ca = issue.create_ca(keys.generate_p256(), {"common-name": "bench server CA"}, now=NOW)
        identity = ServerIdentity(
            "coaps://127.0.0.1:5784", "coaps://127.0.0.1:5684", x509.certificate_der(ca)
        )
        authority = DeveloperAuthority.open(registry, sealer, identity)
        _, key = registry.api_keys.create(f"bench-{time.time_ns()}", "administrators")
        with BackgroundApi(create_app(ApiContext(registry, authority)), HttpSettings(port=0)) as api:
            print(f"registry: {registry.engine.dialect.name}")
            bare = bare_issue_rate(authority, sealer, 2.0)
            rate = creation_rate(api.url, key, args.certificates, args.clients)
            print(
                f"developer certificates: {rate:,.1f} created/s over HTTP with {args.clients} clients "
                f"({args.certificates} made); the crypto alone (key, signature, sealing) {bare:,.1f}/s"
            )
            start = time.perf_counter()
            seed_devices(registry, args.devices)
            print(f"seeded {args.devices:,} devices in {time.perf_counter() - start:.1f} s")
            base = f"{api.url}/v3/devices?limit=50"
            middle = f"dev-{args.devices // 2:07d}"
            last = f"dev-{args.devices - 51:07d}"
            for label, page in (
                ("first page", base),
                ("middle page (after)", f"{base}&after={middle}"),
                ("last page (after)", f"{base}&after={last}"),
                ("state=bootstrapped page", f"{base}&state__eq=bootstrapped"),
                ("first page + total_count", f"{base}&include=total_count"),
            ):
                answer = _get(page, key)
                assert answer["data"], label
                median, p95 = latency(lambda page=page: _get(page, key), args.repeats)  # type: ignore[misc]
                where = f"{label} at {args.devices:,}"
                print(f"GET /v3/devices {where}: median {median:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()

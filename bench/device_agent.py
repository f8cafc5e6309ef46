"""Device bundle handler throughput: full valid bundles, SQLite vs in-memory storage.

Each bundle is a complete bootstrap-mode configuration (keys, chain of 2, server CA,
update certificate, 14 config params, CurrentTime) with Verify=1. A device accepts a
given item name once, so every bundle goes to a *fresh device*: for SQLite a new file
per bundle in one directory (the file/secret creation is *not* timed; only
``bundle_handler`` is), for memory a new MemoryStorage. Bundles are pre-built so only
the device side is measured.

``--tcp`` adds the transport: a real device agent (``DeviceAgent`` + ``TcpAgentServer``)
on 127.0.0.1 and a ``TcpLink`` client, timed per exchange (frame, send, device work,
response, checksum). The served device is reused, so its storage is wiped before each
bundle (``fcc_storage_delete``); the ``reuse`` row does the same wipe + handler call
without a socket, so ``tcp − reuse`` is the transport's cost. Two client modes:
``keep-alive`` (bundles carry ``KpAlvSess: 1``, one connection for all) and
``per-bundle`` (a new connection per bundle, which the agent closes after answering).

SQLite storage commits with ``synchronous=FULL`` (the WAL is synced before a bundle's
answer, so it survives a power cut). The ``sqlite-normal`` rows run the same work with
``synchronous=NORMAL``, the setting before that, and the last lines print what FULL
costs per bundle.

Usage: python bench/device_agent.py [--count N] [--tcp]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.handlers import fcc_handler
from provkit.device.kcm import Kcm
from provkit.device.storage import MemoryStorage, SqliteStorage, StorageBackend
from provkit.transport.agent import DeviceAgent, Reply
from provkit.transport.links import TcpLink
from provkit.transport.servers import TcpAgentServer
from provkit.wire.framing import FCC_TOKEN
from provkit.wire.response import decode_response

EP = "bench-device"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject_key: ec.EllipticCurvePrivateKey, cn: str, issuer_key: ec.EllipticCurvePrivateKey, issuer: str
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=20 * 365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def build_bundle() -> bytes:
    ca_key, dev_key, srv_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    key_der = dev_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    params = [
        ("mbed.UseBootstrap", 1),
        ("mbed.EndpointName", EP),
        ("mbed.Manufacturer", "Acme"),
        ("mbed.ModelNumber", "M1"),
        ("mbed.DeviceType", "sensor"),
        ("mbed.HardwareVersion", "1.0"),
        ("mbed.MemoryTotalKB", 1024),
        ("mbed.SerialNumber", "SN-1"),
        ("mbed.CurrentTime", int(time.time())),
        ("mbed.Timezone", "UTC"),
        ("mbed.UTCOffset", "+00:00"),
        ("mbed.BootstrapServerURI", "coaps://bootstrap.example.com:5684?aid=0158"),
        ("mbed.ClassId", bytes(16)),
        ("mbed.VendorId", bytes(16)),
    ]
    return cbor2.dumps(
        {
            "SchemeVersion": "0.0.1",
            "ConfigParams": [{"Name": n, "Data": d} for n, d in params],
            "Keys": [
                {
                    "Name": "mbed.BootstrapDevicePrivateKey",
                    "Type": "ECCPrivate",
                    "Format": "der",
                    "Data": key_der,
                }
            ],
            "Certificates": [
                {
                    "Name": "mbed.BootstrapServerCACert",
                    "Format": "der",
                    "Data": _cert(srv_key, "srv", srv_key, "srv"),
                },
                {
                    "Name": "mbed.UpdateAuthCert",
                    "Format": "der",
                    "Data": _cert(srv_key, "upd", srv_key, "upd"),
                },
            ],
            "CertificateChains": [
                {
                    "Name": "mbed.BootstrapDeviceCert",
                    "Format": "der",
                    "DataArray": [_cert(dev_key, EP, ca_key, "ca"), _cert(ca_key, "ca", ca_key, "ca")],
                }
            ],
        }
    )


def report(label: str, latencies: list[float]) -> float:
    """Print rate (bundles / summed latency) and p50/p99 of one series; return the mean latency."""
    qs = statistics.quantiles(latencies, n=100)
    print(
        f"{label:34s} bundles={len(latencies)} rate={len(latencies) / sum(latencies):8.1f}/s "
        f"p50={qs[49] * 1000:6.2f} ms p99={qs[98] * 1000:6.2f} ms"
    )
    return sum(latencies) / len(latencies)


KINDS = ("sqlite", "sqlite-normal", "memory")


def _backend(kind: str, path: Path) -> StorageBackend:
    if kind == "memory":
        return MemoryStorage()
    storage = SqliteStorage(path)
    if kind == "sqlite-normal":
        # The durability setting before FULL, only to measure what FULL costs.
        storage._db.execute("PRAGMA synchronous=NORMAL")
    return storage


def cost_of_full(means: dict[str, float]) -> None:
    """Print what synchronous=FULL adds per bundle over NORMAL, for each pair of rows measured."""
    for label, full in means.items():
        normal = means.get(label.replace("sqlite", "sqlite-normal", 1))
        if label.startswith("sqlite ") and normal:
            row = label.removeprefix("sqlite ")
            added = (full - normal) * 1000
            print(f"FULL vs NORMAL, {row:20s}: +{added:5.2f} ms per bundle, rate ratio {normal / full:4.2f}")


def run(kind: str, bundles: list[bytes], workdir: Path) -> float:
    """Direct handler calls, a fresh device per bundle (only ``bundle_handler`` is timed)."""
    latencies = []
    for i, data in enumerate(bundles):
        backend = _backend(kind, workdir / f"{kind}-dev{i}.sqlite")
        fcc = FactoryConfiguratorClient(Kcm(backend))
        start = time.perf_counter()
        result = fcc.bundle_handler(data)
        latencies.append(time.perf_counter() - start)
        assert result.status == 0, result
        backend.close()
    return report(f"{kind} direct", latencies)


def run_reuse(kind: str, bundles: list[bytes], workdir: Path) -> float:
    """Direct calls on one reused device: wipe + ``bundle_handler``, the TCP agent's device work."""
    backend = _backend(kind, workdir / f"reuse-{kind}.sqlite")
    fcc = FactoryConfiguratorClient(Kcm(backend))
    latencies = []
    for data in bundles:
        start = time.perf_counter()
        fcc.storage_delete()
        result = fcc.bundle_handler(data)
        latencies.append(time.perf_counter() - start)
        assert result.status == 0, result
    backend.close()
    return report(f"{kind} reuse (wipe+handle)", latencies)


def run_tcp(kind: str, bundles: list[bytes], workdir: Path, *, keep_alive: bool) -> float:
    """Through a real agent on 127.0.0.1: one connection for all, or one per bundle."""
    backend = _backend(kind, workdir / f"tcp-{kind}-{keep_alive}.sqlite")
    fcc = FactoryConfiguratorClient(Kcm(backend))
    handle = fcc_handler(fcc)

    def fresh_device(message: bytes) -> bytes | Reply | None:
        fcc.storage_delete()  # each bundle provisions the device from scratch
        return handle(message)

    latencies = []
    with TcpAgentServer(DeviceAgent({FCC_TOKEN: fresh_device}), "127.0.0.1", 0) as server:
        link = TcpLink(*server.address, connect_timeout_s=5)
        try:
            for data in bundles:
                start = time.perf_counter()
                if not keep_alive:
                    link.close()  # per-bundle: connect (and let the agent close) every time
                answer = link.exchange(data, timeout_s=30)
                latencies.append(time.perf_counter() - start)
                assert decode_response(answer).return_status == 0, decode_response(answer)
        finally:
            link.close()
    backend.close()
    return report(f"{kind} tcp {'keep-alive' if keep_alive else 'per-bundle'}", latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--tcp", action="store_true", help="also measure through a real TCP agent")
    args = parser.parse_args()
    unique = [build_bundle() for _ in range(min(args.count, 50))]
    bundles = (unique * (args.count // len(unique) + 1))[: args.count]
    means: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            means[f"{kind} direct"] = run(kind, bundles, Path(tmp))
        if args.tcp:
            kept = [cbor2.dumps({**cbor2.loads(b), "KpAlvSess": 1}) for b in unique]
            kept = (kept * (args.count // len(kept) + 1))[: args.count]
            for kind in KINDS:
                means[f"{kind} reuse"] = run_reuse(kind, bundles, Path(tmp))
                means[f"{kind} tcp keep-alive"] = run_tcp(kind, kept, Path(tmp), keep_alive=True)
                means[f"{kind} tcp per-bundle"] = run_tcp(kind, bundles, Path(tmp), keep_alive=False)
    cost_of_full(means)


if __name__ == "__main__":
    main()

"""Device bundle handler throughput: full valid bundles, SQLite vs in-memory storage.

Each bundle is a complete bootstrap-mode configuration (keys, chain of 2, server CA,
update certificate, 14 config params, CurrentTime) with Verify=1. A device accepts a
given item name once, so every bundle goes to a *fresh device*: for SQLite a new file
per bundle in one directory (the file/secret creation is *not* timed; only
``bundle_handler`` is), for memory a new MemoryStorage. Bundles are pre-built so only
the device side is measured.

Usage: python bench/device_agent.py [--count N]
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
from provkit.device.kcm import Kcm
from provkit.device.storage import MemoryStorage, SqliteStorage

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


def run(kind: str, bundles: list[bytes], workdir: Path) -> None:
    latencies = []
    for i, data in enumerate(bundles):
        backend = MemoryStorage() if kind == "memory" else SqliteStorage(workdir / f"dev{i}.sqlite")
        fcc = FactoryConfiguratorClient(Kcm(backend))
        start = time.perf_counter()
        result = fcc.bundle_handler(data)
        latencies.append(time.perf_counter() - start)
        assert result.status == 0, result
        backend.close()
    total = sum(latencies)
    qs = statistics.quantiles(latencies, n=100)
    print(
        f"{kind:7s} bundles={len(bundles)} rate={len(bundles) / total:8.1f}/s "
        f"p50={qs[49] * 1000:6.2f} ms p99={qs[98] * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    bundles = [build_bundle() for _ in range(min(args.count, 50))]
    bundles = (bundles * (args.count // len(bundles) + 1))[: args.count]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "memory"):
            run(kind, bundles, Path(tmp))


if __name__ == "__main__":
    main()

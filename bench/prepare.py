"""Bundles per second of FactoryToolApi.prepare_device_configuration (by_tool) vs a bare loop.

The bare loop does only the unavoidable work with ``cryptography`` and ``cbor2``: generate a
P-256 key, sign a device certificate with the same CA key, encode a CBOR map of the same
shape. Both run in the same process, in alternating batches. Target: ratio >= 0.7.

Usage: python bench/prepare.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.factory import FactoryToolApi
from provkit.factory.home import make_demo_home


def bare_loop(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, server_ca_der: bytes, n: int
) -> None:
    now = dt.datetime.now(dt.UTC)
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dev-{i}")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=7300))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key_der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        cbor2.dumps(
            {
                "SchemeVersion": "0.0.1",
                "ConfigParams": [
                    {"Name": "mbed.EndpointName", "Data": f"dev-{i}"},
                    {"Name": "mbed.UseBootstrap", "Data": 1},
                ],
                "Keys": [
                    {
                        "Name": "mbed.BootstrapDevicePrivateKey",
                        "Type": "ECCPrivate",
                        "Format": "der",
                        "Data": key_der,
                    }
                ],
                "Certificates": [
                    {"Name": "mbed.BootstrapServerCACert", "Format": "der", "Data": server_ca_der}
                ],
                "CertificateChains": [
                    {
                        "Name": "mbed.BootstrapDeviceCert",
                        "Format": "der",
                        "DataArray": [cert.public_bytes(serialization.Encoding.DER)],
                    }
                ],
                "Verify": 1,
            }
        )


def rates(runs: list[Callable[[int], None]], seconds: float, batch: int = 25) -> list[float]:
    """Bundles/s of each run, measured in alternating batches so load changes hit all alike."""
    counts = [0] * len(runs)
    totals = [0.0] * len(runs)
    while min(totals) < seconds:
        for index, run in enumerate(runs):
            start = time.perf_counter()
            run(batch)
            totals[index] += time.perf_counter() - start
            counts[index] += batch
    return [count / total for count, total in zip(counts, totals, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_demo_home(Path(tmp))
        api = FactoryToolApi(home_dir=paths.home)
        api.setup_factory_configurator_utility()
        api.prepare_device_configuration("warm-up", "SN")  # loads config, files and CA once
        ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        server_ca = x509.load_pem_x509_certificate(
            (paths.resources / "bootstrap_server_ca_cert.pem").read_bytes()
        )
        server_ca_der = server_ca.public_bytes(serialization.Encoding.DER)

        def provkit_run(n: int) -> None:
            for i in range(n):
                api.prepare_device_configuration(f"dev-{i}", f"SN-{i}")

        bare, ours = rates(
            [lambda n: bare_loop(ca_key, ca_cert, server_ca_der, n), provkit_run], args.seconds
        )
    print(f"bare loop (cryptography + cbor2): {bare:8.1f} bundles/s")
    print(f"prepare_device_configuration:     {ours:8.1f} bundles/s")
    print(f"ratio: {ours / bare:.2f} (target >= 0.70)")


if __name__ == "__main__":
    main()

"""Bundles per second of FactoryToolApi.prepare_device_configuration (by_tool) vs a bare loop.

The bare loop does only the unavoidable work with ``cryptography`` and ``cbor2``: generate a
P-256 key, sign a device certificate with the same CA key, encode a CBOR map of the same
shape. Both run in the same process, in alternating batches. Target: ratio >= 0.7.

With ``--pkcs11`` it compares instead the factory CA key in a SoftHSM2 token (a token the
bench creates in a temporary ``SOFTHSM2_CONF``) with the key file, preparing bundles in
1 and then 2 worker processes (``PreparePool``, as ``provkit batch`` does), the two keys
in alternating batches. Target: token >= 0.5 x file key.

Usage: python bench/prepare.py [--seconds 3] [--pkcs11]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
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


SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_PIN = "bench-1234"


def softhsm_token(base: Path) -> str:
    """Create a SoftHSM2 configuration and token under ``base``; return the CA key's URI."""
    tokens = base / "tokens"
    tokens.mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    os.environ["PROVKIT_PKCS11_PIN"] = TOKEN_PIN
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            "bench-so-99",
            "--pin",
            TOKEN_PIN,
        ],
        check=True,
        capture_output=True,
    )
    return f"pkcs11:token=bench;object=provkit-ca?module-path={SOFTHSM2_MODULE}"


def pool_rates(homes: list[Path], workers: int, seconds: float, batch: int = 48) -> list[float]:
    """Bundles/s of a worker pool per home, in alternating batches of ``batch`` devices."""
    from provkit.line.prepare import PrepareJob, PreparePool

    pools = [PreparePool(workers, home) for home in homes]
    try:
        for pool in pools:
            pool.warm_up()
            list(pool.map([PrepareJob(0, f"warm-{i}", "SN") for i in range(workers * 4)]))
        counter = [0]

        def run(pool: PreparePool) -> Callable[[int], None]:
            def go(n: int) -> None:
                jobs = [PrepareJob(counter[0] + i, f"dev-{counter[0] + i}", f"SN-{i}") for i in range(n)]
                counter[0] += n
                for result in pool.map(jobs):
                    assert result.ok, result.error_message

            return go

        return rates([run(pool) for pool in pools], seconds, batch)
    finally:
        for pool in pools:
            pool.close()


def pkcs11_main(seconds: float) -> None:
    """Token key against key file, 1 and 2 workers."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        uri = softhsm_token(base / "softhsm")
        file_home = make_demo_home(base / "file").home
        assert FactoryToolApi(home_dir=file_home).setup_factory_configurator_utility().ok
        token_home = make_demo_home(base / "token").home
        assert FactoryToolApi(home_dir=token_home, ca_key=uri).setup_factory_configurator_utility().ok
        print(f"CA key in SoftHSM2: {uri}")
        for workers in (1, 2):
            file_rate, token_rate = pool_rates([file_home, token_home], workers, seconds)
            print(
                f"{workers} worker(s): key file {file_rate:8.1f} bundles/s, "
                f"SoftHSM2 {token_rate:8.1f} bundles/s, ratio {token_rate / file_rate:.2f} (target >= 0.50)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per variant")
    parser.add_argument(
        "--pkcs11", action="store_true", help="SoftHSM2 token key vs key file, 1 and 2 workers"
    )
    args = parser.parse_args()
    if args.pkcs11:
        pkcs11_main(args.seconds)
        return
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

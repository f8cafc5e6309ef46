"""Blobs per second: LwM2M provisioning blobs built with and without certificate generation.

Run: .venv/bin/python bench/lwm2m.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import time

from provkit.factory.lwm2m import FactoryProvisioning
from provkit.lwm2m.config import config_from_mapping

PSK = {
    "Security": {
        1: {
            "ServerURI": "coaps://dm.example.com:5684",
            "Bootstrap": False,
            "Mode": "psk",
            "PKOrIdentity": "id",
            "SecretKey": {"hex": "00112233445566778899aabbccddeeff"},
            "ShortServerID": 1,
        }
    },
    "Server": {1: {"ShortServerID": 1, "Lifetime": 86400, "NotificationStoring": False, "Binding": "U"}},
}
CERT = {
    "Security": {1: {**PSK["Security"][1], "Mode": "cert"}},
    "Server": PSK["Server"],
}


def measure(label: str, seconds: float, build: object) -> None:
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        build()  # type: ignore[operator]
        count += 1
    print(f"{label}: {count / elapsed:,.0f} blobs/s ({count} in {elapsed:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    counter = iter(range(10**9))
    server = FactoryProvisioning(
        config_from_mapping(CERT, require_credentials=False), "server", None, None, None
    )
    server_cert = server.generate_self_signed_cert().cert_der

    def psk_blob() -> bytes:
        config = config_from_mapping(PSK)
        config.set(0, 1, 3, f"device-{next(counter)}".encode())
        return FactoryProvisioning(config, None, None, None, None).build_blob()

    def cert_blob() -> bytes:
        fp = FactoryProvisioning(
            config_from_mapping(CERT, require_credentials=False), f"urn:dev:{next(counter)}", None, None, None
        )
        fp.set_server_cert(server_cert)
        fp.generate_self_signed_cert()
        return fp.build_blob()

    measure("PSK blob, no certificates", args.seconds, psk_blob)
    measure("cert-mode blob with EC P-256 key + self-signed certificate", args.seconds, cert_blob)


if __name__ == "__main__":
    main()

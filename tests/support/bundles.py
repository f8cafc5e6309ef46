"""Builds real, complete FCC bundles (bootstrap mode) for the agent's integration tests."""

from __future__ import annotations

import datetime as dt
import time
from functools import cache

from provkit.crypto.issue import create_ca, issue_device_certificate
from provkit.crypto.keys import generate_p256, private_key_der
from provkit.crypto.x509 import certificate_der
from provkit.wire.bundle import Bundle, CertificateItem, ConfigParam, KeyItem, encode_bundle

SUBJECT = {"common-name": "provkit transport test CA", "organization-name": "provkit"}


@cache
def _ca() -> tuple[object, object]:
    key = generate_p256()
    return key, create_ca(key, SUBJECT, now=dt.datetime.now(dt.UTC))


def device_bundle(
    endpoint: str = "ep-transport-1", *, keep_alive: int | None = None, verify: int = 1
) -> bytes:
    """A bundle FCC accepts: bootstrap CA, device key and certificate, URI, metadata, time."""
    ca_key, ca_cert = _ca()
    device_key = generate_p256()
    device_cert = issue_device_certificate(
        ca_key,  # type: ignore[arg-type]
        ca_cert,  # type: ignore[arg-type]
        device_key.public_key(),
        common_name=endpoint,
        subject={"organization-name": "provkit"},
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        validity_years=10,
    )
    params = (
        ConfigParam("mbed.EndpointName", endpoint),
        ConfigParam("mbed.UseBootstrap", 1),
        ConfigParam("mbed.BootstrapServerURI", "coaps://bootstrap.example.com:5684?aid=0123456789abcdef"),
        ConfigParam("mbed.Manufacturer", "provkit"),
        ConfigParam("mbed.ModelNumber", "PK-1"),
        ConfigParam("mbed.DeviceType", "sensor"),
        ConfigParam("mbed.HardwareVersion", "1.0"),
        ConfigParam("mbed.MemoryTotalKB", 512),
        ConfigParam("mbed.SerialNumber", f"SN-{endpoint}"),
        ConfigParam("mbed.CurrentTime", int(time.time())),
        ConfigParam("mbed.Timezone", "Europe/London"),
        ConfigParam("mbed.UTCOffset", "+00:00"),
    )
    bundle = Bundle(
        keys=(KeyItem("mbed.BootstrapDevicePrivateKey", "ECCPrivate", private_key_der(device_key)),),
        certificates=(
            CertificateItem("mbed.BootstrapServerCACert", certificate_der(ca_cert)),  # type: ignore[arg-type]
            CertificateItem("mbed.BootstrapDeviceCert", certificate_der(device_cert)),
        ),
        config_params=params,
        verify=verify,
        keep_alive=keep_alive,
    )
    return encode_bundle(bundle)

"""Test-only PKI and bundle builder for the device tests (uses ``cryptography`` directly)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.device.clock import DeviceClock
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import Kcm
from provkit.device.storage import MemoryStorage, SqliteStorage

DAY = dt.timedelta(days=1)
YEAR = dt.timedelta(days=365)
ENDPOINT = "EP_fdsf"
AID = "0158d3c1a2b3"
BOOTSTRAP_URI = f"coaps://bootstrap.example.com:5684?aid={AID}"
LWM2M_URI = f"coaps://lwm2m.example.com:5684?aid={AID}"


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provkit tests")]
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class Pki:
    """A test CA that issues device certificates with the attributes a case needs."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = self.self_signed("provkit test CA", ca=True, years=35)
        self.server_ca = cert_der(self.self_signed("server CA", ca=True, years=30))
        self.update_cert = cert_der(self.self_signed("update auth", ca=False, years=20, code_signing=True))

    def self_signed(
        self,
        cn: str,
        *,
        ca: bool,
        years: int,
        key: ec.EllipticCurvePrivateKey | None = None,
        code_signing: bool = False,
        ou: str | None = None,
    ) -> x509.Certificate:
        key = key or (self.ca_key if cn == "provkit test CA" else ec.generate_private_key(ec.SECP256R1()))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, ou))
            .issuer_name(_name(cn, ou))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - DAY)
            .not_valid_after(self.now + years * YEAR)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if code_signing:
            usages.append(ExtendedKeyUsageOID.CODE_SIGNING)
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(key, hashes.SHA256())

    def device(
        self,
        cn: str = ENDPOINT,
        *,
        ou: str | None = None,
        client_auth: bool = True,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        public_key: ec.EllipticCurvePublicKey | None = None,
        issuer_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> tuple[bytes, bytes]:
        """Return ``(private key DER, certificate DER)`` for a device signed by the CA."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, ou))
            .issuer_name(self.ca.subject)
            .public_key(public_key or key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or self.now - DAY)
            .not_valid_after(not_after or self.now + 20 * YEAR)
        )
        if client_auth:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(issuer_key or self.ca_key, hashes.SHA256())
        return key_der(key), cert_der(cert)

    @property
    def ca_der(self) -> bytes:
        return cert_der(self.ca)


class Builder:
    """Builds request bundles as plain dicts (wire order = dict order) for mutation."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki

    def valid(self, mode: str = "bootstrap", *, time_now: int | None = None) -> dict[str, Any]:
        pki = self.pki
        stem = "Bootstrap" if mode == "bootstrap" else "LwM2M"
        key, cert = pki.device(ou=AID if mode == "lwm2m" else None)
        params: list[dict[str, Any]] = [
            {"Name": "mbed.UseBootstrap", "Data": 1 if mode == "bootstrap" else 0},
            {"Name": "mbed.EndpointName", "Data": ENDPOINT},
            {"Name": "mbed.Manufacturer", "Data": "Toshiba"},
            {"Name": "mbed.ModelNumber", "Data": "KR-54-FS"},
            {"Name": "mbed.DeviceType", "Data": "TEMP-SENSOR"},
            {"Name": "mbed.HardwareVersion", "Data": "0.1.5"},
            {"Name": "mbed.MemoryTotalKB", "Data": 102400},
            {"Name": "mbed.SerialNumber", "Data": "A12FC-45"},
            {"Name": "mbed.CurrentTime", "Data": int(time.time()) if time_now is None else time_now},
            {"Name": "mbed.Timezone", "Data": "UTC"},
            {"Name": "mbed.UTCOffset", "Data": "+02:00"},
            {"Name": f"mbed.{stem}ServerURI", "Data": BOOTSTRAP_URI if mode == "bootstrap" else LWM2M_URI},
            {"Name": "mbed.ClassId", "Data": bytes(range(16))},
            {"Name": "mbed.VendorId", "Data": bytes(range(16, 32))},
        ]
        return {
            "SchemeVersion": "0.0.1",
            "ConfigParams": params,
            "Keys": [
                {"Name": f"mbed.{stem}DevicePrivateKey", "Type": "ECCPrivate", "Format": "der", "Data": key}
            ],
            "Certificates": [
                {"Name": f"mbed.{stem}ServerCACert", "Format": "der", "Data": pki.server_ca},
                {"Name": "mbed.UpdateAuthCert", "Format": "der", "Data": pki.update_cert},
            ],
            "CertificateChains": [
                {"Name": f"mbed.{stem}DeviceCert", "Format": "der", "DataArray": [cert, pki.ca_der]}
            ],
        }

    @staticmethod
    def set_param(bundle: dict[str, Any], name: str, data: Any) -> None:
        """Replace (or add) a config param's Data."""
        for item in bundle["ConfigParams"]:
            if item["Name"] == name:
                item["Data"] = data
                return
        bundle["ConfigParams"].append({"Name": name, "Data": data})

    @staticmethod
    def drop_param(bundle: dict[str, Any], name: str) -> None:
        """Remove a config param."""
        bundle["ConfigParams"] = [p for p in bundle["ConfigParams"] if p["Name"] != name]

    @staticmethod
    def drop_item(bundle: dict[str, Any], group: str, name: str) -> None:
        """Remove a named entry from Keys / Certificates / CertificateChains."""
        bundle[group] = [p for p in bundle[group] if p["Name"] != name]

    @staticmethod
    def encode(bundle: dict[str, Any]) -> bytes:
        return cbor2.dumps(bundle)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="session")
def builder(pki: Pki) -> Builder:
    return Builder(pki)


@pytest.fixture
def memory_fcc() -> FactoryConfiguratorClient:
    kcm = Kcm(MemoryStorage())
    return FactoryConfiguratorClient(kcm, clock=DeviceClock(kcm))


@pytest.fixture
def sqlite_fcc(tmp_path: Path) -> Iterator[FactoryConfiguratorClient]:
    backend = SqliteStorage(tmp_path / "device.sqlite")
    kcm = Kcm(backend)
    yield FactoryConfiguratorClient(kcm, clock=DeviceClock(kcm))
    backend.close()


@pytest.fixture(params=["memory", "sqlite"])
def any_fcc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FactoryConfiguratorClient]:
    if request.param == "memory":
        backend: MemoryStorage | SqliteStorage = MemoryStorage()
    else:
        backend = SqliteStorage(tmp_path / "device.sqlite")
    kcm = Kcm(backend)
    yield FactoryConfiguratorClient(kcm, clock=DeviceClock(kcm))
    backend.close()

"""Files named by fcu.yml: server CA, CRL, update authority and custom certificates (360, 380, 390)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError, DeviceKeysError, ProvkitError

from .conftest import CLASS_ID, VENDOR_ID, HomeFactory


def make_cert(
    *,
    self_signed: bool = True,
    years: float = 20,
    start: dt.timedelta = dt.timedelta(days=-1),
    eku: tuple[x509.ObjectIdentifier, ...] = (
        ExtendedKeyUsageOID.CODE_SIGNING,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ),
    rsa_key: bool = False,
) -> x509.Certificate:
    """Build a test certificate with the given properties."""
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    signer = key if self_signed else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "update authority")])
    issuer = name if self_signed else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other")])
    begin = dt.datetime.now(dt.UTC) + start
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(begin)
        .not_valid_after(begin + dt.timedelta(days=365 * years))
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return builder.sign(signer, hashes.SHA256())


def write_update_cert(path: Path, **options: object) -> Path:
    """Write a DER update authority certificate to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_cert(**options).public_bytes(serialization.Encoding.DER))  # type: ignore[arg-type]
    return path


def _prepare_error(make_home: HomeFactory, **overrides: object) -> ProvkitError:
    api = make_home(**overrides)
    with pytest.raises(ProvkitError) as info:
        api.prepare_device_configuration("d", "s")
    return info.value


def test_missing_server_ca_file_is_360(make_home: HomeFactory, tmp_path: Path) -> None:
    """A server CA file that does not exist fails with 360 naming it."""
    missing = tmp_path / "nope.pem"
    error = _prepare_error(make_home, bootstrap_server_ca_certificate_file=str(missing))
    assert isinstance(error, ConfigError) and error.code == FcuErrorCode.FILE_LOAD_FAILED
    assert error.message == f"Could not load file: {missing}"


def test_server_ca_not_a_certificate_is_390(make_home: HomeFactory, tmp_path: Path) -> None:
    """A server CA file holding no certificate fails with 390."""
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    error = _prepare_error(make_home, bootstrap_server_ca_certificate_file=str(bad))
    assert isinstance(error, DeviceKeysError) and error.code == FcuErrorCode.NOT_X509_CERTIFICATE
    assert error.message == f"{bad} is not an X.509 certificate or not formatted in Pem or Der"


def test_server_ca_with_rsa_key_is_380(make_home: HomeFactory, tmp_path: Path) -> None:
    """A server CA outside the supported scheme (RSA) fails with 380."""
    path = tmp_path / "rsa.der"
    path.write_bytes(make_cert(rsa_key=True).public_bytes(serialization.Encoding.DER))
    error = _prepare_error(make_home, bootstrap_server_ca_certificate_file=str(path))
    assert error.message.startswith("Validation error in field: bootstrap-server-ca-certificate-file.")


def test_missing_crl_file_is_360(make_home: HomeFactory, tmp_path: Path) -> None:
    """A configured CRL file that does not exist fails with 360."""
    error = _prepare_error(make_home, bootstrap_server_crl_file=str(tmp_path / "x.crl"))
    assert error.code == FcuErrorCode.FILE_LOAD_FAILED


def test_file_name_with_nul_byte_is_360(make_home: HomeFactory) -> None:
    """A file name no file can have (a NUL byte in it) is 360 naming it, not a crash."""
    error = _prepare_error(
        make_home,
        custom_properties=[{"name": "acme.Cert", "type": "certificate", "data-file": "/tmp/a\x00b"}],
    )
    assert error.code == FcuErrorCode.FILE_LOAD_FAILED and "a\\x00b" in error.message


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"self_signed": False}, "self-signed"),
        ({"start": dt.timedelta(days=2)}, "not valid yet"),
        ({"start": dt.timedelta(days=-800), "years": 2}, "expired"),
        ({"rsa_key": True}, "P-256"),
    ],
)
def test_bad_update_auth_certificate_is_380(
    make_home: HomeFactory, tmp_path: Path, options: dict[str, object], fragment: str
) -> None:
    """Update authority certificates breaking the FCU rules fail with 380 saying which rule."""
    path = write_update_cert(tmp_path / "upd.der", **options)
    error = _prepare_error(
        make_home, update_auth_certificate_file=str(path), vendor_id=VENDOR_ID, class_id=CLASS_ID
    )
    assert error.message.startswith("Validation error in field: update-auth-certificate-file.")
    assert fragment in error.message


def test_short_lived_update_auth_certificate_warns(make_home: HomeFactory, tmp_path: Path) -> None:
    """An update certificate valid for under 10 years, or without codeSigning, gives warnings."""
    path = write_update_cert(tmp_path / "upd.der", years=5, eku=())
    api = make_home(update_auth_certificate_file=str(path), vendor_id=VENDOR_ID, class_id=CLASS_ID)
    warnings = [w.message for w in api.prepare_device_configuration("d", "s").warnings]
    assert any("less than 10 years" in w for w in warnings)
    assert any("codeSigning" in w for w in warnings)


def test_custom_certificate_garbage_is_390(make_home: HomeFactory, tmp_path: Path) -> None:
    """A custom certificate file that is not a certificate fails with 390."""
    bad = tmp_path / "c.der"
    bad.write_bytes(b"\x30\x03abc")
    error = _prepare_error(
        make_home, custom_properties=[{"name": "acme.C", "type": "certificate", "data-file": str(bad)}]
    )
    assert error.code == FcuErrorCode.NOT_X509_CERTIFICATE


def test_custom_key_garbage_is_380(make_home: HomeFactory) -> None:
    """A custom private key that does not parse fails with 380 naming the entry."""
    error = _prepare_error(
        make_home, custom_properties=[{"name": "acme.K", "type": "private-key", "data": "xx"}]
    )
    assert error.message.startswith("Validation error in field: custom-properties[0].data.")


def test_custom_chain_must_link(make_home: HomeFactory, tmp_path: Path) -> None:
    """A custom PEM chain whose certificates do not sign each other fails with 380."""
    pem = b"".join(make_cert().public_bytes(serialization.Encoding.PEM) for _ in range(2))
    path = tmp_path / "chain.pem"
    path.write_bytes(pem)
    error = _prepare_error(
        make_home, custom_properties=[{"name": "acme.Chain", "type": "certificate", "data-file": str(path)}]
    )
    assert error.code == FcuErrorCode.VALIDATION_ERROR


def test_custom_certificate_outside_the_crypto_scheme_is_380(make_home: HomeFactory, tmp_path: Path) -> None:
    """A custom certificate with an RSA key (outside the P-256 scheme) fails with 380 naming the entry."""
    good, bad = tmp_path / "good.pem", tmp_path / "rsa.pem"
    good.write_bytes(make_cert().public_bytes(serialization.Encoding.PEM))
    bad.write_bytes(make_cert(rsa_key=True).public_bytes(serialization.Encoding.PEM))
    api = make_home(custom_properties=[{"name": "acme.C", "type": "certificate", "data-file": str(good)}])
    assert api.prepare_device_configuration("d", "s").config_data
    error = _prepare_error(
        make_home, custom_properties=[{"name": "acme.C", "type": "certificate", "data-file": str(bad)}]
    )
    assert error.message.startswith("Validation error in field: custom-properties[0].")
    assert "P-256" in error.message


def test_fifo_as_server_ca_file_is_360_not_a_hang(make_home: HomeFactory, tmp_path: Path) -> None:
    """A named pipe where the server CA certificate should be fails at once with 360."""
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    error = _prepare_error(make_home, bootstrap_server_ca_certificate_file=str(fifo))
    assert error.code == FcuErrorCode.FILE_LOAD_FAILED and "regular file" in (error.hint or "")


def test_oversize_resource_file_is_360_naming_the_limit(make_home: HomeFactory, tmp_path: Path) -> None:
    """A file fcu.yml names that is larger than a device message (64 KiB) is refused unread."""
    big = tmp_path / "big.crl"
    big.write_bytes(b"x" * (64 * 1024 + 1))
    error = _prepare_error(make_home, bootstrap_server_crl_file=str(big))
    assert error.code == FcuErrorCode.FILE_LOAD_FAILED
    assert "larger than 65,536 bytes" in (error.hint or "")

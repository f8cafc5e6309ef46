"""externally_supplied keys, certificates, entropy: forms and errors 102–104, 240, 245, 390, 360, 380."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.codes import FcuErrorCode
from provkit.crypto import issue
from provkit.crypto.x509 import certificate_pem
from provkit.errors import ConfigError, DeviceKeysError
from provkit.factory import FactoryToolApi
from provkit.wire.bundle import decode_bundle

from .conftest import HomeFactory

ENDPOINT = "ext-0001"


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, issue.create_ca(
        key, {"common-name": "My CA"}, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    )


def write_keys(
    folder: Path,
    *,
    prefix: str = "Bootstrap",
    cn: str = ENDPOINT,
    ou: str | None = None,
    pem: bool = False,
    chain: bool = False,
    eku: bool = True,
    self_signed: bool = False,
    other_key: bool = False,
    years: int = 20,
) -> tuple[bytes, list[bytes]]:
    """Write <prefix>DevicePrivateKey and <prefix>DeviceCert into ``folder``; return the DERs."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca()
    key = ec.generate_private_key(ec.SECP256R1())
    cert_key = ec.generate_private_key(ec.SECP256R1()) if other_key else key
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    subject = x509.Name(attrs)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if self_signed else ca_cert.subject)
        .public_key(cert_key.public_key())
        .serial_number(5)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * years))
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(cert_key if self_signed else ca_key, hashes.SHA256())
    certs = [cert, ca_cert] if chain else [cert]
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    if pem or chain:
        (folder / f"{prefix}DevicePrivateKey.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (folder / f"{prefix}DeviceCert.pem").write_bytes(certificate_pem(certs))
    else:
        (folder / f"{prefix}DevicePrivateKey.der").write_bytes(key_der)
        (folder / f"{prefix}DeviceCert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    return key_der, [c.public_bytes(serialization.Encoding.DER) for c in certs]


@pytest.fixture
def ext_api(make_home: HomeFactory) -> FactoryToolApi:
    """A home in externally_supplied mode, without a factory CA (none is needed)."""
    return make_home(device_key_generation_mode="externally_supplied", setup=False)


def test_supplied_der_keys_are_sent(ext_api: FactoryToolApi, tmp_path: Path) -> None:
    """DER key and certificate from the folder are sent unchanged (the key as SEC1 DER)."""
    key_der, ders = write_keys(tmp_path / "k")
    bundle = decode_bundle(ext_api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "k").config_data)
    assert bundle.keys[0].data == key_der
    assert bundle.certificate_chains[0].certificates == tuple(ders)


def test_supplied_pem_chain_trimmed_to_depth(make_home: HomeFactory, tmp_path: Path) -> None:
    """A PEM chain is converted to DER and cut to device-certificate-chain-depth."""
    _, ders = write_keys(tmp_path / "k", chain=True)
    api = make_home(
        device_key_generation_mode="externally_supplied", setup=False, device_certificate_chain_depth=2
    )
    bundle = decode_bundle(api.prepare_device_configuration(ENDPOINT, "SN", str(tmp_path / "k")).config_data)
    assert bundle.certificate_chains[0].certificates == tuple(ders)
    one = make_home(device_key_generation_mode="externally_supplied", setup=False)
    bundle = decode_bundle(one.prepare_device_configuration(ENDPOINT, "SN", str(tmp_path / "k")).config_data)
    assert bundle.certificate_chains[0].certificates == (ders[0],)


def test_lwm2m_supplied_keys_need_ou_equal_aid(make_home: HomeFactory, tmp_path: Path) -> None:
    """In LwM2M mode the supplied certificate's OU must equal the aid (else 245)."""
    api = make_home(device_key_generation_mode="externally_supplied", setup=False, use_bootstrap=False)
    write_keys(tmp_path / "good", prefix="LwM2M", ou=api.config.account_id)
    api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "good")
    write_keys(tmp_path / "bad", prefix="LwM2M", ou="someone-else")
    with pytest.raises(DeviceKeysError) as info:
        api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "bad")
    assert info.value.code == FcuErrorCode.CERTIFICATE_FILE_LOAD_FAILED
    assert "OU" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("remove", "code"),
    [
        (
            ("BootstrapDevicePrivateKey.der", "BootstrapDeviceCert.der"),
            FcuErrorCode.FAILED_TO_GET_KEY_AND_CERTIFICATE,
        ),
        (("BootstrapDevicePrivateKey.der",), FcuErrorCode.FAILED_TO_GET_PRIVATE_KEY),
        (("BootstrapDeviceCert.der",), FcuErrorCode.FAILED_TO_GET_CERTIFICATE),
    ],
)
def test_missing_files_are_102_103_104(
    ext_api: FactoryToolApi, tmp_path: Path, remove: tuple[str, ...], code: FcuErrorCode
) -> None:
    """Missing key and/or certificate files give 104, 102 or 103 naming the key set."""
    write_keys(tmp_path / "k")
    for name in remove:
        (tmp_path / "k" / name).unlink()
    with pytest.raises(DeviceKeysError) as info:
        ext_api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "k")
    assert info.value.code == code
    assert info.value.message == code.format("Bootstrap")


def test_no_keys_location_is_104(ext_api: FactoryToolApi) -> None:
    """externally_supplied mode without device_keys_location fails with 104 and says to pass it."""
    with pytest.raises(DeviceKeysError) as info:
        ext_api.prepare_device_configuration(ENDPOINT, "SN")
    assert info.value.code == FcuErrorCode.FAILED_TO_GET_KEY_AND_CERTIFICATE
    assert "device_keys_location" in (info.value.hint or "")


def test_bad_key_file_is_240(ext_api: FactoryToolApi, tmp_path: Path) -> None:
    """A key file that is not an EC key fails with 240 naming the file."""
    write_keys(tmp_path / "k")
    path = tmp_path / "k" / "BootstrapDevicePrivateKey.der"
    path.write_bytes(b"garbage")
    with pytest.raises(DeviceKeysError) as info:
        ext_api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "k")
    assert info.value.code == FcuErrorCode.PRIVATE_KEY_FILE_LOAD_FAILED
    assert info.value.message == f"Failed to load private key from file {path}"


def test_not_a_certificate_is_390(ext_api: FactoryToolApi, tmp_path: Path) -> None:
    """A certificate file without a certificate fails with 390."""
    write_keys(tmp_path / "k")
    (tmp_path / "k" / "BootstrapDeviceCert.der").write_bytes(b"\x30\x01\x00")
    with pytest.raises(DeviceKeysError) as info:
        ext_api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "k")
    assert info.value.code == FcuErrorCode.NOT_X509_CERTIFICATE


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"self_signed": True}, "self-signed"),
        ({"eku": False}, "clientAuth"),
        ({"cn": "someone-else"}, "CN"),
        ({"other_key": True}, "does not match"),
    ],
)
def test_certificate_rules_are_245(
    ext_api: FactoryToolApi, tmp_path: Path, options: dict[str, object], fragment: str
) -> None:
    """Certificates breaking an FCU rule fail with 245 and a hint naming the rule."""
    write_keys(tmp_path / "k", **options)  # type: ignore[arg-type]
    with pytest.raises(DeviceKeysError) as info:
        ext_api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "k")
    assert info.value.code == FcuErrorCode.CERTIFICATE_FILE_LOAD_FAILED
    assert fragment in (info.value.hint or "")


@pytest.mark.parametrize(("years", "accepted"), [(3, False), (10, False), (11, True)])
def test_validity_must_exceed_ten_years(
    ext_api: FactoryToolApi, tmp_path: Path, years: int, accepted: bool
) -> None:
    """The FCU rule 'Expiration > 10y': a supplied certificate expiring within 10 years is 245."""
    write_keys(tmp_path / "k", years=years)
    if accepted:
        assert ext_api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "k").config_data
        return
    with pytest.raises(DeviceKeysError) as info:
        ext_api.prepare_device_configuration(ENDPOINT, "SN", tmp_path / "k")
    assert info.value.code == FcuErrorCode.CERTIFICATE_FILE_LOAD_FAILED
    assert "10 years" in (info.value.hint or "")


def test_entropy_file(make_home: HomeFactory, tmp_path: Path) -> None:
    """externally_supplied entropy reads entropy.bin: 48 bytes are sent; missing is 360; wrong size is 380."""
    api = make_home(entropy_generation_mode="externally_supplied")
    folder = tmp_path / "e"
    folder.mkdir()
    with pytest.raises(ConfigError) as info:
        api.prepare_device_configuration("d", "s", folder)
    assert info.value.code == FcuErrorCode.FILE_LOAD_FAILED
    (folder / "entropy.bin").write_bytes(b"x" * 47)
    with pytest.raises(ConfigError) as info:
        api.prepare_device_configuration("d", "s", folder)
    assert info.value.code == FcuErrorCode.VALIDATION_ERROR
    (folder / "entropy.bin").write_bytes(bytes(range(48)))
    bundle = decode_bundle(api.prepare_device_configuration("d", "s", folder).config_data)
    assert bundle.entropy == bytes(range(48))

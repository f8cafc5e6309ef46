"""Bundles from prepare_device_configuration, decoded with the wire decoder and checked field by field."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import zoneinfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.codes import FcuErrorCode
from provkit.crypto.csr import build_csr
from provkit.crypto.keys import generate_p256
from provkit.errors import ConfigError, FactoryError
from provkit.factory import FactoryToolApi
from provkit.factory.builder import dn_text, utc_offset
from provkit.wire.bundle import Bundle, decode_bundle
from provkit.wire.response import BundleResponse, CsrResult, encode_response

from .conftest import CLASS_ID, LWM2M_AID, VENDOR_ID, HomeFactory


def _params(bundle: Bundle) -> dict[str, object]:
    return {param.name: param.data for param in bundle.config_params}


def _leaf(bundle: Bundle, name: str) -> x509.Certificate:
    chain = {item.name: item for item in bundle.certificate_chains}[name]
    return x509.load_der_x509_certificate(chain.certificates[0])


def test_bootstrap_bundle_fields(api: FactoryToolApi) -> None:
    """A by_tool bootstrap bundle carries every mandatory item with the configured values."""
    before = int(time.time())
    request = api.prepare_device_configuration("dev-0001", "SN-0001")
    bundle = decode_bundle(request.config_data)
    params = _params(bundle)
    assert params["mbed.EndpointName"] == "dev-0001"
    assert params["mbed.SerialNumber"] == "SN-0001"
    assert params["mbed.UseBootstrap"] == 1
    assert params["mbed.FirstToClaim"] == 0
    assert params["mbed.BootstrapServerURI"] == api.config.server_uri
    assert params["mbed.Manufacturer"] == "Example Ltd."
    assert params["mbed.ModelNumber"] == "EX-1"
    assert params["mbed.DeviceType"] == "sensor"
    assert params["mbed.HardwareVersion"] == "1.0"
    assert params["mbed.MemoryTotalKB"] == 512
    assert isinstance(params["mbed.CurrentTime"], int) and params["mbed.CurrentTime"] >= before
    assert params["mbed.Timezone"] == "UTC" and params["mbed.UTCOffset"] == "+00:00"
    assert "mbed.LwM2MServerURI" not in params
    assert bundle.verify is True and bundle.entropy is None and bundle.csr_requests == ()
    (key_item,) = bundle.keys
    assert (key_item.name, key_item.type, key_item.format) == (
        "mbed.BootstrapDevicePrivateKey",
        "ECCPrivate",
        "der",
    )
    key = serialization.load_der_private_key(key_item.data, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    server_ca = {item.name: item.data for item in bundle.certificates}["mbed.BootstrapServerCACert"]
    assert server_ca == x509.load_pem_x509_certificate(
        api.config.server_ca_certificate_file.read_bytes()
    ).public_bytes(serialization.Encoding.DER)
    assert request.enrollment_id is None and request.warnings == []


def test_bootstrap_device_certificate_profile(api: FactoryToolApi) -> None:
    """Device certificate: CN = endpoint, EKU clientAuth, CA-signed, CA from < from < now, ≥ 10 years."""
    bundle = decode_bundle(api.prepare_device_configuration("dev-0002", "SN").config_data)
    cert = _leaf(bundle, "mbed.BootstrapDeviceCert")
    ca = x509.load_pem_x509_certificate(api.paths.ca_cert.read_bytes())
    key = serialization.load_der_private_key(bundle.keys[0].data, None)
    assert cert.public_key() == key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev-0002"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example Ltd."
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    now = dt.datetime.now(dt.UTC)
    assert ca.not_valid_before_utc < cert.not_valid_before_utc < now
    assert cert.not_valid_after_utc - now > dt.timedelta(days=3650)


def test_lwm2m_bundle_uses_aid_as_ou_and_35_years(make_home: HomeFactory) -> None:
    """LwM2M mode sends LwM2M names, no FirstToClaim, and a 35-year certificate with OU = aid."""
    api = make_home(use_bootstrap=False)
    bundle = decode_bundle(api.prepare_device_configuration("lw-1", "SN").config_data)
    params = _params(bundle)
    assert params["mbed.UseBootstrap"] == 0 and "mbed.FirstToClaim" not in params
    assert params["mbed.LwM2MServerURI"] == api.config.server_uri
    assert {item.name for item in bundle.certificates} == {"mbed.LwM2MServerCACert"}
    assert bundle.keys[0].name == "mbed.LwM2MDevicePrivateKey"
    cert = _leaf(bundle, "mbed.LwM2MDeviceCert")
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == LWM2M_AID
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(days=35 * 365)


def test_chain_depth_two_appends_ca(make_home: HomeFactory) -> None:
    """device-certificate-chain-depth 2 sends the device certificate followed by the factory CA."""
    api = make_home(device_certificate_chain_depth=2)
    bundle = decode_bundle(api.prepare_device_configuration("dev", "SN").config_data)
    chain = bundle.certificate_chains[0].certificates
    ca_der = x509.load_pem_x509_certificate(api.paths.ca_cert.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    assert len(chain) == 2 and chain[1] == ca_der


def test_chain_depth_beyond_ca_chain_is_380(make_home: HomeFactory) -> None:
    """A chain depth the self-signed CA cannot fill fails with 380 naming the field."""
    api = make_home(device_certificate_chain_depth=3)
    with pytest.raises(ConfigError) as info:
        api.prepare_device_configuration("dev", "SN")
    assert info.value.message.startswith("Validation error in field: device-certificate-chain-depth.")


def test_first_to_claim_uri_and_enrollment_id(make_home: HomeFactory) -> None:
    """First-to-claim sends FirstToClaim 1, the aid-less URI, and returns A- + the cert fingerprint."""
    api = make_home(first_to_claim=True)
    request = api.prepare_device_configuration("ftc-1", "SN")
    bundle = decode_bundle(request.config_data)
    params = _params(bundle)
    assert params["mbed.FirstToClaim"] == 1
    assert params["mbed.BootstrapServerURI"] == "coaps://bootstrap.example.com:5684"
    leaf_der = bundle.certificate_chains[0].certificates[0]
    digest = hashlib.sha256(leaf_der).hexdigest().upper()
    assert request.enrollment_id == "A-" + ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert len(request.enrollment_id) == 97


def test_time_sync_off_sends_no_time(make_home: HomeFactory) -> None:
    """time-sync false leaves CurrentTime, Timezone and UTCOffset out."""
    api = make_home(time_sync=False)
    params = _params(decode_bundle(api.prepare_device_configuration("d", "s").config_data))
    assert not {"mbed.CurrentTime", "mbed.Timezone", "mbed.UTCOffset"} & set(params)


def test_timezone_offset_of_configured_zone(make_home: HomeFactory) -> None:
    """The UTCOffset is the ISO-8601 offset of the configured IANA zone at the current time."""
    api = make_home(
        device_info={
            "manufacturer-name": "M",
            "device-type": "T",
            "model-number": "N",
            "hardware-version": "1",
            "memory-total": 1,
            "timezone": "Asia/Kolkata",
        }
    )
    params = _params(decode_bundle(api.prepare_device_configuration("d", "s").config_data))
    assert params["mbed.Timezone"] == "Asia/Kolkata" and params["mbed.UTCOffset"] == "+05:30"


def test_utc_offset_formatting() -> None:
    """utc_offset renders negative and DST offsets as ±HH:MM."""
    winter = dt.datetime(2024, 1, 15, 12, tzinfo=dt.UTC)
    summer = dt.datetime(2024, 7, 15, 12, tzinfo=dt.UTC)
    assert utc_offset(zoneinfo.ZoneInfo("America/St_Johns"), winter) == "-03:30"
    assert utc_offset(zoneinfo.ZoneInfo("Europe/Paris"), summer) == "+02:00"
    assert utc_offset(zoneinfo.ZoneInfo("UTC"), summer) == "+00:00"


def test_entropy_by_tool_is_48_random_bytes(make_home: HomeFactory) -> None:
    """entropy-generation-mode by_tool sends 48 bytes, different per device."""
    api = make_home(entropy_generation_mode="by_tool")
    first = decode_bundle(api.prepare_device_configuration("a", "1").config_data).entropy
    second = decode_bundle(api.prepare_device_configuration("b", "2").config_data).entropy
    assert first is not None and second is not None and len(first) == 48 and first != second


def test_update_auth_vendor_and_class_ids(make_home: HomeFactory) -> None:
    """The update authority certificate and the vendor/class UUIDs (16 bytes) are sent."""
    from .test_resources import write_update_cert

    probe = make_home(setup=False)
    path = write_update_cert(probe.paths.resources / "update.der")
    api = make_home(update_auth_certificate_file=str(path), vendor_id=VENDOR_ID, class_id=CLASS_ID)
    bundle = decode_bundle(api.prepare_device_configuration("d", "s").config_data)
    params = _params(bundle)
    assert params["mbed.VendorId"] == bytes.fromhex(VENDOR_ID.replace("-", ""))
    assert params["mbed.ClassId"] == bytes.fromhex(CLASS_ID.replace("-", ""))
    assert {item.name: item.data for item in bundle.certificates}["mbed.UpdateAuthCert"] == path.read_bytes()


def test_custom_properties_in_bundle(make_home: HomeFactory) -> None:
    """Custom config values, keys and certificates land in the right groups under their names."""
    probe = make_home(setup=False)
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pub_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    server_ca = probe.paths.resources / "bootstrap_server_ca_cert.pem"
    api = make_home(
        custom_properties=[
            {"name": "acme.Colour", "type": "config", "data": "blue"},
            {"name": "acme.Count", "type": "config", "data": 7},
            {"name": "acme.Key", "type": "private-key", "data": key_pem},
            {"name": "acme.Pub", "type": "public-key", "data": pub_pem},
            {"name": "acme.Cert", "type": "certificate", "data-file": str(server_ca)},
        ]
    )
    bundle = decode_bundle(api.prepare_device_configuration("d", "s").config_data)
    params = _params(bundle)
    assert params["acme.Colour"] == "blue" and params["acme.Count"] == 7
    keys = {item.name: item for item in bundle.keys}
    assert keys["acme.Key"].type == "ECCPrivate"
    assert serialization.load_der_private_key(keys["acme.Key"].data, None).public_key() == key.public_key()
    assert keys["acme.Pub"].type == "ECCPublic"
    assert "acme.Cert" in {item.name for item in bundle.certificates}


@pytest.mark.parametrize(
    ("endpoint", "serial", "label"), [("", "SN", "endpoint name"), ("ep", "", "serial number")]
)
def test_missing_identity_is_101(api: FactoryToolApi, endpoint: str, serial: str, label: str) -> None:
    """An empty endpoint name or serial number fails with 101 naming it."""
    with pytest.raises(FactoryError) as info:
        api.prepare_device_configuration(endpoint, serial)
    assert info.value.code == FcuErrorCode.DEVICE_PARAMETER_MANDATORY
    assert info.value.message == f"Device {label} is mandatory"


@pytest.mark.parametrize("endpoint", ["ev\x01il", "tab\there", "nl\n"])
def test_non_printable_identity_is_refused(api: FactoryToolApi, endpoint: str) -> None:
    """A control character in the endpoint name or serial number is refused (100), not sent."""
    for args in ((endpoint, "SN1"), ("dev-1", endpoint)):
        with pytest.raises(FactoryError) as info:
            api.prepare_device_configuration(*args)
        assert info.value.code == FcuErrorCode.GENERAL and "non-printable" in info.value.message


def test_bundle_over_the_device_message_limit_is_refused_at_prepare(make_home: HomeFactory) -> None:
    """A configuration whose bundle exceeds 64 KiB is refused before any device, naming the largest item."""
    api = make_home(custom_properties=[{"name": "acme.Blob", "type": "config", "data": "x" * 70_000}])
    with pytest.raises(FactoryError) as info:
        api.prepare_device_configuration("dev-1", "SN1")
    assert info.value.code == FcuErrorCode.GENERAL
    assert "at most 65,536 bytes" in info.value.message
    assert (info.value.hint or "").startswith("largest items: acme.Blob (70,000 bytes)")


def test_bundle_just_under_the_limit_is_prepared(make_home: HomeFactory) -> None:
    """The limit is on the encoded bundle: a 60,000-byte value still fits."""
    api = make_home(custom_properties=[{"name": "acme.Blob", "type": "config", "data": "x" * 60_000}])
    data = api.prepare_device_configuration("dev-1", "SN1").config_data
    assert 60_000 < len(data) <= 64 * 1024


def test_prepare_without_setup_is_210(make_home: HomeFactory) -> None:
    """Preparing a by_tool bundle before setup fails with 210 and a hint to run setup."""
    api = make_home(setup=False)
    with pytest.raises(FactoryError) as info:
        api.prepare_device_configuration("d", "s")
    assert info.value.code == FcuErrorCode.CA_CERT_NOT_FOUND
    assert "setup" in (info.value.hint or "")


def test_by_device_first_message(make_home: HomeFactory) -> None:
    """by_device mode first sends only CsrReqs with SID, KpAlvSess 1 and Verify 0."""
    api = make_home(device_key_generation_mode="by_device")
    request = api.prepare_device_configuration("bd-1", "SN")
    bundle = decode_bundle(request.config_data)
    assert request.needs_csr_response and request.pending_csr is not None
    assert bundle.sid == request.pending_csr.session_id
    assert bundle.keep_alive is True and bundle.verify is False
    (csr,) = bundle.csr_requests
    assert csr.prkn == "mbed.BootstrapDevicePrivateKey" and csr.md == 1
    assert csr.subject.endswith(",CN=bd-1") and "O=Example Ltd." in csr.subject
    assert bundle.config_params == () and bundle.keys == ()


def _device_answer(request_sid: str, csr_der: bytes) -> bytes:
    csrs = (CsrResult("mbed.BootstrapDevicePrivateKey", csr_der),)
    return encode_response(BundleResponse(0, "The Factory process succeeded", sid=request_sid, csrs=csrs))


def test_by_device_accepts_mbedtls_csr_with_null_parameter(make_home: HomeFactory) -> None:
    """A CSR as Mbed TLS 2.28.2 writes it (NULL after ecdsa-with-SHA256) is signed, not refused with 230."""
    api = make_home(device_key_generation_mode="by_device")
    request = api.prepare_device_configuration("bd-1", "SN")
    assert request.pending_csr is not None
    key = generate_p256()
    der = build_csr(key, "CN=bd-1", key_usage=1)
    assert bytes.fromhex("300c06082a8648ce3d0403020500") in der
    second = api.complete_device_configuration(request, _device_answer(request.pending_csr.session_id, der))
    leaf = _leaf(decode_bundle(second.config_data), "mbed.BootstrapDeviceCert")
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    tampered = bytearray(der)
    tampered[der.index(b"bd-1")] ^= 0x01
    answer = _device_answer(request.pending_csr.session_id, bytes(tampered))
    with pytest.raises(FactoryError) as failure:
        api.complete_device_configuration(request, answer)
    assert failure.value.code == FcuErrorCode.CSR_SIGNATURE_INVALID


def test_dn_text_escapes_commas() -> None:
    """Subject values with commas are escaped for the mbedTLS DN string."""
    assert dn_text({"organization-name": "A, B", "common-name": "x"}) == "O=A\\, B,CN=x"


def test_threads_share_one_api(api: FactoryToolApi) -> None:
    """Many threads preparing with one FactoryToolApi get distinct, correct bundles."""
    from concurrent.futures import ThreadPoolExecutor

    def prepare(i: int) -> tuple[str, bytes]:
        bundle = decode_bundle(api.prepare_device_configuration(f"t-{i}", f"SN-{i}").config_data)
        return str(_params(bundle)["mbed.EndpointName"]), bundle.keys[0].data

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(prepare, range(24)))
    assert [name for name, _ in results] == [f"t-{i}" for i in range(24)]
    assert len({key for _, key in results}) == 24


def test_api_pickles_for_process_pools(api: FactoryToolApi) -> None:
    """A FactoryToolApi survives pickling (for process pools) and prepares bundles afterwards."""
    import pickle

    clone = pickle.loads(pickle.dumps(api))
    assert clone.paths == api.paths
    assert decode_bundle(clone.prepare_device_configuration("p", "s").config_data).keys


def test_unusable_endpoint_name_is_270(api: FactoryToolApi) -> None:
    """An endpoint name that cannot be a certificate CN (over 64 characters) fails with 270."""
    with pytest.raises(FactoryError) as info:
        api.prepare_device_configuration("e" * 65, "SN")
    assert info.value.code == FcuErrorCode.DTLS_CERTIFICATE_CREATE_FAILED
    assert info.value.message == "Failed to create certificate for Bootstrap"


def test_fcu_1_2_firmware_integrity_keys_load_and_are_not_sent(make_home: HomeFactory) -> None:
    """An FCU 1.2 fcu.yml with firmware-integrity-* files loads; prepare warns and sends none of them."""
    api = make_home(
        firmware_integrity_ca_certificate_file="<%= ENV['FCU_RESOURCES_DIR'] %>/firmware-integrity-ca.crt",
        firmware_integrity_certificate_file="../resources/firmware-integrity-certificate.crt",
        firmware_integrity_crl_file="",
    )
    request = api.prepare_device_configuration("fw-1", "SN")
    bundle = decode_bundle(request.config_data)
    names = {
        *_params(bundle),
        *(c.name for c in bundle.certificates),
        *(c.name for c in bundle.certificate_chains),
    }
    assert not any("FirmwareIntegrity" in name for name in names)
    noted = sorted(w.message.split(":")[0] for w in request.warnings)
    assert noted == ["firmware-integrity-ca-certificate-file", "firmware-integrity-certificate-file"]
    assert all(w.code == FcuErrorCode.VALIDATION_ERROR for w in request.warnings)


def test_firmware_integrity_key_must_name_a_file(make_home: HomeFactory) -> None:
    """An obsolete key is still validated: a value that is not a file name is 380 naming it."""
    with pytest.raises(ConfigError) as info:
        _ = make_home(setup=False, firmware_integrity_certificate_file=[1, 2]).config
    assert info.value.message.startswith("Validation error in field: firmware-integrity-certificate-file.")


def test_factory_fcc_disable_is_sent_only_when_true(api: FactoryToolApi) -> None:
    """factory_fcc_disable=True adds Disable 1; by default the item is absent (present only when true)."""
    assert decode_bundle(api.prepare_device_configuration("d", "s").config_data).disable is None
    request = api.prepare_device_configuration("d", "s", factory_fcc_disable=True)
    assert decode_bundle(request.config_data).disable is True

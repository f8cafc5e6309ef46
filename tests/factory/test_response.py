"""verify_device_response and the by_device second message: statuses, warnings, errors 110, 180, 230."""

from __future__ import annotations

import datetime as dt

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provkit.codes import FcuErrorCode
from provkit.crypto.csr import build_csr
from provkit.errors import DeviceResponseError, FactoryError, ResponseDecodeError
from provkit.factory import FactoryToolApi
from provkit.wire.bundle import decode_bundle
from provkit.wire.response import BundleResponse, CsrResult, encode_response

from .conftest import HomeFactory


def test_success_response_with_warnings(api: FactoryToolApi) -> None:
    """A success response gives status 0, the message without newline, and each warning."""
    data = encode_response(
        BundleResponse(
            0,
            "The Factory process succeeded\n",
            "Item not set:mbed.UpdateAuthCert\nItem not set:mbed.ClassId\n",
        )
    )
    status = api.verify_device_response("dev", data)
    assert status.ok and status.status == 0 and status.errors == []
    assert status.message == "The Factory process succeeded"
    assert [w.message for w in status.warnings] == [
        "Item not set:mbed.UpdateAuthCert",
        "Item not set:mbed.ClassId",
    ]


def test_failure_response_becomes_error_info(api: FactoryToolApi) -> None:
    """A failing ReturnStatus is reported with one ErrorInfo carrying the status and InfoMessage."""
    status = api.verify_device_response(
        "dev", encode_response(BundleResponse(25, "Item does not exist:mbed.EndpointName"))
    )
    assert not status.ok and status.status == 25
    assert [(e.code, e.message) for e in status.errors] == [(25, "Item does not exist:mbed.EndpointName")]


def test_missing_field_is_180(api: FactoryToolApi) -> None:
    """A response without ReturnStatus fails with 180 naming the field."""
    data = cbor2.dumps({"SchemeVersion": "0.0.1", "InfoMessage": "x"})
    with pytest.raises(ResponseDecodeError) as info:
        api.verify_device_response("dev", data)
    assert info.value.code == FcuErrorCode.RESPONSE_FIELD_MISSING
    assert "ReturnStatus" in info.value.message


def test_empty_response_is_180(api: FactoryToolApi) -> None:
    """An empty device response fails with 180."""
    with pytest.raises(FactoryError) as info:
        api.verify_device_response("dev", b"")
    assert info.value.code == FcuErrorCode.RESPONSE_FIELD_MISSING


def test_text_response_is_100(api: FactoryToolApi) -> None:
    """A response given as text instead of bytes fails with 100 saying so, not a TypeError."""
    with pytest.raises(FactoryError) as info:
        api.verify_device_response(
            "dev",
            "bf6c52657475726e537461747573",
        )  # type: ignore[arg-type]
    assert info.value.code == FcuErrorCode.GENERAL and "must be bytes" in info.value.message


def test_protocol_mismatch_is_110(api: FactoryToolApi) -> None:
    """A response with another scheme version fails with 110 naming both versions."""
    data = cbor2.dumps({"SchemeVersion": "0.0.2", "ReturnStatus": 0, "InfoMessage": "ok"})
    with pytest.raises(FactoryError) as info:
        api.verify_device_response("dev", data)
    assert info.value.code == FcuErrorCode.PROTOCOL_VERSION_MISMATCH
    assert info.value.message == "Device protocol 0.0.2 does not match tool protocol 0.0.1"


def test_old_definite_map_with_nul_is_accepted(api: FactoryToolApi) -> None:
    """An R1.3-style definite map with a NUL-terminated byte-string scheme version is read."""
    data = cbor2.dumps(
        {"ReturnStatus": 0, "SchemeVersion": b"0.0.1\x00", "InfoMessage": b"The Factory process succeeded\n"}
    )
    assert api.verify_device_response("dev", data).ok


# ---------------------------------------------------------------- by_device


def _csr_response(
    request_data: bytes, *, subject: str | None = None, key_name: str | None = None
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    bundle = decode_bundle(request_data)
    (req,) = bundle.csr_requests
    key = ec.generate_private_key(ec.SECP256R1())
    csr = build_csr(key, subject or req.subject, req.key_usage, req.ext_key_usage)
    response = BundleResponse(
        0, "The Factory process succeeded\n", sid=bundle.sid, csrs=(CsrResult(key_name or req.prkn, csr),)
    )
    return encode_response(response), key


@pytest.fixture
def by_device(make_home: HomeFactory) -> FactoryToolApi:
    """A home in by_device mode with chain depth 2."""
    return make_home(device_key_generation_mode="by_device", device_certificate_chain_depth=2)


def test_second_message_signs_csr(by_device: FactoryToolApi) -> None:
    """The second message has the signed certificate with PrKN, the configuration, SID, KpAlvSess 0."""
    first = by_device.prepare_device_configuration("bd-7", "SN7")
    response, key = _csr_response(first.config_data)
    second = by_device.complete_device_configuration(first, response)
    bundle = decode_bundle(second.config_data)
    assert second.pending_csr is None
    assert bundle.sid == decode_bundle(first.config_data).sid
    assert bundle.keep_alive is False and bundle.verify is True and bundle.keys == ()
    (chain,) = bundle.certificate_chains
    assert chain.name == "mbed.BootstrapDeviceCert" and chain.prkn == "mbed.BootstrapDevicePrivateKey"
    leaf = x509.load_der_x509_certificate(chain.certificates[0])
    assert leaf.public_key() == key.public_key() and len(chain.certificates) == 2
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "bd-7"
    assert leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=3650)
    assert {p.name: p.data for p in bundle.config_params}["mbed.EndpointName"] == "bd-7"


def test_csr_for_other_endpoint_is_230(by_device: FactoryToolApi) -> None:
    """A CSR whose subject CN is not the endpoint name fails with 230."""
    first = by_device.prepare_device_configuration("bd-8", "SN")
    response, _ = _csr_response(first.config_data, subject="CN=intruder")
    with pytest.raises(FactoryError) as info:
        by_device.complete_device_configuration(first, response)
    assert info.value.code == FcuErrorCode.CSR_SIGNATURE_INVALID
    assert info.value.message == "Invalid signature for certificate signing request"


def test_csr_with_bad_signature_is_230(by_device: FactoryToolApi) -> None:
    """A CSR whose signature does not verify fails with 230."""
    first = by_device.prepare_device_configuration("bd-9", "SN")
    bundle = decode_bundle(first.config_data)
    csr = bytearray(build_csr(ec.generate_private_key(ec.SECP256R1()), "CN=bd-9"))
    csr[-5] ^= 0x55  # inside the signature
    response = encode_response(
        BundleResponse(0, "ok\n", sid=bundle.sid, csrs=(CsrResult(bundle.csr_requests[0].prkn, bytes(csr)),))
    )
    with pytest.raises(FactoryError) as info:
        by_device.complete_device_configuration(first, response)
    assert info.value.code == FcuErrorCode.CSR_SIGNATURE_INVALID


def test_missing_csr_is_180(by_device: FactoryToolApi) -> None:
    """A response without a CSR for the requested key fails with 180."""
    first = by_device.prepare_device_configuration("bd-10", "SN")
    response, _ = _csr_response(first.config_data, key_name="other.Key")
    with pytest.raises(FactoryError) as info:
        by_device.complete_device_configuration(first, response)
    assert info.value.code == FcuErrorCode.RESPONSE_FIELD_MISSING


def test_device_failure_on_csr_message(by_device: FactoryToolApi) -> None:
    """A device that fails the CSR message raises DeviceResponseError with its status."""
    first = by_device.prepare_device_configuration("bd-11", "SN")
    sid = decode_bundle(first.config_data).sid
    response = encode_response(
        BundleResponse(
            17, "Desired generated key name already exists:mbed.BootstrapDevicePrivateKey", sid=sid
        )
    )
    with pytest.raises(DeviceResponseError) as info:
        by_device.complete_device_configuration(first, response)
    assert info.value.code == 17

"""The trusted bootstrap CA identifier (PAL secure time): stored at session end, checked by verify."""

from __future__ import annotations

from typing import Any

from provkit.crypto.x509 import certificate_der, load_certificate
from provkit.device.clock import DeviceClock
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import MemoryStorage
from provkit.device.trust_ca import CA_ID_SIZE, TIME_SERVER_ID, ca_identifier
from provkit.wire.response import decode_response

CA_WARNING = "CA identifier wasn't set properly:mbed.BootstrapServerCACert"


def _fcc(*, secure_time: bool = True) -> FactoryConfiguratorClient:
    kcm = Kcm(MemoryStorage())
    return FactoryConfiguratorClient(kcm, clock=DeviceClock(kcm), secure_time=secure_time)


def _warnings(fcc: FactoryConfiguratorClient, bundle: dict[str, Any], builder: Any) -> list[str]:
    result = fcc.bundle_handler(builder.encode(bundle))
    assert result.response is not None
    response = decode_response(result.response)
    assert response.return_status == 0, response.info_message
    return response.warnings


CLOSING_BUNDLE: dict[str, Any] = {"SchemeVersion": "0.0.1"}
"""Ends the session and verifies what is stored (items cannot be stored twice)."""


def _with_server_ca(bundle: dict[str, Any], der: bytes) -> dict[str, Any]:
    for item in bundle["Certificates"]:
        if item["Name"] == "mbed.BootstrapServerCACert":
            item["Data"] = der
    return bundle


def test_identifier_is_the_compressed_public_key(pki: Any) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = load_certificate(pki.server_ca)
    expected = cert.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    identifier = ca_identifier(pki.server_ca, Kcm(MemoryStorage()))
    assert identifier == expected
    assert identifier is not None and len(identifier) == CA_ID_SIZE


def test_session_end_stores_the_bootstrap_ca_identifier(builder: Any) -> None:
    fcc = _fcc()
    assert _warnings(fcc, builder.valid(), builder) == []
    assert fcc.kcm.rbp_get(TIME_SERVER_ID) == ca_identifier(builder.pki.server_ca, fcc.kcm)
    assert fcc.verify_device_configured().warnings == ()


def test_keep_alive_bundle_warns_then_the_closing_bundle_sets_it(builder: Any) -> None:
    fcc = _fcc()
    first = builder.valid()
    first["KpAlvSess"] = 1
    assert _warnings(fcc, first, builder) == [CA_WARNING]
    assert fcc.kcm.rbp_get(TIME_SERVER_ID) is None
    assert _warnings(fcc, CLOSING_BUNDLE, builder) == []


def test_a_new_bootstrap_ca_without_storage_delete_keeps_the_old_identifier(builder: Any, pki: Any) -> None:
    fcc = _fcc()
    assert _warnings(fcc, builder.valid(), builder) == []
    other_ca = certificate_der(pki.self_signed("another server CA", ca=True, years=30))
    fcc.kcm.item_delete("mbed.BootstrapServerCACert", ItemType.CERTIFICATE)
    replace_ca = {
        "SchemeVersion": "0.0.1",
        "Certificates": [{"Name": "mbed.BootstrapServerCACert", "Format": "der", "Data": other_ca}],
    }
    assert _warnings(fcc, replace_ca, builder) == [CA_WARNING]
    assert fcc.verify_device_configured().warnings == (CA_WARNING,)
    fcc.storage_delete()  # a fresh factory run trusts the new CA
    assert _warnings(fcc, _with_server_ca(builder.valid(), other_ca), builder) == []


def test_lwm2m_mode_never_checks_the_identifier(builder: Any) -> None:
    fcc = _fcc()
    bundle = builder.valid("lwm2m")
    bundle["KpAlvSess"] = 1
    assert CA_WARNING not in _warnings(fcc, bundle, builder)


def test_without_secure_time_nothing_is_stored_or_checked(builder: Any) -> None:
    fcc = _fcc(secure_time=False)
    bundle = builder.valid()
    bundle["KpAlvSess"] = 1
    assert _warnings(fcc, bundle, builder) == []
    assert _warnings(fcc, CLOSING_BUNDLE, builder) == []
    assert fcc.kcm.rbp_get(TIME_SERVER_ID) is None

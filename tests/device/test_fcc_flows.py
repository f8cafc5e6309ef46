"""End-to-end FCC flows: CSR sessions, Disable, clock, all-or-nothing, integer storage."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from provkit.codes import FccStatus
from provkit.crypto.csr import load_and_verify_csr
from provkit.crypto.x509 import certificate_der
from provkit.device.clock import DeviceClock
from provkit.device.fcc import (
    FactoryConfiguratorClient,
    fcc_bundle_handler,
    fcc_finalize,
    fcc_init,
    fcc_storage_delete,
    fcc_verify_device_configured_4mbed_cloud,
)
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import MemoryStorage, SqliteStorage
from provkit.wire.response import decode_response


def _dump(path: Path) -> list[tuple[str, str, bytes]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT ns, name, data FROM kcm_items ORDER BY ns, name").fetchall()


def test_csr_two_bundle_flow(builder: Any, any_fcc: FactoryConfiguratorClient) -> None:
    """Bundle 1 asks for a CSR; bundle 2 brings the signed certificate with PrKN and verifies."""
    first = {
        "SchemeVersion": "0.0.1",
        "SID": "session-7",
        "KpAlvSess": 1,
        "Verify": 0,
        "CsrReqs": [
            {
                "PrKN": "mbed.BootstrapDevicePrivateKey",
                "Subj": "C=GB,O=Acme\\, Ltd,CN=EP_fdsf",
                "MD": 1,
                "Ext": {"KU": 1, "EKU": 4},
                "SM": {"Prv": "Device", "Pub": "Device"},
            }
        ],
    }
    result = any_fcc.bundle_handler(builder.encode(first))
    assert result.status == FccStatus.SUCCESS and not result.session_finished
    assert result.response is not None
    response = decode_response(result.response)
    assert response.sid == "session-7" and len(response.csrs) == 1
    assert response.csrs[0].prkn == "mbed.BootstrapDevicePrivateKey"
    # As Mbed TLS 2.28.2 on a real device: NULL after ecdsa-with-SHA256, KeyUsage not critical.
    assert bytes.fromhex("300c06082a8648ce3d0403020500") in response.csrs[0].data
    csr = load_and_verify_csr(response.csrs[0].data)
    assert not csr.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert csr.subject.rfc4514_string() == "CN=EP_fdsf,O=Acme\\, Ltd,C=GB"
    assert csr.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert any_fcc.kcm.item_exists("mbed.BootstrapDevicePrivateKey", ItemType.PUBLIC_KEY)

    pki = builder.pki
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(pki.ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.now - dt.timedelta(days=1))
        .not_valid_after(pki.now + dt.timedelta(days=20 * 365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(pki.ca_key, hashes.SHA256())
    )
    second = builder.valid()
    second.pop("Keys")
    second["CertificateChains"][0]["DataArray"][0] = certificate_der(cert)
    second["CertificateChains"][0]["PrKN"] = "mbed.BootstrapDevicePrivateKey"
    second["SID"] = "session-7"
    second["KpAlvSess"] = 0
    result = any_fcc.bundle_handler(builder.encode(second))
    assert result.response is not None
    response = decode_response(result.response)
    assert (response.return_status, response.warning_info) == (0, "")
    assert result.session_finished


def test_csr_key_exists_and_prkn_mismatch(builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """A generated key name that exists answers 17; a certificate not matching PrKN answers 34."""
    request = {
        "SchemeVersion": "0.0.1",
        "SID": "s",
        "Verify": 0,
        "KpAlvSess": 1,
        "CsrReqs": [{"PrKN": "gen.key", "Subj": "CN=EP_fdsf", "MD": 1}],
    }
    assert memory_fcc.bundle_handler(builder.encode(request)).status == 0
    result = memory_fcc.bundle_handler(builder.encode(request))
    assert result.response is not None
    response = decode_response(result.response)
    assert (response.return_status, response.info_message) == (
        17,
        "Desired generated key name already exists:",  # FCC stores CSR errors without a name
    )
    assert response.csrs == ()
    _, cert = builder.pki.device()
    bundle = {
        "SchemeVersion": "0.0.1",
        "Verify": 0,
        "Certificates": [{"Name": "gen.cert", "Format": "der", "Data": cert, "PrKN": "gen.key"}],
    }
    result = memory_fcc.bundle_handler(builder.encode(bundle))
    assert result.response is not None
    response = decode_response(result.response)
    assert (response.return_status, response.info_message) == (
        34,
        "Self-generated certificate validation failed:gen.cert",
    )
    bundle["Certificates"][0]["PrKN"] = "no.such.key"
    result = memory_fcc.bundle_handler(builder.encode(bundle))
    assert result.response is not None
    # A missing PrKN key is status 34; the text names the key with KCM's not-found prefix.
    assert decode_response(result.response).info_message == "Item does not exist:no.such.key"
    assert result.status == 34


def test_disable_then_no_response(builder: Any, any_fcc: FactoryConfiguratorClient) -> None:
    """After a bundle with Disable=1 the factory is disabled and later bundles get no response."""
    bundle = builder.valid()
    bundle["Disable"] = 1
    assert any_fcc.bundle_handler(builder.encode(bundle)).status == FccStatus.SUCCESS
    assert any_fcc.is_factory_disabled()
    before = any_fcc.kcm.list_items()
    result = any_fcc.bundle_handler(builder.encode({"SchemeVersion": "0.0.1", "Verify": 0}))
    assert (result.status, result.response) == (FccStatus.FACTORY_DISABLED_ERROR, None)
    assert any_fcc.kcm.list_items() == before


def test_entropy_and_rot_set_once(builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """Entropy and ROT are accepted once; a second attempt answers 8 / 7 naming the item."""
    bundle = {
        "SchemeVersion": "0.0.1",
        "Verify": 0,
        "KpAlvSess": 1,
        "Entropy": bytes(48),
        "ROT": bytes(range(16)),
    }
    assert memory_fcc.bundle_handler(builder.encode(bundle)).status == 0
    assert memory_fcc.kcm.rbp_get("rot") == bytes(range(16))
    result = memory_fcc.bundle_handler(builder.encode(bundle))
    assert result.response is not None
    assert decode_response(result.response).info_message == "Entropy error:entropy"
    bundle.pop("Entropy")
    result = memory_fcc.bundle_handler(builder.encode(bundle))
    assert result.response is not None
    assert (result.status, decode_response(result.response).info_message) == (7, "Root of trust error:rot")


def test_current_time_sets_persisted_clock(builder: Any, tmp_path: Path) -> None:
    """CurrentTime sets the device clock as an offset that survives reopening the storage."""
    host = [1_000_000.0]
    backend = SqliteStorage(tmp_path / "d.sqlite")
    kcm = Kcm(backend)
    fcc = FactoryConfiguratorClient(kcm, clock=DeviceClock(kcm, time_source=lambda: host[0]))
    assert fcc.clock.now() == 0
    bundle = {
        "SchemeVersion": "0.0.1",
        "Verify": 0,
        "KpAlvSess": 1,
        "ConfigParams": [{"Name": "mbed.CurrentTime", "Data": 1_700_000_000}],
    }
    assert fcc.bundle_handler(builder.encode(bundle)).status == 0
    assert not kcm.item_exists("mbed.CurrentTime", ItemType.CONFIG)
    host[0] += 50
    assert fcc.clock.now() == 1_700_000_050
    backend.close()
    reopened = Kcm(SqliteStorage(tmp_path / "d.sqlite"))
    assert DeviceClock(reopened, time_source=lambda: host[0]).now() == 1_700_000_050
    reopened.backend.close()


def test_integer_storage_widths(builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """Integers are 8-byte little-endian, except 4 bytes for UseBootstrap/MemoryTotalKB/FirstToClaim."""
    params = [
        {"Name": "mbed.MemoryTotalKB", "Data": 102400},
        {"Name": "mbed.FirstToClaim", "Data": 1},
        {"Name": "custom.int", "Data": 258},
        {"Name": "custom.neg", "Data": -2},
        {"Name": "custom.big", "Data": cbor2_bignum()},
        {"Name": "custom.small-bignum", "Data": cbor2.CBORTag(2, b"\x00\x01\x00")},
    ]
    bundle = {"SchemeVersion": "0.0.1", "Verify": 0, "KpAlvSess": 1, "ConfigParams": params}
    assert memory_fcc.bundle_handler(builder.encode(bundle)).status == 0
    get = memory_fcc.kcm.item_get
    assert get("mbed.MemoryTotalKB", ItemType.CONFIG) == (102400).to_bytes(4, "little")
    assert get("mbed.FirstToClaim", ItemType.CONFIG) == b"\x01\x00\x00\x00"
    assert get("custom.int", ItemType.CONFIG) == (258).to_bytes(8, "little")
    assert get("custom.neg", ItemType.CONFIG) == b"\xfe" + b"\xff" * 7
    assert get("custom.big", ItemType.CONFIG) == bytes.fromhex("A65369B6589987655264")
    # A tag 2 bignum keeps the bytes it was sent with, even below 2**64 and with leading zeros.
    assert get("custom.small-bignum", ItemType.CONFIG) == b"\x00\x01\x00"


def cbor2_bignum() -> int:
    return 0xA65369B6589987655264


def test_failed_last_item_keeps_what_came_before_in_sqlite(builder: Any, tmp_path: Path) -> None:
    """By default, as FCC, a bundle failing on its last item has stored everything before it, durably."""
    path = tmp_path / "d.sqlite"
    fcc = fcc_init(path)
    bundle = builder.valid()
    bundle["Entropy"] = bytes(48)
    bad_chain = {"Name": "bad name!", "DataArray": [builder.pki.ca_der]}
    bundle["CertificateChains"].append(bad_chain)  # the last item of the last group
    assert fcc.bundle_handler(builder.encode(bundle)).status == FccStatus.KCM_ERROR
    assert fcc_finalize(fcc) == FccStatus.SUCCESS
    reopened = fcc_init(path)
    names = {item.name for item in reopened.kcm.list_items()}
    assert {"mbed.EndpointName", "mbed.BootstrapDevicePrivateKey", "mbed.BootstrapDeviceCert"} <= names
    assert "bad name!" not in names and reopened.kcm.rbp_get("entropy") == bytes(48)
    retry = reopened.bundle_handler(builder.encode(builder.valid()))
    assert retry.status == FccStatus.KCM_FILE_EXIST_ERROR
    fcc_finalize(reopened)


def test_failed_last_item_leaves_sqlite_identical_with_atomic_bundles(builder: Any, tmp_path: Path) -> None:
    """With atomic bundles, a bundle failing on its last item leaves every stored row exactly as before."""
    path = tmp_path / "d.sqlite"
    fcc = fcc_init(path, atomic_bundles=True)
    assert (
        fcc.bundle_handler(
            builder.encode({"SchemeVersion": "0.0.1", "Verify": 0, "KpAlvSess": 1, "ROT": bytes(16)})
        ).status
        == 0
    )
    before = _dump(path)
    bundle = builder.valid()
    bundle["Entropy"] = bytes(48)
    bundle["ConfigParams"].append({"Name": "bad name!", "Data": 1})  # fails after everything else
    result = fcc.bundle_handler(builder.encode(bundle))
    assert result.status == FccStatus.KCM_STORAGE_ERROR
    assert _dump(path) == before
    bundle = builder.valid()
    bundle["Verify"] = 1
    bundle["ConfigParams"][1]["Data"] = "EP_wrong"  # verification fails after storing
    assert fcc.bundle_handler(builder.encode(bundle)).status == FccStatus.INVALID_LWM2M_CN_ATTR
    assert _dump(path) == before
    assert fcc_finalize(fcc) == FccStatus.SUCCESS


def test_c_api_mirrors(builder: Any) -> None:
    """The C-API mirror functions drive a memory device end to end."""
    fcc = fcc_init(":memory:")
    status, response = fcc_bundle_handler(fcc, builder.encode(builder.valid()))
    assert status == FccStatus.SUCCESS and response is not None
    assert fcc_verify_device_configured_4mbed_cloud(fcc) == FccStatus.SUCCESS
    assert fcc_storage_delete(fcc) == FccStatus.SUCCESS
    assert fcc.kcm.list_items() == []
    assert fcc_verify_device_configured_4mbed_cloud(fcc) == FccStatus.ITEM_NOT_EXIST


def test_factory_reset_restores_bundle_items(builder: Any, memory_fcc: FactoryConfiguratorClient) -> None:
    """Items from a bundle are factory items: reset drops later items and restores deleted ones."""
    assert memory_fcc.bundle_handler(builder.encode(builder.valid())).status == 0
    kcm = memory_fcc.kcm
    original = kcm.list_items()
    kcm.item_delete("mbed.EndpointName", ItemType.CONFIG)
    kcm.item_store("app.counter", ItemType.CONFIG, b"\x01", is_factory=False)
    assert memory_fcc.verify_device_configured().status == FccStatus.ITEM_NOT_EXIST
    memory_fcc.factory_reset()
    assert kcm.list_items() == original
    assert memory_fcc.verify_device_configured().ok


def test_response_too_large_is_status_21(builder: Any) -> None:
    """A response that does not fit 512 bytes answers status 21 with no body.

    The bundle itself was stored, as on a real device; with atomic bundles it is rolled back.
    """
    bundle = builder.valid()
    bundle["ConfigParams"][1]["Data"] = "EP_fdsf"
    bundle["SID"] = "s" * 600
    for atomic, stored in ((False, 17), (True, 0)):
        fcc = FactoryConfiguratorClient(Kcm(MemoryStorage()), atomic_bundles=atomic)
        result = fcc.bundle_handler(builder.encode(bundle))
        assert (result.status, result.response) == (FccStatus.BUNDLE_RESPONSE_ERROR, None)
        assert len(fcc.kcm.list_items()) == stored


def test_empty_csr_list_answers_an_empty_csrs_group(
    builder: Any, memory_fcc: FactoryConfiguratorClient
) -> None:
    """FCC writes ``Csrs`` whenever CsrReqs was processed, so an empty request list gives ``Csrs: []``."""
    bundle = {"SchemeVersion": "0.0.1", "SID": "s", "Verify": 0, "KpAlvSess": 1, "CsrReqs": []}
    result = memory_fcc.bundle_handler(builder.encode(bundle))
    assert result.response is not None
    assert result.response.startswith(b"\xbf\x64Csrs\x80\x6dSchemeVersion")
    assert decode_response(result.response).return_status == 0


def test_failed_csr_bundle_keeps_the_2560_byte_buffer(
    builder: Any, memory_fcc: FactoryConfiguratorClient
) -> None:
    """An error after CSR processing began still fits FCC's CSR buffer: no status 21 below 2560 bytes."""
    request = {
        "SchemeVersion": "0.0.1",
        "SID": "s" * 600,
        "Verify": 0,
        "CsrReqs": [{"PrKN": "gen.key", "Subj": "CN=EP_fdsf", "MD": 1, "Bogus": 1}],
    }
    result = memory_fcc.bundle_handler(builder.encode(request))
    assert result.response is not None and len(result.response) > 512
    response = decode_response(result.response)
    assert (response.return_status, response.csrs) == (37, ())
    request.pop("CsrReqs")
    assert memory_fcc.bundle_handler(builder.encode(request)).status == FccStatus.BUNDLE_RESPONSE_ERROR


def test_failed_bundle_keeps_the_session_state_of_the_last_complete_one(
    builder: Any, memory_fcc: FactoryConfiguratorClient
) -> None:
    """FCC sets its session flag only once a bundle's groups are all read: a bundle failing
    earlier leaves a keep-alive session open, and one failing later applies its own KpAlvSess."""
    fcc = memory_fcc
    fresh_failure = fcc.bundle_handler(builder.encode({"SchemeVersion": "0.0.1", "Bogus": 1, "KpAlvSess": 1}))
    assert (fresh_failure.status, fresh_failure.session_finished) == (FccStatus.BUNDLE_INVALID_GROUP, True)
    opened = fcc.bundle_handler(builder.encode({"SchemeVersion": "0.0.1", "Verify": 0, "KpAlvSess": 1}))
    assert (opened.status, opened.session_finished) == (FccStatus.SUCCESS, False)
    early = fcc.bundle_handler(builder.encode({"SchemeVersion": "0.0.1", "Bogus": 1, "KpAlvSess": 0}))
    assert (early.status, early.session_finished) == (FccStatus.BUNDLE_INVALID_GROUP, False)
    late = fcc.bundle_handler(builder.encode({"SchemeVersion": "0.0.1", "KpAlvSess": 0}))  # verify fails
    assert (late.status, late.session_finished) == (FccStatus.ITEM_NOT_EXIST, True)


def test_session_end_reads_the_bootstrap_mode_even_without_verify(builder: Any) -> None:
    """With secure time, ending a session runs fcc_trust_ca_cert_id_set, which reads
    mbed.UseBootstrap first: Verify 0 does not spare a bundle its 25/30 or the LwM2M warning,
    and bootstrap mode needs the bootstrap CA."""
    empty = {"SchemeVersion": "0.0.1", "Verify": 0}
    fcc = FactoryConfiguratorClient(Kcm(MemoryStorage()))
    result = fcc.bundle_handler(builder.encode(empty))
    assert result.response is not None
    assert (result.status, decode_response(result.response).info_message) == (
        FccStatus.ITEM_NOT_EXIST,
        "Item does not exist:mbed.UseBootstrap",
    )
    assert fcc.bundle_handler(builder.encode({**empty, "KpAlvSess": 1})).status == FccStatus.SUCCESS
    lwm2m = {**empty, "ConfigParams": [{"Name": "mbed.UseBootstrap", "Data": 0}]}
    result = fcc.bundle_handler(builder.encode(lwm2m))
    assert result.response is not None
    response = decode_response(result.response)
    assert (response.return_status, response.warning_info) == (
        0,
        "Bootstrap mode not activated:mbed.UseBootstrap\n",
    )
    bootstrap = {**empty, "ConfigParams": [{"Name": "mbed.UseBootstrap", "Data": 1}]}
    fresh = FactoryConfiguratorClient(Kcm(MemoryStorage()))
    result = fresh.bundle_handler(builder.encode(bootstrap))
    assert result.response is not None
    assert decode_response(result.response).info_message == "Item does not exist:mbed.BootstrapServerCACert"
    # As on a real device, the parameter stored before the failure stays.
    assert [item.name for item in fresh.kcm.list_items()] == ["mbed.UseBootstrap"]
    no_secure_time = FactoryConfiguratorClient(Kcm(MemoryStorage()), secure_time=False)
    assert no_secure_time.bundle_handler(builder.encode(empty)).status == FccStatus.SUCCESS


def test_repeated_scheme_entropy_and_rot_only_the_first_counts(memory_fcc: FactoryConfiguratorClient) -> None:
    """FCC reads SchemeVersion, Entropy and ROT once by key and skips them in its loop:
    a second, broken copy of any of them is ignored."""
    pairs = [("SchemeVersion", "0.0.1"), ("Entropy", bytes(48)), ("ROT", bytes(16))]
    pairs += [("SchemeVersion", "9.9.9"), ("Entropy", b"short"), ("ROT", 5), ("Verify", 0), ("KpAlvSess", 1)]
    raw = bytes([0xA0 | len(pairs)]) + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in pairs)
    result = memory_fcc.bundle_handler(raw)
    assert result.status == FccStatus.SUCCESS
    assert memory_fcc.kcm.rbp_get("rot") == bytes(16)

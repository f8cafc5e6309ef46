"""One-bundle provisioning: the 15 KCM items, device verification, all-or-nothing."""

from __future__ import annotations

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from developer.cfiles import NOW, DevCredentials, UpdateResources
from provkit.developer import (
    STORED_ITEMS,
    build_provisioning_bundle,
    check_device_response,
    parse_developer_credentials,
    parse_update_resources,
    status_bundle,
    status_json,
    truncation_warnings,
)
from provkit.developer.provision import memory_total_kb
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import MemoryStorage
from provkit.errors import CredentialsParseError
from provkit.params import names as n
from provkit.wire.bundle import decode_bundle

NOW_S = int(NOW.timestamp()) + 3600


def _material(update_years: int = 20) -> tuple[dict[str, bytes], dict[str, bytes]]:
    dev = parse_developer_credentials(DevCredentials(memory_kb=1024).c_text())
    update = parse_update_resources(UpdateResources(validity_years=update_years).c_text_v2())
    return dev, update


def _device(*, atomic: bool = False) -> tuple[Kcm, FactoryConfiguratorClient]:
    kcm = Kcm(MemoryStorage())
    return kcm, FactoryConfiguratorClient(kcm, atomic_bundles=atomic)


def test_item_names_are_the_clients_literal_names():
    """The 15 names are the strings of factory_configurator_client.c, as fcc_dev_flow.c stores them."""
    assert set(STORED_ITEMS) == {
        "mbed.UseBootstrap",
        "mbed.EndpointName",
        "mbed.BootstrapDeviceCert",
        "mbed.BootstrapDevicePrivateKey",
        "mbed.BootstrapServerCACert",
        "mbed.BootstrapServerURI",
        "mbed.Manufacturer",
        "mbed.ModelNumber",
        "mbed.SerialNumber",
        "mbed.DeviceType",
        "mbed.HardwareVersion",
        "mbed.MemoryTotalKB",
        "mbed.UpdateAuthCert",
        "mbed.VendorId",
        "mbed.ClassId",
    }
    dev, update = _material()
    bundle = decode_bundle(build_provisioning_bundle(dev, update, current_time=NOW_S).data)
    sent = {i.name for group in (bundle.keys, bundle.certificates, bundle.config_params) for i in group}
    assert sent == set(STORED_ITEMS) | {"mbed.CurrentTime"}
    assert {k.name for k in bundle.keys} == {"mbed.BootstrapDevicePrivateKey"}
    assert {c.name for c in bundle.certificates} == {
        "mbed.BootstrapDeviceCert",
        "mbed.BootstrapServerCACert",
        "mbed.UpdateAuthCert",
    }


def test_bundle_maps_variables_to_kcm_names():
    """Values land under those names with FCC's encodings; UseBootstrap is 1."""
    dev, update = _material()
    built = build_provisioning_bundle(dev, update, current_time=NOW_S)
    bundle = decode_bundle(built.data)
    params = {p.name: p.data for p in bundle.config_params}
    assert params[n.USE_BOOTSTRAP] == 1 and params[n.MEMORY_TOTAL_KB] == 1024
    assert params[n.CURRENT_TIME] == NOW_S
    assert params[n.BOOTSTRAP_SERVER_URI] == dev["MBED_CLOUD_DEV_BOOTSTRAP_SERVER_URI"].decode()
    assert params[n.VENDOR_ID] == update["arm_uc_vendor_id"]
    assert {k.name: k.data for k in bundle.keys} == {
        n.BOOTSTRAP_DEVICE_PRIVATE_KEY: dev["MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY"]
    }
    certs = {c.name: c for c in bundle.certificates}
    assert certs[n.BOOTSTRAP_DEVICE_CERT].prkn == n.BOOTSTRAP_DEVICE_PRIVATE_KEY
    assert certs[n.UPDATE_AUTH_CERT].data == update["arm_uc_default_certificate"]
    assert bundle.verify is True and len(built.items) == 15 == len(set(built.items))


def test_device_stores_fifteen_items_and_verifies():
    """A real FCC stores the 15 items; verification passes with only time-zone warnings."""
    kcm, fcc = _device()
    dev, update = _material()
    status = check_device_response(
        fcc.bundle_handler(build_provisioning_bundle(dev, update, current_time=NOW_S).data).response or b""
    )
    assert status.status == 0, status.message
    stored = {item.name for item in kcm.list_items()}
    assert set(STORED_ITEMS) <= stored and len(STORED_ITEMS) == 15
    assert kcm.item_get(n.MEMORY_TOTAL_KB, ItemType.CONFIG) == (1024).to_bytes(4, "little")
    assert kcm.item_get(n.USE_BOOTSTRAP, ItemType.CONFIG) == (1).to_bytes(4, "little")
    result = fcc.verify_device_configured()
    assert result.ok, result.message
    assert set(result.warnings) <= {"Item not set:mbed.Timezone", "Item not set:mbed.UTCOffset"}
    assert status_json(status)["warnings"] == list(result.warnings)


def test_short_lived_update_certificate_is_reported():
    """A 1-year (manifest-tool 1.x style) update certificate provisions with FCC's 10-year warning."""
    _kcm, fcc = _device()
    dev, update = _material(update_years=1)
    answer = fcc.bundle_handler(build_provisioning_bundle(dev, update, current_time=NOW_S).data)
    warnings = status_json(check_device_response(answer.response or b""))["warnings"]
    assert any("mbed.UpdateAuthCert" in w and "10 years" in w for w in warnings)  # type: ignore[union-attr]


def test_device_refusal_leaves_storage_untouched_with_atomic_bundles():
    """An endpoint that is not the certificate's CN fails verification: an atomic device keeps nothing."""
    kcm, fcc = _device(atomic=True)
    dev, update = _material()
    dev["MBED_CLOUD_DEV_BOOTSTRAP_ENDPOINT_NAME"] = b"someone-else"
    answer = fcc.bundle_handler(build_provisioning_bundle(dev, update, current_time=NOW_S).data)
    status = check_device_response(answer.response or b"")
    assert status.status != 0 and n.BOOTSTRAP_DEVICE_CERT in status.message
    assert [i.name for i in kcm.list_items() if i.name.startswith("mbed.")] == []


def test_device_refusal_keeps_the_items_on_a_device_like_fcc():
    """A device that behaves as FCC keeps what verification refused: a resend answers 17 until it is wiped."""
    kcm, fcc = _device()
    dev, update = _material()
    dev["MBED_CLOUD_DEV_BOOTSTRAP_ENDPOINT_NAME"] = b"someone-else"
    bundle = build_provisioning_bundle(dev, update, current_time=NOW_S).data
    assert fcc.bundle_handler(bundle).status == 14
    assert {i.name for i in kcm.list_items() if i.name.startswith("mbed.")} == set(STORED_ITEMS)
    assert fcc.bundle_handler(bundle).status == 17
    fcc.storage_delete()
    good, _ = _material()
    answer = fcc.bundle_handler(build_provisioning_bundle(good, update, current_time=NOW_S).data)
    assert check_device_response(answer.response or b"").status == 0


def test_host_refuses_mismatched_or_incomplete_material():
    """A key from another certificate, or a missing variable, is refused before sending."""
    dev, update = _material()
    other, _ = _material()
    dev_bad = dev | {
        "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY": other["MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY"]
    }
    with pytest.raises(CredentialsParseError, match="does not match"):
        build_provisioning_bundle(dev_bad, update)
    with pytest.raises(CredentialsParseError, match="lacks arm_uc_class_id"):
        build_provisioning_bundle(dev, {k: v for k, v in update.items() if k != "arm_uc_class_id"})
    with pytest.raises(CredentialsParseError, match="unusable"):
        build_provisioning_bundle(dev | {"MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE": b"junk"}, update)


def test_status_bundle_reports_an_empty_device():
    """The status bundle stores nothing; an empty device answers item-not-set for UseBootstrap."""
    kcm, fcc = _device()
    status = check_device_response(fcc.bundle_handler(status_bundle()).response or b"")
    assert status.status != 0 and n.USE_BOOTSTRAP in status.message
    assert [i.name for i in kcm.list_items() if i.name.startswith("mbed.")] == []


@pytest.mark.parametrize(
    ("raw", "value"),
    [(b"\x00\x04\x00\x00", 1024), (b"0", 0), (b"1024", 1024), (b"0x400", 1024), (b"4294967295", 2**32 - 1)],
)
def test_memory_total_kb_from_either_tool(raw, value):
    """provkit's 4-byte uint32_t and mbl-cli's ASCII text of the C literal both read right."""
    assert memory_total_kb(raw) == value


@pytest.mark.parametrize("raw", [b"", b"\x01\x02", b"abc", b"4294967296", b"0x1ffffffff"])
def test_memory_total_kb_refuses_other_shapes(raw):
    """Anything else is a CredentialsParseError naming the variable."""
    with pytest.raises(CredentialsParseError, match="MBED_CLOUD_DEV_MEMORY_TOTAL_KB"):
        memory_total_kb(raw)


def _self_signed_der(key: object) -> bytes:
    name = cx509.Name([cx509.NameAttribute(cx509.oid.NameOID.COMMON_NAME, "localhost")])
    cert = cx509.CertificateBuilder(
        name,
        name,
        key.public_key(),
        1,
        NOW,
        NOW.replace(year=2044),  # type: ignore[attr-defined]
    ).sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("make_key", "named"),
    [
        (lambda: ec.generate_private_key(ec.SECP384R1()), "EC secp384r1"),
        (lambda: rsa.generate_private_key(65537, 2048), "RSA 2048-bit"),
    ],
)
def test_update_certificate_key_must_be_p256(make_key, named):
    """A P-384 or RSA update certificate is refused on the host, naming the key it has."""
    dev, update = _material()
    update = update | {"arm_uc_default_certificate": _self_signed_der(make_key())}
    with pytest.raises(CredentialsParseError, match=f"has an {named} key; .* P-256 \\(secp256r1\\)") as info:
        build_provisioning_bundle(dev, update)
    assert info.value.code == 6003 and "manifest-dev-tool" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("manufacturer", "truncated"),
    [
        (b"AcmeInc.", False),
        (b"dev_manufacturer", False),
        (b"Acme(UK)Ltd", False),
        (b"Acme(UK", True),
        (b"Acme&", True),
        (b"Acme\\", True),
        (b"Acme{Labs", True),
        (b"", True),
    ],
)
def test_truncated_manufacturer_in_a_set_mbl_cli_wrote_is_warned(manufacturer, truncated):
    """mbl-cli cut strings at ';' ("Acme (UK; Ltd)" became "Acme(UK"): such a value gets a warning."""
    dev, _ = _material()
    mbl_cli = dev | {"MBED_CLOUD_DEV_MEMORY_TOTAL_KB": b"0", "MBED_CLOUD_DEV_MANUFACTURER": manufacturer}
    warnings = truncation_warnings(mbl_cli)
    assert bool(warnings) is truncated
    if truncated:
        assert "MBED_CLOUD_DEV_MANUFACTURER" in warnings[0] and "looks truncated" in warnings[0]
    # a set provkit parsed itself (a 4-byte MEMORY_TOTAL_KB) kept the whole string: never warned
    assert truncation_warnings(dev | {"MBED_CLOUD_DEV_MANUFACTURER": manufacturer}) == []

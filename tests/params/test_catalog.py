"""The parameter catalog holds every ``mbed.*`` name with the right rules."""

from __future__ import annotations

import pytest

from provkit.errors import BundleEncodeError, ParamError
from provkit.params import (
    BOOTSTRAP_MODE,
    CATALOG,
    FOUR_BYTE_INTEGER_PARAMS,
    LWM2M_MODE,
    META_DATA_NAMES,
    ItemKind,
    Mandatory,
    ValueFormat,
    get_param,
    is_custom_name_allowed,
    mandatory_for,
    names,
    redundant_for,
)
from provkit.wire.bundle import Bundle, ConfigParam, encode_bundle

# Every mbed.* name provkit knows (sources: provkit.params.names), copied by hand.
SPEC_NAMES = [
    "mbed.UseBootstrap",
    "mbed.EndpointName",
    "mbed.FirstToClaim",
    "mbed.AccountID",
    "mbed.InternalEndpoint",
    "mbed.Manufacturer",
    "mbed.ModelNumber",
    "mbed.DeviceType",
    "mbed.HardwareVersion",
    "mbed.MemoryTotalKB",
    "mbed.SerialNumber",
    "mbed.CurrentTime",
    "mbed.Timezone",
    "mbed.UTCOffset",
    "mbed.BootstrapServerCACert",
    "mbed.BootstrapServerCRL",
    "mbed.BootstrapServerURI",
    "mbed.BootstrapDeviceCert",
    "mbed.BootstrapDevicePrivateKey",
    "mbed.LwM2MServerCACert",
    "mbed.LwM2MServerCRL",
    "mbed.LwM2MServerURI",
    "mbed.LwM2MDeviceCert",
    "mbed.LwM2MDevicePrivateKey",
    "mbed.UpdateAuthCert",
    "mbed.ClassId",
    "mbed.VendorId",
    "mbed.SoftwareVersion",
    "mbed.ExternalAppVersion",
    "mbed.read_offset",
    "mbed.write_offset",
    "mbed.logging_enabled",
    "mbed.trace_level",
    "mbed.trace_level_trigger",
    "mbed.DeviceEnrollmentId",
    "mbed.FirmwareIntegrityCACert",
    "mbed.FirmwareIntegrityCert",
]

COMMON = [
    "mbed.UseBootstrap",
    "mbed.EndpointName",
    "mbed.Manufacturer",
    "mbed.ModelNumber",
    "mbed.DeviceType",
    "mbed.HardwareVersion",
    "mbed.MemoryTotalKB",
    "mbed.SerialNumber",
]
BOOTSTRAP = [
    "mbed.BootstrapServerCACert",
    "mbed.BootstrapServerURI",
    "mbed.BootstrapDeviceCert",
    "mbed.BootstrapDevicePrivateKey",
]
LWM2M = [
    "mbed.LwM2MServerCACert",
    "mbed.LwM2MServerURI",
    "mbed.LwM2MDeviceCert",
    "mbed.LwM2MDevicePrivateKey",
]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_spec_name_is_catalogued(name: str) -> None:
    """Each such name is in the catalog under its own device name."""
    assert get_param(name).device_name == name


def test_names_module_matches_catalog() -> None:
    """Every constant in names (except the prefix) is a catalog key, and vice versa."""
    constants = {v for k, v in vars(names).items() if k.isupper() and k != "MBED_PREFIX"}
    assert constants == set(CATALOG)
    assert set(SPEC_NAMES) | {"Entropy", "ROT", "Verify", "Disable"} == set(CATALOG)


def test_four_byte_integer_params() -> None:
    """Exactly UseBootstrap, MemoryTotalKB and FirstToClaim are 4-byte integers, as the wire layer assumes."""
    assert {"mbed.UseBootstrap", "mbed.MemoryTotalKB", "mbed.FirstToClaim"} == FOUR_BYTE_INTEGER_PARAMS
    for name in FOUR_BYTE_INTEGER_PARAMS:
        spec = get_param(name)
        assert (spec.value_format, spec.size, spec.kind) == (ValueFormat.INTEGER, 4, ItemKind.CONFIG)
        # The wire encoder reads the same set: a value that does not fit in 4 bytes is refused.
        encode_bundle(Bundle(config_params=(ConfigParam(name, 2**32 - 1),)))
        with pytest.raises(BundleEncodeError, match="4 bytes"):
            encode_bundle(Bundle(config_params=(ConfigParam(name, 2**32),)))


def test_mandatory_by_mode() -> None:
    """Bootstrap mode needs the common set plus Bootstrap* objects; LwM2M mode the LwM2M* ones."""
    assert list(mandatory_for(True)) == COMMON + BOOTSTRAP
    assert list(mandatory_for(False)) == COMMON + LWM2M
    assert list(redundant_for(True)) == LWM2M
    assert list(redundant_for(False)) == BOOTSTRAP


def test_kinds_and_sizes() -> None:
    """Certificates, keys, UUIDs and bundle-level names have the documented kinds and sizes."""
    assert get_param(names.BOOTSTRAP_DEVICE_CERT).kind is ItemKind.CERTIFICATE
    assert get_param(names.LWM2M_DEVICE_PRIVATE_KEY).kind is ItemKind.PRIVATE_KEY
    assert get_param(names.CLASS_ID).size == 16
    assert get_param(names.VENDOR_ID).value_format is ValueFormat.BYTES
    assert get_param(names.ENTROPY).size == 48
    assert get_param(names.ROT).size == 16
    for name in (names.CURRENT_TIME, names.DEVICE_ENROLLMENT_ID, names.VERIFY, names.DISABLE):
        assert get_param(name).mandatory is Mandatory.NOT_STORED
        assert not get_param(name).is_stored
    assert get_param(names.FIRMWARE_INTEGRITY_CERT).obsolete
    assert get_param(names.TRACE_LEVEL).runtime_only


def test_fcu_names() -> None:
    """FCU configuration names come from the provisioning-information tables."""
    assert get_param(names.USE_BOOTSTRAP).fcu_name == "use-bootstrap"
    assert get_param(names.ENDPOINT_NAME).fcu_name == "endpoint_name"
    assert get_param(names.MEMORY_TOTAL_KB).fcu_name == "memory-total"
    assert get_param(names.VERIFY).fcu_name == "verify-on-device"


def test_unknown_name_raises_param_error() -> None:
    """Looking up an unknown name raises ParamError naming it."""
    with pytest.raises(ParamError, match=r"mbed\.Nope"):
        get_param("mbed.Nope")


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("acme.Colour", True),
        ("acme_serial-2", True),
        ("mbed.Custom", False),
        ("mbedCustom", False),
        ("MBED.x", False),
        ("Entropy", False),
        ("", False),
        ("has space", False),
        ("x" * 101, False),
    ],
)
def test_custom_name_rules(name: str, allowed: bool) -> None:
    """Custom property names must be KCM names without the mbed prefix."""
    assert is_custom_name_allowed(name) is allowed


def test_mode_names_and_meta_data_agree_with_the_catalog() -> None:
    """Each mode's security items are exactly the catalog's items mandatory in that mode (CRLs aside)."""
    for mode, rule in ((BOOTSTRAP_MODE, Mandatory.IF_BOOTSTRAP), (LWM2M_MODE, Mandatory.IF_LWM2M)):
        in_mode = {spec.device_name for spec in CATALOG.values() if spec.mandatory is rule}
        assert {mode.ca, mode.uri, mode.key, mode.cert} == in_mode
        assert get_param(mode.key).kind is ItemKind.PRIVATE_KEY
        assert get_param(mode.cert).kind is ItemKind.CERTIFICATE
        assert mode.uri.endswith("ServerURI") and mode.ca.endswith("ServerCACert")
    assert len(set(META_DATA_NAMES)) == 6
    assert all(get_param(name).kind is ItemKind.CONFIG for name in META_DATA_NAMES)

"""The parameter catalog: one declarative table read by the factory and the device.

The names, KCM item types and formats are those of ``fcc_defs.h`` and the FCC bundle
handler in PelionIoT/mbed-cloud-client (``factory-configurator-client/``); what device
verification checks follows ``fcc_verification.c``; FCU names and validations follow
Arm's "Provisioning information" documentation. ``docs/wire-format.md`` and
``docs/device.md`` describe the rules in prose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from provkit.errors import ParamError
from provkit.params import names as n
from provkit.params.kcm_name import is_kcm_name
from provkit.params.spec import ItemKind, Mandatory, ParamSpec, ValueFormat

_C, _CERT, _PRV = ItemKind.CONFIG, ItemKind.CERTIFICATE, ItemKind.PRIVATE_KEY
_S, _I, _D, _B = ValueFormat.STRING, ValueFormat.INTEGER, ValueFormat.DER, ValueFormat.BYTES
_ALW, _BS, _LW, _OPT, _NS = (
    Mandatory.ALWAYS,
    Mandatory.IF_BOOTSTRAP,
    Mandatory.IF_LWM2M,
    Mandatory.OPTIONAL,
    Mandatory.NOT_STORED,
)
_URI_FCC = "present, not empty, starts with coap:// or coaps://; aid query required unless first-to-claim"
_CERT_FCC = (
    "present, valid DER, not self-signed (warning), leaf EKU clientAuth, CN equals mbed.EndpointName, "
    "public key matches the private key, expiry checked per certificate"
)

_TABLE: Final[tuple[ParamSpec, ...]] = (
    # device_name, fcu_name, kind, format, size, mandatory, FCU validations, FCC validations, description
    ParamSpec(n.USE_BOOTSTRAP, "use-bootstrap", _C, _I, 4, _ALW, "present, boolean",
              "present, size 4, value 0 or 1", "1: bootstrap with the bootstrap service; 0: direct LwM2M"),
    ParamSpec(n.ENDPOINT_NAME, "endpoint_name", _C, _S, None, _ALW, "present and not empty",
              "present and not empty; equals the device certificate CN", "Unique device identifier"),
    ParamSpec(n.FIRST_TO_CLAIM, "first-to-claim", _C, _I, 4, _OPT, "boolean; only with use-bootstrap",
              "if present size 4; 1 needs bootstrap mode and a URI without aid", "Ownership claiming"),
    ParamSpec(n.ACCOUNT_ID, None, _C, _S, None, _OPT, "", "", "Account id used when bootstrap is disabled"),
    ParamSpec(n.INTERNAL_ENDPOINT, None, _C, _S, None, _OPT, "", "", "Internal endpoint name (no-bootstrap)"),
    ParamSpec(n.MANUFACTURER, "manufacturer-name", _C, _S, None, _ALW, "present", "present",
              "LwM2M device object manufacturer"),
    ParamSpec(n.MODEL_NUMBER, "model-number", _C, _S, None, _ALW, "present", "present",
              "Device model number"),
    ParamSpec(n.DEVICE_TYPE, "device-type", _C, _S, None, _ALW, "present", "present", "Device type"),
    ParamSpec(n.HARDWARE_VERSION, "hardware-version", _C, _S, None, _ALW, "present", "present",
              "Hardware version"),
    ParamSpec(n.MEMORY_TOTAL_KB, "memory-total", _C, _I, 4, _ALW, "present", "present",
              "Total device memory in kilobytes"),
    ParamSpec(n.SERIAL_NUMBER, "serial_number", _C, _S, None, _ALW, "present", "present",
              "Device serial number"),
    ParamSpec(n.CURRENT_TIME, None, ItemKind.NONE, _I, 8, _NS, "sent when time-sync is true",
              "not stored; sets device time (warning if time is 0)", "Current Unix time in seconds"),
    ParamSpec(n.TIMEZONE, "timezone", _C, _S, None, _OPT, "valid IANA time zone",
              "warning if missing or empty", "IANA time zone, e.g. Europe/Paris"),
    ParamSpec(n.UTC_OFFSET, None, _C, _S, None, _OPT, "valid ISO-8601 offset",
              "warning if missing; if present +HH:MM / -HH:MM", "Offset from UTC, e.g. +02:00"),
    ParamSpec(n.BOOTSTRAP_SERVER_CA_CERT, "bootstrap-server-ca-certificate-file", _CERT, _D, None, _BS,
              "present iff use-bootstrap, supported crypto scheme", "present, valid DER, not empty",
              "CA of the bootstrap server certificate"),
    ParamSpec(n.BOOTSTRAP_SERVER_CRL, None, ItemKind.NONE, ValueFormat.NONE, None, _OPT, "", "never checked",
              "Name defined only"),
    ParamSpec(n.BOOTSTRAP_SERVER_URI, "bootstrap-server-uri", _C, _S, None, _BS,
              "present iff use-bootstrap; coap/coaps; aid unless first-to-claim", _URI_FCC,
              "Bootstrap service URI"),
    ParamSpec(n.BOOTSTRAP_DEVICE_CERT, None, _CERT, _D, None, _BS,
              "not self-signed, expiry > 10 y, EKU clientAuth, supported crypto scheme", _CERT_FCC,
              "Bootstrap device certificate or chain"),
    ParamSpec(n.BOOTSTRAP_DEVICE_PRIVATE_KEY, None, _PRV, _D, None, _BS, "present iff use-bootstrap",
              "present, valid DER EC private key", "Bootstrap device private key"),
    ParamSpec(n.LWM2M_SERVER_CA_CERT, "lwm2m-server-ca-certificate-file", _CERT, _D, None, _LW,
              "present iff not use-bootstrap", "present, valid DER, not empty", "CA of the LwM2M server"),
    ParamSpec(n.LWM2M_SERVER_CRL, None, ItemKind.NONE, ValueFormat.NONE, None, _OPT, "", "never checked",
              "Name defined only"),
    ParamSpec(n.LWM2M_SERVER_URI, "lwm2m-server-uri", _C, _S, None, _LW,
              "present iff not use-bootstrap; coap/coaps with aid", _URI_FCC, "LwM2M server URI"),
    ParamSpec(n.LWM2M_DEVICE_CERT, None, _CERT, _D, None, _LW,
              "not self-signed, expiry > 10 y, EKU clientAuth, OU equals aid", _CERT_FCC + "; OU equals aid",
              "LwM2M device certificate or chain"),
    ParamSpec(n.LWM2M_DEVICE_PRIVATE_KEY, None, _PRV, _D, None, _LW, "present iff not use-bootstrap",
              "present, valid DER EC private key", "LwM2M device private key"),
    ParamSpec(n.UPDATE_AUTH_CERT, "update-auth-certificate-file", _CERT, _D, None, _OPT,
              "self-signed, expiry > 10 y, EKU clientAuth + codeSigning",
              "warning if missing; expiry checked",
              "Firmware update authority certificate"),
    ParamSpec(n.CLASS_ID, "class-id", _C, _B, 16, _OPT, "RFC 4122 UUID; required with update-auth cert",
              "warning if missing; size 16", "Device class UUID for firmware update"),
    ParamSpec(n.VENDOR_ID, "vendor-id", _C, _B, 16, _OPT, "RFC 4122 UUID; required with update-auth cert",
              "warning if missing; size 16", "Vendor UUID for firmware update"),
    ParamSpec(n.SOFTWARE_VERSION, None, _C, _S, None, _OPT, "", "", "Software version (client runtime)"),
    ParamSpec(n.EXTERNAL_APP_VERSION, None, _C, ValueFormat.NONE, None, _OPT, "", "",
              "Update client application version", runtime_only=True),
    *(
        ParamSpec(name, None, _C, ValueFormat.NONE, None, _OPT, "", "", "Dynamic logging (runtime)",
                  runtime_only=True)
        for name in (n.READ_OFFSET, n.WRITE_OFFSET, n.LOGGING_ENABLED, n.TRACE_LEVEL, n.TRACE_LEVEL_TRIGGER)
    ),
    ParamSpec(n.DEVICE_ENROLLMENT_ID, None, ItemKind.NONE, _S, None, _NS,
              "present iff first-to-claim; derived from the bootstrap device certificate", "",
              "Enrollment id returned to the caller, never stored"),
    ParamSpec(n.FIRMWARE_INTEGRITY_CA_CERT, None, _CERT, _D, None, _OPT, "", "",
              "Obsolete (pre-R1.2); use mbed.UpdateAuthCert", obsolete=True),
    ParamSpec(n.FIRMWARE_INTEGRITY_CERT, None, _CERT, _D, None, _OPT, "", "",
              "Obsolete (pre-R1.2); use mbed.UpdateAuthCert", obsolete=True),
    ParamSpec(n.ENTROPY, None, ItemKind.NONE, _B, 48, _NS, "present unless entropy-generation-mode by_device",
              "if present 48 bytes", "Entropy seed (bundle-level)"),
    ParamSpec(n.ROT, None, ItemKind.NONE, _B, 16, _NS, "", "if present 16 bytes",
              "Root of trust (bundle-level)"),
    ParamSpec(n.VERIFY, "verify-on-device", ItemKind.NONE, ValueFormat.FLAG, None, _NS,
              "present only when configured true", "", "Run device verification after storing"),
    ParamSpec(n.DISABLE, "factory_fcc_disable", ItemKind.NONE, ValueFormat.FLAG, None, _NS,
              "present only when configured true", "", "Disable the factory flow after this bundle"),
)  # fmt: skip

CATALOG: Final[Mapping[str, ParamSpec]] = MappingProxyType({spec.device_name: spec for spec in _TABLE})
"""Every known parameter by device name."""

FOUR_BYTE_INTEGER_PARAMS: Final = frozenset({n.USE_BOOTSTRAP, n.MEMORY_TOTAL_KB, n.FIRST_TO_CLAIM})
"""Config params FCC stores as exactly 4 bytes; send them as CBOR integers."""

BUNDLE_LEVEL_NAMES: Final = frozenset({n.ENTROPY, n.ROT, n.VERIFY, n.DISABLE})
"""Names that are top-level bundle keys, not KCM items."""

META_DATA_NAMES: Final = (
    n.MANUFACTURER,
    n.MODEL_NUMBER,
    n.DEVICE_TYPE,
    n.HARDWARE_VERSION,
    n.MEMORY_TOTAL_KB,
    n.SERIAL_NUMBER,
)
"""The device metadata items, in the order FCC verification checks them (``fcc_verification.c``)."""


@dataclass(frozen=True, slots=True)
class ModeNames:
    """The security item names of one connection mode (bootstrap or direct LwM2M).

    Attributes:
        prefix: ``"Bootstrap"`` or ``"LwM2M"``, the stem of every name (FCU messages use it).
        ca: server CA certificate.
        uri: server URI.
        key: device private key.
        cert: device certificate (chain).
    """

    prefix: str
    ca: str
    uri: str
    key: str
    cert: str


BOOTSTRAP_MODE: Final = ModeNames(
    "Bootstrap",
    n.BOOTSTRAP_SERVER_CA_CERT,
    n.BOOTSTRAP_SERVER_URI,
    n.BOOTSTRAP_DEVICE_PRIVATE_KEY,
    n.BOOTSTRAP_DEVICE_CERT,
)
"""Security items of bootstrap mode (``mbed.UseBootstrap`` = 1)."""

LWM2M_MODE: Final = ModeNames(
    "LwM2M", n.LWM2M_SERVER_CA_CERT, n.LWM2M_SERVER_URI, n.LWM2M_DEVICE_PRIVATE_KEY, n.LWM2M_DEVICE_CERT
)
"""Security items of direct LwM2M mode (``mbed.UseBootstrap`` = 0)."""

DEVICE_CERT_OF_KEY: Final[Mapping[str, str]] = MappingProxyType(
    {mode.key: mode.cert for mode in (BOOTSTRAP_MODE, LWM2M_MODE)}
)
"""The device certificate (chain) name that goes with each device private key name."""


def mode_names(use_bootstrap: bool) -> ModeNames:
    """The security item names of bootstrap mode (``True``) or direct LwM2M mode (``False``)."""
    return BOOTSTRAP_MODE if use_bootstrap else LWM2M_MODE


def get_param(name: str) -> ParamSpec:
    """Look a parameter up by its device name.

    Raises:
        ParamError: the name is not in the catalog.
    """
    try:
        return CATALOG[name]
    except KeyError:
        raise ParamError(f"unknown parameter {name!r}") from None


def mandatory_for(use_bootstrap: bool) -> tuple[str, ...]:
    """Names FCC verification requires in the given mode, in catalog order."""
    return tuple(spec.device_name for spec in _TABLE if spec.is_mandatory(use_bootstrap))


def redundant_for(use_bootstrap: bool) -> tuple[str, ...]:
    """Names of the *other* mode's security objects (FCC warns ``Item redundant:``)."""
    other = Mandatory.IF_LWM2M if use_bootstrap else Mandatory.IF_BOOTSTRAP
    return tuple(spec.device_name for spec in _TABLE if spec.mandatory is other)


def is_custom_name_allowed(name: str) -> bool:
    """Whether ``name`` may be used for a custom property.

    Custom names must be valid KCM names (1–100 characters of ``A–Z a–z 0–9 . - _``),
    must not use the reserved ``mbed`` prefix (compared case-insensitively, so
    ``Mbed.x`` is refused too) and must not be a bundle-level name.
    """
    return (
        is_kcm_name(name) and not name.casefold().startswith(n.MBED_PREFIX) and name not in BUNDLE_LEVEL_NAMES
    )

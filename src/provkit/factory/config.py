"""The validated ``fcu.yml`` model: its keys, modes and the :class:`FcuConfig` record (docs/factory.md).

:mod:`provkit.factory.config_validate` reads and validates a file into this model; every
invalid, missing or unknown key is a :class:`~provkit.errors.ConfigError` with code 380
built by :func:`invalid`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError
from provkit.factory.ca_key import CaKeySource


class KeyMode(StrEnum):
    """``device-key-generation-mode``: who makes the device key pair and certificate."""

    BY_TOOL = "by_tool"
    EXTERNALLY_SUPPLIED = "externally_supplied"
    BY_DEVICE = "by_device"


class EntropyMode(StrEnum):
    """``entropy-generation-mode``: where the 48-byte Entropy item comes from."""

    BY_DEVICE = "by_device"
    BY_TOOL = "by_tool"
    EXTERNALLY_SUPPLIED = "externally_supplied"


SUBJECT_KEYS: Final = (
    "common-name",
    "organization-name",
    "organizational-unit-name",
    "locality-name",
    "state-or-province-name",
    "country-name",
)
DEVICE_INFO_KEYS: Final = (
    "manufacturer-name",
    "device-type",
    "model-number",
    "hardware-version",
    "memory-total",
    "timezone",
)
CA_KEY_KEYS: Final = ("uri", "pkcs11-module", "pin-file")
"""Keys of a ``certificate-authority-key`` mapping (a plain string is the ``uri``)."""
CUSTOM_TYPES: Final = ("config", "certificate", "private-key", "public-key")
CUSTOM_KEYS: Final = ("name", "type", "data", "data-file")
BOOL_KEYS: Final = (
    "use-bootstrap",
    "first-to-claim",
    "time-sync",
    "verify-on-device",
    "setup-ca-as-intermediate",
)
FILE_KEYS: Final = (
    "bootstrap-server-ca-certificate-file",
    "bootstrap-server-crl-file",
    "lwm2m-server-ca-certificate-file",
    "lwm2m-server-crl-file",
    "update-auth-certificate-file",
)
STRING_KEYS: Final = (
    "bootstrap-server-uri",
    "bootstrap-server-uri-first-to-claim",
    "lwm2m-server-uri",
    "vendor-id",
    "class-id",
)
OBSOLETE_FILE_KEYS: Final = (
    "firmware-integrity-ca-certificate-file",
    "firmware-integrity-certificate-file",
    "firmware-integrity-crl-file",
)
"""Keys of FCU 1.2's fcu.yml for ``mbed.FirmwareIntegrity*``, which no FCC release reads any more
(replaced by ``update-auth-certificate-file``): accepted so such a file loads, and not sent."""
TOP_LEVEL_KEYS: Final = frozenset(
    {
        *OBSOLETE_FILE_KEYS,
        "device-key-generation-mode",
        "entropy-generation-mode",
        *BOOL_KEYS,
        *FILE_KEYS,
        *STRING_KEYS,
        "certificate-authority",
        "certificate-authority-key",
        "device-info",
        "device-certificate",
        "device-certificate-chain-depth",
        "custom-properties",
    }
)
MAX_CHAIN_DEPTH: Final = 5
"""KCM stores at most 5 certificates in a chain."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """``device-info``: the LwM2M device object values."""

    manufacturer_name: str
    device_type: str
    model_number: str
    hardware_version: str
    memory_total: int
    timezone: str | None


@dataclass(frozen=True, slots=True)
class CustomProperty:
    """One ``custom-properties`` entry.

    Attributes:
        name: the item name on the device (no ``mbed`` prefix).
        type: ``config``, ``certificate``, ``private-key`` or ``public-key``.
        data: inline value (config: text, integer or bytes; others: PEM text).
        data_file: file holding the value instead of ``data``.
    """

    name: str
    type: str
    data: str | int | bytes | None = None
    data_file: Path | None = None


@dataclass(frozen=True, slots=True)
class FcuConfig:
    """A validated ``fcu.yml``.

    URIs, files and identifiers for the mode not in use are kept as given but ignored.
    """

    key_mode: KeyMode
    entropy_mode: EntropyMode
    use_bootstrap: bool
    first_to_claim: bool
    time_sync: bool
    verify_on_device: bool
    setup_ca_as_intermediate: bool
    certificate_authority: Mapping[str, str]
    server_uri: str
    server_ca_certificate_file: Path
    server_crl_file: Path | None
    update_auth_certificate_file: Path | None
    vendor_id: bytes | None
    class_id: bytes | None
    device_info: DeviceInfo
    device_certificate: Mapping[str, str]
    chain_depth: int
    custom_properties: tuple[CustomProperty, ...] = field(default=())
    source: Path | None = None
    ignored_keys: tuple[str, ...] = field(default=())
    """Obsolete keys set in the file (:data:`OBSOLETE_FILE_KEYS`); prepare warns about them."""
    certificate_authority_key: CaKeySource | None = None
    """``certificate-authority-key``: the CA key in a PKCS#11 token (``None``: the keystore decides)."""

    @property
    def account_id(self) -> str | None:
        """The ``aid`` query value of the server URI (the LwM2M certificate's OU), if any."""
        return uri_aid(self.server_uri)


def invalid(field_name: str, message: str, hint: str | None = None) -> ConfigError:
    """Build the 380 error for ``field_name``."""
    return ConfigError.from_code(
        FcuErrorCode.VALIDATION_ERROR, field_name, message, hint=hint or f"correct '{field_name}' in fcu.yml"
    )


def uri_aid(uri: str) -> str | None:
    """Return the text after ``?aid=`` / ``&aid=`` up to the next ``&``, or ``None``."""
    for marker in ("?aid=", "&aid="):
        at = uri.find(marker)
        if at >= 0:
            return uri[at + len(marker) :].split("&", 1)[0]
    return None

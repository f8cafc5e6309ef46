"""Developer credentials and update resources: from C text to named byte values.

A developer certificate (``security_file_content`` of ``POST /v3/developer-certificates``,
the text of ``mbed_cloud_dev_credentials.c``) defines ``MBED_CLOUD_DEV_*`` variables; a
manifest-tool ``update_default_resources.c`` defines ``arm_uc_*`` variables
(docs/developer.md, "Parsing the C files"). Each parse keeps the variables of its
prefix, drops ``sizeof`` bookkeeping (``*_size``, ``*_SIZE``, ``*_psk_bits``) and ``{ 0 }``
placeholders, and checks that what the device needs is present and well formed, so that a
bad file is refused before anything is saved or sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from provkit.developer.cparse import CVariable, parse_c_variables
from provkit.errors import CredentialsParseError

DEV_PREFIX: Final = "MBED_CLOUD_DEV_"
UPDATE_PREFIX: Final = "arm_uc_"

ENDPOINT_NAME: Final = "MBED_CLOUD_DEV_BOOTSTRAP_ENDPOINT_NAME"
ACCOUNT_ID: Final = "MBED_CLOUD_DEV_ACCOUNT_ID"
SERVER_URI: Final = "MBED_CLOUD_DEV_BOOTSTRAP_SERVER_URI"
DEVICE_CERTIFICATE: Final = "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE"
SERVER_CA_CERTIFICATE: Final = "MBED_CLOUD_DEV_BOOTSTRAP_SERVER_ROOT_CA_CERTIFICATE"
DEVICE_PRIVATE_KEY: Final = "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_PRIVATE_KEY"
MANUFACTURER: Final = "MBED_CLOUD_DEV_MANUFACTURER"
MODEL_NUMBER: Final = "MBED_CLOUD_DEV_MODEL_NUMBER"
SERIAL_NUMBER: Final = "MBED_CLOUD_DEV_SERIAL_NUMBER"
DEVICE_TYPE: Final = "MBED_CLOUD_DEV_DEVICE_TYPE"
HARDWARE_VERSION: Final = "MBED_CLOUD_DEV_HARDWARE_VERSION"
MEMORY_TOTAL_KB: Final = "MBED_CLOUD_DEV_MEMORY_TOTAL_KB"

DEV_REQUIRED: Final = (
    ENDPOINT_NAME,
    SERVER_URI,
    DEVICE_CERTIFICATE,
    SERVER_CA_CERTIFICATE,
    DEVICE_PRIVATE_KEY,
    MANUFACTURER,
    MODEL_NUMBER,
    SERIAL_NUMBER,
    DEVICE_TYPE,
    HARDWARE_VERSION,
    MEMORY_TOTAL_KB,
)
"""The 11 developer variables pelion-provisioning-util reads (ACCOUNT_ID is not one)."""

VENDOR_ID: Final = "arm_uc_vendor_id"
CLASS_ID: Final = "arm_uc_class_id"
UPDATE_CERTIFICATE: Final = "arm_uc_default_certificate"
FINGERPRINT: Final = "arm_uc_default_fingerprint"
UPDATE_PUBLIC_KEY: Final = "arm_uc_update_public_key"

UPDATE_REQUIRED: Final = (UPDATE_CERTIFICATE, VENDOR_ID, CLASS_ID)
"""The 3 update variables the device receives."""

UPDATE_PSK: Final = "arm_uc_default_psk"
"""manifest-tool 1.x ``init --psk`` writes the pre-shared key here (and no certificate)."""


_SIZES: Final = {VENDOR_ID: 16, CLASS_ID: 16, UPDATE_PUBLIC_KEY: 65}
_BYTE_ARRAYS: Final = frozenset({DEVICE_CERTIFICATE, SERVER_CA_CERTIFICATE, DEVICE_PRIVATE_KEY})


def _select(text: str, prefix: str) -> tuple[dict[str, CVariable], set[str]]:
    selected: dict[str, CVariable] = {}
    placeholders: set[str] = set()
    for var in parse_c_variables(text):
        if not var.name.startswith(prefix) or var.derived:
            continue
        if var.placeholder:
            placeholders.add(var.name)  # e.g. manifest-tool 2.x's unused fingerprint ``{ 0 }``
            continue
        selected[var.name] = var
    return selected, placeholders


def _require(
    found: Mapping[str, CVariable], placeholders: set[str], names: tuple[str, ...], what: str
) -> None:
    for name in names:
        if name in found:
            continue
        if name in placeholders:
            raise CredentialsParseError(
                f"{name} is a placeholder ({{ 0 }}), not a real value",
                hint=f"use a {what} generated for your account",
            )
        raise CredentialsParseError(f"{what} defines no {name}")


def parse_developer_credentials(text: str) -> dict[str, bytes]:
    """Parse ``mbed_cloud_dev_credentials.c`` text into ``{variable: bytes}``.

    Strings are their bytes without NUL, byte arrays their bytes, and
    ``MBED_CLOUD_DEV_MEMORY_TOTAL_KB`` 4 little-endian bytes.

    Raises:
        CredentialsParseError: unparsable text, a missing or placeholder variable, a wrong
            C type (e.g. the certificate given as a string), or an empty endpoint name.
    """
    found, placeholders = _select(text, DEV_PREFIX)
    _require(found, placeholders, DEV_REQUIRED, "developer credentials file")
    for name in _BYTE_ARRAYS:
        if found[name].ctype != "uint8_t":
            raise CredentialsParseError(f"{name} must be a uint8_t array", line=found[name].line)
    if len(found[MEMORY_TOTAL_KB].data) != 4:
        raise CredentialsParseError(f"{MEMORY_TOTAL_KB} must be a uint32_t", line=found[MEMORY_TOTAL_KB].line)
    if not found[ENDPOINT_NAME].data:
        raise CredentialsParseError(f"{ENDPOINT_NAME} is empty", line=found[ENDPOINT_NAME].line)
    return {name: var.data for name, var in found.items()}


def parse_update_resources(text: str) -> dict[str, bytes]:
    """Parse manifest-tool ``update_default_resources.c`` text (1.x or 2.x) into ``{variable: bytes}``.

    Raises:
        CredentialsParseError: unparsable text, a PSK-mode file, a missing certificate,
            vendor or class id, or an id / public key of the wrong size.
    """
    found, placeholders = _select(text, UPDATE_PREFIX)
    psk = found.get(UPDATE_PSK)
    if psk is not None and psk.data:
        # manifest-tool 1.x ``init --psk`` leaves the certificate arrays empty; the device's
        # mbed.UpdateAuthCert item needs a certificate.
        raise CredentialsParseError(
            f"PSK projects are not supported: {UPDATE_PSK} holds a pre-shared key "
            "(manifest-tool init --psk), and the device needs an update certificate",
            line=psk.line,
            hint="make a certificate-based update_default_resources.c with manifest-dev-tool init",
        )
    _require(found, placeholders, UPDATE_REQUIRED, "update resources file")
    for name, size in _SIZES.items():
        if name in found and len(found[name].data) != size:
            raise CredentialsParseError(
                f"{name} has {len(found[name].data)} bytes, expected {size}", line=found[name].line
            )
    return {name: var.data for name, var in found.items()}


def is_update_set(variables: Iterable[str]) -> bool:
    """Whether a set's variable names (or ``{name: bytes}``) make an update certificate set.

    Anything else is a developer certificate set.
    """
    return any(name.startswith(UPDATE_PREFIX) for name in variables)

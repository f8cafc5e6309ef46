"""Turn a developer certificate and an update certificate into one FCC bundle.

pelion-provisioning-util writes 15 KCM items one ``kcm_item_store`` at a time and stops
at the first failure. Here the same items travel as **one** device configuration bundle
that the device verifies (``fcc_verify_device_configured_4mbed_cloud``) once it is
stored. Like FCC, a device that refuses it keeps what it stored before the refusal (a
second attempt answers ``17 Data already exists``) unless it makes bundles atomic
(``provkit device serve --atomic-bundles``): wipe such a device before provisioning it
again.

Mapping: the 11 ``MBED_CLOUD_DEV_*`` values, ``arm_uc_default_certificate``,
``arm_uc_vendor_id``, ``arm_uc_class_id``, plus ``mbed.UseBootstrap`` = 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from provkit.crypto import keys, x509
from provkit.developer import credentials as c
from provkit.errors import CredentialsParseError, CryptoError
from provkit.factory.provision import OneMessage, deliver
from provkit.factory.response import verify_device_response
from provkit.factory.results import DeviceResponseStatus
from provkit.params import names as n
from provkit.transport.link import DEFAULT_LINK_SETTINGS, LinkSettings
from provkit.wire.bundle import Bundle, CertificateItem, ConfigParam, KeyItem, encode_bundle
from provkit.wire.framing import FCC_TOKEN

CONFIG_STRINGS: Final = {
    c.ENDPOINT_NAME: n.ENDPOINT_NAME,
    c.SERVER_URI: n.BOOTSTRAP_SERVER_URI,
    c.MANUFACTURER: n.MANUFACTURER,
    c.MODEL_NUMBER: n.MODEL_NUMBER,
    c.SERIAL_NUMBER: n.SERIAL_NUMBER,
    c.DEVICE_TYPE: n.DEVICE_TYPE,
    c.HARDWARE_VERSION: n.HARDWARE_VERSION,
}
"""Developer string variables and the config items they become."""

STORED_ITEMS: Final = (
    n.USE_BOOTSTRAP,
    *CONFIG_STRINGS.values(),
    n.MEMORY_TOTAL_KB,
    n.BOOTSTRAP_DEVICE_PRIVATE_KEY,
    n.BOOTSTRAP_DEVICE_CERT,
    n.BOOTSTRAP_SERVER_CA_CERT,
    n.UPDATE_AUTH_CERT,
    n.VENDOR_ID,
    n.CLASS_ID,
)
"""The 15 KCM items a provisioned device holds."""

if TYPE_CHECKING:
    from provkit.transport.spec import LinkTarget

_T = TypeVar("_T")
_C_INT_TEXT: Final = re.compile(rb"(0[xX][0-9A-Fa-f]{1,8}|0[0-7]{0,11}|[1-9][0-9]{0,9})[uUlL]{0,3}")


@dataclass(frozen=True, slots=True)
class ProvisioningBundle:
    """An encoded bundle and what it will store.

    Attributes:
        data: the CBOR bundle (the body of an ``mbedprov`` frame).
        items: the KCM item names it stores, in :data:`STORED_ITEMS` order.
        endpoint_name: the developer certificate's endpoint name.
    """

    data: bytes
    items: tuple[str, ...]
    endpoint_name: str


def _need(variables: Mapping[str, bytes], names: tuple[str, ...], what: str) -> None:
    missing = [name for name in names if name not in variables]
    if missing:
        raise CredentialsParseError(f"the {what} lacks {', '.join(missing)}")


def _text(variables: Mapping[str, bytes], name: str) -> str | bytes:
    raw = variables[name]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw  # KCM stores bytes as given; a non-UTF-8 name is the account's business


def _load(name: str, loader: Callable[[bytes], _T], data: bytes) -> _T:
    try:
        return loader(data)
    except CryptoError as exc:
        raise CredentialsParseError(f"unusable credentials: {name}: {exc}") from exc


def memory_total_kb(raw: bytes) -> int:
    """The ``MBED_CLOUD_DEV_MEMORY_TOTAL_KB`` value of a stored set, from either tool.

    provkit stores the C ``uint32_t`` as 4 little-endian bytes; mbl-cli stored the C
    literal's text (``b"0"``, mbl-cli's ``_parse_cert_header``). Text is told apart by being
    a C integer literal: as 4 little-endian bytes its last character alone would mean at
    least 0x30000000 KB (about 750 GiB), not a device's memory.

    Raises:
        CredentialsParseError: neither form.
    """
    literal = _C_INT_TEXT.fullmatch(raw)
    if literal:
        digits = literal.group(1).decode("ascii")
        value = int(digits, 16 if digits[:2] in ("0x", "0X") else 8 if digits[:1] == "0" else 10)
        if value < 1 << 32:
            return value
    elif len(raw) == 4:
        return int.from_bytes(raw, "little")
    raise CredentialsParseError(f"{c.MEMORY_TOTAL_KB} is neither a uint32_t nor a C number's text: {raw!r}")


_INFO_STRINGS: Final = (c.MANUFACTURER, c.MODEL_NUMBER, c.DEVICE_TYPE, c.HARDWARE_VERSION)
_CUT_ENDINGS: Final = ("\\", "&", "+", "-", "/", ":", "(", "[", "<", "{")
_BRACKETS: Final = ("()", "[]", "<>", "{}")


def written_by_mbl_cli(dev: Mapping[str, bytes]) -> bool:
    """Whether a stored developer set was parsed and saved by mbl-cli rather than by provkit.

    mbl-cli saved ``MBED_CLOUD_DEV_MEMORY_TOTAL_KB`` as the C literal's text; provkit
    saves the ``uint32_t`` (see :func:`memory_total_kb`).
    """
    raw = dev.get(c.MEMORY_TOTAL_KB, b"")
    return _C_INT_TEXT.fullmatch(raw) is not None


def truncation_warnings(dev: Mapping[str, bytes]) -> list[str]:
    """Warnings for device-information strings that mbl-cli probably cut short.

    mbl-cli 2.0.1 split the C text on ``;`` before reading values and removed every
    space and quote from them (``_parse_cert_header`` in PelionIoT/mbl-cli
    ``mbl/cli/utils/cloudapi.py``): ``"Acme (UK; Ltd)"`` was stored as ``Acme(UK``. The
    lost part cannot be recovered, but a string that is empty, ends in a backslash,
    a connector or an opening bracket, or leaves a bracket open, was most likely cut.
    Only sets that mbl-cli wrote (:func:`written_by_mbl_cli`) are checked.
    """
    if not written_by_mbl_cli(dev):
        return []
    out = []
    for name in _INFO_STRINGS:
        value = dev.get(name)
        if value is None:
            continue
        text = value.decode("utf-8", "replace")
        unbalanced = any(text.count(pair[0]) > text.count(pair[1]) for pair in _BRACKETS)
        if not text or text.endswith(_CUT_ENDINGS) or unbalanced:
            out.append(
                f"{name} is {text!r}, which looks truncated: mbl-cli cut strings at ';' and dropped "
                "spaces and quotes when it saved this set; re-import the original file with "
                "import-credentials"
            )
    return out


def check_update_material(update: Mapping[str, bytes]) -> None:
    """Check that the update certificate set is complete and its certificate parses.

    The update client verifies manifest signatures with ECDSA on P-256 only
    (``fota_verify_signature_prehashed`` in PelionIoT/mbed-cloud-client
    ``fota/fota_crypto.c`` loads ``MBEDTLS_ECP_DP_SECP256R1``), so a certificate with
    another key would provision and then make the device reject every firmware update.

    Raises:
        CredentialsParseError: a variable is missing, the certificate is not X.509, or
            its key is not an EC P-256 key (the message names the key found).
    """
    _need(update, c.UPDATE_REQUIRED, "update certificate")
    cert = _load(c.UPDATE_CERTIFICATE, x509.load_certificate, update[c.UPDATE_CERTIFICATE])
    found = x509.public_key_description(cert)
    if found != "EC secp256r1":
        raise CredentialsParseError(
            f"{c.UPDATE_CERTIFICATE} has an {found} key; update certificates must use "
            "EC P-256 (secp256r1), the only curve the device verifies manifests with",
            hint="make the update certificate with manifest-dev-tool init, which uses P-256",
        )


def check_developer_material(dev: Mapping[str, bytes]) -> None:
    """Check the developer set: complete, certificates parse, the key matches the certificate.

    Raises:
        CredentialsParseError: naming the C variable at fault.
    """
    _need(dev, c.DEV_REQUIRED, "developer certificate")
    memory_total_kb(dev[c.MEMORY_TOTAL_KB])
    _load(c.SERVER_CA_CERTIFICATE, x509.load_certificate, dev[c.SERVER_CA_CERTIFICATE])
    device_cert = _load(c.DEVICE_CERTIFICATE, x509.load_certificate, dev[c.DEVICE_CERTIFICATE])
    key = _load(c.DEVICE_PRIVATE_KEY, keys.load_private_key, dev[c.DEVICE_PRIVATE_KEY])
    if not x509.matches_private_key(device_cert, key):
        raise CredentialsParseError(f"{c.DEVICE_PRIVATE_KEY} does not match {c.DEVICE_CERTIFICATE}")


def build_provisioning_bundle(
    dev: Mapping[str, bytes], update: Mapping[str, bytes], *, current_time: int | None = None
) -> ProvisioningBundle:
    """Build the bundle that provisions a device for Device Management in bootstrap mode.

    Args:
        dev: the developer certificate's variables (:func:`parse_developer_credentials`).
        update: the update certificate's variables (:func:`parse_update_resources`).
        current_time: Unix seconds to set the device clock with (``mbed.CurrentTime``; not
            a stored item), so the device's certificate-validity checks use a real time.

    Raises:
        CredentialsParseError: a variable is missing, a certificate or key is unusable, or
            the key does not match the device certificate.
        BundleEncodeError: a value breaks a KCM rule (e.g. an overlong name).
    """
    # Refuse unusable material on the host, with the C variable's name, before the device
    # answers with a less telling KCM status.
    check_developer_material(dev)
    check_update_material(update)
    params = [ConfigParam(n.USE_BOOTSTRAP, 1)]
    if current_time is not None:
        params.insert(0, ConfigParam(n.CURRENT_TIME, current_time))
    params += [ConfigParam(item, _text(dev, var)) for var, item in CONFIG_STRINGS.items()]
    params += [
        ConfigParam(n.MEMORY_TOTAL_KB, memory_total_kb(dev[c.MEMORY_TOTAL_KB])),
        ConfigParam(n.VENDOR_ID, update[c.VENDOR_ID]),
        ConfigParam(n.CLASS_ID, update[c.CLASS_ID]),
    ]
    bundle = Bundle(
        keys=(KeyItem(n.BOOTSTRAP_DEVICE_PRIVATE_KEY, "ECCPrivate", dev[c.DEVICE_PRIVATE_KEY]),),
        certificates=(
            CertificateItem(
                n.BOOTSTRAP_DEVICE_CERT, dev[c.DEVICE_CERTIFICATE], prkn=n.BOOTSTRAP_DEVICE_PRIVATE_KEY
            ),
            CertificateItem(n.BOOTSTRAP_SERVER_CA_CERT, dev[c.SERVER_CA_CERTIFICATE]),
            CertificateItem(n.UPDATE_AUTH_CERT, update[c.UPDATE_CERTIFICATE]),
        ),
        config_params=tuple(params),
        verify=True,
    )
    endpoint = dev[c.ENDPOINT_NAME].decode("utf-8", "replace")
    return ProvisioningBundle(encode_bundle(bundle), STORED_ITEMS, endpoint)


def status_bundle() -> bytes:
    """A bundle that stores nothing and asks the device to verify its configuration.

    The device answers what ``pelion-provisioning-util --get-pelion-status`` prints:
    the verification status, InfoMessage and warnings.
    """
    return encode_bundle(Bundle(verify=True))


def deliver_bundle(
    bundle: bytes, target: LinkTarget, settings: LinkSettings = DEFAULT_LINK_SETTINGS
) -> DeviceResponseStatus | None:
    """Send ``bundle`` to the device ``target`` names and read its answer (provkit's one flow).

    Returns:
        The device's status, or ``None`` for a target that carries no answers (a file).

    Raises:
        TransportError: the device could not be reached or did not answer.
        ResponseDecodeError, FactoryError: the answer is not a valid response bundle.
    """
    delivery = deliver(OneMessage(FCC_TOKEN, bundle, check_device_response), target, settings)
    if delivery.error is not None:
        raise delivery.error
    return delivery.verdict


def check_device_response(response: bytes) -> DeviceResponseStatus:
    """Decode the device's answer with the factory side's response check.

    Raises:
        ResponseDecodeError, FactoryError: the answer is not a valid response bundle.
    """
    return verify_device_response(response)


def status_json(status: DeviceResponseStatus) -> dict[str, object]:
    """The device's status as printed by the CLI: ``{"status", "message", "warnings"}``."""
    return {
        "status": status.status,
        "message": status.message,
        "warnings": [w.message for w in status.warnings],
    }

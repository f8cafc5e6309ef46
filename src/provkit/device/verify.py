"""``fcc_verify_device_configured_4mbed_cloud()``: is the device ready for Device Management?

Reproduces ``factory-configurator-client/factory-configurator-client/source/
fcc_verification.c`` of PelionIoT/mbed-cloud-client step by step: the same order, the same
first-error-stops rule, the same statuses, prefixes and item names, and warnings in
generation order. Certificates are read as the device's Mbed TLS reads them
(:mod:`provkit.crypto.mbedtls_x509`), URIs as C strings (up to their first NUL byte).
With PAL secure time (``check_ca_identifier``) the bootstrap CA identifier is checked
too (:mod:`provkit.device.trust_ca`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from provkit.codes import SUCCESS_INFO_MESSAGE, FccStatus, FccWarning
from provkit.crypto import mbedtls_pk, mbedtls_x509, x509
from provkit.device import trust_ca
from provkit.device.kcm import ItemType, Kcm
from provkit.errors import CryptoError, DeviceError, ItemNotFoundError, StorageError
from provkit.params import BOOTSTRAP_MODE, LWM2M_MODE, META_DATA_NAMES, ModeNames
from provkit.params import names as n

TEN_YEARS_S: Final = 315_360_000
"""10 × 365 days: below this remaining validity FCC warns."""
FUTURE_TOLERANCE_S: Final = 60
UUID_SIZE: Final = 16


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of device verification.

    Attributes:
        status: ``FccStatus.SUCCESS`` or the first error's status.
        message: the InfoMessage: the success text or ``<prefix><item>``.
        warnings: each warning as ``<prefix><item>``, in generation order.
    """

    status: FccStatus
    message: str
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether verification passed (warnings allowed)."""
        return self.status is FccStatus.SUCCESS

    @property
    def warning_info(self) -> str:
        """The response's ``WarningInfo``: every warning followed by a newline."""
        return "".join(w + "\n" for w in self.warnings)


def _fail(status: FccStatus, item: str) -> DeviceError:
    return DeviceError.of(status, item)


class _Verifier:
    def __init__(self, kcm: Kcm, now: int, check_ca_identifier: bool) -> None:
        self.kcm = kcm
        self.now = now
        self.check_ca_identifier = check_ca_identifier
        self.warnings: list[str] = []

    def warn(self, prefix: FccWarning, item: str) -> None:
        self.warnings.append(prefix.value + item)

    def config(self, name: str) -> bytes | None:
        try:
            return self.kcm.item_get(name, ItemType.CONFIG)
        except ItemNotFoundError:
            return None

    def exists(self, name: str, item_type: ItemType) -> bool:
        return self.kcm.item_exists(name, item_type)

    # -------------------------------------------------------------- steps

    def run(self) -> None:
        self.time_sync()
        bootstrap = self.bootstrap_mode()
        self.general_info()
        for name in META_DATA_NAMES:
            if not self.exists(name, ItemType.CONFIG):
                raise _fail(FccStatus.ITEM_NOT_EXIST, name)
        self.security_objects(
            BOOTSTRAP_MODE if bootstrap else LWM2M_MODE, LWM2M_MODE if bootstrap else BOOTSTRAP_MODE
        )
        self.firmware_update()

    def time_sync(self) -> None:
        if self.now == 0:
            self.warn(FccWarning.ITEM_NOT_SET, n.CURRENT_TIME)
        if not self.config(n.TIMEZONE):
            self.warn(FccWarning.ITEM_NOT_SET, n.TIMEZONE)
        offset = self.config(n.UTC_OFFSET)
        if not offset:
            self.warn(FccWarning.ITEM_NOT_SET, n.UTC_OFFSET)
        elif not _utc_offset_ok(offset):
            raise _fail(FccStatus.UTC_OFFSET_WRONG_FORMAT, n.UTC_OFFSET)

    def bootstrap_mode(self) -> bool:
        raw = self.config(n.USE_BOOTSTRAP)
        # FCC reads into a 4-byte buffer: a longer item is a read failure (25), a shorter one 27.
        if raw is None or len(raw) > 4:
            raise _fail(FccStatus.ITEM_NOT_EXIST, n.USE_BOOTSTRAP)
        if len(raw) != 4:
            raise _fail(FccStatus.WRONG_ITEM_DATA_SIZE, n.USE_BOOTSTRAP)
        value = int.from_bytes(raw, "little")
        if value not in (0, 1):
            raise _fail(FccStatus.BOOTSTRAP_MODE_ERROR, n.USE_BOOTSTRAP)
        if value == 0:
            self.warn(FccWarning.BOOTSTRAP_MODE_FALSE, n.USE_BOOTSTRAP)
        return value == 1

    def general_info(self) -> None:
        endpoint = self.config(n.ENDPOINT_NAME)
        if endpoint is None:
            raise _fail(FccStatus.ITEM_NOT_EXIST, n.ENDPOINT_NAME)
        if not endpoint:
            raise _fail(FccStatus.EMPTY_ITEM, n.ENDPOINT_NAME)

    def security_objects(self, mode: ModeNames, other: ModeNames) -> None:
        lwm2m = mode is LWM2M_MODE
        # a. server CA certificate
        if not self.exists(mode.ca, ItemType.CERTIFICATE):
            raise _fail(FccStatus.ITEM_NOT_EXIST, mode.ca)
        if self.exists(other.ca, ItemType.CERTIFICATE):
            self.warn(FccWarning.REDUNDANT_ITEM, other.ca)
        if not lwm2m and self.check_ca_identifier and not trust_ca.ca_identifier_ok(self.kcm):
            self.warn(FccWarning.CA_IDENTIFIER, mode.ca)
        # b. server URI
        uri_raw = self.config(mode.uri)
        if uri_raw is None:
            raise _fail(FccStatus.ITEM_NOT_EXIST, mode.uri)
        if not uri_raw:
            raise _fail(FccStatus.EMPTY_ITEM, mode.uri)
        if self.exists(other.uri, ItemType.CONFIG):
            self.warn(FccWarning.REDUNDANT_ITEM, other.uri)
        # FCC reads FirstToClaim before it looks at the URI text; its failures carry the URI name.
        first_to_claim = self.first_to_claim(mode.uri)
        # fcc_check_uri_contents: the prefix is compared on the raw bytes, the aid searched
        # in the URI as a C string.
        if not uri_raw.startswith((b"coap://", b"coaps://")):
            raise _fail(FccStatus.URI_WRONG_FORMAT, mode.uri)
        uri = uri_raw.split(b"\0", 1)[0]
        has_aid = _aid(uri) is not None
        if first_to_claim:
            if lwm2m:
                raise _fail(FccStatus.FIRST_TO_CLAIM_NOT_ALLOWED, n.FIRST_TO_CLAIM)
            if has_aid:
                raise _fail(FccStatus.FIRST_TO_CLAIM_NOT_ALLOWED, mode.uri)
        elif not has_aid:
            raise _fail(FccStatus.URI_WRONG_FORMAT, mode.uri)
        # c. device key and certificate
        self.device_credentials(mode, other, uri)

    def first_to_claim(self, uri_name: str) -> bool:
        raw = self.config(n.FIRST_TO_CLAIM)
        if raw is None:
            return False
        # FCC reads it into a 4-byte buffer: a longer item is a KCM read error (15), a
        # shorter one 27; verify_server_uri reports both under the server URI's name.
        if len(raw) > 4:
            raise _fail(FccStatus.KCM_ERROR, uri_name)
        if len(raw) != 4:
            raise _fail(FccStatus.WRONG_ITEM_DATA_SIZE, uri_name)
        return int.from_bytes(raw, "little") == 1

    def device_credentials(self, mode: ModeNames, other: ModeNames, uri: bytes) -> None:
        try:
            key_der = self.kcm.item_get(mode.key, ItemType.PRIVATE_KEY)
        except StorageError as exc:
            raise _fail(exc.kcm_status.fcc_status, mode.key) from exc
        if self.exists(other.key, ItemType.PRIVATE_KEY):
            self.warn(FccWarning.REDUNDANT_ITEM, other.key)
        try:
            ders = self.kcm.cert_chain_get(mode.cert)
            chain = [self.kcm.certificate(der) for der in ders]
        except StorageError as exc:
            raise _fail(exc.kcm_status.fcc_status, mode.cert) from exc
        except CryptoError as exc:
            raise _fail(FccStatus.KCM_CRYPTO_ERROR, mode.cert) from exc
        leaf = chain[0]
        # cs_check_cert_with_priv_handle signs with the key and verifies with the leaf:
        # a key it cannot use fails the same way as one that does not match (34).
        try:
            matches = x509.matches_private_key(leaf, mbedtls_pk.parse_private_key(key_der))
        except CryptoError:
            matches = False
        if not matches:
            raise _fail(FccStatus.CERTIFICATE_PUBLIC_KEY_CORRELATION_ERROR, mode.cert)
        if self.exists(other.cert, ItemType.CERTIFICATE):
            self.warn(FccWarning.REDUNDANT_ITEM, other.cert)
        # pal_x509CertCheckExtendedKeyUsage: no EKU extension, clientAuth or any.
        if not mbedtls_x509.allows_client_auth(leaf):
            raise _fail(FccStatus.INVALID_CERTIFICATE, mode.cert)
        endpoint = self.config(n.ENDPOINT_NAME) or b""
        if self.subject_value(ders[0], "CN", mode.cert) != endpoint:
            raise _fail(FccStatus.INVALID_LWM2M_CN_ATTR, mode.cert)
        if mode is LWM2M_MODE:
            self.ou_matches_aid(ders[0], mode.cert, uri)
        if x509.is_self_signed(leaf):
            self.warn(FccWarning.SELF_SIGNED, mode.cert)
        for cert in chain:
            self.expiry(cert, mode.cert)

    @staticmethod
    def subject_value(der: bytes, short_name: str, cert_name: str) -> bytes:
        """``fcc_get_certificate_attribute``: the first matching attribute, else 11 naming the certificate."""
        try:
            return mbedtls_x509.subject_value(der, short_name)
        except mbedtls_x509.MbedtlsCertError as exc:
            raise _fail(FccStatus.INVALID_CERT_ATTRIBUTE, cert_name) from exc

    def ou_matches_aid(self, der: bytes, cert_name: str, uri: bytes) -> None:
        """``compare_ou_with_aid_server``: the OU must be the whole aid of the LwM2M server URI.

        An aid shorter than the OU is a URI format error (28), any other difference a CN
        attribute error (14): FCC compares the OU with its terminating NUL, so the aid
        must end where the OU does. Both name the device certificate.
        """
        ou = self.subject_value(der, "OU", cert_name)
        aid = _aid(uri)
        if aid is None or len(aid) < len(ou):
            raise _fail(FccStatus.URI_WRONG_FORMAT, cert_name)
        if aid != ou:
            raise _fail(FccStatus.INVALID_LWM2M_CN_ATTR, cert_name)

    def expiry(self, cert: x509.Certificate, name: str) -> None:
        if self.now == 0:
            self.warn(FccWarning.CERT_TIME_VALIDITY, name)
            return
        not_before, not_after = x509.validity(cert)
        if self.now > not_after:
            raise _fail(FccStatus.EXPIRED_CERTIFICATE, name)
        if not_before > self.now + FUTURE_TOLERANCE_S:
            self.warn(FccWarning.CERT_TIME_VALIDITY, name)
        if not_after - self.now < TEN_YEARS_S:
            self.warn(FccWarning.CERT_VALIDITY_LESS_10_YEARS, name)

    def firmware_update(self) -> None:
        try:
            chain = self.kcm.cert_chain_get(n.UPDATE_AUTH_CERT)
        except ItemNotFoundError:
            self.warn(FccWarning.ITEM_NOT_SET, n.UPDATE_AUTH_CERT)
        else:
            for der in chain:
                try:
                    cert = self.kcm.certificate(der)
                except CryptoError as exc:
                    raise _fail(FccStatus.KCM_CRYPTO_ERROR, n.UPDATE_AUTH_CERT) from exc
                self.expiry(cert, n.UPDATE_AUTH_CERT)
        for name in (n.CLASS_ID, n.VENDOR_ID):
            raw = self.config(name)
            if raw is None:
                self.warn(FccWarning.ITEM_NOT_SET, name)
            elif len(raw) != UUID_SIZE:
                raise _fail(FccStatus.WRONG_ITEM_DATA_SIZE, name)


def _utc_offset_ok(raw: bytes) -> bool:
    # FCC checks only positions 0–5: sign, two digits, colon, two digits (no range check).
    if len(raw) < 6:
        return False
    digits = b"0123456789"
    return (
        raw[0:1] in (b"+", b"-")
        and raw[3:4] == b":"
        and all(raw[i : i + 1] in digits and raw[i : i + 1] != b"" for i in (1, 2, 4, 5))
    )


def _aid(uri: bytes) -> bytes | None:
    """The text after the first ``?aid=``, else after the first ``&aid=`` (FCC's strstr order)."""
    for marker in (b"?aid=", b"&aid="):
        index = uri.find(marker)
        if index >= 0:
            return uri[index + len(marker) :]
    return None


def get_bootstrap_mode(kcm: Kcm) -> tuple[bool, VerifyResult]:
    """``fcc_get_bootstrap_mode()`` on its own, as ``fcc_trust_ca_cert_id_set()`` calls it.

    Returns:
        Whether bootstrap mode is on, and the outcome: 25/27/30 naming
        ``mbed.UseBootstrap``, or success with the ``Bootstrap mode not activated`` warning
        in LwM2M mode.
    """
    verifier = _Verifier(kcm, 0, False)
    try:
        use_bootstrap = verifier.bootstrap_mode()
    except DeviceError as failure:
        return False, VerifyResult(failure.fcc_status, failure.message, tuple(verifier.warnings))
    return use_bootstrap, VerifyResult(FccStatus.SUCCESS, SUCCESS_INFO_MESSAGE, tuple(verifier.warnings))


def verify_device(kcm: Kcm, now: Callable[[], int], *, check_ca_identifier: bool = False) -> VerifyResult:
    """Run device verification against the stored items.

    Args:
        kcm: the device storage.
        now: returns the device time in Unix seconds (0 = never set).
        check_ca_identifier: warn when the trusted bootstrap CA identifier is missing or
            stale (a build with PAL secure time).

    Returns:
        The status, InfoMessage and warnings FCC would report.
    """
    verifier = _Verifier(kcm, now(), check_ca_identifier)
    try:
        verifier.run()
    except DeviceError as failure:
        return VerifyResult(failure.fcc_status, failure.message, tuple(verifier.warnings))
    return VerifyResult(FccStatus.SUCCESS, SUCCESS_INFO_MESSAGE, tuple(verifier.warnings))

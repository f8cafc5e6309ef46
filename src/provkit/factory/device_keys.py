"""``externally_supplied`` device keys and certificates, checked by the FCU rules (docs/factory.md).

The device keys folder (API parameter ``device_keys_location``) holds
``<Prefix>DevicePrivateKey.der|.pem`` and ``<Prefix>DeviceCert.der|.pem`` where
``<Prefix>`` is ``Bootstrap`` or ``LwM2M``; a certificate chain must be PEM (leaf first).
An ``entropy.bin`` of 48 bytes there feeds ``entropy-generation-mode: externally_supplied``.

Error codes: 102 key missing, 103 certificate missing, 104 both missing, 240 key file
unusable, 245 certificate file unusable or breaking a rule, 390 not a certificate,
360 / 380 for ``entropy.bin``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provkit.codes import FcuErrorCode
from provkit.crypto import keys, x509
from provkit.errors import ConfigError, CryptoError, DeviceKeysError
from provkit.factory.config import invalid
from provkit.factory.resources import TEN_YEARS, read_file
from provkit.factory.results import WarningInfo

ENTROPY_FILE: Final = "entropy.bin"
ENTROPY_SIZE: Final = 48


@dataclass(frozen=True, slots=True)
class SuppliedKeys:
    """A checked externally supplied key pair.

    Attributes:
        private_key_der: SEC1 DER of the device key.
        chain_ders: DER certificates, device certificate first, trimmed to the chain depth.
        warnings: notes (e.g. validity under 10 years).
    """

    private_key_der: bytes
    chain_ders: tuple[bytes, ...]
    warnings: tuple[WarningInfo, ...]


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in (".der", ".pem"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_supplied_keys(
    folder: Path | None,
    *,
    prefix: str,
    endpoint_name: str,
    account_id: str | None,
    chain_depth: int,
    now: dt.datetime,
) -> SuppliedKeys:
    """Load and check the device key and certificate (chain) from ``folder``.

    Args:
        folder: the device keys location.
        prefix: ``"Bootstrap"`` or ``"LwM2M"``.
        endpoint_name: must equal the certificate's CN.
        account_id: in LwM2M mode, the aid the certificate's OU must equal.
        chain_depth: how many certificates of the chain to send.
        now: the current time.

    Raises:
        DeviceKeysError: 102, 103, 104, 240, 245 or 390.
    """
    label = prefix
    key_path = _find(folder, f"{prefix}DevicePrivateKey") if folder else None
    cert_path = _find(folder, f"{prefix}DeviceCert") if folder else None
    where = f"look in {folder}" if folder else "pass device_keys_location (--device-keys-location)"
    if key_path is None and cert_path is None:
        raise DeviceKeysError.from_code(FcuErrorCode.FAILED_TO_GET_KEY_AND_CERTIFICATE, label, hint=where)
    if key_path is None:
        raise DeviceKeysError.from_code(FcuErrorCode.FAILED_TO_GET_PRIVATE_KEY, label, hint=where)
    if cert_path is None:
        raise DeviceKeysError.from_code(FcuErrorCode.FAILED_TO_GET_CERTIFICATE, label, hint=where)
    key = _load_key(key_path)
    certs = _load_chain(cert_path)
    warnings = _check_certificate(certs, key, cert_path, endpoint_name, account_id, now)
    ders = tuple(x509.certificate_der(cert) for cert in certs[:chain_depth])
    return SuppliedKeys(keys.private_key_der(key), ders, tuple(warnings))


def _load_key(path: Path) -> keys.PrivateKey:
    try:
        key = keys.load_private_key(path.read_bytes())
    except (OSError, CryptoError) as exc:
        raise DeviceKeysError.from_code(
            FcuErrorCode.PRIVATE_KEY_FILE_LOAD_FAILED,
            path,
            hint=f"{exc}; give an unencrypted EC P-256 key in DER or PEM",
        ) from exc
    if not keys.is_p256(key):
        raise DeviceKeysError.from_code(
            FcuErrorCode.PRIVATE_KEY_FILE_LOAD_FAILED, path, hint="the key must be on the NIST P-256 curve"
        )
    return key


def _load_chain(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _cert_error(path, str(exc)) from exc
    try:
        certs = x509.load_certificates(data)
    except CryptoError as exc:
        raise DeviceKeysError.from_code(
            FcuErrorCode.NOT_X509_CERTIFICATE,
            path,
            hint="give a DER certificate, or PEM (a chain must be PEM, device certificate first)",
        ) from exc
    if len(certs) > 5:
        raise _cert_error(path, "a chain holds at most 5 certificates")
    return certs


def _cert_error(path: Path, why: str) -> DeviceKeysError:
    return DeviceKeysError.from_code(FcuErrorCode.CERTIFICATE_FILE_LOAD_FAILED, path, hint=why)


def _check_certificate(
    certs: list[x509.Certificate],
    key: keys.PrivateKey,
    path: Path,
    endpoint_name: str,
    account_id: str | None,
    now: dt.datetime,
) -> list[WarningInfo]:
    leaf = certs[0]
    for cert in certs:
        if not x509.supported_scheme(cert):
            raise _cert_error(path, "every certificate must use a P-256 key and ecdsa-with-SHA256")
    if not keys.keys_match(key.public_key(), x509.certificate_public_key(leaf)):
        raise _cert_error(path, "the certificate does not match the private key")
    if x509.is_self_signed(leaf):
        raise _cert_error(path, "the device certificate must not be self-signed")
    for child, parent in itertools.pairwise(certs):
        if not x509.signed_by(child, parent):
            raise _cert_error(path, "each certificate of the chain must be signed by the next one")
    if len(certs) > 1 and not x509.not_valid_before(certs[1]) < x509.not_valid_before(leaf):
        raise _cert_error(path, "the CA certificate must become valid before the device certificate")
    if x509.not_valid_before(leaf) >= now:
        raise _cert_error(path, "the device certificate is not valid yet")
    if x509.not_valid_after(leaf) <= now:
        raise _cert_error(path, "the device certificate has expired")
    if not x509.has_extended_key_usage(leaf, "clientAuth"):
        raise _cert_error(path, "the device certificate needs ExtendedKeyUsage clientAuth")
    if x509.subject_attribute(leaf, "common-name") != endpoint_name:
        raise _cert_error(path, f"the certificate CN must equal the endpoint name {endpoint_name!r}")
    if account_id is not None and x509.subject_attribute(leaf, "organizational-unit-name") != account_id:
        raise _cert_error(path, f"the certificate OU must equal the aid {account_id!r} of the LwM2M URI")
    if x509.not_valid_after(leaf) - now <= TEN_YEARS:
        # FCU docs, "Connection configuration", "Validations in FCU": Expiration > 10y
        # (FCC itself would only warn).
        expires = x509.not_valid_after(leaf)
        raise _cert_error(
            path, f"the device certificate expires on {expires:%Y-%m-%d}; it must be valid > 10 years"
        )
    return []


def load_entropy(folder: Path | None) -> bytes:
    """Read ``entropy.bin`` (exactly 48 bytes) from the device keys folder.

    Raises:
        ConfigError: 360 when the file is missing, 380 when its size is wrong.
    """
    if folder is None:
        raise invalid(
            "entropy-generation-mode",
            "externally_supplied entropy needs device_keys_location",
            "pass --device-keys-location with an entropy.bin of 48 bytes",
        )
    data = read_file(folder / ENTROPY_FILE)
    if len(data) != ENTROPY_SIZE:
        raise ConfigError(
            FcuErrorCode.VALIDATION_ERROR.format(
                ENTROPY_FILE, f"must be {ENTROPY_SIZE} bytes, not {len(data)}"
            ),
            code=FcuErrorCode.VALIDATION_ERROR,
            hint="write exactly 48 random bytes to entropy.bin",
        )
    return data

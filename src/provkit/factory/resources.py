"""Loading the files ``fcu.yml`` names and turning them into bundle items, once.

The server CA certificate, the update authority certificate and the custom properties
do not change from device to device, so :func:`load_static_material` reads and checks
them once and the bundle builder reuses the result for every device.

Error codes: 360 when a file cannot be read, 390 when a certificate file holds no X.509
certificate, 380 when a value breaks an FCU validation rule.
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
from provkit.factory.config import CustomProperty, FcuConfig, invalid
from provkit.factory.paths import read_regular_file
from provkit.factory.results import WarningInfo
from provkit.wire.bundle import CertificateChainItem, CertificateItem, ConfigParam, KeyItem

TEN_YEARS: Final = dt.timedelta(days=3650)


@dataclass(frozen=True, slots=True)
class StaticMaterial:
    """Bundle items that are the same for every device of a configuration.

    Attributes:
        server_ca_der: the bootstrap or LwM2M server CA certificate (DER).
        update_auth_der: the update authority certificate (DER), if configured.
        keys: custom private/public keys.
        certificates: custom single certificates.
        chains: custom certificate chains.
        params: custom configuration parameters.
        warnings: notes found while checking the files.
    """

    server_ca_der: bytes
    update_auth_der: bytes | None
    keys: tuple[KeyItem, ...]
    certificates: tuple[CertificateItem, ...]
    chains: tuple[CertificateChainItem, ...]
    params: tuple[ConfigParam, ...]
    warnings: tuple[WarningInfo, ...]


def read_file(path: Path) -> bytes:
    """Read ``path`` or raise the FCU 360 error naming it."""
    try:
        return read_regular_file(path)
    except OSError as exc:
        raise ConfigError.from_code(
            FcuErrorCode.FILE_LOAD_FAILED, path, hint=f"{exc.strerror or exc}; check the path in fcu.yml"
        ) from exc
    except ValueError as exc:  # e.g. a NUL byte in the name: no such file can exist
        raise ConfigError.from_code(
            FcuErrorCode.FILE_LOAD_FAILED, repr(str(path)), hint=f"{exc}; check the path in fcu.yml"
        ) from exc


def read_certificates(path: Path) -> list[x509.Certificate]:
    """Read a DER/PEM certificate file (PEM may hold a chain), or raise 360/390."""
    data = read_file(path)
    try:
        return x509.load_certificates(data)
    except CryptoError as exc:
        raise DeviceKeysError.from_code(
            FcuErrorCode.NOT_X509_CERTIFICATE, path, hint="give a DER or PEM X.509 certificate"
        ) from exc


def load_static_material(config: FcuConfig, *, now: dt.datetime) -> StaticMaterial:
    """Read and check every file the configuration names; build the static bundle items.

    Raises:
        ConfigError: 360 for an unreadable file, 380 for a rule violation.
        DeviceKeysError: 390 for a file that is not a certificate.
    """
    code = int(FcuErrorCode.VALIDATION_ERROR)
    warnings = [
        WarningInfo(
            code,
            f"{key}: obsolete (FCC no longer reads mbed.FirmwareIntegrity*), not sent; "
            "use update-auth-certificate-file",
        )
        for key in config.ignored_keys
    ]
    ca_field = (
        "bootstrap-server-ca-certificate-file" if config.use_bootstrap else "lwm2m-server-ca-certificate-file"
    )
    server_ca = read_certificates(config.server_ca_certificate_file)[0]
    if not x509.supported_scheme(server_ca):
        raise invalid(ca_field, "the certificate must use a P-256 key and ecdsa-with-SHA256")
    if x509.not_valid_after(server_ca) <= now:
        raise invalid(ca_field, "the server CA certificate has expired")
    if config.server_crl_file is not None:
        read_file(config.server_crl_file)  # FCC never uses the CRL; only check that it exists
    update_der = None
    if config.update_auth_certificate_file is not None:
        update = read_certificates(config.update_auth_certificate_file)[0]
        _check_update_auth(update, now, warnings)
        update_der = x509.certificate_der(update)
    key_items, certs, chains, params = _custom_items(config.custom_properties)
    return StaticMaterial(
        server_ca_der=x509.certificate_der(server_ca),
        update_auth_der=update_der,
        keys=tuple(key_items),
        certificates=tuple(certs),
        chains=tuple(chains),
        params=tuple(params),
        warnings=tuple(warnings),
    )


def _check_update_auth(cert: x509.Certificate, now: dt.datetime, warnings: list[WarningInfo]) -> None:
    name = "update-auth-certificate-file"
    if not x509.supported_scheme(cert):
        raise invalid(name, "the certificate must use a P-256 key and ecdsa-with-SHA256")
    if not x509.is_self_signed(cert):
        raise invalid(name, "the update authority certificate must be self-signed")
    if x509.not_valid_before(cert) > now:
        raise invalid(name, "the certificate is not valid yet (valid-from is in the future)")
    if x509.not_valid_after(cert) <= now:
        raise invalid(name, "the certificate has expired")
    code = int(FcuErrorCode.VALIDATION_ERROR)
    if x509.not_valid_after(cert) - now < TEN_YEARS:
        warnings.append(WarningInfo(code, f"{name}: the certificate expires in less than 10 years"))
    if not x509.has_extended_key_usage(cert, "codeSigning"):
        warnings.append(WarningInfo(code, f"{name}: the certificate has no codeSigning extended key usage"))


def _custom_items(
    properties: tuple[CustomProperty, ...],
) -> tuple[list[KeyItem], list[CertificateItem], list[CertificateChainItem], list[ConfigParam]]:
    key_items: list[KeyItem] = []
    certs: list[CertificateItem] = []
    chains: list[CertificateChainItem] = []
    params: list[ConfigParam] = []
    for index, prop in enumerate(properties):
        where = f"custom-properties[{index}]"
        data: str | int | bytes | None = prop.data
        if prop.data_file is not None:
            data = read_file(prop.data_file)
        if prop.type == "config":
            params.append(ConfigParam(prop.name, data))
            continue
        raw = data.encode() if isinstance(data, str) else data
        assert isinstance(raw, bytes)
        try:
            if prop.type == "certificate":
                loaded = x509.load_certificates(raw)
                if not all(x509.supported_scheme(cert) for cert in loaded):
                    raise invalid(where, "every certificate must use a P-256 key and ecdsa-with-SHA256")
                ders = tuple(x509.certificate_der(cert) for cert in loaded)
                if len(ders) == 1:
                    certs.append(CertificateItem(prop.name, ders[0]))
                else:
                    _check_chain(loaded, where)
                    chains.append(CertificateChainItem(prop.name, ders))
            elif prop.type == "private-key":
                key_items.append(KeyItem(prop.name, "ECCPrivate", keys.private_key_der(_p256_private(raw))))
            else:
                public = keys.load_public_key(raw)
                if not keys.is_p256(public):
                    raise CryptoError("the key is not P-256")
                key_items.append(KeyItem(prop.name, "ECCPublic", keys.public_key_der(public)))
        except CryptoError as exc:
            if prop.type == "certificate":
                raise DeviceKeysError.from_code(
                    FcuErrorCode.NOT_X509_CERTIFICATE, prop.data_file or f"{where}.data"
                ) from exc
            raise invalid(f"{where}.data", f"not a valid EC {prop.type}: {exc}") from exc
    return key_items, certs, chains, params


def _p256_private(raw: bytes) -> keys.PrivateKey:
    key = keys.load_private_key(raw)
    if not keys.is_p256(key):
        raise CryptoError("the key is not P-256")
    return key


def _check_chain(certs: list[x509.Certificate], where: str) -> None:
    if len(certs) > 5:
        raise invalid(where, "a certificate chain holds at most 5 certificates")
    for child, parent in itertools.pairwise(certs):
        if not x509.signed_by(child, parent):
            raise invalid(where, "each certificate of the chain must be signed by the next one")

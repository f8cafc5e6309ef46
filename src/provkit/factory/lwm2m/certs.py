"""Endpoint certificates for the Security object, from a cert-config JSON as the reference tool reads.

Keys of the cert-config (Anjay's ``tools/provisioning-tool/factory_prov/cert_gen.py``):
``countryName``, ``stateOrProvinceName``, ``localityName``, ``organizationName``,
``organizationUnitName``, ``emailAddress``, ``commonName`` (default: the endpoint name),
``serialNumber`` (the certificate serial, default 1; Anjay 3.1.0's sample
``configs/cert_info.json`` gives 0, which RFC 5280 forbids, so 0 means a random serial),
``validityOffsetInSeconds`` (default 7×365 days), ``digest`` (default ``sha256``), and
either ``RSAKeyLen`` (2048..8192) or ``ellipticCurve`` (default ``secp256r1``).

Fixed against the reference tool: curves come from an explicit table (not the private
``ec._CURVE_TYPES``), times are timezone-aware, notBefore is back-dated a minute so a
device with a slightly slow clock accepts the certificate at once, and nothing is
written to the working directory. Certificates can also be signed by the provkit
factory CA (P-256 keys only, as that CA issues). The keys and certificates themselves
are made by :mod:`provkit.crypto.certconfig`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from provkit.crypto import certconfig, keys, x509
from provkit.errors import CryptoError, Lwm2mError
from provkit.factory.lwm2m.jsonfile import read_json

if TYPE_CHECKING:
    from provkit.factory.ca import FactoryCa


class CertConfigError(Lwm2mError, ValueError):
    """A cert-config or given credentials (``-k``, ``-r``, ``-p``) cannot be used.

    The cert-config is unreadable, invalid or asks for something the signer cannot do, or
    a key or certificate file does not parse or the key does not match the certificate.
    """

    default_code = 5005


DEFAULT_VALIDITY_S: Final = 7 * 365 * 24 * 3600
BACKDATE: Final = dt.timedelta(minutes=1)
MAX_VALIDITY_S: Final = 200 * 365 * 24 * 3600
"""Longest validity accepted (keeps notAfter far inside X.509's year 9999)."""
MAX_SERIAL: Final = (1 << 159) - 1
"""Largest X.509 serial number (RFC 5280: at most 20 octets, positive)."""
RSA_KEY_LENGTHS: Final = (2048, 8192)
"""Smallest and largest ``RSAKeyLen`` (longer keys take minutes to generate)."""

_KNOWN_KEYS: Final = {
    *certconfig.SUBJECT_KEYS,
    "commonName",
    "serialNumber",
    "validityOffsetInSeconds",
    "digest",
    "RSAKeyLen",
    "ellipticCurve",
}


@dataclass(frozen=True, slots=True)
class CertInfo:
    """A parsed cert-config."""

    subject: tuple[tuple[str, str], ...] = ()
    common_name: str | None = None
    serial_number: int = 1
    """0 (Anjay 3.1.0's sample value, which RFC 5280 forbids) means a random serial."""
    validity_s: int = DEFAULT_VALIDITY_S
    digest: str = "sha256"
    rsa_key_len: int | None = None
    curve: str = "secp256r1"

    @classmethod
    def from_mapping(cls, data: object) -> CertInfo:
        """Validate a cert-config mapping.

        Raises:
            CertConfigError: unknown keys, wrong types, unknown curve/digest, RSA with a curve.
        """
        if not isinstance(data, Mapping):
            raise CertConfigError("the cert-config must be a JSON object")
        unknown = sorted(set(data) - _KNOWN_KEYS)
        if unknown:
            raise CertConfigError(f"unknown cert-config keys: {', '.join(map(str, unknown))}")
        subject = []
        for key in certconfig.SUBJECT_KEYS:
            if key in data:
                if not isinstance(data[key], str) or not data[key]:
                    raise CertConfigError(f"{key} must be non-empty text")
                subject.append((key, data[key]))
        common_name = data.get("commonName")
        if common_name is not None and (not isinstance(common_name, str) or not common_name):
            raise CertConfigError("commonName must be non-empty text")
        ints = {}
        for key, low, high in (
            ("serialNumber", 0, MAX_SERIAL),
            ("validityOffsetInSeconds", 1, MAX_VALIDITY_S),
            ("RSAKeyLen", *RSA_KEY_LENGTHS),
        ):
            value = data.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                raise CertConfigError(f"{key} must be an integer within {low}..{high}")
            ints[key] = value
        digest = str(data.get("digest", "sha256")).lower()
        if digest not in certconfig.DIGEST_NAMES:
            raise CertConfigError(f"digest {digest!r} is not one of {', '.join(certconfig.DIGEST_NAMES)}")
        if ints["RSAKeyLen"] is not None and "ellipticCurve" in data:
            raise CertConfigError("give either RSAKeyLen or ellipticCurve, not both")
        curve = str(data.get("ellipticCurve", "secp256r1")).lower()
        if curve not in certconfig.CURVE_NAMES:
            raise CertConfigError(
                f"ellipticCurve {curve!r} is not one of {', '.join(certconfig.CURVE_NAMES)}"
            )
        serial = ints["serialNumber"]
        return cls(
            tuple(subject),
            common_name,
            1 if serial is None else serial,
            ints["validityOffsetInSeconds"] or DEFAULT_VALIDITY_S,
            digest,
            ints["RSAKeyLen"],
            curve,
        )

    @classmethod
    def load(cls, path: str | Path) -> CertInfo:
        """Read a cert-config JSON file.

        Raises:
            CertConfigError: unreadable, not JSON, or invalid.
        """
        return cls.from_mapping(read_json(path, CertConfigError, "cert-config"))


@dataclass(frozen=True, slots=True)
class Credentials:
    """An endpoint's key and certificate, as the Security object takes them.

    Attributes:
        key_der: PKCS#8 DER private key (``/0/x/5``).
        cert_der: DER certificate (``/0/x/3``).
    """

    key_der: bytes
    cert_der: bytes

    @property
    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return x509.certificate_pem([x509.load_certificate(self.cert_der)])


def _common_name(info: CertInfo, endpoint_name: str | None) -> str:
    name = info.common_name or endpoint_name
    if not name:
        raise CertConfigError("no commonName in the cert-config and no endpoint name (-e) to use")
    return name


def generate_self_signed(
    info: CertInfo, endpoint_name: str | None, *, now: dt.datetime | None = None
) -> Credentials:
    """Generate a key and a self-signed certificate (issuer = subject).

    Raises:
        CertConfigError: no common name, or an invalid subject value.
    """
    common_name = _common_name(info, endpoint_name)
    try:
        name = certconfig.subject_name(info.subject, common_name)
    except CryptoError as exc:
        raise CertConfigError(f"invalid subject: {exc}") from exc
    key = certconfig.generate_key(info.curve, info.rsa_key_len)
    start = (now or dt.datetime.now(dt.UTC)) - BACKDATE
    cert_der = certconfig.self_signed_certificate(
        key,
        name,
        serial=info.serial_number or secrets.randbelow(1 << 63) + 1,
        not_before=start,
        not_after=start + BACKDATE + dt.timedelta(seconds=info.validity_s),
        digest=info.digest,
    )
    return Credentials(certconfig.private_key_pkcs8(key), cert_der)


def generate_ca_signed(
    info: CertInfo, endpoint_name: str | None, ca: FactoryCa, *, now: dt.datetime | None = None
) -> Credentials:
    """Generate a P-256 key and a certificate signed by the provkit factory CA.

    The CA's own rules apply: P-256, SHA-256, clientAuth, validity in whole years (the
    cert-config's offset rounded up), random serial.

    Raises:
        CertConfigError: RSA, a curve other than P-256, ``emailAddress`` or an invalid subject
            value was requested, or there is no common name.
    """
    if info.rsa_key_len is not None or not certconfig.is_p256_curve(info.curve):
        raise CertConfigError("the provkit factory CA signs P-256 keys only")
    fields = {
        "country-name": "countryName",
        "state-or-province-name": "stateOrProvinceName",
        "locality-name": "localityName",
        "organization-name": "organizationName",
        "organizational-unit-name": "organizationUnitName",
    }
    given = dict(info.subject)
    dropped = sorted(set(given) - set(fields.values()))
    if dropped:
        # Refused rather than silently left out of the certificate.
        raise CertConfigError(f"the provkit factory CA does not issue {', '.join(dropped)} in the subject")
    subject = {ours: given[theirs] for ours, theirs in fields.items() if theirs in given}
    years = max(1, -(-info.validity_s // (365 * 24 * 3600)))
    key = keys.generate_p256()
    try:
        cert = ca.issue(
            key.public_key(),
            common_name=_common_name(info, endpoint_name),
            subject=subject,
            validity_years=years,
            now=now,
        )
    except CryptoError as exc:
        raise CertConfigError(f"the factory CA refused the subject: {exc}") from exc
    return Credentials(certconfig.private_key_pkcs8(key), x509.certificate_der(cert))


def certificate_der(data: bytes, *, what: str = "certificate") -> bytes:
    """Return a certificate (DER or PEM input) as DER.

    Raises:
        CryptoError: not an X.509 certificate.
    """
    try:
        return x509.certificate_der(x509.load_certificate(data))
    except CryptoError as exc:
        raise CryptoError(f"{what} is not an X.509 certificate in DER or PEM") from exc


def private_key_der(data: bytes) -> bytes:
    """Return a private key (DER or PEM, PKCS#8/SEC1/PKCS#1, unencrypted) as PKCS#8 DER.

    Raises:
        CryptoError: not an unencrypted private key, or neither EC nor RSA.
    """
    return certconfig.normalize_private_key(data)


def key_matches(key_der: bytes, cert_der: bytes) -> bool:
    """Return whether the certificate certifies the private key (EC or RSA)."""
    return certconfig.key_matches_certificate(key_der, x509.load_certificate(cert_der))

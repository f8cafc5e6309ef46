"""Endpoint certificates for the Security object, from a cert-config JSON as the reference tool reads.

Keys of the cert-config (``anjay-lwm2m.md`` §2.5): ``countryName``, ``stateOrProvinceName``,
``localityName``, ``organizationName``, ``organizationUnitName``, ``emailAddress``,
``commonName`` (default: the endpoint name), ``serialNumber`` (the certificate serial,
default 1), ``validityOffsetInSeconds`` (default 7×365 days), ``digest`` (default
``sha256``), and either ``RSAKeyLen`` or ``ellipticCurve`` (default ``secp256r1``).

Fixed against the reference tool: curves come from an explicit table (not the private
``ec._CURVE_TYPES``), times are timezone-aware, notBefore is back-dated a minute so a
device with a slightly slow clock accepts the certificate at once, and nothing is
written to the working directory. Certificates can also be signed by the provkit
factory CA (P-256 keys only, as that CA issues).

This module imports ``cryptography`` directly: the cert-config needs RSA keys, any curve,
any digest and explicit serials, which :mod:`provkit.crypto` (P-256 only) does not offer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provkit.errors import CryptoError, Lwm2mError

if TYPE_CHECKING:
    from provkit.factory.ca import FactoryCa


class CertConfigError(Lwm2mError, ValueError):
    """The cert-config is unreadable or invalid, or asks for something the signer cannot do."""

    default_code = 5005


DEFAULT_VALIDITY_S: Final = 7 * 365 * 24 * 3600
BACKDATE: Final = dt.timedelta(minutes=1)

_SUBJECT: Final = (
    ("countryName", NameOID.COUNTRY_NAME),
    ("stateOrProvinceName", NameOID.STATE_OR_PROVINCE_NAME),
    ("localityName", NameOID.LOCALITY_NAME),
    ("organizationName", NameOID.ORGANIZATION_NAME),
    ("organizationUnitName", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("emailAddress", NameOID.EMAIL_ADDRESS),
)
_CURVES: Final[dict[str, type[ec.EllipticCurve]]] = {
    "secp256r1": ec.SECP256R1,
    "prime256v1": ec.SECP256R1,
    "p-256": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "p-384": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "p-521": ec.SECP521R1,
}
_DIGESTS: Final[dict[str, type[hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512]]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_KNOWN_KEYS: Final = {
    *(key for key, _ in _SUBJECT),
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
        for key, _ in _SUBJECT:
            if key in data:
                if not isinstance(data[key], str) or not data[key]:
                    raise CertConfigError(f"{key} must be non-empty text")
                subject.append((key, data[key]))
        common_name = data.get("commonName")
        if common_name is not None and (not isinstance(common_name, str) or not common_name):
            raise CertConfigError("commonName must be non-empty text")
        ints = {}
        for key, low in (("serialNumber", 1), ("validityOffsetInSeconds", 1), ("RSAKeyLen", 2048)):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise CertConfigError(f"{key} must be an integer of at least {low}")
            ints[key] = value
        digest = str(data.get("digest", "sha256")).lower()
        if digest not in _DIGESTS:
            raise CertConfigError(f"digest {digest!r} is not one of {', '.join(_DIGESTS)}")
        if ints["RSAKeyLen"] is not None and "ellipticCurve" in data:
            raise CertConfigError("give either RSAKeyLen or ellipticCurve, not both")
        curve = str(data.get("ellipticCurve", "secp256r1")).lower()
        if curve not in _CURVES:
            raise CertConfigError(f"ellipticCurve {curve!r} is not one of {', '.join(_CURVES)}")
        return cls(
            tuple(subject),
            common_name,
            ints["serialNumber"] or 1,
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
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CertConfigError(f"cannot read cert-config {path}: {exc}") from exc
        return cls.from_mapping(data)


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
        return x509.load_der_x509_certificate(self.cert_der).public_bytes(serialization.Encoding.PEM)


def _new_key(info: CertInfo) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if info.rsa_key_len is not None:
        return rsa.generate_private_key(public_exponent=65537, key_size=info.rsa_key_len)
    return ec.generate_private_key(_CURVES[info.curve]())


def _name(info: CertInfo, common_name: str) -> x509.Name:
    oids = dict(_SUBJECT)
    try:
        attributes = [x509.NameAttribute(oids[key], value) for key, value in info.subject]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    except ValueError as exc:
        raise CertConfigError(f"invalid subject: {exc}") from exc
    return x509.Name(attributes)


def _common_name(info: CertInfo, endpoint_name: str | None) -> str:
    name = info.common_name or endpoint_name
    if not name:
        raise CertConfigError("no commonName in the cert-config and no endpoint name (-e) to use")
    return name


def _pkcs8(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate_self_signed(
    info: CertInfo, endpoint_name: str | None, *, now: dt.datetime | None = None
) -> Credentials:
    """Generate a key and a self-signed certificate (issuer = subject).

    Raises:
        CertConfigError: no common name, or an invalid subject value.
    """
    key = _new_key(info)
    name = _name(info, _common_name(info, endpoint_name))
    start = (now or dt.datetime.now(dt.UTC)) - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(info.serial_number)
        .not_valid_before(start)
        .not_valid_after(start + BACKDATE + dt.timedelta(seconds=info.validity_s))
        .sign(key, _DIGESTS[info.digest]())
    )
    return Credentials(_pkcs8(key), cert.public_bytes(serialization.Encoding.DER))


def generate_ca_signed(
    info: CertInfo, endpoint_name: str | None, ca: FactoryCa, *, now: dt.datetime | None = None
) -> Credentials:
    """Generate a P-256 key and a certificate signed by the provkit factory CA.

    The CA's own rules apply: P-256, SHA-256, clientAuth, validity in whole years (the
    cert-config's offset rounded up), random serial.

    Raises:
        CertConfigError: RSA or a curve other than P-256 was requested, or no common name.
        CryptoError: the CA refused a subject value.
    """
    if info.rsa_key_len is not None or _CURVES[info.curve] is not ec.SECP256R1:
        raise CertConfigError("the provkit factory CA signs P-256 keys only")
    key = ec.generate_private_key(ec.SECP256R1())
    fields = {
        "country-name": "countryName",
        "state-or-province-name": "stateOrProvinceName",
        "locality-name": "localityName",
        "organization-name": "organizationName",
        "organizational-unit-name": "organizationUnitName",
    }
    given = dict(info.subject)
    subject = {ours: given[theirs] for ours, theirs in fields.items() if theirs in given}
    years = max(1, -(-info.validity_s // (365 * 24 * 3600)))
    cert = ca.issue(
        key.public_key(),
        common_name=_common_name(info, endpoint_name),
        subject=subject,
        validity_years=years,
        now=now,
    )
    return Credentials(_pkcs8(key), cert.public_bytes(serialization.Encoding.DER))


def certificate_der(data: bytes, *, what: str = "certificate") -> bytes:
    """Return a certificate (DER or PEM input) as DER.

    Raises:
        CryptoError: not an X.509 certificate.
    """
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as exc:
        raise CryptoError(f"{what} is not an X.509 certificate in DER or PEM") from exc
    return cert.public_bytes(serialization.Encoding.DER)


def private_key_der(data: bytes) -> bytes:
    """Return a private key (DER or PEM, PKCS#8/SEC1/PKCS#1, unencrypted) as PKCS#8 DER.

    Raises:
        CryptoError: not an unencrypted private key.
    """
    try:
        loader = (
            serialization.load_pem_private_key
            if data.lstrip().startswith(b"-----")
            else serialization.load_der_private_key
        )
        key = loader(data, None)
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"not an unencrypted private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CryptoError("only EC and RSA private keys are supported")
    return _pkcs8(key)

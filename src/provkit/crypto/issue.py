"""Certificate issuing for the factory side: the factory CA and the device certificates it signs.

Everything here follows the FCU CA rules (pelion-fcc.md §8): NIST P-256 keys,
ecdsa-with-SHA256 signatures, a CA certificate with BasicConstraints CA and KeyUsage
digitalSignature + keyCertSign + cRLSign, and device certificates that the device-side
verification accepts (§4): EKU clientAuth, CN = endpoint name, not self-signed.

Time is passed in by the caller so that certificate validity is reproducible in tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.errors import CryptoError

Certificate: TypeAlias = x509.Certificate
"""An X.509 certificate object (opaque to the factory layer)."""

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey
"""An EC private key object (opaque to the factory layer)."""

PublicKey: TypeAlias = ec.EllipticCurvePublicKey
"""An EC public key object."""

CA_VALIDITY_YEARS: Final = 35
"""Validity of the factory CA, as the FCU documentation recommends."""

_YEAR: Final = dt.timedelta(days=365)

# fcu.yml subject keys -> X.509 attribute OIDs, in the order they appear in the DN.
SUBJECT_FIELDS: Final[Mapping[str, x509.ObjectIdentifier]] = {
    "country-name": NameOID.COUNTRY_NAME,
    "state-or-province-name": NameOID.STATE_OR_PROVINCE_NAME,
    "locality-name": NameOID.LOCALITY_NAME,
    "organization-name": NameOID.ORGANIZATION_NAME,
    "organizational-unit-name": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "common-name": NameOID.COMMON_NAME,
}


def build_name(fields: Mapping[str, str]) -> x509.Name:
    """Return an X.509 name from fcu.yml-style subject fields (``common-name``, ``country-name`` …).

    Raises:
        CryptoError: a value is not acceptable in that attribute (e.g. a 3-letter country).
    """
    attributes = []
    for key, oid in SUBJECT_FIELDS.items():
        value = fields.get(key)
        if value:
            try:
                attributes.append(x509.NameAttribute(oid, str(value)))
            except ValueError as exc:
                raise CryptoError(f"invalid {key} {value!r}: {exc}") from exc
    return x509.Name(attributes)


def _ca_extensions(builder: x509.CertificateBuilder, public_key: PublicKey) -> x509.CertificateBuilder:
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )


def create_ca(
    key: PrivateKey,
    subject: Mapping[str, str],
    *,
    now: dt.datetime,
    validity_years: int = CA_VALIDITY_YEARS,
) -> Certificate:
    """Create the self-signed factory CA certificate.

    Args:
        key: the CA's P-256 private key.
        subject: fcu.yml ``certificate-authority`` fields.
        now: the current time (UTC); the CA is valid from one day before it, so that devices
            with a slightly slow clock still accept it.
        validity_years: lifetime in 365-day years (35 by default).

    Raises:
        CryptoError: the key is not P-256 or a subject field is invalid.
    """
    _require_p256(key)
    name = build_name(subject)
    not_before = _whole_seconds(now) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + validity_years * _YEAR)
    )
    return _ca_extensions(builder, key.public_key()).sign(key, hashes.SHA256())


def create_ca_csr(key: PrivateKey, subject: Mapping[str, str]) -> bytes:
    """Return a PEM CSR asking an external CA to make ``key`` an intermediate factory CA."""
    _require_p256(key)
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(build_name(subject))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def issue_device_certificate(
    ca_key: PrivateKey,
    ca_cert: Certificate,
    public_key: PublicKey,
    *,
    common_name: str,
    subject: Mapping[str, str],
    not_before: dt.datetime,
    validity_years: int,
) -> Certificate:
    """Sign one device certificate with the factory CA (see :class:`DeviceCertificateIssuer`).

    Args:
        ca_key: the factory CA private key.
        ca_cert: the factory CA certificate (its subject becomes the issuer).
        public_key: the device's P-256 public key.
        common_name: the endpoint name (the CN the device checks against mbed.EndpointName).
        subject: the other subject fields (fcu.yml ``device-certificate``; ``organizational-unit-name``
            is the account id in LwM2M mode).
        not_before: start of validity; must lie after the CA's own start and before now.
        validity_years: lifetime in 365-day years.

    Raises:
        CryptoError: the key is not P-256 or a subject field is invalid.
    """
    issuer = DeviceCertificateIssuer(ca_key, ca_cert, subject, validity_years)
    return issuer.issue(public_key, common_name, not_before)


class DeviceCertificateIssuer:
    """Signs many device certificates with one CA and one subject template, quickly.

    Everything that is the same for every device (issuer name, subject attributes other
    than the CN, extensions) is built once; :meth:`issue` only adds the CN, key, serial
    and validity. Immutable after construction, so threads may share it.

    Args:
        ca_key: the factory CA private key.
        ca_cert: the factory CA certificate.
        subject: subject fields other than ``common-name`` (fcu.yml ``device-certificate``).
        validity_years: certificate lifetime in 365-day years.

    Raises:
        CryptoError: a subject value is invalid.
    """

    def __init__(
        self, ca_key: PrivateKey, ca_cert: Certificate, subject: Mapping[str, str], validity_years: int
    ) -> None:
        fields = {key: value for key, value in subject.items() if key != "common-name"}
        self._ca_key = ca_key
        self._issuer = ca_cert.subject
        # Pre-built RDNs: only the CN's RDN is made per certificate.
        self._base_rdns = list(build_name(fields).rdns)
        self._lifetime = validity_years * _YEAR
        self._extensions = (
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        )
        self._hash = hashes.SHA256()

    def issue(self, public_key: PublicKey, common_name: str, not_before: dt.datetime) -> Certificate:
        """Sign a certificate for ``public_key`` with CN ``common_name`` valid from ``not_before``.

        Raises:
            CryptoError: the key is not P-256 or the common name is not acceptable.
        """
        _require_p256_public(public_key)
        try:
            cn = x509.NameAttribute(NameOID.COMMON_NAME, common_name)
        except ValueError as exc:
            raise CryptoError(f"invalid common name {common_name!r}: {exc}") from exc
        start = _whole_seconds(not_before)
        builder = x509.CertificateBuilder(
            issuer_name=self._issuer,
            subject_name=x509.Name([*self._base_rdns, x509.RelativeDistinguishedName([cn])]),
            public_key=public_key,
            serial_number=x509.random_serial_number(),
            not_valid_before=start,
            not_valid_after=start + self._lifetime,
        )
        for extension, critical in self._extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(self._ca_key, self._hash)


def certificate_der(cert: Certificate) -> bytes:
    """Return the DER encoding of ``cert``."""
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_pem(certs: Sequence[Certificate]) -> bytes:
    """Return the PEM encoding of ``certs``, concatenated in order."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """Return ``key`` as PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_pem_private_key(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Load a (possibly encrypted) PEM or DER EC private key.

    Raises:
        CryptoError: the data is not a key, the passphrase is wrong/missing, or it is not EC.
    """
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, passphrase)
        else:
            key = serialization.load_der_private_key(data, passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"cannot load private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CryptoError("private key is not an EC key")
    return key


def public_keys_equal(left: PublicKey, right: PublicKey) -> bool:
    """Return whether two public keys are the same key."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return left.public_bytes(serialization.Encoding.DER, fmt) == right.public_bytes(
        serialization.Encoding.DER, fmt
    )


def certificate_public_key(cert: Certificate) -> PublicKey:
    """Return the EC public key of ``cert``.

    Raises:
        CryptoError: the certificate's key is not an EC key.
    """
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CryptoError("certificate key is not an EC key")
    return key


def is_ca_certificate(cert: Certificate) -> bool:
    """Return whether ``cert`` has BasicConstraints CA=true."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def signed_by(cert: Certificate, issuer: Certificate) -> bool:
    """Return whether ``issuer``'s key verifies ``cert``'s signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def not_valid_before(cert: Certificate) -> dt.datetime:
    """Return the certificate's start of validity (aware, UTC)."""
    return cert.not_valid_before_utc


def not_valid_after(cert: Certificate) -> dt.datetime:
    """Return the certificate's end of validity (aware, UTC)."""
    return cert.not_valid_after_utc


def has_extended_key_usage(cert: Certificate, usage: str) -> bool:
    """Return whether ``cert`` lists ``usage`` (``"clientAuth"`` or ``"codeSigning"``) in its EKU."""
    oid = {"clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH, "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING}[
        usage
    ]
    try:
        return oid in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def subject_attribute(cert: Certificate, field: str) -> str | None:
    """Return the first subject attribute ``field`` (an fcu.yml subject key) of ``cert``, if present."""
    values = cert.subject.get_attributes_for_oid(SUBJECT_FIELDS[field])
    if not values:
        return None
    value = values[0].value
    return value.decode() if isinstance(value, bytes) else value


def _require_p256(key: object) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CryptoError("the key must be an EC P-256 (secp256r1) private key")


def _require_p256_public(key: object) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CryptoError("the key must be an EC P-256 (secp256r1) public key")


def _whole_seconds(when: dt.datetime) -> dt.datetime:
    # X.509 times carry whole seconds; truncating here keeps the "CA valid-from < device
    # valid-from" comparison exact after encoding.
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.replace(microsecond=0)


def load_signed_csr(der: bytes) -> tuple[PublicKey, dict[str, str]]:
    """Parse a device CSR, check its self-signature and return its public key and subject fields.

    Args:
        der: a DER (or PEM) PKCS#10 request, as the device returns it in ``Csrs``.

    Returns:
        The requested P-256 public key and the subject as fcu.yml-style fields.

    Raises:
        CryptoError: the data is not a CSR, its signature does not verify, or its key is not P-256.
    """
    try:
        if der.lstrip().startswith(b"-----BEGIN"):
            request = x509.load_pem_x509_csr(der)
        else:
            request = x509.load_der_x509_csr(der)
        valid = request.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"not a certificate signing request: {exc}") from exc
    if not valid:
        raise CryptoError("the CSR signature does not verify")
    key = request.public_key()
    _require_p256_public(key)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    subject: dict[str, str] = {}
    for field, oid in SUBJECT_FIELDS.items():
        values = request.subject.get_attributes_for_oid(oid)
        if values:
            value = values[0].value
            subject[field] = value.decode() if isinstance(value, bytes) else value
    return key, subject

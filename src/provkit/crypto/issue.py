"""Certificate signing: the one place provkit builds certificates, and the factory CA rules on top.

:func:`sign_certificate` builds and signs any certificate. The factory rules follow FCU's
documentation (docs/factory.md, "Sources"): NIST P-256 keys, ecdsa-with-SHA256 signatures,
a CA certificate with BasicConstraints CA and KeyUsage digitalSignature + keyCertSign +
cRLSign, and device certificates that the device-side verification (``fcc_verification.c``,
docs/device.md) accepts: EKU clientAuth, CN = endpoint name, not self-signed.

Time is passed in by the caller so that certificate validity is reproducible in tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.crypto.extensions import Extension, basic_constraints, key_usage
from provkit.crypto.keys import PrivateKey, PublicKey, require_p256
from provkit.crypto.names import Name, build_name, name_attribute
from provkit.crypto.signer import CaSigner, as_signer
from provkit.crypto.x509 import Certificate, certificate_public_key
from provkit.errors import CryptoError

CA_VALIDITY_YEARS: Final = 35
"""Validity of the factory CA, as the FCU documentation recommends."""

_YEAR: Final = dt.timedelta(days=365)

SigningKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""A key that can sign a certificate."""

Digest: TypeAlias = hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512
"""A signature hash algorithm a certificate may use."""

CertifiedKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
"""A public key a certificate can certify."""

CaKey: TypeAlias = PrivateKey | CaSigner
"""The factory CA's key: an in-memory P-256 key, or any :class:`~provkit.crypto.signer.CaSigner`
(a key in a PKCS#11 token signs through it without leaving the token)."""


def sign_certificate(
    *,
    subject: Name,
    issuer: Name,
    public_key: CertifiedKey,
    signing_key: SigningKey,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    extensions: Iterable[Extension] = (),
    digest: Digest | None = None,
) -> Certificate:
    """Build and sign one X.509 v3 certificate.

    Args:
        subject: the certified name.
        issuer: the signer's name (``subject`` for a self-signed certificate).
        public_key: the certified key.
        signing_key: the issuer's private key.
        serial: the serial number.
        not_before: start of validity.
        not_after: end of validity.
        extensions: ``(extension, critical)`` pairs, in order.
        digest: the signature hash (SHA-256 by default).
    """
    builder = x509.CertificateBuilder(issuer, subject, public_key, serial, not_before, not_after)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, digest or hashes.SHA256())


def random_serial() -> int:
    """Return a fresh random certificate serial number (159 bits, positive)."""
    return x509.random_serial_number()


def create_ca(
    key: CaKey,
    subject: Mapping[str, str],
    *,
    now: dt.datetime,
    validity_years: int = CA_VALIDITY_YEARS,
) -> Certificate:
    """Create the self-signed factory CA certificate.

    Args:
        key: the CA's P-256 key (in memory, or a signer such as a token key).
        subject: fcu.yml ``certificate-authority`` fields.
        now: the current time (UTC); the CA is valid from one day before it, so that devices
            with a slightly slow clock still accept it.
        validity_years: lifetime in 365-day years (35 by default).

    Raises:
        CryptoError: the key is not P-256 or a subject field is invalid.
    """
    signer = as_signer(key)
    require_p256(signer.public_key())
    name = build_name(subject)
    public_key = signer.public_key()
    not_before = _whole_seconds(now) - dt.timedelta(days=1)
    extensions = (
        basic_constraints(ca=True),
        (key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    )
    return sign_certificate(
        subject=name,
        issuer=name,
        public_key=public_key,
        signing_key=signer.signing_key(),
        serial=random_serial(),
        not_before=not_before,
        not_after=not_before + validity_years * _YEAR,
        extensions=extensions,
    )


def issue_device_certificate(
    ca_key: CaKey,
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
        ca_key: the factory CA key (in memory or a signer).
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
        ca_key: the factory CA key (in memory or a signer).
        ca_cert: the factory CA certificate.
        subject: subject fields other than ``common-name`` (fcu.yml ``device-certificate``).
        validity_years: certificate lifetime in 365-day years.

    Raises:
        CryptoError: a subject value is invalid.
    """

    def __init__(
        self, ca_key: CaKey, ca_cert: Certificate, subject: Mapping[str, str], validity_years: int
    ) -> None:
        fields = {key: value for key, value in subject.items() if key != "common-name"}
        self._ca_key = as_signer(ca_key).signing_key()
        self._issuer = ca_cert.subject
        # Pre-built RDNs: only the CN's RDN is made per certificate.
        self._base_rdns = list(build_name(fields).rdns)
        self._lifetime = validity_years * _YEAR
        self._extensions = (
            basic_constraints(ca=False),
            (key_usage(digital_signature=True, key_agreement=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        )

    def issue(self, public_key: PublicKey, common_name: str, not_before: dt.datetime) -> Certificate:
        """Sign a certificate for ``public_key`` with CN ``common_name`` valid from ``not_before``.

        Raises:
            CryptoError: the key is not P-256 or the common name is not acceptable.
        """
        require_p256(public_key)
        cn = name_attribute(NameOID.COMMON_NAME, common_name, "CN")
        start = _whole_seconds(not_before)
        return sign_certificate(
            subject=x509.Name([*self._base_rdns, x509.RelativeDistinguishedName([cn])]),
            issuer=self._issuer,
            public_key=public_key,
            signing_key=self._ca_key,
            serial=random_serial(),
            not_before=start,
            not_after=start + self._lifetime,
            extensions=self._extensions,
        )


def subject_alternative_names(addresses: Sequence[str]) -> x509.SubjectAlternativeName:
    """Return a SubjectAlternativeName naming each address: an IP entry for IP literals, DNS otherwise.

    Raises:
        CryptoError: an address is empty or not a usable DNS name.
    """
    names: list[x509.GeneralName] = []
    for address in addresses:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            if not address or any(c.isspace() or c in "/:@" for c in address) or not address.isascii():
                raise CryptoError(f"{address!r} is neither an IP address nor a DNS name") from None
            names.append(x509.DNSName(address))
    if not names:
        raise CryptoError("a server certificate needs at least one address")
    return x509.SubjectAlternativeName(names)


def issue_server_certificate(
    ca_key: PrivateKey,
    ca_cert: Certificate,
    public_key: PublicKey,
    *,
    addresses: Sequence[str],
    now: dt.datetime,
    validity_days: int,
) -> Certificate:
    """Sign a (D)TLS server certificate for ``addresses`` with the server CA.

    The CN is the first address and every address is a subjectAltName: OpenSSL-based
    clients (Anjay's default backend) refuse a server certificate whose SAN does not name
    the address they connect to. KeyUsage digitalSignature (ECDHE-ECDSA signs the key
    exchange) and EKU serverAuth, as Mbed TLS checks them.

    Raises:
        CryptoError: the key is not P-256 or an address is unusable.
    """
    require_p256(public_key)
    san = subject_alternative_names(addresses)
    start = _whole_seconds(now) - dt.timedelta(hours=1)
    return sign_certificate(
        subject=x509.Name([name_attribute(NameOID.COMMON_NAME, addresses[0], "CN")]),
        issuer=ca_cert.subject,
        public_key=public_key,
        signing_key=ca_key,
        serial=random_serial(),
        not_before=start,
        not_after=start + dt.timedelta(days=validity_days),
        extensions=(
            basic_constraints(ca=False),
            (key_usage(digital_signature=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (san, False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(certificate_public_key(ca_cert)), False),
        ),
    )


def _whole_seconds(when: dt.datetime) -> dt.datetime:
    # X.509 times carry whole seconds; truncating here keeps the "CA valid-from < device
    # valid-from" comparison exact after encoding.
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.replace(microsecond=0)

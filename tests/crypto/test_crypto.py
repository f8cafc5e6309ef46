"""Crypto helpers: keys, certificates, DN parsing, CSRs and AES-GCM sealing."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.crypto import aead, csr, keys, names, x509
from provkit.errors import CryptoError


def _cert(
    key: ec.EllipticCurvePrivateKey, issuer_key: ec.EllipticCurvePrivateKey, cn: str, issuer: str
) -> bytes:
    now = dt.datetime.now(dt.UTC)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(
            cx509.Name(
                [
                    cx509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ou1"),
                    cx509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .issuer_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    return x509.certificate_der(cert)


def test_key_round_trip_and_match() -> None:
    """SEC1 and SPKI DER round-trip; keys_match pairs only the right halves."""
    key = keys.generate_p256()
    loaded = keys.load_private_key(keys.private_key_der(key))
    assert keys.private_key_der(loaded) == keys.private_key_der(key)
    public = keys.load_public_key(keys.public_key_der(key))
    assert keys.keys_match(loaded, public)
    assert not keys.keys_match(keys.generate_p256(), public)
    with pytest.raises(CryptoError):
        keys.load_private_key(b"\x30\x01\x00")
    with pytest.raises(keys.UnsupportedCurveError):
        keys.require_p256(ec.generate_private_key(ec.SECP384R1()))


def test_certificate_attributes_and_signatures() -> None:
    """CN, OU, clientAuth, self-signed and signed-by checks read the certificate correctly."""
    ca_key, dev_key = keys.generate_p256(), keys.generate_p256()
    dev = x509.load_certificate(_cert(dev_key, ca_key, "dev", "ca"))
    assert (x509.common_name(dev), x509.organizational_unit(dev)) == ("dev", "ou1")
    assert x509.has_client_auth(dev)
    assert x509.matches_private_key(dev, dev_key)
    assert not x509.is_self_signed(dev)
    ca = x509.load_certificate(_cert(ca_key, ca_key, "ca", "ca"))
    x509.verify_signed_by(dev, ca)
    with pytest.raises(CryptoError):
        x509.verify_signed_by(dev, dev)
    assert len(x509.sha256_fingerprint(dev)) == 32
    with pytest.raises(CryptoError):
        x509.load_certificate(b"\x30\x03\x02\x01\x01")


def test_parse_dn_and_errors() -> None:
    """mbedTLS subjects keep order and escapes; bad components raise CryptoError."""
    name = names.parse_dn("C=GB,ST=Cambs,O=Acme\\, Ltd,OU=ou,CN=dev-1")
    assert name.rfc4514_string() == "CN=dev-1,OU=ou,O=Acme\\, Ltd,ST=Cambs,C=GB"
    for bad in ("", "CN", "XX=1", "C=GBR", "CN=a\\"):
        with pytest.raises(CryptoError):
            names.parse_dn(bad)


def test_build_csr_bitmasks() -> None:
    """KU/EKU bitmasks become the matching CSR extensions and the CSR verifies."""
    key = keys.generate_p256()
    der = csr.build_csr(key, "CN=dev", key_usage=1 | 8, ext_key_usage=2 | 4 | 512)
    request = csr.load_and_verify_csr(der)
    ku = request.extensions.get_extension_for_class(cx509.KeyUsage).value
    assert ku.digital_signature and ku.key_agreement and not ku.key_cert_sign
    eku = list(request.extensions.get_extension_for_class(cx509.ExtendedKeyUsage).value)
    assert eku == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.OCSP_SIGNING,
    ]
    with pytest.raises(CryptoError):
        csr.build_csr(key, "CN=dev", key_usage=64)
    with pytest.raises(CryptoError):
        csr.load_and_verify_csr(der[:-3])


def test_sealer_binds_secret_and_context(tmp_path: Path) -> None:
    """Sealed data opens only with the same secret and associated data; the secret file is 0600."""
    secret = aead.load_or_create_secret(tmp_path / "s.secret")
    assert stat.S_IMODE(os.stat(tmp_path / "s.secret").st_mode) == 0o600
    assert aead.load_or_create_secret(tmp_path / "s.secret") == secret
    sealer = aead.Sealer(secret)
    blob = sealer.seal(b"private", b"PrvKey/a")
    assert b"private" not in blob
    assert sealer.open(blob, b"PrvKey/a") == b"private"
    for wrong in (
        lambda: sealer.open(blob, b"PrvKey/b"),
        lambda: aead.Sealer(bytes(32)).open(blob, b"PrvKey/a"),
        lambda: sealer.open(blob[:-1] + bytes([blob[-1] ^ 1]), b"PrvKey/a"),
        lambda: sealer.open(b"x", b""),
    ):
        with pytest.raises(aead.SealError):
            wrong()
    with pytest.raises(CryptoError):
        aead.Sealer(b"short")

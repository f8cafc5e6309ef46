"""Crypto helpers: keys, certificates, DN parsing, CSRs and AES-GCM sealing."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provkit.crypto import aead, csr, keys, mbedtls_csr, mbedtls_x509, x509
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


def test_device_subject_follows_mbed_tls() -> None:
    """Subjects are read as Mbed TLS reads them: order, escapes, repeats, and what it ignores."""
    der = mbedtls_x509.subject_der(b"C=GB,ST=Cambs,O=Acme\\, Ltd,OU=ou,CN=dev-1")
    assert _rfc4514(der) == "CN=dev-1,OU=ou,O=Acme\\, Ltd,ST=Cambs,C=GB"
    assert _rfc4514(mbedtls_x509.subject_der(b"CN=a,O=x,CN=b")) == "O=x,CN=b"  # first place, last value
    assert mbedtls_x509.subject_der(b"garbage") == b"\x30\x00"
    assert mbedtls_x509.subject_der(b"") == b"\x30\x00"
    assert mbedtls_x509.subject_der(b"C=GBR").endswith(b"\x13\x03GBR")  # no length check
    for bad in (b"XX=1", b"cn=a", b" CN=a", b"CN=a\\", b"O=a\\x", b"CN=" + b"a" * 256):
        with pytest.raises(CryptoError):
            mbedtls_x509.subject_der(bad)


def _rfc4514(name_der: bytes) -> str:
    key = keys.generate_p256()
    from provkit.crypto.mbedtls_csr import with_subject

    plain = cx509.CertificateSigningRequestBuilder().subject_name(cx509.Name([])).sign(key, hashes.SHA256())
    request = csr.load_and_verify_csr(
        with_subject(plain.public_bytes(serialization.Encoding.DER), name_der, key)
    )
    return request.subject.rfc4514_string()


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


_ALG_ABSENT = bytes.fromhex("300a06082a8648ce3d040302")
_ALG_NULL = bytes.fromhex("300c06082a8648ce3d0403020500")


def test_device_csr_carries_mbedtls_null_parameter_and_loads() -> None:
    """Device CSRs are written as Mbed TLS 2.28.2 writes them, which cryptography 44 and later
    refuse on their own (43, which manifest-tool pins, still took them)."""
    import cryptography

    key = keys.generate_p256()
    der = csr.build_csr(key, "CN=dev", key_usage=1, ext_key_usage=4)
    assert _ALG_NULL in der and _ALG_ABSENT not in der
    if int(cryptography.__version__.split(".")[0]) >= 44:
        with pytest.raises(ValueError):
            cx509.load_der_x509_csr(der)
    request = csr.load_and_verify_csr(der)
    assert not request.extensions.get_extension_for_class(cx509.KeyUsage).critical
    public_key, subject = csr.load_signed_csr(der)
    assert keys.keys_match(key, public_key) and subject["common-name"] == "dev"


def test_rfc5758_csr_still_loads_and_null_form_keeps_signature_check() -> None:
    """Both forms load; a changed signed byte fails either way; other algorithms pass through untouched."""
    key = keys.generate_p256()
    plain = (
        cx509.CertificateSigningRequestBuilder()
        .subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "dev")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    assert mbedtls_csr.drop_null_signature_parameter(plain) == plain
    with_null = mbedtls_csr.add_null_signature_parameter(plain)
    assert len(with_null) == len(plain) + 2
    assert mbedtls_csr.drop_null_signature_parameter(with_null) == plain
    csr.load_and_verify_csr(plain)
    csr.load_and_verify_csr(with_null)
    tampered = bytearray(with_null)
    tampered[with_null.index(b"dev")] ^= 0x01
    with pytest.raises(CryptoError, match="does not verify"):
        csr.load_and_verify_csr(bytes(tampered))
    sha384 = (
        cx509.CertificateSigningRequestBuilder()
        .subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "dev")]))
        .sign(key, hashes.SHA384())
        .public_bytes(serialization.Encoding.DER)
    )
    assert mbedtls_csr.add_null_signature_parameter(sha384) == sha384


def test_null_rewrite_leaves_malformed_der_alone() -> None:
    """Truncations and garbage pass through unchanged and are refused by the real parser."""
    key = keys.generate_p256()
    der = csr.build_csr(key, "CN=dev")
    for cut in range(0, len(der), 7):
        piece = der[:cut]
        assert mbedtls_csr.drop_null_signature_parameter(piece) == piece
        with pytest.raises(CryptoError):
            csr.load_and_verify_csr(piece)
    for junk in (b"\x30\x84\xff\xff\xff\xff", b"\x30\x80\x00\x00", b"\x30", b"\x30\x0c" + _ALG_NULL):
        assert mbedtls_csr.drop_null_signature_parameter(junk) == junk

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from provkit.factory.lwm2m.certs import CertConfigError, CertInfo, generate_self_signed

SAMPLE = {
    "countryName": "PL",
    "stateOrProvinceName": "Malopolska",
    "localityName": "Cracow",
    "organizationName": "AVSystem",
    "organizationUnitName": "Embedded",
    "serialNumber": 7,
    "validityOffsetInSeconds": 3600,
    "digest": "sha384",
    "ellipticCurve": "secp384r1",
}


def test_self_signed_follows_cert_config():
    """Subject, serial, validity, digest and curve come from the cert-config; CN defaults to the endpoint."""
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    creds = generate_self_signed(CertInfo.from_mapping(SAMPLE), "urn:dev:1", now=now)
    cert = x509.load_der_x509_certificate(creds.cert_der)
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "CN=urn:dev:1,OU=Embedded,O=AVSystem,L=Cracow,ST=Malopolska,C=PL"
    assert cert.serial_number == 7
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc == now + dt.timedelta(seconds=3600)
    assert cert.signature_hash_algorithm.name == "sha384"
    key = load_der_private_key(creds.key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"


def test_default_is_p256_and_rsa_possible():
    """Without a curve the key is P-256; RSAKeyLen gives an RSA key."""
    key = load_der_private_key(generate_self_signed(CertInfo(), "ep").key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    rsa_key = load_der_private_key(
        generate_self_signed(CertInfo.from_mapping({"RSAKeyLen": 2048}), "ep").key_der, None
    )
    assert isinstance(rsa_key, rsa.RSAPrivateKey)


@pytest.mark.parametrize(
    "data",
    [
        {"ellipticCurve": "curve25519"},
        {"digest": "md5"},
        {"RSAKeyLen": 2048, "ellipticCurve": "secp256r1"},
        {"serialNumber": "1"},
        {"bogus": 1},
        [],
    ],
)
def test_bad_cert_config(data):
    """Unknown curves, digests, keys and wrong types are clear errors."""
    with pytest.raises(CertConfigError):
        CertInfo.from_mapping(data)


def test_no_common_name():
    """Without commonName and endpoint name there is nothing to certify."""
    with pytest.raises(CertConfigError, match="commonName"):
        generate_self_signed(CertInfo(), None)

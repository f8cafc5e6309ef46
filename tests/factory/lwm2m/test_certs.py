from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from provkit.factory.lwm2m.certs import CertConfigError, CertInfo, generate_self_signed

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors" / "lwm2m"

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


def test_anjay_3_1_0_cert_config_sample():
    """Anjay 3.1.0's sample cert-config (RSA 4096, sha512, serialNumber 0) passes; 0 is a random serial."""
    info = CertInfo.load(VECTORS_DIR / "cert_info_anjay_3_1_0.json")
    assert (info.rsa_key_len, info.digest, info.serial_number) == (4096, "sha512", 0)
    cert = x509.load_der_x509_certificate(generate_self_signed(info, "urn:ignored").cert_der)
    assert cert.subject.rfc4514_string() == (
        "CN=Sample Cert,OU=Embedded,O=AVSystem,L=Cracow,ST=Malopolska,C=PL"
    )
    assert cert.serial_number > 0 and cert.signature_hash_algorithm.name == "sha512"
    assert cert.public_key().key_size == 4096  # type: ignore[union-attr]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(seconds=220752000 + 60)


@pytest.mark.parametrize(
    "data",
    [
        {"serialNumber": 1 << 159},
        {"serialNumber": -1},
        {"validityOffsetInSeconds": 10**15},
        {"validityOffsetInSeconds": 0},
        {"RSAKeyLen": 1 << 20},
        {"RSAKeyLen": 1024},
    ],
)
def test_out_of_range_numbers_are_refused(data):
    """Serials beyond 20 octets, validities past year 9999 and huge RSA keys are refused up front."""
    with pytest.raises(CertConfigError, match="within"):
        CertInfo.from_mapping(data)


def test_factory_ca_signed(make_home):
    """With the provkit factory CA the certificate is issued by it (P-256); other curves are refused."""
    from provkit.factory.lwm2m.certs import generate_ca_signed

    ca = make_home().factory_ca
    creds = generate_ca_signed(CertInfo.from_mapping({"organizationName": "provkit"}), "urn:dev:ca", ca)
    cert = x509.load_der_x509_certificate(creds.cert_der)
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "urn:dev:ca"
    key = load_der_private_key(creds.key_der, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    with pytest.raises(CertConfigError, match="P-256"):
        generate_ca_signed(CertInfo.from_mapping({"ellipticCurve": "secp384r1"}), "ep", ca)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"emailAddress": "a@b.c"}, "does not issue emailAddress"),
        ({"countryName": "POL"}, "refused the subject"),
        ({"RSAKeyLen": 2048}, "P-256"),
    ],
)
def test_factory_ca_refusals(make_home, data, reason):
    """What the factory CA cannot put in a certificate is a CertConfigError, not a silent omission."""
    from provkit.factory.lwm2m.certs import generate_ca_signed

    ca = make_home().factory_ca
    with pytest.raises(CertConfigError, match=reason):
        generate_ca_signed(CertInfo.from_mapping(data), "ep", ca)


def test_factory_ca_long_validity(make_home):
    """The longest cert-config validity still gives a certificate (whole years, rounded up)."""
    from provkit.factory.lwm2m.certs import MAX_VALIDITY_S, generate_ca_signed

    ca = make_home().factory_ca
    info = CertInfo.from_mapping({"validityOffsetInSeconds": MAX_VALIDITY_S})
    cert = x509.load_der_x509_certificate(generate_ca_signed(info, "ep", ca).cert_der)
    assert cert.not_valid_after_utc.year >= dt.datetime.now(dt.UTC).year + 199

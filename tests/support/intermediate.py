"""An outside root CA signing provkit's intermediate-CA CSR (``setup-ca-as-intermediate``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provkit.crypto import issue
from provkit.crypto.x509 import certificate_pem


@dataclass(frozen=True)
class SignedIntermediate:
    """The signed factory CA certificate, the root that signed it, and both as a PEM chain."""

    certificate: x509.Certificate
    root: x509.Certificate
    chain_pem: bytes


def sign_intermediate(csr_pem: bytes, *, days: int = 3650, serial: int = 9) -> SignedIntermediate:
    """Sign ``keystore/fcu.csr`` with a fresh root CA, as the factory's own PKI would.

    Both certificates start in the past (root 3 days, intermediate 2 days), so device
    certificates issued now satisfy FCC's "CA valid-from < device valid-from" rule.
    """
    now = dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = issue.create_ca(root_key, {"common-name": "Root"}, now=now - dt.timedelta(days=3))
    csr = x509.load_pem_x509_csr(csr_pem)
    signed = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(root.subject)
        .public_key(csr.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return SignedIntermediate(signed, root, certificate_pem([signed, root]))

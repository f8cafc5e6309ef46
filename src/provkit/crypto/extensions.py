"""X.509 extensions shared by the certificates and requests provkit signs.

FCC's key usage bitmask (``kcm_csr_key_usage_e`` in KCM's ``kcm_defs.h``) names four
bits; certificates also need cRLSign (the factory CA) and BasicConstraints, so the
extensions are built here from named flags and each caller states only the flags it sets.
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography import x509

Extension: TypeAlias = tuple[x509.ExtensionType, bool]
"""An extension value and whether it is critical."""


def key_usage(
    *,
    digital_signature: bool = False,
    non_repudiation: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """Return a KeyUsage extension with the given bits set (the encipherment bits are never used)."""
    # KeyUsage's positional order: digitalSignature, contentCommitment, keyEncipherment,
    # dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly.
    return x509.KeyUsage(
        digital_signature, non_repudiation, False, False, key_agreement, key_cert_sign, crl_sign, False, False
    )


def basic_constraints(*, ca: bool) -> Extension:
    """Return the critical BasicConstraints extension, without a path length limit."""
    return x509.BasicConstraints(ca=ca, path_length=None), True

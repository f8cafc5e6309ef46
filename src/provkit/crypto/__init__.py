"""Cryptography helpers: the only provkit package that imports ``cryptography``.

Each job has one function here, used by the device side, the factory side and LwM2M:

* :mod:`provkit.crypto.keys` — EC P-256 keys: generate, load (DER/PEM, encrypted), encode, compare.
* :mod:`provkit.crypto.names` — distinguished names from mbedTLS text or fcu.yml fields.
* :mod:`provkit.crypto.x509` — certificate loading and encoding, chain signatures,
  fingerprints and the attributes FCC and FCU check.
* :mod:`provkit.crypto.extensions` — the X.509 extensions shared by certificates and requests.
* :mod:`provkit.crypto.csr` — PKCS#10 requests: built (device, factory CA) and verified.
* :mod:`provkit.crypto.signer` — the factory CA's signing key: a key file, or a key in a token.
* :mod:`provkit.crypto.hsm` — PKCS#11 (RFC 7512 URIs, sessions, token keys); the only user of ``pkcs11``.
* :mod:`provkit.crypto.issue` — building and signing certificates; the factory CA rules.
* :mod:`provkit.crypto.certconfig` — LwM2M cert-config keys (RSA, any curve) and self-signed certificates.
* :mod:`provkit.crypto.aead` — AES-GCM sealing of secrets at rest.
"""

__all__: list[str] = []
"""Nothing at the package level: its modules are the API (named above)."""

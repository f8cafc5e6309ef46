"""Cryptography helpers: the only provkit package that imports ``cryptography``.

* :mod:`provkit.crypto.keys` — EC P-256 keys in the DER forms KCM stores.
* :mod:`provkit.crypto.x509` — certificate parsing, chain signatures and the attributes
  FCC verification looks at.
* :mod:`provkit.crypto.csr` — PKCS#10 requests built on the device for ``CsrReqs``.
* :mod:`provkit.crypto.aead` — AES-GCM sealing of secrets at rest.
* :mod:`provkit.crypto.issue` — factory-side CA and device certificate issuing.
"""

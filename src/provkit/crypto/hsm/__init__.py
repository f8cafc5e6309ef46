"""The factory CA key in a PKCS#11 token (an HSM, a USB token, SoftHSM2), through ``python-pkcs11``.

* :mod:`provkit.crypto.hsm.uri` — RFC 7512 ``pkcs11:`` URIs naming module, token and key.
* :mod:`provkit.crypto.hsm.token` — module loading (fork-aware), token lookup, PIN, session pools.
* :mod:`provkit.crypto.hsm.signer` — :class:`~provkit.crypto.hsm.signer.TokenSigner` and key generation.

Only this package imports ``pkcs11``.
"""

__all__: list[str] = []
"""Nothing at the package level: its modules are the API (named above)."""

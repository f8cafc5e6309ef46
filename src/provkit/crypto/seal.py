"""Sealing secrets to a public key (ECIES on P-256), for secrets one party writes and another reads.

A factory station records the PSK it provisioned into a device; only the LwM2M server
must ever read it back. The station therefore seals the key to the server's sealing
public key, which it finds in the registry, and needs no secret of its own: an ephemeral
P-256 key agrees a secret with the server key (ECDH), HKDF-SHA256 turns it into an
AES-256-GCM key, and the associated data binds the blob to the row it is stored in.

Blob layout: ``version (1) || ephemeral public key (65, uncompressed) || nonce (12) ||
ciphertext+tag``.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from provkit.crypto.aead import SealError
from provkit.crypto.keys import PrivateKey, load_public_key, public_key_der, require_p256

_VERSION: Final = b"\x01"
_POINT_SIZE: Final = 65
_NONCE_SIZE: Final = 12
_INFO: Final = b"provkit sealed-to-server v1"


def key_id(public_key_der: bytes) -> str:
    """Return the id of a sealing key: SHA-256 of its SubjectPublicKeyInfo DER, hex."""
    return hashlib.sha256(public_key_der).hexdigest()


def private_key_id(key: PrivateKey) -> str:
    """Return the id of the public half of ``key`` (see :func:`key_id`)."""
    return key_id(public_key_der(key))


def _derive(shared: bytes, ephemeral: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral, info=_INFO).derive(shared)
    return AESGCM(key)


def seal_to(public_key_der: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt ``plaintext`` so that only the holder of the private key can read it.

    Raises:
        CryptoError: ``public_key_der`` is not a P-256 public key.
    """
    recipient = load_public_key(public_key_der)
    require_p256(recipient)
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    point = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    aead = _derive(ephemeral.exchange(ec.ECDH(), recipient), point)
    nonce = os.urandom(_NONCE_SIZE)
    return _VERSION + point + nonce + aead.encrypt(nonce, plaintext, associated)


def unseal(key: PrivateKey, blob: bytes, associated: bytes) -> bytes:
    """Return the plaintext of a blob made by :func:`seal_to` for ``key``'s public half.

    Raises:
        SealError: another key, other associated data, or altered bytes.
    """
    head = 1 + _POINT_SIZE + _NONCE_SIZE
    if len(blob) < head + 16 or blob[:1] != _VERSION:
        raise SealError("sealed secret is truncated or has an unknown version")
    point = blob[1 : 1 + _POINT_SIZE]
    try:
        ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise SealError("sealed secret carries no valid P-256 point") from exc
    aead = _derive(key.exchange(ec.ECDH(), ephemeral), point)
    try:
        return aead.decrypt(blob[1 + _POINT_SIZE : head], blob[head:], associated)
    except InvalidTag as exc:
        raise SealError("sealed secret does not open with this server key") from exc

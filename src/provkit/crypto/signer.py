"""The factory CA's signing key, wherever it lives: a key file in memory or a key in an HSM.

:class:`CaSigner` is the one abstraction every certificate and CSR provkit signs with the
factory CA goes through (:mod:`provkit.crypto.issue`, :mod:`provkit.crypto.csr`). Two
kinds implement it:

* :class:`FileSigner` — the P-256 key of ``keystore/fcu_key.pem``, loaded into memory;
* :class:`provkit.crypto.hsm.signer.TokenSigner` — a key inside a PKCS#11 token, which
  never leaves it: only SHA-256 digests go in and ECDSA signatures come out.

``cryptography``'s certificate and CSR builders sign with a private-key object. For a key
they cannot hold, they accept any implementation of ``EllipticCurvePrivateKey``: the
builder encodes the to-be-signed structure, calls the key's ``sign(data, ECDSA(SHA256))``
and assembles the result around the DER signature it gets back (the "custom signer" the
``cryptography`` maintainers recommend for HSM and KMS keys, pyca/cryptography#11616).
:class:`DelegatedKey` is that object: it turns the builder's call into
:meth:`CaSigner.sign_digest` and the raw ``r || s`` the token answers into DER. A signer
whose signatures come from outside this process checks each one against its public key
(:meth:`CaSigner.check_signature`), so a certificate that would not verify is never issued.
"""

from __future__ import annotations

import abc
import hashlib
from typing import Any, Final, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from provkit.crypto.keys import PrivateKey, PublicKey, public_key_der, require_p256
from provkit.errors import CryptoError

P256_ORDER_BYTES: Final = 32
"""Length of r and of s in a P-256 signature."""

Buffer = bytes | bytearray | memoryview
"""What ``sign`` takes, as cryptography types it (``cryptography.utils.Buffer`` from 44 on;
cryptography 43, which manifest-tool 2.6.2 pins in the same environment, lacks the name)."""


class SignatureMismatchError(CryptoError):
    """A signature made by the CA key does not verify under the CA's public key."""


class CaSigner(abc.ABC):
    """A P-256 key that makes the factory CA's ecdsa-with-SHA256 signatures.

    Thread-safe: a process may sign with one signer from many threads.
    """

    @abc.abstractmethod
    def public_key(self) -> PublicKey:
        """The CA's public key."""

    @property
    @abc.abstractmethod
    def key_id(self) -> str:
        """What the registry records as the signing key.

        ``sha256:<hex>`` (SHA-256 of the public key's SubjectPublicKeyInfo) for a key file,
        the key's PKCS#11 URI (token serial and label, object label and id) for a token key.
        """

    @abc.abstractmethod
    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        """The object ``cryptography``'s builders sign with."""

    @abc.abstractmethod
    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 ``digest``; return the DER ``ECDSA-Sig-Value``."""

    def check_signature(self, signature: bytes, data: bytes) -> None:  # noqa: B027 - see below
        """Make sure ``signature`` over ``data`` verifies under :meth:`public_key`.

        The base class trusts signatures made in this process by ``cryptography``; signers
        whose signatures come from elsewhere override this with a real check.

        Raises:
            SignatureMismatchError: it does not verify.
        """

    def close(self) -> None:  # noqa: B027 - most signers hold nothing to release
        """Release what the signer holds (sessions); it must not be used afterwards."""


def as_signer(key: PrivateKey | CaSigner) -> CaSigner:
    """``key`` as a signer: a :class:`CaSigner` as it is, an in-memory key as a :class:`FileSigner`.

    Raises:
        CryptoError: an in-memory key that is not on P-256.
    """
    return key if isinstance(key, CaSigner) else FileSigner(key)


def key_fingerprint(key: PrivateKey | PublicKey) -> str:
    """``sha256:`` and the hex SHA-256 of the SubjectPublicKeyInfo DER of ``key``."""
    return "sha256:" + hashlib.sha256(public_key_der(key)).hexdigest()


def verify_signature(public_key: PublicKey, signature: bytes, data: bytes) -> None:
    """Check an ecdsa-with-SHA256 ``signature`` over ``data``.

    Raises:
        SignatureMismatchError: it does not verify.
    """
    try:
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureMismatchError("the CA key made a signature its public key does not verify") from exc


def verify_digest_signature(public_key: PublicKey, signature: bytes, digest: bytes) -> None:
    """Check an ECDSA ``signature`` over a SHA-256 ``digest``.

    Raises:
        SignatureMismatchError: it does not verify.
    """
    try:
        public_key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature as exc:
        raise SignatureMismatchError("the CA key made a signature its public key does not verify") from exc


def raw_to_der_signature(raw: bytes) -> bytes:
    """Convert a PKCS#11 ``CKM_ECDSA`` signature (``r || s``, 64 bytes for P-256) to DER.

    Raises:
        SignatureMismatchError: the length is not that of a P-256 signature.
    """
    if len(raw) != 2 * P256_ORDER_BYTES:
        raise SignatureMismatchError(f"the token returned a {len(raw)}-byte signature, not 64 bytes")
    r = int.from_bytes(raw[:P256_ORDER_BYTES], "big")
    s = int.from_bytes(raw[P256_ORDER_BYTES:], "big")
    return utils.encode_dss_signature(r, s)


class FileSigner(CaSigner):
    """The CA key loaded from a file (``keystore/fcu_key.pem``).

    Raises:
        CryptoError: the key is not on P-256.
    """

    def __init__(self, key: PrivateKey) -> None:
        require_p256(key)
        self._key = key
        self._key_id = key_fingerprint(key)

    def public_key(self) -> PublicKey:
        """The CA's public key."""
        return self._key.public_key()

    @property
    def key_id(self) -> str:
        """``sha256:`` and the hex SHA-256 of the public key's SubjectPublicKeyInfo."""
        return self._key_id

    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        """The key itself: ``cryptography`` signs with it directly."""
        return self._key

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest; return the DER signature."""
        return self._key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


class DelegatedKey(ec.EllipticCurvePrivateKey):
    """A P-256 private-key object whose signatures are made by a :class:`CaSigner`.

    Only what a certificate or CSR builder needs works: :meth:`sign` with ECDSA over
    SHA-256, :meth:`public_key`, :attr:`curve`, :attr:`key_size`. The private value is out
    of reach by design: exporting it or using it for key agreement raises ``TypeError``.
    """

    def __init__(self, signer: CaSigner) -> None:
        self._signer = signer

    @property
    def signer(self) -> CaSigner:
        """The signer that makes this key's signatures."""
        return self._signer

    def sign(
        self,
        data: Buffer,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        """Sign ``data`` (hashed here with SHA-256; the token signs the digest).

        Raises:
            TypeError: anything but ECDSA with SHA-256 was asked for.
        """
        algorithm: Any = signature_algorithm
        if not isinstance(algorithm, ec.ECDSA) or not isinstance(algorithm.algorithm, hashes.SHA256):
            raise TypeError("the factory CA key signs ECDSA with SHA-256 only")
        signature = self._signer.sign_digest(hashlib.sha256(bytes(data)).digest())
        self._signer.check_signature(signature, bytes(data))
        return signature

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The signer's public key."""
        return self._signer.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        """NIST P-256."""
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        """256."""
        return 256

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> NoReturn:
        """Refused: the CA key only signs."""
        raise TypeError("the factory CA key is for signing only")

    def private_numbers(self) -> NoReturn:
        """Refused: the private value never leaves its store."""
        raise TypeError("the factory CA private key cannot be exported")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> NoReturn:
        """Refused: the private value never leaves its store."""
        raise TypeError("the factory CA private key cannot be exported")

    def __copy__(self) -> DelegatedKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> DelegatedKey:
        return self

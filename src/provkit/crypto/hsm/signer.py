"""The factory CA key inside a PKCS#11 token: finding it, generating it, signing with it.

:class:`TokenSigner` is the :class:`~provkit.crypto.signer.CaSigner` of a token key. It
signs a SHA-256 digest with ``CKM_ECDSA`` (supported by every EC-capable token, unlike the
hash-and-sign mechanisms), converts the raw ``r || s`` answer to DER and checks it under
the key's public key before anything is built around it.

A key is usable when exactly one private-key object matches the URI, it is an EC key on
P-256 that may sign, and the token keeps it sensitive (``CKA_SENSITIVE``: the private
value can never be read). :func:`generate_token_key` creates such a key: sensitive, not
extractable (``CKA_EXTRACTABLE`` false, so not even wrapped export), with its public key
next to it under the same label and id.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.types import SignMixin
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from provkit.codes import FcuErrorCode
from provkit.crypto.hsm.token import (
    LIBRARY_LOCK,
    PooledSession,
    SessionPool,
    TokenKeyRef,
    close_quietly,
    discard,
    pool_for,
    token_failure,
    token_serial,
)
from provkit.crypto.hsm.uri import Pkcs11Uri, Pkcs11UriError
from provkit.crypto.keys import PublicKey, is_p256, load_public_key
from provkit.crypto.signer import (
    CaSigner,
    DelegatedKey,
    SignatureMismatchError,
    raw_to_der_signature,
    verify_digest_signature,
    verify_signature,
)
from provkit.errors import CryptoError, HsmError

P256_PARAMS: Final = encode_named_curve_parameters("secp256r1")
"""``CKA_EC_PARAMS`` of a P-256 key: the DER OID 1.2.840.10045.3.1.7."""

_ID_BYTES: Final = 8
"""Length of the random ``CKA_ID`` given to a generated key whose URI names none."""


def _object_template(uri: Pkcs11Uri, object_class: ObjectClass) -> dict[Attribute, Any]:
    template: dict[Attribute, Any] = {Attribute.CLASS: object_class}
    if uri.object is not None:
        template[Attribute.LABEL] = uri.object
    if uri.id is not None:
        template[Attribute.ID] = uri.id
    return template


def _require_key_uri(ref: TokenKeyRef) -> None:
    if not ref.uri.names_object:
        raise Pkcs11UriError.from_code(
            FcuErrorCode.HSM_URI_INVALID,
            repr(ref.label),
            "it names a token but no key",
            hint="add object=<key label> (or id=<hex>) to the URI",
        )
    if ref.uri.type not in (None, "private"):
        raise Pkcs11UriError.from_code(
            FcuErrorCode.HSM_URI_INVALID,
            repr(ref.label),
            f"type={ref.uri.type} does not name a private key",
            hint="use type=private or leave type out",
        )


def _unusable(ref: TokenKeyRef, why: str, hint: str) -> HsmError:
    return HsmError.from_code(FcuErrorCode.HSM_KEY_UNUSABLE, ref.label, why, hint=hint)


class TokenSigner(CaSigner):
    """Signs with a P-256 private key held in a PKCS#11 token.

    Opening checks the key and makes one test signature, so a wrong PIN, a missing or
    unsuitable key, or a public key object that belongs to another key fails here rather
    than in the middle of a batch.

    Args:
        ref: the key's URI, module and PIN.

    Raises:
        HsmError: 400 module, 401 token, 402/403 PIN, 404 no such key, 405 unsuitable key,
            406 token failure, 407 the URI names no private key.
    """

    def __init__(self, ref: TokenKeyRef) -> None:
        _require_key_uri(ref)
        self._ref = ref
        self._handle_key = str(ref.uri.without_query())
        pool = pool_for(ref)
        try:
            with pool.session() as entry:
                key = self._find(entry)
                self._check_key(key)
                self._public = self._public_key(entry.session, key)
                ident = key[Attribute.ID]
                label = key[Attribute.LABEL]
        except p11e.PKCS11Error as exc:
            raise token_failure(exc, ref.label) from exc
        token = pool.token
        named = Pkcs11Uri(token=token.label, serial=token_serial(token), type="private")
        self._key_id = str(named.replace(object=label or None, id=ident or None))
        probe = secrets.token_bytes(32)
        try:
            verify_digest_signature(self._public, self.sign_digest(probe), probe)
        except SignatureMismatchError as exc:
            raise _unusable(
                ref,
                "its public key object does not verify its signatures",
                "the public key stored under this label/id belongs to another key; fix the token",
            ) from exc

    @property
    def ref(self) -> TokenKeyRef:
        """Where the key is."""
        return self._ref

    @property
    def key_id(self) -> str:
        """The key's URI: token label and serial, object label and id (no module, no PIN)."""
        return self._key_id

    def public_key(self) -> PublicKey:
        """The key's public half, read from the token."""
        return self._public

    def signing_key(self) -> DelegatedKey:
        """A private-key object for ``cryptography``'s builders, signing through the token."""
        return DelegatedKey(self)

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest in the token (``CKM_ECDSA``); return the DER signature.

        Raises:
            HsmError: 402–406 when the token refuses or is gone.
        """
        pool = pool_for(self._ref)
        try:
            with pool.session() as entry:
                raw = self._find(entry).sign(digest, mechanism=Mechanism.ECDSA)
        except p11e.PKCS11Error as exc:
            discard(self._ref)  # a token that comes back is found afresh
            raise token_failure(exc, self._ref.label) from exc
        try:
            return raw_to_der_signature(bytes(raw))
        except SignatureMismatchError as exc:
            raise token_failure(p11e.DeviceError(str(exc)), self._ref.label) from exc

    def check_signature(self, signature: bytes, data: bytes) -> None:
        """Verify a signature the token made over ``data`` under the key's public key.

        Raises:
            SignatureMismatchError: it does not verify.
        """
        verify_signature(self._public, signature, data)

    # ---------------------------------------------------------------- lookup

    def _find(self, entry: PooledSession) -> SignMixin:
        key = entry.handles.get(self._handle_key)
        if key is None:
            template = _object_template(self._ref.uri, ObjectClass.PRIVATE_KEY)
            matches = list(entry.session.get_objects(template))
            if not matches:
                raise HsmError.from_code(
                    FcuErrorCode.HSM_KEY_NOT_FOUND,
                    self._ref.label,
                    hint="check object= and id= in the URI, or run 'provkit setup' to generate the key",
                )
            if len(matches) > 1:
                raise _unusable(
                    self._ref,
                    f"{len(matches)} private keys match",
                    "add id=<hex> to the URI so it names one key",
                )
            key = matches[0]
            entry.handles[self._handle_key] = key
        if not isinstance(key, SignMixin):
            raise _unusable(
                self._ref, "the token does not allow it to sign (CKA_SIGN false)", "use a signing key"
            )
        return key

    def _check_key(self, key: SignMixin) -> None:
        ref = self._ref
        if key.key_type != KeyType.EC:
            raise _unusable(ref, f"it is a {key.key_type.name} key, not EC P-256", "use an EC P-256 key")
        params = key[Attribute.EC_PARAMS]
        if bytes(params) != P256_PARAMS:
            raise _unusable(ref, "its curve is not P-256 (secp256r1)", "devices verify P-256 signatures only")
        if not key[Attribute.SENSITIVE]:
            raise _unusable(
                ref,
                "the token would reveal its private value (CKA_SENSITIVE false)",
                "generate the key in the token with 'provkit setup' (sensitive, not extractable)",
            )

    def _public_key(self, session: pkcs11.Session, key: SignMixin) -> PublicKey:
        template = _object_template(self._ref.uri, ObjectClass.PUBLIC_KEY)
        template[Attribute.ID] = key[Attribute.ID]
        template[Attribute.LABEL] = key[Attribute.LABEL]
        publics = list(session.get_objects(template))
        if len(publics) != 1:
            raise _unusable(
                self._ref,
                "no single public key object has its label and id",
                "store the public key under the same label and id (provkit setup does)",
            )
        found = publics[0]
        if not isinstance(found, pkcs11.PublicKey):
            raise _unusable(self._ref, "its public key object is no public key", "fix the token")
        try:
            public = load_public_key(encode_ec_public_key(found))
        except (CryptoError, ValueError, KeyError) as exc:
            why = f"its public key cannot be read: {exc}"
            raise _unusable(self._ref, why, "use an EC P-256 key") from exc
        if not is_p256(public):
            raise _unusable(self._ref, "its public key is not on P-256", "use an EC P-256 key")
        return public


def generate_token_key(ref: TokenKeyRef, *, replace: bool = False) -> TokenSigner:
    """Generate a P-256 key pair inside the token and return its signer.

    The private key is a token object, private, sensitive, not extractable and may only
    sign; the public key is stored next to it with the same label and id (a random 8-byte
    id when the URI gives none). The returned signer's :attr:`TokenSigner.ref` carries the id.

    Raises:
        HsmError: 409 when a key matching the URI exists and ``replace`` is false; 400–406
            when the module, token or PIN is unusable or the token refuses to generate.
    """
    _require_key_uri(ref)
    if ref.uri.object is None:
        raise Pkcs11UriError.from_code(
            FcuErrorCode.HSM_URI_INVALID,
            repr(ref.label),
            "a key to generate needs a label",
            hint="add object=<key label> to the URI",
        )
    with LIBRARY_LOCK:
        pool = pool_for(ref)
        ident = _generate(pool, ref, replace=replace)
    return TokenSigner(TokenKeyRef(ref.uri.replace(id=ident), ref.module, ref.pin))


def _generate(pool: SessionPool, ref: TokenKeyRef, *, replace: bool) -> bytes:
    label = ref.label
    try:
        session = pool.token.open(rw=True)
    except p11e.PKCS11Error as exc:
        raise token_failure(exc, label) from exc
    try:
        existing = [
            obj
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
            for obj in session.get_objects(_object_template(ref.uri, cls))
        ]
        if existing and not replace:
            raise HsmError.from_code(
                FcuErrorCode.HSM_KEY_EXISTS,
                label,
                hint="'provkit setup -f' replaces it (destroying the old key), or use another label",
            )
        for obj in existing:
            obj.destroy()
        ident = ref.uri.id if ref.uri.id is not None else secrets.token_bytes(_ID_BYTES)
        params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: P256_PARAMS}, local=True)
        params.generate_keypair(
            store=True,
            label=ref.uri.object,
            id=ident,
            public_template={Attribute.TOKEN: True, Attribute.VERIFY: True, Attribute.PRIVATE: False},
            private_template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DERIVE: False,
                Attribute.DECRYPT: False,
                Attribute.UNWRAP: False,
            },
        )
    except p11e.PKCS11Error as exc:
        raise token_failure(exc, label) from exc
    finally:
        close_quietly(session)
    pool.forget_handles()  # handles of a replaced key are stale in every pooled session
    return ident

"""FCU setup: create the factory CA (self-signed, or an intermediate via CSR) in the keystore.

Setup never leaves a half-written keystore: the key and certificate are written to
temporaries and renamed together (:func:`provkit.factory.ca.write_keystore_files`).

With a token key (:mod:`provkit.factory.ca_key`) the P-256 key is generated inside the
token, the CA certificate or CSR is signed there, and the keystore receives the
certificate (or CSR) and ``fcu_key.pkcs11`` — the key's URI — but no private key.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from pathlib import Path

from provkit.codes import FcuErrorCode
from provkit.crypto import csr, issue, keys, x509
from provkit.crypto.names import build_name
from provkit.crypto.signer import CaSigner, FileSigner
from provkit.errors import CaError, CryptoError, FactoryError, ProvkitError
from provkit.factory.ca import FactoryCa, open_signer, write_keystore_files
from provkit.factory.ca_key import CaKeySource, describe, generate_signer
from provkit.factory.config import FcuConfig, invalid
from provkit.factory.paths import FcuPaths
from provkit.factory.results import ErrorInfo, SetupStatus, WarningInfo

KEY_MODE = 0o600
CERT_MODE = 0o644
DEFAULT_CA_SUBJECT = {"common-name": "provkit factory CA"}


def setup_ca(
    paths: FcuPaths,
    config: FcuConfig,
    *,
    override_existing_ca: bool = False,
    passphrase: bytes | None = None,
    now: dt.datetime | None = None,
    key_source: CaKeySource | None = None,
) -> SetupStatus:
    """Create the factory CA key and certificate (or, in intermediate mode, key and CSR).

    With ``key_source`` the key is generated in that token and the keystore gets its URI
    (``fcu_key.pkcs11``) instead of ``fcu_key.pem``.

    Raises:
        CaError: 290 when the files exist and ``override_existing_ca`` is false.
        HsmError: 400–409 for the token (409: a key of that name exists, without override).
        ConfigError: 380 for an unusable ``certificate-authority`` subject.
        FactoryError: 330 when the key cannot be encrypted with ``passphrase``; 320 when
            the keystore cannot be written.
    """
    body_path = paths.ca_csr if config.setup_ca_as_intermediate else paths.ca_cert
    if not override_existing_ca:
        for path in (paths.ca_key, paths.ca_key_reference, paths.ca_cert):
            if _exists(path):
                raise CaError.from_code(
                    FcuErrorCode.FILE_ALREADY_EXISTS,
                    path,
                    hint="use 'provkit setup -f' (override_existing_ca=True) to replace the factory CA",
                )
    subject = dict(config.certificate_authority) or DEFAULT_CA_SUBJECT
    try:  # the subject is checked before a key is generated (in a token, generation is for good)
        build_name(subject)
    except CryptoError as exc:
        raise invalid("certificate-authority", str(exc)) from exc
    signer: CaSigner
    if key_source is None:
        key = keys.generate_p256()
        signer = FileSigner(key)
        key_file = (paths.ca_key, (_encrypted_pem(key, passphrase), KEY_MODE))
    else:
        signer, reference = generate_signer(key_source, replace_existing=override_existing_ca)
        key_file = (paths.ca_key_reference, (f"{reference}\n".encode(), CERT_MODE))
    try:
        if config.setup_ca_as_intermediate:
            body = csr.create_ca_csr(signer, subject)
        else:
            moment = now or dt.datetime.now(dt.UTC)
            body = x509.certificate_pem([issue.create_ca(signer, subject, now=moment)])
    except CryptoError as exc:
        raise invalid("certificate-authority", str(exc)) from exc
    files = dict([key_file, (body_path, (body, CERT_MODE))])
    # Files of the replaced CA go: a stale certificate would not match, a stale CSR would be
    # signed for a key that no longer exists, and a token CA leaves no key file behind.
    stale = [paths.ca_cert if config.setup_ca_as_intermediate else paths.ca_csr]
    stale.append(paths.ca_key if key_source is not None else paths.ca_key_reference)
    _write_keystore(paths, files, remove=stale)
    return get_setup_status(paths, passphrase, key_source)


def _encrypted_pem(key: keys.PrivateKey, passphrase: bytes | None) -> bytes:
    try:
        return keys.private_key_pem(key, passphrase)
    except ValueError as exc:  # e.g. a passphrase over 1023 bytes, which OpenSSL refuses
        raise FactoryError.from_code(
            FcuErrorCode.PRIVATE_KEY_CREATE_FAILED,
            hint=f"cannot encrypt the CA key: {exc}; check the passphrase",
        ) from exc


def install_ca_certificate(
    paths: FcuPaths,
    data: bytes,
    passphrase: bytes | None = None,
    *,
    now: dt.datetime | None = None,
    key_source: CaKeySource | None = None,
) -> SetupStatus:
    """Install the externally signed intermediate CA certificate (PEM chain leaf first, or DER).

    Raises:
        CaError: 220/221 when the keystore's key is missing or unusable (HsmError 400–408
            for a token key); 211 when ``data`` is not a currently valid ecdsa-with-SHA256
            CA certificate; 222 when it does not match the key, or its chain does not link up.
    """
    key = open_signer(paths, key_source, passphrase)
    given = "<given certificate>"
    try:
        certs = x509.load_certificates(data)
    except CryptoError as exc:
        raise CaError.from_code(
            FcuErrorCode.CA_CERT_LOAD_FAILED,
            given,
            hint="give the signed CA certificate in PEM (with its chain) or DER",
        ) from exc
    leaf = certs[0]
    moment = now or dt.datetime.now(dt.UTC)
    problem = None
    if not x509.is_ca_certificate(leaf):
        problem = "the certificate lacks BasicConstraints CA=true; ask your CA to sign it as a CA"
    elif not x509.supported_scheme(leaf):
        problem = "the certificate must be signed with ecdsa-with-SHA256; ask your CA to sign it so"
    elif not x509.not_valid_before(leaf) <= moment < x509.not_valid_after(leaf):
        problem = "the certificate is not valid now (check its validity dates and this machine's clock)"
    if problem is not None:
        raise CaError.from_code(FcuErrorCode.CA_CERT_LOAD_FAILED, given, hint=problem)
    for child, parent in itertools.pairwise(certs):
        if not x509.signed_by(child, parent):
            raise CaError.from_code(
                FcuErrorCode.CA_CERT_KEY_MISMATCH,
                "<given chain>",
                paths.ca_key,
                hint="the chain must be leaf first, each certificate signed by the next",
            )
    if not keys.keys_match(key.public_key(), x509.certificate_public_key(leaf)):
        raise CaError.from_code(
            FcuErrorCode.CA_CERT_KEY_MISMATCH,
            given,
            describe(key_source) if key_source is not None else paths.ca_key,
            hint="sign the CSR written by setup (keystore/fcu.csr), not another request",
        )
    _write_keystore(paths, {paths.ca_cert: (x509.certificate_pem(certs), CERT_MODE)})
    return get_setup_status(paths, passphrase, key_source)


def _write_keystore(
    paths: FcuPaths, files: dict[Path, tuple[bytes, int]], *, remove: Iterable[Path] = ()
) -> None:
    """Write keystore files all-or-nothing, then delete the files of ``remove`` that exist.

    Raises:
        FactoryError: 320 when the keystore cannot be written.
    """
    try:
        write_keystore_files(files)
        for path in remove:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise FactoryError.from_code(
            FcuErrorCode.CERTIFICATE_CREATE_FAILED, hint=f"cannot write the keystore {paths.keystore}: {exc}"
        ) from exc


def _exists(path: Path) -> bool:
    # Path.exists() raises for e.g. a name that is too long; such a file cannot exist either.
    try:
        return path.exists()
    except OSError:
        return False


def get_setup_status(
    paths: FcuPaths, passphrase: bytes | None = None, key_source: CaKeySource | None = None
) -> SetupStatus:
    """Report whether the keystore holds a usable CA (never raises for keystore or token problems)."""
    try:
        ca = FactoryCa.load(paths, passphrase, key_source)
    except ProvkitError as error:
        warnings = []
        csr = str(paths.ca_csr) if _exists(paths.ca_csr) else None
        if csr and not _exists(paths.ca_cert):
            warnings.append(
                WarningInfo(0, f"intermediate CA: have {csr} signed by your CA, then install the certificate")
            )
        return SetupStatus(
            status=error.code or int(FcuErrorCode.GENERAL),
            errors=[ErrorInfo.from_error(error)],
            warnings=warnings,
            csr=csr,
        )
    warnings = []
    expires = x509.not_valid_after(ca.certificate)
    if expires - dt.datetime.now(dt.UTC) < dt.timedelta(days=3650):
        warnings.append(WarningInfo(0, f"the factory CA expires on {expires:%Y-%m-%d}"))
    return SetupStatus(status=0, warnings=warnings, ca_certificate=str(Path(paths.ca_cert)))

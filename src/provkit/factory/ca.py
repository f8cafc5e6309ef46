"""The factory CA: its certificate (``keystore/fcu.crt``), its key, and signing with it.

The key is ``keystore/fcu_key.pem`` or a key in a PKCS#11 token
(:mod:`provkit.factory.ca_key`); either way :class:`FactoryCa` signs through one
:class:`~provkit.crypto.signer.CaSigner`, so by_tool certificates, by_device CSR signing
and LwM2M certificates never touch the key itself. :class:`FactoryCa` is immutable after
loading, so one instance can sign certificates for many threads at once; the LwM2M side
reuses it through :meth:`FactoryCa.issue`.

Error codes: 210/211 CA certificate missing/corrupt, 220/221 CA key missing/corrupt,
222 certificate and key do not match, 290 setup would overwrite existing files, 400–409
the token key (see docs/factory.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from provkit.codes import FcuErrorCode
from provkit.crypto import issue, keys, x509
from provkit.crypto.signer import CaSigner, FileSigner, as_signer
from provkit.errors import CaError, CryptoError
from provkit.factory.ca_key import CaKeySource, describe, token_signer
from provkit.factory.paths import FcuPaths, read_regular_file

BOOTSTRAP_DEVICE_CERT_YEARS: Final = 20
"""Device certificate lifetime in bootstrap mode (FCC warns below 10 years; renewable)."""

LWM2M_DEVICE_CERT_YEARS: Final = 35
"""Device certificate lifetime in LwM2M mode: it can never be renewed."""

_BACKDATE: Final = dt.timedelta(seconds=60)


class FactoryCa:
    """A loaded factory CA: its signing key, certificate and the certificates above it.

    Attributes:
        certificate: the CA certificate that signs device certificates.
        chain: certificates above it (intermediate mode), nearest issuer first.
    """

    def __init__(
        self,
        key: keys.PrivateKey | CaSigner,
        certificate: x509.Certificate,
        chain: tuple[x509.Certificate, ...] = (),
    ) -> None:
        self._signer = as_signer(key)
        self.certificate = certificate
        self.chain = chain
        # Cached once: every bundle with chain depth > 1 carries these bytes.
        self._chain_ders = tuple(x509.certificate_der(cert) for cert in (certificate, *chain))
        self._device_floor = x509.not_valid_before(certificate) + dt.timedelta(seconds=1)

    @classmethod
    def load(
        cls, paths: FcuPaths, passphrase: bytes | None = None, key_source: CaKeySource | None = None
    ) -> FactoryCa:
        """Load the CA: the keystore's certificate, and its key from the file or ``key_source``'s token.

        Raises:
            CaError: 210, 211, 220, 221 or 222; HsmError 400–408 for a token key.
        """
        certs = _load_ca_certificates(paths.ca_cert)
        signer = open_signer(paths, key_source, passphrase)
        if not keys.keys_match(signer.public_key(), x509.certificate_public_key(certs[0])):
            raise CaError.from_code(
                FcuErrorCode.CA_CERT_KEY_MISMATCH,
                paths.ca_cert,
                describe(key_source) if key_source is not None else paths.ca_key,
                hint="run 'provkit setup -f' to create a matching pair, or restore the right files",
            )
        return cls(signer, certs[0], tuple(certs[1:]))

    @property
    def signer(self) -> CaSigner:
        """The CA key's signer (a key file or a token key)."""
        return self._signer

    @property
    def key_id(self) -> str:
        """What the registry records as the signing key (:attr:`CaSigner.key_id`)."""
        return self._signer.key_id

    def chain_ders(self, depth: int) -> tuple[bytes, ...]:
        """Return the DER certificates that follow a device certificate in a chain of ``depth``."""
        return self._chain_ders[: max(depth - 1, 0)]

    @property
    def max_chain_depth(self) -> int:
        """Longest device chain this CA can supply (device certificate + CA + its chain)."""
        return 1 + len(self._chain_ders)

    def device_not_before(self, now: dt.datetime) -> dt.datetime:
        """Start of validity for a device certificate issued at ``now``.

        Slightly in the past (so the device accepts it at once) but after the CA's own
        start, as the FCU rule "CA valid-from < device valid-from < now" requires.
        """
        return max(now - _BACKDATE, self._device_floor)

    def issuer(self, subject: Mapping[str, str], validity_years: int) -> issue.DeviceCertificateIssuer:
        """Return a fast signer for many device certificates with one subject template.

        Raises:
            CryptoError: a subject value is invalid.
        """
        return issue.DeviceCertificateIssuer(self._signer, self.certificate, subject, validity_years)

    def issue(
        self,
        public_key: keys.PublicKey,
        *,
        common_name: str,
        subject: Mapping[str, str] | None = None,
        validity_years: int = BOOTSTRAP_DEVICE_CERT_YEARS,
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Sign a device certificate (EKU clientAuth, CN = ``common_name``).

        Args:
            public_key: the device's P-256 public key.
            common_name: the endpoint name.
            subject: other subject fields (fcu.yml ``device-certificate`` keys; in LwM2M mode
                ``organizational-unit-name`` must be the account id).
            validity_years: certificate lifetime.
            now: the current time (default: the system clock).

        Raises:
            CryptoError: the key is not P-256 or a subject value is invalid.
        """
        moment = now or dt.datetime.now(dt.UTC)
        return issue.issue_device_certificate(
            self._signer,
            self.certificate,
            public_key,
            common_name=common_name,
            subject=subject or {},
            not_before=self.device_not_before(moment),
            validity_years=validity_years,
        )


_SETUP_HINT: Final = "run 'provkit setup' (or FactoryToolApi.setup_factory_configurator_utility())"
_CERT_ADVICE: Final = "run 'provkit setup -f' to recreate the CA"
_KEY_ADVICE: Final = "check the passphrase (PROVKIT_CA_PASSPHRASE) or run 'provkit setup -f'"


def _read_keystore_file(path: Path, missing: FcuErrorCode, corrupt: FcuErrorCode, advice: str) -> bytes:
    try:
        return read_regular_file(path)
    except FileNotFoundError as exc:
        raise CaError.from_code(missing, path, hint=_SETUP_HINT) from exc
    except OSError as exc:
        raise CaError.from_code(corrupt, path, hint=f"{exc}; {advice}") from exc


def _load_ca_certificates(path: Path) -> list[x509.Certificate]:
    corrupt, advice = FcuErrorCode.CA_CERT_LOAD_FAILED, _CERT_ADVICE
    data = _read_keystore_file(path, FcuErrorCode.CA_CERT_NOT_FOUND, corrupt, advice)
    try:
        certs = x509.load_certificates(data)
    except CryptoError as exc:
        raise CaError.from_code(corrupt, path, hint=f"{exc}; {advice}") from exc
    if not x509.is_ca_certificate(certs[0]) or not keys.is_p256(x509.certificate_public_key(certs[0])):
        raise CaError.from_code(
            corrupt, path, hint=f"the certificate is not a P-256 CA certificate; {advice}"
        )
    expires = x509.not_valid_after(certs[0])
    if expires <= dt.datetime.now(dt.UTC):
        # Certificates it signed would chain to an expired CA: the cloud and devices refuse them.
        raise CaError.from_code(
            corrupt, path, hint=f"the CA certificate expired on {expires:%Y-%m-%d}; {advice}"
        )
    return certs


def open_signer(paths: FcuPaths, source: CaKeySource | None, passphrase: bytes | None) -> CaSigner:
    """Open the CA key: the token key of ``source``, or ``keystore/fcu_key.pem`` when it is ``None``.

    Raises:
        HsmError: 400–408 for a token key.
        CaError: 220/221 for the key file.
    """
    if source is not None:
        return token_signer(source)
    return FileSigner(load_ca_key(paths.ca_key, passphrase))


def load_ca_key(path: Path, passphrase: bytes | None) -> keys.PrivateKey:
    """Load the factory CA's P-256 private key (``fcu_key.pem``), decrypting it with ``passphrase``.

    Raises:
        CaError: 220 when the file is missing, 221 when it is unreadable, not a P-256 key,
            or the passphrase is wrong or missing.
    """
    corrupt, advice = FcuErrorCode.CA_KEY_LOAD_FAILED, _KEY_ADVICE
    data = _read_keystore_file(path, FcuErrorCode.CA_KEY_NOT_FOUND, corrupt, advice)
    try:
        key = keys.load_private_key(data, passphrase)
    except CryptoError as exc:
        raise CaError.from_code(corrupt, path, hint=f"{exc}; {advice}") from exc
    if not keys.is_p256(key):
        raise CaError.from_code(corrupt, path, hint=f"the key is not a P-256 key; {advice}")
    return key


def write_keystore_files(files: Mapping[Path, tuple[bytes, int]]) -> None:
    """Write every file atomically and all-or-nothing: temporaries first, then renames.

    Args:
        files: path -> (content, permission bits).

    Raises:
        OSError: a write failed; no target file has been replaced by a partial one.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for path, (content, mode) in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            # os.open with the mode: the key is never readable by others, not even briefly.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            temps.append((temp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            temp.chmod(mode)
        for temp, path in temps:
            temp.replace(path)
    finally:
        for temp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

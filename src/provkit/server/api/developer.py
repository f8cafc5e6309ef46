"""The developer CA: issues developer certificates and writes their credentials file.

A developer certificate is what Device Management makes for a development device: a
P-256 key and a certificate whose CN is a fresh endpoint name and whose OU is the
account id, with the server's bootstrap URI and the CA that signed the server's
certificate, written as ``mbed_cloud_dev_credentials.c``. Here the certificate is signed
by the server's own developer CA (made on first use, its key sealed in the registry), so
a developer-provisioned device is accepted by the bootstrap server of ``provkit server``
like a factory-provisioned one: its chain reaches a trusted CA, and the CN is its
endpoint name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Protocol

from provkit.crypto import certconfig, issue, keys, seal, x509
from provkit.crypto.aead import SealError
from provkit.developer import credentials as c
from provkit.developer.cwrite import render_developer_credentials
from provkit.errors import ApiConflict, TrustError
from provkit.registry import Registry, Service
from provkit.registry.devcerts import DeveloperCa, DeveloperCertificateRecord
from provkit.registry.ids import new_id
from provkit.registry.trust import ALREADY_TRUSTED

DEVELOPER_CA_NAME: Final = "provkit developer CA"
"""Its name in the trust store (``/v3/trusted-certificates``)."""
DEVICE_VALIDITY_YEARS: Final = 20
"""Developer certificates outlive a development device; the device warns below 10 years."""
DEVICE_ORGANIZATION: Final = "provkit developer"
DEFAULT_DEVICE_INFO: Final = {
    c.MANUFACTURER: b"dev_manufacturer",
    c.MODEL_NUMBER: b"dev_model_num",
    c.SERIAL_NUMBER: b"0",
    c.DEVICE_TYPE: b"dev_device_type",
    c.HARDWARE_VERSION: b"dev_hardware_version",
}
"""The device information a Portal-made credentials file carries."""
_CA_KEY_LABEL: Final = b"provkit developer CA key"
_DEVICE_KEY_LABEL: Final = b"provkit developer device key "


class SecretSealer(Protocol):
    """Seals private keys before they reach the registry, and opens them again.

    ``associated`` binds a blob to its place (which CA, which certificate): a blob copied
    onto another record does not open.
    """

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``."""
        ...

    def open(self, blob: bytes, associated: bytes) -> bytes:
        """Return what :meth:`seal` sealed with the same ``associated``.

        Raises:
            SealError: another key, other associated data, or altered bytes.
        """
        ...


class ServerKeySealer:
    """Seals to the server's sealing key (the one stations seal PSKs to), as the key's holder.

    Every server process of one registry runs from the same server home, so each opens
    what another sealed (see ``provkit.server.home``).
    """

    def __init__(self, key: keys.PrivateKey) -> None:
        self._key = key
        self._public = keys.public_key_der(key)

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        """Encrypt ``plaintext`` to the server key (ECIES, :func:`provkit.crypto.seal.seal_to`)."""
        return seal.seal_to(self._public, plaintext, associated)

    def open(self, blob: bytes, associated: bytes) -> bytes:
        """Open a blob sealed to this server key.

        Raises:
            SealError: another key, other associated data, or altered bytes.
        """
        return seal.unseal(self._key, blob, associated)


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """What a developer device needs to know of the server it will connect to.

    Attributes:
        bootstrap_uri: the bootstrap server's ``coaps://host:port`` as devices reach it
            (``None``: the server runs without one).
        lwm2m_uri: the LwM2M server's ``coaps://host:port`` (``None``: not served).
        server_ca: DER of the CA that signed the servers' DTLS certificates (the device's
            ``mbed.BootstrapServerCACert``).
    """

    bootstrap_uri: str | None
    lwm2m_uri: str | None
    server_ca: bytes


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A developer certificate with its material opened.

    Attributes:
        record: what the registry keeps.
        private_key: the device key, PKCS#8 DER.
        security_file_content: the ``mbed_cloud_dev_credentials.c`` text.
    """

    record: DeveloperCertificateRecord
    private_key: bytes
    security_file_content: str

    @property
    def certificate_pem(self) -> str:
        """The device certificate in PEM."""
        return x509.certificate_pem([x509.load_certificate(self.record.certificate)]).decode("ascii")

    @property
    def private_key_pem(self) -> str:
        """The device key in PKCS#8 PEM."""
        return keys.private_key_pem(keys.load_private_key(self.private_key)).decode("ascii")


class DeveloperAuthority:
    """Signs developer certificates for one account and opens their stored keys.

    Use :meth:`open`. Thread-safe: nothing changes after construction.
    """

    def __init__(
        self,
        registry: Registry,
        sealer: SecretSealer,
        identity: ServerIdentity,
        ca: DeveloperCa,
        ca_key: keys.PrivateKey,
    ) -> None:
        self._registry = registry
        self._sealer = sealer
        self.identity = identity
        self.ca = ca
        self.account_id = registry.accounts.current().id
        self.ca_certificate = x509.load_certificate(ca.certificate)
        self._issuer = issue.DeviceCertificateIssuer(
            ca_key,
            self.ca_certificate,
            {"organizational-unit-name": self.account_id, "organization-name": DEVICE_ORGANIZATION},
            DEVICE_VALIDITY_YEARS,
        )

    @classmethod
    def open(cls, registry: Registry, sealer: SecretSealer, identity: ServerIdentity) -> DeveloperAuthority:
        """Load the registry's developer CA, making it first if there is none.

        The servers are made to accept its devices (it is added to the trust store for the
        bootstrap service, once).

        Raises:
            SealError: the CA's key was sealed with another server secret.
            TrustError: it cannot be added to the trust store.
        """
        ca = registry.developer_certificates.ca()
        if ca is None:
            account_id = registry.accounts.current().id
            key = keys.generate_p256()
            subject = {
                "common-name": "provkit developer CA",
                "organization-name": DEVICE_ORGANIZATION,
                "organizational-unit-name": account_id,
            }
            cert = issue.create_ca(key, subject, now=dt.datetime.now(dt.UTC))
            sealed = sealer.seal(keys.private_key_der(key), _CA_KEY_LABEL)
            ca = registry.developer_certificates.add_ca_if_none(x509.certificate_der(cert), sealed)
        _trust_developer_ca(registry, ca.certificate)
        try:
            ca_key = keys.load_private_key(sealer.open(ca.sealed_key, _CA_KEY_LABEL))
        except SealError as exc:
            raise SealError(
                "the developer CA in the registry was sealed with another server secret",
                hint="start every server of one registry with the same server home (its secret)",
            ) from exc
        return cls(registry, sealer, identity, ca, ca_key)

    def bootstrap_uri(self) -> str:
        """The bootstrap URI a device is given: the server's, with the account as ``aid``.

        Raises:
            ApiConflict: the server runs without a bootstrap server.
        """
        uri = self.identity.bootstrap_uri
        if uri is None:
            raise ApiConflict(
                "this server runs without a bootstrap server, which developer certificates need",
                hint="run the server with its bootstrap server (without `no_bootstrap`)",
            )
        return f"{uri}{'&' if '?' in uri else '?'}aid={self.account_id}"

    def create(self, name: str, description: str = "") -> IssuedCertificate:
        """Issue and record a developer certificate called ``name``.

        Raises:
            ApiConflict: a developer certificate of that name exists.
        """
        uri = self.bootstrap_uri()  # refused before anything is made when there is no bootstrap server
        cert_id = new_id()
        endpoint_name = new_id()
        key = keys.generate_p256()
        cert = self._issuer.issue(key.public_key(), endpoint_name, dt.datetime.now(dt.UTC))
        der = x509.certificate_der(cert)
        pkcs8 = certconfig.private_key_pkcs8(key)
        record = self._registry.developer_certificates.add(
            cert_id=cert_id,
            account_id=self.account_id,
            name=name,
            description=description,
            endpoint_name=endpoint_name,
            certificate=der,
            sealed_key=self._sealer.seal(pkcs8, _DEVICE_KEY_LABEL + cert_id.encode()),
            fingerprint=x509.der_fingerprint(der).hex(),
            ca_id=self.ca.id,
        )
        return IssuedCertificate(record, pkcs8, self._credentials_file(record, pkcs8, uri))

    def opened(self, record: DeveloperCertificateRecord) -> IssuedCertificate:
        """A stored developer certificate with its key and credentials file.

        Raises:
            SealError: the key was sealed with another server secret.
        """
        pkcs8 = self._sealer.open(record.sealed_key, _DEVICE_KEY_LABEL + record.id.encode())
        return IssuedCertificate(record, pkcs8, self._credentials_file(record, pkcs8, self.bootstrap_uri()))

    def _credentials_file(self, record: DeveloperCertificateRecord, pkcs8: bytes, uri: str) -> str:
        values = {
            c.ENDPOINT_NAME: record.endpoint_name.encode(),
            c.ACCOUNT_ID: record.account_id.encode(),
            c.SERVER_URI: uri.encode(),
            c.DEVICE_CERTIFICATE: record.certificate,
            c.SERVER_CA_CERTIFICATE: self.identity.server_ca,
            c.DEVICE_PRIVATE_KEY: pkcs8,
            **DEFAULT_DEVICE_INFO,
            c.MEMORY_TOTAL_KB: (0).to_bytes(4, "little"),
        }
        # Only ids go into the comment: a name could hold "*/" and end it.
        header = (
            f"Developer certificate {record.id} of account {record.account_id},\n"
            "issued by provkit server. It holds a private key: keep it out of version control."
        )
        return render_developer_credentials(values, header=header)


def _trust_developer_ca(registry: Registry, ca_der: bytes) -> None:
    """Make the servers accept devices of the developer CA (bootstrap service), once.

    An entry made before is kept as it is, whatever its status: an administrator may
    have set it INACTIVE.
    """
    fingerprint = x509.der_fingerprint(ca_der).hex()
    if any(item.fingerprint == fingerprint for item in registry.trust.find(service=Service.BOOTSTRAP)):
        return
    try:
        registry.trust.add(
            ca_der,
            service=Service.BOOTSTRAP,
            name=DEVELOPER_CA_NAME,
            description="signs the developer certificates of this server (/v3/developer-certificates)",
            is_developer_certificate=True,
        )
    except TrustError as exc:
        if exc.code != ALREADY_TRUSTED:  # another server process added it first
            raise

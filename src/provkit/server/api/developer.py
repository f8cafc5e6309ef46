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

from provkit.crypto import certconfig, issue, keys, x509
from provkit.crypto.aead import SealError
from provkit.developer import credentials as c
from provkit.developer.cwrite import render_developer_credentials
from provkit.registry import Registry
from provkit.registry.devcerts import DeveloperCa, DeveloperCertificateRecord
from provkit.registry.ids import new_id

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


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """What a developer device needs to know of the server it will connect to.

    Attributes:
        bootstrap_uri: the bootstrap server's ``coaps://host:port`` as devices reach it.
        lwm2m_uri: the LwM2M server's ``coaps://host:port``.
        server_ca: DER of the CA that signed the servers' DTLS certificates (the device's
            ``mbed.BootstrapServerCACert``).
    """

    bootstrap_uri: str
    lwm2m_uri: str
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

        Raises:
            SealError: the CA's key was sealed with another server secret.
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
        try:
            ca_key = keys.load_private_key(sealer.open(ca.sealed_key, _CA_KEY_LABEL))
        except SealError as exc:
            raise SealError(
                "the developer CA in the registry was sealed with another server secret",
                hint="start every server of one registry with the same server home (its secret)",
            ) from exc
        return cls(registry, sealer, identity, ca, ca_key)

    def bootstrap_uri(self) -> str:
        """The bootstrap URI a device is given: the server's, with the account as ``aid``."""
        separator = "&" if "?" in self.identity.bootstrap_uri else "?"
        return f"{self.identity.bootstrap_uri}{separator}aid={self.account_id}"

    def create(self, name: str, description: str = "") -> IssuedCertificate:
        """Issue and record a developer certificate called ``name``.

        Raises:
            ApiConflict: a developer certificate of that name exists.
        """
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
        return IssuedCertificate(record, pkcs8, self._credentials_file(record, pkcs8))

    def opened(self, record: DeveloperCertificateRecord) -> IssuedCertificate:
        """A stored developer certificate with its key and credentials file.

        Raises:
            SealError: the key was sealed with another server secret.
        """
        pkcs8 = self._sealer.open(record.sealed_key, _DEVICE_KEY_LABEL + record.id.encode())
        return IssuedCertificate(record, pkcs8, self._credentials_file(record, pkcs8))

    def _credentials_file(self, record: DeveloperCertificateRecord, pkcs8: bytes) -> str:
        values = {
            c.ENDPOINT_NAME: record.endpoint_name.encode(),
            c.ACCOUNT_ID: record.account_id.encode(),
            c.SERVER_URI: self.bootstrap_uri().encode(),
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

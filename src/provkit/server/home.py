"""The server home: the server's own CAs, certificate and keys, created once by ``provkit server init``.

Layout of ``<home>`` (by default ``<FCU home>/server``)::

    ca.pem             server CA certificate: give it to devices as mbed.BootstrapServerCACert
                       (or mbed.LwM2MServerCACert, or the Security object's /0/x/4)
    ca_key.pem         its private key                                   (mode 0600)
    server.pem         the DTLS server certificate (subjectAltName = the addresses served) + CA
    server_key.pem     its private key                                   (mode 0600)
    device_ca.pem      CA of the credentials the bootstrap server issues to devices
    device_ca_key.pem  its private key                                   (mode 0600)
    sealing_key.pem    opens the PSKs stations record in the registry    (mode 0600)
    server.json        the addresses the certificate names

Every server process of one registry runs from the same home (copy it to each host): they
must present the same certificate and open the same sealed PSKs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from provkit.crypto import issue, keys, x509
from provkit.crypto.keys import PrivateKey
from provkit.errors import CryptoError, ServerSetupError

CA_FILE: Final = "ca.pem"
CA_KEY_FILE: Final = "ca_key.pem"
SERVER_FILE: Final = "server.pem"
SERVER_KEY_FILE: Final = "server_key.pem"
DEVICE_CA_FILE: Final = "device_ca.pem"
DEVICE_CA_KEY_FILE: Final = "device_ca_key.pem"
SEALING_KEY_FILE: Final = "sealing_key.pem"
SETTINGS_FILE: Final = "server.json"

_SECRET_FILES: Final = (CA_KEY_FILE, SERVER_KEY_FILE, DEVICE_CA_KEY_FILE, SEALING_KEY_FILE)
SERVER_CERT_DAYS: Final = 825
"""Validity of the server certificate (the longest TLS clients commonly accept)."""


@dataclass(frozen=True)
class ServerMaterial:
    """Everything the server needs from its home, loaded and checked.

    Attributes:
        home: the directory.
        addresses: the addresses the server certificate names.
        ca_cert: the server CA certificate.
        server_chain: the server certificate and the CA, DER, leaf first.
        server_key: the server certificate's private key.
        device_ca_cert: the CA of issued device credentials.
        device_ca_key: its private key.
        sealing_key: the PSK sealing private key.
    """

    home: Path
    addresses: tuple[str, ...]
    ca_cert: x509.Certificate
    server_chain: tuple[bytes, ...]
    server_key: PrivateKey = field(repr=False)
    device_ca_cert: x509.Certificate
    device_ca_key: PrivateKey = field(repr=False)
    sealing_key: PrivateKey = field(repr=False)

    @property
    def ca_der(self) -> bytes:
        """The server CA certificate, DER."""
        return x509.certificate_der(self.ca_cert)

    @property
    def ca_pem(self) -> bytes:
        """The server CA certificate, PEM."""
        return x509.certificate_pem([self.ca_cert])

    @property
    def server_cert_der(self) -> bytes:
        """The server's own certificate, DER."""
        return self.server_chain[0]

    @property
    def sealing_public_der(self) -> bytes:
        """The public half of the sealing key (what stations seal PSKs to)."""
        return keys.public_key_der(self.sealing_key)


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if secret:
        path.chmod(0o600)


def is_initialised(home: Path) -> bool:
    """Whether ``home`` holds a server home."""
    return (home / CA_FILE).is_file() and (home / SETTINGS_FILE).is_file()


def init_home(
    home: Path, addresses: list[str], *, force: bool = False, now: dt.datetime | None = None
) -> ServerMaterial:
    """Create a server home: server CA, server certificate for ``addresses``, device CA, sealing key.

    Args:
        home: the directory (created if missing).
        addresses: IP addresses or DNS names devices use to reach the server; the first
            is the certificate's CN, all are subjectAltNames.
        force: replace an existing home (devices holding the old CA will refuse the server).
        now: the current time (tests).

    Raises:
        ServerSetupError: the home exists and ``force`` is not set, an address is unusable,
            or the files cannot be written.
    """
    if not addresses:
        raise ServerSetupError("give at least one address the devices will connect to")
    if is_initialised(home) and not force:
        raise ServerSetupError(
            f"{home} already holds a server home",
            hint="devices trust its CA already; replace it only with `force`",
        )
    when = now or dt.datetime.now(dt.UTC)
    try:
        ca_key = keys.generate_p256()
        ca_cert = issue.create_ca(
            ca_key, {"common-name": "provkit LwM2M server CA", "organization-name": "provkit"}, now=when
        )
        server_key = keys.generate_p256()
        server_cert = issue.issue_server_certificate(
            ca_key,
            ca_cert,
            server_key.public_key(),
            addresses=addresses,
            now=when,
            validity_days=SERVER_CERT_DAYS,
        )
        device_ca_key = keys.generate_p256()
        device_ca_cert = issue.create_ca(
            device_ca_key,
            {"common-name": "provkit LwM2M device CA", "organization-name": "provkit"},
            now=when,
        )
    except CryptoError as exc:
        raise ServerSetupError(f"cannot create the server certificates: {exc}") from exc
    sealing_key = keys.generate_p256()
    try:
        home.mkdir(parents=True, exist_ok=True)
        _write(home / CA_FILE, x509.certificate_pem([ca_cert]), secret=False)
        _write(home / CA_KEY_FILE, keys.private_key_pem(ca_key), secret=True)
        _write(home / SERVER_FILE, x509.certificate_pem([server_cert, ca_cert]), secret=False)
        _write(home / SERVER_KEY_FILE, keys.private_key_pem(server_key), secret=True)
        _write(home / DEVICE_CA_FILE, x509.certificate_pem([device_ca_cert]), secret=False)
        _write(home / DEVICE_CA_KEY_FILE, keys.private_key_pem(device_ca_key), secret=True)
        _write(home / SEALING_KEY_FILE, keys.private_key_pem(sealing_key), secret=True)
        settings = {"addresses": list(addresses), "created": when.isoformat()}
        _write(home / SETTINGS_FILE, (json.dumps(settings, indent=1) + "\n").encode(), secret=False)
    except OSError as exc:
        raise ServerSetupError(f"cannot write the server home {home}: {exc.strerror or exc}") from exc
    return load_home(home)


def _read(home: Path, name: str) -> bytes:
    try:
        return (home / name).read_bytes()
    except OSError as exc:
        raise ServerSetupError(
            f"server home {home} lacks {name}: {exc.strerror or exc}", hint="run 'provkit server init'"
        ) from exc


def load_home(home: Path) -> ServerMaterial:
    """Load and check a server home.

    Raises:
        ServerSetupError: a file is missing or unusable, or the server key does not match
            its certificate.
    """
    try:
        settings = json.loads(_read(home, SETTINGS_FILE))
        addresses = tuple(str(a) for a in settings["addresses"])
        ca_cert = x509.load_certificate(_read(home, CA_FILE))
        chain = x509.load_certificates(_read(home, SERVER_FILE))
        server_key = keys.load_private_key(_read(home, SERVER_KEY_FILE))
        device_ca_cert = x509.load_certificate(_read(home, DEVICE_CA_FILE))
        device_ca_key = keys.load_private_key(_read(home, DEVICE_CA_KEY_FILE))
        sealing_key = keys.load_private_key(_read(home, SEALING_KEY_FILE))
    except (CryptoError, ValueError, KeyError, TypeError) as exc:
        raise ServerSetupError(
            f"server home {home} is unusable: {exc}",
            hint="make the server home again (server init with `force`)",
        ) from exc
    if not chain or not x509.matches_private_key(chain[0], server_key):
        raise ServerSetupError(f"{home / SERVER_KEY_FILE} does not match {home / SERVER_FILE}")
    if not x509.matches_private_key(device_ca_cert, device_ca_key):
        raise ServerSetupError(f"{home / DEVICE_CA_KEY_FILE} does not match {home / DEVICE_CA_FILE}")
    for name in _SECRET_FILES:
        if (home / name).stat().st_mode & 0o077:
            raise ServerSetupError(
                f"{home / name} is readable by other users", hint=f"chmod 600 {home / name}"
            )
    return ServerMaterial(
        home=home,
        addresses=addresses,
        ca_cert=ca_cert,
        server_chain=tuple(x509.certificate_der(cert) for cert in chain),
        server_key=server_key,
        device_ca_cert=device_ca_cert,
        device_ca_key=device_ca_key,
        sealing_key=sealing_key,
    )

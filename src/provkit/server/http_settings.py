"""Where and how the HTTP app of ``provkit server`` listens, and the plain-HTTP rule.

An API key is a password: plain HTTP is served only on a loopback address, where nothing
leaves the machine. Any other address needs a certificate (``--https-cert`` and
``--https-key``), or ``--insecure-http`` to accept that keys cross the network in clear
(a lab network behind its own TLS proxy). The client warns about ``http://`` too.
Nothing here imports the web stack, so the server checks its settings before loading it.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from provkit.errors import ServerSetupError


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Where and how the API listens.

    Attributes:
        host: the address to listen on.
        port: the port (0: any free port).
        certificate: PEM certificate (chain) for HTTPS.
        private_key: its PEM private key.
        insecure_http: allow plain HTTP on an address other than loopback.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    certificate: Path | None = None
    private_key: Path | None = None
    insecure_http: bool = False

    @property
    def https(self) -> bool:
        """Whether the API is served over TLS."""
        return self.certificate is not None

    def url(self, port: int) -> str:
        """The base URL of the API served on ``port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_settings(settings: HttpSettings) -> None:
    """Refuse settings that would send API keys in clear, or a half-given certificate.

    Raises:
        ServerSetupError: plain HTTP off loopback without ``insecure_http``; a certificate
            without a key or the reverse; files that do not make a TLS server context.
    """
    if (settings.certificate is None) != (settings.private_key is None):
        raise ServerSetupError("HTTPS needs both a certificate (--https-cert) and its key (--https-key)")
    if settings.certificate is None:
        if not is_loopback(settings.host) and not settings.insecure_http:
            raise ServerSetupError(
                f"refusing plain HTTP on {settings.host}: API keys would cross the network in clear",
                hint="give `https_cert` and `https_key`, listen on 127.0.0.1, or allow `insecure_http`",
            )
        return
    assert settings.private_key is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.certificate, settings.private_key)
    except (OSError, ssl.SSLError) as exc:
        raise ServerSetupError(
            f"cannot use {settings.certificate} with {settings.private_key} for HTTPS: {exc}"
        ) from exc

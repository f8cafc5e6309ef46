"""What a ``provkit server`` process serves, and where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_LWM2M_PORT: Final = 5684
"""``coaps://`` port of the LwM2M server (the IANA CoAP over DTLS port)."""
DEFAULT_BOOTSTRAP_PORT: Final = 5784
"""``coaps://`` port of the bootstrap server."""


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server process (and its workers).

    Attributes:
        home: the server home (``provkit server init``).
        registry_url: SQLite path or ``postgresql://`` URL of the registry.
        host: the address to bind.
        bootstrap_port: ``coaps://`` bootstrap server port (0: any free port; ``None``: off).
        lwm2m_port: ``coaps://`` LwM2M server port (0: any free port; ``None``: off).
        coap_bootstrap_port: ``coap://`` (NoSec) bootstrap port, off by default.
        coap_lwm2m_port: ``coap://`` (NoSec) LwM2M port, off by default.
        allow_nosec: accept NoSec devices (needed for the ``coap://`` ports to do anything).
        http_port: port of the HTTP app (Device Management API, line view); ``None``: off.
        http_host: address the HTTP app binds (default: ``host``).
        https_certificate: PEM certificate (chain) to serve the HTTP app over HTTPS.
        https_key: its PEM private key.
        insecure_http: serve plain HTTP on an address other than loopback (API keys in clear).
        public_host: the host devices use in URIs the bootstrap server writes (default:
            the first address of the server certificate).
        workers: processes serving the CoAP ports (``SO_REUSEPORT``); the HTTP app runs in the first.
        lifetime: registration lifetime the bootstrap server writes.
        issue: credentials the bootstrap server issues (``same``, ``certificate``, ``psk``).
        handshake_timeout: seconds before Mbed TLS gives a silent handshake up.
        max_handshakes: half-open handshakes kept per endpoint.
        idle_timeout: seconds of silence before a DTLS session is dropped.
        trust_poll: seconds between checks for trust changes in the registry.
        server_id: recorded on connection rows (default: the station id).
    """

    home: Path
    registry_url: str
    host: str = "127.0.0.1"
    bootstrap_port: int | None = DEFAULT_BOOTSTRAP_PORT
    lwm2m_port: int | None = DEFAULT_LWM2M_PORT
    coap_bootstrap_port: int | None = None
    coap_lwm2m_port: int | None = None
    allow_nosec: bool = False
    http_port: int | None = None
    http_host: str | None = None
    https_certificate: Path | None = None
    https_key: Path | None = None
    insecure_http: bool = False
    public_host: str | None = None
    workers: int = 1
    lifetime: int = 86400
    issue: str = "same"
    handshake_timeout: float = 16.0
    max_handshakes: int = 2000
    idle_timeout: float = 600.0
    trust_poll: float = 1.0
    server_id: str | None = None


@dataclass(frozen=True)
class BoundPorts:
    """The ports a running server listens on (``None``: not served)."""

    host: str
    bootstrap: int | None
    lwm2m: int | None
    coap_bootstrap: int | None = None
    coap_lwm2m: int | None = None
    http: int | None = None

    def uri(self, service: str, *, public_host: str | None = None, secure: bool = True) -> str | None:
        """The URI devices use for ``service`` (``bootstrap`` or ``lwm2m``)."""
        if secure:
            port = self.bootstrap if service == "bootstrap" else self.lwm2m
        else:
            port = self.coap_bootstrap if service == "bootstrap" else self.coap_lwm2m
        if port is None:
            return None
        host = public_host or self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{'coaps' if secure else 'coap'}://{host}:{port}"

"""Serving the API over HTTP(S) with uvicorn: settings, the plain-HTTP rule, a background server.

An API key is a password: plain HTTP is served only on a loopback address, where nothing
leaves the machine. Any other address needs a certificate (``--https-cert`` and
``--https-key``), or ``--insecure-http`` to accept that keys cross the network in clear
(a lab network behind its own TLS proxy). The client warns about ``http://`` too.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import uvicorn
from fastapi import FastAPI

from provkit.errors import ServerSetupError

_START_TIMEOUT_S: Final = 15.0


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
                hint="give --https-cert and --https-key, listen on 127.0.0.1, or pass --insecure-http",
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


def bind(settings: HttpSettings) -> socket.socket:
    """A listening-ready socket bound to the settings' address.

    Raises:
        ServerSetupError: the address cannot be bound (in use, not local, no permission).
    """
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host.strip("[]"), settings.port))
    except OSError as exc:
        sock.close()
        raise ServerSetupError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from exc
    sock.set_inheritable(True)
    return sock


def uvicorn_server(app: FastAPI, settings: HttpSettings) -> uvicorn.Server:
    """A uvicorn server for ``app`` (serve it with ``server.serve(sockets=[bind(settings)])``).

    Raises:
        ServerSetupError: see :func:`check_settings`.
    """
    check_settings(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # provkit's logging configuration stays in charge
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        ssl_certfile=settings.certificate,
        ssl_keyfile=settings.private_key,
    )
    return uvicorn.Server(config)


def base_url(settings: HttpSettings, sock: socket.socket) -> str:
    """The URL clients use for a server listening on ``sock``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if settings.https else 'http'}://{shown}:{port}"


class BackgroundApi:
    """The API served by uvicorn in a thread of this process (tests, embedding, the CLI).

    Use as a context manager; :attr:`url` is where it listens.

    Raises:
        ServerSetupError: unusable settings, or the server did not start.
    """

    def __init__(self, app: FastAPI, settings: HttpSettings) -> None:
        self._server = uvicorn_server(app, settings)
        self._socket = bind(settings)
        self.url = base_url(settings, self._socket)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="provkit-api", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise ServerSetupError(f"the API server at {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=_START_TIMEOUT_S)
        self._socket.close()

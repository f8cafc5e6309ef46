"""Serving the API over HTTP(S) with uvicorn: a bound socket, the uvicorn server, a background server.

The settings and the plain-HTTP rule are :mod:`provkit.server.http_settings`.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

from provkit.errors import ServerSetupError
from provkit.server.http_settings import HttpSettings, check_settings

if TYPE_CHECKING:  # uvicorn and FastAPI load only when the API is served
    import uvicorn
    from fastapi import FastAPI

_START_TIMEOUT_S: Final = 15.0


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
    import uvicorn

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
    return settings.url(int(sock.getsockname()[1]))


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

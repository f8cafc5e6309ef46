"""The first connection: a self-hostable LwM2M bootstrap and registration server over DTLS.

``provkit server run`` serves, on the registry database:

* an LwM2M **bootstrap server** and an LwM2M **server** over CoAP over DTLS 1.2
  (python-mbedtls: certificate mode with mutual authentication, and PSK mode), and
  optionally over plain CoAP (NoSec);
* the HTTP app of :mod:`provkit.server.http`, which serves the Device Management API
  (:mod:`provkit.server.api`).

Library API:

* :func:`~provkit.server.home.init_home` / :func:`~provkit.server.home.load_home` — the
  server's CAs, certificate and keys;
* :class:`~provkit.server.config.ServerConfig`, :func:`~provkit.server.process.run_server`,
  :class:`~provkit.server.process.ServerThread` — running it;
* trust, revocations, connections and PSK credentials live in the registry:
  ``registry.trust``, ``registry.revocations``, ``registry.connections``, ``registry.psk``.

See ``docs/server.md``.
"""

from provkit.server.config import DEFAULT_BOOTSTRAP_PORT, DEFAULT_LWM2M_PORT, BoundPorts, ServerConfig
from provkit.server.home import ServerMaterial, init_home, load_home
from provkit.server.process import ServerThread, run_server

__all__ = [
    "DEFAULT_BOOTSTRAP_PORT",
    "DEFAULT_LWM2M_PORT",
    "BoundPorts",
    "ServerConfig",
    "ServerMaterial",
    "ServerThread",
    "init_home",
    "load_home",
    "run_server",
]

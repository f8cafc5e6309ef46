"""The servers of one process on one event loop: bootstrap and LwM2M endpoints, trust reloads.

:class:`ServerRuntime` binds the CoAP/DTLS endpoints (or adopts sockets a parent bound),
builds the Mbed TLS contexts from the registry's trusted CAs, and runs two periodic jobs:
the endpoints' timers (retransmissions, idle sessions) and the trust poll, which rebuilds
the contexts and revocations when the registry's trust revision changes (a CA trusted or
revoked by ``provkit server trust-ca``, the Device Management API, or another station).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from mbedtls import tls

from provkit.crypto import seal, x509
from provkit.registry import Registry, Service
from provkit.server import dtls
from provkit.server.bootstrap import BootstrapService, BootstrapSettings
from provkit.server.config import BoundPorts, ServerConfig
from provkit.server.counters import Counters
from provkit.server.endpoint import DtlsEndpoint, PlainEndpoint
from provkit.server.home import ServerMaterial
from provkit.server.policy import Policy
from provkit.server.psk import RegistryPskStore
from provkit.server.recorder import Recorder
from provkit.server.registration import RegistrationService

_log = logging.getLogger(__name__)
_TICK: Final = 0.5


def bind_udp(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Bind a UDP socket (``SO_REUSEPORT`` lets worker processes share the port).

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _factory(endpoint: Any) -> Callable[[], Any]:
    return lambda: endpoint


@dataclass
class _Contexts:
    bootstrap: tls.ServerContext
    lwm2m: tls.ServerContext


class ServerRuntime:
    """Bootstrap and LwM2M servers of one process.

    Args:
        config: what to serve.
        material: the server home.
        registry: the registry (shared with the recorder thread).
    """

    def __init__(self, config: ServerConfig, material: ServerMaterial, registry: Registry) -> None:
        self.config = config
        self.material = material
        self.registry = registry
        self.counters = Counters()
        self.policy = Policy(self.counters, allow_nosec=config.allow_nosec)
        self.endpoints: dict[str, Any] = {}
        self.ports: BoundPorts | None = None
        self._key_id = seal.private_key_id(material.sealing_key)
        self._psk = {
            service: RegistryPskStore(registry, service, material.sealing_key, self._key_id)
            for service in Service
        }
        self._revision = -1
        self._recorder: Recorder | None = None
        self._jobs: list[asyncio.Task[None]] = []
        self._transports: list[asyncio.BaseTransport] = []

    # ------------------------------------------------------------------ contexts
    def _load_trust(self) -> tuple[int, dict[Service, list[bytes]], Any]:
        revision = self.registry.trust.revision()
        anchors = {service: self.registry.trust.active(service) for service in Service}
        # Credentials this server issues at bootstrap are signed by its device CA.
        anchors[Service.LWM2M].append(x509.certificate_der(self.material.device_ca_cert))
        return revision, anchors, self.registry.revocations.snapshot()

    def _contexts(self, anchors: dict[Service, list[bytes]]) -> _Contexts:
        def build(service: Service) -> tls.ServerContext:
            configuration = dtls.server_configuration(
                self.material.server_chain,
                self._server_key_der,
                anchors[service],
                self._psk[service],
                handshake_timeout=self.config.handshake_timeout,
            )
            return tls.ServerContext(configuration)

        return _Contexts(build(Service.BOOTSTRAP), build(Service.LWM2M))

    @property
    def _server_key_der(self) -> bytes:
        from provkit.crypto import keys

        return keys.private_key_der(self.material.server_key)

    def _apply_trust(self, revision: int, anchors: dict[Service, list[bytes]], revoked: Any) -> None:
        contexts = self._contexts(anchors)
        for service, endpoint in self.endpoints.items():
            if isinstance(endpoint, DtlsEndpoint):
                store = self._psk[Service(service)]
                store.forget()
                endpoint.set_context(getattr(contexts, service), store)
        self.policy.revoked = revoked
        if self._revision >= 0:
            _log.info(
                "trust changed (revision %d): %s", revision, {s.value: len(a) for s, a in anchors.items()}
            )
        self._revision = revision

    # ------------------------------------------------------------------ lifecycle
    async def start(self, sockets: dict[str, socket.socket] | None = None) -> BoundPorts:
        """Bind (or adopt ``sockets``) and start serving; return the ports.

        Raises:
            OSError: a port cannot be bound.
            RegistryError: the registry is unreachable.
        """
        loop = asyncio.get_running_loop()
        config = self.config
        revision, anchors, revoked = await loop.run_in_executor(None, self._load_trust)
        contexts = self._contexts(anchors)
        self.policy.revoked = revoked
        self._revision = revision
        self._recorder = Recorder(
            self.registry, loop, config.server_id or self.registry.station_id, self._lost
        )
        sockets = dict(sockets or {})
        wanted = {
            "bootstrap": config.bootstrap_port,
            "lwm2m": config.lwm2m_port,
            "coap_bootstrap": config.coap_bootstrap_port,
            "coap_lwm2m": config.coap_lwm2m_port,
        }
        for name, port in wanted.items():
            if port is not None and name not in sockets:
                sockets[name] = bind_udp(config.host, port)
        bound = {name: sock.getsockname()[1] for name, sock in sockets.items()}
        public_host = config.public_host or self.material.addresses[0]
        provisional = BoundPorts(config.host, bound.get("bootstrap"), bound.get("lwm2m"))
        lwm2m_uri = provisional.uri("lwm2m", public_host=public_host) or ""
        if "lwm2m" not in bound and "coap_lwm2m" in bound:
            lwm2m_uri = (
                BoundPorts(config.host, None, None, None, bound["coap_lwm2m"]).uri(
                    "lwm2m", public_host=public_host, secure=False
                )
                or ""
            )
        bootstrap = BootstrapService(
            BootstrapSettings(lwm2m_uri, lifetime=config.lifetime, issue=config.issue),
            self.material,
            self.registry,
            self._recorder,
            self.policy,
            self.counters,
        )
        registration = RegistrationService(self.registry, self._recorder, self.policy, self.counters)
        for name, sock in sockets.items():
            service: Any = bootstrap if name.endswith("bootstrap") else registration
            endpoint: Any
            if name in ("bootstrap", "lwm2m"):
                endpoint = DtlsEndpoint(
                    service,
                    getattr(contexts, name),
                    self._psk[Service(name)],
                    self.counters,
                    max_handshakes=config.max_handshakes,
                    idle_timeout=config.idle_timeout,
                )
            else:
                endpoint = PlainEndpoint(
                    service, self.counters, idle_timeout=config.idle_timeout, max_sessions=100_000
                )
            transport, _ = await loop.create_datagram_endpoint(_factory(endpoint), sock=sock)
            self._transports.append(transport)
            self.endpoints[name] = endpoint
        self._jobs = [loop.create_task(self._ticker()), loop.create_task(self._trust_poll())]
        self.ports = BoundPorts(
            config.host,
            bound.get("bootstrap"),
            bound.get("lwm2m"),
            bound.get("coap_bootstrap"),
            bound.get("coap_lwm2m"),
        )
        return self.ports

    def _lost(self, count: int) -> None:
        self.counters.registry_errors += count

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            now = time.monotonic()
            for endpoint in self.endpoints.values():
                try:
                    endpoint.tick(now)
                except Exception:  # a timer bug must not stop the others
                    _log.exception("endpoint timer failed")

    async def _trust_poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.trust_poll)
            try:
                revision = await loop.run_in_executor(None, self.registry.trust.revision)
                if revision != self._revision:
                    loaded = await loop.run_in_executor(None, self._load_trust)
                    self._apply_trust(*loaded)
            except Exception as exc:  # the registry may be briefly unreachable; keep serving
                self.counters.registry_errors += 1
                _log.warning("cannot read the trust revision: %s", exc)

    async def close(self) -> None:
        """Stop serving: cancel the timers, wait for requests in progress, flush the recorder."""
        for job in self._jobs:
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        for endpoint in self.endpoints.values():
            await endpoint.drain()
        for transport in self._transports:
            transport.close()
        if self._recorder is not None:
            recorder, self._recorder = self._recorder, None
            recorder.close()

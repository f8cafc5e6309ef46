"""Running ``provkit server``: one process (plus optional workers) serving CoAP/DTLS and HTTP.

* :func:`run_server` — what ``provkit server run`` does: open the registry, bind the
  ports, start ``workers - 1`` worker processes that share the CoAP ports through
  ``SO_REUSEPORT`` (python-mbedtls holds the GIL during a handshake, so a second core
  needs a second process; the kernel hashes each peer's address to one socket, so a
  peer's datagrams always reach the same process), serve the HTTP app
  (:mod:`provkit.server.http`) in the first process, and stop cleanly on SIGINT/SIGTERM.
* :class:`ServerThread` — the same servers on a background thread of the calling
  process, for tests and embedding (no workers, no signal handling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from provkit.errors import ServerError, ServerSetupError
from provkit.registry import Registry
from provkit.server.config import BoundPorts, ServerConfig
from provkit.server.counters import Counters
from provkit.server.home import ServerMaterial, load_home
from provkit.server.http_settings import HttpSettings, check_settings
from provkit.server.runtime import ServerRuntime, bind_udp

_log = logging.getLogger(__name__)

BIND_FAILED = 8020
"""Code of :class:`~provkit.errors.ServerError` when a port cannot be bound."""


def open_server(config: ServerConfig) -> tuple[ServerMaterial, Registry]:
    """Load the server home, open (and migrate) the registry, publish the PSK sealing key.

    Raises:
        ServerSetupError: the home is missing or unusable, or the HTTP settings would
            serve API keys in clear or name an unusable certificate.
        RegistryError: the registry is unreachable.
    """
    if config.http_port is not None:
        check_settings(http_settings(config))  # before any port is bound
    material = load_home(config.home)
    registry = Registry.open(config.registry_url, station_id=config.server_id)
    try:
        registry.psk.publish_sealing_key(material.sealing_public_der)
    except Exception:
        registry.close()
        raise
    return material, registry


def _uris(config: ServerConfig, material: ServerMaterial, ports: BoundPorts) -> tuple[str | None, str | None]:
    public_host = config.public_host or material.addresses[0]
    return ports.uri("bootstrap", public_host=public_host), ports.uri("lwm2m", public_host=public_host)


def http_settings(config: ServerConfig) -> HttpSettings:
    """Where and how the HTTP app is served.

    Raises:
        ValueError: the HTTP app is off (``http_port`` is ``None``).
    """
    if config.http_port is None:
        raise ValueError("the HTTP app is off")
    return HttpSettings(
        host=config.http_host or config.host,
        port=config.http_port,
        certificate=config.https_certificate,
        private_key=config.https_key,
        insecure_http=config.insecure_http,
    )


class _Http:
    """uvicorn serving the HTTP app inside the server's own event loop."""

    def __init__(self, app: Any, settings: HttpSettings) -> None:
        import uvicorn

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                # The server process handles SIGINT/SIGTERM itself and stops uvicorn.
                yield

        check_settings(settings)  # plain HTTP only on loopback; a usable certificate
        self.server = _Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                server_header=False,
                ssl_certfile=settings.certificate,
                ssl_keyfile=settings.private_key,
            )
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        self.task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise ServerError("the HTTP server did not start", code=BIND_FAILED)
            await asyncio.sleep(0.01)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


async def _serve(
    config: ServerConfig,
    material: ServerMaterial,
    registry: Registry,
    stop: asyncio.Event,
    *,
    sockets: dict[str, Any] | None = None,
    ready: Callable[[BoundPorts, ServerRuntime], None] | None = None,
    with_http: bool = True,
) -> Counters:
    runtime = ServerRuntime(config, material, registry)
    http: _Http | None = None
    try:
        ports = await runtime.start(sockets)
        if with_http and config.http_port is not None:
            from provkit.server.http import AppContext, create_app

            bootstrap_uri, lwm2m_uri = _uris(config, material, ports)
            context = AppContext(
                registry, material, config, bootstrap_uri, lwm2m_uri, runtime.counters.as_dict
            )
            http = _Http(create_app(context), http_settings(config))
            ports = replace(ports, http=await http.start())
        runtime.ports = ports
        if ready is not None:
            ready(ports, runtime)
        await stop.wait()
    finally:
        if http is not None:
            await http.stop()
        await runtime.close()
    return runtime.counters


@dataclass
class ServerThread:
    """The servers on a background thread (tests, embedding): ``start()``, use ``ports``, ``stop()``.

    Args:
        config: what to serve (use port 0 for free ports).
    """

    config: ServerConfig
    ports: BoundPorts | None = None
    runtime: ServerRuntime | None = None
    material: ServerMaterial | None = None

    def __post_init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._registry: Registry | None = None

    def start(self, timeout: float = 30.0) -> BoundPorts:
        """Start serving; return the bound ports.

        Raises:
            ServerError: the servers did not start (the cause is chained).
        """
        self.material, self._registry = open_server(self.config)
        self._thread = threading.Thread(target=self._run, name="provkit-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self.ports is None:
            self.stop()
            raise ServerError("the server did not start") from self._error
        return self.ports

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            assert self.material is not None and self._registry is not None

            def ready(ports: BoundPorts, runtime: ServerRuntime) -> None:
                self.ports, self.runtime = ports, runtime
                self._ready.set()

            await _serve(self.config, self.material, self._registry, self._stop, ready=ready)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            _log.exception("server thread failed")
        finally:
            self._ready.set()

    def call(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` on the server's loop and return its result (inspect state in tests)."""
        assert self._loop is not None
        result: list[Any] = []
        done = threading.Event()

        def run() -> None:
            try:
                result.append(function())
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)
        return result[0] if result else None

    @property
    def counters(self) -> Counters:
        """The servers' counters."""
        assert self.runtime is not None
        return self.runtime.counters

    def stop(self) -> None:
        """Stop serving and close the registry."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- the command's process
def _bind_shared(config: ServerConfig) -> dict[str, Any]:
    ports = {
        "bootstrap": config.bootstrap_port,
        "lwm2m": config.lwm2m_port,
        "coap_bootstrap": config.coap_bootstrap_port,
        "coap_lwm2m": config.coap_lwm2m_port,
    }
    sockets: dict[str, Any] = {}
    try:
        for name, port in ports.items():
            if port is not None:
                sockets[name] = bind_udp(config.host, port, reuse_port=config.workers > 1)
    except OSError as exc:
        for sock in sockets.values():
            sock.close()
        raise ServerError(f"cannot bind {config.host}: {exc.strerror or exc}", code=BIND_FAILED) from exc
    return sockets


def _worker_main(config: ServerConfig, index: int, bound: Any) -> None:
    """A worker process serving the shared CoAP ports until SIGTERM; sets ``bound`` once it serves."""
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s worker{index} %(levelname)s %(name)s: %(message)s"
    )
    material, registry = open_server(config)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        sockets = _bind_shared(config)
        await _serve(
            config, material, registry, stop, sockets=sockets, with_http=False, ready=lambda *_: bound.set()
        )

    try:
        asyncio.run(main())
    finally:
        registry.close()


def run_server(config: ServerConfig, ready: Callable[[BoundPorts], None]) -> Counters:
    """Serve until SIGINT or SIGTERM (what ``provkit server run`` does); return the counters.

    ``ready`` is called with the bound ports once every port (and worker) serves.

    Raises:
        ServerSetupError: the server home is unusable.
        ServerError: a port cannot be bound.
        RegistryError: the registry is unreachable.
    """
    if config.workers < 1:
        raise ServerSetupError("--workers must be at least 1")
    material, registry = open_server(config)
    sockets = _bind_shared(config)
    # Workers bind the very ports the first process got (port 0 resolves here, once).
    resolved = replace(
        config,
        **{f"{name}_port": sock.getsockname()[1] for name, sock in sockets.items()},
    )
    workers: list[Any] = []
    spawn = multiprocessing.get_context("spawn")
    for index in range(1, config.workers):
        bound = spawn.Event()
        worker = spawn.Process(
            target=_worker_main, args=(resolved, index, bound), name=f"provkit-server-worker{index}"
        )
        worker.start()
        workers.append((worker, bound))
    # The kernel spreads peers over the sockets bound to a port: a worker binding later would
    # take over peers in the middle of their handshake with this process. So nothing is served
    # (datagrams wait in the socket buffers) until every worker has bound.
    for worker, bound in workers:
        while not bound.wait(0.2):
            if not worker.is_alive():
                _stop_workers([w for w, _ in workers])
                registry.close()
                raise ServerError(
                    f"{worker.name} did not start (exit status {worker.exitcode})", code=BIND_FAILED
                )

    async def main() -> Counters:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        def started(ports: BoundPorts, _runtime: ServerRuntime) -> None:
            ready(ports)

        return await _serve(resolved, material, registry, stop, sockets=sockets, ready=started)

    try:
        return asyncio.run(main())
    finally:
        _stop_workers([w for w, _ in workers])
        registry.close()


def _stop_workers(workers: list[Any]) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=30)

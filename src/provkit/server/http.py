"""The HTTP side of ``provkit server``: the ASGI app served next to the CoAP endpoints.

``provkit server run --http-port PORT`` serves :func:`create_app`'s app with uvicorn, in
the same process and event loop as the bootstrap and LwM2M servers and on the same
registry. This is where HTTP features plug in: build an ``APIRouter`` in your own module
(e.g. ``provkit.server.dmapi`` for the Device Management API) and include it in
:func:`create_app`; the :class:`AppContext` gives it the registry, the server home and
the URIs of the CoAP services. FastAPI is imported only when the HTTP app is enabled.

Endpoints served here:

* ``GET /health`` — ``{"status": "ok", "bootstrap_uri", "lwm2m_uri", "counters": {…}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provkit.registry import Registry
from provkit.server.config import ServerConfig
from provkit.server.home import ServerMaterial


@dataclass(frozen=True)
class AppContext:
    """What HTTP routes may use.

    Attributes:
        registry: the registry the servers use (thread-safe; call it from a thread pool).
        material: the server home (CAs, certificates, keys).
        config: the server settings.
        bootstrap_uri: ``coaps://`` URI of the bootstrap server, as devices must use it.
        lwm2m_uri: ``coaps://`` URI of the LwM2M server.
        counters: returns the process's server counters by name.
    """

    registry: Registry
    material: ServerMaterial
    config: ServerConfig
    bootstrap_uri: str | None
    lwm2m_uri: str | None
    counters: Callable[[], dict[str, int]]


def create_app(context: AppContext) -> Any:
    """Build the ASGI app of ``provkit server`` (FastAPI).

    Add feature routers here, each from its own module::

        from provkit.server.dmapi import router as dmapi_router
        app.include_router(dmapi_router)
    """
    from fastapi import FastAPI

    app = FastAPI(title="provkit server", version="1", docs_url="/docs")
    app.state.context = context

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, the CoAP URIs, and the counters of this process."""
        return {
            "status": "ok",
            "bootstrap_uri": context.bootstrap_uri,
            "lwm2m_uri": context.lwm2m_uri,
            "counters": context.counters(),
        }

    return app

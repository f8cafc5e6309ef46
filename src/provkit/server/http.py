"""The HTTP side of ``provkit server``: the ASGI app served next to the CoAP endpoints.

``provkit server run --http-port PORT`` serves :func:`create_app`'s app with uvicorn, in
the same process and event loop as the bootstrap and LwM2M servers and on the same
registry. The app is the Device Management API (:mod:`provkit.server.api`: its JSON
errors, API-key authentication and OpenAPI docs at ``/docs``); its developer CA is sealed
with the server home's sealing key and signs for this server's bootstrap URI. Other HTTP
features add routers to it from their own modules (``extra_routers``) and reuse its
authentication (:mod:`provkit.server.api.auth`); the :class:`AppContext` gives them the
registry, the server home and the URIs of the CoAP services. FastAPI is imported only when
the HTTP app is enabled.

Endpoints served here, besides the API:

* ``GET /health`` — ``{"status": "ok", "bootstrap_uri", "lwm2m_uri", "counters": {…}}``;
* ``/line`` — the line view (:mod:`provkit.server.lineview`): a live page of the factory
  line, device search and device pages, on the same registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def create_app(context: AppContext, *, extra_routers: Iterable[Any] = ()) -> Any:
    """Build the ASGI app of ``provkit server`` (FastAPI): the Device Management API and ``/health``.

    Args:
        context: what the server process offers HTTP routes.
        extra_routers: more ``APIRouter``s of other features, served by the same app.

    Raises:
        SealError: the registry's developer CA was sealed by a server with another home.
    """
    from fastapi import APIRouter

    from provkit.server.api import ApiContext, DeveloperAuthority, ServerIdentity
    from provkit.server.api import create_app as create_api
    from provkit.server.api.developer import ServerKeySealer

    identity = ServerIdentity(context.bootstrap_uri, context.lwm2m_uri, context.material.ca_der)
    sealer = ServerKeySealer(context.material.sealing_key)
    api = ApiContext(context.registry, DeveloperAuthority.open(context.registry, sealer, identity))
    server = APIRouter(tags=["server"])

    @server.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, the CoAP URIs, and the counters of this process."""
        return {
            "status": "ok",
            "bootstrap_uri": context.bootstrap_uri,
            "lwm2m_uri": context.lwm2m_uri,
            "counters": context.counters(),
        }

    from provkit.server.lineview import build_router as line_view

    app = create_api(api, extra_routers=[server, line_view(), *extra_routers])
    app.state.server = context
    return app

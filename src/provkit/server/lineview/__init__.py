"""The line view: a live web page of the factory line, served by ``provkit server``.

``/line`` shows the line now (devices provisioned per minute and station, running
batches with progress and ETA, yields, failures by code with their meaning, stations gone
quiet), updated every few seconds without reloading; ``/line/devices?q=…`` finds a device
by endpoint name, serial number, certificate fingerprint, enrollment id or attempt id;
``/line/device?endpoint=…`` shows its attempts, certificate and first connection. Every
page exports what it shows (JSON, CSV) and keeps its filter in its URL. Pages are
rendered on the server; the script and style sheet come from the package (no CDN).
Reading is open; revoking a device needs an administrators API key
(:mod:`~provkit.server.lineview.sessions`). Figures come from
:mod:`provkit.registry.activity`.
"""

from provkit.server.lineview.routes import PREFIX, build_router

__all__ = ["PREFIX", "build_router"]

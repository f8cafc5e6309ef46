"""The HTTP app served next to the CoAP endpoints, in the same process and loop."""

from __future__ import annotations

import json
import urllib.request

import pytest

from provkit.server import ServerThread
from provkit.server.client import register

from .conftest import World

pytestmark = pytest.mark.integration


def test_health_shows_uris_and_counters(world: World) -> None:
    """GET /health answers from the server's process with the CoAP URIs and live counters."""
    with ServerThread(world.config(http_port=0)) as server:
        assert server.ports is not None and server.ports.http
        register(world.cert_account(f"coaps://127.0.0.1:{server.ports.lwm2m}", "dev-1"), "dev-1")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.ports.http}/health", timeout=10) as answer:
            health = json.loads(answer.read())
    assert health["status"] == "ok"
    assert health["lwm2m_uri"] == f"coaps://127.0.0.1:{server.ports.lwm2m}"
    assert health["bootstrap_uri"] == f"coaps://127.0.0.1:{server.ports.bootstrap}"
    assert health["counters"]["registrations"] == 1

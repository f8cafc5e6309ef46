"""Helpers for tests that run ``provkit server`` (a ServerThread) against a registry."""

from __future__ import annotations

import time

from provkit.registry import Registry
from provkit.server import ServerThread


def wait_for_trust(server: ServerThread, registry: Registry) -> None:
    """Wait (bounded) until ``server`` has loaded ``registry``'s current trust revision."""
    revision = registry.trust.revision()
    deadline = time.monotonic() + 10
    while server.call(lambda: server.runtime._revision) != revision:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the server did not reload its trust"
        time.sleep(0.05)

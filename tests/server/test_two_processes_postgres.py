"""Two ``provkit server run`` processes (one with two SO_REUSEPORT workers) on one PostgreSQL registry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from provkit.crypto import x509
from provkit.errors import ConnectError
from provkit.registry import Registry
from provkit.server.client import register
from support import pg

from .conftest import World

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

T = TypeVar("T")


@pytest.fixture
def pg_world(world: World) -> Iterator[World]:
    """The world fixture, but with its registry in a fresh PostgreSQL schema."""
    with pg.fresh_schema() as url:
        with Registry.open(url) as registry:
            registry.psk.publish_sealing_key(world.material.sealing_public_der)
            registry.trust.add(x509.certificate_der(world.ca), service="lwm2m")
        world.registry_url = url
        yield world


def _start(world: World, name: str, *extra: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    ready = world.root / f"{name}.json"
    command = [
        sys.executable, "-m", "provkit.cli", "server", "run",
        "--server-home", str(world.material.home), "--registry", world.registry_url,
        "--bootstrap-port", "0", "--lwm2m-port", "0", "--ready-file", str(ready), *extra,
    ]  # fmt: skip
    env = {**os.environ, "PROVKIT_STATION_ID": name}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    return process, json.loads(ready.read_text())


def _eventually(action: Callable[[], T]) -> T:
    """Retry ``action`` until the servers' trust poll (1 s) has seen a change; bounded."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return action()
        except (ConnectError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_two_servers_share_one_postgresql_registry(pg_world: World) -> None:
    """Registrations at either process land in one registry; trust and revocations reach both."""
    world = pg_world
    a, ready_a = _start(world, "srv-a", "--workers", "2")
    b, ready_b = _start(world, "srv-b")
    try:
        uri_a, uri_b = str(ready_a["lwm2m"]), str(ready_b["lwm2m"])
        assert ready_a["workers"] == 2 and uri_a != uri_b
        for index in range(6):  # several source ports: the kernel spreads them over A's workers
            register(world.cert_account(uri_a, f"dev-a{index}"), f"dev-a{index}")
        register(world.cert_account(uri_b, "dev-b"), "dev-b")
        with Registry.open(world.registry_url) as registry:
            by_server = {c.endpoint_name: c.server_id for c in registry.connections.find(service="lwm2m")}
            registry.psk.record("psk-dev", "psk-dev", b"shared-psk-key-1")
        assert by_server == {**{f"dev-a{i}": "srv-a" for i in range(6)}, "dev-b": "srv-b"}

        psk = world.psk_account(uri_b, b"psk-dev", b"shared-psk-key-1")
        _eventually(lambda: register(psk, "psk-dev"))
        register(world.psk_account(uri_a, b"psk-dev", b"shared-psk-key-1"), "psk-dev")

        with Registry.open(world.registry_url) as registry:
            registry.revocations.revoke_endpoint("dev-b")

        def refused_at_a() -> str:
            try:
                register(world.cert_account(uri_a, "dev-b"), "dev-b")
            except ConnectError as refused:
                return refused.failure
            raise AssertionError("not refused yet")

        assert _eventually(refused_at_a) == "revoked"
    finally:
        for process in (a, b):
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=60) for process in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outputs
    stopped = json.loads(outputs[0][0].splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["counters"]["registrations"] >= 1

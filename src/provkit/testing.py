"""Helpers for testing factory tools and firmware flows against provkit, without hardware.

A factory tool written against provkit (or against Arm's FCU API, which provkit mirrors)
needs a device in its tests. :func:`virtual_device` serves one on loopback: a real
device agent (the ``mbedprov`` frame protocol over TCP) in front of a real FCC and KCM,
answering exactly as ``provkit device serve`` does, with its storage in memory or in a
SQLite file. Its :class:`VirtualDevice` gives the address to provision and the device's
KCM to check what was stored::

    from provkit.testing import virtual_device

    with virtual_device() as device:
        my_factory_tool.provision(device.address)           # "127.0.0.1:PORT"
        assert device.config("mbed.EndpointName") == b"dev-0001"
        assert device.verify().ok

:func:`memory_kcm` is device storage alone, for code that reads or writes KCM items.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provkit.device.clock import DeviceClock
from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.handlers import device_handlers
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import MemoryStorage, OpenMode, open_storage
from provkit.device.verify import VerifyResult, verify_device
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer

__all__ = ["VirtualDevice", "memory_kcm", "virtual_device"]


@dataclass(frozen=True)
class VirtualDevice:
    """A virtual device being served.

    Attributes:
        host: the address it listens on (loopback).
        port: its TCP port.
        kcm: its storage, to check what a bundle stored.
        client: its Factory Configurator Client.
    """

    host: str
    port: int
    kcm: Kcm
    client: FactoryConfiguratorClient

    @property
    def address(self) -> str:
        """``host:port``, as ``--tcp`` and a ``devices.csv`` row take it."""
        return f"{self.host}:{self.port}"

    def config(self, name: str) -> bytes:
        """The stored configuration parameter ``name`` (e.g. ``mbed.EndpointName``).

        Raises:
            ItemNotFoundError: it is not stored.
        """
        return self.kcm.item_get(name, ItemType.CONFIG)

    def verify(self) -> VerifyResult:
        """Check the stored items as FCC's ``fcc_verify_device_configured_4mbed_cloud`` does."""
        clock = DeviceClock(self.kcm)
        return verify_device(self.kcm, clock.now)


def memory_kcm() -> Kcm:
    """An empty KCM on storage that lives in memory."""
    return Kcm(MemoryStorage())


@contextmanager
def virtual_device(
    storage: str | Path = ":memory:", *, atomic_bundles: bool = False
) -> Iterator[VirtualDevice]:
    """Serve a virtual device on 127.0.0.1 (a free port) until the block ends.

    Args:
        storage: ``:memory:``, or a SQLite file (created if missing) that outlives the block.
        atomic_bundles: make each bundle all-or-nothing (the real FCC keeps what a refused
            bundle stored before the refusal).
    """
    backend = open_storage(storage, mode=OpenMode.CREATE)
    try:
        kcm = Kcm(backend)
        client = FactoryConfiguratorClient(kcm, atomic_bundles=atomic_bundles)
        agent = DeviceAgent(device_handlers(client, kcm))
        with TcpAgentServer(agent, "127.0.0.1", 0) as server:
            host, port = server.address
            yield VirtualDevice(host, port, kcm, client)
    finally:
        backend.close()

"""The demo: a complete factory → device provisioning on loopback, from nothing.

A fresh FCU home from the embedded template (with DEMO-only server CA certificates), a
factory CA, a virtual device (FCC + KCM in memory) served on 127.0.0.1, and one device
provisioned through :func:`provkit.factory.provision.provision_one` — the same flow as
``provkit inject``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.handlers import fcc_handler
from provkit.device.kcm import ItemInfo, Kcm
from provkit.device.storage import MemoryStorage
from provkit.factory.api import FactoryToolApi
from provkit.factory.home import make_demo_home
from provkit.factory.provision import ProvisionOutcome, provision_one
from provkit.transport.agent import DeviceAgent
from provkit.transport.servers import TcpAgentServer
from provkit.transport.spec import TcpTarget
from provkit.wire.framing import FCC_TOKEN


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo did.

    Attributes:
        outcome: how provisioning the virtual device went.
        stored: what the device holds afterwards (empty when setup failed).
    """

    outcome: ProvisionOutcome
    stored: tuple[ItemInfo, ...] = ()


def run_demo(home: Path, endpoint_name: str, serial_number: str) -> DemoResult:
    """Provision an in-process virtual device from a fresh demo FCU home in ``home``.

    Never raises a provkit error: a setup that fails (e.g. an unusable
    ``PROVKIT_CA_PASSPHRASE``) is the outcome, and nothing is injected then.
    """
    paths = make_demo_home(home)
    api = FactoryToolApi(paths.home, paths.resources, paths.keystore, paths.config_file)
    setup = api.setup_factory_configurator_utility()
    if not setup.ok:
        error = setup.errors[0]
        return DemoResult(ProvisionOutcome(setup.status, error.message, hint=error.hint))
    kcm = Kcm(MemoryStorage())
    agent = DeviceAgent({FCC_TOKEN: fcc_handler(FactoryConfiguratorClient(kcm))})
    with TcpAgentServer(agent, "127.0.0.1", 0) as server:
        outcome = provision_one(api, TcpTarget(*server.address), endpoint_name, serial_number)
    return DemoResult(outcome, tuple(kcm.list_items()))

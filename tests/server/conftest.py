"""Server fixtures: a server home, a factory CA, a registry, and a server running on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from provkit.crypto import issue, keys, x509
from provkit.registry import Registry
from provkit.server import ServerConfig, ServerMaterial, ServerThread, init_home
from provkit.server.client import Account, Credentials
from support.server import wait_for_trust as support_wait

NOW = dt.datetime.now(dt.UTC)


@dataclass
class World:
    """A factory CA, a server home and a registry, all under one temporary directory."""

    root: Path
    registry_url: str
    material: ServerMaterial
    ca_key: keys.PrivateKey
    ca: x509.Certificate

    def config(self, **changes: object) -> ServerConfig:
        base = ServerConfig(
            home=self.material.home,
            registry_url=self.registry_url,
            bootstrap_port=0,
            lwm2m_port=0,
            trust_poll=0.1,
            handshake_timeout=4.0,
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    def registry(self) -> Registry:
        return Registry.open(self.registry_url)

    def device_certificate(
        self, cn: str, *, ca_key: keys.PrivateKey | None = None, ca: x509.Certificate | None = None
    ) -> tuple[bytes, bytes]:
        """A device key (SEC1 DER) and certificate (DER) signed by the factory CA (or another)."""
        key = keys.generate_p256()
        cert = issue.issue_device_certificate(
            ca_key or self.ca_key,
            ca or self.ca,
            key.public_key(),
            common_name=cn,
            subject={},
            not_before=NOW - dt.timedelta(hours=1),
            validity_years=1,
        )
        return keys.private_key_der(key), x509.certificate_der(cert)

    def cert_account(self, uri: str, cn: str, *, bootstrap: bool = False, **kwargs: object) -> Account:
        key, cert = self.device_certificate(cn, **kwargs)  # type: ignore[arg-type]
        credentials = Credentials(
            "certificate", chain=(cert,), private_key=key, server_ca=self.material.ca_der
        )
        return Account(uri, bootstrap, credentials)

    def psk_account(self, uri: str, identity: bytes, key: bytes, *, bootstrap: bool = False) -> Account:
        return Account(uri, bootstrap, Credentials("psk", psk_identity=identity, psk_key=key))


def wait_for_trust(server: ServerThread, world: World) -> None:
    """Wait (bounded) until the server has loaded the registry's current trust revision."""
    with world.registry() as registry:
        support_wait(server, registry)


@pytest.fixture
def world(tmp_path: Path) -> World:
    material = init_home(tmp_path / "server", ["127.0.0.1"])
    ca_key = keys.generate_p256()
    ca = issue.create_ca(ca_key, {"common-name": "factory CA"}, now=NOW)
    registry_url = str(tmp_path / "registry.sqlite")
    with Registry.open(registry_url) as registry:
        registry.psk.publish_sealing_key(material.sealing_public_der)
        registry.trust.add(x509.certificate_der(ca), service="bootstrap")
        registry.trust.add(x509.certificate_der(ca), service="lwm2m")
    return World(tmp_path, registry_url, material, ca_key, ca)


@pytest.fixture
def server(world: World) -> Iterator[ServerThread]:
    with ServerThread(world.config()) as running:
        yield running

"""Bootstrap then register, over real DTLS: the bootstrap server issues the LwM2M account."""

from __future__ import annotations

import pytest

from provkit.crypto import x509
from provkit.errors import ConnectError
from provkit.registry import ConnectionOutcome
from provkit.server import ServerThread
from provkit.server.client import bootstrap, register
from provkit.server.device_store import accounts_from_entries

from .conftest import World, wait_for_trust

pytestmark = pytest.mark.integration


def _bootstrap_uri(server: ServerThread) -> str:
    assert server.ports is not None
    return f"coaps://127.0.0.1:{server.ports.bootstrap}"


def test_certificate_bootstrap_issues_a_certificate_account(world: World, server: ServerThread) -> None:
    """Factory certificate → bootstrap → a new key and certificate (CN = endpoint) → registered."""
    written = bootstrap(world.cert_account(_bootstrap_uri(server), "dev-1", bootstrap=True), "dev-1")
    paths = {entry.path for entry in written}
    assert {
        "/0/1/0",
        "/0/1/1",
        "/0/1/2",
        "/0/1/3",
        "/0/1/4",
        "/0/1/5",
        "/0/1/10",
        "/1/0/0",
        "/1/0/1",
        "/1/0/7",
    } <= paths
    (account,) = accounts_from_entries(written)
    assert account.uri == f"coaps://127.0.0.1:{server.ports.lwm2m}" and not account.bootstrap  # type: ignore[union-attr]
    assert (
        account.credentials.mode == "certificate"
        and account.short_server_id == 1
        and account.lifetime == 86400
    )
    issued = x509.load_certificate(account.credentials.chain[0])
    assert x509.common_name(issued) == "dev-1"
    x509.verify_signed_by(issued, world.material.device_ca_cert)
    assert account.credentials.server_certificate == world.material.server_cert_der
    registration = register(account, "dev-1")
    with world.registry() as registry:
        records = {c.service: c for c in registry.connections.get("dev-1")}
    assert (
        records["bootstrap"].outcome is ConnectionOutcome.BOOTSTRAPPED
        and records["bootstrap"].mode == "certificate"
    )
    assert records["lwm2m"].location == registration.location
    assert server.counters.bootstraps_finished == 1


def test_psk_bootstrap_issues_a_recorded_psk(world: World, server: ServerThread) -> None:
    """A PSK device bootstraps and gets a fresh PSK the LwM2M server accepts at once."""
    with world.registry() as registry:
        registry.psk.record("psk-1", "psk-1-factory", b"factory-key-0001", service="bootstrap")
    wait_for_trust(server, world)
    written = bootstrap(
        world.psk_account(_bootstrap_uri(server), b"psk-1-factory", b"factory-key-0001", bootstrap=True),
        "psk-1",
    )
    (account,) = accounts_from_entries(written)
    assert account.credentials.mode == "psk" and account.credentials.psk_identity == b"psk-1"
    assert account.credentials.psk_key and account.credentials.psk_key != b"factory-key-0001"
    with world.registry() as registry:
        assert [c.source for c in registry.psk.find(service="lwm2m")] == ["bootstrap"]
    assert register(account, "psk-1").mode == "psk"


def test_bootstrap_refusals(world: World, server: ServerThread) -> None:
    """CN mismatch and revocation are refused at Bootstrap-Request; nothing is recorded."""
    uri = _bootstrap_uri(server)
    with pytest.raises(ConnectError) as mismatch:
        bootstrap(world.cert_account(uri, "dev-1", bootstrap=True), "dev-2")
    assert mismatch.value.failure == "cn-mismatch"
    with world.registry() as registry:
        registry.revocations.revoke_endpoint("dev-5")
    wait_for_trust(server, world)
    with pytest.raises(ConnectError) as revoked:
        bootstrap(world.cert_account(uri, "dev-5", bootstrap=True), "dev-5")
    assert revoked.value.failure == "revoked"
    with world.registry() as registry:
        assert registry.connections.find() == []

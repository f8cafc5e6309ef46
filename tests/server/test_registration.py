"""Real DTLS 1.2 on 127.0.0.1: registrations in certificate and PSK mode, and every refusal."""

from __future__ import annotations

import pytest

from provkit.crypto import issue, keys, x509
from provkit.errors import ConnectError
from provkit.registry import ConnectionOutcome
from provkit.server import ServerThread
from provkit.server.client import register
from provkit.server.coap import Code, Message

from .conftest import NOW, World, wait_for_trust

pytestmark = pytest.mark.integration


def _uri(server: ServerThread) -> str:
    assert server.ports is not None
    return f"coaps://127.0.0.1:{server.ports.lwm2m}"


def test_certificate_mode_registration_is_recorded(world: World, server: ServerThread) -> None:
    """ECDHE-ECDSA mutual authentication; Register → 2.01 with a location; the registry shows it."""
    registration = register(world.cert_account(_uri(server), "dev-1"), "dev-1", lifetime=300)
    assert registration.location.startswith("/rd/") and registration.mode == "certificate"
    with world.registry() as registry:
        (record,) = registry.connections.get("dev-1")
    assert record.outcome is ConnectionOutcome.REGISTERED and record.service == "lwm2m"
    assert (
        record.location == registration.location and record.lifetime == 300 and record.mode == "certificate"
    )
    assert record.address == registration.local_address and record.objects == "</1/0>,</3/0>"
    assert record.lwm2m_version == "1.1" and record.fingerprint and record.first_seen == record.last_seen
    assert server.counters.registrations == 1 and server.counters.handshakes_completed == 1


def test_update_and_deregister(world: World, server: ServerThread) -> None:
    """Update keeps the location, De-register clears it; only the holder may do either."""
    from provkit.server.client import open_link

    account = world.cert_account(_uri(server), "dev-2")
    with open_link(account) as link:
        created = link.request(Message(code=Code.POST, uri_path=("rd",), uri_query=("ep=dev-2", "lt=60")))
        assert created.code is Code.CREATED
        location = tuple(created.opt.location_path)
        updated = link.request(Message(code=Code.POST, uri_path=location, uri_query=("lt=120",)))
        assert updated.code is Code.CHANGED
    with world.registry() as registry:
        (record,) = registry.connections.get("dev-2")
        assert record.outcome is ConnectionOutcome.UPDATED and record.lifetime == 120
    other = world.cert_account(_uri(server), "dev-3")
    with open_link(other) as link:
        stolen = link.request(Message(code=Code.DELETE, uri_path=location))
        assert stolen.code is Code.NOT_FOUND
    with open_link(account) as link:  # a new DTLS session of the holder finds it in the registry
        gone = link.request(Message(code=Code.DELETE, uri_path=location))
        assert gone.code is Code.DELETED
    with world.registry() as registry:
        (record,) = registry.connections.get("dev-2")
    assert (
        record.outcome is ConnectionOutcome.DEREGISTERED and record.location is None and record.successes == 3
    )


def test_untrusted_ca_is_refused_with_unknown_ca(world: World, server: ServerThread) -> None:
    """A device signed by a CA nobody trusted: alert unknown_ca → ca-untrusted; nothing recorded."""
    rogue_key = keys.generate_p256()
    rogue = issue.create_ca(rogue_key, {"common-name": "rogue CA"}, now=NOW)
    account = world.cert_account(_uri(server), "dev-1", ca_key=rogue_key, ca=rogue)
    with pytest.raises(ConnectError) as refused:
        register(account, "dev-1")
    assert refused.value.failure == "ca-untrusted" and refused.value.code == 8011
    assert "unknown_ca" in str(refused.value)
    _assert_nothing_recorded(world, server)


def test_device_refuses_a_server_it_does_not_trust(world: World, server: ServerThread) -> None:
    """The device holds another server CA: its own verification fails → ca-untrusted."""
    from dataclasses import replace

    account = world.cert_account(_uri(server), "dev-1")
    other_ca = x509.certificate_der(world.material.device_ca_cert)
    wrong = replace(account, credentials=replace(account.credentials, server_ca=other_ca))
    with pytest.raises(ConnectError) as refused:
        register(wrong, "dev-1")
    assert refused.value.failure == "ca-untrusted" and "does not trust the server" in str(refused.value)


def test_cn_mismatch_is_refused(world: World, server: ServerThread) -> None:
    """Certificate CN dev-1 registering as dev-2: 4.03 cn-mismatch."""
    with pytest.raises(ConnectError) as refused:
        register(world.cert_account(_uri(server), "dev-1"), "dev-2")
    assert refused.value.failure == "cn-mismatch" and refused.value.code == 8012
    assert server.counters.refused_cn_mismatch == 1
    _assert_nothing_recorded(world, server)


def test_revoked_device_is_refused_even_while_running(world: World, server: ServerThread) -> None:
    """Revoking an endpoint reaches the running server through the trust revision."""
    account = world.cert_account(_uri(server), "dev-7")
    register(account, "dev-7")
    with world.registry() as registry:
        registry.revocations.revoke_endpoint("dev-7", "returned")
    wait_for_trust(server, world)
    with pytest.raises(ConnectError) as refused:
        register(account, "dev-7")
    assert refused.value.failure == "revoked" and refused.value.code == 8013
    assert server.counters.refused_revoked == 1


def test_psk_mode_registration_and_refusals(world: World, server: ServerThread) -> None:
    """A recorded PSK registers; a wrong key gets bad_record_mac, an unknown identity unknown_psk_identity."""
    with world.registry() as registry:
        registry.psk.record("psk-dev", "psk-dev-id", b"0123456789abcdef")
    wait_for_trust(server, world)
    uri = _uri(server)
    registration = register(world.psk_account(uri, b"psk-dev-id", b"0123456789abcdef"), "psk-dev")
    assert registration.mode == "psk"
    with world.registry() as registry:
        (record,) = registry.connections.get("psk-dev")
    assert record.mode == "psk" and record.outcome is ConnectionOutcome.REGISTERED
    with pytest.raises(ConnectError) as unknown:
        register(world.psk_account(uri, b"nobody", b"0123456789abcdef"), "nobody")
    assert unknown.value.failure == "tls-alert" and "unknown_psk_identity" in str(unknown.value)
    with pytest.raises(ConnectError) as wrong_name:
        register(world.psk_account(uri, b"psk-dev-id", b"0123456789abcdef"), "other-dev")
    assert wrong_name.value.failure == "refused" and "identity" in str(wrong_name.value)
    with pytest.raises(ConnectError) as wrong_key:
        register(world.psk_account(uri, b"psk-dev-id", b"fedcba9876543210"), "psk-dev", timeout=2.0)
    assert wrong_key.value.failure == "tls-alert" and "bad_record_mac" in str(wrong_key.value)
    assert wrong_key.value.hint is not None and "PSK" in wrong_key.value.hint
    with world.registry() as registry:
        assert [c.endpoint_name for c in registry.connections.find()] == ["psk-dev"]


def test_trust_added_while_running_is_used(world: World) -> None:
    """A CA trusted after the server started is accepted within the trust poll."""
    new_key = keys.generate_p256()
    new_ca = issue.create_ca(new_key, {"common-name": "second line CA"}, now=NOW)
    with ServerThread(world.config()) as server:
        account = world.cert_account(_uri(server), "dev-9", ca_key=new_key, ca=new_ca)
        with pytest.raises(ConnectError):
            register(account, "dev-9")
        with world.registry() as registry:
            registry.trust.add(x509.certificate_der(new_ca), service="lwm2m")
        wait_for_trust(server, world)
        assert register(account, "dev-9").location


# ---------------------------------------------------------------------- helpers
def _assert_nothing_recorded(world: World, server: ServerThread) -> None:
    with world.registry() as registry:
        assert registry.connections.find() == []
    assert server.counters.registrations == 0

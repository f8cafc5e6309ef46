"""Registry tables of the first connection: trusted CAs, revocations, connections, PSK credentials."""

from __future__ import annotations

import datetime as dt

import pytest

from provkit.crypto import issue, keys, x509
from provkit.errors import CredentialError, TrustError
from provkit.registry import ConnectionEvent, ConnectionOutcome, Registry, Service, TrustStatus
from provkit.registry.credentials import open_sealed

NOW = dt.datetime.now(dt.UTC)


def _ca(name: str = "factory CA", *, years: int = 5) -> tuple[keys.PrivateKey, x509.Certificate]:
    key = keys.generate_p256()
    return key, issue.create_ca(key, {"common-name": name}, now=NOW, validity_years=years)


def _leaf(ca_key: keys.PrivateKey, ca: x509.Certificate, cn: str) -> x509.Certificate:
    return issue.issue_device_certificate(
        ca_key,
        ca,
        keys.generate_p256().public_key(),
        common_name=cn,
        subject={},
        not_before=NOW,
        validity_years=1,
    )


def test_trust_store_add_find_update_delete(registry_url: str) -> None:
    """A trusted CA is stored with its fields; status and name change; deleting it forgets it."""
    _, ca = _ca()
    with Registry.open(registry_url) as registry:
        before = registry.trust.revision()
        added = registry.trust.add(x509.certificate_pem([ca]), service="lwm2m", description="line 1")
        assert (
            added.name == "factory CA"
            and added.service is Service.LWM2M
            and added.status is TrustStatus.ACTIVE
        )
        assert added.certificate == x509.certificate_der(ca)
        assert added.fingerprint == x509.sha256_fingerprint(ca).hex()
        assert added.not_after == x509.not_valid_after(ca)
        assert "BEGIN CERTIFICATE" in added.pem
        assert registry.trust.revision() == before + 1
        assert registry.trust.active("lwm2m") == [added.certificate]
        assert registry.trust.active("bootstrap") == []
        changed = registry.trust.update(added.id, status="INACTIVE", name="old line")
        assert changed.name == "old line" and registry.trust.active("lwm2m") == []
        registry.trust.delete(added.id)
        assert registry.trust.find() == []
        with pytest.raises(TrustError) as missing:
            registry.trust.get(added.id)
        assert missing.value.code == 8005


def test_same_ca_twice_per_service_is_refused_but_both_services_may_trust_it(registry_url: str) -> None:
    """(service, fingerprint) is unique: 8004 for the second add of the same service."""
    _, ca = _ca()
    der = x509.certificate_der(ca)
    with Registry.open(registry_url) as registry:
        registry.trust.add(der, service="bootstrap")
        registry.trust.add(der, service="lwm2m")
        with pytest.raises(TrustError) as twice:
            registry.trust.add(der, service="bootstrap")
    assert twice.value.code == 8004


def test_unusable_trust_anchors_are_refused(registry_url: str) -> None:
    """Not a certificate, not a CA, or expired: 8001 with the reason."""
    ca_key, ca = _ca()
    leaf = _leaf(ca_key, ca, "dev-1")
    with Registry.open(registry_url) as registry:
        with pytest.raises(TrustError, match=r"not an X\.509"):
            registry.trust.add(b"not a certificate")
        with pytest.raises(TrustError, match="not a CA") as not_ca:
            registry.trust.add(x509.certificate_der(leaf))
        assert not_ca.value.code == 8001 and not_ca.value.hint
        with pytest.raises(TrustError, match="expired"):
            registry.trust.add(x509.certificate_der(ca), now=NOW + dt.timedelta(days=365 * 6))
        assert registry.trust.find() == []


def test_revocations_by_endpoint_certificate_and_fingerprint(registry_url: str) -> None:
    """Each kind of revocation refuses what it names, and only that; lifting one restores it."""
    ca_key, ca = _ca()
    leaf, other = _leaf(ca_key, ca, "dev-1"), _leaf(ca_key, ca, "dev-2")
    with Registry.open(registry_url) as registry:
        before = registry.trust.revision()
        by_endpoint = registry.revocations.revoke_endpoint("dev-9", "stolen")
        registry.revocations.revoke_certificate(x509.certificate_pem([leaf]))
        registry.revocations.revoke_fingerprint(x509.sha256_fingerprint(other).hex(":").upper())
        assert registry.trust.revision() == before + 3
        with pytest.raises(TrustError) as again:
            registry.revocations.revoke_endpoint("dev-9")
        assert again.value.code == 8004
        with pytest.raises(TrustError):
            registry.revocations.revoke_fingerprint("12:34")
        snapshot = registry.revocations.snapshot()
        assert registry.revocations.is_revoked("dev-9") and not registry.revocations.is_revoked("dev-1")
        registry.revocations.remove(by_endpoint.id)
        assert not registry.revocations.is_revoked("dev-9")
    assert snapshot.refuses("dev-9") == "endpoint dev-9 is revoked"
    assert snapshot.refuses("dev-1", x509.sha256_fingerprint(leaf).hex()) is not None
    issuer, serial = leaf.issuer.rfc4514_string(), format(leaf.serial_number, "x")
    assert snapshot.refuses("dev-1", "00" * 32, issuer, serial) is not None
    assert snapshot.refuses("dev-2", x509.sha256_fingerprint(other).hex()) is not None
    assert snapshot.refuses("dev-3", "00" * 32, issuer, "1") is None


def test_connections_upsert_keeps_first_seen_and_counts_successes(registry_url: str) -> None:
    """One row per endpoint and service: later events win, first_seen stays, a failure keeps the location."""
    t0 = NOW.replace(microsecond=0)
    with Registry.open(registry_url, station_id="srv-1") as registry:
        registry.connections.record(
            [
                ConnectionEvent(
                    "dev-1", "bootstrap", ConnectionOutcome.BOOTSTRAPPED, at=t0, mode="certificate"
                ),
                ConnectionEvent(
                    "dev-1", "lwm2m", ConnectionOutcome.REGISTERED, at=t0, location="/rd/abc", lifetime=300
                ),
            ]
        )
        later = t0 + dt.timedelta(minutes=5)
        registry.connections.record(
            [
                ConnectionEvent(
                    "dev-1", "lwm2m", ConnectionOutcome.FAILED, at=later, failure="timeout", error_code=8014
                )
            ],
            server_id="station-7",
        )
        lwm2m = {c.service: c for c in registry.connections.get("dev-1")}["lwm2m"]
        assert lwm2m.first_seen == t0 and lwm2m.last_seen == later
        assert lwm2m.outcome is ConnectionOutcome.FAILED and not lwm2m.ok and lwm2m.failure == "timeout"
        assert lwm2m.location == "/rd/abc" and lwm2m.successes == 1 and lwm2m.server_id == "station-7"
        assert registry.connections.by_location("/rd/abc") is not None
        registry.connections.record(
            [ConnectionEvent("dev-1", "lwm2m", ConnectionOutcome.DEREGISTERED, at=later, location=None)]
        )
        assert registry.connections.by_location("/rd/abc") is None
        assert registry.connections.counts() == {
            "bootstrap": {"bootstrapped": 1},
            "lwm2m": {"deregistered": 1},
        }
        assert [c.service for c in registry.connections.find(since=later)] == ["lwm2m"]
        assert registry.connections.registered_count() == 0


def test_psk_credentials_are_sealed_to_the_server_key(registry_url: str) -> None:
    """Stations seal with the published key; only the server's private key opens it; rows never show keys."""
    sealing = keys.generate_p256()
    with Registry.open(registry_url) as registry:
        with pytest.raises(CredentialError) as unpublished:
            registry.psk.record("dev-1", "id-1", b"k" * 16)
        assert unpublished.value.code == 8006
        key_id = registry.psk.publish_sealing_key(keys.public_key_der(sealing))
        assert registry.psk.publish_sealing_key(keys.public_key_der(sealing)) == key_id
        registry.psk.record("dev-1", b"id-1", b"secret-key-16byt")
        sealed = registry.psk.sealed("id-1")
        assert sealed is not None and sealed.endpoint_name == "dev-1"
        assert b"secret-key-16byt" not in sealed.sealed_key and "secret" not in repr(sealed)
        assert open_sealed(sealing, key_id, "id-1", "lwm2m", sealed) == b"secret-key-16byt"
        with pytest.raises(CredentialError):  # bound to its row: another identity does not open it
            open_sealed(sealing, key_id, "id-2", "lwm2m", sealed)
        with pytest.raises(CredentialError) as other_key:
            open_sealed(keys.generate_p256(), "0" * 64, "id-1", "lwm2m", sealed)
        assert other_key.value.code == 8008
        with pytest.raises(CredentialError) as taken:
            registry.psk.record("dev-2", "id-1", b"x" * 16)
        assert taken.value.code == 8007
        registry.psk.record("dev-1", "id-1b", b"y" * 16, replace=True)
        assert [(c.identity, c.endpoint_name) for c in registry.psk.find()] == [("id-1b", "dev-1")]
        assert registry.psk.sealed("id-1", "bootstrap") is None
        for bad_key in (b"", b"z" * 33):
            with pytest.raises(CredentialError):
                registry.psk.record("dev-3", "id-3", bad_key)
        with pytest.raises(CredentialError):
            registry.psk.record("dev-3", b"\xff\xfe", b"k")
        assert registry.psk.remove("dev-1") and not registry.psk.remove("dev-1")

"""``/v3/trusted-certificates`` over a real server: the servers' trust store, and developer certificates."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from provkit.crypto import issue, keys, x509
from provkit.registry import Service
from support.dmapi import RunningApi, call

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC)


def _ca_pem(cn: str = "factory CA") -> str:
    ca = issue.create_ca(keys.generate_p256(), {"common-name": cn}, now=NOW)
    return x509.certificate_pem([ca]).decode()


def _upload(
    api: RunningApi, pem: str, name: str, service: str = "bootstrap", **more: object
) -> tuple[int, dict]:
    request = {"certificate": pem, "name": name, "service": service, **more}
    status, _, body = call(api, "POST", "/v3/trusted-certificates", request, key=api.admin_key)
    return status, body


def test_upload_reaches_the_servers_trust_store(api: RunningApi) -> None:
    """An uploaded factory CA is what the servers trust (registry.trust), for its service, active."""
    pem, name = _ca_pem(), f"factory-{uuid.uuid4().hex[:8]}"
    status, body = _upload(api, pem, name, "lwm2m", description="line 1")
    assert status == 201
    assert body["object"] == "trusted-cert" and body["name"] == name and body["service"] == "lwm2m"
    assert (
        body["status"] == "ACTIVE" and body["device_execution_mode"] == 0 and body["description"] == "line 1"
    )
    assert body["subject"] == "CN=factory CA" and body["certificate"].strip() == pem.strip()
    der = x509.certificate_der(x509.load_certificate(pem.encode()))
    assert der in api.registry.trust.active(Service.LWM2M)
    assert der not in api.registry.trust.active(Service.BOOTSTRAP)
    status, _, listed = call(
        api, "GET", "/v3/trusted-certificates?service__eq=lwm2m&limit=1000", key=api.developer_key
    )
    assert status == 200 and body in listed["data"]


def test_upload_is_for_administrators_and_checks_the_certificate(api: RunningApi) -> None:
    """403 for a developers key; 400 for a non-CA or garbage; 409 for a second upload or a taken name."""
    pem, name = _ca_pem(), f"factory-{uuid.uuid4().hex[:8]}"
    status, _, body = call(
        api, "POST", "/v3/trusted-certificates", {"certificate": pem, "name": name, "service": "bootstrap"},
        key=api.developer_key,
    )  # fmt: skip
    assert status == 403 and body["type"] == "forbidden"
    leaf_key = keys.generate_p256()
    ca_key = keys.generate_p256()
    ca = issue.create_ca(ca_key, {"common-name": "x"}, now=NOW)
    leaf = issue.issue_device_certificate(
        ca_key, ca, leaf_key.public_key(), common_name="dev", subject={}, not_before=NOW, validity_years=1
    )
    for bad, message in (
        (x509.certificate_pem([leaf]).decode(), "not a CA certificate"),
        ("junk", "not an X.509"),
    ):
        status, body = _upload(api, bad, f"bad-{uuid.uuid4().hex[:8]}")
        assert status == 400 and body["type"] == "validation_error" and message in body["message"]
    assert _upload(api, pem, name)[0] == 201
    status, body = _upload(api, pem, f"again-{uuid.uuid4().hex[:8]}")
    assert status == 409 and "already trusted" in body["message"]
    status, body = _upload(api, _ca_pem(), name)
    assert status == 409 and "already exists" in body["message"]
    status, body = _upload(api, pem, "x", "both")
    assert status == 400 and body["fields"][0]["name"] == "service"


def test_update_status_and_names_and_refuse_other_changes(api: RunningApi) -> None:
    """PUT renames and deactivates (the servers stop trusting it); a new certificate or service is 400."""
    pem = _ca_pem()
    status, body = _upload(api, pem, f"upd-{uuid.uuid4().hex[:8]}")
    assert status == 201
    path = f"/v3/trusted-certificates/{body['id']}"
    new_name = f"renamed-{uuid.uuid4().hex[:8]}"
    status, _, changed = call(api, "PUT", path, {"name": new_name, "status": "INACTIVE"}, key=api.admin_key)
    assert status == 200 and changed["name"] == new_name and changed["status"] == "INACTIVE"
    der = x509.certificate_der(x509.load_certificate(pem.encode()))
    assert der not in api.registry.trust.active(Service.BOOTSTRAP)
    assert (
        call(api, "PUT", path, {"certificate": pem}, key=api.admin_key)[0] == 200
    )  # the same one is no change
    for change in ({"service": "lwm2m"}, {"certificate": _ca_pem()}):
        status, _, refused = call(api, "PUT", path, change, key=api.admin_key)
        assert status == 400 and "do not change" in refused["message"]
    assert call(api, "PUT", path, {"status": "ACTIVE"}, key=api.developer_key)[0] == 403
    assert (
        call(api, "PUT", "/v3/trusted-certificates/" + "0" * 32, {"name": "n"}, key=api.admin_key)[0] == 404
    )


def test_delete_a_ca_needs_administrators_and_the_developer_ca_stays(api: RunningApi) -> None:
    """Developers may not untrust a CA; administrators may; the developer CA cannot be deleted (409)."""
    status, body = _upload(api, _ca_pem(), f"del-{uuid.uuid4().hex[:8]}")
    path = f"/v3/trusted-certificates/{body['id']}"
    assert call(api, "DELETE", path, key=api.developer_key)[0] == 403
    assert call(api, "DELETE", path, key=api.admin_key)[0] == 204
    assert call(api, "GET", path, key=api.admin_key)[0] == 404
    _, _, listed = call(api, "GET", "/v3/trusted-certificates?limit=1000", key=api.admin_key)
    (developer_ca,) = [item for item in listed["data"] if item["name"] == "provkit developer CA"]
    assert developer_ca["service"] == "bootstrap" and developer_ca["device_execution_mode"] == 0
    status, _, refused = call(
        api, "DELETE", f"/v3/trusted-certificates/{developer_ca['id']}", key=api.admin_key
    )
    assert status == 409 and "INACTIVE" in refused["message"]
    assert api.context.developer.ca.certificate in api.registry.trust.active(Service.BOOTSTRAP)


def test_deleting_a_developer_certificate_revokes_it(api: RunningApi) -> None:
    """The device certificate is revoked, so the servers refuse its device from the next connection."""
    status, _, created = call(
        api,
        "POST",
        "/v3/developer-certificates",
        {"name": f"rev-{uuid.uuid4().hex[:8]}"},
        key=api.developer_key,
    )
    assert status == 201
    fingerprint = api.registry.developer_certificates.get(created["id"]).fingerprint
    assert call(api, "DELETE", f"/v3/trusted-certificates/{created['id']}", key=api.developer_key)[0] == 204
    revoked = api.registry.revocations.snapshot()
    assert revoked.refuses(created["endpoint_name"], fingerprint) is not None
    assert fingerprint in {item.fingerprint for item in api.registry.revocations.find()}


def test_a_developer_certificate_cannot_take_a_ca_name(api: RunningApi) -> None:
    """Names are unique across trusted and developer certificates (mbl-cli finds certificates by name)."""
    name = f"shared-{uuid.uuid4().hex[:8]}"
    assert _upload(api, _ca_pem(), name)[0] == 201
    status, _, body = call(api, "POST", "/v3/developer-certificates", {"name": name}, key=api.developer_key)
    assert status == 409 and body["type"] == "duplicate"

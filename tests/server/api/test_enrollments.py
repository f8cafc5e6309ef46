"""``/v3/device-enrollments`` over a real server, and first-to-claim in the registry."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from provkit.crypto import x509
from provkit.registry.connections import ConnectionEvent, ConnectionOutcome
from support.dmapi import RunningApi, call

pytestmark = pytest.mark.integration


def _identity() -> str:
    return x509.enrollment_id(secrets.token_bytes(300))


def test_enroll_read_list_and_withdraw(api: RunningApi) -> None:
    """201 with the Device Management fields; lower case is kept upper; GET, list and DELETE."""
    identity = _identity()
    status, _, body = call(
        api, "POST", "/v3/device-enrollments", {"enrollment_identity": identity.lower()}, key=api.admin_key
    )
    assert status == 201
    assert body["object"] == "enrollment" and body["enrollment_identity"] == identity
    assert body["account_id"] == api.registry.accounts.current().id
    assert body["claimed_at"] is None and body["enrolled_device_id"] is None
    created = dt.datetime.fromisoformat(body["created_at"])
    assert dt.datetime.fromisoformat(body["expires_at"]) - created == dt.timedelta(days=90)
    assert call(api, "GET", f"/v3/device-enrollments/{body['id']}", key=api.developer_key)[2] == body
    status, _, page = call(api, "GET", "/v3/device-enrollments?limit=1000", key=api.developer_key)
    assert body in page["data"]
    assert call(api, "DELETE", f"/v3/device-enrollments/{body['id']}", key=api.developer_key)[0] == 403
    assert call(api, "DELETE", f"/v3/device-enrollments/{body['id']}", key=api.admin_key)[0] == 204
    assert call(api, "GET", f"/v3/device-enrollments/{body['id']}", key=api.admin_key)[0] == 404


@pytest.mark.parametrize(
    "identity",
    [
        "",
        "B-" + ":".join(["AB"] * 32),
        "A-" + "AB" * 32,
        "A-" + ":".join(["AB"] * 31),
        "A-" + ":".join(["GG"] * 32),
    ],
)
def test_malformed_identity_is_400(api: RunningApi, identity: str) -> None:
    """Anything but A- and 32 colon-separated hex bytes is ``validation_error`` naming the field."""
    status, _, body = call(
        api, "POST", "/v3/device-enrollments", {"enrollment_identity": identity}, key=api.admin_key
    )
    assert status == 400 and body["type"] == "validation_error"
    assert body["fields"][0]["name"] == "enrollment_identity"


def test_identity_is_enrolled_once(api: RunningApi) -> None:
    """A second enrollment of one identity is 409."""
    identity = _identity()
    assert (
        call(api, "POST", "/v3/device-enrollments", {"enrollment_identity": identity}, key=api.admin_key)[0]
        == 201
    )
    status, _, body = call(
        api, "POST", "/v3/device-enrollments", {"enrollment_identity": identity}, key=api.admin_key
    )
    assert status == 409 and body["type"] == "duplicate"


def test_first_connection_claims_once_and_expiry_ends_it(api: RunningApi) -> None:
    """The first endpoint that connects with the certificate claims it; later ones and late ones do not."""
    enrollments = api.registry.enrollments
    identity, other, late = _identity(), _identity(), _identity()
    enrollment = enrollments.add(identity)
    old = enrollments.add(late, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=91))
    enrollments.add(other)

    def connected(
        endpoint: str, enrolled: str, outcome: ConnectionOutcome = ConnectionOutcome.BOOTSTRAPPED
    ) -> None:
        fingerprint = enrolled.removeprefix("A-").replace(":", "").lower()
        event = ConnectionEvent(endpoint, "bootstrap", outcome, mode="certificate", fingerprint=fingerprint)
        api.registry.connections.record([event])

    connected("failed-dev", identity, ConnectionOutcome.FAILED)  # a failed connection claims nothing
    assert enrollments.get(enrollment.id).claimed_at is None
    connected("dev-1", identity)
    connected("dev-2", identity)
    connected("late-dev", late)
    status, _, body = call(api, "GET", f"/v3/device-enrollments/{enrollment.id}", key=api.admin_key)
    assert status == 200 and body["enrolled_device_id"] == "dev-1" and body["claimed_at"] is not None
    assert enrollments.get(enrollment.id).endpoint_name == "dev-1"
    assert enrollments.get(old.id).claimed_at is None  # it connected after the claim lapsed
    status, _, page = call(api, "GET", "/v3/device-enrollments?limit=1000", key=api.developer_key)
    by_identity = {item["enrollment_identity"]: item for item in page["data"]}
    assert by_identity[identity]["enrolled_device_id"] == "dev-1"
    assert by_identity[other]["claimed_at"] is None

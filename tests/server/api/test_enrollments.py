"""``/v3/device-enrollments`` over a real server, and first-to-claim in the registry."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from provkit.crypto import x509
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


def test_first_claim_wins_and_expiry_ends_it(api: RunningApi) -> None:
    """The first endpoint claims; it may reconnect; another endpoint and an expired enrollment are refused."""
    enrollments = api.registry.enrollments
    identity = _identity()
    enrollment = enrollments.add(identity)
    assert enrollments.claim("A-nonsense", endpoint_name="dev-1", device_id="d" * 32) is None
    claimed = enrollments.claim(identity, endpoint_name="dev-1", device_id="d" * 32)
    assert claimed is not None and claimed.id == enrollment.id and claimed.claimed_at is not None
    assert claimed.enrolled_device_id == "d" * 32 and claimed.endpoint_name == "dev-1"
    assert enrollments.claim(identity, endpoint_name="dev-1", device_id="d" * 32) == claimed
    assert enrollments.claim(identity, endpoint_name="dev-2", device_id="e" * 32) is None
    status, _, body = call(api, "GET", f"/v3/device-enrollments/{enrollment.id}", key=api.admin_key)
    assert status == 200 and body["enrolled_device_id"] == "d" * 32 and body["claimed_at"] is not None
    old = _identity()
    enrollments.add(old, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=91))
    assert enrollments.claim(old, endpoint_name="dev-3", device_id="f" * 32) is None
    assert enrollments.claim(_identity(), endpoint_name="dev-4", device_id="f" * 32) is None

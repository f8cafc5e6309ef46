"""``/v3/devices`` over a real server: the directory of what connected, its states, pages and filters."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from provkit.registry import AttemptState, NewAttempt
from provkit.registry.connections import ConnectionEvent, ConnectionOutcome
from support.dmapi import RunningApi, call

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _record(
    api: RunningApi, endpoint: str, service: str, outcome: ConnectionOutcome, minutes: int, **more: object
) -> None:
    at = T0 + dt.timedelta(minutes=minutes)
    api.registry.connections.record(
        [
            ConnectionEvent(
                endpoint, service, outcome, at=at, address="127.0.0.1:5", mode="certificate", **more
            )
        ]
    )


def _devices(api: RunningApi, query: str = "") -> list[dict]:
    status, _, page = call(api, "GET", f"/v3/devices?limit=1000&{query}", key=api.developer_key)
    assert status == 200, page
    return page["data"]


def test_states_follow_the_connection_records(api: RunningApi) -> None:
    """registered (holds a location), deregistered, bootstrapped, unenrolled; timestamps and extras."""
    tag = uuid.uuid4().hex[:6]
    reg, dereg, boot, failed = (f"{tag}-{n}" for n in ("reg", "dereg", "boot", "failed"))
    _record(api, reg, "bootstrap", ConnectionOutcome.BOOTSTRAPPED, 0, fingerprint="ab" * 32)
    _record(api, reg, "lwm2m", ConnectionOutcome.REGISTERED, 1, location=f"/rd/{tag}1")
    _record(api, reg, "lwm2m", ConnectionOutcome.FAILED, 2, failure="timeout")  # still holds its registration
    _record(api, dereg, "lwm2m", ConnectionOutcome.REGISTERED, 3, location=f"/rd/{tag}2")
    _record(api, dereg, "lwm2m", ConnectionOutcome.DEREGISTERED, 4, location=None)
    _record(api, boot, "bootstrap", ConnectionOutcome.BOOTSTRAPPED, 5)
    _record(api, failed, "bootstrap", ConnectionOutcome.FAILED, 6, failure="ca-untrusted")
    found = {d["id"]: d for d in _devices(api) if d["id"].startswith(tag)}
    assert {name: d["state"] for name, d in found.items()} == {
        reg: "registered",
        dereg: "deregistered",
        boot: "bootstrapped",
        failed: "unenrolled",
    }
    device = found[reg]
    assert (
        device["object"] == "device" and device["endpoint_name"] == reg and device["mechanism"] == "connector"
    )
    assert dt.datetime.fromisoformat(device["created_at"]) == T0
    assert dt.datetime.fromisoformat(device["updated_at"]) == T0 + dt.timedelta(minutes=2)
    assert dt.datetime.fromisoformat(device["etag"]) == T0 + dt.timedelta(minutes=2)  # SDKs parse a time
    assert dt.datetime.fromisoformat(device["bootstrapped_timestamp"]) == T0
    assert device["last_failure"] == "timeout" and device["security_mode"] == "certificate"
    assert found[failed]["last_failure"] == "ca-untrusted" and found[failed]["bootstrapped_timestamp"] is None
    status, _, one = call(api, "GET", f"/v3/devices/{reg}/", key=api.developer_key)
    assert status == 200 and one == device
    assert call(api, "GET", f"/v3/devices/{tag}-nobody", key=api.developer_key)[0] == 404


def test_filters_pages_and_serial_numbers(api: RunningApi) -> None:
    """state__eq, endpoint_name__eq, the legacy filter; pages by endpoint name; the provisioned serial."""
    tag = uuid.uuid4().hex[:6]
    names = [f"{tag}-{i:02d}" for i in range(5)]
    for i, name in enumerate(names):
        outcome = ConnectionOutcome.REGISTERED if i % 2 == 0 else ConnectionOutcome.BOOTSTRAPPED
        service = "lwm2m" if i % 2 == 0 else "bootstrap"
        _record(api, name, service, outcome, i, location=f"/rd/{tag}{i}" if i % 2 == 0 else None)
    (attempt,) = api.registry.record_attempts(None, [NewAttempt(names[0], f"SN-{tag}")])
    api.registry.mark_sending(attempt)
    api.registry.update_attempt(attempt, AttemptState.INJECTED, return_status=0)
    api.registry.mark_verified(attempt)
    registered = [d["id"] for d in _devices(api, "state__eq=registered") if d["id"].startswith(tag)]
    assert registered == names[0::2]
    legacy = [d["id"] for d in _devices(api, "filter=state%3Dbootstrapped") if d["id"].startswith(tag)]
    assert legacy == names[1::2]
    (first,) = _devices(api, f"endpoint_name__eq={names[0]}")
    assert first["serial_number"] == f"SN-{tag}"
    seen, after = [], names[0][:-1]  # a cursor just before this test's names
    while True:
        status, _, page = call(
            api, "GET", f"/v3/devices?limit=2&after={after}&include=total_count", key=api.admin_key
        )
        assert status == 200 and page["total_count"] >= 5
        seen += [d["id"] for d in page["data"] if d["id"].startswith(tag)]
        if not page["has_more"] or not page["data"][-1]["id"].startswith(tag):
            break
        after = page["data"][-1]["id"]
    assert seen == names
    desc = [d["id"] for d in _devices(api, "order=DESC") if d["id"].startswith(tag)]
    assert desc == names[::-1]
    for query in ("", "state__eq=registered"):  # total_count: with and without a state filter
        path = f"/v3/devices?limit=2&include=total_count&{query}"
        _, _, counted = call(api, "GET", path, key=api.admin_key)
        assert counted["total_count"] == len(_devices(api, query))
    for query in ("state__eq=flying", "filter=color%3Dred"):
        status, _, body = call(api, "GET", f"/v3/devices?{query}", key=api.developer_key)
        assert status == 400 and body["type"] == "validation_error"

"""The API over a real uvicorn server: API keys as bearer tokens, roles, and every JSON error."""

from __future__ import annotations

import http.client
import urllib.parse
import urllib.request

import pytest

from support.dmapi import RunningApi, call, new_key

pytestmark = pytest.mark.integration


def _error(body: dict[str, object], status: int, error_type: str) -> None:
    assert body["object"] == "error" and body["code"] == status and body["type"] == error_type
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["request_id"], str) and len(body["request_id"]) == 32


def test_account_and_key_of_a_valid_key(api: RunningApi) -> None:
    """GET /v3/accounts/me answers the one account; /v3/api-keys/me the key, never its secret."""
    status, _, account = call(api, "GET", "/v3/accounts/me", key=api.developer_key)
    assert status == 200
    assert account["object"] == "account" and account["status"] == "ACTIVE"
    assert account["id"] == api.registry.accounts.current().id and len(account["id"]) == 32
    status, _, me = call(api, "GET", "/v3/api-keys/me", key=api.developer_key)
    assert status == 200 and me["name"] == "test-developer" and me["groups"] == ["developers"]
    assert api.developer_key[35:] not in str(me)  # the secret part never comes back


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "an API key is required"),
        ("Basic dXNlcjpwYXNz", "an API key is required"),
        ("Bearer ak_short", "missing or invalid API key"),
        ("Bearer " + "ak_" + "0" * 32 + "x" * 43, "missing or invalid API key"),
    ],
)
def test_missing_malformed_or_unknown_key_is_401(api: RunningApi, header: str | None, expected: str) -> None:
    """401 ``unauthorized`` with WWW-Authenticate; unknown and malformed keys get one message."""
    status, headers, body = call(
        api, "GET", "/v3/accounts/me", headers={"Authorization": header} if header else None
    )
    assert status == 401
    _error(body, 401, "unauthorized")
    assert expected in body["message"]
    assert headers["www-authenticate"] == "Bearer"
    assert headers["x-request-id"] == body["request_id"]


def test_wrong_secret_and_revoked_key_are_401_like_an_unknown_key(api: RunningApi) -> None:
    """A right id with a wrong secret, and a revoked key, answer exactly as an unknown key does."""
    key = new_key(api)
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert call(api, "GET", "/v3/accounts/me", key=wrong)[2]["message"] == "missing or invalid API key"
    assert call(api, "GET", "/v3/accounts/me", key=key)[0] == 200
    api.registry.api_keys.revoke(key[3:35])
    status, _, body = call(api, "GET", "/v3/accounts/me", key=key)
    assert status == 401 and body["message"] == "missing or invalid API key"
    assert call(api, "GET", "/v3/accounts/me", key=api.developer_key)[0] == 200


def test_developers_key_may_not_do_what_needs_administrators(api: RunningApi) -> None:
    """403 ``forbidden`` naming the group; the administrators key may."""
    identity = "A-" + ":".join(["AB"] * 32)
    status, _, body = call(
        api, "POST", "/v3/device-enrollments", {"enrollment_identity": identity}, key=api.developer_key
    )
    assert status == 403
    _error(body, 403, "forbidden")
    assert "administrators" in body["message"]
    assert (
        call(api, "POST", "/v3/device-enrollments", {"enrollment_identity": identity}, key=api.admin_key)[0]
        == 201
    )


def test_request_errors_are_json(sqlite_api: RunningApi) -> None:
    """Unknown path 404, wrong method 405, bad JSON and bad fields 400 naming the field."""
    api, key = sqlite_api, sqlite_api.developer_key
    status, _, body = call(api, "GET", "/v3/nothing", key=key)
    assert status == 404
    _error(body, 404, "not_found")
    status, _, body = call(api, "PATCH", "/v3/accounts/me", key=key)
    assert status == 405
    _error(body, 405, "method_not_supported")
    status, _, body = call(api, "POST", "/v3/developer-certificates", raw=b"{not json", key=key)
    assert status == 400
    _error(body, 400, "validation_error")
    assert body["fields"][0]["name"] == "body"
    status, _, body = call(api, "POST", "/v3/developer-certificates", {"description": "x"}, key=key)
    assert status == 400 and body["fields"] == [{"name": "name", "message": "Field required"}]
    status, _, body = call(api, "POST", "/v3/developer-certificates", {"name": "x" * 101}, key=key)
    assert status == 400 and body["fields"][0]["name"] == "name"
    for query in ("limit=1", "limit=1001", "limit=abc", "order=SIDEWAYS", "include=everything"):
        status, _, body = call(api, "GET", f"/v3/device-enrollments?{query}", key=key)
        assert status == 400, query
        _error(body, 400, "validation_error")
    status, _, body = call(api, "GET", "/v3/developer-certificates/" + "0" * 32, key=key)
    assert status == 404
    _error(body, 404, "not_found")


def test_oversized_body_is_413_without_reading_it_all(sqlite_api: RunningApi) -> None:
    """A declared or streamed body beyond 64 KiB is refused with a JSON 413."""
    api = sqlite_api
    status, _, body = call(
        api, "POST", "/v3/developer-certificates", raw=b"x" * (64 * 1024 + 1), key=api.developer_key
    )
    assert status == 413
    _error(body, 413, "payload_too_large")
    parts = urllib.parse.urlsplit(api.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", "/v3/developer-certificates")
        connection.putheader("Authorization", f"Bearer {api.developer_key}")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        chunk = b"x" * 8192
        for _ in range(10):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
        answer = connection.getresponse()
        assert answer.status == 413
    finally:
        connection.close()


def test_trailing_slash_paths_and_openapi_docs(sqlite_api: RunningApi) -> None:
    """SDK spellings with a trailing slash are served directly (no redirect); /docs and the schema are up."""
    api = sqlite_api
    assert call(api, "GET", "/v3/accounts/me/", key=api.developer_key)[0] == 200
    status, _, schema = call(api, "GET", "/openapi.json")
    assert status == 200
    assert {"/v3/accounts/me", "/v3/developer-certificates", "/v3/trusted-certificates"} <= set(
        schema["paths"]
    )
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    with urllib.request.urlopen(api.url + "/docs", timeout=30) as page:
        assert page.status == 200 and b"swagger" in page.read().lower()

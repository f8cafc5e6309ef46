"""The Device Management client and the store-backed flow, against a local HTTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from developer.cfiles import DevCredentials, replace_array
from developer.fakecloud import CloudState, fake_cloud
from provkit.developer import (
    CloudClient,
    Store,
    create_developer_certificate,
    delete_certificate,
    list_certificates,
    save_api_key,
)
from provkit.developer.cloud import api_host
from provkit.errors import ApiKeyRejected, CertificateExists, CloudApiError, CredentialsParseError, StoreError

pytestmark = pytest.mark.integration


@pytest.fixture
def cloud():
    creds = DevCredentials()
    with fake_cloud(CloudState(credentials_text=lambda name: creds.c_text())) as state:
        yield state


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_save_api_key_validates_then_stores(cloud, tmp_path):
    """GET /v3/accounts/me with the bearer key; the key lands in the user store."""
    assert save_api_key("ak_good", host=cloud.url, home=tmp_path)["id"] == "acc-1"
    ((method, path, headers, _),) = cloud.seen
    assert (method, path, headers["Authorization"]) == ("GET", "/v3/accounts/me", "Bearer ak_good")
    assert Store.open("user", tmp_path).api_key == "ak_good"


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [(401, ApiKeyRejected, 6004), (403, ApiKeyRejected, 6004), (500, CloudApiError, 6002)],
)
def test_rejected_or_failing_validation_saves_nothing(cloud, tmp_path, status, error, code):
    """401/403 are an invalid key; 500 a service failure; either way no key is saved."""
    cloud.fail_status = status
    with pytest.raises(error) as info:
        save_api_key("ak_good", host=cloud.url, home=tmp_path)
    assert info.value.code == code and info.value.http_status == status
    assert Store.open("user", tmp_path).api_key is None


def test_unknown_key_is_rejected(cloud, tmp_path):
    """The service's 401 for an unknown key becomes ApiKeyRejected with a hint."""
    with pytest.raises(ApiKeyRejected, match=r"rejected \(HTTP 401\): Invalid API key") as info:
        save_api_key("ak_bad", host=cloud.url, home=tmp_path)
    assert "Portal" in (info.value.hint or "")


def test_unreachable_service(tmp_path):
    """A closed port is a CloudApiError without an HTTP status; nothing is saved."""
    with pytest.raises(CloudApiError, match="cannot reach") as info:
        save_api_key("ak_good", host=_closed_port_url(), home=tmp_path)
    assert info.value.http_status is None
    assert Store.open("user", tmp_path).api_key is None


def test_api_host_must_be_http(monkeypatch):
    """Only http(s) hosts are accepted; the env var is the fallback."""
    monkeypatch.setenv("PROVKIT_API_HOST", "http://example.test/")
    assert api_host() == "http://example.test"
    with pytest.raises(CloudApiError, match="not an http"):
        api_host("file:///etc/passwd")


def test_create_certificate_saves_parsed_variables(cloud, tmp_path):
    """POST /v3/developer-certificates; the variables and the cloud id are saved in the team store."""
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    paths = create_developer_certificate("dev1", description="desk", host=cloud.url, home=tmp_path)
    assert len(paths) == 12  # the 11 provisioned variables + ACCOUNT_ID
    method, path, headers, body = cloud.seen[-1]
    assert (method, path, body) == (
        "POST",
        "/v3/developer-certificates",
        {"name": "dev1", "description": "desk"},
    )
    assert headers["Content-Type"] == "application/json"
    team = Store.open("team", tmp_path)
    assert team.cloud_id("dev1") in cloud.certificates


def test_create_needs_a_key_and_a_free_name(cloud, tmp_path):
    """No saved key, a duplicate local name and a 409 from the service are all clear errors."""
    with pytest.raises(StoreError, match="no API key is saved"):
        create_developer_certificate("dev1", host=cloud.url, home=tmp_path)
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    create_developer_certificate("dev1", host=cloud.url, home=tmp_path)
    with pytest.raises(StoreError, match="already has a certificate named 'dev1'"):
        create_developer_certificate("dev1", host=cloud.url, home=tmp_path)
    Store.open("team", tmp_path).remove_certificate("dev1")  # local copy gone, cloud one remains
    with pytest.raises(CertificateExists, match="already exists") as info:
        create_developer_certificate("dev1", host=cloud.url, home=tmp_path)
    assert info.value.code == 6005 and info.value.http_status == 409


def test_unusable_service_credentials_are_not_saved(tmp_path):
    """A placeholder credentials file from the service is refused, naming the created id."""
    state = CloudState(
        credentials_text=lambda name: "const uint8_t MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE[] = { 0 };"
    )
    with fake_cloud(state):
        save_api_key("ak_good", host=state.url, home=tmp_path)
        with pytest.raises(CredentialsParseError, match="unusable") as info:
            create_developer_certificate("dev1", host=state.url, home=tmp_path)
    assert next(iter(state.certificates)) in (info.value.hint or "")
    assert Store.open("team", tmp_path).certificate_names() == []


def test_list_pages_and_delete(cloud, tmp_path):
    """Listing follows has_more/after pages; delete uses the recorded id, else finds it by name."""
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    for name in ("a", "b", "c"):
        create_developer_certificate(name, host=cloud.url, home=tmp_path)
    cloud.certificates["zzz"] = {"id": "zzz", "name": "portal-only"}
    client = CloudClient("ak_good", cloud.url)
    assert sorted(c["name"] for c in client.trusted_certificates()) == ["a", "b", "c", "portal-only"]
    entries = {e.name: e for e in list_certificates(home=tmp_path, client=client)}
    assert entries["portal-only"].local is False and entries["a"].kind == "developer"
    a_id = Store.open("team", tmp_path).cloud_id("a")
    assert delete_certificate("a", host=cloud.url, home=tmp_path) == (True, a_id)
    assert ("DELETE", f"/v3/trusted-certificates/{a_id}") == cloud.seen[-1][:2]
    assert delete_certificate("portal-only", host=cloud.url, home=tmp_path) == (False, "zzz")
    assert delete_certificate("b", cloud=False, home=tmp_path) == (True, None)
    with pytest.raises(StoreError, match="no certificate named 'nothing'"):
        delete_certificate("nothing", host=cloud.url, home=tmp_path)
    assert sorted(c["name"] for c in cloud.certificates.values()) == ["b", "c"]


def test_delete_keeps_local_copy_when_service_fails(cloud, tmp_path):
    """A 500 on DELETE leaves the team store entry in place."""
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    create_developer_certificate("a", host=cloud.url, home=tmp_path)
    cloud.fail_status = 500
    with pytest.raises(CloudApiError, match="HTTP 500"):
        delete_certificate("a", host=cloud.url, home=tmp_path)
    assert Store.open("team", tmp_path).certificate_names() == ["a"]


@pytest.mark.parametrize("key", ["", "   ", "ak_with space", "ak_\nline", "ak_caf\u00e9", "ak_\x00"])
def test_malformed_key_is_refused_without_a_request(cloud, tmp_path, key):
    """A key that cannot be an HTTP header value is 6004 at once, not a misleading "cannot reach"."""
    with pytest.raises(ApiKeyRejected, match="the API key is") as info:
        save_api_key(key, host=cloud.url, home=tmp_path)
    assert info.value.code == 6004 and info.value.http_status is None
    assert cloud.seen == []
    assert Store.open("user", tmp_path).api_key is None


def test_saving_another_key_replaces_the_first(cloud, tmp_path):
    """The user store holds one key; a second save-api-key overwrites it (seed 003)."""
    cloud.valid_keys.add("ak_second")
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    save_api_key("  ak_second\n", host=cloud.url, home=tmp_path)
    assert Store.open("user", tmp_path).api_key == "ak_second"
    assert [h["Authorization"] for _, _, h, _ in cloud.seen] == ["Bearer ak_good", "Bearer ak_second"]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b"\xff\xfe\xfd", "the answer is not JSON"),
        (200, b"<html>", "the answer is not JSON"),
        (200, b"[1]", "not an account object"),
        (500, b"\xff\xfe\xfd", "failed with HTTP 500$"),
        (502, b'{"message": {"nested": 1}}', "failed with HTTP 502$"),
    ],
)
def test_garbled_answers_are_cloud_errors(cloud, status, body, message):
    """Non-JSON, non-UTF-8 or odd answers are CloudApiError 6002 (with the HTTP status), not a crash."""
    cloud.raw_answer = (status, body)
    with pytest.raises(CloudApiError, match=message) as info:
        CloudClient("ak_good", cloud.url).account()
    assert info.value.code == 6002
    assert info.value.http_status == (status if status >= 400 else None)


def test_paging_without_a_new_cursor_stops(cloud):
    """has_more with a page whose last id does not advance would loop forever: it is an error."""
    cloud.raw_answer = (200, b'{"data": [{"name": "a"}], "has_more": true}')
    with pytest.raises(CloudApiError, match="has_more without a new page cursor"):
        CloudClient("ak_good", cloud.url).trusted_certificates()
    cloud.raw_answer = (200, b'{"data": [{"id": "x", "name": "a"}], "has_more": true}')
    with pytest.raises(CloudApiError, match="has_more without a new page cursor"):
        CloudClient("ak_good", cloud.url).trusted_certificates()
    assert len(cloud.seen) == 3  # one page, then two pages with the same cursor


def test_redirect_is_not_followed_with_the_key(cloud):
    """A 302 to another host is reported; the key is not sent there."""
    with fake_cloud() as elsewhere:
        cloud.raw_answer = (302, b"")
        cloud.raw_headers = {"Location": f"{elsewhere.url}/v3/accounts/me"}
        with pytest.raises(CloudApiError, match="HTTP 302") as info:
            CloudClient("ak_good", cloud.url).account()
        assert info.value.http_status == 302
        assert elsewhere.seen == []


@contextmanager
def _not_http() -> Iterator[str]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
        thread.join()


def test_a_server_that_does_not_speak_http():
    """A peer answering in another protocol is CloudApiError 6002, not http.client's exception."""
    with _not_http() as url, pytest.raises(CloudApiError, match="did not answer in HTTP") as info:
        CloudClient("ak_good", url).account()
    assert info.value.code == 6002 and info.value.http_status is None


def test_fetch_existing_developer_certificate(cloud, tmp_path):
    """GET /v3/developer-certificates/{id} returns the credentials of a certificate made elsewhere."""
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    made = CloudClient("ak_good", cloud.url).create_developer_certificate("portal-made")
    fetched = CloudClient("ak_good", cloud.url).developer_certificate(made.id)
    assert fetched == made
    assert cloud.seen[-1][:2] == ("GET", f"/v3/developer-certificates/{made.id}")
    with pytest.raises(CloudApiError, match="HTTP 404"):
        CloudClient("ak_good", cloud.url).developer_certificate("no-such-id")


def test_delete_a_set_with_a_lost_file(cloud, tmp_path):
    """A developer set whose .bin files vanished can still be deleted, locally and in the service."""
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    paths = create_developer_certificate("a", host=cloud.url, home=tmp_path)
    paths[0].unlink()
    assert [e.name for e in list_certificates(home=tmp_path)] == ["a"]
    assert delete_certificate("a", host=cloud.url, home=tmp_path)[0] is True
    assert cloud.certificates == {}


def test_credentials_with_unusable_certificates_are_not_saved(tmp_path):
    """Zero-filled arrays (mbl-cli's test fixture shape) parse, but are refused before saving."""
    name = "MBED_CLOUD_DEV_BOOTSTRAP_SERVER_ROOT_CA_CERTIFICATE"
    text = replace_array(DevCredentials().c_text(), name, "\n{ 0x00, 0x00, 0x00 }")
    with fake_cloud(CloudState(credentials_text=lambda name: text)) as state:
        save_api_key("ak_good", host=state.url, home=tmp_path)
        with pytest.raises(CredentialsParseError, match="ROOT_CA_CERTIFICATE") as info:
            create_developer_certificate("dev1", host=state.url, home=tmp_path)
    assert info.value.code == 6003 and "delete it in the Portal" in (info.value.hint or "")
    assert Store.open("team", tmp_path).certificate_names() == []


def test_revoked_key_on_create_is_6004(cloud, tmp_path):
    """A saved key the service no longer accepts fails create-certificate with 6004 and HTTP 401."""
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    cloud.valid_keys.clear()
    with pytest.raises(ApiKeyRejected) as info:
        create_developer_certificate("dev1", host=cloud.url, home=tmp_path)
    assert info.value.http_status == 401
    assert Store.open("team", tmp_path).certificate_names() == []


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("http://192.0.2.7:8080", True),
        ("http://dm.example.test", True),
        ("https://dm.example.test", False),
        ("http://127.0.0.1:1", False),
        ("http://[::1]:1", False),
        ("http://localhost:1", False),
    ],
)
def test_plain_http_off_loopback_is_warned(caplog, host, warned):
    """The key would cross the network in clear: a warning names the URL; loopback and https are quiet."""
    with caplog.at_level("WARNING", logger="provkit.developer.cloud"):
        CloudClient("ak_good", host)
    messages = [r.getMessage() for r in caplog.records]
    assert bool(messages) is warned
    if warned:
        assert messages == [f"{host} is plain HTTP: the API key is sent unencrypted; use https://"]

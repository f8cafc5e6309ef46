"""The Device Management client and the store-backed flow, against the real Device Management API.

``provkit server``'s API runs under uvicorn on 127.0.0.1 with a SQLite registry. The small
fake service (``fakecloud``) remains only where the real server cannot be made to answer as
a test needs: a 403 or 500 on demand, unusable credentials, non-JSON or non-HTTP answers,
redirects, and a listing whose cursor does not advance.
"""

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
from support.dmapi import running_api

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path):
    """The real API on a fresh registry."""
    with running_api(str(tmp_path / "dm-registry.sqlite")) as served:
        yield served


@pytest.fixture
def cloud():
    """The fake service, for answers the real one cannot give."""
    creds = DevCredentials()
    with fake_cloud(CloudState(credentials_text=lambda name: creds.c_text())) as state:
        yield state


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_save_api_key_validates_then_stores(server, tmp_path):
    """GET /v3/accounts/me with the bearer key answers the account; the key lands in the user store."""
    account = save_api_key(server.developer_key, host=server.url, home=tmp_path)
    assert account["id"] == server.registry.accounts.current().id
    assert Store.open("user", tmp_path).api_key == server.developer_key


def test_unknown_or_revoked_key_is_rejected_and_not_saved(server, tmp_path):
    """The server's 401 becomes ApiKeyRejected (6004, with a hint); a revoked key too; nothing is saved."""
    with pytest.raises(ApiKeyRejected, match=r"rejected \(HTTP 401\): missing or invalid API key") as info:
        save_api_key("ak_bad", host=server.url, home=tmp_path)
    assert info.value.code == 6004 and info.value.http_status == 401 and "Portal" in (info.value.hint or "")
    record, key = server.registry.api_keys.create("to-revoke")
    server.registry.api_keys.revoke(record.id)
    with pytest.raises(ApiKeyRejected):
        save_api_key(key, host=server.url, home=tmp_path)
    assert Store.open("user", tmp_path).api_key is None


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [(403, ApiKeyRejected, 6004), (500, CloudApiError, 6002)],
)
def test_refused_or_failing_validation_saves_nothing(cloud, tmp_path, status, error, code):
    """403 is a rejected key; 500 a service failure; either way no key is saved (fake: on demand)."""
    cloud.fail_status = status
    with pytest.raises(error) as info:
        save_api_key("ak_good", host=cloud.url, home=tmp_path)
    assert info.value.code == code and info.value.http_status == status
    assert Store.open("user", tmp_path).api_key is None


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


def test_create_certificate_saves_parsed_variables(server, tmp_path):
    """POST /v3/developer-certificates; the variables and the service's id are saved in the team store."""
    save_api_key(server.developer_key, host=server.url, home=tmp_path)
    paths = create_developer_certificate("dev1", description="desk", host=server.url, home=tmp_path)
    assert len(paths) == 12  # the 11 provisioned variables + ACCOUNT_ID
    record = server.registry.developer_certificates.get(Store.open("team", tmp_path).cloud_id("dev1") or "")
    assert (record.name, record.description) == ("dev1", "desk")
    saved = Store.open("team", tmp_path).read_certificate("dev1")
    assert saved["MBED_CLOUD_DEV_BOOTSTRAP_ENDPOINT_NAME"] == record.endpoint_name.encode()
    assert saved["MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE"] == record.certificate


def test_create_needs_a_key_and_a_free_name(server, tmp_path):
    """No saved key, a duplicate local name and the service's 409 are all clear errors."""
    with pytest.raises(StoreError, match="no API key is saved"):
        create_developer_certificate("dev1", host=server.url, home=tmp_path)
    save_api_key(server.developer_key, host=server.url, home=tmp_path)
    create_developer_certificate("dev1", host=server.url, home=tmp_path)
    with pytest.raises(StoreError, match="already has a certificate named 'dev1'"):
        create_developer_certificate("dev1", host=server.url, home=tmp_path)
    Store.open("team", tmp_path).remove_certificate("dev1")  # local copy gone, the service's remains
    with pytest.raises(CertificateExists, match="already exists") as info:
        create_developer_certificate("dev1", host=server.url, home=tmp_path)
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


def test_list_pages_and_delete(server, tmp_path, monkeypatch):
    """Listing follows has_more/after pages; delete uses the recorded id, else finds it by name."""
    monkeypatch.setattr("provkit.developer.cloud._PAGE", 2)  # the server's smallest page: paging happens
    save_api_key(server.developer_key, host=server.url, home=tmp_path)
    for name in ("a", "b", "c"):
        create_developer_certificate(name, host=server.url, home=tmp_path)
    client = CloudClient(server.developer_key, server.url)
    portal_id = client.create_developer_certificate("portal-only").id  # made elsewhere, not in this store
    names = sorted(c["name"] for c in client.trusted_certificates())
    assert names == ["a", "b", "c", "portal-only", "provkit developer CA"]  # the CA that signed them too
    entries = {e.name: e for e in list_certificates(home=tmp_path, client=client)}
    assert entries["portal-only"].local is False and entries["a"].kind == "developer"
    a_id = Store.open("team", tmp_path).cloud_id("a")
    assert delete_certificate("a", host=server.url, home=tmp_path) == (True, a_id)
    assert delete_certificate("portal-only", host=server.url, home=tmp_path) == (False, portal_id)
    assert delete_certificate("b", cloud=False, home=tmp_path) == (True, None)
    with pytest.raises(StoreError, match="no certificate named 'nothing'"):
        delete_certificate("nothing", host=server.url, home=tmp_path)
    assert sorted(r.name for r in server.registry.developer_certificates.list()) == ["b", "c"]


def test_delete_keeps_local_copy_when_service_fails(cloud, tmp_path):
    """A 500 on DELETE leaves the team store entry in place."""
    save_api_key("ak_good", host=cloud.url, home=tmp_path)
    create_developer_certificate("a", host=cloud.url, home=tmp_path)
    cloud.fail_status = 500
    with pytest.raises(CloudApiError, match="HTTP 500"):
        delete_certificate("a", host=cloud.url, home=tmp_path)
    assert Store.open("team", tmp_path).certificate_names() == ["a"]


@pytest.mark.parametrize("key", ["", "   ", "ak_with space", "ak_\nline", "ak_caf\u00e9", "ak_\x00"])
def test_malformed_key_is_refused_without_a_request(tmp_path, key):
    """A key that cannot be an HTTP header value is 6004 at once, not a misleading "cannot reach".

    The host is a closed port: any request would fail as unreachable (6002) instead.
    """
    with pytest.raises(ApiKeyRejected, match="the API key is") as info:
        save_api_key(key, host=_closed_port_url(), home=tmp_path)
    assert info.value.code == 6004 and info.value.http_status is None
    assert Store.open("user", tmp_path).api_key is None


def test_saving_another_key_replaces_the_first(server, tmp_path):
    """The user store holds one key; a second save-api-key overwrites it (as mbl-cli does)."""
    save_api_key(server.developer_key, host=server.url, home=tmp_path)
    save_api_key(f"  {server.admin_key}\n", host=server.url, home=tmp_path)
    assert Store.open("user", tmp_path).api_key == server.admin_key


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


def test_fetch_existing_developer_certificate(server, tmp_path):
    """GET /v3/developer-certificates/{id} returns the credentials of a certificate made elsewhere."""
    client = CloudClient(server.developer_key, server.url)
    made = client.create_developer_certificate("portal-made")
    assert client.developer_certificate(made.id) == made
    with pytest.raises(CloudApiError, match="HTTP 404"):
        client.developer_certificate("no-such-id")


def test_delete_a_set_with_a_lost_file(server, tmp_path):
    """A developer set whose .bin files vanished can still be deleted, locally and in the service."""
    save_api_key(server.developer_key, host=server.url, home=tmp_path)
    paths = create_developer_certificate("a", host=server.url, home=tmp_path)
    paths[0].unlink()
    assert [e.name for e in list_certificates(home=tmp_path)] == ["a"]
    assert delete_certificate("a", host=server.url, home=tmp_path)[0] is True
    assert server.registry.developer_certificates.list() == []


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


def test_revoked_key_on_create_is_6004(server, tmp_path):
    """A saved key the service no longer accepts fails create-certificate with 6004 and HTTP 401."""
    record, key = server.registry.api_keys.create("soon-revoked")
    save_api_key(key, host=server.url, home=tmp_path)
    server.registry.api_keys.revoke(record.id)
    with pytest.raises(ApiKeyRejected) as info:
        create_developer_certificate("dev1", host=server.url, home=tmp_path)
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

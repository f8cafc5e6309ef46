"""``/v3/developer-certificates`` over a real server: issued material, listing, deletion, concurrency."""

from __future__ import annotations

import threading
import uuid

import pytest

from provkit.crypto import keys, x509
from provkit.developer import parse_developer_credentials
from provkit.developer.provision import check_developer_material
from support.dmapi import RunningApi, call

pytestmark = pytest.mark.integration

DEV = "MBED_CLOUD_DEV_"


def _name() -> str:
    return f"dev-{uuid.uuid4().hex[:12]}"


def test_created_certificate_is_a_usable_developer_certificate(api: RunningApi) -> None:
    """security_file_content parses, its key matches; CN = endpoint, OU = account, developer CA signed."""
    name = _name()
    status, _, body = call(
        api, "POST", "/v3/developer-certificates", {"name": name, "description": "d"}, key=api.developer_key
    )
    assert status == 201
    assert body["object"] == "trusted-cert" and body["name"] == name and body["description"] == "d"
    values = parse_developer_credentials(body["security_file_content"])
    check_developer_material(values)  # complete, certificates parse, key matches the certificate
    account = api.registry.accounts.current().id
    endpoint = values[DEV + "BOOTSTRAP_ENDPOINT_NAME"].decode()
    assert endpoint == body["endpoint_name"] and len(endpoint) == 32
    assert values[DEV + "ACCOUNT_ID"].decode() == account
    assert (
        values[DEV + "BOOTSTRAP_SERVER_URI"].decode() == f"{api.context.identity.bootstrap_uri}?aid={account}"
    )
    assert values[DEV + "BOOTSTRAP_SERVER_ROOT_CA_CERTIFICATE"] == api.context.identity.server_ca
    assert values[DEV + "MEMORY_TOTAL_KB"] == b"\0\0\0\0"
    device = x509.load_certificate(values[DEV + "BOOTSTRAP_DEVICE_CERTIFICATE"])
    assert x509.common_name(device) == endpoint and x509.organizational_unit(device) == account
    assert x509.has_client_auth(device) and not x509.is_self_signed(device)
    x509.verify_signed_by(device, api.context.developer.ca_certificate)
    assert x509.supported_scheme(device)
    assert body["developer_certificate"] == x509.certificate_pem([device]).decode()
    key = keys.load_private_key(body["developer_private_key"].encode())
    assert x509.matches_private_key(device, key)


def test_get_answers_the_same_material_and_stored_key_is_sealed(api: RunningApi) -> None:
    """GET {id} gives the same credentials file again; the registry holds no plaintext key."""
    status, _, created = call(
        api, "POST", "/v3/developer-certificates", {"name": _name()}, key=api.developer_key
    )
    assert status == 201
    status, _, fetched = call(api, "GET", f"/v3/developer-certificates/{created['id']}", key=api.admin_key)
    assert status == 200 and fetched == created
    record = api.registry.developer_certificates.get(created["id"])
    pkcs8 = parse_developer_credentials(created["security_file_content"])[
        DEV + "BOOTSTRAP_DEVICE_PRIVATE_KEY"
    ]
    assert pkcs8 not in record.sealed_key and len(record.sealed_key) > len(pkcs8)


def test_a_name_is_taken_once(api: RunningApi) -> None:
    """A second certificate of one name is 409 ``duplicate`` (what mbl-cli reads as "already exists")."""
    name = _name()
    assert call(api, "POST", "/v3/developer-certificates", {"name": name}, key=api.developer_key)[0] == 201
    status, _, body = call(api, "POST", "/v3/developer-certificates", {"name": name}, key=api.admin_key)
    assert status == 409 and body["type"] == "duplicate" and name in body["message"]


def test_listing_pages_and_trusted_certificates_view(api: RunningApi) -> None:
    """Pages of ``limit`` with has_more/after, DESC, total_count; also listed as trusted certificates."""
    made = [
        call(api, "POST", "/v3/developer-certificates", {"name": _name()}, key=api.developer_key)[2]["id"]
        for _ in range(3)
    ]
    seen: list[str] = []
    after = ""
    while True:
        query = "limit=2&include=total_count" + (f"&after={after}" if after else "")
        status, _, page = call(api, "GET", f"/v3/developer-certificates?{query}", key=api.developer_key)
        assert status == 200 and page["object"] == "list" and page["limit"] == 2
        assert len(page["data"]) <= 2 and page["total_count"] >= 3
        seen += [item["id"] for item in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == sorted(seen) and set(made) <= set(seen) and len(seen) == page["total_count"]
    status, _, desc = call(
        api, "GET", "/v3/developer-certificates?order=DESC&limit=1000", key=api.developer_key
    )
    assert [item["id"] for item in desc["data"]] == seen[::-1] and desc["total_count"] is None
    status, _, trusted = call(
        api, "GET", "/v3/trusted-certificates?device_execution_mode__eq=1&limit=1000", key=api.developer_key
    )
    assert status == 200 and set(made) <= {item["id"] for item in trusted["data"]}
    item = next(item for item in trusted["data"] if item["id"] == made[0])
    assert item["service"] == "bootstrap" and item["is_developer_certificate"] is True
    assert item["device_execution_mode"] == 1 and item["status"] == "ACTIVE"
    status, _, one = call(api, "GET", f"/v3/trusted-certificates/{made[0]}", key=api.developer_key)
    assert status == 200 and one == item


def test_delete_then_gone_everywhere(api: RunningApi) -> None:
    """DELETE on either path removes it; later reads are 404 and a second delete is 404."""
    first = call(api, "POST", "/v3/developer-certificates", {"name": _name()}, key=api.developer_key)[2]["id"]
    second = call(api, "POST", "/v3/developer-certificates", {"name": _name()}, key=api.developer_key)[2][
        "id"
    ]
    assert call(api, "DELETE", f"/v3/developer-certificates/{first}", key=api.developer_key)[0] == 204
    assert call(api, "DELETE", f"/v3/trusted-certificates/{second}", key=api.developer_key)[0] == 204
    for cert_id in (first, second):
        assert call(api, "GET", f"/v3/developer-certificates/{cert_id}", key=api.developer_key)[0] == 404
        assert call(api, "GET", f"/v3/trusted-certificates/{cert_id}", key=api.developer_key)[0] == 404
        assert call(api, "DELETE", f"/v3/developer-certificates/{cert_id}", key=api.developer_key)[0] == 404


def test_concurrent_creations_are_all_distinct_and_one_name_wins_once(api: RunningApi) -> None:
    """12 threads creating different names all get distinct certificates; 8 racing for one name: one 201."""
    results: list[tuple[int, dict[str, object]]] = []
    lock = threading.Lock()

    def create(name: str) -> None:
        status, _, body = call(
            api, "POST", "/v3/developer-certificates", {"name": name}, key=api.developer_key
        )
        with lock:
            results.append((status, body))

    threads = [threading.Thread(target=create, args=(_name(),)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [201] * 12
    assert len({body["id"] for _, body in results}) == 12
    assert len({body["endpoint_name"] for _, body in results}) == 12
    results.clear()
    contested = _name()
    threads = [threading.Thread(target=create, args=(contested,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in results) == [201] + [409] * 7
    assert [record.name for record in api.registry.developer_certificates.list()].count(contested) == 1

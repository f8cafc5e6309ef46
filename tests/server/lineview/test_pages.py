"""The line view's pages and exports, served by uvicorn on registries a real batch filled."""

from __future__ import annotations

import csv
import http.cookiejar
import io
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import pytest

from provkit.crypto.x509 import load_certificate, sha256_fingerprint
from support.dmapi import RunningApi

from .conftest import DEVICES

pytestmark = pytest.mark.integration


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Client:
    """A browser-like HTTP client: keeps cookies, shows redirects instead of following them."""

    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def request(
        self, path: str, form: dict[str, str] | None = None, raw: bytes | None = None
    ) -> tuple[int, dict[str, str], str]:
        data = raw if raw is not None else (None if form is None else urllib.parse.urlencode(form).encode())
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)
        request = urllib.request.Request(
            self.base + path, data=data, method="POST" if data is not None else "GET"
        )
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with opener.open(request, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_overview_shows_the_line(line: RunningApi) -> None:
    """Counters, chart, batch, failure with its meaning and station, from the registry."""
    status, headers, html = Client(line.url).request("/line")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-store"
    counters = dict(re.findall(r'data-field="(\w+)">([^<]*)<', html))
    assert counters["provisioned_window"] == str(DEVICES)
    assert counters["provisioned_total"] == str(DEVICES)
    assert counters["failures_window"] == "1"
    assert counters["final_yield"] == f"{DEVICES / (DEVICES + 1) * 100:.1f} %"
    assert f'data-total="{DEVICES}"' in html  # the chart, inline SVG
    assert "<polyline" in html and 'data-station="line-1"' in html
    text = _text(html)
    assert "Error connecting to device on IP … port …" in text  # code 1021 with the tool's words
    assert "line-1" in text
    assert 'src="/line/static/lineview.js"' in html
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)  # nothing fetched from elsewhere (no CDN)


def test_live_fragment_json_and_csv_agree(line: RunningApi) -> None:
    """The live part, the JSON and the CSV exports carry the same figures; filters in the URL."""
    client = Client(line.url)
    status, _, fragment = client.request("/line/live?hours=1&quiet=10")
    assert status == 200 and "<html" not in fragment and f'data-total="{DEVICES}"' in fragment
    status, headers, body = client.request("/line/now.json?hours=1&quiet=10")
    assert status == 200 and headers["content-type"] == "application/json"
    now = json.loads(body)
    assert now["filter"] == {"hours": 1.0, "quiet_minutes": 10.0}
    assert now["counters"]["provisioned_window"] == DEVICES
    assert sum(point["devices"] for point in now["per_minute"]) == DEVICES
    (batch,) = now["batches"]
    assert (batch["total"], batch["verified"], batch["failed"], batch["pending"]) == (
        DEVICES + 1,
        DEVICES,
        1,
        0,
    )
    (failure,) = now["failures"]
    assert failure["code"] == 1021 and failure["count"] == 1 and "connecting" in failure["text"]
    status, headers, body = client.request("/line/now.csv?table=batches&hours=1")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert "attachment" in headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["batch_id"] for row in rows] == [batch["batch_id"]]
    assert rows[0]["verified"] == str(DEVICES)
    status, _, body = client.request("/line/now.csv?table=per_minute")
    assert sum(int(row["devices"]) for row in csv.DictReader(io.StringIO(body))) == DEVICES
    status, headers, svg = client.request("/line/chart.svg?hours=2")
    assert status == 200 and headers["content-type"] == "image/svg+xml" and svg.startswith("<svg")


@pytest.mark.parametrize(
    "query",
    ["/line?hours=0", "/line?hours=9999", "/line?hours=abc", "/line/now.csv?table=secrets", "/line/device"],
)
def test_bad_filters_are_refused(line: RunningApi, query: str) -> None:
    """A filter out of range or malformed is a 400 with the API's JSON error, not a 500."""
    status, headers, body = Client(line.url).request(query)
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["type"] == "validation_error"


def test_find_a_device_every_way(line: RunningApi) -> None:
    """By endpoint name, serial number, fingerprint (either case, colons) and enrollment id."""
    client = Client(line.url)
    _, _, device = client.request("/line/device.json?endpoint=ep-0003")
    page = json.loads(device)
    fingerprint = page["certificate"]["sha256"]
    enrollment = page["attempts"][0]["enrollment_id"]
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    for key in ("ep-0003", "sn-0003", fingerprint, colons, enrollment):
        status, _, html = client.request("/line/devices?q=" + urllib.parse.quote(key))
        assert status == 200
        assert 'href="/line/device?endpoint=ep-0003"' in html, key
        status, headers, _ = client.request("/line/devices?go=1&q=" + urllib.parse.quote(key))
        assert status == 303 and headers["location"] == "/line/device?endpoint=ep-0003"
    status, _, html = client.request("/line/devices?q=nobody")
    assert status == 200 and "No device matches" in html
    _, _, body = client.request("/line/devices.csv?q=sn-0003")
    (row,) = csv.DictReader(io.StringIO(body))
    assert row["endpoint_name"] == "ep-0003" and row["state"] == "verified"
    _, _, body = client.request("/line/devices.json?q=sn-0003")
    assert [a["endpoint_name"] for a in json.loads(body)["attempts"]] == ["ep-0003"]


def test_device_page_shows_attempts_certificate_and_no_secrets(line: RunningApi) -> None:
    """Attempts with the device's answer, the certificate's facts; no key, no bundle."""
    client = Client(line.url)
    status, _, html = client.request("/line/device?endpoint=ep-0002")
    assert status == 200
    text = _text(html)
    assert "verified" in text and "The Factory process succeeded" in text
    assert "CN=ep-0002" in text and "provkit factory CA" in text
    _, headers, pem = client.request("/line/device.pem?endpoint=ep-0002")
    assert headers["content-type"] == "application/x-pem-file"
    certificate = load_certificate(pem.encode())
    assert sha256_fingerprint(certificate).hex() in html
    attempt = line.registry.lookup("ep-0002")[0]
    full = line.registry.get_attempt(attempt.id)
    assert full.response and full.response.hex() not in html  # the raw answer stays in the registry
    for page in (html, client.request("/line/device.json?endpoint=ep-0002")[2]):
        assert "PRIVATE KEY" not in page and "sealed" not in page
    failed = json.loads(client.request("/line/device.json?endpoint=ep-0008")[2])
    (attempt_row,) = failed["attempts"]
    assert attempt_row["state"] == "failed" and attempt_row["error_code"] == 1021
    assert failed["certificate"]["subject"].startswith("CN=ep-0008")  # prepared, never delivered


def test_unknown_device_is_404(line: RunningApi) -> None:
    """A device the registry does not know: 404 pages, not errors."""
    client = Client(line.url)
    assert client.request("/line/device?endpoint=ghost")[0] == 404
    assert client.request("/line/device.json?endpoint=ghost")[0] == 404
    assert client.request("/line/device.pem?endpoint=ghost")[0] == 404
    assert client.request("/line/static/../../registry.sqlite")[0] == 404
    assert client.request("/line/static/app.py")[0] == 404


def test_revoking_needs_an_administrators_sign_in(line: RunningApi) -> None:
    """Read-only without a key; a developers key may not revoke; an admin key's form does."""
    anonymous = Client(line.url)
    status, headers, _ = anonymous.request("/line/device/revoke", {"endpoint": "ep-0001", "form_token": "x"})
    assert status == 303 and headers["location"].startswith("/line/signin?next=")
    assert not line.registry.revocations.is_revoked("ep-0001")

    status, _, html = anonymous.request("/line/signin", {"api_key": "ak_wrong", "next": "/line"})
    assert status == 401 and "missing or invalid API key" in html

    developer = Client(line.url)
    assert developer.request("/line/signin", {"api_key": line.developer_key, "next": "/line"})[0] == 303
    token = _form_token(developer, "ep-0001")
    status, _, _ = developer.request("/line/device/revoke", {"endpoint": "ep-0001", "form_token": token})
    assert status == 403 and not line.registry.revocations.is_revoked("ep-0001")

    admin = Client(line.url)
    status, headers, _ = admin.request(
        "/line/signin", {"api_key": line.admin_key, "next": "https://evil.example/"}
    )
    assert status == 303 and headers["location"] == "/line"  # never sent to another site
    cookie = next(iter(admin.jar))
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/line"
    assert cookie.value != line.admin_key and line.admin_key not in admin.request("/line")[2]
    status, _, _ = admin.request("/line/device/revoke", {"endpoint": "ep-0001", "form_token": "forged"})
    assert status == 400 and not line.registry.revocations.is_revoked("ep-0001")
    token = _form_token(admin, "ep-0001")
    status, headers, _ = admin.request("/line/device/revoke", {"endpoint": "ep-0001", "form_token": token})
    assert status == 303 and headers["location"] == "/line/device?endpoint=ep-0001&done=revoked"
    assert line.registry.revocations.is_revoked("ep-0001")
    assert "revoked" in _text(admin.request("/line/device?endpoint=ep-0001")[2])

    assert admin.request("/line/signout", {})[0] == 303
    status, _, _ = admin.request("/line/device/revoke", {"endpoint": "ep-0002", "form_token": token})
    assert status == 303 and not line.registry.revocations.is_revoked("ep-0002")


def test_a_revoked_key_ends_its_sessions(line: RunningApi) -> None:
    """Sessions name a key; revoking the key signs its browsers out."""
    record, key = line.registry.api_keys.create("line-screen", "administrators")
    client = Client(line.url)
    client.request("/line/signin", {"api_key": key, "next": "/line"})
    assert "line-screen" in client.request("/line")[2]
    line.registry.api_keys.revoke(record.id)
    html = client.request("/line")[2]
    assert "line-screen" not in html and "Sign in" in html


def test_oversized_and_garbled_forms(line: RunningApi) -> None:
    """Forms too large or not form-encoded are refused cleanly."""
    client = Client(line.url)
    status, _, _ = client.request("/line/signin", raw=b"api_key=" + b"a" * 10_000)
    assert status == 401
    status, _, _ = client.request("/line/signin", raw=bytes(range(256)))
    assert status == 401
    assert client.request("/line")[0] == 200  # the server is still serving


def _form_token(client: Client, endpoint: str) -> str:
    html = client.request(f"/line/device?endpoint={endpoint}")[2]
    match = re.search(r'name="form_token" value="([^"]+)"', html)
    assert match, "the revoke form is shown to a signed-in browser"
    return match.group(1)

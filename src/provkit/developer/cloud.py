"""The few Device Management REST calls of the developer flow, over ``urllib``.

Endpoints (mbl-manifest-peers.md §1.3, §1.4): ``GET /v3/accounts/me`` validates an API
key; ``POST /v3/developer-certificates`` ``{"name", "description"}`` creates a developer
certificate whose ``security_file_content`` is the text of
``mbed_cloud_dev_credentials.c``; ``GET /v3/trusted-certificates`` lists certificates
(paged with ``after``); ``DELETE /v3/trusted-certificates/{id}`` deletes one. Every call
sends ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

from provkit.errors import ApiKeyRejected, CertificateExists, CloudApiError

DEFAULT_API_HOST: Final = "https://api.us-east-1.mbedcloud.com"
API_HOST_ENV: Final = "PROVKIT_API_HOST"
DEFAULT_TIMEOUT_S: Final = 30.0
_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class DeveloperCertificate:
    """What ``POST /v3/developer-certificates`` returned.

    Attributes:
        id: the certificate id (for deletion).
        name: the name given.
        security_file_content: the ``mbed_cloud_dev_credentials.c`` text.
    """

    id: str
    name: str
    security_file_content: str


def api_host(host: str | None = None) -> str:
    """Return ``host``, else ``$PROVKIT_API_HOST``, else the US-East Device Management API.

    Raises:
        CloudApiError: the URL is not ``http://`` or ``https://``.
    """
    url = (host or os.environ.get(API_HOST_ENV) or DEFAULT_API_HOST).rstrip("/")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CloudApiError(f"API host {url!r} is not an http(s) URL")
    return url


class CloudClient:
    """A Device Management API client for one API key.

    Args:
        api_key: the key sent as ``Bearer``.
        host: the API base URL (see :func:`api_host`).
        timeout_s: per-request timeout.
    """

    def __init__(
        self, api_key: str, host: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.api_key = api_key.strip()
        self.host = api_host(host)
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        url = f"{self.host}{path}"
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked
        request.add_header("Authorization", f"Bearer {self.api_key}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(method, path, exc) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CloudApiError(
                f"cannot reach {self.host}: {reason}",
                hint=f"check the network or the API host (--api-host / ${API_HOST_ENV})",
            ) from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CloudApiError(f"{method} {path}: the answer is not JSON") from exc

    def account(self) -> dict[str, Any]:
        """``GET /v3/accounts/me``: the account the key belongs to (validates the key).

        Raises:
            ApiKeyRejected: 401/403. CloudApiError: any other failure.
        """
        result = self._call("GET", "/v3/accounts/me")
        if not isinstance(result, dict):
            raise CloudApiError("GET /v3/accounts/me: the answer is not an account object")
        return result

    def create_developer_certificate(self, name: str, description: str = "") -> DeveloperCertificate:
        """``POST /v3/developer-certificates``.

        Raises:
            CertificateExists: 409. ApiKeyRejected: 401/403. CloudApiError: other failures
                or an answer without ``id`` / ``security_file_content``.
        """
        result = self._call("POST", "/v3/developer-certificates", {"name": name, "description": description})
        if not isinstance(result, dict):
            raise CloudApiError("POST /v3/developer-certificates: the answer is not an object")
        content = result.get("security_file_content")
        cert_id = result.get("id")
        if not isinstance(content, str) or not content or not isinstance(cert_id, str):
            raise CloudApiError("the developer certificate answer has no id or security_file_content")
        return DeveloperCertificate(cert_id, str(result.get("name", name)), content)

    def trusted_certificates(self) -> list[dict[str, Any]]:
        """``GET /v3/trusted-certificates``, following ``has_more``/``after`` pages."""
        out: list[dict[str, Any]] = []
        after = None
        while True:
            query = {"limit": str(_PAGE)} | ({"after": after} if after else {})
            page = self._call("GET", "/v3/trusted-certificates?" + urllib.parse.urlencode(query))
            items = page.get("data") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise CloudApiError("GET /v3/trusted-certificates: the answer has no data list")
            out.extend(item for item in items if isinstance(item, dict))
            if not page.get("has_more") or not items:
                return out
            after = str(items[-1].get("id", ""))

    def find_certificate_id(self, name: str) -> str | None:
        """The id of the trusted certificate called ``name``, if the account has one."""
        for item in self.trusted_certificates():
            if item.get("name") == name and item.get("id"):
                return str(item["id"])
        return None

    def delete_certificate(self, cert_id: str) -> None:
        """``DELETE /v3/trusted-certificates/{id}``.

        Raises:
            CloudApiError: 404 when it does not exist, and other failures.
        """
        self._call("DELETE", f"/v3/trusted-certificates/{urllib.parse.quote(cert_id, safe='')}")


def _http_error(method: str, path: str, exc: urllib.error.HTTPError) -> CloudApiError:
    status = exc.code
    try:
        detail = json.loads(exc.read() or b"{}").get("message", "")
    except (json.JSONDecodeError, AttributeError, OSError):
        detail = ""
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        return ApiKeyRejected(
            f"the API key was rejected (HTTP {status}){suffix}",
            http_status=status,
            hint="create a new API key in the Device Management Portal and save it with save-api-key",
        )
    if status == 409:
        return CertificateExists(
            f"a developer certificate of that name already exists in Device Management{suffix}",
            http_status=status,
            hint="choose another name, or delete the old certificate with delete-certificate",
        )
    return CloudApiError(f"{method} {path} failed with HTTP {status}{suffix}", http_status=status)

"""The few Device Management REST calls of the developer flow, over ``urllib``.

Endpoints (the calls mbl-cli makes through mbed-cloud-sdk 2.0.6): ``GET /v3/accounts/me``
validates an API key; ``POST /v3/developer-certificates`` ``{"name", "description"}`` creates a developer
certificate whose ``security_file_content`` is the text of
``mbed_cloud_dev_credentials.c``; ``GET /v3/developer-certificates/{id}`` fetches one that
exists already; ``GET /v3/trusted-certificates`` lists certificates (paged with
``after``); ``DELETE /v3/trusted-certificates/{id}`` deletes one. Every call sends
``Authorization: Bearer <key>``. Redirects are not followed, so the key never goes to a
host other than the configured one. A plain ``http://`` host that is not loopback is
logged as a warning: the key would cross the network in clear.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from provkit.errors import ApiKeyRejected, CertificateExists, CloudApiError

_log = logging.getLogger(__name__)

DEFAULT_API_HOST: Final = "https://api.us-east-1.mbedcloud.com"
API_HOST_ENV: Final = "PROVKIT_API_HOST"
API_CA_ENV: Final = "PROVKIT_API_CA"
"""PEM file of the CAs to trust for an ``https://`` API host instead of the system's."""
DEFAULT_TIMEOUT_S: Final = 30.0
_PAGE: Final = 1000
_KEY_RE: Final = re.compile(r"[!-~]{1,1024}")
"""An API key is printable ASCII without spaces (it travels in an HTTP header)."""


def check_api_key(key: str) -> str:
    """Return ``key`` without surrounding whitespace, if it can be an API key.

    Raises:
        ApiKeyRejected: the key is empty or holds spaces, control or non-ASCII characters
            (such a key cannot be sent, and no service would accept it).
    """
    stripped = key.strip()
    if not _KEY_RE.fullmatch(stripped):
        what = "empty" if not stripped else "not printable ASCII without spaces"
        raise ApiKeyRejected(
            f"the API key is {what}",
            hint="copy the whole key (ak_…) from the Device Management Portal",
        )
    return stripped


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turn a redirect into its HTTP error: following it would send the key elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER: Final = urllib.request.build_opener(_NoRedirect)


def _opener(ca_file: Path | None) -> urllib.request.OpenerDirector:
    """The opener for one client: system trust, or only the CAs in ``ca_file``.

    Raises:
        CloudApiError: ``ca_file`` cannot be read as PEM certificates.
    """
    if ca_file is None:
        return _OPENER
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise CloudApiError(f"cannot use {ca_file} as the API's CA certificates: {exc}") from exc
    return urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))


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


def _warn_if_cleartext(url: str) -> None:
    """Log a warning when the API key would cross a network in clear (``http://`` off loopback)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        return
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        _log.warning("%s is plain HTTP: the API key is sent unencrypted; use https://", url)


class CloudClient:
    """A Device Management API client for one API key.

    Args:
        api_key: the key sent as ``Bearer``.
        host: the API base URL (see :func:`api_host`).
        timeout_s: per-request timeout.
        ca_file: PEM CA certificates to trust for ``https://`` instead of the system's
            (default ``$PROVKIT_API_CA``), e.g. a self-hosted server's CA.

    Raises:
        ApiKeyRejected: the key is malformed (:func:`check_api_key`).
        CloudApiError: the host is not an http(s) URL, or ``ca_file`` is unusable.
    """

    def __init__(
        self,
        api_key: str,
        host: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ca_file: Path | None = None,
    ) -> None:
        self.api_key = check_api_key(api_key)
        self.host = api_host(host)
        self.timeout_s = timeout_s
        env_ca = os.environ.get(API_CA_ENV)
        self._opener = _opener(ca_file or (Path(env_ca) if env_ca else None))
        _warn_if_cleartext(self.host)

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        url = f"{self.host}{path}"
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked
        request.add_header("Authorization", f"Bearer {self.api_key}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(method, path, exc) from exc
        except http.client.HTTPException as exc:  # not HTTP (BadStatusLine), or a body cut short
            raise CloudApiError(f"{method} {path}: {self.host} did not answer in HTTP: {exc!r}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CloudApiError(
                f"cannot reach {self.host}: {reason}",
                hint=f"check the network or the API host (`api_host` / ${API_HOST_ENV})",
            ) from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for non-UTF bytes
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
        return _developer_certificate("POST /v3/developer-certificates", result, name)

    def developer_certificate(self, cert_id: str) -> DeveloperCertificate:
        """``GET /v3/developer-certificates/{id}``: an existing developer certificate.

        Raises:
            ApiKeyRejected: 401/403. CloudApiError: 404 (not a developer certificate),
                other failures, or an answer without ``security_file_content``.
        """
        path = f"/v3/developer-certificates/{urllib.parse.quote(cert_id, safe='')}"
        return _developer_certificate(f"GET {path}", self._call("GET", path), "")

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
            last = items[-1].get("id") if isinstance(items[-1], dict) else None
            if not isinstance(last, str) or not last or last == after:
                # Asking again with the same cursor would return the same page forever.
                raise CloudApiError("GET /v3/trusted-certificates: has_more without a new page cursor")
            after = last

    def upload_trusted_certificate(
        self, name: str, certificate_pem: str, *, service: str = "bootstrap", description: str = ""
    ) -> dict[str, Any]:
        """``POST /v3/trusted-certificates``: trust a CA (a factory CA) for ``service``.

        Returns:
            The trusted certificate the service answered (``id``, ``name``, ``service`` …).

        Raises:
            CertificateExists: 409, the name or the certificate is taken. ApiKeyRejected:
                401/403 (uploading needs an administrators key). CloudApiError: other failures.
        """
        body = {"name": name, "certificate": certificate_pem, "service": service, "description": description}
        result = self._call("POST", "/v3/trusted-certificates", body)
        if not isinstance(result, dict) or not isinstance(result.get("id"), str):
            raise CloudApiError("POST /v3/trusted-certificates: the answer is not a trusted certificate")
        return result

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


def _developer_certificate(call: str, result: object, name: str) -> DeveloperCertificate:
    if not isinstance(result, dict):
        raise CloudApiError(f"{call}: the answer is not an object")
    content = result.get("security_file_content")
    cert_id = result.get("id")
    if not isinstance(content, str) or not content or not isinstance(cert_id, str) or not cert_id:
        raise CloudApiError(f"{call}: the developer certificate answer has no id or security_file_content")
    return DeveloperCertificate(cert_id, str(result.get("name") or name), content)


def _http_error(method: str, path: str, exc: urllib.error.HTTPError) -> CloudApiError:
    status = exc.code
    try:
        answer = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):  # not JSON, not UTF-8, or the body was cut
        answer = None
    detail = answer.get("message") if isinstance(answer, dict) else None
    suffix = f": {detail}" if isinstance(detail, str) and detail else ""
    if status in (401, 403):
        return ApiKeyRejected(
            f"the API key was rejected (HTTP {status}){suffix}",
            http_status=status,
            hint="create a new API key in the Device Management Portal and save it with save-api-key",
        )
    if status == 409:
        what = (
            "a developer certificate of that name" if "developer" in path else "that certificate or its name"
        )
        return CertificateExists(
            f"{what} already exists in Device Management{suffix}",
            http_status=status,
            hint="choose another name, or delete the old certificate with delete-certificate",
        )
    return CloudApiError(f"{method} {path} failed with HTTP {status}{suffix}", http_status=status)

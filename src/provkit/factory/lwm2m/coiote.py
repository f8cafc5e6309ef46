"""Registering a device in a Coiote-style LwM2M management server (Anjay's ``CoioteRegistration``).

``POST {url}:{port}/api/coiotedm/v3/devices`` with ``Authorization: Bearer <token>`` and
a JSON body naming the endpoint, connector type, domain, security mode and, for PSK, the
identity and the key in hex. The server JSON file holds ``url``, ``port`` and ``domain``.

Fixed against the reference tool: Security Mode 4 (EST) registers as ``cert`` (Coiote
documents no ``est`` value); HTTP and network failures become a
:class:`~provkit.errors.RegistrationError` naming the status and the server's message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provkit.errors import RegistrationError
from provkit.factory.lwm2m.jsonfile import read_json

DEVICES_PATH: Final = "/api/coiotedm/v3/devices"
DEFAULT_URL: Final = "https://eu.iot.avsystem.cloud"
DEFAULT_PORT: Final = 8087
MODE_NAMES: Final[dict[int, str]] = {0: "psk", 2: "cert", 3: "nosec", 4: "cert"}
"""Security Mode → Coiote ``securityMode``."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Where to register: base URL, REST port and Coiote domain (``/.../``)."""

    url: str = DEFAULT_URL
    port: int = DEFAULT_PORT
    domain: str = ""

    @classmethod
    def from_mapping(cls, data: object) -> ServerInfo:
        """Validate a server JSON object.

        Raises:
            RegistrationError: missing domain, bad URL or port.
        """
        if not isinstance(data, Mapping):
            raise RegistrationError("the server file must hold a JSON object")
        url, port, domain = data.get("url", DEFAULT_URL), data.get("port", DEFAULT_PORT), data.get("domain")
        try:
            parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistrationError(f"server url {url!r} is not an http(s) URL with a host")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise RegistrationError(f"server port {port!r} is not 1..65535")
        if not isinstance(domain, str) or not domain.startswith("/") or not domain.endswith("/"):
            raise RegistrationError(f"server domain {domain!r} must start and end with '/'")
        return cls(url.rstrip("/"), port, domain)

    @classmethod
    def load(cls, path: str | Path) -> ServerInfo:
        """Read a server JSON file.

        Raises:
            RegistrationError: unreadable, not JSON, or invalid.
        """
        return cls.from_mapping(read_json(path, RegistrationError, "server file"))

    @property
    def devices_url(self) -> str:
        """The full URL of the devices collection."""
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal keeps its brackets before the port
        return urllib.parse.urlunsplit((parts.scheme, f"{host}:{self.port}", DEVICES_PATH, "", ""))


def registration_body(
    endpoint_name: str,
    domain: str,
    security_mode: int,
    identity: bytes | None = None,
    psk: bytes | None = None,
) -> dict[str, object]:
    """Build the ``POST /devices`` body.

    Raises:
        RegistrationError: unsupported mode, or PSK mode without a text identity and a key.
    """
    if security_mode not in MODE_NAMES:
        raise RegistrationError(f"Security Mode {security_mode} cannot be registered")
    dtls_identity: str | None = None
    dtls_psk: dict[str, str] | None = None
    if security_mode == 0:
        if not identity or not psk:
            raise RegistrationError("PSK registration needs the identity (/0/x/3) and the key (/0/x/5)")
        try:
            dtls_identity = identity.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RegistrationError("the PSK identity is not UTF-8 text; Coiote needs text") from exc
        dtls_psk = {"HexadecimalPsk": psk.hex()}
    return {
        "properties": {"endpointName": endpoint_name},
        "connectorType": "management",
        "domain": domain,
        "securityMode": MODE_NAMES[security_mode],
        "dtlsIdentity": dtls_identity,
        "dtlsPsk": dtls_psk,
    }


class CoioteRegistration:
    """Registers devices with one server and token.

    Args:
        server: the server.
        token: the API access token.
        timeout_s: HTTP timeout.
    """

    def __init__(self, server: ServerInfo, token: str, *, timeout_s: float = 30.0) -> None:
        if not token:
            raise RegistrationError("no access token")
        self.server = server
        self.token = token
        self.timeout_s = timeout_s

    def register(
        self, endpoint_name: str, security_mode: int, identity: bytes | None = None, psk: bytes | None = None
    ) -> object:
        """Create the device; return the server's JSON answer (``None`` if it sent none).

        Raises:
            RegistrationError: the server refused (status and message) or was unreachable.
        """
        body = registration_body(endpoint_name, self.server.domain, security_mode, identity, psk)
        request = urllib.request.Request(  # noqa: S310 - the URL scheme is checked to be http(s)
            self.server.devices_url,
            data=json.dumps(body).encode("utf-8"),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                text = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            detail = _error_text(exc)
            raise RegistrationError(
                f"Coiote server error: HTTP {exc.code} {exc.reason}{': ' + detail if detail else ''}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistrationError(f"cannot reach {self.server.devices_url}: {reason}") from exc
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            return text


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        raw = exc.read().decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.strip()[:200]
    if isinstance(data, Mapping) and "error" in data:
        return str(data["error"])[:200]
    return raw.strip()[:200]

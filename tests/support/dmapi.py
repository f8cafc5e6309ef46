"""A real Device Management API (uvicorn on 127.0.0.1, port 0) on a real registry, for tests."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from provkit.crypto import issue, keys, x509
from provkit.crypto.aead import Sealer, new_secret
from provkit.registry import Registry
from provkit.server.api import ApiContext, DeveloperAuthority, ServerIdentity, create_app
from provkit.server.api.http import BackgroundApi
from provkit.server.http_settings import HttpSettings

NOW = dt.datetime.now(dt.UTC)


def server_identity(bootstrap_uri: str = "coaps://127.0.0.1:5784") -> ServerIdentity:
    """A server CA of its own and the URIs of a server that need not run."""
    ca = issue.create_ca(keys.generate_p256(), {"common-name": "test server CA"}, now=NOW)
    return ServerIdentity(bootstrap_uri, "coaps://127.0.0.1:5684", x509.certificate_der(ca))


@dataclass
class RunningApi:
    """A served API and what tests need of it.

    Attributes:
        url: the base URL.
        registry: its registry.
        context: its state.
        admin_key: an administrators key.
        developer_key: a developers key.
    """

    url: str
    registry: Registry
    context: ApiContext
    admin_key: str
    developer_key: str


@contextmanager
def running_api(
    registry_url: str,
    *,
    identity: ServerIdentity | None = None,
    settings: HttpSettings | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> Iterator[RunningApi]:
    """Serve the API (and ``extra_routers``) on ``registry_url`` until the block ends."""
    registry = Registry.open(registry_url)
    try:
        authority = DeveloperAuthority.open(registry, Sealer(new_secret()), identity or server_identity())
        context = ApiContext(registry, authority)
        _, admin = registry.api_keys.create("test-admin", "administrators")
        _, developer = registry.api_keys.create("test-developer", "developers")
        app = create_app(context, extra_routers=extra_routers)
        with BackgroundApi(app, settings or HttpSettings(port=0)) as server:
            yield RunningApi(server.url, registry, context, admin, developer)
    finally:
        registry.close()


def new_key(api: RunningApi, role: str = "developers") -> str:
    """A key of its own for a test that changes it (named after a fresh id)."""
    return api.registry.api_keys.create(f"test-{uuid.uuid4().hex}", role)[1]


def call(
    api: RunningApi | str,
    method: str,
    path: str,
    body: object | None = None,
    *,
    key: str | None = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request; returns (status, headers, JSON body or None)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    base = api if isinstance(api, str) else api.url
    request = urllib.request.Request(base + path, data=data, method=method)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, answer_headers, payload = answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        status, answer_headers, payload = exc.code, dict(exc.headers), exc.read()
    return status, answer_headers, json.loads(payload) if payload else None

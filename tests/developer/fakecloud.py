"""A small Device Management API on 127.0.0.1 for the developer-flow tests.

It implements the five calls the flow makes, keeps certificates in memory, records every
request, and can be told to fail every call with a given status or to answer every call
with fixed raw bytes (``raw_answer``: status, body; ``raw_headers``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class CloudState:
    """What the fake service knows and what it saw."""

    valid_keys: set[str] = field(default_factory=lambda: {"ak_good"})
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    fail_status: int | None = None
    raw_answer: tuple[int, bytes] | None = None
    raw_headers: dict[str, str] = field(default_factory=dict)
    credentials_text: Callable[[str], str] = lambda name: ""
    url: str = ""


def _handler(state: CloudState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, payload: object | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.seen.append((self.command, self.path, dict(self.headers), body))
            if state.raw_answer is not None:
                status, raw = state.raw_answer
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                for header, value in state.raw_headers.items():
                    self.send_header(header, value)
                self.end_headers()
                self.wfile.write(raw)
                return
            if state.fail_status is not None:
                self._answer(state.fail_status, {"message": "internal trouble"})
                return
            if self.headers.get("Authorization", "").removeprefix("Bearer ") not in state.valid_keys:
                self._answer(401, {"message": "Invalid API key"})
                return
            url = urlsplit(self.path)
            route = (self.command, url.path)
            if route == ("GET", "/v3/accounts/me"):
                self._answer(200, {"id": "acc-1", "object": "account"})
            elif route == ("POST", "/v3/developer-certificates"):
                self._create(body)
            elif self.command == "GET" and url.path.startswith("/v3/developer-certificates/"):
                cert = state.certificates.get(url.path.rsplit("/", 1)[1])
                if cert is None or "security_file_content" not in cert:
                    self._answer(404, {"message": "not a developer certificate"})
                else:
                    self._answer(200, cert)
            elif route == ("GET", "/v3/trusted-certificates"):
                self._list(parse_qs(url.query))
            elif self.command == "DELETE" and url.path.startswith("/v3/trusted-certificates/"):
                cert_id = url.path.rsplit("/", 1)[1]
                known = state.certificates.pop(cert_id, None)
                self._answer(204 if known else 404, None if known else {"message": "not found"})
            else:
                self._answer(404, {"message": "no route"})

        def _create(self, body: dict[str, Any]) -> None:
            name = body["name"]
            if any(c["name"] == name for c in state.certificates.values()):
                self._answer(409, {"message": f"Certificate with name {name} already exists"})
                return
            cert_id = uuid.uuid4().hex
            state.certificates[cert_id] = {
                "id": cert_id,
                "name": name,
                "service": "bootstrap",
                "object": "trusted-cert",
                "security_file_content": state.credentials_text(name),
            }
            self._answer(201, state.certificates[cert_id])

        def _list(self, query: dict[str, list[str]]) -> None:
            items = sorted(state.certificates.values(), key=lambda c: c["id"])
            after = query.get("after", [""])[0]
            if after:
                items = [c for c in items if c["id"] > after]
            # small pages so the client's paging is exercised; no credentials in a listing
            page = [{k: v for k, v in c.items() if k != "security_file_content"} for c in items[:2]]
            self._answer(200, {"object": "list", "data": page, "has_more": len(items) > 2})

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def fake_cloud(state: CloudState | None = None) -> Iterator[CloudState]:
    """Run the fake service in a thread; ``state.url`` is its base URL."""
    state = state or CloudState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

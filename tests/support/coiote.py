"""A minimal Coiote-style ``POST /api/coiotedm/v3/devices`` endpoint on 127.0.0.1, in a thread."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Coiote:
    """The running server: what it received, and how it answers the next requests.

    Attributes:
        port: the TCP port it listens on.
        seen: ``(method, path, headers, body)`` of every request.
        status: HTTP status of the answers (201 by default).
        raw_error: when set, the error body sent as plain text instead of ``{"error": ...}``.
    """

    port: int = 0
    seen: list[tuple[str, str, dict[str, str], object]] = field(default_factory=list)
    status: int = 201
    raw_error: bytes | None = None

    def server_info(self, domain: str = "/embedded/") -> dict[str, object]:
        """The server JSON (url, port, domain) pointing at this server."""
        return {"url": "http://127.0.0.1", "port": self.port, "domain": domain}


@contextlib.contextmanager
def coiote_server() -> Iterator[Coiote]:
    """Run the endpoint until the block ends."""
    state = Coiote()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.seen.append((self.command, self.path, dict(self.headers), body))
            if state.status < 400:
                data = json.dumps({"id": body["properties"]["endpointName"]}).encode()
            else:
                data = json.dumps({"error": "Device exists"}).encode()
                data = data if state.raw_error is None else state.raw_error
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

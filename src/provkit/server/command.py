"""The end-of-line connect command: a line asks a device to make its first connection.

Carried by the device agent under :data:`~provkit.wire.framing.CONNECT_TOKEN`. The
request is a JSON object (all keys optional)::

    {"timeout": 10, "endpoint": null, "bootstrap": false, "deregister": false}

and the answer a JSON object: ``{"ok": true, "endpoint_name", "bootstrapped", "server",
"location", "mode", "seconds"}`` or ``{"ok": false, "failure", "code", "message", "hint"}``
with the classification of :class:`~provkit.server.outcome.Failure`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Final

from provkit.device.kcm import Kcm
from provkit.errors import ConnectError, ProvkitError
from provkit.server.connect import connect_device
from provkit.server.outcome import Failure

MAX_TIMEOUT: Final = 120.0


@dataclass(frozen=True)
class ConnectRequest:
    """What the line asks for.

    Attributes:
        timeout: seconds for each handshake and exchange.
        endpoint: endpoint name to use instead of the stored one.
        bootstrap: bootstrap even when an LwM2M account is stored.
        deregister: de-register after registering.
    """

    timeout: float = 10.0
    endpoint: str | None = None
    bootstrap: bool = False
    deregister: bool = False

    def encode(self) -> bytes:
        """The request message."""
        return json.dumps(
            {
                "timeout": self.timeout,
                "endpoint": self.endpoint,
                "bootstrap": self.bootstrap,
                "deregister": self.deregister,
            }
        ).encode()

    @classmethod
    def decode(cls, message: bytes) -> ConnectRequest:
        """Read a request; unusable fields fall back to the defaults.

        Raises:
            ValueError: the message is not a JSON object.
        """
        data = json.loads(message.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("a connect request is a JSON object")
        timeout = data.get("timeout", 10.0)
        endpoint = data.get("endpoint")
        return cls(
            timeout=min(float(timeout), MAX_TIMEOUT)
            if isinstance(timeout, int | float) and timeout > 0
            else 10.0,
            endpoint=endpoint if isinstance(endpoint, str) and endpoint else None,
            bootstrap=data.get("bootstrap") is True,
            deregister=data.get("deregister") is True,
        )


def failure_answer(error: ProvkitError) -> dict[str, Any]:
    """The answer describing a failed connection."""
    return {
        "ok": False,
        "failure": str(error.failure) if isinstance(error, ConnectError) else Failure.DEVICE_CONFIG.value,
        "service": error.service if isinstance(error, ConnectError) else None,
        "code": error.code,
        "code_space": None if error.code is None else str(error.space),
        "message": error.message,
        "hint": error.hint,
    }


def run_command(kcm: Kcm, message: bytes) -> bytes:
    """Answer one connect command for the device whose storage is ``kcm``."""
    try:
        request = ConnectRequest.decode(message)
    except (ValueError, UnicodeDecodeError) as exc:
        refused = {"ok": False, "failure": "refused", "code": None, "code_space": None}
        return json.dumps({**refused, "message": f"bad request: {exc}"}).encode()
    try:
        result = connect_device(
            kcm,
            endpoint_name=request.endpoint,
            force_bootstrap=request.bootstrap,
            timeout=request.timeout,
            deregister=request.deregister,
        )
    except ProvkitError as exc:
        return json.dumps(failure_answer(exc)).encode()
    return json.dumps({"ok": True, **result.as_dict()}).encode()


def connect_handler(kcm: Kcm) -> Any:
    """A device-agent handler for :data:`~provkit.wire.framing.CONNECT_TOKEN` on ``kcm``."""
    lock = threading.Lock()

    def handle(message: bytes) -> bytes:
        with lock:
            return run_command(kcm, message)

    return handle

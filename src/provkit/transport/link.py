"""What a factory-side link to a device is: :class:`DeviceLink` (frames) and :class:`SmpFiles` (files).

Every caller that sends bundles or blobs to a device — the FCU flow, the LwM2M delivery,
the developer flow, the production line — takes a :class:`DeviceLink`; the
implementations (TCP, serial, file) are in :mod:`provkit.transport.links`. Kept apart
from them so that a module typing a link imports no socket or serial code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from provkit.wire.framing import FCC_TOKEN


class DeviceLink(Protocol):
    """A connection to one device that carries framed request messages and their answers.

    The connection stays open between exchanges, so a keep-alive session runs over one
    connection. Failures raise :class:`~provkit.errors.TransportError` subclasses.
    """

    returns_responses: ClassVar[bool]
    """``False`` for a link that only writes the frame (``FileLink``): no answer comes back."""

    def exchange(self, message: bytes, *, timeout_s: float | None = None, token: bytes = FCC_TOKEN) -> bytes:
        """Send ``message`` framed under ``token`` and return the device's response message.

        A link without responses returns ``b""``.
        """
        ...

    def close(self) -> None:
        """Release the connection (idempotent)."""
        ...


class SmpFiles(Protocol):
    """A link to a device's SMP file-system group (:class:`provkit.transport.smp_link.SmpLink`)."""

    describe: str
    """How messages name the device."""

    def download(self, path: str, *, max_bytes: int = ...) -> bytes:
        """Read a file."""
        ...

    def upload(self, path: str, data: bytes, *, progress: Callable[[int, int], None] | None = None) -> None:
        """Write a file."""
        ...

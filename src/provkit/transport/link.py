"""What a factory-side link to a device is: :class:`DeviceLink` (frames) and :class:`SmpFiles` (files).

Every caller that sends bundles or blobs to a device — the FCU flow, the LwM2M delivery,
the developer flow, the production line — takes a :class:`DeviceLink`; the
implementations (TCP, serial, file) are in :mod:`provkit.transport.links`. Kept apart
from them so that a module typing a link imports no socket or serial code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

from provkit.wire.framing import FCC_TOKEN

DEFAULT_TCP_PORT: Final = 7777
"""The factory client's TCP port on Mbed OS (``FTD_SERVER_TCP_PORT``)."""

DEFAULT_BAUD_RATE: Final = 115200
"""Serial line speed unless told otherwise."""

DEFAULT_CONNECT_TIMEOUT_S: Final = 30.0
"""How long opening a TCP connection may take (the factory tool demo's ``-t`` default)."""

DEFAULT_RESPONSE_TIMEOUT_S: Final = 30.0
"""How long an exchange waits for the device's answer."""


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """How long to wait on a link, and how often to try again after a transport failure.

    Every command and library call that reaches a device takes its timeouts from one of
    these; :data:`DEFAULT_LINK_SETTINGS` unless told otherwise.

    Attributes:
        timeout_s: how long one exchange waits for the device's answer.
        connect_timeout_s: how long opening a TCP connection may take.
        retries: extra tries, each on a new connection, after a transport failure (0: one try).
        retry_delay_s: pause before a retry, doubled each time.
    """

    timeout_s: float = DEFAULT_RESPONSE_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    retries: int = 0
    retry_delay_s: float = 0.2


DEFAULT_LINK_SETTINGS: Final = LinkSettings()
"""One device at a time, from a command or a script: wait as the factory tool demo does."""

LINE_LINK_SETTINGS: Final = LinkSettings(connect_timeout_s=5.0, retries=2)
"""A production line's: a device on the line's network connects at once or not at all, so
give up on a connection quickly and try it again, rather than hold a line thread."""


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

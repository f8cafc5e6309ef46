"""The device agent: reads request frames from a stream, dispatches them by token, answers.

It plays the part of the C factory client example's main loop (``pelion-fcc.md`` §6.1):
every good frame goes to the handler registered for its token; every malformed frame is
answered with its transport status and no body; a stalled frame is answered with status
12. Unlike the example it never exits after a session: it waits for the next connection,
so one process provisions device after device (and a device farm can run many agents).

Handlers are plain callables ``message -> bytes | Reply | None``; the device side's FCC
and LwM2M handlers live in :mod:`provkit.device.handlers` (the device side sits above the
transports).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from provkit.codes import FtcdCommStatus
from provkit.errors import TransportClosed, TransportError
from provkit.transport.streams import ByteStream
from provkit.wire.framing import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FCC_TOKEN,
    LWM2M_TOKEN,
    SDA_TOKEN,
    Frame,
    RequestReader,
    encode_response,
)

if TYPE_CHECKING:
    from provkit.transport.servers import SerialAgentServer, TcpAgentServer

_log = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT_S = 60.0
"""How long the agent waits for a (complete) frame before answering status 12."""

POLL_INTERVAL_S = 0.1
"""Granularity at which blocking reads notice a shutdown request."""

UNSUPPORTED_TOKEN_STATUS = FtcdCommStatus.FAILED_TO_PROCESS_MESSAGE
"""Answer to a well-formed frame whose token has no handler (e.g. Secure Device Access)."""

_TOKEN_NAMES = {FCC_TOKEN: "FCC", LWM2M_TOKEN: "LwM2M", SDA_TOKEN: "SDA"}


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: ``body`` (``None`` → status 9, no body) and whether the session ends."""

    body: bytes | None
    session_finished: bool = False


MessageHandler = Callable[[bytes], "bytes | Reply | None"]
"""Takes a request message, returns the response body (or a :class:`Reply`, or ``None``)."""


class SessionEnd(Enum):
    """Why :meth:`DeviceAgent.serve_stream` returned."""

    FINISHED = "session finished"
    CLOSED = "peer closed the connection"
    TIMED_OUT = "read timeout"
    STOPPED = "shutdown requested"


class DeviceAgent:
    """Serves request frames from one stream at a time.

    Args:
        handlers: token → handler (e.g. ``{FCC_TOKEN: fcc_handler, LWM2M_TOKEN: ...}``).
        max_message_bytes: frames above this are refused with status 3 (``MEMORY_OUT``), unread.
        read_timeout_s: how long a frame may take (``None``: wait for ever, like the C agent).
    """

    def __init__(
        self,
        handlers: Mapping[bytes, MessageHandler],
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        read_timeout_s: float | None = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        self.handlers = dict(handlers)
        self.max_message_bytes = max_message_bytes
        self.read_timeout_s = read_timeout_s
        self.frames_served = 0

    def serve_stream(
        self,
        stream: ByteStream,
        *,
        stop: threading.Event | None = None,
        connection: bool = True,
        trace: Callable[[str], None] | None = None,
    ) -> SessionEnd:
        """Answer frames from ``stream`` until the session ends, the peer goes or ``stop`` is set.

        Args:
            stream: the connection (TCP) or port (serial).
            stop: set from another thread (or a signal handler) to return promptly.
            connection: ``True`` for a TCP connection: a read timeout, even between frames,
                closes it. ``False`` for a serial line, which is always there: only a frame
                stalled half-way times out, and the line stays in service.
            trace: called with device log lines; the serial server writes them to the line,
                interleaved with responses, the way the C agent's traces share the console.

        Returns:
            Why serving stopped.
        """
        stop = stop or threading.Event()
        reader = RequestReader(max_message_bytes=self.max_message_bytes)
        waiting_since = time.monotonic()
        frame_since: float | None = None
        try:
            while not stop.is_set():
                event = reader.next_event()
                if event is not None:
                    finished = self._answer(stream, event, trace)
                    waiting_since = time.monotonic()
                    frame_since = waiting_since if reader.in_frame else None
                    if finished:
                        return SessionEnd.FINISHED
                    continue
                if self._timed_out(connection, waiting_since, frame_since):
                    _log.info("read timeout; answering %s", FtcdCommStatus.NETWORK_TIMEOUT.c_name)
                    stream.write(encode_response(FtcdCommStatus.NETWORK_TIMEOUT, token=reader.current_token))
                    if connection:
                        return SessionEnd.TIMED_OUT
                    reader.reset()
                    frame_since = None
                    continue
                data = stream.read(65536, POLL_INTERVAL_S)
                if data:
                    reader.feed(data)
                    if frame_since is None and reader.in_frame:
                        frame_since = time.monotonic()
        except TransportClosed:
            return SessionEnd.CLOSED
        except TransportError as exc:
            _log.warning("connection failed: %s", exc)
            return SessionEnd.CLOSED
        return SessionEnd.STOPPED

    def _timed_out(self, connection: bool, waiting_since: float, frame_since: float | None) -> bool:
        if self.read_timeout_s is None:
            return False
        started = waiting_since if connection else frame_since
        return started is not None and time.monotonic() - started >= self.read_timeout_s

    def _answer(self, stream: ByteStream, event: Any, trace: Callable[[str], None] | None) -> bool:
        """Send the response to one frame or failure; return whether the session finished."""
        if not isinstance(event, Frame):
            _log.info("malformed frame (%s): answering %s", event.reason, event.status.c_name)
            if trace:
                trace(f"ftcd: {event.reason}; status {int(event.status)}")
            stream.write(encode_response(event.status, token=event.token))
            return False
        self.frames_served += 1
        if trace:
            # Never echo the token itself: a factory tool scanning this line would take it for a frame.
            kind = _TOKEN_NAMES.get(event.token, "unknown")
            trace(f"ftcd: {kind} message of {len(event.message)} bytes received")
        handler = self.handlers.get(event.token)
        if handler is None:
            stream.write(encode_response(UNSUPPORTED_TOKEN_STATUS, token=event.token))
            return False
        try:
            reply = handler(event.message)
        except Exception:
            # One bad bundle must not take the agent down; the factory tool sees status 15.
            _log.exception("handler for %r failed", event.token)
            stream.write(encode_response(FtcdCommStatus.INTERNAL_ERROR, token=event.token))
            return False
        if not isinstance(reply, Reply):
            reply = Reply(reply)
        if reply.body is None:
            stream.write(encode_response(FtcdCommStatus.FAILED_TO_PROCESS_DATA, token=event.token))
        else:
            stream.write(encode_response(FtcdCommStatus.SUCCESS, reply.body, token=event.token))
        return reply.session_finished


def serve_tcp(agent: DeviceAgent, ip: str = "127.0.0.1", port: int = 0, **options: Any) -> TcpAgentServer:
    """Bind a :class:`~provkit.transport.servers.TcpAgentServer` for ``agent`` (not yet serving)."""
    from provkit.transport.servers import TcpAgentServer  # servers imports this module

    return TcpAgentServer(agent, ip, port, **options)


def serve_serial(
    agent: DeviceAgent, port: str, *, baud_rate: int = 115200, **options: Any
) -> SerialAgentServer:
    """Open a :class:`~provkit.transport.servers.SerialAgentServer` for ``agent`` (not yet serving)."""
    from provkit.transport.servers import SerialAgentServer  # servers imports this module

    return SerialAgentServer(agent, port, baud_rate=baud_rate, **options)

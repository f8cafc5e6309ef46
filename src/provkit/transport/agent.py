"""The device agent: reads request frames from a stream, dispatches them by token, answers.

It plays the part of the C factory client example's main loop: every good frame goes to
the handler registered for its token; every malformed frame is answered with its
transport status and no body; a stalled frame is answered with status 12. Unlike the
example it never exits after a session: it waits for the next connection, so one process
provisions device after device (and a device farm can run many agents).

Unlike the example, too, one client cannot keep the device from others. A TCP server
serves several connections at once (:class:`~provkit.transport.servers.TcpAgentServer`),
and each connection is bounded in time:

* an *idle limit* (``read_timeout_s``): a connection that has not had a frame answered by
  a handler for that long gets status 12 and is closed. Noise — malformed frames, frames
  of a token nobody handles (SDA) — is answered but does not restart this clock, so a
  client trickling bytes or frames cannot keep its connection for ever;
* a *session deadline* (``session_timeout_s``): however busy, a connection is closed
  that long after it opened.

Frames for the device itself go through one lock per agent, held for a factory session:
taken by a connection's first frame a handler answers, released when the handler
reports the session finished (FCC: ``KpAlvSess`` 0 or absent) or the connection ends.
A keep-alive session (a ``by_device`` CSR round trip) therefore stays whole, as on the
C agent, while connections that only idle or send noise never hold the device: a good
client is served at once beside them, and waits at most for another client's session,
which the idle limit and deadline bound.

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
from provkit.transport.link import DEFAULT_BAUD_RATE
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
"""Idle limit: how long a connection may go without a frame a handler answers (then status 12)."""

DEFAULT_SESSION_TIMEOUT_S = 300.0
"""Session deadline: how long a connection may stay open, however busy (then status 12)."""

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
    """The idle limit, or a frame stalled half-way on a serial line."""
    DEADLINE = "session deadline"
    STOPPED = "shutdown requested"
    EVICTED = "closed for a newer connection"
    """Set by a server: a connection that never had a frame served, closed to make room."""


class DeviceAgent:
    """Serves request frames from streams, several at once, for one device.

    Args:
        handlers: token → handler (e.g. ``{FCC_TOKEN: fcc_handler, LWM2M_TOKEN: ...}``).
        max_message_bytes: frames above this are refused with status 3 (``MEMORY_OUT``), unread.
        read_timeout_s: idle limit of a connection (see the module docstring); on a serial
            line, how long a frame may stall half-way. ``None``: wait for ever, like the C agent.
        session_timeout_s: deadline of a connection from its opening (``None``: none).
    """

    def __init__(
        self,
        handlers: Mapping[bytes, MessageHandler],
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        read_timeout_s: float | None = DEFAULT_READ_TIMEOUT_S,
        session_timeout_s: float | None = DEFAULT_SESSION_TIMEOUT_S,
    ) -> None:
        self.handlers = dict(handlers)
        self.max_message_bytes = max_message_bytes
        self.read_timeout_s = read_timeout_s
        self.session_timeout_s = session_timeout_s
        self.frames_served = 0
        self._count_lock = threading.Lock()
        self._device = threading.Lock()  # held by the connection whose factory session is open

    def serve_stream(
        self,
        stream: ByteStream,
        *,
        stop: threading.Event | None = None,
        connection: bool = True,
        trace: Callable[[str], None] | None = None,
        served: threading.Event | None = None,
    ) -> SessionEnd:
        """Answer frames from ``stream`` until the session ends, the peer goes or ``stop`` is set.

        Safe to run for several streams at once, from one thread each.

        Args:
            stream: the connection (TCP) or port (serial).
            stop: set from another thread (or a signal handler) to return promptly.
            connection: ``True`` for a TCP connection: the idle limit and the session
                deadline close it. ``False`` for a serial line, which is always there:
                only a frame stalled half-way times out, and the line stays in service.
            trace: called with device log lines; the serial server writes them to the line,
                interleaved with responses, the way the C agent's traces share the console.
            served: set once a handler has answered a frame of this stream.

        Returns:
            Why serving stopped.
        """
        stop = stop or threading.Event()
        clock = _Clock(self, connection)
        reader = RequestReader(max_message_bytes=self.max_message_bytes)
        owner = False
        try:
            while not stop.is_set():
                event = reader.next_event()
                if event is not None:
                    if isinstance(event, Frame) and event.token in self.handlers:
                        if not owner:
                            owner = self._claim_device(stop, clock)
                            if not owner:
                                return self._unclaimed(stream, event.token, stop)
                        if served is not None:
                            served.set()  # before the answer: a served client is never evicted
                        finished = self._answer(stream, event, trace)
                        clock.progress()
                        if finished:
                            self._device.release()
                            owner = False
                            return SessionEnd.FINISHED
                    else:
                        self._answer(stream, event, trace)  # noise: answered, the clock runs on
                    clock.frame(reader.in_frame)
                    continue
                end = clock.expired()
                if end is not None:
                    _log.info("%s; answering %s", end.value, FtcdCommStatus.NETWORK_TIMEOUT.c_name)
                    stream.write(encode_response(FtcdCommStatus.NETWORK_TIMEOUT, token=reader.current_token))
                    if connection:
                        return end
                    reader.reset()
                    clock.frame(False)
                    continue
                data = stream.read(65536, POLL_INTERVAL_S)
                if data:
                    reader.feed(data)
                    clock.frame(reader.in_frame)
        except TransportClosed:
            return SessionEnd.CLOSED
        except TransportError as exc:
            _log.warning("connection failed: %s", exc)
            return SessionEnd.CLOSED
        finally:
            if owner:
                self._device.release()
        return SessionEnd.STOPPED

    def _claim_device(self, stop: threading.Event, clock: _Clock) -> bool:
        """Wait for the device (another connection's session may hold it) until stopped or expired."""
        while not stop.is_set():
            if self._device.acquire(timeout=POLL_INTERVAL_S):
                return True
            if clock.past_deadline():
                return False
        return False

    @staticmethod
    def _unclaimed(stream: ByteStream, token: bytes, stop: threading.Event) -> SessionEnd:
        """End a connection whose deadline passed while it waited for the device (status 12)."""
        if stop.is_set():
            return SessionEnd.STOPPED
        stream.write(encode_response(FtcdCommStatus.NETWORK_TIMEOUT, token=token))
        return SessionEnd.DEADLINE

    def _answer(self, stream: ByteStream, event: Any, trace: Callable[[str], None] | None) -> bool:
        """Send the response to one frame or failure; return whether the session finished."""
        if not isinstance(event, Frame):
            _log.info("malformed frame (%s): answering %s", event.reason, event.status.c_name)
            if trace:
                trace(f"ftcd: {event.reason}; status {int(event.status)}")
            stream.write(encode_response(event.status, token=event.token))
            return False
        with self._count_lock:
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


class _Clock:
    """The time limits of one stream (see the module docstring)."""

    def __init__(self, agent: DeviceAgent, connection: bool) -> None:
        now = time.monotonic()
        self._connection = connection
        self._idle = agent.read_timeout_s
        self._deadline = None
        if connection and agent.session_timeout_s is not None:
            self._deadline = now + agent.session_timeout_s
        self._progress = now
        self._frame_since: float | None = None

    def progress(self) -> None:
        """A handler answered a frame: the idle limit starts again."""
        self._progress = time.monotonic()

    def frame(self, in_frame: bool) -> None:
        """Note whether a frame is under way (a serial line times out only those)."""
        if not in_frame:
            self._frame_since = None
        elif self._frame_since is None:
            self._frame_since = time.monotonic()

    def past_deadline(self) -> bool:
        """Whether the session deadline has passed."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def expired(self) -> SessionEnd | None:
        """The limit that has run out, if any."""
        if self.past_deadline():
            return SessionEnd.DEADLINE
        if self._idle is None:
            return None
        started = self._progress if self._connection else self._frame_since
        if started is not None and time.monotonic() - started >= self._idle:
            return SessionEnd.TIMED_OUT
        return None


def serve_tcp(agent: DeviceAgent, ip: str = "127.0.0.1", port: int = 0, **options: Any) -> TcpAgentServer:
    """Bind a :class:`~provkit.transport.servers.TcpAgentServer` for ``agent`` (not yet serving)."""
    from provkit.transport.servers import TcpAgentServer  # servers imports this module

    return TcpAgentServer(agent, ip, port, **options)


def serve_serial(
    agent: DeviceAgent, port: str, *, baud_rate: int = DEFAULT_BAUD_RATE, **options: Any
) -> SerialAgentServer:
    """Open a :class:`~provkit.transport.servers.SerialAgentServer` for ``agent`` (not yet serving)."""
    from provkit.transport.servers import SerialAgentServer  # servers imports this module

    return SerialAgentServer(agent, port, baud_rate=baud_rate, **options)

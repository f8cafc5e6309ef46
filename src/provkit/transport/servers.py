"""Run a :class:`~provkit.transport.agent.DeviceAgent` on a TCP port or a serial line.

Both servers block in :meth:`serve_forever` until :meth:`shutdown` (safe from another
thread or a signal handler), and both are context managers that serve from a background
thread, which is how tests, benches and the device farm run agents in-process::

    with TcpAgentServer(agent, "127.0.0.1", 0) as server:
        ip, port = server.address
        ...
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from provkit.codes import FtErrorCode
from provkit.errors import TransportError
from provkit.transport.agent import POLL_INTERVAL_S, DeviceAgent, SessionEnd
from provkit.transport.bind import check_bind_address
from provkit.transport.link import DEFAULT_BAUD_RATE
from provkit.transport.streams import SerialStream, SocketStream, open_serial

_log = logging.getLogger(__name__)

READY_LINE_PREFIX = "Factory Client IP Address and Port : "
"""What the C factory client prints once it listens; provkit prints the same line."""


class ServingThread:
    """What every in-process server shares: ``serve_forever`` until ``shutdown``, from a thread.

    Subclasses implement :meth:`serve_forever` (returning once ``self._stop`` is set) and
    :meth:`close`.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` is called."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Ask :meth:`serve_forever` to return; wait for it when it runs in this object's thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def close(self) -> None:
        """Release the listening socket or serial port."""

    def start(self) -> Self:
        """Serve from a daemon thread and return at once."""
        self._thread = threading.Thread(target=self.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()
        self.close()


class _ServerBase(ServingThread):
    def __init__(self, agent: DeviceAgent) -> None:
        super().__init__()
        self.agent = agent
        self.sessions: list[SessionEnd] = []


DEFAULT_MAX_CONNECTIONS = 8
"""Connections a TCP agent serves at once (each in its own thread)."""


@dataclass(eq=False)
class _Connection:
    """One accepted connection being served."""

    peer: str
    stop: threading.Event = field(default_factory=threading.Event)
    served: threading.Event = field(default_factory=threading.Event)
    evicted: bool = False
    thread: threading.Thread | None = None


class TcpAgentServer(_ServerBase):
    """Listens on an IPv4 address and serves factory tool connections, several at once.

    The C agent serves one client at a time (backlog 1), so one slow or silent client
    keeps every other out. Here each connection is served by its own thread, bounded by
    the agent's idle limit and session deadline, and the device itself by the agent's
    session lock (see :mod:`provkit.transport.agent`): a good client is served beside
    clients that idle or send noise. At ``max_connections`` a new connection takes the
    place of the oldest one that has never had a frame served (it is closed); if every
    connection has been served, the new one is closed at once. The socket is bound in
    the constructor, so :attr:`address` is known (port 0 → a free port) before serving.

    Args:
        agent: the agent answering frames.
        ip: address to bind (IPv4).
        port: TCP port; 0 picks a free one.
        once: return from :meth:`serve_forever` once the first connection that had a
            frame served ends, like the C example (connections that only idled or sent
            noise do not count).
        allow_remote: listen on an address other than loopback (see :mod:`provkit.transport.bind`).
        max_connections: connections served at once.

    Raises:
        RemoteBindRefused: 1000 for a non-loopback ``ip`` without ``allow_remote``.
        TransportError: 1000 when the address cannot be bound.
    """

    def __init__(
        self,
        agent: DeviceAgent,
        ip: str = "127.0.0.1",
        port: int = 0,
        *,
        once: bool = False,
        allow_remote: bool = False,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        check_bind_address(ip, allow_remote=allow_remote)
        super().__init__(agent)
        self.once = once
        self.max_connections = max(1, max_connections)
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        self._served_one = threading.Event()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((ip, port))
            listener.listen(self.max_connections * 2)
        except (OSError, OverflowError) as exc:
            listener.close()
            raise TransportError(
                FtErrorCode.GENERAL.format(f"cannot listen on {ip}:{port}: {exc}"), code=FtErrorCode.GENERAL
            ) from exc
        self._listener = listener
        host, bound_port = listener.getsockname()[:2]
        self.address: tuple[str, int] = (str(host), int(bound_port))

    @property
    def ready_line(self) -> str:
        """``Factory Client IP Address and Port : IP:PORT``."""
        return f"{READY_LINE_PREFIX}{self.address[0]}:{self.address[1]}"

    def serve_forever(self) -> None:
        """Accept and serve connections until :meth:`shutdown` (or, with ``once``, one served session)."""
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._listener, selectors.EVENT_READ)
                while not self._stop.is_set() and not (self.once and self._served_one.is_set()):
                    if selector.select(POLL_INTERVAL_S):
                        self._accept()
        finally:
            with self._lock:
                running = list(self._connections)
            for conn in running:
                conn.stop.set()
            for conn in running:
                if conn.thread is not None:
                    conn.thread.join()

    def _accept(self) -> None:
        try:
            sock, peer = self._listener.accept()
        except OSError as exc:
            _log.warning("accept failed: %s", exc)
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(f"{peer[0]}:{peer[1]}")
        with self._lock:
            if len(self._connections) >= self.max_connections and not self._evict_one():
                _log.warning("%s refused: %d connections are being served", conn.peer, len(self._connections))
                sock.close()
                return
            self._connections.append(conn)
        _log.info("factory tool connected from %s", conn.peer)
        conn.thread = threading.Thread(
            target=self._serve, args=(conn, SocketStream(sock)), name=f"agent {conn.peer}", daemon=True
        )
        conn.thread.start()

    def _evict_one(self) -> bool:
        """Close the oldest connection that never had a frame served (called with the lock held)."""
        for conn in self._connections:
            if not conn.served.is_set() and not conn.evicted:
                conn.evicted = True
                conn.stop.set()
                self._connections.remove(conn)
                _log.info("closing %s, which sent nothing to serve, for a new connection", conn.peer)
                return True
        return False

    def _serve(self, conn: _Connection, stream: SocketStream) -> None:
        try:
            end = self.agent.serve_stream(stream, stop=conn.stop, connection=True, served=conn.served)
        finally:
            stream.close()
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
        if conn.evicted and not self._stop.is_set():
            end = SessionEnd.EVICTED
        self.sessions.append(end)
        _log.info("connection from %s ended: %s", conn.peer, end.value)
        if conn.served.is_set():
            self._served_one.set()

    def close(self) -> None:
        """Close the listening socket."""
        self._listener.close()


class SerialAgentServer(_ServerBase):
    """Serves frames arriving on a serial line, with device log lines on the same line.

    Args:
        agent: the agent answering frames.
        port: serial device path (or a pyserial URL).
        baud_rate: line speed.
        trace: write a log line before each answer, as a real device's console would.

    Raises:
        ConnectFailed: 1014/1011 when the port is missing or cannot be opened.
    """

    def __init__(
        self, agent: DeviceAgent, port: str, *, baud_rate: int = DEFAULT_BAUD_RATE, trace: bool = True
    ) -> None:
        super().__init__(agent)
        self.port = port
        self._stream = SerialStream(open_serial(port, baud_rate=baud_rate))
        self._trace: Callable[[str], None] | None = self._write_trace if trace else None

    @property
    def ready_line(self) -> str:
        """What the agent prints once it listens on the line."""
        return f"Factory Client is waiting for frames on {self.port}"

    def _write_trace(self, line: str) -> None:
        self._stream.write(f"[provkit] {line}\r\n".encode())

    def serve_forever(self) -> None:
        """Serve the line until :meth:`shutdown` or until it hangs up."""
        if self._trace:
            self._trace("factory flow begins...")
        while not self._stop.is_set():
            end = self.agent.serve_stream(self._stream, stop=self._stop, connection=False, trace=self._trace)
            self.sessions.append(end)
            if end in (SessionEnd.CLOSED, SessionEnd.STOPPED):
                _log.info("serial line %s: %s", self.port, end.value)
                break

    def close(self) -> None:
        """Close the serial port."""
        self._stream.close()

"""A farm of virtual devices: N FCC device agents in one process, one TCP port each.

One selector loop serves every listener and connection, so a thousand devices cost a
thousand sockets, not a thousand threads; the CPU work (bundle parsing, certificate
checks, storage) happens in each device's FCC handler on the loop thread.

Each accepted connection is a fresh factory session, as on a line where a fixture
powers the device into factory mode: before the first message of a connection the
device's storage is wiped (``fcc_storage_delete``, as the reference agent does on the
first message of a run). That is what lets a resumed batch re-inject a device whose
previous answer was lost. Within a session the devices keep what a failed bundle stored
before its failure, as real devices do, unless the farm runs with atomic bundles.

With ``connect`` the devices also make their **first connection**: a device whose
provisioning session ended with success bootstraps and registers with the servers it was
given (on a worker thread, so the other devices keep being served), and a line's
connect command (:data:`~provkit.wire.framing.CONNECT_TOKEN`) is answered with the outcome
of that connection — or of a new one when none is pending.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from provkit.codes import FtcdCommStatus
from provkit.errors import ProvkitError, StorageError, TransportError
from provkit.transport.bind import check_bind_address
from provkit.wire.framing import CONNECT_TOKEN, Frame, RequestReader, encode_response

_log = logging.getLogger(__name__)

SessionHandler = Callable[[bytes, bool], bytes | None]
"""``(message, first_in_session) -> response body`` (``None``: answer status 9, no body)."""


class VirtualDevice:
    """A virtual FCC device on ``storage`` (``":memory:"`` or a SQLite file path).

    Called as a :data:`SessionHandler`; ``provisioned`` tells whether its last bundle
    session ended with success, ``kcm`` is its storage (for the first connection).
    """

    def __init__(self, storage: str | Path, *, atomic_bundles: bool = False) -> None:
        from provkit.device.fcc import FactoryConfiguratorClient
        from provkit.device.kcm import Kcm
        from provkit.device.storage import open_storage

        self.kcm = Kcm(open_storage(storage))
        self.client = FactoryConfiguratorClient(self.kcm, atomic_bundles=atomic_bundles)
        self.provisioned = False
        self.first_connection: Future[bytes] | None = None

    def __call__(self, message: bytes, first: bool) -> bytes | None:
        """Handle one bundle (wiping the storage first on a session's first message)."""
        from provkit.codes import FccStatus
        from provkit.device.handlers import response_body

        if first:
            self.client.storage_delete()
            self.provisioned = False
            self.first_connection = None
        result = self.client.bundle_handler(message)
        self.provisioned = result.session_finished and result.status == FccStatus.SUCCESS
        return response_body(result)


def fcc_device(storage: str | Path, *, atomic_bundles: bool = False) -> SessionHandler:
    """A virtual FCC device on ``storage`` (``":memory:"`` or a SQLite file path).

    Args:
        storage: where the device keeps its items.
        atomic_bundles: make each bundle all-or-nothing (a real device is not).
    """
    return VirtualDevice(storage, atomic_bundles=atomic_bundles)


def _connect(device: VirtualDevice, message: bytes) -> bytes:
    from provkit.server.command import run_command

    return run_command(device.kcm, message)


@dataclass(slots=True)
class _Connection:
    device: int
    sock: socket.socket
    reader: RequestReader = field(default_factory=RequestReader)
    out: bytearray = field(default_factory=bytearray)
    first: bool = True
    closed: bool = False


class DeviceFarm:
    """``count`` virtual devices listening on ``host`` (ports from ``base_port``, or ephemeral).

    Args:
        count: number of devices.
        base_port: first port (device ``i`` gets ``base_port + i``); 0 for ephemeral ports.
        host: address to bind (loopback by default).
        allow_remote: bind a non-loopback ``host`` (see :mod:`provkit.transport.bind`).
        storage: ``":memory:"`` or a directory for one SQLite store per device.
        device_factory: builds the handler of device ``i`` (tests substitute other devices);
            by default an FCC device on its storage.
        atomic_bundles: the default devices make each bundle all-or-nothing.
        connect: devices make their first connection after a successful provisioning,
            and answer connect commands.
        connect_timeout: seconds per step of a first connection made on their own.
    """

    def __init__(
        self,
        count: int,
        *,
        base_port: int = 0,
        host: str = "127.0.0.1",
        storage: str | Path = ":memory:",
        device_factory: Callable[[int], SessionHandler] | None = None,
        atomic_bundles: bool = False,
        connect: bool = False,
        connect_timeout: float = 10.0,
        allow_remote: bool = False,
    ) -> None:
        if count < 1:
            raise ValueError("a farm needs at least one device")
        check_bind_address(host, allow_remote=allow_remote)
        self.count = count
        self.host = host
        self.base_port = base_port
        self.storage = storage
        self.atomic_bundles = atomic_bundles
        self._factory = device_factory or self._fcc_factory
        self._devices: dict[int, SessionHandler] = {}
        # A device in memory starts every connection with a wiped store, so nothing of it
        # outlives its connection: it is dropped then, and a farm serving a hundred
        # thousand devices in turn holds only those connected.
        self._forget_on_close = device_factory is None and str(storage) == ":memory:"
        self._open: dict[int, int] = {}
        self._selector = selectors.DefaultSelector()
        self._listeners: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ports: list[int] = []
        self.messages_served = 0
        self.connect = connect
        self.connect_timeout = connect_timeout
        self.connections: dict[int, dict[str, Any]] = {}
        """The last first-connection outcome of each device (JSON answer), by index."""
        self.on_connection: Callable[[int, dict[str, Any]], None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._done: list[tuple[_Connection, bytes]] = []
        self._done_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    def _fcc_factory(self, index: int) -> SessionHandler:
        if str(self.storage) == ":memory:":
            return fcc_device(":memory:", atomic_bundles=self.atomic_bundles)
        return fcc_device(
            Path(self.storage) / f"device-{index:05d}.sqlite", atomic_bundles=self.atomic_bundles
        )

    def bind(self) -> Self:
        """Open every listener.

        Raises:
            StorageError: the storage directory cannot be created.
            TransportError: a port is in use or cannot be bound (nothing stays open).
        """
        if str(self.storage) != ":memory:":
            try:
                Path(self.storage).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot use {self.storage} as the farm's storage directory: {exc}"
                ) from exc
        try:
            for index in range(self.count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self._listeners.append(sock)
                sock.bind((self.host, self.base_port + index if self.base_port else 0))
                sock.listen(16)
                sock.setblocking(False)
                self.ports.append(sock.getsockname()[1])
                self._selector.register(sock, selectors.EVENT_READ, index)
        except OSError as exc:
            self.close()
            raise TransportError(f"cannot bind device farm listener: {exc}") from exc
        return self

    def start(self) -> Self:
        """Bind (if needed) and serve on a background thread."""
        if self._thread is not None:
            return self  # already serving
        if not self.ports:
            self.bind()
        self._thread = threading.Thread(target=self.serve_forever, name="device-farm", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` is called."""
        if not self.ports:
            self.bind()
        while not self._stop.is_set():
            for key, events in self._selector.select(timeout=0.2):
                if key.data == "wake":
                    self._finish_commands()
                elif isinstance(key.data, int):
                    self._accept(key.fileobj, key.data)  # type: ignore[arg-type]
                else:
                    self._service(key.data, events)

    def _accept(self, listener: socket.socket, index: int) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._open[index] = self._open.get(index, 0) + 1
        self._selector.register(sock, selectors.EVENT_READ, _Connection(index, sock))

    def _service(self, conn: _Connection, events: int) -> None:
        if events & selectors.EVENT_READ:
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop(conn)
                return
            if data:
                conn.reader.feed(data)
                self._answer_frames(conn)
        self._flush(conn)

    def _answer_frames(self, conn: _Connection) -> None:
        while (event := conn.reader.next_event()) is not None:
            if not isinstance(event, Frame):
                conn.out += encode_response(event.status, token=event.token)
                continue
            self.messages_served += 1
            if event.token == CONNECT_TOKEN:
                self._connect_command(conn, event.message)
                continue
            body = self._handle(conn, event.message)
            status = FtcdCommStatus.SUCCESS if body is not None else FtcdCommStatus.FAILED_TO_PROCESS_DATA
            conn.out += encode_response(status, body, token=event.token)
            if self.connect:
                self._after_provisioning(conn.device)

    # ------------------------------------------------------------------ first connection
    def _pool_started(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="farm-connect")
        return self._pool

    def _virtual(self, index: int) -> VirtualDevice | None:
        device = self._devices.get(index)
        if device is None:
            device = self._devices[index] = self._factory(index)
        return device if isinstance(device, VirtualDevice) else None

    def _after_provisioning(self, index: int) -> None:
        device = self._virtual(index)
        if device is None or not device.provisioned or device.first_connection is not None:
            return
        from provkit.server.command import ConnectRequest

        request = ConnectRequest(timeout=self.connect_timeout).encode()
        future = self._pool_started().submit(_connect, device, request)
        device.first_connection = future
        future.add_done_callback(functools.partial(self._record, index))

    def _record(self, index: int, done: Future[bytes]) -> None:
        try:
            answer = json.loads(done.result())
        except Exception as exc:  # a connection bug is reported, never raised into the pool
            answer = {"ok": False, "failure": "refused", "code": None, "message": str(exc)}
        self.connections[index] = answer
        if self.on_connection is not None:
            self.on_connection(index, answer)

    def _connect_command(self, conn: _Connection, message: bytes) -> None:
        device = self._virtual(conn.device)
        if device is None:
            conn.out += encode_response(FtcdCommStatus.FAILED_TO_PROCESS_DATA, token=CONNECT_TOKEN)
            return
        pending, device.first_connection = device.first_connection, None
        future = pending if pending is not None else self._pool_started().submit(_connect, device, message)
        if pending is None:
            future.add_done_callback(functools.partial(self._record, conn.device))
        future.add_done_callback(functools.partial(self._complete, conn))

    def _complete(self, conn: _Connection, done: Future[bytes]) -> None:
        try:
            body = done.result()
        except Exception as exc:  # reported to the line as a failed connection
            body = json.dumps({"ok": False, "failure": "refused", "code": None, "message": str(exc)}).encode()
        with self._done_lock:
            self._done.append((conn, body))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _finish_commands(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_r.recv(4096)
        with self._done_lock:
            done, self._done = self._done, []
        for conn, body in done:
            if conn.sock.fileno() < 0:
                continue
            conn.out += encode_response(FtcdCommStatus.SUCCESS, body, token=CONNECT_TOKEN)
            self._flush(conn)

    def _handle(self, conn: _Connection, message: bytes) -> bytes | None:
        device = self._devices.get(conn.device)
        if device is None:
            device = self._devices[conn.device] = self._factory(conn.device)
        first, conn.first = conn.first, False
        try:
            return device(message, first)
        except (ProvkitError, ValueError, OSError):
            # One broken message must not stop the other devices; the tool sees status 9.
            _log.exception("device %d failed to handle a message", conn.device)
            return None

    def _flush(self, conn: _Connection) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._drop(conn)
                return
            del conn.out[:sent]
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0)
        self._selector.modify(conn.sock, wanted, conn)

    def _drop(self, conn: _Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()
        left = self._open.pop(conn.device, 1) - 1
        if left:
            self._open[conn.device] = left
        elif self._forget_on_close:
            device = self._devices.get(conn.device)
            # A provisioned device keeps its items for its first connection (the connect command).
            if not (isinstance(device, VirtualDevice) and device.provisioned):
                self._devices.pop(conn.device, None)

    def stop(self) -> None:
        """Ask the serving loop to return and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop and close every socket."""
        self.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        for sock in self._listeners:
            sock.close()
        self._wake_w.close()
        self._selector.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def devices_held(self) -> int:
        """Devices whose state the farm holds now (in memory: only those connected)."""
        return len(self._devices)

    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every device, in device order."""
        return [(self.host, port) for port in self.ports]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (host, ports, storage)."""
        return {"host": self.host, "ports": self.ports, "storage": str(self.storage)}

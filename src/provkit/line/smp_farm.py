"""A farm of virtual Zephyr boards running Anjay's provisioning image, reached over SMP.

Each board gets its own UDP port (``smp-udp:HOST:PORT``) or its own pty
(``smp-serial:/dev/pts/N``, the path a factory tool opens like a USB serial port), its own
storage and an endpoint name ``anjay-zephyr-demo-<farm id><index>``. One selector loop serves
every socket and pty, so a line of boards costs file descriptors, not threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import selectors
import socket
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from provkit.device.kcm import Kcm
from provkit.device.smp import AnjayProvisioningImage, default_endpoint_name
from provkit.device.storage import open_storage
from provkit.errors import StorageError, TransportError
from provkit.transport.bind import check_bind_address
from provkit.transport.smp_server import ConsoleFramer, console_line

_log = logging.getLogger(__name__)

SmpFarmLink = Literal["udp", "serial"]


@dataclass(slots=True)
class _Pty:
    master: int
    slave: int
    path: str
    framer: ConsoleFramer


class SmpDeviceFarm:
    """``count`` virtual Zephyr boards.

    Args:
        count: number of boards.
        link: ``"udp"`` (a port each) or ``"serial"`` (a pty each).
        host: UDP address to bind.
        allow_remote: bind a non-loopback ``host`` (see :mod:`provkit.transport.bind`).
        base_port: first UDP port (board ``i`` gets ``base_port + i``); 0 for ephemeral ports.
        storage: ``":memory:"`` or a directory for one SQLite store per board.
        buf_size: each board's SMP buffer.
    """

    def __init__(
        self,
        count: int,
        *,
        link: SmpFarmLink = "udp",
        host: str = "127.0.0.1",
        base_port: int = 0,
        storage: str | Path = ":memory:",
        buf_size: int = 1024,
        allow_remote: bool = False,
    ) -> None:
        if count < 1:
            raise ValueError("a farm needs at least one board")
        if link == "udp":
            check_bind_address(host, allow_remote=allow_remote)
        self.count = count
        self.link = link
        self.host = host
        self.base_port = base_port
        self.storage = storage
        self.buf_size = buf_size
        self.farm_id = secrets.token_bytes(4)
        self.boards: list[AnjayProvisioningImage] = []
        self.addresses: list[str] = []
        """Each board's link spec, ``smp-udp:HOST:PORT`` or ``smp-serial:PATH``."""
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._ptys: list[_Pty] = []
        self._storages: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.messages_served = 0

    def _board(self, index: int) -> AnjayProvisioningImage:
        spec = (
            ":memory:"
            if str(self.storage) == ":memory:"
            else str(Path(self.storage) / f"board-{index:05d}.sqlite")
        )
        name = default_endpoint_name(self.farm_id + index.to_bytes(4, "big"))
        storage = open_storage(spec)
        self._storages.append(storage)
        return AnjayProvisioningImage(Kcm(storage), endpoint_name=name, buf_size=self.buf_size)

    def bind(self) -> Self:
        """Create the boards and open every socket or pty.

        Raises:
            StorageError: the storage directory cannot be used.
            TransportError: a port cannot be bound or no pty is available (nothing stays open).
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
                board = self._board(index)
                self.boards.append(board)
                if self.link == "udp":
                    self._open_udp(index, board)
                else:
                    self._open_pty(index, board)
        except OSError as exc:
            self.close()
            raise TransportError(f"cannot open the SMP farm's {self.link} endpoints: {exc}") from exc
        return self

    def _open_udp(self, index: int, board: AnjayProvisioningImage) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sockets.append(sock)
        sock.bind((self.host, self.base_port + index if self.base_port else 0))
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, (board, sock))
        self.addresses.append(f"smp-udp:{self.host}:{sock.getsockname()[1]}")

    def _open_pty(self, index: int, board: AnjayProvisioningImage) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing: the factory tool opens the slave as a serial port
        pty = _Pty(master, slave, os.ttyname(slave), ConsoleFramer(self.buf_size))
        self._ptys.append(pty)
        for text in board.console_lines:
            os.write(master, console_line(text))
        self._selector.register(master, selectors.EVENT_READ, (board, pty))
        self.addresses.append(f"smp-serial:{pty.path}")

    def start(self) -> Self:
        """Bind (if needed) and serve on a background thread."""
        if not self.boards:
            self.bind()
        self._thread = threading.Thread(target=self.serve_forever, name="smp-farm", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until :meth:`stop`."""
        if not self.boards:
            self.bind()
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                board, endpoint = key.data
                if isinstance(endpoint, _Pty):
                    self._serve_pty(board, endpoint)
                else:
                    self._serve_udp(board, endpoint)

    def _answer(self, handle: Callable[[bytes], bytes | None], message: bytes) -> bytes | None:
        try:
            answer = handle(message)
        except Exception:  # one board's bug must not stop the others
            _log.exception("a farm board failed to answer")
            return None
        self.messages_served += 1
        return answer

    def _serve_udp(self, board: AnjayProvisioningImage, sock: socket.socket) -> None:
        try:
            data, peer = sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            _log.info("UDP receive failed: %s", exc)
            return
        if len(data) > self.buf_size:
            return
        answer = self._answer(board.handle, data)
        if answer is not None:
            with contextlib.suppress(OSError):
                sock.sendto(answer, peer)

    def _serve_pty(self, board: AnjayProvisioningImage, pty: _Pty) -> None:
        try:
            data = os.read(pty.master, 65536)
        except OSError:
            return  # the factory end closed and reopened the port between two reads
        for message in pty.framer.feed(data):
            answer = self._answer(board.handle, message)
            if answer is not None:
                with contextlib.suppress(OSError):
                    os.write(pty.master, ConsoleFramer.encode(answer))

    def stop(self) -> None:
        """Ask the loop to return and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop and close every socket and pty."""
        self.stop()
        for sock in self._sockets:
            sock.close()
        for pty in self._ptys:
            for fd in (pty.master, pty.slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._selector.close()
        for storage in self._storages:
            close = getattr(storage, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description: protocol, link, addresses, endpoint names, storage."""
        return {
            "protocol": "smp",
            "link": self.link,
            "addresses": self.addresses,
            "endpoints": [board.endpoint_name for board in self.boards],
            "storage": str(self.storage),
        }

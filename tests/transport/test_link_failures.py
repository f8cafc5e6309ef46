"""TcpLink failures that need a misbehaving peer: a device resetting the connection mid-send."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from provkit.codes import FtErrorCode
from provkit.errors import TransportError
from provkit.transport.links import TcpLink

pytestmark = pytest.mark.integration

BIG_MESSAGE = b"\xa0" * (16 * 1024 * 1024)
"""Far more than the loopback socket buffers hold, so ``sendall`` is still sending at the reset."""


def test_device_resetting_the_connection_during_the_send_is_1023() -> None:
    """The peer aborting (RST) while the request is being written gives 1023, not a timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    reset_done = threading.Event()

    def reset_peer() -> None:
        conn, _ = listener.accept()
        conn.recv(8)  # the request has started arriving
        # SO_LINGER 0: close() aborts with RST instead of a graceful FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        reset_done.set()

    peer = threading.Thread(target=reset_peer, daemon=True)
    peer.start()
    try:
        with (
            TcpLink(*listener.getsockname(), connect_timeout_s=5) as link,
            pytest.raises(TransportError) as caught,
        ):
            link.exchange(BIG_MESSAGE, timeout_s=20)
    finally:
        peer.join()
        listener.close()
    assert reset_done.is_set()
    assert caught.value.code == FtErrorCode.TCP_SEND_FAILED
    assert caught.value.message.startswith(FtErrorCode.TCP_SEND_FAILED.template)

"""Factory-side links against misbehaving real peers, and the to-file link."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provkit.codes import FtErrorCode
from provkit.errors import TransportClosed, TransportError
from provkit.transport.errors import ChecksumError
from provkit.transport.links import FileLink, TcpLink
from provkit.wire.framing import FCC_TOKEN, LWM2M_TOKEN, Frame, RequestReader, encode_response

pytestmark = pytest.mark.integration


@pytest.fixture
def rogue_device() -> Iterator[Callable[[bytes], tuple[str, int]]]:
    """A TCP peer that reads one request and answers with the given raw bytes, then closes."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(answer: bytes) -> tuple[str, int]:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                reader = RequestReader()
                while reader.next_event() is None:
                    data = conn.recv(4096)
                    if not data:
                        return
                    reader.feed(data)
                conn.sendall(answer)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return "127.0.0.1", listener.getsockname()[1]

    yield start
    for thread in threads:
        thread.join(5)
    for listener in listeners:
        listener.close()


def test_corrupt_response_is_checksum_error_1002(rogue_device: Callable[[bytes], tuple[str, int]]) -> None:
    """A response whose SHA-256 does not match raises ChecksumError with code 1002."""
    frame = bytearray(encode_response(0, b"\xbf\xff"))
    frame[-1] ^= 0xFF
    with TcpLink(*rogue_device(bytes(frame))) as link, pytest.raises(ChecksumError) as info:
        link.exchange(b"bundle", timeout_s=10)
    assert info.value.code == FtErrorCode.INVALID_CHECKSUM


def test_peer_closing_without_answer_is_1022(rogue_device: Callable[[bytes], tuple[str, int]]) -> None:
    """A device that closes the connection instead of answering gives TransportClosed 1022."""
    with TcpLink(*rogue_device(b"[log] rebooting\r\n")) as link, pytest.raises(TransportClosed) as info:
        link.exchange(b"bundle", timeout_s=10)
    assert info.value.code == FtErrorCode.TCP_RECEIVE_FAILED


def test_response_after_log_output_is_found(rogue_device: Callable[[bytes], tuple[str, int]]) -> None:
    """Log text before the response frame on a TCP link is skipped."""
    answer = b"fcc: storing items\r\nmbedpr\r\n" + encode_response(0, b"resp")
    with TcpLink(*rogue_device(answer)) as link:
        assert link.exchange(b"bundle", timeout_s=10) == b"resp"


def test_file_link_writes_replayable_frames(tmp_path: Path) -> None:
    """FileLink writes exactly the request frames, truncating first, appending within a session."""
    path = tmp_path / "out" / "bundle.bin"
    path.parent.mkdir()
    path.write_bytes(b"old content")
    link = FileLink(path)
    assert link.returns_responses is False
    assert link.exchange(b"first") == b""
    link.write(b"second", token=LWM2M_TOKEN)
    reader = RequestReader()
    reader.feed(path.read_bytes())
    assert [reader.next_event(), reader.next_event(), reader.next_event()] == [
        Frame(FCC_TOKEN, b"first"),
        Frame(LWM2M_TOKEN, b"second"),
        None,
    ]


def test_file_link_unwritable_path_is_1000(tmp_path: Path) -> None:
    """Writing into a missing directory raises TransportError 1000 naming the path."""
    with pytest.raises(TransportError) as info:
        FileLink(tmp_path / "missing" / "x.bin").write(b"data")
    assert info.value.code == FtErrorCode.GENERAL
    assert "x.bin" in str(info.value)

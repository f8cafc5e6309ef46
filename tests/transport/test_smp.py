"""SMP end to end: smpclient-based links against the virtual Zephyr device, over a pty pair and UDP.

The device runs in-process behind a real transport (a kernel pty "cable" or a UDP socket on
127.0.0.1); lossy wrappers drop requests or answers to exercise retries and resumption.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from smp import packet as smp_packet

from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor
from provkit.device.smp import AnjayProvisioningImage
from provkit.device.storage import MemoryStorage
from provkit.errors import SmpConnectFailed, SmpDeviceError, SmpError, SmpProtocolError, SmpTimeout
from provkit.transport.smp_link import SmpLink, SmpSettings
from provkit.transport.smp_server import ConsoleFramer, SmpSerialServer, SmpUdpServer
from provkit.wire.smp import ENDPOINT_PATH, PROVISION_PATH, RESULT_PATH
from support.pty import pty_cable

pytestmark = pytest.mark.integration

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "lwm2m" / "vectors.json").read_text())
V10 = bytes.fromhex(VECTORS["V10"]["hex"])
FAST = SmpSettings(timeout_s=0.5, retries=3, connect_timeout_s=2.0)

Handler = Callable[[bytes], "bytes | None"]


class Lossy:
    """Wraps a device: loses the requests and answers whose (1-based) numbers are listed."""

    def __init__(self, handle: Handler, *, lose_requests=(), lose_answers=(), garble_answers=()) -> None:
        self.handle = handle
        self.lose_requests, self.lose_answers = set(lose_requests), set(lose_answers)
        self.garble_answers = set(garble_answers)
        self.seen = 0
        self.lock = threading.Lock()

    def __call__(self, message: bytes) -> bytes | None:
        with self.lock:
            self.seen += 1
            number = self.seen
        if number in self.lose_requests:
            return None
        answer = self.handle(message)
        if number in self.lose_answers:
            return None
        if number in self.garble_answers and answer:
            return answer[:8] + b"\xff" + answer[9:]
        return answer


@pytest.fixture
def board(tmp_path: Path) -> AnjayProvisioningImage:
    files = tmp_path / "lfs"
    files.mkdir()
    return AnjayProvisioningImage(Kcm(MemoryStorage()), endpoint_name="anjay-zephyr-demo-77", files=files)


@contextmanager
def udp_link(handler: Handler, settings: SmpSettings = FAST) -> Iterator[SmpLink]:
    with SmpUdpServer(handler) as server, SmpLink.udp(*server.address, settings=settings) as link:
        yield link


@contextmanager
def serial_link(
    handler: Handler, settings: SmpSettings = FAST, console: list[str] | None = None
) -> Iterator[SmpLink]:
    with (
        pty_cable() as cable,
        SmpSerialServer(handler, cable.device_path, console_lines=console or []),
        SmpLink.serial(cable.host_path, settings=settings) as link,
    ):
        yield link


LINKS = {"udp": udp_link, "serial": serial_link}


@pytest.mark.parametrize("kind", LINKS)
def test_provisioning_files_end_to_end(kind, board):
    """endpoint.txt, the blob in 512-byte chunks with progress, result.txt 0, configuration stored."""
    seen: list[tuple[int, int]] = []
    blob = V10 * 1
    with LINKS[kind](board.handle) as link:
        assert link.buf_size == 1024  # read from the device's MCUmgr parameters
        assert link.download(ENDPOINT_PATH) == b"anjay-zephyr-demo-77"
        link.upload(PROVISION_PATH, blob, progress=lambda done, total: seen.append((done, total)))
        assert link.download(RESULT_PATH) == b"0"
    assert seen[-1] == (len(blob), len(blob))
    assert len(Lwm2mAcceptor(board.acceptor.kcm).configuration()) == 10


@pytest.mark.parametrize("kind", LINKS)
@pytest.mark.parametrize("size", [0, 1, 499, 500, 501, 1500, 5000])
def test_file_sizes_across_chunk_boundaries(kind, size, board, tmp_path):
    """Uploads and downloads of every size round-trip; the device holds exactly the bytes sent."""
    data = bytes((i * 7) & 0xFF for i in range(size))
    settings = SmpSettings(timeout_s=2.0, chunk_size=500)
    with LINKS[kind](board.handle, settings) as link:
        link.upload("/lfs/f.bin", data)
        assert (tmp_path / "lfs" / "f.bin").read_bytes() == data
        assert link.status("/lfs/f.bin") == size
        assert link.download("/lfs/f.bin") == data


@pytest.mark.parametrize("kind", LINKS)
def test_lost_answer_resumes_where_the_device_stands(kind, board):
    """The answer to a chunk is lost: the retry is refused with FILE_OFFSET_NOT_VALID + len, and the
    upload goes on from there; the device applies the blob once."""
    lossy = Lossy(board.handle, lose_answers={3})  # 1: params, 2: first chunk, 3: second chunk
    with LINKS[kind](lossy, SmpSettings(timeout_s=0.5, chunk_size=64)) as link:
        link.upload(PROVISION_PATH, V10)
        assert link.retried >= 1
        assert link.download(RESULT_PATH) == b"0"


@pytest.mark.parametrize("kind", LINKS)
def test_lost_request_is_sent_again(kind, board):
    lossy = Lossy(board.handle, lose_requests={2, 4})
    with LINKS[kind](lossy, SmpSettings(timeout_s=0.5, chunk_size=64)) as link:
        link.upload(PROVISION_PATH, V10)
        assert link.download(RESULT_PATH) == b"0"
        assert link.retried >= 2


def test_late_answer_is_never_taken_for_the_next(board):
    """A slow device answers a chunk after the client gave up: that answer (old sequence) is skipped."""
    gate = threading.Event()
    calls = {"n": 0}

    def slow(message: bytes) -> bytes | None:
        calls["n"] += 1
        if calls["n"] == 2:
            gate.wait(1.0)  # answer the first chunk only after the client's timeout
        return board.handle(message)

    with udp_link(slow, SmpSettings(timeout_s=0.3, retries=3, chunk_size=64)) as link:
        link.upload(PROVISION_PATH, V10)
        assert link.download(RESULT_PATH) == b"0"


def test_garbled_answer_is_a_protocol_error(board):
    """An answer that is no SMP answer of the request's kind fails clearly (7003)."""
    with udp_link(Lossy(board.handle, garble_answers={2})) as link, pytest.raises(SmpProtocolError) as info:
        link.download(ENDPOINT_PATH)
    assert info.value.code == 7003


@pytest.mark.parametrize("kind", LINKS)
def test_device_error_codes_reach_the_client(kind, board):
    with LINKS[kind](board.handle) as link:
        with pytest.raises(SmpDeviceError) as missing:
            link.download("/lfs/missing")
        assert missing.value.code == 7103 and missing.value.rc == 3
        assert "FILE_NOT_FOUND (the file does not exist)" in str(missing.value)
        with pytest.raises(SmpDeviceError) as nowhere:
            link.upload("/elsewhere/x", b"data")
        assert nowhere.value.code == 7114 and "MOUNT_POINT_NOT_FOUND" in str(nowhere.value)
        with pytest.raises(SmpDeviceError) as big:
            link.upload("/lfs/big", b"x" * (1 << 20) + b"x")
        assert big.value.code == 7110
        with pytest.raises(SmpDeviceError) as long_name:
            link.status("/lfs/" + "n" * 80)
        assert long_name.value.code == 7203 and "EINVAL" in str(long_name.value)


def test_chunk_over_512_is_refused_by_the_anjay_image(board):
    with udp_link(board.handle, SmpSettings(timeout_s=2.0, chunk_size=900)) as link:
        with pytest.raises(SmpDeviceError) as info:
            link.upload(PROVISION_PATH, V10 * 5)
        assert info.value.code == 7110 and "512-byte" not in str(info.value)  # the client sees the rc only
        link.upload(PROVISION_PATH, V10)  # nothing was taken: a correct upload still works
        assert link.download(RESULT_PATH) == b"0"


def test_mtu_limits_the_chunk(board):
    """A small device buffer (--mtu) shrinks the chunks; the upload still completes."""
    with udp_link(board.handle, SmpSettings(timeout_s=2.0, mtu=28 + 120)) as link:
        link.upload(PROVISION_PATH, V10)
        assert link.requests > 3 and link.download(RESULT_PATH) == b"0"


def test_silent_device_times_out_after_retries():
    silent = udp_link(lambda message: None, SmpSettings(timeout_s=0.2, retries=2))
    with silent as link, pytest.raises(SmpTimeout) as info:
        link.download(ENDPOINT_PATH)
    assert info.value.code == 7002 and "3 tries" in str(info.value) and info.value.hint


def test_missing_serial_port_names_it():
    with pytest.raises(SmpConnectFailed) as info, SmpLink.serial("/dev/does-not-exist-smp"):
        pass
    assert info.value.code == 7001 and "/dev/does-not-exist-smp" in str(info.value)


def test_unresolvable_udp_host():
    with pytest.raises(SmpConnectFailed), SmpLink.udp("no-such-host.invalid", 1337, settings=FAST):
        pass


def test_console_log_lines_are_skipped_by_the_client(board):
    with serial_link(board.handle, console=["booting", "Device ready for provisioning."]) as link:
        assert link.download(ENDPOINT_PATH) == b"anjay-zephyr-demo-77"


def test_framer_drops_bad_crc_too_long_and_noise():
    framer = ConsoleFramer(max_message_bytes=64)
    good = bytes(range(30))
    wire = b"".join(smp_packet.encode(good, line_length=32))
    assert framer.feed(b"uart: hello\n" + wire[:7]) == []
    assert framer.feed(wire[7:]) == [good]
    corrupt = bytearray(wire)
    corrupt[4] ^= 0x01
    assert framer.feed(bytes(corrupt)) == [] and framer.dropped == 1
    too_long = b"".join(smp_packet.encode(bytes(100), line_length=128))
    assert framer.feed(too_long) == [] and framer.dropped == 2
    assert framer.feed(wire) == [good]  # in step again


def test_wait_for_the_console_line_after_a_reset(board):
    """The tool opens the port first; the board boots and logs; the tool sees the line among the output."""
    with pty_cable() as cable, SmpLink.serial(cable.host_path, settings=FAST) as link:
        link.connect()
        with SmpSerialServer(
            board.handle, cable.device_path, console_lines=["*** Booting Zephyr ***"]
        ) as server:
            server.log(board.console_lines)
            line = link.wait_for_console(["Device ready for provisioning."], 10.0)
            assert line.endswith("provisioning_app: Device ready for provisioning.")
            assert link.download(ENDPOINT_PATH) == b"anjay-zephyr-demo-77"  # SMP after the log


def test_wait_for_console_times_out_and_needs_serial(board):
    with (
        pty_cable() as cable,
        SmpLink.serial(cable.host_path, settings=FAST) as link,
        pytest.raises(SmpTimeout, match="did not print 'never'"),
    ):
        link.wait_for_console(["never"], 0.2)
    with udp_link(board.handle) as link, pytest.raises(SmpError, match="no console"):
        link.wait_for_console(["x"], 0.1)

"""The virtual Zephyr device's SMP request handling, message in and message out (no I/O).

Requests are built and answers read with the ``smp`` package's models, as a client would.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import cbor2
import pytest
from smp import file_management as fs
from smp import header as smp_header
from smp import os_management as smp_os
from smp.error import MGMT_ERR
from smp.file_management import FS_MGMT_ERR

from provkit.device.kcm import Kcm
from provkit.device.lwm2m import Lwm2mAcceptor
from provkit.device.smp import AnjayProvisioningImage, default_endpoint_name
from provkit.device.smp.factory import ImageState
from provkit.device.smp.fs_group import HashChecksumRequest
from provkit.device.storage import MemoryStorage
from provkit.lwm2m.senml import Entry
from provkit.lwm2m.senml_cbor import decode_cbor, encode_cbor
from provkit.wire.smp import ALREADY_PROVISIONED_LINE, READY_LINE, UploadErrorV2

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "lwm2m" / "vectors.json").read_text())
V10 = bytes.fromhex(VECTORS["V10"]["hex"])
PROVISION, RESULT, ENDPOINT = "/factory/provision.cbor", "/factory/result.txt", "/factory/endpoint.txt"


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kcm() -> Kcm:
    return Kcm(MemoryStorage())


@pytest.fixture
def board(kcm: Kcm, tmp_path: Path, clock: Clock) -> AnjayProvisioningImage:
    files = tmp_path / "lfs"
    files.mkdir()
    return AnjayProvisioningImage(kcm, endpoint_name="anjay-zephyr-demo-01", files=files, clock=clock)


def ask(board: AnjayProvisioningImage, request: Any, answer: type[Any] = fs.FileUploadResponse) -> Any:
    """Send one request; parse the answer as ``answer``, else as the fs group's error (or V1 error)."""
    raw = board.handle(request.BYTES)
    assert raw is not None
    header = smp_header.Header.loads(raw[:8])
    assert header.sequence == request.header.sequence and header.group_id == request.header.group_id
    v1 = fs.FileSystemManagementErrorV1 if header.group_id == 8 else smp_os.OSManagementErrorV1
    for model in (answer, UploadErrorV2, v1):
        try:
            return model.loads(raw)
        except ValueError:
            continue
    raise AssertionError(raw.hex())


def upload(board, name, data, off, total=None):
    return ask(board, fs.FileUploadRequest(off=off, data=data, name=name, len=total))


def download(board, name, off):
    return ask(board, fs.FileDownloadRequest(off=off, name=name), fs.FileDownloadResponse)


def rc(answer: Any) -> int:
    return int(answer.err.rc) if hasattr(answer, "err") else int(answer.rc)


def read_all(board, name) -> bytes:
    first = download(board, name, 0)
    data = first.data
    while len(data) < first.len:
        data += download(board, name, len(data)).data
    return data


def send_blob(board, blob: bytes, chunk: int = 512) -> None:
    for off in range(0, len(blob), chunk):
        answer = upload(board, PROVISION, blob[off : off + chunk], off, len(blob) if off == 0 else None)
        assert answer.off == min(off + chunk, len(blob)), answer


def test_endpoint_and_boot_log(board):
    assert board.console_lines[-1] == READY_LINE
    assert read_all(board, ENDPOINT) == b"anjay-zephyr-demo-01"
    assert default_endpoint_name(bytes.fromhex("00ff")) == "anjay-zephyr-demo-00ff"


@pytest.mark.parametrize("chunk", [1, 100, 191, 192, 512])
def test_blob_in_chunks_is_applied_when_the_result_is_read(board, kcm, chunk):
    """Chunk boundaries anywhere: nothing is stored until result.txt is read; then 0 and the config."""
    send_blob(board, V10, chunk)
    assert Lwm2mAcceptor(kcm).configuration() == []  # not applied before the blob ends
    assert read_all(board, RESULT) == b"0"
    assert len(Lwm2mAcceptor(kcm).configuration()) == 10
    assert board.factory.state is ImageState.FINISHED


def test_one_shot_and_halt_after_reboot(board):
    send_blob(board, V10)
    assert read_all(board, RESULT) == b"0"
    again = upload(board, PROVISION, V10[:10], 0, len(V10))
    assert rc(again) == FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND  # open: -ENOENT after the blob ended
    assert board.reboot() == [ALREADY_PROVISIONED_LINE]
    assert rc(download(board, ENDPOINT, 0)) == FS_MGMT_ERR.FILE_NOT_FOUND  # /factory not mounted
    assert rc(upload(board, PROVISION, V10[:10], 0, len(V10))) == FS_MGMT_ERR.FILE_NOT_FOUND


def test_refused_blob_gives_minus_one_and_stores_nothing(board, kcm):
    """Anjay's Device object takes only 13-15: the device refuses /3/0/0 (result -1), nothing stored."""
    entries = [Entry(r.name or "", r.value) for r in decode_cbor(V10)]  # type: ignore[arg-type]
    send_blob(board, encode_cbor([*entries, Entry("/3/0/0", "ACME")]))
    assert read_all(board, RESULT) == b"-1"
    assert Lwm2mAcceptor(kcm).configuration() == []
    assert board.reboot()[-1] == READY_LINE  # a failed device takes another blob after a reset


def test_truncated_blob_then_result_is_minus_one(board, kcm):
    upload(board, PROVISION, V10[:100], 0, len(V10))
    assert read_all(board, RESULT) == b"-1"
    assert Lwm2mAcceptor(kcm).configuration() == []


def test_idle_blob_ends_after_15_s(board, kcm, clock):
    send_blob(board, V10)
    clock.now += 14.9
    assert board.factory.state is ImageState.INITIAL
    clock.now += 0.2
    assert download(board, ENDPOINT, 0).data  # any request lets the image notice
    assert board.factory.state is ImageState.FINISHED and board.factory.result == 0


def test_wrong_offsets(board):
    """Ahead of, behind, or restarting the stream: FILE_OFFSET_NOT_VALID with the bytes held as len."""
    upload(board, PROVISION, V10[:50], 0, len(V10))
    for off in (70, 20):
        answer = upload(board, PROVISION, V10[off : off + 10], off)
        assert rc(answer) == FS_MGMT_ERR.FILE_OFFSET_NOT_VALID and answer.len == 50
    restart = upload(board, PROVISION, V10[:10], 0, len(V10))
    assert rc(restart) == FS_MGMT_ERR.FILE_OFFSET_NOT_VALID and restart.len == 50
    assert upload(board, PROVISION, V10[50:], 50).off == len(V10)  # continuing where the device stands
    assert read_all(board, RESULT) == b"0"


def test_write_over_512_bytes_and_oversized_blob(board, kcm):
    big = upload(board, PROVISION, b"\x80" * 513, 0, 513)
    assert rc(big) == FS_MGMT_ERR.FILE_WRITE_FAILED
    huge = upload(board, PROVISION, b"\x80" * 10, 0, 64 * 1024 + 1)
    assert rc(huge) == FS_MGMT_ERR.FILE_WRITE_FAILED
    assert board.factory.state is ImageState.INITIAL  # nothing taken: still waiting for a blob
    send_blob(board, V10)
    assert read_all(board, RESULT) == b"0"


def test_stream_beyond_the_blob_limit_is_refused(kcm, clock):
    board = AnjayProvisioningImage(kcm, endpoint_name="e", clock=clock)
    board.acceptor.max_blob_bytes = 600
    assert upload(board, PROVISION, b"\x80" * 512, 0, 512).off == 512
    assert rc(upload(board, PROVISION, b"\x80" * 100, 512)) == FS_MGMT_ERR.FILE_WRITE_FAILED


def test_directory_files_every_command(board, tmp_path):
    data = bytes(range(256)) * 9  # 2304 bytes: several download chunks
    assert upload(board, "/lfs/cert.der", data[:1000], 0, len(data)).off == 1000
    assert upload(board, "/lfs/cert.der", data[1000:], 1000).off == len(data)
    assert (tmp_path / "lfs" / "cert.der").read_bytes() == data
    assert read_all(board, "/lfs/cert.der") == data
    status = ask(board, fs.FileStatusRequest(name="/lfs/cert.der"), fs.FileStatusResponse)
    assert status.len == len(data)
    crc = ask(board, fs.FileHashChecksumRequest(name="/lfs/cert.der"), fs.FileHashChecksumResponse)
    assert crc.type == "crc32" and crc.output == zlib.crc32(data) and crc.len == len(data)
    sha = ask(
        board,
        fs.FileHashChecksumRequest(name="/lfs/cert.der", type="sha256", off=10, len=100),
        fs.FileHashChecksumResponse,
    )
    assert sha.output == hashlib.sha256(data[10:110]).digest() and sha.off == 10 and sha.len == 100
    types = ask(board, fs.SupportedFileHashChecksumTypesRequest(), fs.SupportedFileHashChecksumTypesResponse)
    assert set(types.types) == {"crc32", "sha256"}
    closed = ask(board, fs.FileCloseRequest(), fs.FileCloseResponse)
    assert closed.header.op == smp_header.OP.WRITE_RSP
    # After a close, an upload at an offset continues from the file's size, as Zephyr's does.
    assert upload(board, "/lfs/cert.der", b"tail", len(data)).off == len(data) + 4
    assert upload(board, "/lfs/cert.der", b"new", 0, 3).off == 3  # offset 0 replaces the file
    assert (tmp_path / "lfs" / "cert.der").read_bytes() == b"new"


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (fs.FileDownloadRequest(off=0, name="/lfs/missing"), FS_MGMT_ERR.FILE_NOT_FOUND),
        (fs.FileDownloadRequest(off=0, name="/nowhere/x"), FS_MGMT_ERR.FILE_NOT_FOUND),
        (fs.FileUploadRequest(off=0, data=b"x", name="/nowhere/x", len=1), FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND),
        (fs.FileUploadRequest(off=0, data=b"x", name="/lfs/a/b", len=1), FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND),
        (fs.FileUploadRequest(off=0, data=b"x", name="/lfs/../x", len=1), FS_MGMT_ERR.FILE_INVALID_NAME),
        (fs.FileUploadRequest(off=0, data=b"x", name="/lfs/big", len=2 << 20), FS_MGMT_ERR.FILE_WRITE_FAILED),
        (fs.FileUploadRequest(off=0, data=b"x", name=ENDPOINT, len=1), FS_MGMT_ERR.MOUNT_POINT_NOT_FOUND),
        (fs.FileDownloadRequest(off=0, name=PROVISION), FS_MGMT_ERR.FILE_NOT_FOUND),
        (fs.FileDownloadRequest(off=99, name=ENDPOINT), FS_MGMT_ERR.FILE_SEEK_FAILED),
        (HashChecksumRequest(name=ENDPOINT, off=500), FS_MGMT_ERR.FILE_OFFSET_LARGER_THAN_FILE),
        (HashChecksumRequest(name=ENDPOINT, type="md5"), FS_MGMT_ERR.CHECKSUM_HASH_NOT_FOUND),
        (fs.FileStatusRequest(name="/lfs"), FS_MGMT_ERR.FILE_INVALID_NAME),
    ],
)
def test_device_error_codes(board, request_, code):
    answer = ask(board, request_)
    assert isinstance(answer, UploadErrorV2) and rc(answer) == code and answer.err.group == 8


def test_empty_file_hash_and_directory(board, tmp_path):
    (tmp_path / "lfs" / "empty").write_bytes(b"")
    (tmp_path / "lfs" / "sub").mkdir()
    assert rc(ask(board, fs.FileHashChecksumRequest(name="/lfs/empty"))) == FS_MGMT_ERR.FILE_EMPTY
    assert rc(ask(board, fs.FileStatusRequest(name="/lfs/sub"))) == FS_MGMT_ERR.FILE_IS_DIRECTORY


def test_generic_errors_are_version_1_rc(board):
    """Missing fields, long names, unknown commands and bodies that do not decode: MGMT_ERR codes."""
    no_len = fs.FileUploadRequest(off=0, data=b"x", name="/lfs/a")
    assert ask(board, no_len).rc == MGMT_ERR.EINVAL
    long_name = fs.FileDownloadRequest(off=0, name="/lfs/" + "n" * 70)
    assert ask(board, long_name).rc == MGMT_ERR.EINVAL
    reset = smp_os.ResetWriteRequest()
    assert ask(board, reset).rc == MGMT_ERR.ENOTSUP
    header = smp_header.Header(
        op=smp_header.OP.READ,
        version=smp_header.Version.V2,
        flags=smp_header.Flag(0),
        length=3,
        group_id=8,
        sequence=9,
        command_id=0,
    )
    raw = board.handle(bytes(header) + b"\xa1\x61")  # truncated CBOR (header says 3, 2 sent): dropped
    assert raw is None
    bad = bytes(header)[:2] + (2).to_bytes(2, "big") + bytes(header)[4:] + b"\xa1\x61"
    answer = fs.FileSystemManagementErrorV1.loads(board.handle(bad) or b"")
    assert answer.rc == MGMT_ERR.EINVAL and answer.header.sequence == 9
    assert board.handle(b"\x00\x01") is None  # shorter than a header: dropped


def test_version_1_requests_get_translated_codes(board):
    request = fs.FileDownloadRequest(off=0, name="/lfs/missing", version=smp_header.Version.V1)
    answer = fs.FileSystemManagementErrorV1.loads(board.handle(request.BYTES) or b"")
    assert answer.rc == MGMT_ERR.ENOENT and answer.header.version == smp_header.Version.V1


def test_os_group_parameters_and_echo(board):
    params = ask(board, smp_os.MCUMgrParametersReadRequest(), smp_os.MCUMgrParametersReadResponse)
    assert params.buf_size == 1024 and params.buf_count == 4
    echo = ask(board, smp_os.EchoWriteRequest(d="hi"), smp_os.EchoWriteResponse)
    assert echo.r == "hi"


def test_v2_error_carries_len_on_the_wire(board):
    """The offset error is Zephyr's map: err {group, rc} and len, which the smp model alone refuses."""
    upload(board, PROVISION, V10[:20], 0, len(V10))
    raw = board.handle(fs.FileUploadRequest(off=5, data=b"x", name=PROVISION).BYTES) or b""
    assert cbor2.loads(raw[8:]) == {"err": {"group": 8, "rc": 11}, "len": 20}

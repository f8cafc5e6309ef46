"""Byte-level tests of the mbedprov transport framing (docs/transports.md)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from provkit.codes import FtcdCommStatus, FtErrorCode
from provkit.errors import FrameError
from provkit.wire.framing import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FCC_TOKEN,
    LWM2M_TOKEN,
    OVERSIZE_STATUS,
    SDA_TOKEN,
    Frame,
    FrameFailure,
    RequestReader,
    Response,
    ResponseFailure,
    ResponseReader,
    encode_request,
    encode_response,
)


def drain(reader: RequestReader | ResponseReader) -> list[object]:
    events = []
    while (event := reader.next_event()) is not None:
        events.append(event)
    return events


def read_all(data: bytes, **kwargs: int) -> list[object]:
    reader = RequestReader(**kwargs)
    reader.feed(data)
    return drain(reader)


def test_request_layout_matches_the_python_generator() -> None:
    """A request is struct '<QI' token+length, the message, then SHA-256 of the message only."""
    message = b"\xa1\x6dSchemeVersion\x650.0.1"
    expected = (
        struct.pack("<QI", 0x766F72706465626D, len(message)) + message + hashlib.sha256(message).digest()
    )
    assert encode_request(message) == expected


def test_success_response_layout() -> None:
    """A status-0 response is token, LE status 0, LE length, body, SHA-256 of the body."""
    body = b"\xbf\xff"
    frame = encode_response(0, body)
    assert frame == b"mbedprov" + b"\0\0\0\0" + b"\x02\0\0\0" + body + hashlib.sha256(body).digest()


def test_failure_response_is_token_and_status_only() -> None:
    """A non-zero status response carries no length, body or hash."""
    assert encode_response(8) == b"mbedprov\x08\x00\x00\x00"
    assert encode_response(12, token=LWM2M_TOKEN) == b"lwm2mfpv\x0c\x00\x00\x00"


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (encode_request, (b"",)),
        (encode_request, (b"x", b"short")),
        (encode_response, (0, None)),
        (encode_response, (8, b"body")),
        (encode_response, (-1, None)),
        (encode_response, (12, None, b"toolongtoken")),
    ],
)
def test_encoders_refuse_illegal_frames(call: object, args: tuple[object, ...]) -> None:
    """Encoders raise FrameError (status 2) for frames no peer could accept."""
    with pytest.raises(FrameError) as info:
        call(*args)  # type: ignore[operator]
    assert info.value.comm_status is FtcdCommStatus.INVALID_PARAMETER


GOOD = encode_request(b"payload")
SIG = hashlib.sha256(b"payload").digest()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (GOOD, [Frame(FCC_TOKEN, b"payload")]),
        (b"garbage\r\nlog line\n" + GOOD, [Frame(FCC_TOKEN, b"payload")]),
        (b"m" + GOOD, [Frame(FCC_TOKEN, b"payload")]),
        (b"mbedmbedpr" + GOOD, [Frame(FCC_TOKEN, b"payload")]),
        (b"mbedpro" + GOOD, [Frame(FCC_TOKEN, b"payload")]),
        (encode_request(b"senml", LWM2M_TOKEN), [Frame(LWM2M_TOKEN, b"senml")]),
        (encode_request(b"sda", SDA_TOKEN), [Frame(SDA_TOKEN, b"sda")]),
        (GOOD + GOOD, [Frame(FCC_TOKEN, b"payload")] * 2),
        (
            b"mbedprov\0\0\0\0",
            [FrameFailure(FCC_TOKEN, FtcdCommStatus.FAILED_TO_READ_MESSAGE_SIZE, "message length is 0")],
        ),
        (
            b"mbedprov\x07\0\0\0payload" + bytes(32),
            [
                FrameFailure(
                    FCC_TOKEN, FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE, "SHA-256 of the message differs"
                )
            ],
        ),
        (b"mbedprov\x07\0\0\0payload" + SIG[:31], []),
        (b"no token at all", []),
    ],
    ids=[
        "plain",
        "after-log-lines",
        "repeated-first-byte",
        "overlapping-prefix",
        "partial-token-prefix",
        "lwm2m",
        "sda",
        "two-frames",
        "length-zero",
        "bad-hash",
        "truncated",
        "noise",
    ],
)
def test_request_reader_table(data: bytes, expected: list[object]) -> None:
    """The reader yields exactly the documented frames and failures for each byte string."""
    assert read_all(data) == expected


def test_length_zero_then_next_frame_is_served() -> None:
    """After a length-0 failure the reader finds the next frame in the stream."""
    events = read_all(b"mbedprov\0\0\0\0" + GOOD)
    assert [type(e) for e in events] == [FrameFailure, Frame]


def test_bad_hash_has_no_frame_and_reader_recovers() -> None:
    """A hash mismatch gives status 8 only, and a following good frame is still read."""
    events = read_all(b"mbedprov\x07\0\0\0payload" + bytes(32) + GOOD)
    assert isinstance(events[0], FrameFailure)
    assert events[0].status == 8
    assert events[1] == Frame(FCC_TOKEN, b"payload")


def test_oversize_frame_is_refused_and_discarded_without_buffering() -> None:
    """A frame above the maximum fails at once and its body is skipped as it streams in."""
    reader = RequestReader(max_message_bytes=16)
    body = b"A" * 1000
    reader.feed(b"mbedprov" + struct.pack("<I", len(body)))
    failure = reader.next_event()
    assert isinstance(failure, FrameFailure)
    # MEMORY_OUT is what the C agent answers when it cannot allocate the announced length.
    assert failure.status is OVERSIZE_STATUS is FtcdCommStatus.MEMORY_OUT
    for start in range(0, len(body), 100):
        reader.feed(body[start : start + 100])
        assert len(reader._buf) == 0  # the discarded body never enters the buffer
    reader.feed(bytes(32) + encode_request(b"small"))
    assert drain(reader) == [Frame(FCC_TOKEN, b"small")]


def test_default_maximum_is_64_kib() -> None:
    """A 64 KiB message is accepted and 64 KiB + 1 is refused by default."""
    assert DEFAULT_MAX_MESSAGE_BYTES == 65536
    assert read_all(encode_request(b"x" * 65536)) == [Frame(FCC_TOKEN, b"x" * 65536)]
    events = read_all(encode_request(b"x" * 65537))
    assert isinstance(events[0], FrameFailure)
    assert events[0].status == OVERSIZE_STATUS


def test_noise_buffer_stays_bounded() -> None:
    """Scanning megabytes of noise keeps at most a token's worth of bytes buffered."""
    reader = RequestReader()
    for _ in range(100):
        reader.feed(b"mbedpr" + b"\x00" * 10_000 + b"mbedpro")
    assert len(reader._buf) <= 7
    assert reader.skipped_bytes == 100 * 10_013 - 7  # the last partial token is still held
    assert not reader.in_frame


def test_in_frame_and_reset() -> None:
    """in_frame reports a started frame; reset drops it."""
    reader = RequestReader()
    reader.feed(GOOD[:20])
    assert reader.in_frame
    reader.reset()
    assert not reader.in_frame
    reader.feed(GOOD[20:])
    assert reader.next_event() is None


def test_custom_token_set_ignores_others() -> None:
    """A reader restricted to the FCC token treats other tokens as noise."""
    events = read_all(encode_request(b"x", LWM2M_TOKEN) + GOOD, tokens=(FCC_TOKEN,))  # type: ignore[arg-type]
    assert events == [Frame(FCC_TOKEN, b"payload")]


# ----------------------------------------------------------------- response reader


def read_responses(data: bytes, token: bytes = FCC_TOKEN) -> list[object]:
    reader = ResponseReader(token)
    reader.feed(data)
    return drain(reader)


def test_response_reader_skips_device_logs() -> None:
    """Log lines (even partial tokens) before the response are skipped and counted."""
    data = b"[INFO] fcc: mbed starting\r\nmbedpr\r\n" + encode_response(0, b"cbor")
    reader = ResponseReader()
    reader.feed(data)
    assert reader.next_event() == Response(FCC_TOKEN, 0, b"cbor")
    assert reader.skipped_bytes == len(data) - len(encode_response(0, b"cbor"))


def test_response_status_without_body() -> None:
    """A non-zero status ends the frame right after the status word."""
    assert read_responses(encode_response(9) + encode_response(0, b"x")) == [
        Response(FCC_TOKEN, 9, None),
        Response(FCC_TOKEN, 0, b"x"),
    ]


def test_response_bad_hash_maps_to_1002() -> None:
    """A body whose SHA-256 differs is a 1002 failure, not a response."""
    frame = bytearray(encode_response(0, b"body"))
    frame[-1] ^= 1
    [failure] = read_responses(bytes(frame))
    assert isinstance(failure, ResponseFailure)
    assert failure.code is FtErrorCode.INVALID_CHECKSUM


def test_response_empty_and_oversize_bodies_fail_with_1001() -> None:
    """Status 0 with length 0, or a body above the maximum, is a communication error."""
    [empty] = read_responses(b"mbedprov" + bytes(8))
    assert isinstance(empty, ResponseFailure)
    assert empty.code is FtErrorCode.DEVICE_COMMUNICATION
    reader = ResponseReader(max_message_bytes=4)
    reader.feed(encode_response(0, b"too long") + encode_response(0, b"ok"))
    oversize, good = drain(reader)
    assert isinstance(oversize, ResponseFailure)
    assert good == Response(FCC_TOKEN, 0, b"ok")


def test_response_reader_only_matches_its_token() -> None:
    """An LwM2M reader ignores FCC-token frames in the stream."""
    data = encode_response(0, b"fcc") + encode_response(0, b"lwm2m", token=LWM2M_TOKEN)
    assert read_responses(data, LWM2M_TOKEN) == [Response(LWM2M_TOKEN, 0, b"lwm2m")]

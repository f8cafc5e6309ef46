"""Property tests: random and mutated bytes never break the framing readers."""

from __future__ import annotations

import itertools

from hypothesis import assume, given
from hypothesis import strategies as st

from provkit.codes import FtcdCommStatus, FtErrorCode
from provkit.wire.framing import (
    KNOWN_TOKENS,
    Frame,
    FrameFailure,
    RequestReader,
    Response,
    ResponseFailure,
    ResponseReader,
    encode_request,
    encode_response,
)

REQUEST_STATUSES = {
    FtcdCommStatus.FAILED_TO_READ_MESSAGE_SIZE,
    FtcdCommStatus.MEMORY_OUT,
    FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE,
}

messages = st.binary(min_size=1, max_size=600)
tokens = st.sampled_from(KNOWN_TOKENS)
noise = st.binary(max_size=64) | st.sampled_from([b"mbed", b"mbedpro", b"lwm2m", b"[log] line\r\n"])


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_all(reader: RequestReader | ResponseReader, chunks: list[bytes]) -> list[object]:
    events: list[object] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (event := reader.next_event()) is not None:
            events.append(event)
    return events


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
def test_random_bytes_give_only_documented_request_outcomes(data: bytes, cuts: list[int]) -> None:
    """Arbitrary bytes produce only frames with known tokens or the documented failure statuses."""
    reader = RequestReader(max_message_bytes=256)
    for event in feed_all(reader, chunked(data, cuts)):
        if isinstance(event, Frame):
            assert event.token in KNOWN_TOKENS
            assert 0 < len(event.message) <= 256
        else:
            assert isinstance(event, FrameFailure)
            assert event.status in REQUEST_STATUSES
    assert len(reader._buf) <= 256 + 64


@given(st.lists(st.tuples(noise, tokens, messages), min_size=1, max_size=4), st.lists(st.integers(0, 3000)))
def test_round_trip_through_noise_and_arbitrary_chunking(
    parts: list[tuple[bytes, bytes, bytes]], cuts: list[int]
) -> None:
    """encode_request then reading gives back every message, whatever noise and chunking."""
    # Noise that itself contains a whole token is a frame by definition.
    assume(not any(token in n for n, _, _ in parts for token in KNOWN_TOKENS))
    stream = b"".join(n + encode_request(m, t) for n, t, m in parts)
    events = feed_all(RequestReader(), chunked(stream, cuts))
    assert events == [Frame(t, m) for _, t, m in parts]


@given(messages, st.integers(0, 10_000), st.integers(0, 255))
def test_single_byte_mutation_never_yields_a_wrong_message(message: bytes, position: int, xor: int) -> None:
    """Flipping any byte of a frame yields the original message, a failure, or nothing — never other data."""
    frame = bytearray(encode_request(message))
    position %= len(frame)
    frame[position] ^= xor or 1
    for event in feed_all(RequestReader(), [bytes(frame)]):
        if isinstance(event, Frame):
            assert event.message == message or position < 8
        else:
            assert isinstance(event, FrameFailure)
            assert event.status in REQUEST_STATUSES


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
def test_random_bytes_give_only_documented_response_outcomes(data: bytes, cuts: list[int]) -> None:
    """The factory-side reader turns any bytes into responses or 1001/1002 failures only."""
    for event in feed_all(ResponseReader(max_message_bytes=512), chunked(data, cuts)):
        if isinstance(event, Response):
            assert (event.status == 0) == (event.message is not None)
        else:
            assert isinstance(event, ResponseFailure)
            assert event.code in (FtErrorCode.DEVICE_COMMUNICATION, FtErrorCode.INVALID_CHECKSUM)


@given(st.binary(max_size=300), st.binary(min_size=1, max_size=600), st.lists(st.integers(0, 1000)))
def test_response_round_trip_after_log_noise(logs: bytes, body: bytes, cuts: list[int]) -> None:
    """encode_response(0, body) is found after any log output, however it is chunked."""
    assume(b"mbedprov" not in logs)  # log output holding the token would be a frame start
    stream = logs + encode_response(0, body)
    events = feed_all(ResponseReader(), chunked(stream, cuts))
    assert events == [Response(b"mbedprov", 0, body)]

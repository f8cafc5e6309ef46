"""Transport frames between the factory tool and the device agent (pure, sans-IO).

Layout (FCC's ``ftcd-comm-base``, docs/transports.md), all integers little-endian::

    request:   token(8) | length u32 | message(length) | sha256(message)(32)
    response:  token(8) | status u32 [| length u32 | message | sha256(message)]  # tail only if status 0

Tokens:

* :data:`FCC_TOKEN` ``mbedprov`` — a CBOR device configuration bundle for FCC.
* :data:`LWM2M_TOKEN` ``lwm2mfpv`` — provkit's own message type carrying an LwM2M SenML
  blob; identical layout, only the token differs, so a device that does not know it never
  mistakes it for a bundle.
* :data:`SDA_TOKEN` ``mbeddbap`` — Secure Device Access traffic; recognised so the frame is
  consumed whole and can be answered as unsupported instead of being skipped as noise.
* :data:`CONNECT_TOKEN` ``firstcon`` — provkit's end-of-line command: the device makes its
  first connection (bootstrap, registration) and answers how it went (JSON both ways).

The readers never do I/O: feed them bytes as they arrive and pull events. Failures are
values (:class:`FrameFailure`, :class:`ResponseFailure`), never exceptions, so a device
agent can answer every malformed frame with its status and keep going.
"""

from __future__ import annotations

import hashlib
import struct
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final, Generic, TypeVar

from provkit.codes import FtcdCommStatus, FtErrorCode
from provkit.errors import FrameError

FCC_TOKEN: Final = b"mbedprov"
"""``FTCD_MSG_HEADER_TOKEN_FCC``: a device configuration bundle."""

LWM2M_TOKEN: Final = b"lwm2mfpv"
"""provkit's message type for LwM2M SenML blobs (same layout as FCC frames)."""

SDA_TOKEN: Final = b"mbeddbap"
"""``FTCD_MSG_HEADER_TOKEN_SDA``: Secure Device Access; provkit answers it as unsupported."""

CONNECT_TOKEN: Final = b"firstcon"
# No prefix of it ends another token and no suffix of it starts one, so noise in front of
# a frame can never make a reader see another token (as ``…prov`` + ``mbedprov`` would).
"""provkit's first-connection command: connect to the device's servers, answer the outcome."""

KNOWN_TOKENS: Final = (FCC_TOKEN, LWM2M_TOKEN, SDA_TOKEN, CONNECT_TOKEN)
"""Every token a :class:`RequestReader` recognises by default."""

TOKEN_SIZE: Final = 8
LENGTH_SIZE: Final = 4
STATUS_SIZE: Final = 4
SIGNATURE_SIZE: Final = 32
MAX_U32: Final = 0xFFFF_FFFF

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024
"""Largest message a reader accepts; real bundles are a few KiB, responses at most 2560 bytes."""

OVERSIZE_STATUS: Final = FtcdCommStatus.MEMORY_OUT
"""Status answered for a frame longer than the maximum.

Status 3 (``MEMORY_OUT``): the device declines to allocate a buffer for the message, which
is what the C agent answers when ``fcc_malloc`` of the announced length fails
(``ftcd_comm_base.cpp``); it never reads or processes the bytes.
"""

_U32: Final = struct.Struct("<I")


def _check_token(token: bytes) -> None:
    if len(token) != TOKEN_SIZE:
        raise FrameError(
            f"a frame token is {TOKEN_SIZE} bytes, got {len(token)}",
            comm_status=FtcdCommStatus.INVALID_PARAMETER,
        )


def signature(message: bytes) -> bytes:
    """Return the frame signature of ``message``: its plain SHA-256 digest."""
    return hashlib.sha256(message).digest()


def encode_request(message: bytes, token: bytes = FCC_TOKEN) -> bytes:
    """Frame ``message`` for the device: token, LE u32 length, message, SHA-256.

    Raises:
        FrameError: the token is not 8 bytes, or the message is empty or above 4 GiB
            (a device answers an empty message with status 4 and would never process it).
    """
    _check_token(token)
    if not message or len(message) > MAX_U32:
        raise FrameError(
            f"a request message must be 1..{MAX_U32} bytes, got {len(message)}",
            comm_status=FtcdCommStatus.INVALID_PARAMETER,
        )
    return b"".join((token, _U32.pack(len(message)), message, signature(message)))


def encode_response(status: int, body: bytes | None = None, token: bytes = FCC_TOKEN) -> bytes:
    """Frame a device answer: token and LE u32 status, plus length/body/hash when status is 0.

    Raises:
        FrameError: status 0 without a body, a body with a non-zero status, or a bad token.
    """
    _check_token(token)
    if not 0 <= status <= MAX_U32:
        raise FrameError(f"status {status} is not a u32", comm_status=FtcdCommStatus.INVALID_PARAMETER)
    if status != FtcdCommStatus.SUCCESS:
        if body is not None:
            raise FrameError(
                "only a status-0 response carries a body", comm_status=FtcdCommStatus.INVALID_PARAMETER
            )
        return token + _U32.pack(status)
    if body is None:
        raise FrameError("a status-0 response needs a body", comm_status=FtcdCommStatus.INVALID_PARAMETER)
    return b"".join((token, _U32.pack(0), _U32.pack(len(body)), body, signature(body)))


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete, correctly signed request frame."""

    token: bytes
    message: bytes


@dataclass(frozen=True, slots=True)
class FrameFailure:
    """A malformed request frame; answer it with ``status`` under ``token`` and no body."""

    token: bytes
    status: FtcdCommStatus
    reason: str


@dataclass(frozen=True, slots=True)
class Response:
    """A device response frame: ``message`` is the body when ``status`` is 0, else ``None``."""

    token: bytes
    status: int
    message: bytes | None


@dataclass(frozen=True, slots=True)
class ResponseFailure:
    """A response frame that cannot be trusted; ``code`` is the factory tool error to report."""

    code: FtErrorCode
    reason: str


class _State(Enum):
    SCAN = auto()
    STATUS = auto()
    LENGTH = auto()
    BODY = auto()
    DISCARD = auto()


class _LengthCheck(Enum):
    OK = auto()
    EMPTY = auto()
    OVERSIZE = auto()


class _TokenScanner:
    """Finds the earliest of several 8-byte tokens in a stream of noise.

    The C agent's matcher resets to the token's start on any mismatch, so noise such as
    ``mmbedprov`` or ``mbedmbedprov`` hides the real token from it. Here the whole buffer is
    searched, and only the longest tail that could still begin a token is kept between
    feeds, which finds every token whatever precedes it and however the bytes are chunked.
    """

    def __init__(self, tokens: Iterable[bytes]) -> None:
        self.tokens = tuple(tokens)
        for token in self.tokens:
            _check_token(token)
        self.skipped = 0

    def scan(self, buf: bytearray) -> bytes | None:
        """Drop noise from ``buf`` up to and including the first token; return it or ``None``."""
        found: tuple[int, bytes] | None = None
        for token in self.tokens:
            index = buf.find(token)
            if index >= 0 and (found is None or index < found[0]):
                found = (index, token)
        if found is not None:
            index, token = found
            self.skipped += index
            del buf[: index + TOKEN_SIZE]
            return token
        keep = self._partial_tail(buf)
        self.skipped += len(buf) - keep
        del buf[: len(buf) - keep]
        return None

    def _partial_tail(self, buf: bytearray) -> int:
        for size in range(min(len(buf), TOKEN_SIZE - 1), 0, -1):
            tail = bytes(buf[-size:])
            if any(token.startswith(tail) for token in self.tokens):
                return size
        return 0


_E = TypeVar("_E")


class _FrameReader(ABC, Generic[_E]):
    """What both frame readers share.

    Token scanning, the event queue, length checks, discarding oversize bodies without
    buffering them, and the body + SHA-256 tail. Subclasses read the words between the
    token and the body in :meth:`_step` and turn a complete body into an event in
    :meth:`_body_event`.
    """

    def __init__(self, tokens: Iterable[bytes], max_message_bytes: int, after_token: _State) -> None:
        self.max_message_bytes = max_message_bytes
        self._scanner = _TokenScanner(tokens)
        self._after_token = after_token
        self._token = b""
        self._buf = bytearray()
        self._events: deque[_E] = deque()
        self._state = _State.SCAN
        self._length = 0
        self._discard = 0

    @property
    def skipped_bytes(self) -> int:
        """How many noise bytes (device log output, line noise) were dropped looking for a token."""
        return self._scanner.skipped

    @property
    def in_frame(self) -> bool:
        """Whether a token was seen and its frame is not complete yet (a stall here is a timeout)."""
        return self._state is not _State.SCAN

    def feed(self, data: bytes) -> None:
        """Add received bytes and parse as far as they allow."""
        if self._state is _State.DISCARD:
            # Skip the oversize body straight from the input, never copying it into the buffer.
            taken = min(self._discard, len(data))
            self._discard -= taken
            data = data[taken:]
            if self._discard:
                return
            self._state = _State.SCAN
        self._buf += data
        self._parse()

    def next_event(self) -> _E | None:
        """Return the next complete event, or ``None`` when more bytes are needed."""
        return self._events.popleft() if self._events else None

    def _check_length(self, length: int) -> _LengthCheck:
        """Move on from a body length word: to the body, or past a refused frame."""
        if length == 0:
            self._state = _State.SCAN
            return _LengthCheck.EMPTY
        if length > self.max_message_bytes:
            self._discard = length + SIGNATURE_SIZE
            self._state = _State.DISCARD
            return _LengthCheck.OVERSIZE
        self._length = length
        self._state = _State.BODY
        return _LengthCheck.OK

    def _parse(self) -> None:
        buf = self._buf
        while True:
            state = self._state
            if state is _State.DISCARD:
                taken = min(self._discard, len(buf))
                del buf[:taken]
                self._discard -= taken
                if self._discard:
                    return
                self._state = _State.SCAN
            elif state is _State.BODY:
                end = self._length + SIGNATURE_SIZE
                if len(buf) < end:
                    return
                body, digest = bytes(buf[: self._length]), bytes(buf[self._length : end])
                del buf[:end]
                self._state = _State.SCAN
                self._events.append(self._body_event(body, signature(body) == digest))
            elif state is _State.SCAN:
                token = self._scanner.scan(buf)
                if token is None:
                    return
                self._token = token
                self._state = self._after_token
            else:
                # STATUS and LENGTH are both one little-endian u32 word.
                if len(buf) < LENGTH_SIZE:
                    return
                (word,) = _U32.unpack_from(buf)
                del buf[:LENGTH_SIZE]
                self._on_word(state, word)

    @abstractmethod
    def _on_word(self, state: _State, word: int) -> None:
        """Act on the STATUS or LENGTH word just read and move to the next state."""

    @abstractmethod
    def _body_event(self, body: bytes, intact: bool) -> _E:
        """The event for a complete body whose SHA-256 matched (``intact``) or not."""


class RequestReader(_FrameReader[Frame | FrameFailure]):
    """Device-side, sans-IO reader of request frames.

    Feed bytes with :meth:`feed` and pull :meth:`next_event` until it returns ``None``.
    Memory stays bounded by ``max_message_bytes``: noise is dropped as it is scanned, and the
    body of an oversize frame is discarded as it arrives without ever being buffered.

    Args:
        max_message_bytes: largest accepted message; longer frames yield a failure with
            :data:`OVERSIZE_STATUS`.
        tokens: the tokens to recognise (default :data:`KNOWN_TOKENS`).
    """

    def __init__(
        self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, tokens: Iterable[bytes] = KNOWN_TOKENS
    ) -> None:
        super().__init__(tokens, max_message_bytes, _State.LENGTH)

    @property
    def current_token(self) -> bytes:
        """The token of the frame being read (``FCC_TOKEN`` when none has been seen)."""
        return self._token or FCC_TOKEN

    def reset(self) -> None:
        """Forget any partial frame and buffered bytes (after a timeout or a new connection)."""
        self._buf.clear()
        self._events.clear()
        self._state = _State.SCAN
        self._token = b""
        self._discard = 0

    next_frame = _FrameReader.next_event
    """Alias used by docs/architecture.md."""

    def _fail(self, status: FtcdCommStatus, reason: str) -> None:
        self._events.append(FrameFailure(self._token, status, reason))

    def _on_word(self, state: _State, word: int) -> None:
        check = self._check_length(word)
        if check is _LengthCheck.EMPTY:
            self._fail(FtcdCommStatus.FAILED_TO_READ_MESSAGE_SIZE, "message length is 0")
        elif check is _LengthCheck.OVERSIZE:
            self._fail(
                OVERSIZE_STATUS,
                f"message of {word} bytes exceeds the {self.max_message_bytes}-byte maximum",
            )

    def _body_event(self, body: bytes, intact: bool) -> Frame | FrameFailure:
        if not intact:
            return FrameFailure(
                self._token, FtcdCommStatus.INCONSISTENT_MESSAGE_SIGNATURE, "SHA-256 of the message differs"
            )
        return Frame(self._token, body)


class ResponseReader(_FrameReader[Response | ResponseFailure]):
    """Factory-side, sans-IO reader of response frames.

    Scans past device log lines and other noise for ``token``, reads the status word and,
    only when it is 0, the length, body and SHA-256. A wrong hash gives a
    :class:`ResponseFailure` with :attr:`FtErrorCode.INVALID_CHECKSUM` (1002).

    Args:
        token: the token of the request this response answers.
        max_message_bytes: longest accepted body; longer ones fail with code 1001.
    """

    def __init__(
        self, token: bytes = FCC_TOKEN, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        super().__init__((token,), max_message_bytes, _State.STATUS)
        self._token = token

    def _on_word(self, state: _State, word: int) -> None:
        if state is _State.STATUS:
            if word != FtcdCommStatus.SUCCESS:
                self._events.append(Response(self._token, word, None))
                self._state = _State.SCAN
            else:
                self._state = _State.LENGTH
            return
        check = self._check_length(word)
        if check is _LengthCheck.EMPTY:
            self._events.append(
                ResponseFailure(FtErrorCode.DEVICE_COMMUNICATION, "status 0 with an empty body")
            )
        elif check is _LengthCheck.OVERSIZE:
            reason = f"response of {word} bytes exceeds the {self.max_message_bytes}-byte maximum"
            self._events.append(ResponseFailure(FtErrorCode.DEVICE_COMMUNICATION, reason))

    def _body_event(self, body: bytes, intact: bool) -> Response | ResponseFailure:
        if not intact:
            return ResponseFailure(FtErrorCode.INVALID_CHECKSUM, "SHA-256 of the response differs")
        return Response(self._token, 0, body)

"""CoAP message exchange over one secured session (RFC 7252 §4), on aiocoap's message codec.

aiocoap encodes and decodes messages (:class:`aiocoap.message.Message`); this module is
the part of the messaging layer a session needs on top of it, for both directions:

* incoming confirmable requests are answered with a piggybacked ACK; a duplicate
  (same message ID within the exchange lifetime) gets the cached answer again and is not
  served twice — a replayed Register does not register twice;
* outgoing confirmable requests (the bootstrap server's writes, a device's Register) get
  a fresh message ID and token, are retransmitted with exponential back-off, and resolve
  with the matching response or fail with :class:`CoapTimeout`;
* anything malformed is dropped and counted, never raised into the caller.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiocoap.error import UnparsableMessage
from aiocoap.message import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from provkit.errors import ServerError
from provkit.server.counters import Counters

ACK_TIMEOUT: Final = 2.0
"""Seconds before the first retransmission (RFC 7252 §4.8)."""
ACK_RANDOM_FACTOR: Final = 1.5
MAX_RETRANSMIT: Final = 4
EXCHANGE_LIFETIME: Final = 247.0
"""How long a message ID identifies one exchange (RFC 7252 §4.8.2)."""
DEDUP_ENTRIES: Final = 32
"""Answers kept per session for duplicate detection."""

CONTENT_LINK_FORMAT: Final = 40
CONTENT_SENML_CBOR: Final = 112

__all__ = ["CoapSession", "CoapTimeout", "Code", "Message", "Type", "decode"]


class CoapTimeout(ServerError, TimeoutError):
    """An outgoing confirmable request was not answered after every retransmission."""


def decode(data: bytes) -> Any | None:
    """Decode one CoAP message, or return ``None`` if the bytes are not one."""
    try:
        return Message.decode(data)
    except (UnparsableMessage, ValueError, IndexError, TypeError, UnicodeDecodeError):
        return None


def empty_ack(mid: int) -> bytes:
    """An empty ACK of message ``mid`` (acknowledges a confirmable response)."""
    ack = Message(code=Code.EMPTY)
    ack.mtype = Type.ACK
    ack.mid = mid
    return bytes(ack.encode())


@dataclass
class _Outgoing:
    message: Any
    raw: bytes
    future: asyncio.Future[Any]
    next_send: float
    timeout: float
    sends: int = 1


@dataclass
class CoapSession:
    """The CoAP messaging state of one peer.

    Args:
        send: sends one CoAP message (plaintext; the caller protects it).
        counters: where drops and duplicates are counted.
        retransmit_base: first retransmission timeout (RFC 7252's ACK_TIMEOUT).
    """

    send: Callable[[bytes], None]
    counters: Counters
    retransmit_base: float = ACK_TIMEOUT
    _next_mid: int = field(default_factory=lambda: random.randrange(0x10000))
    _answers: OrderedDict[int, tuple[float, bytes]] = field(default_factory=OrderedDict)
    _outgoing: dict[int, _Outgoing] = field(default_factory=dict)

    # ------------------------------------------------------------------ incoming
    def receive(self, data: bytes) -> Any | None:
        """Take one incoming message; return it if it is a new request to serve.

        Responses to outgoing requests resolve them; duplicates are answered from the
        cache; malformed messages and stray responses are dropped and counted.
        """
        message = decode(data)
        if message is None:
            self.counters.coap_malformed += 1
            return None
        if message.code.is_request():
            if message.mtype is Type.CON and message.mid in self._answers:
                self.counters.coap_duplicates += 1
                self.send(self._answers[message.mid][1])
                return None
            if message.mtype not in (Type.CON, Type.NON):
                self.counters.coap_malformed += 1
                return None
            return message
        if message.mtype in (Type.ACK, Type.RST):
            pending = self._outgoing.pop(message.mid, None)
            if pending is None or pending.future.done():
                self.counters.coap_stray += 1
                return None
            if message.mtype is Type.RST:
                pending.future.set_exception(CoapTimeout("the peer reset the request"))
            elif message.code is Code.EMPTY:
                # A separate response will follow; RFC 7252 §5.2.2 (not used by provkit's peers).
                self._outgoing[message.mid] = pending
                pending.next_send = float("inf")
            else:
                pending.future.set_result(message)
            return None
        if message.mtype in (Type.CON, Type.NON) and message.code.is_response():
            for mid, pending in list(self._outgoing.items()):
                if pending.message.token == message.token and not pending.future.done():
                    del self._outgoing[mid]
                    pending.future.set_result(message)
                    if message.mtype is Type.CON:
                        self._ack_empty(message.mid)
                    return None
        self.counters.coap_stray += 1
        return None

    def _ack_empty(self, mid: int) -> None:
        self.send(empty_ack(mid))

    def respond(self, request: Any, response: Any) -> None:
        """Answer ``request`` (piggybacked on the ACK of a confirmable one) and remember the answer."""
        response.token = request.token
        if request.mtype is Type.CON:
            response.mtype = Type.ACK
            response.mid = request.mid
        else:
            response.mtype = Type.NON
            response.mid = self._mid()
        raw = response.encode()
        if request.mtype is Type.CON:
            self._answers[request.mid] = (time.monotonic(), raw)
            while len(self._answers) > DEDUP_ENTRIES:
                self._answers.popitem(last=False)
        self.send(raw)

    # ------------------------------------------------------------------ outgoing
    def _mid(self) -> int:
        self._next_mid = (self._next_mid + 1) & 0xFFFF
        return self._next_mid

    def request(self, message: Any, *, timeout: float = 60.0) -> asyncio.Future[Any]:
        """Send a confirmable request; the future resolves with its response.

        The future fails with :class:`CoapTimeout` when every retransmission went
        unanswered or ``timeout`` seconds passed (checked by :meth:`tick`).
        """
        message.mtype = Type.CON
        message.mid = self._mid()
        message.token = os.urandom(4)
        raw = message.encode()
        now = time.monotonic()
        first = self.retransmit_base * random.uniform(1.0, ACK_RANDOM_FACTOR)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outgoing[message.mid] = _Outgoing(message, raw, future, now + first, now + timeout)
        self.send(raw)
        return future

    def tick(self, now: float) -> None:
        """Retransmit what is due, give up what has run out, forget old answers."""
        for mid, pending in list(self._outgoing.items()):
            if pending.future.done():
                del self._outgoing[mid]
            elif now >= pending.timeout or (now >= pending.next_send and pending.sends > MAX_RETRANSMIT):
                del self._outgoing[mid]
                pending.future.set_exception(CoapTimeout(f"no answer after {pending.sends} transmissions"))
            elif now >= pending.next_send:
                pending.sends += 1
                pending.next_send = now + self.retransmit_base * 2 ** (pending.sends - 1)
                self.counters.coap_retransmissions += 1
                self.send(pending.raw)
        while self._answers:
            mid, (stamp, _) = next(iter(self._answers.items()))
            if now - stamp < EXCHANGE_LIFETIME:
                break
            del self._answers[mid]

    def close(self) -> None:
        """Fail every outstanding request (the session is gone)."""
        for pending in self._outgoing.values():
            if not pending.future.done():
                pending.future.set_exception(CoapTimeout("the session was closed"))
        self._outgoing.clear()

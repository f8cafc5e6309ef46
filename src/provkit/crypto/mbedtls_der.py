"""The DER reading primitives of Mbed TLS's ``library/asn1parse.c``, failure for failure.

A device answers a malformed key or certificate with the status its Mbed TLS parser
reaches, so provkit's virtual device has to fail where Mbed TLS 2.28 fails and for the
same reason: a length running past the data is ``OUT_OF_DATA``, a wrong tag
``UNEXPECTED_TAG``, a non-canonical or negative integer ``INVALID_LENGTH``, and so on.
This module reads just enough DER for that (tags, lengths, small integers, bit strings,
algorithm identifiers); :mod:`provkit.crypto.mbedtls_pk` and
:mod:`provkit.crypto.mbedtls_x509` build the key and certificate rules on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, Generic, TypeVar

from provkit.errors import CryptoError

SEQUENCE: Final = 0x30
SET: Final = 0x31
INTEGER: Final = 0x02
BIT_STRING: Final = 0x03
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OID: Final = 0x06
CONTEXT_0: Final = 0xA0
CONTEXT_1: Final = 0xA1

_INT_BYTES: Final = 4  # sizeof(int) on the devices


FaultT = TypeVar("FaultT", bound=Enum)


class DeviceRefusal(CryptoError, Generic[FaultT]):
    """Data a device's Mbed TLS refuses; ``fault`` says which error the device reports.

    Attributes:
        fault: the kind of refusal (its value is the message's start).
    """

    def __init__(self, fault: FaultT, detail: str = "") -> None:
        super().__init__(f"{fault.value}{': ' + detail if detail else ''}")
        self.fault: FaultT = fault


class Asn1Fault(Enum):
    """``MBEDTLS_ERR_ASN1_*``: why a DER read failed."""

    OUT_OF_DATA = "out of data"
    UNEXPECTED_TAG = "unexpected tag"
    INVALID_LENGTH = "invalid length"
    LENGTH_MISMATCH = "length mismatch"
    INVALID_DATA = "invalid data"


class Asn1Error(CryptoError):
    """A DER read failed the way Mbed TLS's reader fails (internal to the ``mbedtls_*`` modules)."""

    def __init__(self, fault: Asn1Fault) -> None:
        super().__init__(fault.value)
        self.fault = fault


@dataclass(frozen=True, slots=True)
class Algorithm:
    """An AlgorithmIdentifier as ``mbedtls_asn1_get_alg`` returns it.

    Attributes:
        oid: the algorithm OID's content bytes.
        params_tag: the parameters' tag, 0 when there are none.
        params: the parameters' content bytes.
    """

    oid: bytes
    params_tag: int
    params: bytes


class Reader:
    """A cursor over ``data[pos:end]``, like Mbed TLS's ``unsigned char **p`` and ``end``."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def at_end(self) -> bool:
        """Whether the cursor reached ``end``."""
        return self.pos >= self.end

    def peek(self) -> int | None:
        """The next byte, or ``None`` at the end."""
        return None if self.at_end() else self.data[self.pos]

    def length(self) -> int:
        """``mbedtls_asn1_get_len``: a definite length that fits the remaining bytes."""
        if self.end - self.pos < 1:
            raise Asn1Error(Asn1Fault.OUT_OF_DATA)
        first = self.data[self.pos]
        if first < 0x80:
            size = first
            self.pos += 1
        elif 0x81 <= first <= 0x84:
            count = first & 0x7F
            if self.end - self.pos < count + 1:
                raise Asn1Error(Asn1Fault.OUT_OF_DATA)
            size = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + count], "big")
            self.pos += count + 1
        else:
            raise Asn1Error(Asn1Fault.INVALID_LENGTH)
        if size > self.end - self.pos:
            raise Asn1Error(Asn1Fault.OUT_OF_DATA)
        return size

    def tag(self, tag: int) -> int:
        """``mbedtls_asn1_get_tag``: expect ``tag`` and return the content length."""
        if self.end - self.pos < 1:
            raise Asn1Error(Asn1Fault.OUT_OF_DATA)
        if self.data[self.pos] != tag:
            raise Asn1Error(Asn1Fault.UNEXPECTED_TAG)
        self.pos += 1
        return self.length()

    def enter(self, tag: int) -> Reader:
        """Read a constructed ``tag`` and return a reader over its content (this one skips it)."""
        size = self.tag(tag)
        inner = Reader(self.data, self.pos, self.pos + size)
        self.pos += size
        return inner

    def take(self, tag: int) -> bytes:
        """Read a primitive ``tag`` and return its content bytes."""
        size = self.tag(tag)
        content = self.data[self.pos : self.pos + size]
        self.pos += size
        return content

    def small_int(self) -> int:
        """``mbedtls_asn1_get_int``: a non-negative INTEGER that fits a C ``int``."""
        content = self.take(INTEGER)
        if not content or content[0] & 0x80:
            raise Asn1Error(Asn1Fault.INVALID_LENGTH)
        content = content.lstrip(b"\0")
        if len(content) > _INT_BYTES or (len(content) == _INT_BYTES and content[0] & 0x80):
            raise Asn1Error(Asn1Fault.INVALID_LENGTH)
        return int.from_bytes(content, "big")

    def bitstring_null(self) -> bytes:
        """``mbedtls_asn1_get_bitstring_null``: a BIT STRING with no unused bits; its bytes."""
        content = self.take(BIT_STRING)
        if not content or content[0] != 0:
            raise Asn1Error(Asn1Fault.INVALID_DATA)
        return content[1:]

    def algorithm(self) -> Algorithm:
        """``mbedtls_asn1_get_alg``: SEQUENCE { OID, parameters OPTIONAL } filling its SEQUENCE."""
        inner = self.enter(SEQUENCE)
        if inner.at_end():
            raise Asn1Error(Asn1Fault.OUT_OF_DATA)
        oid = inner.take(OID)
        if inner.at_end():
            return Algorithm(oid, 0, b"")
        params_tag = inner.data[inner.pos]
        inner.pos += 1
        size = inner.length()
        params = inner.data[inner.pos : inner.pos + size]
        inner.pos += size
        if not inner.at_end():
            raise Asn1Error(Asn1Fault.LENGTH_MISMATCH)
        return Algorithm(oid, params_tag, params)


def oid_bytes(dotted: str) -> bytes:
    """The DER content bytes of an OID given in dotted form (``"1.2.840.10045.2.1"``)."""
    arcs = [int(arc) for arc in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def der_length(size: int) -> bytes:
    """A DER definite length."""
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element."""
    return bytes([tag]) + der_length(len(content)) + content

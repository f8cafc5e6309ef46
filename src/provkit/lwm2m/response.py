"""The LwM2M acceptor's answer: a small CBOR map ``{"Result": int, "Reason": text, "Written": int}``.

It is the body of the transport's success frame for an ``lwm2mfpv`` request (see
``docs/lwm2m.md``). ``Result`` 0 means the configuration was stored; any other value
means nothing changed on the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, unique

from provkit.errors import SenmlError
from provkit.lwm2m import cbor


@unique
class AcceptStatus(IntEnum):
    """Result codes of the LwM2M acceptor."""

    OK = 0
    MALFORMED = 1
    """Not CBOR, not an array of maps, or a forbidden label / wrong value type (CoAP 4.00)."""
    BAD_PATH = 2
    """A path is malformed, too long or stops above a resource (4.00)."""
    NOT_FOUND = 3
    """The object or resource is not supported by the device (4.04)."""
    BAD_VALUE = 4
    """A value does not fit the resource's type or range."""
    VALIDATION_FAILED = 5
    """The Security/Server rules rejected the configuration."""
    STORAGE_ERROR = 6
    """Secure storage failed; the previous configuration is intact."""


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """The acceptor's result.

    Attributes:
        status: the result code.
        reason: empty on success, otherwise why the blob was refused.
        written: number of resources stored.
    """

    status: AcceptStatus
    reason: str = ""
    written: int = 0

    @property
    def ok(self) -> bool:
        """Whether the configuration was stored."""
        return self.status is AcceptStatus.OK

    def encode(self) -> bytes:
        """Return the CBOR response body."""
        return cbor.dumps({"Result": int(self.status), "Reason": self.reason, "Written": self.written})

    @classmethod
    def decode(cls, data: bytes) -> AcceptResult:
        """Parse a response body.

        Raises:
            SenmlError: not a result map.
        """
        top = cbor.loads(data)
        if not isinstance(top, cbor.Pairs):
            raise SenmlError("LwM2M response is not a CBOR map")
        fields = dict(top.items)
        result, reason, written = fields.get("Result"), fields.get("Reason", ""), fields.get("Written", 0)
        if not isinstance(result, int) or isinstance(result, bool) or not isinstance(reason, str):
            raise SenmlError("LwM2M response lacks an integer Result and a text Reason")
        try:
            status = AcceptStatus(result)
        except ValueError as exc:
            raise SenmlError(f"LwM2M response has unknown Result {result}") from exc
        return cls(status, reason, written if isinstance(written, int) else 0)

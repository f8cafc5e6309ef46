"""Checking a device's response bundle and describing it as a :class:`DeviceResponseStatus`."""

from __future__ import annotations

from provkit.codes import FcuErrorCode
from provkit.errors import FactoryError
from provkit.factory.results import DeviceResponseStatus, ErrorInfo, WarningInfo
from provkit.wire.bundle import SCHEME_VERSION
from provkit.wire.response import BundleResponse, decode_response


def read_response(device_response: bytes, *, expected_sid: str | None = None) -> BundleResponse:
    """Decode a device response and check its protocol version and session id.

    Raises:
        ResponseDecodeError: 180 when a mandatory field is missing (100 if not CBOR).
        FactoryError: 110 when the device speaks another scheme version; 100 when the SID
            differs from the one sent.
    """
    if not device_response:
        raise FactoryError.from_code(
            FcuErrorCode.RESPONSE_FIELD_MISSING, "ReturnStatus", hint="the device response is empty"
        )
    if not isinstance(device_response, bytes | bytearray | memoryview):
        raise FactoryError.from_code(
            FcuErrorCode.GENERAL,
            f"the device response must be bytes, not {type(device_response).__name__}",
            hint="pass the CBOR bytes the device sent back",
        )
    response = decode_response(bytes(device_response))
    if response.scheme_version != SCHEME_VERSION:
        raise FactoryError.from_code(
            FcuErrorCode.PROTOCOL_VERSION_MISMATCH,
            response.scheme_version or "<none>",
            SCHEME_VERSION,
            hint="the device runs an incompatible factory client",
        )
    if expected_sid is not None and response.return_status == 0 and response.sid != expected_sid:
        raise FactoryError.from_code(
            FcuErrorCode.GENERAL,
            f"device answered session {response.sid!r}, expected {expected_sid!r}",
            hint="another tool talks to this device; retry the injection",
        )
    return response


def describe(response: BundleResponse) -> DeviceResponseStatus:
    """Turn a decoded response into the FCU result object."""
    message = response.info_message.rstrip("\n").rstrip("\x00")
    errors = [] if response.return_status == 0 else [ErrorInfo(response.return_status, message)]
    warnings = [WarningInfo(response.return_status, text) for text in response.warnings]
    return DeviceResponseStatus(response.return_status, message, errors, warnings)


def verify_device_response(device_response: bytes) -> DeviceResponseStatus:
    """Decode and describe a device response (see :func:`read_response` for the errors)."""
    return describe(read_response(device_response))

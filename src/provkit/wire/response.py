"""Response bundle: FCC's exact encoding (device side) and a lenient decoder (factory side).

Encoding follows ``encode_response_params()`` of client ≥ 3.4.0
(``fcc-bundle-handler/source/fcc_bundle_handler.c`` in PelionIoT/mbed-cloud-client):
an indefinite-length map ``0xBF … 0xFF`` with keys in the order ``Csrs``,
``SchemeVersion``, ``SID``, ``ReturnStatus``, ``InfoMessage``, ``WarningInfo``;
``Csrs`` is a definite array of indefinite maps ``{PrKN, Data}``. The whole response
must fit FCC's buffer: 512 bytes without CSRs, 2560 with.

Decoding accepts every format FCC ever produced: definite or indefinite maps, text or
byte strings, a trailing NUL, and the older key orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from provkit.codes import FccStatus, FcuErrorCode
from provkit.errors import BundleEncodeError, ResponseDecodeError
from provkit.wire.cbor_strict import CborDecodeError, CborMap, encode_head, loads

MAX_RESPONSE_WITHOUT_CSRS: Final = 512
MAX_RESPONSE_WITH_CSRS: Final = 2560

CSRS_KEY: Final = "Csrs"
SCHEME_VERSION_KEY: Final = "SchemeVersion"
SID_KEY: Final = "SID"
RETURN_STATUS_KEY: Final = "ReturnStatus"
INFO_MESSAGE_KEY: Final = "InfoMessage"
WARNING_INFO_KEY: Final = "WarningInfo"
PRKN_KEY: Final = "PrKN"
DATA_KEY: Final = "Data"


class ResponseTooLargeError(BundleEncodeError):
    """The response does not fit FCC's buffer; the handler answers status 21 without a body.

    Attributes:
        fcc_status: always ``FccStatus.BUNDLE_RESPONSE_ERROR`` (21).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, code=int(FccStatus.BUNDLE_RESPONSE_ERROR))
        self.fcc_status = FccStatus.BUNDLE_RESPONSE_ERROR


@dataclass(frozen=True, slots=True)
class CsrResult:
    """One entry of the response's ``Csrs``.

    Attributes:
        prkn: the generated private key's name.
        data: the DER PKCS#10 CSR.
    """

    prkn: str
    data: bytes


@dataclass(frozen=True, slots=True)
class BundleResponse:
    """A device's answer to one request bundle.

    Attributes:
        return_status: the ``fcc_status_e`` value (0 = success).
        info_message: ``"The Factory process succeeded"`` plus a newline or ``<prefix><item>``.
        warning_info: every warning as ``<prefix><item>`` plus a newline, concatenated; ``""`` if none.
        sid: the request's session id, echoed; ``None`` if the request had none.
        csrs: CSRs generated for the request's ``CsrReqs``.
        scheme_version: ``"0.0.1"`` (``""`` if a decoded response had none).
    """

    return_status: int
    info_message: str
    warning_info: str = ""
    sid: str | None = None
    csrs: tuple[CsrResult, ...] = ()
    scheme_version: str = "0.0.1"

    @property
    def warnings(self) -> list[str]:
        """The individual warnings, without their trailing newlines."""
        return [line for line in self.warning_info.split("\n") if line]

    @property
    def succeeded(self) -> bool:
        """Whether the device reported success (``ReturnStatus`` 0)."""
        return self.return_status == FccStatus.SUCCESS


def format_message(prefix: str, item: str = "") -> str:
    """Build an InfoMessage or single warning the way FCC does: ``prefix + item``."""
    return prefix + item


def format_warnings(warnings: Iterable[str | tuple[str, str]]) -> str:
    """Build ``WarningInfo``: each warning (text or ``(prefix, item)``) followed by a newline."""
    parts = [w if isinstance(w, str) else format_message(*w) for w in warnings]
    return "".join(part + "\n" for part in parts)


def split_message(message: str) -> tuple[str, str]:
    """Split an InfoMessage or warning at its first ``:`` into ``(prefix, item)``.

    The prefix keeps its colon, so it compares equal to ``FccStatus.prefix`` and the
    :class:`~provkit.codes.FccWarning` values. A trailing newline is dropped; a message
    without a colon (the success text, the too-many-CSRs text) is all prefix.

    Example:
        ``split_message("Item does not exist:mbed.EndpointName")`` →
        ``("Item does not exist:", "mbed.EndpointName")``.
    """
    text = message.rstrip("\n")
    head, colon, tail = text.partition(":")
    if not colon:
        return text, ""
    return head + colon, tail


# ---------------------------------------------------------------- encoder


def _text(value: str) -> bytes:
    # Names a device read from a bundle may hold bytes that are not UTF-8; FCC echoes them as read.
    raw = value.encode("utf-8", "surrogateescape")
    return encode_head(3, len(raw)) + raw


def encode_response(resp: BundleResponse, *, csr_buffer: bool | None = None) -> bytes:
    """Encode a response exactly as FCC does (``encode_response_params()``).

    ``Csrs`` appears only when there are CSRs, ``SID`` only when set, ``WarningInfo``
    only when non-empty.

    Args:
        resp: the response to encode.
        csr_buffer: whether FCC had allocated its CSR response buffer (the bundle's
            ``CsrReqs`` reached processing): the 2560-byte limit applies even to an error
            response, and a successful one carries ``Csrs`` even when the request list
            was empty. Default: whether ``resp`` has CSRs.

    Returns:
        The CBOR bytes, e.g. the 80-byte success response.

    Raises:
        ResponseTooLargeError: (a :class:`~provkit.errors.BundleEncodeError`) the
            result exceeds 512 bytes (2560 with CSRs); FCC then answers status 21.
        BundleEncodeError: a negative ``return_status``.
    """
    if resp.return_status < 0:
        raise BundleEncodeError(f"ReturnStatus must be unsigned, got {resp.return_status}")
    with_csrs = bool(resp.csrs) if csr_buffer is None else csr_buffer
    out = bytearray(b"\xbf")
    if resp.csrs or (with_csrs and resp.return_status == FccStatus.SUCCESS):
        out += _text(CSRS_KEY) + encode_head(4, len(resp.csrs))
        for csr in resp.csrs:
            data = bytes(csr.data)
            out += b"\xbf" + _text(PRKN_KEY) + _text(csr.prkn)
            out += _text(DATA_KEY) + encode_head(2, len(data)) + data + b"\xff"
    out += _text(SCHEME_VERSION_KEY) + _text(resp.scheme_version)
    if resp.sid is not None:
        out += _text(SID_KEY) + _text(resp.sid)
    out += _text(RETURN_STATUS_KEY) + encode_head(0, int(resp.return_status))
    out += _text(INFO_MESSAGE_KEY) + _text(resp.info_message)
    if resp.warning_info:
        out += _text(WARNING_INFO_KEY) + _text(resp.warning_info)
    out += b"\xff"
    limit = MAX_RESPONSE_WITH_CSRS if with_csrs or resp.csrs else MAX_RESPONSE_WITHOUT_CSRS
    if len(out) > limit:
        raise ResponseTooLargeError(f"response is {len(out)} bytes; FCC's buffer holds {limit}")
    return bytes(out)


# ---------------------------------------------------------------- decoder


def _missing(field: str) -> ResponseDecodeError:
    return ResponseDecodeError(FcuErrorCode.RESPONSE_FIELD_MISSING.format(field))


def _malformed(detail: str) -> ResponseDecodeError:
    return ResponseDecodeError(FcuErrorCode.GENERAL.format(detail), code=int(FcuErrorCode.GENERAL))


def _as_text(value: object, field: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed(f"device response field {field} is not UTF-8") from exc
    if not isinstance(value, str):
        raise _malformed(f"device response field {field} is not a string")
    # Clients up to 3.3.0 counted the C string's NUL terminator into the length.
    return value.removesuffix("\x00")


def decode_response(data: bytes) -> BundleResponse:
    """Decode a device response leniently (every FCC generation since R1.3.0).

    Args:
        data: the CBOR body of a response frame.

    Returns:
        The response; ``decode_response(encode_response(r)) == r``.

    Raises:
        ResponseDecodeError: code 180 when ``ReturnStatus`` or ``InfoMessage`` is
            missing; code 100 when the bytes are not a CBOR map or a field has the
            wrong type.
    """
    try:
        top = loads(data, strict=False, raw_text=True)
    except CborDecodeError as exc:
        raise _malformed(f"device response is not valid CBOR ({exc})") from exc
    if not isinstance(top, CborMap):
        raise _malformed("device response is not a CBOR map")
    fields: dict[str, object] = {}
    for key, value in top:
        name = _as_text(key, "name") if isinstance(key, str | bytes) else None
        if name is not None and name not in fields:
            fields[name] = value
    if RETURN_STATUS_KEY not in fields:
        raise _missing(RETURN_STATUS_KEY)
    if INFO_MESSAGE_KEY not in fields:
        raise _missing(INFO_MESSAGE_KEY)
    status = fields[RETURN_STATUS_KEY]
    if type(status) is not int or status < 0:
        raise _malformed("device response ReturnStatus is not an unsigned integer")
    sid = fields.get(SID_KEY)
    return BundleResponse(
        return_status=status,
        info_message=_as_text(fields[INFO_MESSAGE_KEY], INFO_MESSAGE_KEY),
        warning_info=_as_text(fields.get(WARNING_INFO_KEY, ""), WARNING_INFO_KEY),
        sid=None if sid is None else _as_text(sid, SID_KEY),
        csrs=_decode_csrs(fields.get(CSRS_KEY, [])),
        scheme_version=_as_text(fields.get(SCHEME_VERSION_KEY, ""), SCHEME_VERSION_KEY),
    )


def _decode_csrs(value: object) -> tuple[CsrResult, ...]:
    if not isinstance(value, list):
        raise _malformed("device response Csrs is not an array")
    results = []
    for entry in value:
        if not isinstance(entry, CborMap):
            raise _malformed("device response Csrs entry is not a map")
        entry_fields = {
            _as_text(k, "Csrs key"): v for k, v in reversed(entry.pairs) if isinstance(k, str | bytes)
        }
        if PRKN_KEY not in entry_fields:
            raise _missing(f"{CSRS_KEY}.{PRKN_KEY}")
        if DATA_KEY not in entry_fields:
            raise _missing(f"{CSRS_KEY}.{DATA_KEY}")
        csr = entry_fields[DATA_KEY]
        if not isinstance(csr, bytes):
            raise _malformed("device response CSR data is not a byte string")
        results.append(CsrResult(_as_text(entry_fields[PRKN_KEY], PRKN_KEY), csr))
    return tuple(results)

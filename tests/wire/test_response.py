"""Response encoding limits and lenient decoding of every FCC response generation."""

from __future__ import annotations

import cbor2
import pytest

from provkit.codes import SUCCESS_INFO_MESSAGE, FccStatus, FccWarning, FcuErrorCode
from provkit.errors import BundleEncodeError, ResponseDecodeError
from provkit.wire.response import (
    BundleResponse,
    CsrResult,
    ResponseTooLargeError,
    decode_response,
    encode_response,
    format_warnings,
    split_message,
)


def test_warnings_property_and_builder() -> None:
    """format_warnings ends every warning in a newline; .warnings splits them back."""
    text = format_warnings([(FccWarning.ITEM_NOT_SET, "mbed.UpdateAuthCert"), "Item empty:x"])
    assert text == "Item not set:mbed.UpdateAuthCert\nItem empty:x\n"
    assert BundleResponse(0, SUCCESS_INFO_MESSAGE, text).warnings == [
        "Item not set:mbed.UpdateAuthCert",
        "Item empty:x",
    ]
    assert BundleResponse(0, SUCCESS_INFO_MESSAGE).warnings == []


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("Item does not exist:mbed.EndpointName", ("Item does not exist:", "mbed.EndpointName")),
        ("General error:", ("General error:", "")),
        (SUCCESS_INFO_MESSAGE, ("The Factory process succeeded", "")),
        ("URI format incorrect:coap://x:5684", ("URI format incorrect:", "coap://x:5684")),
        ("Item not set:mbed.ClassId\n", ("Item not set:", "mbed.ClassId")),
    ],
)
def test_split_message(message: str, parts: tuple[str, str]) -> None:
    """Messages split at the first colon; the prefix keeps its colon."""
    assert split_message(message) == parts


def test_split_prefix_matches_status_prefix() -> None:
    """The split prefix equals the FccStatus prefix the device used."""
    assert split_message(FccStatus.ITEM_NOT_EXIST.prefix + "x")[0] == FccStatus.ITEM_NOT_EXIST.prefix


def test_512_byte_limit_without_csrs() -> None:
    """A response of exactly 512 bytes is accepted; one more byte raises status 21."""
    base = len(encode_response(BundleResponse(1, "")))
    # InfoMessage payload n adds n bytes plus a 2-byte head once n >= 24 (n < 256).
    fits = BundleResponse(1, "x" * (512 - base - 2))
    assert len(encode_response(fits)) == 512
    with pytest.raises(ResponseTooLargeError) as info:
        encode_response(BundleResponse(1, "x" * (512 - base - 1)))
    assert info.value.fcc_status == FccStatus.BUNDLE_RESPONSE_ERROR
    assert isinstance(info.value, BundleEncodeError)


def test_2560_byte_limit_with_csrs() -> None:
    """With CSRs the limit is 2560 bytes."""
    assert len(encode_response(BundleResponse(0, "ok", csrs=(CsrResult("k", bytes(2000)),)))) < 2560
    with pytest.raises(ResponseTooLargeError):
        encode_response(BundleResponse(0, "ok", csrs=(CsrResult("k", bytes(2600)),)))


def test_negative_status_refused() -> None:
    """ReturnStatus is unsigned."""
    with pytest.raises(BundleEncodeError):
        encode_response(BundleResponse(-1, "x"))


def test_decode_old_definite_format_with_byte_strings_and_nul() -> None:
    """R1.3.0 responses (definite map, byte strings, NUL-terminated scheme) decode."""
    old = cbor2.dumps(
        {"ReturnStatus": 25, "SchemeVersion": b"0.0.1\x00", "InfoMessage": b"Item does not exist:x",
         "WarningInfo": b"Item not set:y\n"}
    )  # fmt: skip
    resp = decode_response(old)
    assert resp == BundleResponse(25, "Item does not exist:x", "Item not set:y\n")


def test_decode_3x_key_order_with_text_nul() -> None:
    """1.3.3–3.3.0 responses (SchemeVersion text with NUL, SID and Csrs before status) decode."""
    old = cbor2.dumps(
        {"SchemeVersion": "0.0.1\x00", "SID": "s", "Csrs": [{"PrKN": "k", "Data": b"\x30"}],
         "ReturnStatus": 0, "InfoMessage": SUCCESS_INFO_MESSAGE}
    )  # fmt: skip
    assert decode_response(old) == BundleResponse(
        0, SUCCESS_INFO_MESSAGE, sid="s", csrs=(CsrResult("k", b"\x30"),)
    )


@pytest.mark.parametrize("field", ["ReturnStatus", "InfoMessage"])
def test_missing_field_is_error_180(field: str) -> None:
    """A response without ReturnStatus or InfoMessage raises code 180 naming the field."""
    fields = {"SchemeVersion": "0.0.1", "ReturnStatus": 0, "InfoMessage": "x"}
    del fields[field]
    with pytest.raises(ResponseDecodeError) as info:
        decode_response(cbor2.dumps(fields))
    assert info.value.code == FcuErrorCode.RESPONSE_FIELD_MISSING == 180
    assert str(info.value) == FcuErrorCode.RESPONSE_FIELD_MISSING.format(field)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xbf", b"\x01", cbor2.dumps([1]), cbor2.dumps({"ReturnStatus": "0", "InfoMessage": "x"}),
     cbor2.dumps({"ReturnStatus": 0, "InfoMessage": 5}),
     cbor2.dumps({"ReturnStatus": 0, "InfoMessage": b"\xff"}),
     cbor2.dumps({"ReturnStatus": 0, "InfoMessage": "x", "Csrs": [{"PrKN": "k", "Data": "x"}]}),
     cbor2.dumps({"ReturnStatus": 0, "InfoMessage": "x", "Csrs": [{"PrKN": "k"}]})],
)  # fmt: skip
def test_malformed_responses_raise_response_decode_error(data: bytes) -> None:
    """Anything that is not a response raises ResponseDecodeError, never another exception."""
    with pytest.raises(ResponseDecodeError):
        decode_response(data)

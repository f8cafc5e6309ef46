"""Golden bytes: provkit's encoders against hand-assembled vectors (tests/vectors/wire)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provkit.codes import SUCCESS_INFO_MESSAGE
from provkit.wire.bundle import (
    Bundle,
    ConfigParam,
    CsrRequest,
    StorageMedium,
    decode_bundle,
    encode_bundle,
)
from provkit.wire.response import BundleResponse, CsrResult, decode_response, encode_response

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors" / "wire"


def load_hex(name: str) -> bytes:
    """Return the bytes of a vector file with comments and whitespace removed."""
    lines = (line.split("#", 1)[0] for line in (VECTOR_DIR / name).read_text("utf-8").splitlines())
    return bytes.fromhex("".join("".join(lines).split()))


RESPONSES = {
    "response_success.hex": BundleResponse(0, SUCCESS_INFO_MESSAGE),
    "response_error_sid.hex": BundleResponse(25, "Item does not exist:mbed.EndpointName", sid="sess-1"),
    "response_warnings.hex": BundleResponse(
        0,
        SUCCESS_INFO_MESSAGE,
        warning_info=(
            "Bootstrap mode not activated:mbed.UseBootstrap\nItem redundant:mbed.BootstrapDevicePrivateKey\n"
        ),
    ),
    "response_csrs.hex": BundleResponse(
        0, SUCCESS_INFO_MESSAGE, sid="s1", csrs=(CsrResult("dev.key", bytes.fromhex("3003020105")),)
    ),
}

REQUESTS = {
    "request_minimal.hex": Bundle(
        config_params=(ConfigParam("mbed.UseBootstrap", 1), ConfigParam("mbed.EndpointName", "dev-001")),
        verify=True,
    ),
    "request_csr.hex": Bundle(
        csr_requests=(
            CsrRequest(
                "dev.key",
                "CN=dev-001",
                1,
                key_usage=1,
                ext_key_usage=4,
                storage=StorageMedium("Device", "Device"),
            ),
        ),
        sid="s1",
        keep_alive=True,
        verify=False,
    ),
    "request_bignum.hex": Bundle(
        config_params=(ConfigParam("mbed.AccountID", 0xA65369B6589987655264),), entropy=bytes(48)
    ),
}


def test_success_response_is_the_80_byte_example() -> None:
    """The success response is exactly the 80 bytes of docs/wire-format.md."""
    data = encode_response(BundleResponse(0, SUCCESS_INFO_MESSAGE))
    assert len(data) == 80
    assert data == load_hex("response_success.hex")
    assert data[0] == 0xBF and data[-1] == 0xFF


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_matches_golden_bytes(name: str) -> None:
    """Each response encodes to its hand-assembled bytes and decodes back to the model."""
    golden = load_hex(name)
    assert encode_response(RESPONSES[name]) == golden
    assert decode_response(golden) == RESPONSES[name]


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_matches_golden_bytes(name: str) -> None:
    """Each request bundle encodes to its hand-assembled bytes and decodes back to the model."""
    golden = load_hex(name)
    assert encode_bundle(REQUESTS[name]) == golden
    assert decode_bundle(golden) == REQUESTS[name]

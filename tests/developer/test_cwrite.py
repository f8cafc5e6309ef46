"""``mbed_cloud_dev_credentials.c`` written by provkit parses back to the same values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from developer.cfiles import DevCredentials
from provkit.developer import parse_developer_credentials
from provkit.developer.cwrite import c_string, render_developer_credentials

BASE = DevCredentials().values


@settings(max_examples=60, deadline=None)
@given(
    manufacturer=st.binary(max_size=40).filter(lambda b: b"\0" not in b),
    model=st.text(max_size=30).map(str.encode).filter(lambda b: b"\0" not in b),
    memory=st.integers(min_value=0, max_value=2**32 - 1),
    header=st.text(
        alphabet=st.characters(blacklist_characters="*\0", blacklist_categories=("Cs",)), max_size=80
    ),
)
def test_any_values_round_trip(manufacturer: bytes, model: bytes, memory: int, header: str) -> None:
    """Any bytes in the strings (quotes, backslashes, ??, non-ASCII), any uint32, any header survive."""
    values = BASE | {
        "MBED_CLOUD_DEV_MANUFACTURER": manufacturer,
        "MBED_CLOUD_DEV_MODEL_NUMBER": model,
        "MBED_CLOUD_DEV_MEMORY_TOTAL_KB": memory.to_bytes(4, "little"),
    }
    assert parse_developer_credentials(render_developer_credentials(values, header=header)) == values


def test_common_values_carry_no_escape_for_mbl_cli() -> None:
    """Hex ids, a URI with ?aid= and plain names stay literal (mbl-cli did not decode escapes)."""
    assert c_string(b"coaps://127.0.0.1:5784?aid=0158a1b2") == '"coaps://127.0.0.1:5784?aid=0158a1b2"'
    assert c_string(b'a"b\\c??=d\n') == '"a\\"b\\\\c?\\?=d\\012"'
    text = render_developer_credentials(BASE)
    assert (
        "#include <inttypes.h>" in text
        and "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE_SIZE = sizeof(" in text
    )

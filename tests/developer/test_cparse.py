"""The C credentials parser: vectors, every mbl-cli fault of docs/developer.md, C details."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from developer.cfiles import DevCredentials, UpdateResources, replace_array
from provkit.developer import parse_c_variables, parse_developer_credentials, parse_update_resources
from provkit.developer.ctokens import source_text
from provkit.errors import CredentialsParseError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "developer"
EXPECTED = json.loads((VECTORS / "expected.json").read_text())
DEV_TEXT = (VECTORS / "mbed_cloud_dev_credentials.c").read_text()
V1_TEXT = (VECTORS / "update_default_resources_v1.c").read_text()
V2_TEXT = (VECTORS / "update_default_resources_v2.c").read_text()


def _digest(values: dict[str, bytes]) -> dict[str, list[object]]:
    return {k: [len(v), hashlib.sha256(v).hexdigest()] for k, v in sorted(values.items())}


@pytest.mark.parametrize(
    ("file", "parse"),
    [
        ("mbed_cloud_dev_credentials.c", parse_developer_credentials),
        ("update_default_resources_v1.c", parse_update_resources),
        ("update_default_resources_v2.c", parse_update_resources),
    ],
)
def test_vectors_parse_to_the_generated_values(file, parse):
    """Each vector yields exactly the values it was generated from."""
    assert _digest(parse((VECTORS / file).read_text())) == EXPECTED[file]


# ---------------------------------------------------------------- mbl-cli faults


def test_fault_update_file_with_inttypes_include_parses():
    """manifest-tool 2.6.2 writes <inttypes.h>; mbl-cli required exactly <stdint.h> and crashed."""
    assert "#include <inttypes.h>" in V2_TEXT
    assert len(parse_update_resources(V2_TEXT)["arm_uc_default_certificate"]) > 300


def test_fault_dev_credentials_with_stdint_or_both_includes_parse():
    """mbl-cli needed the text to split into exactly two parts on one include line."""
    both = DEV_TEXT.replace("#include <inttypes.h>", "#include <stdint.h>\n#include <inttypes.h>")
    twice = "// see #include <inttypes.h> below\n" + DEV_TEXT
    stdint = DEV_TEXT.replace("#include <inttypes.h>", "#include <stdint.h>")
    for text in (both, twice, stdint):
        assert parse_developer_credentials(text) == parse_developer_credentials(DEV_TEXT)


def test_fault_zero_placeholder_is_not_ascii_zero():
    """2.x's fingerprint { 0 } was stored as the ASCII b"0"; it is a placeholder and is dropped."""
    values = parse_update_resources(V2_TEXT)
    assert "arm_uc_default_fingerprint" not in values
    assert b"0" not in values.values()


def test_fault_update_public_key_is_65_bytes():
    """The 2.x-only uncompressed public key is parsed as 65 bytes starting 0x04."""
    key = parse_update_resources(V2_TEXT)["arm_uc_update_public_key"]
    assert len(key) == 65 and key[0] == 4


def test_fault_memory_total_is_four_bytes():
    """MBED_CLOUD_DEV_MEMORY_TOTAL_KB is a 4-byte uint32_t, not ASCII (fcc_dev_flow.c)."""
    values = parse_developer_credentials(DEV_TEXT)
    assert values["MBED_CLOUD_DEV_MEMORY_TOTAL_KB"] == (524288).to_bytes(4, "little")
    zero = DEV_TEXT.replace("MEMORY_TOTAL_KB = 524288", "MEMORY_TOTAL_KB = 0")
    assert parse_developer_credentials(zero)["MBED_CLOUD_DEV_MEMORY_TOTAL_KB"] == b"\0\0\0\0"


def test_fault_placeholder_array_in_credentials_is_refused():
    """A placeholder { 0x0 } certificate (the example file) is an error, not the text "0x0"."""
    text = replace_array(DEV_TEXT, "MBED_CLOUD_DEV_BOOTSTRAP_DEVICE_CERTIFICATE", "{ 0x0 }")
    with pytest.raises(CredentialsParseError, match="DEVICE_CERTIFICATE is a placeholder") as info:
        parse_developer_credentials(text)
    assert info.value.code == 6003


def test_fault_strings_with_comma_semicolon_and_equals_survive():
    """A manufacturer "Acme, Inc.; "dev" = test" broke mbl-cli's split on , ; and ' = '."""
    values = parse_developer_credentials(DEV_TEXT)
    assert values["MBED_CLOUD_DEV_MANUFACTURER"] == b'Acme, Inc.; "dev" = test'


def test_fault_sizeof_bookkeeping_and_psk_bits_are_not_values():
    """*_size, *_SIZE and sizeof(...)*8 are derived, not stored; v1's empty PSK arrays are empty."""
    v1 = parse_update_resources(V1_TEXT)
    assert not any(name.endswith(("_size", "_bits")) for name in v1)
    assert v1["arm_uc_default_psk"] == b"" and len(v1["arm_uc_default_fingerprint"]) == 32
    dev = parse_developer_credentials(DEV_TEXT)
    assert not any(name.endswith("_SIZE") for name in dev)
    sizes = {v.name: v.data for v in parse_c_variables(V1_TEXT)}
    assert int.from_bytes(sizes["arm_uc_default_psk_bits"], "little") == 0
    assert int.from_bytes(sizes["arm_uc_vendor_id_size"], "little") == 16


def test_fault_variable_names_are_exact_identifiers():
    """mbl-cli cut names from the first 'arm_uc_'; here only identifiers with the prefix count."""
    text = V2_TEXT + "\nconst uint8_t my_arm_uc_vendor_id[] = { 1, 2 };\n"
    assert "my_arm_uc_vendor_id" not in parse_update_resources(text)


# ---------------------------------------------------------------- C details


def test_escapes_concatenation_chars_and_padding():
    """C escapes, adjacent literals, char literals, declared sizes and multi-declarators."""
    text = r"""
    /* block ; comment = { */
    static const char s[] = "A\x42\103" "\n\"" ; // trailing
    const char *p = "ptr";
    const uint8_t padded[4] = { 'a', 0x62 }, other[] = { (1 + 2) * 3, -1 + 2, 0177, };
    const uint16_t total = sizeof(padded) + sizeof(s);
    extern const uint8_t declared_only[];
    #define NOT_A_VALUE = 5, \
        continued;
    """
    values = {v.name: v.data for v in parse_c_variables(text)}
    assert values == {
        "s": b'ABC\n"',
        "p": b"ptr",
        "padded": b"ab\0\0",
        "other": bytes([9, 1, 0o177]),
        "total": (4 + 6).to_bytes(2, "little"),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("const uint8_t a[] = { 0x100 };", "line 1: a: value 256 does not fit"),
        ("/* open", "unterminated /\\* comment"),
        ('const char a[] = "open;\n', "line 1: unterminated string"),
        ("const float a = 1;", "unsupported type 'float'"),
        ("const uint8_t a[] = { 1 }\nconst uint8_t b[] = { 2 };", "line 2: expected ';'"),
        ('#if X\nconst char a[] = "1";\n#else\nconst char a[] = "2";\n#endif', "line 4: a is defined twice"),
        ("const uint8_t a[1] = { 1, 2 };", "2 initialisers for 1 elements"),
        ("const uint32_t a = sizeof(b);", "sizeof of an unknown variable"),
        ("const uint8_t a[] = { 08 };", "malformed number"),
        ('const char a[] = "\\q";', "unknown escape"),
        ("const uint8_t a[] = {" + "(" * 500 + "1" + ")" * 500 + "};", "nested deeper than 100"),
        ("const uint8_t a[] = {" + "-" * 500 + "1};", "nested deeper than 100"),
        ("const uint8_t a[-1] = { };", "array size -1 is outside"),
        ("const uint8_t a[0x7fffffffffff] = { 1 };", "array size 140737488355327 is outside"),
        ("const uint32_t a[300000] = { 1 };", "array size 300000 is outside"),
        ("const uint8_t a[] = {" + "*".join(["0xffffffff"] * 50) + "};", "does not fit in 64 bits"),
        ("const uint8_t a[] = {" + "9" * 5000 + "};", "number of more than 66 digits"),
    ],
)
def test_malformed_input_is_refused_with_its_line(text, message):
    """Every defect is a CredentialsParseError naming the line."""
    with pytest.raises(CredentialsParseError, match=message):
        parse_c_variables(text)


def test_missing_required_values_are_named():
    """A file without the update certificate, or with a wrong-size id, is refused."""
    without = V2_TEXT.replace("arm_uc_default_certificate", "arm_uc_other_certificate")
    with pytest.raises(CredentialsParseError, match="defines no arm_uc_default_certificate"):
        parse_update_resources(without)
    short = (
        "const uint8_t arm_uc_vendor_id[] = { 1, 2 };\n"
        + V2_TEXT.split("const uint16_t arm_uc_vendor_id_size")[1]
    )
    with pytest.raises(CredentialsParseError):
        parse_update_resources(short)
    bad_type = DEV_TEXT.replace(
        "const uint32_t MBED_CLOUD_DEV_MEMORY_TOTAL_KB", "const uint8_t MBED_CLOUD_DEV_MEMORY_TOTAL_KB"
    )
    with pytest.raises(CredentialsParseError, match="must be a uint32_t"):
        parse_developer_credentials(bad_type.replace("= 524288", "= 5"))


def test_malformed_input_never_escapes_as_another_exception():
    """Hostile shapes (deep nesting, huge sizes, huge numbers) are CredentialsParseError, not a crash."""
    for text in (
        "const uint8_t a[] = {" + "(" * 50_000 + "1" + ")" * 50_000 + "};",
        "const uint8_t a[1099511627776];",
        "const uint8_t a[] = { 0x" + "f" * 100_000 + " };",
    ):
        with pytest.raises(CredentialsParseError) as info:
            parse_c_variables(text)
        assert info.value.code == 6003


def test_non_utf8_source_keeps_its_bytes():
    """A Latin-1 comment does not stop the parse; a Latin-1 string keeps its own bytes; a BOM is dropped."""
    data = (
        b"\xef\xbb\xbf// \xa9 2019 Soci\xe9t\xe9\n"
        b'const char MBED_CLOUD_DEV_MANUFACTURER[] = "Soci\xe9t\xe9 \xc3\xa9";\n'
    )
    (var,) = parse_c_variables(source_text(data))
    assert var.data == b"Soci\xe9t\xe9 \xc3\xa9"


def test_early_v1_layout_parses():
    """The earlier 1.x template: two-line sizeof, empty PSK braces, a literal psk_bits = 128."""
    resources = UpdateResources()
    values = parse_update_resources(resources.c_text_v1_early())
    names = ["arm_uc_vendor_id", "arm_uc_class_id", "arm_uc_default_certificate"]
    names.append("arm_uc_default_fingerprint")
    for name in names:
        assert values[name] == resources.values[name]
    assert values["arm_uc_default_psk"] == b""
    assert "arm_uc_default_fingerprint_size" not in values


def test_portal_shaped_credentials_parse():
    """A credentials file with a self-issued device certificate (the portal's shape) parses whole."""
    creds = DevCredentials(portal_shape=True)
    assert parse_developer_credentials(creds.c_text()) == creds.values


# ---------------------------------------------------------------- tentative definitions


def test_memory_total_without_a_value_is_zero_as_in_c():
    """``const uint32_t MBED_CLOUD_DEV_MEMORY_TOTAL_KB;`` is a tentative definition: 0, four bytes."""
    text = DEV_TEXT.replace("MBED_CLOUD_DEV_MEMORY_TOTAL_KB = 524288;", "MBED_CLOUD_DEV_MEMORY_TOTAL_KB;")
    assert text != DEV_TEXT
    assert parse_developer_credentials(text)["MBED_CLOUD_DEV_MEMORY_TOTAL_KB"] == b"\0\0\0\0"


def test_tentative_definitions_hold_zeros_and_yield_to_a_value():
    """Zeros of the declared size; ``x[];`` is one zero (a placeholder); extern and pointers: nothing."""
    text = """
    const uint32_t scalar;
    const uint8_t sized[3];
    const uint8_t unsized[];
    const char name[8];
    extern const uint32_t elsewhere;
    const char *nowhere;
    const uint32_t later;
    const uint32_t later = 7;
    const uint32_t later;
    const uint16_t sized_size = sizeof(sized) + sizeof(name);
    """
    found = {v.name: v for v in parse_c_variables(text)}
    assert {name: v.data for name, v in found.items()} == {
        "scalar": b"\0\0\0\0",
        "sized": b"\0\0\0",
        "unsized": b"\0",
        "name": b"",
        "later": (7).to_bytes(4, "little"),
        "sized_size": (11).to_bytes(2, "little"),
    }
    assert found["unsized"].placeholder and not found["sized"].placeholder
    assert found["scalar"].tentative and not found["later"].tentative
    with pytest.raises(CredentialsParseError, match="line 3: a is defined twice"):
        parse_c_variables("const uint32_t a;\nconst uint32_t a = 1;\nconst uint32_t a = 2;")


def test_psk_project_update_file_is_refused_clearly():
    """manifest-tool 1.x ``init --psk`` leaves the certificate empty and fills arm_uc_default_psk."""
    psk = V1_TEXT.replace(
        "const uint8_t arm_uc_default_psk[] = {\n    \n};",
        "const uint8_t arm_uc_default_psk[] = {\n    0x1, 0x2, 0x3, 0x4\n};",
    )
    psk = replace_array(psk, "arm_uc_default_certificate", "{\n    \n}")
    assert psk.count("0x1, 0x2, 0x3, 0x4") == 1
    with pytest.raises(CredentialsParseError, match="PSK projects are not supported") as info:
        parse_update_resources(psk)
    assert info.value.line > 0 and "manifest-dev-tool init" in (info.value.hint or "")
    assert parse_update_resources(V1_TEXT)["arm_uc_default_psk"] == b""  # certificate mode: empty PSK

r"""Write ``mbed_cloud_dev_credentials.c``: the C source of a developer certificate.

This is the text Device Management returns as ``security_file_content`` and the Portal
offers for download: an include guard, ``#include <inttypes.h>``, the ``MBED_CLOUD_DEV_*``
strings as ``const char`` arrays, the certificates and key as ``const uint8_t`` arrays
(eight bytes a line), ``MBED_CLOUD_DEV_MEMORY_TOTAL_KB`` as a ``const uint32_t``, and the
arrays' ``*_SIZE`` (the layout of PelionIoT/mbed-cloud-client-example's
``mbed_cloud_dev_credentials.c``). :func:`provkit.developer.parse_developer_credentials`
reads it back to the same values. Strings are escaped so that any bytes survive: printable
ASCII as is except ``"``, ``\`` and a ``?`` after a ``?`` (which could make a trigraph),
the rest as three-digit octal escapes. mbl-cli did not decode escapes, so the common
values (hex ids, URIs, plain names) carry none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from provkit.developer import credentials as c

_STRINGS: Final = (
    c.ENDPOINT_NAME,
    c.ACCOUNT_ID,
    c.SERVER_URI,
)
_ARRAYS: Final = (c.DEVICE_CERTIFICATE, c.SERVER_CA_CERTIFICATE, c.DEVICE_PRIVATE_KEY)
_INFO: Final = (c.MANUFACTURER, c.MODEL_NUMBER, c.SERIAL_NUMBER, c.DEVICE_TYPE, c.HARDWARE_VERSION)
_GUARD: Final = "__MBED_CLOUD_DEV_CREDENTIALS_H__"


def c_string(data: bytes) -> str:
    """A C string literal holding exactly ``data``."""
    out = []
    previous = ""
    for byte in data:
        char = chr(byte)
        if char in '"\\' or (char == "?" and previous == "?"):
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
        previous = char
    return '"' + "".join(out) + '"'


_HEX: Final = tuple(f"0x{value:02x}" for value in range(256))


def c_bytes(data: bytes) -> str:
    """A C brace initialiser of ``data``, eight ``0x..`` values a line."""
    rows = [", ".join(map(_HEX.__getitem__, data[i : i + 8])) for i in range(0, len(data), 8)]
    return "{\n    " + ",\n    ".join(rows) + "\n}"


def render_developer_credentials(values: Mapping[str, bytes], *, header: str = "") -> str:
    """The C source of a developer certificate.

    Args:
        values: the ``MBED_CLOUD_DEV_*`` variables as :func:`parse_developer_credentials`
            returns them (strings without NUL, ``MBED_CLOUD_DEV_MEMORY_TOTAL_KB`` as 4
            little-endian bytes). ``MBED_CLOUD_DEV_ACCOUNT_ID`` may be absent.
        header: a comment line or lines put at the top (without comment markers).

    Raises:
        KeyError: a variable the device needs is missing.
    """
    lines = ["/*"]
    # "*/" would end the comment early.
    lines += [(" * " + line.replace("*/", "* /")).rstrip() for line in header.splitlines()]
    lines = lines if len(lines) > 1 else [*lines, " * Developer credentials."]
    lines += [" */", "", f"#ifndef {_GUARD}", f"#define {_GUARD}", "", "#include <inttypes.h>", ""]
    for name in _STRINGS:
        if name in values or name != c.ACCOUNT_ID:
            lines.append(f"const char {name}[] = {c_string(values[name])};")
    lines.append("")
    for name in _ARRAYS:
        lines += [f"const uint8_t {name}[] = ", f"{c_bytes(values[name])};", ""]
    for name in _INFO:
        lines.append(f"const char {name}[] = {c_string(values[name])};")
    memory = int.from_bytes(values[c.MEMORY_TOTAL_KB], "little")
    lines += [f"const uint32_t {c.MEMORY_TOTAL_KB} = {memory};", ""]
    lines += [f"const uint32_t {name}_SIZE = sizeof({name});" for name in _ARRAYS]
    lines += ["", f"#endif //{_GUARD}", ""]
    return "\n".join(lines)

"""Reading and validating ``fcu.yml`` into :class:`~provkit.factory.config.FcuConfig` (docs/factory.md).

Every invalid, missing or unknown key raises :class:`~provkit.errors.ConfigError` with
code 380 (``Validation error in field: <field>. Message: <what is wrong>``) and a hint.
Files the configuration names are only checked to exist here; their content is checked
by :mod:`provkit.factory.resources`.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from provkit.errors import ConfigError, HsmError
from provkit.factory.ca_key import CaKeySource
from provkit.factory.config import (
    CA_KEY_KEYS,
    CUSTOM_KEYS,
    CUSTOM_TYPES,
    DEVICE_INFO_KEYS,
    MAX_CHAIN_DEPTH,
    OBSOLETE_FILE_KEYS,
    STRING_KEYS,
    SUBJECT_KEYS,
    TOP_LEVEL_KEYS,
    CustomProperty,
    DeviceInfo,
    EntropyMode,
    FcuConfig,
    KeyMode,
    invalid,
    uri_aid,
)
from provkit.factory.config_load import read_config_mapping, scalar_text
from provkit.factory.paths import FcuPaths
from provkit.params import NAME_RULE, is_kcm_name, names

_E = TypeVar("_E", bound=StrEnum)

MAX_DEVICE_STRING_BYTES: Final = 64
"""Longest ``device-info`` text a device can use.

The Device Management Client reads these items into a 128-byte buffer and publishes a
Device object string only up to ``MAX_ALLOWED_STRING_LENGTH`` (64) bytes
(``source/ServiceClient.cpp`` and ``mbed-client/mbed-client/m2mconstants.h`` in
PelionIoT/mbed-cloud-client); a longer value is stored by FCC but never shown.
"""
_HOST: Final = re.compile(r"[A-Za-z0-9._~%:-]+")
"""Characters of a registered name, an IPv4 address or (brackets removed) an IPv6 address."""


def load_config(paths: FcuPaths) -> FcuConfig:
    """Read and validate ``paths.config_file``.

    Raises:
        ConfigError: 190 (unreadable), 200 (not YAML) or 380 (invalid field).
    """
    data = read_config_mapping(paths.config_file, paths.template_variables())
    return validate_config(data, base_dir=paths.config_file.parent, source=paths.config_file)


def validate_config(data: Mapping[str, Any], *, base_dir: Path, source: Path | None = None) -> FcuConfig:
    """Validate a parsed ``fcu.yml`` mapping; relative file names are taken from ``base_dir``.

    Raises:
        ConfigError: code 380 naming the first invalid field.
    """
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise invalid(str(key), "unknown key", "remove it or fix its spelling (see 'provkit init')")
    key_mode = _enum(data, "device-key-generation-mode", KeyMode, None)
    entropy_mode = _enum(data, "entropy-generation-mode", EntropyMode, EntropyMode.BY_DEVICE)
    use_bootstrap = _bool(data, "use-bootstrap", None)
    first_to_claim = _bool(data, "first-to-claim", False)
    time_sync = _bool(data, "time-sync", None)
    verify_on_device = _bool(data, "verify-on-device", True)
    intermediate = _bool(data, "setup-ca-as-intermediate", False)
    for key in STRING_KEYS:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise invalid(key, "must be a string")
    if first_to_claim and not use_bootstrap:
        raise invalid("first-to-claim", "first-to-claim requires use-bootstrap: true")
    if use_bootstrap:
        uri_key = "bootstrap-server-uri-first-to-claim" if first_to_claim else "bootstrap-server-uri"
        ca_key, crl_key = "bootstrap-server-ca-certificate-file", "bootstrap-server-crl-file"
    else:
        uri_key = "lwm2m-server-uri"
        ca_key, crl_key = "lwm2m-server-ca-certificate-file", "lwm2m-server-crl-file"
    server_uri = _server_uri(data, uri_key, want_aid=not first_to_claim)
    server_ca = _file(data, ca_key, base_dir, required=True)
    assert server_ca is not None
    update_auth = _file(data, "update-auth-certificate-file", base_dir, required=False)
    vendor_id = _uuid(data, "vendor-id")
    class_id = _uuid(data, "class-id")
    if update_auth is not None:
        for key, value in (("vendor-id", vendor_id), ("class-id", class_id)):
            if value is None:
                raise invalid(key, "required when update-auth-certificate-file is set")
    chain_depth = data.get("device-certificate-chain-depth", 1)
    if isinstance(chain_depth, bool) or not isinstance(chain_depth, int) or not 1 <= chain_depth <= 5:
        raise invalid("device-certificate-chain-depth", f"must be an integer 1..{MAX_CHAIN_DEPTH}")
    return FcuConfig(
        key_mode=key_mode,
        entropy_mode=entropy_mode,
        use_bootstrap=use_bootstrap,
        first_to_claim=first_to_claim,
        time_sync=time_sync,
        verify_on_device=verify_on_device,
        setup_ca_as_intermediate=intermediate,
        certificate_authority=_subject(data, "certificate-authority", allow_cn=True),
        server_uri=server_uri,
        server_ca_certificate_file=server_ca,
        server_crl_file=_file(data, crl_key, base_dir, required=False),
        update_auth_certificate_file=update_auth,
        vendor_id=vendor_id,
        class_id=class_id,
        device_info=_device_info(data, time_sync),
        device_certificate=_subject(data, "device-certificate", allow_cn=False),
        chain_depth=int(chain_depth),
        custom_properties=_custom_properties(data.get("custom-properties"), base_dir),
        source=source,
        ignored_keys=tuple(key for key in OBSOLETE_FILE_KEYS if _file(data, key, base_dir, required=False)),
        certificate_authority_key=_ca_key(data.get("certificate-authority-key"), base_dir),
    )


def _ca_key(value: Any, base_dir: Path) -> CaKeySource | None:
    """``certificate-authority-key``: a ``pkcs11:`` URI, or a mapping of uri, pkcs11-module, pin-file."""
    key = "certificate-authority-key"
    if value in (None, ""):
        return None
    section = {"uri": value} if isinstance(value, str) else value
    if not isinstance(section, Mapping):
        raise invalid(key, "must be a pkcs11: URI or a mapping with uri, pkcs11-module and pin-file")
    for sub in section:
        if sub not in CA_KEY_KEYS:
            raise invalid(f"{key}.{sub}", "unknown key")
    uri = section.get("uri")
    if not isinstance(uri, str) or not uri:
        raise _missing(f"{key}.uri")
    source = CaKeySource(
        uri,
        module=_module_text(section, base_dir),
        pin_file=_file(section, "pin-file", base_dir, required=False),
        origin=f"fcu.yml {key}",
    )
    try:
        source.parsed()
    except HsmError as exc:
        raise invalid(f"{key}.uri" if isinstance(value, Mapping) else key, exc.message, exc.hint) from exc
    return source


def _module_text(section: Mapping[str, Any], base_dir: Path) -> str | None:
    module = section.get("pkcs11-module")
    if isinstance(module, str) and module and "/" not in module:
        return module  # a bare library name: the system's library search finds it
    path = _file(section, "pkcs11-module", base_dir, required=False)
    return None if path is None else str(path)


def _missing(key: str) -> ConfigError:
    return invalid(key, "missing mandatory value", f"add '{key}:' to fcu.yml")


def _enum(data: Mapping[str, Any], key: str, kind: type[_E], default: _E | None) -> _E:
    value = data.get(key)
    if value is None:
        if default is None:
            raise _missing(key)
        return default
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise invalid(key, f"{value!r} is not one of {choices}") from None


def _bool(data: Mapping[str, Any], key: str, default: bool | None) -> bool:
    value = data.get(key)
    if value is None:
        if default is None:
            raise _missing(key)
        return default
    if not isinstance(value, bool):
        raise invalid(key, f"{value!r} is not a boolean", f"set '{key}' to true or false")
    return value


def _server_uri(data: Mapping[str, Any], key: str, *, want_aid: bool) -> str:
    uri = data.get(key)
    if not uri:
        raise _missing(key)
    if not uri.startswith(("coap://", "coaps://")):
        raise invalid(key, "the URI must use the coap:// or coaps:// scheme")
    _check_authority(key, uri)
    has_aid = uri_aid(uri) is not None
    if want_aid and not has_aid:
        raise invalid(key, "the URI must contain the aid query parameter", "append ?aid=<account id>")
    if not want_aid and has_aid:
        raise invalid(key, "a first-to-claim URI must not contain the aid query parameter")
    if want_aid and not uri_aid(uri):
        raise invalid(key, "the aid query parameter is empty")
    return str(uri)


def _check_authority(key: str, uri: str) -> None:
    """Refuse a host or port no device could connect to (checked as ``urllib.parse`` reads them)."""
    if not uri.isascii() or not uri.isprintable() or " " in uri:
        raise invalid(
            key,
            "the URI must be printable ASCII without spaces",
            "write an internationalised host name in its IDNA (xn--) form",
        )
    parts = urlsplit(uri)
    if not parts.hostname:
        raise invalid(key, "the URI has no host", "e.g. coaps://bootstrap.example.com:5684?aid=<account id>")
    port_rule = "a port is a number from 1 to 65535"
    try:
        port = parts.port
    except ValueError as exc:
        raise invalid(key, f"the URI's port is not valid: {exc}", port_rule) from None
    if port == 0:
        raise invalid(key, "the URI's port is 0", port_rule)
    if not _HOST.fullmatch(parts.hostname):
        raise invalid(key, f"{parts.hostname!r} is not a host name or IP address")


def _file(data: Mapping[str, Any], key: str, base_dir: Path, *, required: bool) -> Path | None:
    value = data.get(key)
    if value in (None, ""):
        if required:
            raise _missing(key)
        return None
    if not isinstance(value, str):
        raise invalid(key, "must be a file name")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _uuid(data: Mapping[str, Any], key: str) -> bytes | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        raise invalid(key, f"{value!r} is not an RFC 4122 UUID", "use the form 8-4-4-4-12 hex") from None
    if parsed.variant != uuid.RFC_4122:
        raise invalid(key, f"{value!r} is not an RFC 4122 UUID")
    return parsed.bytes


def _subject(data: Mapping[str, Any], key: str, *, allow_cn: bool) -> dict[str, str]:
    section = data.get(key) or {}
    if not isinstance(section, Mapping):
        raise invalid(key, "must be a mapping of subject fields")
    result: dict[str, str] = {}
    for sub, value in section.items():
        name = f"{key}.{sub}"
        if sub not in SUBJECT_KEYS or (sub == "common-name" and not allow_cn):
            raise invalid(name, "unknown key")
        if value is None or value == "":
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise invalid(name, "must be a string")
        text = scalar_text(value)
        if sub == "country-name" and (len(text) != 2 or not text.isalpha()):
            raise invalid(name, f"{text!r} is not a two-letter country code")
        result[sub] = text
    return result


def _device_info(data: Mapping[str, Any], time_sync: bool) -> DeviceInfo:
    section = data.get("device-info")
    if not isinstance(section, Mapping):
        raise _missing("device-info") if section is None else invalid("device-info", "must be a mapping")
    for sub in section:
        if sub not in DEVICE_INFO_KEYS:
            raise invalid(f"device-info.{sub}", "unknown key")
    texts = []
    for sub in DEVICE_INFO_KEYS[:4]:
        value = section.get(sub)
        if value is None or value == "" or isinstance(value, bool):
            raise _missing(f"device-info.{sub}")
        if not isinstance(value, str | int | float):
            raise invalid(f"device-info.{sub}", "must be a string")
        text = scalar_text(value)
        if len(text.encode("utf-8")) > MAX_DEVICE_STRING_BYTES:
            raise invalid(
                f"device-info.{sub}",
                f"{len(text.encode('utf-8')):,} bytes; a device publishes Device object strings of at most "
                f"{MAX_DEVICE_STRING_BYTES} bytes",
                f"shorten it to {MAX_DEVICE_STRING_BYTES} bytes or fewer",
            )
        texts.append(text)
    memory = section.get("memory-total")
    if memory is None:
        raise _missing("device-info.memory-total")
    if isinstance(memory, bool) or not isinstance(memory, int) or not 0 <= memory < 2**32:
        raise invalid("device-info.memory-total", "must be an integer number of kilobytes (0 .. 2^32-1)")
    timezone = section.get("timezone", "UTC" if time_sync else None)
    if timezone in (None, ""):
        timezone = None
    else:
        timezone = scalar_text(timezone)
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise invalid(
                "device-info.timezone", f"{timezone!r} is not an IANA time zone", "e.g. UTC, Europe/Paris"
            ) from None
    return DeviceInfo(texts[0], texts[1], texts[2], texts[3], int(memory), timezone)


def _custom_properties(value: Any, base_dir: Path) -> tuple[CustomProperty, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, Mapping):  # also accept "name: {type: …, data: …}"
        for name, spec in value.items():
            if spec is not None and not isinstance(spec, Mapping):
                raise invalid(f"custom-properties.{name}", "must be a mapping of type and data or data-file")
        value = [{"name": name, **(spec or {})} for name, spec in value.items()]
    if not isinstance(value, list):
        raise invalid("custom-properties", "must be a list of items with name, type and data or data-file")
    seen: set[str] = set()
    result = []
    for index, item in enumerate(value):
        where = f"custom-properties[{index}]"
        if not isinstance(item, Mapping):
            raise invalid(where, "must be a mapping with name, type and data or data-file")
        for sub in item:
            if sub not in CUSTOM_KEYS:
                raise invalid(f"{where}.{sub}", "unknown key")
        name = item.get("name")
        if not isinstance(name, str) or not is_kcm_name(name):
            raise invalid(f"{where}.name", f"{NAME_RULE} are required")
        if name.casefold().startswith(names.MBED_PREFIX):
            raise invalid(f"{where}.name", f"{name!r} uses the reserved '{names.MBED_PREFIX}' prefix")
        if name in seen:
            raise invalid(f"{where}.name", f"{name!r} is used twice")
        seen.add(name)
        kind = item.get("type")
        if kind not in CUSTOM_TYPES:
            raise invalid(f"{where}.type", f"{kind!r} is not one of {', '.join(CUSTOM_TYPES)}")
        data, data_file = item.get("data"), item.get("data-file")
        if (data is None) == (data_file is None):
            raise invalid(where, "give exactly one of data or data-file")
        if data is not None and (isinstance(data, bool) or not isinstance(data, str | int | bytes)):
            raise invalid(f"{where}.data", "must be text, an integer or !!binary bytes")
        if isinstance(data, int) and not 0 <= data < 2**64:
            raise invalid(f"{where}.data", "integers must fit in 64 unsigned bits")
        if data is not None and kind != "config" and not isinstance(data, str | bytes):
            raise invalid(f"{where}.data", f"a {kind} must be PEM text or DER bytes")
        path = None
        if data_file is not None:
            if not isinstance(data_file, str):
                raise invalid(f"{where}.data-file", "must be a file name")
            path = Path(data_file).expanduser()
            path = path if path.is_absolute() else base_dir / path
        if isinstance(data, int):
            data = int(data)  # a plain int for the encoder, not fcu.yml's SourcedInt
        result.append(CustomProperty(name, kind, data, path))
    return tuple(result)

"""The validated ``fcu.yml`` model and the FCU validations of its values (pelion-fcc.md §8, §9).

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
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from provkit.codes import FcuErrorCode
from provkit.errors import ConfigError
from provkit.factory.config_load import read_config_mapping
from provkit.factory.paths import FcuPaths


class KeyMode(StrEnum):
    """``device-key-generation-mode``: who makes the device key pair and certificate."""

    BY_TOOL = "by_tool"
    EXTERNALLY_SUPPLIED = "externally_supplied"
    BY_DEVICE = "by_device"


class EntropyMode(StrEnum):
    """``entropy-generation-mode``: where the 48-byte Entropy item comes from."""

    BY_DEVICE = "by_device"
    BY_TOOL = "by_tool"
    EXTERNALLY_SUPPLIED = "externally_supplied"


SUBJECT_KEYS: Final = (
    "common-name",
    "organization-name",
    "organizational-unit-name",
    "locality-name",
    "state-or-province-name",
    "country-name",
)
DEVICE_INFO_KEYS: Final = (
    "manufacturer-name",
    "device-type",
    "model-number",
    "hardware-version",
    "memory-total",
    "timezone",
)
CUSTOM_TYPES: Final = ("config", "certificate", "private-key", "public-key")
_CUSTOM_KEYS: Final = ("name", "type", "data", "data-file")
_BOOL_KEYS: Final = (
    "use-bootstrap",
    "first-to-claim",
    "time-sync",
    "verify-on-device",
    "setup-ca-as-intermediate",
)
_FILE_KEYS: Final = (
    "bootstrap-server-ca-certificate-file",
    "bootstrap-server-crl-file",
    "lwm2m-server-ca-certificate-file",
    "lwm2m-server-crl-file",
    "update-auth-certificate-file",
)
_STRING_KEYS: Final = (
    "bootstrap-server-uri",
    "bootstrap-server-uri-first-to-claim",
    "lwm2m-server-uri",
    "vendor-id",
    "class-id",
)
TOP_LEVEL_KEYS: Final = frozenset(
    {
        "device-key-generation-mode",
        "entropy-generation-mode",
        *_BOOL_KEYS,
        *_FILE_KEYS,
        *_STRING_KEYS,
        "certificate-authority",
        "device-info",
        "device-certificate",
        "device-certificate-chain-depth",
        "custom-properties",
    }
)
MAX_CHAIN_DEPTH: Final = 5
"""KCM stores at most 5 certificates in a chain."""

_E = TypeVar("_E", bound=StrEnum)

_KCM_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,100}")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """``device-info``: the LwM2M device object values."""

    manufacturer_name: str
    device_type: str
    model_number: str
    hardware_version: str
    memory_total: int
    timezone: str | None


@dataclass(frozen=True, slots=True)
class CustomProperty:
    """One ``custom-properties`` entry.

    Attributes:
        name: the item name on the device (no ``mbed`` prefix).
        type: ``config``, ``certificate``, ``private-key`` or ``public-key``.
        data: inline value (config: text, integer or bytes; others: PEM text).
        data_file: file holding the value instead of ``data``.
    """

    name: str
    type: str
    data: str | int | bytes | None = None
    data_file: Path | None = None


@dataclass(frozen=True, slots=True)
class FcuConfig:
    """A validated ``fcu.yml``.

    URIs, files and identifiers for the mode not in use are kept as given but ignored.
    """

    key_mode: KeyMode
    entropy_mode: EntropyMode
    use_bootstrap: bool
    first_to_claim: bool
    time_sync: bool
    verify_on_device: bool
    setup_ca_as_intermediate: bool
    certificate_authority: Mapping[str, str]
    server_uri: str
    server_ca_certificate_file: Path
    server_crl_file: Path | None
    update_auth_certificate_file: Path | None
    vendor_id: bytes | None
    class_id: bytes | None
    device_info: DeviceInfo
    device_certificate: Mapping[str, str]
    chain_depth: int
    custom_properties: tuple[CustomProperty, ...] = field(default=())
    source: Path | None = None

    @property
    def account_id(self) -> str | None:
        """The ``aid`` query value of the server URI (the LwM2M certificate's OU), if any."""
        return uri_aid(self.server_uri)


def invalid(field_name: str, message: str, hint: str | None = None) -> ConfigError:
    """Build the 380 error for ``field_name``."""
    return ConfigError.from_code(
        FcuErrorCode.VALIDATION_ERROR, field_name, message, hint=hint or f"correct '{field_name}' in fcu.yml"
    )


def uri_aid(uri: str) -> str | None:
    """Return the text after ``?aid=`` / ``&aid=`` up to the next ``&``, or ``None``."""
    for marker in ("?aid=", "&aid="):
        at = uri.find(marker)
        if at >= 0:
            return uri[at + len(marker) :].split("&", 1)[0]
    return None


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
    for key in _STRING_KEYS:
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
        chain_depth=chain_depth,
        custom_properties=_custom_properties(data.get("custom-properties"), base_dir),
        source=source,
    )


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
    has_aid = uri_aid(uri) is not None
    if want_aid and not has_aid:
        raise invalid(key, "the URI must contain the aid query parameter", "append ?aid=<account id>")
    if not want_aid and has_aid:
        raise invalid(key, "a first-to-claim URI must not contain the aid query parameter")
    if want_aid and not uri_aid(uri):
        raise invalid(key, "the aid query parameter is empty")
    return str(uri)


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
        text = str(value)
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
        texts.append(str(value))
    memory = section.get("memory-total")
    if memory is None:
        raise _missing("device-info.memory-total")
    if isinstance(memory, bool) or not isinstance(memory, int) or not 0 <= memory < 2**32:
        raise invalid("device-info.memory-total", "must be an integer number of kilobytes (0 .. 2^32-1)")
    timezone = section.get("timezone", "UTC" if time_sync else None)
    if timezone in (None, ""):
        timezone = None
    else:
        timezone = str(timezone)
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise invalid(
                "device-info.timezone", f"{timezone!r} is not an IANA time zone", "e.g. UTC, Europe/Paris"
            ) from None
    return DeviceInfo(texts[0], texts[1], texts[2], texts[3], memory, timezone)


def _custom_properties(value: Any, base_dir: Path) -> tuple[CustomProperty, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, Mapping):  # also accept "name: {type: …, data: …}"
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
            if sub not in _CUSTOM_KEYS:
                raise invalid(f"{where}.{sub}", "unknown key")
        name = item.get("name")
        if not isinstance(name, str) or not _KCM_NAME.fullmatch(name):
            raise invalid(f"{where}.name", "1-100 characters of A-Z a-z 0-9 . - _ are required")
        if name.lower().startswith("mbed"):
            raise invalid(f"{where}.name", f"{name!r} uses the reserved 'mbed' prefix")
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
        result.append(CustomProperty(name, kind, data, path))
    return tuple(result)

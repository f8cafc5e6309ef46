"""Endpoint configuration: which LwM2M object instances a device gets, as YAML or JSON.

The reference tool ``eval()`` s a Python dict; provkit reads a declarative document
instead (read by :mod:`provkit.lwm2m.document`, never as code)::

    Security:
      0: {ServerURI: "coaps://bs.example.com:5684", Bootstrap: true, Mode: psk,
          PKOrIdentity: "bs-identity", SecretKey: {hex: "00112233"}}
      1: {ServerURI: "coaps://dm.example.com:5684", Bootstrap: false, Mode: cert,
          ShortServerID: 1}
    Server:
      1: {ShortServerID: 1, Lifetime: 86400, NotificationStoring: false, Binding: U}

Objects and resources are named by registry name, alias or number; instances by number.
Values: text, integers, booleans, floats; opaque resources take text (UTF-8),
``{hex: ...}``, ``{base64: ...}`` or YAML ``!!binary``; object links ``"oid:iid"`` or
``{oid: .., iid: ..}``; multiple-instance resources a mapping ``{riid: value}`` or a
list. Security Mode also takes ``psk``, ``rpk``, ``cert``, ``nosec``, ``est``. Every error
names the path as written (``Security/1/Mode``); so does a key given twice.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from provkit.errors import EndpointConfigError, SenmlError
from provkit.lwm2m.document import duplicate_keys, parse_document
from provkit.lwm2m.objects import SECURITY_MODES, ObjectSpec, ResourceSpec, ResourceType, find_object
from provkit.lwm2m.paths import MAX_ID, format_path
from provkit.lwm2m.senml import Entry, Objlnk, Value
from provkit.lwm2m.types import check_value
from provkit.lwm2m.validate import ConfigurationRejected, Instance, group_instances, validate_instances

MAX_RESOURCES: Final = 8192
"""Most resource (instance) values in one configuration: more cannot fit a device's 64 KiB
blob anyway, and the cap stops a small YAML document from expanding through aliases."""

_MODE_NUMBERS: Final = {name: number for number, name in SECURITY_MODES.items()}


def _unique(mapping: Mapping[object, object], where: str) -> None:
    duplicates = duplicate_keys(mapping)
    if duplicates:
        path = f"{where}/{duplicates[0]}" if where else str(duplicates[0])
        raise EndpointConfigError("the key is given twice (only one value would be kept)", path=path)


@dataclass
class EndpointConfig:
    """A validated set of object instances: ``{(oid, iid): {rid: value | {riid: value}}}``."""

    instances: dict[tuple[int, int], Instance] = field(default_factory=dict)

    def entries(self) -> list[Entry]:
        """Return one entry per resource (instance), ordered by path."""
        out = []
        for (oid, iid), resources in sorted(self.instances.items()):
            for rid, value in sorted(resources.items()):
                if isinstance(value, dict):
                    out += [Entry(format_path((oid, iid, rid, riid)), v) for riid, v in sorted(value.items())]
                else:
                    out.append(Entry(format_path((oid, iid, rid)), value))
        return out

    @classmethod
    def from_entries(cls, entries: list[Entry]) -> EndpointConfig:
        """Build a configuration from decoded entries (no validation)."""
        return cls(group_instances(entries))

    def set(self, oid: int, iid: int, rid: int, value: Value) -> None:
        """Set (or replace) one single-instance resource."""
        self.instances.setdefault((oid, iid), {})[rid] = value

    def get(self, oid: int, iid: int, rid: int) -> Value | dict[int, Value] | None:
        """Return a resource value, or ``None``."""
        return self.instances.get((oid, iid), {}).get(rid)

    def instance_ids(self, oid: int) -> list[int]:
        """Return the instance ids of one object, ascending."""
        return sorted(iid for o, iid in self.instances if o == oid)

    def security_mode(self, iid: int) -> int | None:
        """Return the Security Mode of ``/0/iid``."""
        mode = self.get(0, iid, 2)
        return mode if isinstance(mode, int) and not isinstance(mode, bool) else None

    def validate(self, *, require_credentials: bool = True) -> None:
        """Apply the device's Security/Server rules.

        Args:
            require_credentials: also demand certificate and key in certificate modes.

        Raises:
            EndpointConfigError: with the offending LwM2M path.
        """
        try:
            validate_instances(self.instances, require_credentials=require_credentials)
        except ConfigurationRejected as exc:
            raise EndpointConfigError(str(exc).removeprefix(f"{exc.path}: "), path=exc.path) from exc


def _opaque(value: object, where: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, text),) = value.items()
        if isinstance(text, str):
            try:
                if kind == "hex":
                    return bytes.fromhex(text)
                if kind == "base64":
                    return base64.b64decode(text, validate=True)
            except (ValueError, binascii.Error) as exc:
                raise EndpointConfigError(f"invalid {kind} data: {exc}", path=where) from exc
    raise EndpointConfigError("opaque value must be text, {hex: ...} or {base64: ...}", path=where)


def _objlnk(value: object, where: str) -> Objlnk:
    try:
        if isinstance(value, str):
            return Objlnk.parse(value)
        if isinstance(value, Mapping) and set(value) == {"oid", "iid"}:
            return Objlnk(value["oid"], value["iid"])
    except SenmlError as exc:
        raise EndpointConfigError(str(exc), path=where) from exc
    raise EndpointConfigError("object link must be 'oid:iid' or {oid: .., iid: ..}", path=where)


def _value(spec: ResourceSpec, raw: object, where: str) -> Value:
    if spec.type is ResourceType.OPAQUE:
        value: object = _opaque(raw, where)
    elif spec.type is ResourceType.OBJLNK:
        value = _objlnk(raw, where)
    elif spec.type is ResourceType.INTEGER and spec.name == "Security Mode" and isinstance(raw, str):
        if raw.lower() not in _MODE_NUMBERS:
            raise EndpointConfigError(
                f"unknown security mode {raw!r} (psk, rpk, cert, nosec, est)", path=where
            )
        value = _MODE_NUMBERS[raw.lower()]
    else:
        value = raw
    if not isinstance(value, bool | int | float | str | bytes | Objlnk):
        raise EndpointConfigError(f"{type(raw).__name__} is not a resource value", path=where)
    try:
        return check_value(spec, value)
    except SenmlError as exc:
        raise EndpointConfigError(str(exc), path=where) from exc


def _id(key: object, where: str, what: str) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        number = key
    elif isinstance(key, str) and key.strip().isdigit() and key.strip().isascii():
        number = int(key)
    else:
        raise EndpointConfigError(f"{what} id {key!r} is not a number", path=where)
    if not 0 <= number <= MAX_ID:
        raise EndpointConfigError(f"{what} id {number} is outside 0..{MAX_ID}", path=where)
    return number


def _count(budget: list[int], n: int, where: str) -> None:
    budget[0] -= n
    if budget[0] < 0:
        raise EndpointConfigError(f"the configuration has more than {MAX_RESOURCES} resources", path=where)


def _resources(obj: ObjectSpec, body: object, where: str, budget: list[int]) -> Instance:
    if not isinstance(body, Mapping) or not body:
        raise EndpointConfigError("an instance must be a non-empty mapping of resources", path=where)
    _unique(body, where)
    out: Instance = {}
    for key, raw in body.items():
        here = f"{where}/{key}"
        spec = obj.resource(key) if isinstance(key, int | str) and not isinstance(key, bool) else None
        if spec is None:
            raise EndpointConfigError(f"unknown resource of {obj.name}", path=here)
        if spec.rid in out:
            raise EndpointConfigError(f"resource {spec.name} is given twice", path=here)
        if spec.multiple:
            items = dict(enumerate(raw)) if isinstance(raw, list) else raw
            if not isinstance(items, Mapping):
                raise EndpointConfigError("multiple-instance resource needs a list or mapping", path=here)
            _unique(items, here)
            _count(budget, len(items), here)
            out[spec.rid] = {
                _id(riid, f"{here}/{riid}", "resource instance"): _value(spec, v, f"{here}/{riid}")
                for riid, v in items.items()
            }
        else:
            _count(budget, 1, here)
            out[spec.rid] = _value(spec, raw, here)
    return out


def config_from_mapping(data: object, *, require_credentials: bool = True) -> EndpointConfig:
    """Build and validate a configuration from parsed YAML/JSON data.

    Args:
        data: the parsed document.
        require_credentials: see :meth:`EndpointConfig.validate`.

    Raises:
        EndpointConfigError: with the path of the first problem.
    """
    if not isinstance(data, Mapping) or not data:
        raise EndpointConfigError("the configuration must be a non-empty mapping of objects")
    _unique(data, "")
    config = EndpointConfig()
    budget = [MAX_RESOURCES]
    for obj_key, instances in data.items():
        obj = (
            find_object(obj_key) if isinstance(obj_key, int | str) and not isinstance(obj_key, bool) else None
        )
        if obj is None:
            raise EndpointConfigError(
                "unknown object (known: Security /0, Server /1, Device /3)", path=str(obj_key)
            )
        if not isinstance(instances, Mapping) or not instances:
            raise EndpointConfigError("an object must map instance ids to resources", path=str(obj_key))
        _unique(instances, str(obj_key))
        if not obj.multiple and len(instances) > 1:
            raise EndpointConfigError(f"{obj.name} is a single-instance object", path=str(obj_key))
        for iid_key, body in instances.items():
            where = f"{obj_key}/{iid_key}"
            iid = _id(iid_key, where, "instance")
            if not obj.multiple and iid != 0:
                # The device refuses any other id of a single-instance object (/3/1/...).
                raise EndpointConfigError(f"{obj.name} is a single-instance object: its id is 0", path=where)
            if (obj.oid, iid) in config.instances:
                raise EndpointConfigError("instance is given twice", path=where)
            config.instances[(obj.oid, iid)] = _resources(obj, body, where, budget)
    config.validate(require_credentials=require_credentials)
    return config


def load_config_text(
    text: str | bytes, *, name: str = "endpoint configuration", require_credentials: bool = True
) -> EndpointConfig:
    """Parse YAML or JSON text (see :func:`provkit.lwm2m.document.parse_document`) and validate it.

    Raises:
        EndpointConfigError: not YAML/JSON, too large, or invalid.
    """
    return config_from_mapping(parse_document(text, name), require_credentials=require_credentials)

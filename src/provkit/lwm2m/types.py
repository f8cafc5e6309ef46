"""Checking a value against the registry type of the resource it is written to.

Shared by the endpoint configuration loader (host) and the acceptor (device): one set of
rules decides what fits where. Integral floats are accepted for integer resources, as
the device converts them; anything else of the wrong kind is refused.
"""

from __future__ import annotations

from provkit.errors import SenmlError
from provkit.lwm2m.objects import ResourceSpec, ResourceType
from provkit.lwm2m.senml import Objlnk, Value

_INT64 = 1 << 63


def _integer(spec: ResourceSpec, value: Value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SenmlError(f"{spec.name} needs an integer, not {type(value).__name__} {value!r}")
    low, high = spec.value_range or (
        (0, (1 << 64) - 1) if spec.type is ResourceType.UNSIGNED_INTEGER else (-_INT64, _INT64 - 1)
    )
    if not low <= value <= high:
        raise SenmlError(f"{spec.name} must be within {low}..{high}, not {value}")
    return value


def check_value(spec: ResourceSpec, value: Value) -> Value:
    """Return ``value`` in the resource's type (integral floats become ints).

    Raises:
        SenmlError: the resource is executable or the value does not fit its type/range.
    """
    kind = spec.type
    if kind is ResourceType.NONE:
        raise SenmlError(f"{spec.name} is executable and holds no value")
    if kind in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.TIME):
        return _integer(spec, value)
    expected: dict[ResourceType, type | tuple[type, ...]] = {
        ResourceType.STRING: str,
        ResourceType.BOOLEAN: bool,
        ResourceType.OPAQUE: bytes,
        ResourceType.OBJLNK: Objlnk,
        ResourceType.FLOAT: (int, float),
    }
    wanted = expected[kind]
    if not isinstance(value, wanted) or (kind is ResourceType.FLOAT and isinstance(value, bool)):
        raise SenmlError(f"{spec.name} needs a {kind.value} value, not {type(value).__name__} {value!r}")
    if kind is ResourceType.FLOAT:
        return float(value)  # type: ignore[arg-type]
    return value

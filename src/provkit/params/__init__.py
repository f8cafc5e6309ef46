"""The ``mbed.*`` parameter catalog (pure data, no I/O).

One declarative table (:data:`CATALOG`) of every parameter name FCC and the client
know, with its KCM item kind, format, size, mandatory rule and the FCU/FCC
validations. The factory side builds bundles from it; the device side verifies with it.
"""

from provkit.params import names
from provkit.params.catalog import (
    BOOTSTRAP_MODE,
    BUNDLE_LEVEL_NAMES,
    CATALOG,
    FOUR_BYTE_INTEGER_PARAMS,
    LWM2M_MODE,
    META_DATA_NAMES,
    ModeNames,
    get_param,
    is_custom_name_allowed,
    mandatory_for,
    redundant_for,
)
from provkit.params.spec import ItemKind, Mandatory, ParamSpec, ValueFormat

__all__ = [
    "BOOTSTRAP_MODE",
    "BUNDLE_LEVEL_NAMES",
    "CATALOG",
    "FOUR_BYTE_INTEGER_PARAMS",
    "LWM2M_MODE",
    "META_DATA_NAMES",
    "ItemKind",
    "Mandatory",
    "ModeNames",
    "ParamSpec",
    "ValueFormat",
    "get_param",
    "is_custom_name_allowed",
    "mandatory_for",
    "names",
    "redundant_for",
]

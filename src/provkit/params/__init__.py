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
    DEVICE_CERT_OF_KEY,
    FOUR_BYTE_INTEGER_PARAMS,
    LWM2M_MODE,
    META_DATA_NAMES,
    ModeNames,
    get_param,
    is_custom_name_allowed,
    mandatory_for,
    mode_names,
    redundant_for,
)
from provkit.params.kcm_name import MAX_NAME_LENGTH, NAME_RULE, NameFault, is_kcm_name, name_fault
from provkit.params.spec import ItemKind, Mandatory, ParamSpec, ValueFormat

__all__ = [
    "BOOTSTRAP_MODE",
    "BUNDLE_LEVEL_NAMES",
    "CATALOG",
    "DEVICE_CERT_OF_KEY",
    "FOUR_BYTE_INTEGER_PARAMS",
    "LWM2M_MODE",
    "MAX_NAME_LENGTH",
    "META_DATA_NAMES",
    "NAME_RULE",
    "ItemKind",
    "Mandatory",
    "ModeNames",
    "NameFault",
    "ParamSpec",
    "ValueFormat",
    "get_param",
    "is_custom_name_allowed",
    "is_kcm_name",
    "mandatory_for",
    "mode_names",
    "name_fault",
    "names",
    "redundant_for",
]

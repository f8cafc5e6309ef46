"""The shape of one catalog entry: :class:`ParamSpec` and its enumerations."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mandatory(StrEnum):
    """When a parameter must be present for device verification to succeed."""

    ALWAYS = "always"
    """Checked by FCC verification in both modes."""
    IF_BOOTSTRAP = "if-bootstrap"
    """Mandatory only when ``mbed.UseBootstrap`` is 1."""
    IF_LWM2M = "if-lwm2m"
    """Mandatory only when ``mbed.UseBootstrap`` is 0 (direct LwM2M)."""
    OPTIONAL = "optional"
    """May be absent; FCC may warn (``Item not set:``)."""
    NOT_STORED = "not-stored"
    """Never stored in KCM (bundle-level, device time, or returned to the caller)."""


class ItemKind(StrEnum):
    """The KCM item kind a parameter is stored as (``kcm_item_type_e`` family)."""

    CONFIG = "config"
    CERTIFICATE = "certificate"
    PRIVATE_KEY = "private-key"
    PUBLIC_KEY = "public-key"
    NONE = "none"


class ValueFormat(StrEnum):
    """How the value is formatted in KCM (or on the wire when not stored)."""

    STRING = "string"
    """Bytes of text, no NUL terminator."""
    INTEGER = "integer"
    """Machine-endian unsigned integer of ``size`` bytes."""
    DER = "der"
    """DER key or certificate (chains: one DER certificate per link)."""
    BYTES = "bytes"
    """Raw bytes of ``size`` bytes."""
    FLAG = "flag"
    """Bundle flag: CBOR integer 0 or 1."""
    NONE = "none"
    """Name defined only; no format documented."""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter of the catalog, as both the factory and the device read it.

    Attributes:
        device_name: name on the device (KCM item name or bundle key).
        fcu_name: FCU configuration option or API parameter, ``None`` where FCU has none.
        kind: the KCM item kind.
        value_format: the value's format in KCM.
        size: exact size in bytes, ``None`` if variable.
        mandatory: when it must be present.
        fcu_validations: what the factory tool checks (text).
        fcc_validations: what the device checks (text).
        description: what the parameter is for.
        runtime_only: written by the client at run time, not a factory item.
        obsolete: from an FCC generation no longer supported.
    """

    device_name: str
    fcu_name: str | None
    kind: ItemKind
    value_format: ValueFormat
    size: int | None
    mandatory: Mandatory
    fcu_validations: str
    fcc_validations: str
    description: str
    runtime_only: bool = False
    obsolete: bool = False

    @property
    def is_stored(self) -> bool:
        """Whether the device stores the parameter as a KCM item."""
        return self.kind is not ItemKind.NONE

    def is_mandatory(self, use_bootstrap: bool) -> bool:
        """Whether verification requires the parameter in the given connection mode."""
        if self.mandatory is Mandatory.ALWAYS:
            return True
        wanted = Mandatory.IF_BOOTSTRAP if use_bootstrap else Mandatory.IF_LWM2M
        return self.mandatory is wanted

"""The LwM2M object registry: Security /0, Server /1 and Device /3 as pure data.

Resource ids, names, types, multiplicity, mandatory flags and the object version that
introduced each resource follow the OMA LwM2M registry (OpenMobileAlliance/lwm2m-registry
``0.xml``, ``1.xml``, ``3.xml`` and their 1.0/1.1/1.2 ``version_history``). Besides the
registry names, each resource answers to a short alias (the ``RID.*`` constant names
the reference tool's configs use, e.g. ``ServerURI``, ``PKOrIdentity``), so endpoint
configurations written for it translate one to one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final


class ResourceType(Enum):
    """LwM2M resource data types (the registry's ``Type`` column)."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED_INTEGER = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    NONE = "none"
    """Executable resources carry no value and cannot be provisioned."""


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """One resource of an object.

    Attributes:
        rid: the resource id.
        name: the registry name, e.g. ``"LwM2M Server URI"``.
        type: the data type.
        multiple: whether it is a multiple-instance resource (paths carry a 4th level).
        mandatory: whether the registry marks it mandatory.
        since: the object version that added it (``"1.0"``, ``"1.1"``, ``"1.2"``).
        aliases: short names also accepted in configurations.
        secret: whether its value is secret (stored encrypted, masked when shown).
        value_range: inclusive ``(low, high)`` for numeric resources, when the registry fixes one.
    """

    rid: int
    name: str
    type: ResourceType
    multiple: bool = False
    mandatory: bool = False
    since: str = "1.0"
    aliases: tuple[str, ...] = ()
    secret: bool = False
    value_range: tuple[int, int] | None = None

    @property
    def writable(self) -> bool:
        """Whether a value can be provisioned (executables cannot)."""
        return self.type is not ResourceType.NONE


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """One LwM2M object.

    Attributes:
        oid: the object id.
        name: the registry name.
        multiple: whether several instances may exist.
        resources: resource id → spec.
        aliases: short names also accepted in configurations.
    """

    oid: int
    name: str
    multiple: bool
    resources: Mapping[int, ResourceSpec]
    aliases: tuple[str, ...] = ()
    _by_name: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for spec in self.resources.values():
            for label in (spec.name, *spec.aliases):
                self._by_name[normalize_name(label)] = spec.rid

    def resource(self, key: int | str) -> ResourceSpec | None:
        """Return the resource with that id, registry name or alias (case and spacing ignored)."""
        if isinstance(key, int):
            return self.resources.get(key)
        text = key.strip()
        if text.isdigit():
            return self.resources.get(int(text))
        rid = self._by_name.get(normalize_name(text))
        return None if rid is None else self.resources[rid]


def normalize_name(name: str) -> str:
    """Fold a name for lookup: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_S, _I, _U, _B, _O, _T, _L, _N = (
    ResourceType.STRING,
    ResourceType.INTEGER,
    ResourceType.UNSIGNED_INTEGER,
    ResourceType.BOOLEAN,
    ResourceType.OPAQUE,
    ResourceType.TIME,
    ResourceType.OBJLNK,
    ResourceType.NONE,
)


def _r(rid: int, name: str, kind: ResourceType, *aliases: str, **extra: object) -> ResourceSpec:
    return ResourceSpec(rid, name, kind, aliases=aliases, **extra)  # type: ignore[arg-type]


_SECURITY_RESOURCES: Final = (
    _r(0, "LwM2M Server URI", _S, "ServerURI", mandatory=True),
    _r(1, "Bootstrap-Server", _B, "Bootstrap", mandatory=True),
    _r(2, "Security Mode", _I, "Mode", mandatory=True, value_range=(0, 4)),
    _r(3, "Public Key or Identity", _O, "PKOrIdentity", "Identity", mandatory=True),
    _r(4, "Server Public Key", _O, "ServerPKOrIdentity", "ServerPublicKey", mandatory=True),
    _r(5, "Secret Key", _O, "SecretKey", mandatory=True, secret=True),
    _r(6, "SMS Security Mode", _I, "SMSSecurityMode", value_range=(0, 255)),
    _r(7, "SMS Binding Key Parameters", _O, "SMSBindingKeyParameters"),
    _r(8, "SMS Binding Secret Key(s)", _O, "SMSBindingSecretKeys", secret=True),
    _r(9, "LwM2M Server SMS Number", _S, "ServerSMSNumber"),
    _r(10, "Short Server ID", _I, "ShortServerID", "SSID", value_range=(1, 65534)),
    _r(11, "Client Hold Off Time", _I, "ClientHoldOffTime"),
    _r(12, "Bootstrap-Server Account Timeout", _I, "BootstrapTimeout"),
    _r(13, "Matching Type", _U, "MatchingType", since="1.1", value_range=(0, 3)),
    _r(14, "SNI", _S, since="1.1"),
    _r(15, "Certificate Usage", _U, "CertificateUsage", since="1.1", value_range=(0, 3)),
    _r(16, "DTLS/TLS Ciphersuite", _U, "Ciphersuite", multiple=True, since="1.1"),
    _r(17, "OSCORE Security Mode", _L, "OSCORESecurityMode", since="1.1"),
    _r(18, "Groups To Use by Client", _U, multiple=True, since="1.2", value_range=(0, 65535)),
    _r(
        19, "Signature Algorithms Supported by Server", _U, multiple=True, since="1.2", value_range=(0, 65535)
    ),
    _r(20, "Signature Algorithms To Use by Client", _U, multiple=True, since="1.2", value_range=(0, 65535)),
    _r(
        21,
        "Signature Algorithm Certs Supported by Server",
        _U,
        multiple=True,
        since="1.2",
        value_range=(0, 65535),
    ),
    _r(22, "TLS 1.3 Features To Use by Client", _U, since="1.2"),
    _r(23, "TLS Extensions Supported by Server", _U, since="1.2"),
    _r(24, "TLS Extensions To Use by Client", _U, since="1.2"),
    _r(25, "Secondary LwM2M Server URI", _S, multiple=True, since="1.2"),
    _r(26, "MQTT Server", _L, since="1.2"),
    _r(27, "LwM2M COSE Security", _L, multiple=True, since="1.2"),
    _r(28, "RDS Destination Port", _I, since="1.2", value_range=(0, 15)),
    _r(29, "RDS Source Port", _I, since="1.2", value_range=(0, 15)),
    _r(30, "RDS Application ID", _S, since="1.2"),
)

_SERVER_RESOURCES: Final = (
    _r(0, "Short Server ID", _I, "ShortServerID", "SSID", mandatory=True, value_range=(1, 65534)),
    _r(1, "Lifetime", _I, mandatory=True),
    _r(2, "Default Minimum Period", _I, "DefaultMinPeriod"),
    _r(3, "Default Maximum Period", _I, "DefaultMaxPeriod"),
    _r(4, "Disable", _N),
    _r(5, "Disable Timeout", _I, "DisableTimeout"),
    _r(6, "Notification Storing When Disabled or Offline", _B, "NotificationStoring", mandatory=True),
    _r(7, "Binding", _S, mandatory=True),
    _r(8, "Registration Update Trigger", _N, mandatory=True),
    _r(9, "Bootstrap-Request Trigger", _N, since="1.1"),
    _r(10, "APN Link", _L, "APNLink", since="1.1"),
    _r(11, "TLS-DTLS Alert Code", _U, since="1.1", value_range=(0, 255)),
    _r(12, "Last Bootstrapped", _T, "LastBootstrapped", since="1.1"),
    _r(13, "Registration Priority Order", _U, since="1.1"),
    _r(14, "Initial Registration Delay Timer", _U, since="1.1"),
    _r(15, "Registration Failure Block", _B, since="1.1"),
    _r(16, "Bootstrap on Registration Failure", _B, since="1.1"),
    _r(17, "Communication Retry Count", _U, since="1.1"),
    _r(18, "Communication Retry Timer", _U, since="1.1"),
    _r(19, "Communication Sequence Delay Timer", _U, since="1.1"),
    _r(20, "Communication Sequence Retry Count", _U, since="1.1"),
    _r(21, "Trigger", _B, since="1.1"),
    _r(22, "Preferred Transport", _S, since="1.1"),
    _r(23, "Mute Send", _B, since="1.1"),
    _r(24, "Alternate APN Links", _L, multiple=True, since="1.2"),
    _r(25, "Supported Server Versions", _S, multiple=True, since="1.2"),
    _r(26, "Default Notification Mode", _I, since="1.2", value_range=(0, 1)),
    _r(27, "Profile ID Hash Algorithm", _U, since="1.2", value_range=(0, 255)),
)

_DEVICE_RESOURCES: Final = (
    _r(0, "Manufacturer", _S),
    _r(1, "Model Number", _S),
    _r(2, "Serial Number", _S),
    _r(3, "Firmware Version", _S),
    _r(4, "Reboot", _N, mandatory=True),
    _r(5, "Factory Reset", _N),
    _r(6, "Available Power Sources", _I, multiple=True, value_range=(0, 7)),
    _r(7, "Power Source Voltage", _I, multiple=True),
    _r(8, "Power Source Current", _I, multiple=True),
    _r(9, "Battery Level", _I, value_range=(0, 100)),
    _r(10, "Memory Free", _I),
    _r(11, "Error Code", _I, multiple=True, mandatory=True, value_range=(0, 32)),
    _r(12, "Reset Error Code", _N),
    _r(13, "Current Time", _T),
    _r(14, "UTC Offset", _S),
    _r(15, "Timezone", _S),
    _r(16, "Supported Binding and Modes", _S, mandatory=True),
    _r(17, "Device Type", _S),
    _r(18, "Hardware Version", _S),
    _r(19, "Software Version", _S),
    _r(20, "Battery Status", _I, value_range=(0, 6)),
    _r(21, "Memory Total", _I),
    _r(22, "ExtDevInfo", _L, multiple=True),
)

SECURITY: Final = ObjectSpec(
    0, "LwM2M Security", True, {r.rid: r for r in _SECURITY_RESOURCES}, ("Security",)
)
SERVER: Final = ObjectSpec(1, "LwM2M Server", True, {r.rid: r for r in _SERVER_RESOURCES}, ("Server",))
DEVICE: Final = ObjectSpec(3, "Device", False, {r.rid: r for r in _DEVICE_RESOURCES})

OBJECTS: Final[Mapping[int, ObjectSpec]] = {spec.oid: spec for spec in (SECURITY, SERVER, DEVICE)}
"""Every object provkit knows, by id."""

_OBJECT_NAMES: Final[dict[str, int]] = {
    normalize_name(label): spec.oid for spec in OBJECTS.values() for label in (spec.name, *spec.aliases)
}

SECURITY_MODES: Final[Mapping[int, str]] = {0: "psk", 1: "rpk", 2: "cert", 3: "nosec", 4: "est"}
"""Security Mode (/0/x/2) values and their short names."""


def find_object(key: int | str) -> ObjectSpec | None:
    """Return the object with that id, registry name or alias (``"Security"``, ``"LwM2M Server"``, ``1``)."""
    if isinstance(key, int):
        return OBJECTS.get(key)
    text = key.strip()
    if text.isdigit():
        return OBJECTS.get(int(text))
    oid = _OBJECT_NAMES.get(normalize_name(text))
    return None if oid is None else OBJECTS[oid]


def resource_spec(oid: int, rid: int) -> ResourceSpec | None:
    """Return the spec of ``/oid/x/rid``, or ``None`` for an unknown object or resource."""
    obj = OBJECTS.get(oid)
    return None if obj is None else obj.resources.get(rid)

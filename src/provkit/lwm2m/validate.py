"""The Security and Server object rules the device checks before committing.

:func:`validate_entries` groups entries by instance and applies the ``validate_instance``
rules of Anjay's Security and Server objects
(``src/modules/security/anjay_security_transaction.c``,
``src/modules/server/anjay_server_transaction.c``). The host runs it before building a
blob (so mistakes surface in the factory, not as a device result code) and the device
acceptor runs it before committing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Final

from provkit.errors import Lwm2mError
from provkit.lwm2m.senml import Entry, Value

SUPPORTED_MODES: Final = frozenset({0, 2, 3, 4})
"""PSK, Certificate, NoSec, Certificate with EST (RPK, 1, is not implemented by the device)."""

_LWM2M10_BINDINGS: Final = frozenset({"U", "UQ", "S", "SQ", "US", "UQS"})
_TRANSPORT_LETTERS: Final = frozenset("USTN")


class ConfigurationRejected(Lwm2mError, ValueError):
    """The Security/Server configuration breaks a device rule; ``path`` names the instance or resource."""

    default_code = 5004

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


Instance = dict[int, Value | dict[int, Value]]


def group_instances(entries: Iterable[Entry]) -> dict[tuple[int, int], Instance]:
    """Group entries as ``{(oid, iid): {rid: value | {riid: value}}}``."""
    grouped: dict[tuple[int, int], Instance] = defaultdict(dict)
    for entry in entries:
        oid, iid, rid, *rest = entry.ids
        instance = grouped[(oid, iid)]
        if rest:
            multi = instance.setdefault(rid, {})
            if isinstance(multi, dict):
                multi[rest[0]] = entry.value
        else:
            instance[rid] = entry.value
    return dict(grouped)


def _scheme(uri: str) -> str:
    return uri.partition("://")[0].lower() if "://" in uri else ""


def _transport(scheme: str) -> str:
    _, _, suffix = scheme.partition("+")
    return suffix or "udp"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_security(iid: int, res: Instance, credentials: bool) -> tuple[bool, int | None, str]:
    where = f"/0/{iid}"
    for rid, name in ((0, "LwM2M Server URI"), (1, "Bootstrap-Server"), (2, "Security Mode")):
        if rid not in res:
            raise ConfigurationRejected(f"{name} (/0/{iid}/{rid}) is missing", path=where)
    bootstrap = res[1] is True
    mode = _int(res[2])
    if mode is None or mode not in SUPPORTED_MODES:
        why = "RPK (1) is not supported" if mode == 1 else f"{res[2]!r} is not 0, 2, 3 or 4"
        raise ConfigurationRejected(f"Security Mode {why}", path=f"{where}/2")
    if not bootstrap and 10 not in res:
        raise ConfigurationRejected(
            "Short Server ID (/10) is required for a non-bootstrap server", path=where
        )
    uri = res[0]
    if not isinstance(uri, str):
        raise ConfigurationRejected("LwM2M Server URI must be text", path=f"{where}/0")
    scheme = _scheme(uri)
    base = scheme.partition("+")[0]
    if base == "coap" and mode != 3:
        raise ConfigurationRejected(
            f"{scheme}:// is unsecured but Security Mode is {mode}", path=f"{where}/0"
        )
    if base == "coaps" and mode == 3:
        raise ConfigurationRejected(f"{scheme}:// needs a secure mode, not NoSec (3)", path=f"{where}/0")
    if mode == 0 or (credentials and mode in (2, 4)):
        for rid, name in ((3, "Public Key or Identity"), (5, "Secret Key")):
            if not res.get(rid):
                raise ConfigurationRejected(f"{name} (/{rid}) is required in this Security Mode", path=where)
    matching = _int(res.get(13, 0))
    if matching is not None and (matching > 3 or matching == 2):
        raise ConfigurationRejected(
            "Matching Type must be 0, 1 or 3 (SHA-384 is unsupported)", path=f"{where}/13"
        )
    usage = _int(res.get(15, 3))
    if usage is not None and usage > 3:
        raise ConfigurationRejected("Certificate Usage must be 0..3", path=f"{where}/15")
    return bootstrap, _int(res.get(10)), _transport(scheme)


def binding_valid(binding: str) -> bool:
    """Whether a Binding string is valid (LwM2M 1.0 forms, or distinct letters of U, S, T, N)."""
    if binding in _LWM2M10_BINDINGS:
        return True
    return bool(binding) and set(binding) <= _TRANSPORT_LETTERS and len(set(binding)) == len(binding)


def _check_server(iid: int, res: Instance) -> None:
    where = f"/1/{iid}"
    for rid, name in ((0, "Short Server ID"), (1, "Lifetime"), (6, "Notification Storing"), (7, "Binding")):
        if rid not in res:
            raise ConfigurationRejected(f"{name} (/1/{iid}/{rid}) is missing", path=where)
    ssid = _int(res[0])
    if ssid is None or not 1 <= ssid <= 65534:
        raise ConfigurationRejected("Short Server ID must be 1..65534", path=f"{where}/0")
    minimums = {
        1: ("Lifetime", 0),
        2: ("Default Minimum Period", 0),
        3: ("Default Maximum Period", 1),
        5: ("Disable Timeout", 0),
        12: ("Last Bootstrapped", 0),
    }
    for rid, (name, low) in minimums.items():
        value = _int(res.get(rid, low))
        if value is not None and value < low:
            raise ConfigurationRejected(f"{name} must be at least {low}", path=f"{where}/{rid}")
    binding = res[7]
    if not isinstance(binding, str) or not binding_valid(binding):
        raise ConfigurationRejected(f"Binding {binding!r} is not valid", path=f"{where}/7")
    preferred = res.get(22)
    if preferred is not None and (not isinstance(preferred, str) or preferred not in _TRANSPORT_LETTERS):
        raise ConfigurationRejected("Preferred Transport must be one of U, S, T, N", path=f"{where}/22")
    for rid in (17, 20):
        if rid in res and res[rid] == 0:
            raise ConfigurationRejected("a retry count must not be 0", path=f"{where}/{rid}")


def validate_instances(
    instances: Mapping[tuple[int, int], Instance], *, require_credentials: bool = True
) -> None:
    """Apply the Security (/0) and Server (/1) rules to grouped instances.

    Args:
        instances: grouped instances.
        require_credentials: demand /3 and /5 in certificate modes too (``False`` while the
            factory still has to add generated certificates).

    Raises:
        ConfigurationRejected: the first rule broken, naming its path.
    """
    bootstrap_seen: int | None = None
    accounts: dict[tuple[int | None, str], int] = {}
    for (oid, iid), res in sorted(instances.items()):
        if oid == 0:
            bootstrap, ssid, transport = _check_security(iid, res, require_credentials)
            if bootstrap:
                if bootstrap_seen is not None:
                    raise ConfigurationRejected(
                        f"a second bootstrap server (the first is /0/{bootstrap_seen})", path=f"/0/{iid}"
                    )
                bootstrap_seen = iid
                continue
            if (ssid, transport) in accounts:
                raise ConfigurationRejected(
                    f"Short Server ID {ssid} over {transport} is already used by "
                    f"/0/{accounts[(ssid, transport)]}",
                    path=f"/0/{iid}/10",
                )
            accounts[(ssid, transport)] = iid
        elif oid == 1:
            _check_server(iid, res)


def validate_entries(entries: Iterable[Entry]) -> None:
    """Group ``entries`` by instance and apply :func:`validate_instances`."""
    validate_instances(group_instances(entries))

"""Target profiles: which resources a device's LwM2M client lets a factory bootstrap write.

The object registry (:mod:`provkit.lwm2m.objects`) lists every resource LwM2M defines; a
real client implements fewer, and a factory bootstrap can write only those its objects'
write handlers take. A blob that names any other resource makes the device refuse the
whole blob (result ``-1`` over SMP), so provkit refuses it on the host, naming the resource
and the reason.

``anjay`` (the default) is measured against the real Anjay 3.14:

* Security /0 — resources 0–5 and 10–16 (``src/modules/security/anjay_mod_security.c``;
  the SMS resources 6–9 and the 1.2 resources 17–30 are not implemented); a bootstrap
  writes all of them.
* Server /1 — resources 0–3, 5–7, 11, 12, 14, 16–20, 22 and 23 that hold a value
  (``src/modules/server/anjay_mod_server.c``; 4, 8 and 9 are executables, 10, 13, 15, 21
  and 24–27 are not implemented); a bootstrap writes all of them, the read-only ones
  (0, 11, 12, 16) included.
* Device /3 — the demo's Device object (``demo/objects/device.c``) implements 0–22, but
  its write handler takes only 13 Current Time, 14 UTC Offset and 15 Timezone.

``generic`` allows every resource of the registry that holds a value.

A second rule concerns certificate modes: a Security instance in mode 2 or 4 without a
Server Public Key (``/0/x/4``, the server certificate given with ``-p``) makes the device
trust any server that presents a certificate. It is refused unless explicitly allowed
(:func:`check_server_certificates`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from provkit.errors import Lwm2mError, TargetRefused, UnverifiedServer
from provkit.lwm2m.objects import OBJECTS, ResourceType
from provkit.lwm2m.senml import Entry

__all__ = [
    "ANJAY",
    "DEFAULT_TARGET",
    "GENERIC",
    "PROFILES",
    "TargetProfile",
    "TargetRefused",
    "UnverifiedServer",
    "check_server_certificates",
    "get_profile",
]


def _ids(*spans: int | tuple[int, int]) -> frozenset[int]:
    out: set[int] = set()
    for span in spans:
        low, high = (span, span) if isinstance(span, int) else span
        out.update(range(low, high + 1))
    return frozenset(out)


def _ranges(ids: Iterable[int]) -> str:
    """``{0, 1, 2, 5, 6}`` → ``"0–2, 5, 6"`` (runs of three or more as ranges)."""
    runs: list[list[int]] = []
    for rid in sorted(ids):
        if runs and rid == runs[-1][1] + 1:
            runs[-1][1] = rid
        else:
            runs.append([rid, rid])
    parts = [f"{a}–{b}" if b - a > 1 else ", ".join(map(str, range(a, b + 1))) for a, b in runs]
    return ", ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class TargetProfile:
    """What one kind of device client accepts in a factory bootstrap.

    Attributes:
        name: the profile's name (``--target``).
        client: how messages name the client, e.g. ``"Anjay 3.14"``.
        implemented: object id → resource ids its client implements (objects absent here
            are not supported at all); ``None`` for the whole registry.
        writable: object id → resource ids a factory bootstrap can write; objects absent
            here take every implemented resource.
        sources: object id → the public source file the rule mirrors, for messages.
    """

    name: str
    client: str
    implemented: Mapping[int, frozenset[int]] | None
    writable: Mapping[int, frozenset[int]]
    sources: Mapping[int, str]

    def refusal(self, oid: int, rid: int) -> str | None:
        """Return why ``/oid/x/rid`` cannot be written on this target, or ``None`` if it can."""
        obj = OBJECTS.get(oid)
        spec = None if obj is None else obj.resources.get(rid)
        if obj is None or spec is None:
            return f"object {oid} resource {rid} is not in the LwM2M registry provkit knows"
        if spec.type is ResourceType.NONE:
            return f"{spec.name} is executable and holds no value"
        where = f" ({self.sources[oid]})" if oid in self.sources else ""
        if self.implemented is not None:
            implemented = self.implemented.get(oid)
            if implemented is None:
                return f"{self.client} does not install the {obj.name} object"
            if rid not in implemented:
                return (
                    f"{spec.name} is not implemented by {self.client}'s {obj.name} object{where}; "
                    f"it implements {_ranges(implemented)}"
                )
        writable = self.writable.get(oid)
        if writable is not None and rid not in writable:
            return (
                f"{spec.name} is read-only in {self.client}'s {obj.name} object{where}: a factory "
                f"bootstrap writes only {_ranges(writable)}"
            )
        return None

    def check(self, entries: Iterable[Entry]) -> None:
        """Refuse the first entry this target cannot take.

        Raises:
            TargetRefused: naming the resource's path and name and the reason.
        """
        for entry in entries:
            oid, _, rid, *_ = entry.ids
            why = self.refusal(oid, rid)
            if why is not None:
                raise TargetRefused(
                    f"refused for target {self.name!r}: {why}", path=entry.path, target=self.name
                )


ANJAY: Final = TargetProfile(
    name="anjay",
    client="Anjay 3.14",
    implemented={
        0: _ids((0, 5), (10, 16)),
        1: _ids((0, 3), (5, 7), 11, 12, 14, (16, 20), 22, 23),
        3: _ids((0, 22)),
    },
    writable={3: _ids(13, 14, 15)},
    sources={
        0: "AVSystem/Anjay src/modules/security/anjay_mod_security.c",
        1: "AVSystem/Anjay src/modules/server/anjay_mod_server.c",
        3: "AVSystem/Anjay demo/objects/device.c",
    },
)
"""Anjay 3.14's Security and Server modules and its demo's Device object."""

GENERIC: Final = TargetProfile(
    name="generic", client="a generic client", implemented=None, writable={}, sources={}
)
"""Every registry resource that holds a value."""

PROFILES: Final[Mapping[str, TargetProfile]] = {p.name: p for p in (ANJAY, GENERIC)}
"""The profiles by name."""

DEFAULT_TARGET: Final = ANJAY.name


def get_profile(name: str | TargetProfile) -> TargetProfile:
    """Return the profile of that name (a profile is returned as it is).

    Raises:
        Lwm2mError: no such profile.
    """
    if isinstance(name, TargetProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise Lwm2mError(f"unknown target {name!r} (known: {', '.join(PROFILES)})") from None


def check_server_certificates(entries: Iterable[Entry]) -> None:
    """Refuse a certificate-mode (2, 4) Security instance without a Server Public Key (``/0/x/4``).

    Raises:
        UnverifiedServer: naming the instance.
    """
    modes: dict[int, object] = {}
    server_keys: set[int] = set()
    for entry in entries:
        oid, iid, rid, *_ = entry.ids
        if oid != 0:
            continue
        if rid == 2:
            modes[iid] = entry.value
        elif rid == 4 and isinstance(entry.value, bytes) and entry.value:
            server_keys.add(iid)
    for iid, mode in sorted(modes.items()):
        if mode in (2, 4) and not isinstance(mode, bool) and iid not in server_keys:
            raise UnverifiedServer(
                f"certificate mode without a server certificate (/0/{iid}/4): the device would "
                "trust any server",
                path=f"/0/{iid}",
            )

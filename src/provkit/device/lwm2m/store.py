"""Where the LwM2M configuration lives in the device's secure storage (KCM).

Each resource (instance) is one KCM item named ``lwm2m.<oid>.<iid>.<rid>[.<riid>]``:

* secrets (Secret Key ``/0/x/5``, SMS Binding Secret Keys ``/0/x/8``) are stored raw in a
  sealed namespace, so they are encrypted at rest: a P-256 private key of a certificate
  mode instance in the private-key namespace (KCM checks it parses), anything else
  (PSK keys, other key types) in the symmetric-key namespace;
* everything else is a configuration item holding the SenML value map of the record
  (``{2: 86400}``, ``{3: "U"}``, ``{"vlo": "1:0"}``), so its type survives the round trip.
"""

from __future__ import annotations

from typing import Final

from provkit.crypto import keys
from provkit.device.kcm import ItemType, Kcm
from provkit.errors import CryptoError, SenmlError, StorageError
from provkit.lwm2m import cbor
from provkit.lwm2m.objects import resource_spec
from provkit.lwm2m.paths import format_path
from provkit.lwm2m.senml import Entry
from provkit.lwm2m.senml_cbor import entry_map
from provkit.lwm2m.strict import check_records

ITEM_PREFIX: Final = "lwm2m."
"""Name prefix of every LwM2M item."""

_TYPES: Final = (ItemType.CONFIG, ItemType.SYMMETRIC_KEY, ItemType.PRIVATE_KEY)
_CERT_MODES: Final = (2, 4)


def item_name(ids: tuple[int, ...]) -> str:
    """Return the KCM item name of a resource path (``(0, 1, 5)`` → ``"lwm2m.0.1.5"``)."""
    return ITEM_PREFIX + ".".join(str(part) for part in ids)


def _is_p256_key(data: bytes) -> bool:
    try:
        keys.require_p256(keys.load_private_key(data))
    except CryptoError:
        return False
    return data[:1] == b"\x30"


def item_type_for(entry: Entry, security_mode: int | None) -> ItemType:
    """Choose the namespace for one entry (see the module docstring)."""
    ids = entry.ids
    spec = resource_spec(ids[0], ids[2])
    if spec is None or not spec.secret or not isinstance(entry.value, bytes) or not entry.value:
        return ItemType.CONFIG
    if ids[0] == 0 and ids[2] == 5 and security_mode in _CERT_MODES and _is_p256_key(entry.value):
        return ItemType.PRIVATE_KEY
    return ItemType.SYMMETRIC_KEY


def wipe(kcm: Kcm) -> int:
    """Delete every LwM2M item; return how many were deleted."""
    count = 0
    for info in kcm.list_items():
        if info.name.startswith(ITEM_PREFIX) and info.type in _TYPES:
            kcm.item_delete(info.name, info.type)
            count += 1
    return count


def store(kcm: Kcm, entries: list[Entry], modes: dict[int, int]) -> None:
    """Store entries (the caller wiped first and holds a transaction).

    Args:
        kcm: the device storage.
        entries: validated entries.
        modes: Security instance id → Security Mode, to place private keys.
    """
    for entry in entries:
        ids = entry.ids
        kind = item_type_for(entry, modes.get(ids[1]) if ids[0] == 0 else None)
        if kind is ItemType.CONFIG:
            data = cbor.dumps({k: v for k, v in entry_map(entry).items() if k != 0})
        else:
            assert isinstance(entry.value, bytes)
            data = entry.value
        kcm.item_store(item_name(ids), kind, data)


def _ids(name: str) -> tuple[int, ...]:
    parts = name[len(ITEM_PREFIX) :].split(".")
    if not all(part.isdigit() for part in parts):
        raise StorageError(f"LwM2M item {name!r} has a malformed name", item=name)
    return tuple(int(part) for part in parts)


def load(kcm: Kcm) -> list[Entry]:
    """Read the stored configuration back as entries, ordered by path.

    Raises:
        StorageError: an item is unreadable or corrupt.
    """
    entries: list[tuple[tuple[int, ...], Entry]] = []
    for info in kcm.list_items():
        if not info.name.startswith(ITEM_PREFIX) or info.type not in _TYPES:
            continue
        ids = _ids(info.name)
        data = kcm.item_get(info.name, info.type)
        path = format_path(ids)
        if info.type is ItemType.CONFIG:
            try:
                pairs = cbor.loads(data)
                if not isinstance(pairs, cbor.Pairs):
                    raise SenmlError("not a value map")
                (entry,) = check_records([[(0, path), *pairs.items]])
            except (SenmlError, ValueError) as exc:
                raise StorageError(f"LwM2M item {info.name!r} is corrupt: {exc}", item=info.name) from exc
        else:
            entry = Entry(path, data)
        entries.append((ids, entry))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]

"""The device side: FCC bundle handler and verification over KCM secure storage.

* :mod:`provkit.device.storage` — SQLite and memory backends.
* :mod:`provkit.device.kcm` — items, namespaces, chains, factory reset, encryption at rest.
* :mod:`provkit.device.clock` — the device clock set by ``mbed.CurrentTime``.
* :mod:`provkit.device.verify` — ``fcc_verify_device_configured_4mbed_cloud``.
* :mod:`provkit.device.fcc` — ``FactoryConfiguratorClient`` and the C-API mirrors.
* :mod:`provkit.device.handlers` — the device agent's handlers for a client.

The names below are the device side's public API. They are imported on first use, so
``import provkit.device.storage`` loads no more than storage (a factory tool importing
one of them never loads the rest of the device side).
"""

from __future__ import annotations

import importlib
from typing import Any, Final

_HOMES: Final[dict[str, str]] = {
    "FactoryConfiguratorClient": "provkit.device.fcc",
    "HandlerResult": "provkit.device.fcc",
    "Kcm": "provkit.device.kcm",
    "ItemType": "provkit.device.kcm",
    "ItemInfo": "provkit.device.kcm",
    "MemoryStorage": "provkit.device.storage",
    "SqliteStorage": "provkit.device.storage",
    "StorageBackend": "provkit.device.storage",
    "OpenMode": "provkit.device.storage",
    "open_storage": "provkit.device.storage",
    "DeviceClock": "provkit.device.clock",
    "VerifyResult": "provkit.device.verify",
    "verify_device": "provkit.device.verify",
    "device_handlers": "provkit.device.handlers",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

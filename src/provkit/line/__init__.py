"""The factory line: batch prepare / inject / verify with resume, and the virtual device farm.

See ``docs/factory-line.md``. The names below are the line's public API: a batch
(:class:`Batch` with :class:`BatchOptions`, its :class:`BatchReport` of
per-device :class:`DeviceOutcome`), the virtual device farms, Zephyr boards' options, the sealed
bundle archive and the demo. They are imported on first use (PEP 562), so importing one
module of the line loads no more than it needs.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

_HOMES: Final[dict[str, str]] = {
    "Batch": "provkit.line.batch",
    "BatchOptions": "provkit.line.context",
    "BatchReport": "provkit.line.outcome",
    "DeviceOutcome": "provkit.line.outcome",
    "Progress": "provkit.line.outcome",
    "NoProgress": "provkit.line.outcome",
    "DeviceFarm": "provkit.line.farm",
    "SmpDeviceFarm": "provkit.line.smp_farm",
    "BoardOptions": "provkit.line.boards",
    "BundleArchive": "provkit.line.archive",
    "SettledBundles": "provkit.line.archive",
    "unseal_bundle": "provkit.line.archive",
    "run_demo": "provkit.line.demo",
    "DemoResult": "provkit.line.demo",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

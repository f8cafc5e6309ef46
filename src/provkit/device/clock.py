"""The device clock: host time plus an offset that ``mbed.CurrentTime`` sets.

FCC passes ``mbed.CurrentTime`` to ``pal_osSetStrongTime()`` instead of storing it
(pelion-fcc.md §1.6). provkit keeps the difference to the host clock as the RBP item
``saved_time`` in the same storage, so it survives restarts and is undone with a failed
bundle's transaction. A device whose clock was never set reads time 0, which is what
makes verification warn ``Item not set:mbed.CurrentTime`` (§4 step 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from provkit.device.kcm import Kcm

SAVED_TIME: Final = "saved_time"
_OFFSET_BYTES: Final = 16  # signed; wide enough for any uint64 CurrentTime minus host time


class DeviceClock:
    """Device time in Unix seconds; 0 until set.

    Args:
        kcm: the storage holding the persisted offset.
        time_source: the host clock (injectable for tests); default :func:`time.time`.
    """

    def __init__(self, kcm: Kcm, *, time_source: Callable[[], float] = time.time) -> None:
        self.kcm = kcm
        self.time_source = time_source

    def now(self) -> int:
        """Return the device time, or 0 if it was never set."""
        raw = self.kcm.rbp_get(SAVED_TIME)
        if raw is None:
            return 0
        return int(self.time_source()) + int.from_bytes(raw, "little", signed=True)

    def is_set(self) -> bool:
        """Return whether the clock has been set."""
        return self.kcm.rbp_get(SAVED_TIME) is not None

    def set(self, unix_seconds: int) -> None:
        """Set the device time (persisting only the offset to the host clock)."""
        offset = int(unix_seconds) - int(self.time_source())
        self.kcm.rbp_set(SAVED_TIME, offset.to_bytes(_OFFSET_BYTES, "little", signed=True))

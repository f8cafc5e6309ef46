"""The device clock: host time plus an offset that ``mbed.CurrentTime`` sets.

FCC passes ``mbed.CurrentTime`` to ``pal_osSetStrongTime()`` instead of storing it
(``fcc_bundle_config_params_utils.c`` in PelionIoT/mbed-cloud-client). provkit keeps the
difference to the host clock as the RBP item ``saved_time`` in the same storage, so it
survives restarts and goes with the bundle's transaction. A device whose clock was never
set (or was set to 0, which PAL's ``pal_plat_osSetTime`` takes as "unset") reads time 0,
which is what makes verification warn ``Item not set:mbed.CurrentTime``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from provkit.device.kcm import Kcm

SAVED_TIME: Final = "saved_time"
_U64: Final = 1 << 64
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
        """Return the device time, or 0 if it was never set.

        PAL keeps the time as a uint64 (boot time plus seconds since boot), so a time set
        near ``2**64`` wraps round as the seconds pass.
        """
        raw = self.kcm.rbp_get(SAVED_TIME)
        if raw is None:
            return 0
        return (int(self.time_source()) + int.from_bytes(raw, "little", signed=True)) % _U64

    def is_set(self) -> bool:
        """Return whether the clock has been set."""
        return self.kcm.rbp_get(SAVED_TIME) is not None

    def clear(self) -> None:
        """Forget the time: the clock reads 0 again (``pal_osSetTime(0)``)."""
        self.kcm.rbp_delete(SAVED_TIME)

    def set(self, unix_seconds: int) -> None:
        """Set the device time (persisting only the offset to the host clock)."""
        offset = int(unix_seconds) - int(self.time_source())
        self.kcm.rbp_set(SAVED_TIME, offset.to_bytes(_OFFSET_BYTES, "little", signed=True))

"""The ``mbed.*`` item names FCC stores and verifies (pelion-fcc.md §3)."""

from __future__ import annotations

from typing import Final

USE_BOOTSTRAP: Final = "mbed.UseBootstrap"
ENDPOINT_NAME: Final = "mbed.EndpointName"
FIRST_TO_CLAIM: Final = "mbed.FirstToClaim"
CURRENT_TIME: Final = "mbed.CurrentTime"
TIMEZONE: Final = "mbed.Timezone"
UTC_OFFSET: Final = "mbed.UTCOffset"
MANUFACTURER: Final = "mbed.Manufacturer"
MODEL_NUMBER: Final = "mbed.ModelNumber"
DEVICE_TYPE: Final = "mbed.DeviceType"
HARDWARE_VERSION: Final = "mbed.HardwareVersion"
MEMORY_TOTAL_KB: Final = "mbed.MemoryTotalKB"
SERIAL_NUMBER: Final = "mbed.SerialNumber"
UPDATE_AUTH_CERT: Final = "mbed.UpdateAuthCert"
CLASS_ID: Final = "mbed.ClassId"
VENDOR_ID: Final = "mbed.VendorId"

META_DATA: Final = (MANUFACTURER, MODEL_NUMBER, DEVICE_TYPE, HARDWARE_VERSION, MEMORY_TOTAL_KB, SERIAL_NUMBER)
"""Checked for existence in this order (§4 step 5)."""

FOUR_BYTE_INTEGERS: Final = frozenset({USE_BOOTSTRAP, MEMORY_TOTAL_KB, FIRST_TO_CLAIM})
"""Integer config params stored as 4 bytes instead of 8 (§1.6)."""


class ModeNames:
    """The security object names of one connection mode (bootstrap or LwM2M).

    Attributes:
        ca: server CA certificate.
        uri: server URI.
        key: device private key.
        cert: device certificate (chain).
    """

    def __init__(self, stem: str) -> None:
        self.ca = f"mbed.{stem}ServerCACert"
        self.uri = f"mbed.{stem}ServerURI"
        self.key = f"mbed.{stem}DevicePrivateKey"
        self.cert = f"mbed.{stem}DeviceCert"


BOOTSTRAP: Final = ModeNames("Bootstrap")
LWM2M: Final = ModeNames("LwM2M")

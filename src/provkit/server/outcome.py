"""How a first connection failed: the classification a line report and the registry carry."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Failure(StrEnum):
    """Why a device's first connection failed; each has its provkit code (8010-8017)."""

    TLS_ALERT = "tls-alert"
    """The server ended the DTLS handshake with an alert (e.g. ``unknown_psk_identity``)."""
    CA_UNTRUSTED = "ca-untrusted"
    """The server does not trust the device's CA, or the device does not trust the server's."""
    CN_MISMATCH = "cn-mismatch"
    """The certificate's CN is not the endpoint name the device uses."""
    REVOKED = "revoked"
    """The endpoint or its certificate is revoked."""
    TIMEOUT = "timeout"
    """No answer in time (also what a wrong PSK key looks like)."""
    REFUSED = "refused"
    """The server answered a CoAP error (other than the reasons above)."""
    UNREACHABLE = "unreachable"
    """The network refused (no route, nothing listening)."""
    DEVICE_CONFIG = "device-config"
    """The device's stored configuration lacks what a connection needs."""

    @property
    def code(self) -> int:
        """The provkit code of this failure."""
        return _CODES[self]


_CODES: Final = {
    Failure.TLS_ALERT: 8010,
    Failure.CA_UNTRUSTED: 8011,
    Failure.CN_MISMATCH: 8012,
    Failure.REVOKED: 8013,
    Failure.TIMEOUT: 8014,
    Failure.REFUSED: 8015,
    Failure.UNREACHABLE: 8016,
    Failure.DEVICE_CONFIG: 8017,
}

REFUSAL_FAILURES: Final = {
    "cn-mismatch": Failure.CN_MISMATCH,
    "revoked": Failure.REVOKED,
    "identity": Failure.REFUSED,
    "nosec": Failure.REFUSED,
}
"""The classification a server's 4.03 diagnostic starts with → the device-side failure."""

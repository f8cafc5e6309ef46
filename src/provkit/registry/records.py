"""Plain records the registry returns (no SQLAlchemy objects leak out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

from provkit.registry.schema import AttemptState

_TIMESTAMPS: Final = ("created_at", "updated_at", "provisioned_at")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One provisioning attempt as recorded.

    Attributes mirror the ``attempts`` table; ``state`` is an :class:`AttemptState`;
    ``session_id`` is the FCU session id of a ``by_device`` attempt's prepared bundle.
    """

    id: int
    batch_id: str | None
    slot: str | None
    address: str | None
    endpoint_name: str
    serial_number: str
    station_id: str
    key_mode: str
    state: AttemptState
    bundle_sha256: str | None
    device_cert_sha256: str | None
    device_cert_serial: str | None
    ca_sha256: str | None
    return_status: int | None
    info_message: str | None
    warnings: str | None
    enrollment_id: str | None
    error_code: int | None
    error_message: str | None
    tries: int
    supersedes_id: int | None
    superseded_by_id: int | None
    created_at: datetime
    updated_at: datetime
    provisioned_at: datetime | None
    session_id: str | None = None
    response: bytes | None = None
    ca_key: str | None = None
    """The CA key that signed the device certificate (a PKCS#11 URI, or ``sha256:`` of a key file's
    public key); ``None`` when provkit did not sign it."""
    device_cert: bytes | None = None
    """The device certificate (DER), when the attempt was read with it (``get_attempt``)."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Attempt:
        """Build from a result row mapping."""
        values: dict[str, Any] = {name: row.get(name) for name in cls.__dataclass_fields__}
        values["state"] = AttemptState(values["state"])
        for key in _TIMESTAMPS:
            # SQLite keeps no time zone; every timestamp is written in UTC.
            moment = values[key]
            if moment is not None and moment.tzinfo is None:
                values[key] = moment.replace(tzinfo=UTC)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps ISO 8601, raw response and certificate left out)."""
        data = asdict(self)
        data.pop("response")
        data.pop("device_cert")
        data["state"] = str(self.state)
        for key in _TIMESTAMPS:
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


@dataclass(frozen=True, slots=True)
class NewAttempt:
    """What is known about an attempt when it is first recorded."""

    endpoint_name: str
    serial_number: str
    slot: str | None = None
    address: str | None = None
    key_mode: str = ""
    supersedes_id: int | None = None


@dataclass(frozen=True, slots=True)
class RegistryStats:
    """Counts for ``provkit registry stats``.

    Attributes:
        attempts: all attempts recorded.
        provisioned: devices currently recorded as provisioned.
        by_state: attempts per state.
        by_station: provisioned devices per station.
    """

    attempts: int
    provisioned: int
    by_state: dict[str, int]
    by_station: dict[str, int]

"""What the line view's pages show, read from the registry, as plain data.

The pages (Jinja2 templates), their JSON and their CSV exports are all made from the
objects built here, so what is exported is what is on screen. No private material
reaches them: an attempt's raw device answer and bundle never leave the registry; a
device certificate is public.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from provkit.crypto.x509 import (
    certificate_pem,
    load_certificate,
    not_valid_after,
    not_valid_before,
    sha256_fingerprint,
    subject_text,
)
from provkit.errors import ProvkitError
from provkit.registry import Registry
from provkit.registry.activity import (
    BatchProgress,
    FailureCount,
    LineActivity,
    StationActivity,
    device_certificate,
    line_activity,
)
from provkit.registry.connections import Connection
from provkit.registry.records import Attempt
from provkit.server.lineview.chart import station_colour
from provkit.server.lineview.texts import code_text, device_status_text

MAX_HOURS: Final = 7 * 24.0
"""The longest window the overview reads (a week)."""
SEARCH_LIMIT: Final = 200
"""Attempts a search lists at most."""


@dataclass(frozen=True, slots=True)
class OverviewFilter:
    """The overview's settings, all in its URL.

    Attributes:
        hours: the window's length.
        quiet_minutes: minutes of silence after which a busy station counts as quiet.
        refresh_seconds: how often the page updates itself.
    """

    hours: float = 3.0
    quiet_minutes: float = 5.0
    refresh_seconds: float = 3.0

    def query(self) -> str:
        """The URL query string of this filter."""
        return f"hours={self.hours:g}&quiet={self.quiet_minutes:g}&refresh={self.refresh_seconds:g}"


def read_overview(registry: Registry, settings: OverviewFilter, now: datetime | None = None) -> LineActivity:
    """The overview's figures, read in one transaction."""
    moment = now or datetime.now(UTC)
    with registry.reading() as conn:
        return line_activity(
            conn,
            now=moment,
            hours=settings.hours,
            quiet_after=timedelta(minutes=settings.quiet_minutes),
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _rate(activity: LineActivity, minutes: int) -> float:
    since = activity.until - timedelta(minutes=minutes)
    return activity.provisioned_since(since) / minutes


def counters(activity: LineActivity) -> dict[str, Any]:
    """The overview's headline figures."""
    yields = activity.yields
    return {
        "provisioned_window": activity.provisioned_in_window,
        "provisioned_last_hour": activity.provisioned_since(activity.until - timedelta(hours=1)),
        "per_minute_last_5": round(_rate(activity, 5), 1),
        "provisioned_total": activity.provisioned_total,
        "attempts_total": activity.attempts_total,
        "first_pass_yield": yields.first_pass_yield,
        "final_yield": yields.final_yield,
        "failures_window": sum(failure.count for failure in activity.failures),
        "running_batches": sum(1 for batch in activity.batches if batch.running),
        "quiet_stations": sum(1 for station in activity.stations if station.quiet),
    }


def batch_row(batch: BatchProgress) -> dict[str, Any]:
    """A batch as the overview lists it."""
    return {
        "batch_id": batch.batch_id,
        "station_id": batch.station_id,
        "source": batch.source,
        "created_at": _iso(batch.created_at),
        "total": batch.total,
        "verified": batch.verified,
        "failed": batch.failed,
        "pending": batch.pending,
        "progress": round(batch.progress, 4),
        "running": batch.running,
        "rate_per_minute": None if batch.rate_per_minute is None else round(batch.rate_per_minute, 1),
        "eta_seconds": None if batch.eta_seconds is None else round(batch.eta_seconds),
    }


def failure_row(failure: FailureCount) -> dict[str, Any]:
    """A failure code as the overview lists it, with its meaning."""
    return {
        "code": failure.code,
        "text": code_text(failure.code),
        "device_status": failure.device_status,
        "device_status_text": None
        if failure.device_status is None
        else device_status_text(failure.device_status),
        "count": failure.count,
        "example": failure.example,
    }


def station_row(station: StationActivity, index: int) -> dict[str, Any]:
    """A station as the overview lists it."""
    return {
        "station_id": station.station_id,
        "last_activity": _iso(station.last_activity),
        "quiet": station.quiet,
        "colour": station_colour(index),
    }


def overview_json(activity: LineActivity, settings: OverviewFilter) -> dict[str, Any]:
    """Everything the overview shows, as JSON."""
    return {
        "since": _iso(activity.since),
        "until": _iso(activity.until),
        "filter": {"hours": settings.hours, "quiet_minutes": settings.quiet_minutes},
        "counters": counters(activity),
        "per_minute": [
            {"station_id": series.station_id, "minute": _iso(minute), "devices": n}
            for series in activity.series
            for minute, n in series.counts
        ],
        "batches": [batch_row(batch) for batch in activity.batches],
        "failures": [failure_row(failure) for failure in activity.failures],
        "stations": [station_row(station, index) for index, station in enumerate(_ordered(activity))],
    }


def _ordered(activity: LineActivity) -> list[StationActivity]:
    """Stations in chart order (those in the chart first, as coloured there), then the rest."""
    charted = [series.station_id for series in activity.series]
    by_id = {station.station_id: station for station in activity.stations}
    first = [by_id[station] for station in charted if station in by_id]
    return first + [station for station in activity.stations if station.station_id not in charted]


OVERVIEW_TABLES: Final = ("per_minute", "batches", "failures", "stations")
"""Tables of the overview that export as CSV."""


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header of ``columns``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return out.getvalue()


def overview_csv(activity: LineActivity, settings: OverviewFilter, table: str) -> str:
    """One table of the overview as CSV (``table`` is one of :data:`OVERVIEW_TABLES`)."""
    rows: list[dict[str, Any]] = overview_json(activity, settings)[table]
    columns = list(rows[0]) if rows else _EMPTY_COLUMNS[table]
    return to_csv(rows, columns)


_EMPTY_COLUMNS: Final[dict[str, list[str]]] = {
    "per_minute": ["station_id", "minute", "devices"],
    "batches": ["batch_id", "station_id", "source", "created_at", "total", "verified", "failed", "pending"],
    "failures": ["code", "text", "device_status", "device_status_text", "count", "example"],
    "stations": ["station_id", "last_activity", "quiet", "colour"],
}

ATTEMPT_COLUMNS: Final = (
    "id",
    "endpoint_name",
    "serial_number",
    "station_id",
    "batch_id",
    "state",
    "key_mode",
    "tries",
    "created_at",
    "updated_at",
    "provisioned_at",
    "return_status",
    "info_message",
    "warnings",
    "error_code",
    "error_text",
    "error_message",
    "device_cert_sha256",
    "enrollment_id",
    "ca_key",
)
"""Columns of an attempt in the device pages and their exports."""


def attempt_row(attempt: Attempt) -> dict[str, Any]:
    """An attempt as the device pages show it (no raw answer, no bundle)."""
    data = attempt.to_json()
    data["warnings"] = [w for w in (attempt.warnings or "").split("\n") if w]
    data["error_text"] = None if attempt.error_code is None else code_text(attempt.error_code)
    data["return_status_text"] = (
        None if attempt.return_status is None else device_status_text(attempt.return_status)
    )
    return data


def search(registry: Registry, key: str) -> list[Attempt]:
    """Attempts naming ``key``, newest first (at most :data:`SEARCH_LIMIT`).

    ``key`` is an endpoint name, serial number, certificate fingerprint, enrollment id or
    attempt id.
    """
    text = key.strip()
    if not text:
        return []
    return list(reversed(registry.lookup(text)))[:SEARCH_LIMIT]


@dataclass(frozen=True, slots=True)
class CertificateView:
    """A device certificate as its page shows it.

    Attributes:
        subject: the subject DN (RFC 4514).
        issuer: the issuer DN.
        serial: the serial number (hex).
        not_before: start of validity.
        not_after: end of validity.
        sha256: fingerprint, lower-case hex.
        pem: the certificate, PEM.
        attempt_id: the attempt that recorded it.
    """

    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    sha256: str
    pem: str
    attempt_id: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "sha256": self.sha256,
            "pem": self.pem,
            "attempt_id": self.attempt_id,
        }


def certificate_view(attempt_id: int, der: bytes) -> CertificateView | None:
    """The certificate ``der`` as shown, or ``None`` if it does not parse."""
    try:
        cert = load_certificate(der)
    except ProvkitError:
        return None
    return CertificateView(
        subject=subject_text(cert),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        not_before=not_valid_before(cert),
        not_after=not_valid_after(cert),
        sha256=sha256_fingerprint(cert).hex(),
        pem=certificate_pem([cert]).decode(),
        attempt_id=attempt_id,
    )


@dataclass(frozen=True, slots=True)
class DevicePage:
    """Everything known of one device.

    Attributes:
        endpoint_name: the device.
        attempts: its attempts, newest first.
        certificate: its newest recorded certificate.
        connections: its first connection and later ones, per service.
        revoked: whether the servers refuse it.
    """

    endpoint_name: str
    attempts: tuple[Attempt, ...]
    certificate: CertificateView | None
    connections: tuple[Connection, ...]
    revoked: bool

    @property
    def provisioned(self) -> Attempt | None:
        """The attempt the device holds its identity from, if any."""
        return next((a for a in self.attempts if a.state == "verified"), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the page."""
        return {
            "endpoint_name": self.endpoint_name,
            "revoked": self.revoked,
            "attempts": [attempt_row(attempt) for attempt in self.attempts],
            "certificate": None if self.certificate is None else self.certificate.to_json(),
            "connections": [connection_row(connection) for connection in self.connections],
        }


def connection_row(connection: Connection) -> dict[str, Any]:
    """A connection record as the device page shows it."""
    return {
        "service": connection.service,
        "outcome": str(connection.outcome),
        "first_seen": _iso(connection.first_seen),
        "last_seen": _iso(connection.last_seen),
        "address": connection.address,
        "mode": connection.mode,
        "failure": connection.failure,
        "error_code": connection.error_code,
        "detail": connection.detail,
        "location": connection.location,
        "lifetime": connection.lifetime,
        "successes": connection.successes,
        "server_id": connection.server_id,
    }


def read_device(registry: Registry, endpoint_name: str) -> DevicePage | None:
    """The page of device ``endpoint_name``, or ``None`` if the registry has no attempt of it."""
    attempts = tuple(a for a in reversed(registry.lookup(endpoint_name)) if a.endpoint_name == endpoint_name)
    if not attempts:
        return None
    with registry.reading() as conn:
        found = device_certificate(conn, [attempt.id for attempt in attempts])
    return DevicePage(
        endpoint_name=endpoint_name,
        attempts=attempts,
        certificate=None if found is None else certificate_view(*found),
        connections=tuple(registry.connections.get(endpoint_name)),
        revoked=registry.revocations.is_revoked(endpoint_name),
    )

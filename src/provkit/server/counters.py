"""Counters of the server's work and of everything it refused, and a rate-limited refusal log.

Bad input never raises into the event loop: it is counted here and logged at most a few
times a second per kind (a flood of garbage must not become a flood of log lines), and
the counters are shown by the HTTP app's ``/health`` and at shutdown.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Final

_LOG_PER_SECOND: Final = 5


@dataclass
class Counters:
    """What one server process did and refused since it started."""

    datagrams_in: int = 0
    datagrams_out: int = 0
    not_dtls: int = 0
    """Datagrams that are no DTLS record at all."""
    hello_verify_sent: int = 0
    """Cookie exchanges answered (no state kept for them)."""
    handshakes_started: int = 0
    """Handshakes that passed the cookie exchange."""
    handshakes_completed: int = 0
    handshakes_failed: int = 0
    """Handshakes Mbed TLS ended with an error (unknown CA, unknown PSK identity, bad certificate …)."""
    handshakes_timed_out: int = 0
    handshakes_evicted: int = 0
    """Half-open handshakes dropped because too many were pending."""
    records_dropped: int = 0
    """Protected datagrams that yielded nothing (replays, bad MACs, records from older epochs)."""
    coap_malformed: int = 0
    coap_duplicates: int = 0
    coap_stray: int = 0
    coap_retransmissions: int = 0
    coap_requests: int = 0
    bootstrap_requests: int = 0
    bootstraps_finished: int = 0
    bootstraps_failed: int = 0
    registrations: int = 0
    updates: int = 0
    deregistrations: int = 0
    refused_cn_mismatch: int = 0
    refused_revoked: int = 0
    refused_identity: int = 0
    """Requests whose endpoint name is not the one the DTLS credentials belong to (PSK) or is unknown."""
    refused_other: int = 0
    registry_errors: int = 0
    sessions_closed_idle: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return asdict(self)

    def add(self, other: Counters) -> None:
        """Add ``other`` into these counters (several endpoints, one total)."""
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass
class RefusalLog:
    """Logs refusals at most a few times a second per kind and counts what it kept quiet."""

    logger: logging.Logger
    _window: dict[str, tuple[int, int]] = field(default_factory=dict)

    def refuse(self, kind: str, message: str, *args: object) -> None:
        """Log ``message`` (a WARNING) unless ``kind`` was logged too often this second."""
        second = int(time.monotonic())
        start, count = self._window.get(kind, (second, 0))
        if start != second:
            if count > _LOG_PER_SECOND:
                self.logger.warning("%d more %s refusals not shown", count - _LOG_PER_SECOND, kind)
            start, count = second, 0
        count += 1
        self._window[kind] = (start, count)
        if count <= _LOG_PER_SECOND:
            self.logger.warning(message, *args)

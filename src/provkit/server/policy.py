"""Who may bootstrap or register as which endpoint, and how a refusal is told to the device.

Certificate mode: Mbed TLS has checked that the device certificate chains to a trusted CA
of the service and is within its validity; here the certificate's CN must equal the
endpoint name the device asks for (as Pelion's servers require) and neither the endpoint
nor the certificate may be revoked. PSK mode: the identity must be recorded for that
endpoint. NoSec: only when the server was started to allow it.

A refused request is answered 4.03 Forbidden with a diagnostic payload that starts with
the classification (``cn-mismatch: …``, ``revoked: …``, ``identity: …``, ``nosec: …``), so
a device — and provkit's end-of-line check — knows why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from provkit.registry import RevocationSet
from provkit.server.coap import Code, Message
from provkit.server.counters import Counters, RefusalLog
from provkit.server.endpoint import Session

_log = logging.getLogger(__name__)

MAX_ENDPOINT_NAME: Final = 256


@dataclass
class Policy:
    """The acceptance rules of one server process (the revocations are reloaded as they change).

    Attributes:
        counters: refusals are counted here.
        revoked: the current revocations.
        allow_nosec: accept NoSec (plain CoAP) requests.
    """

    counters: Counters
    revoked: RevocationSet = field(default_factory=RevocationSet)
    allow_nosec: bool = False
    refusals: RefusalLog = field(default_factory=lambda: RefusalLog(_log))

    def refusal(self, session: Session, endpoint_name: str) -> tuple[str, str] | None:
        """Return ``(classification, reason)`` if ``session`` may not act as ``endpoint_name``."""
        certificate = session.certificate
        revoked = self.revoked.refuses(
            endpoint_name,
            certificate.fingerprint if certificate else None,
            certificate.issuer if certificate else None,
            certificate.serial_number if certificate else None,
        )
        if revoked is not None:
            self.counters.refused_revoked += 1
            return "revoked", revoked
        if session.mode == "certificate":
            cn = certificate.common_name if certificate else None
            if cn != endpoint_name:
                self.counters.refused_cn_mismatch += 1
                return "cn-mismatch", f"certificate CN {cn!r} is not the endpoint name {endpoint_name!r}"
            return None
        if session.mode == "psk":
            if session.psk_endpoint != endpoint_name:
                self.counters.refused_identity += 1
                return (
                    "identity",
                    f"PSK identity {session.psk_identity!r} is not recorded for {endpoint_name!r}",
                )
            return None
        if not self.allow_nosec:
            self.counters.refused_other += 1
            return "nosec", "this server does not accept NoSec (unsecured) devices"
        return None

    def refuse(self, service: str, session: Session, endpoint_name: str, why: tuple[str, str]) -> Any:
        """Log the refusal and return the 4.03 response that tells the device why."""
        classification, reason = why
        self.refusals.refuse(
            classification,
            "%s: refused %s from %s (%s mode): %s",
            service,
            endpoint_name,
            session.label,
            session.mode,
            reason,
        )
        return diagnostic(Code.FORBIDDEN, f"{classification}: {reason}")


def diagnostic(code: Any, text: str) -> Any:
    """An error response carrying a UTF-8 diagnostic payload (RFC 7252 §5.5.2)."""
    return Message(code=code, payload=text.encode("utf-8")[:512])


def query_parameters(request: Any) -> dict[str, str]:
    """The ``key=value`` Uri-Query options of a request (a bare ``key`` maps to ``""``)."""
    parameters: dict[str, str] = {}
    for item in request.opt.uri_query:
        key, _, value = str(item).partition("=")
        parameters.setdefault(key, value)
    return parameters


def endpoint_name_of(parameters: dict[str, str]) -> str | None:
    """The ``ep`` parameter, if it is a usable endpoint name."""
    name = parameters.get("ep", "")
    if not name or len(name) > MAX_ENDPOINT_NAME or not name.isprintable():
        return None
    return name

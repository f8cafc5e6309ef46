"""Sending one bundle to one device and checking its answer.

The write-ahead rule: the registry records ``sending`` *before* the first byte leaves,
so a batch killed while a bundle is on the wire is found on restart and handled
deterministically (see :mod:`provkit.line.batch`). Transport failures (no connection,
no answer in time, the connection dropped, a corrupted answer) are retried on a new
connection up to ``retries`` times; a device that answers — with a non-zero transport
status, an FCC error, or a body that is no response — is not retried within the run,
because its answer is the outcome. The tries used are recorded on the attempt.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from provkit.codes import FccStatus, FtErrorCode
from provkit.errors import ConnectFailed, DuplicateIdentityError, ProvkitError, TransportError
from provkit.factory.results import DeviceResponseStatus
from provkit.registry import Attempt, AttemptState

if TYPE_CHECKING:
    from provkit.factory.api import FactoryToolApi

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InjectSettings:
    """How to reach devices.

    Attributes:
        timeout_s: how long one exchange waits for the device's answer.
        connect_timeout_s: how long opening the TCP connection may take.
        retries: extra tries after a transport failure (0: one try only).
        retry_delay_s: pause before a retry, doubled each time.
    """

    timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    retries: int = 2
    retry_delay_s: float = 0.2


class AttemptRecorder(Protocol):
    """Where outcomes are recorded.

    A :class:`~provkit.registry.Registry`, or a :class:`~provkit.line.journal.Journal`
    (same methods, commits shared).
    """

    def mark_failed(self, attempt_id: int, code: int | None, message: str, **values: Any) -> None:
        """End an attempt as failed."""

    def update_attempt(self, attempt_id: int, state: AttemptState, **values: Any) -> None:
        """Move an attempt to ``state``."""

    def mark_verified(self, attempt_id: int, *, reprovision: bool = False, **values: Any) -> None:
        """Record the device as provisioned (raises ``DuplicateIdentityError`` on a clash)."""


class ResponseChecker(Protocol):
    """What verification needs from the FCU (``FactoryToolApi``)."""

    def verify_device_response(self, endpoint_name: str, device_response: bytes) -> DeviceResponseStatus:
        """Check a device's response."""


FollowUp = Callable[[bytes], bytes]
"""Builds the session's second message from the device's first answer (``by_device``:
the certificate message, from the answer carrying the device's CSR)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending one bundle went: the device's response, or the last try's failure.

    Attributes:
        response: the response body (``None`` when ``error`` is set).
        tries: connections opened, retries included.
        error: why no response came.
        final_bundle: the second message, when a follow-up built one.
        reached: whether the bundle may have reached the device (a connection was
            opened on some try); ``False`` only when every try failed to connect.
    """

    response: bytes | None
    tries: int
    error: ProvkitError | None = None
    final_bundle: bytes | None = None
    reached: bool = True


def exchange(
    host: str, port: int, bundle: bytes, settings: InjectSettings, follow_up: FollowUp | None = None
) -> Delivery:
    """Send ``bundle`` to the agent at ``host:port``, retrying transport failures.

    With ``follow_up`` the device's first answer becomes a second message on the same
    connection, and its answer is the response; a retry starts the session over.
    """
    from provkit.transport.errors import DeviceStatusError
    from provkit.transport.links import TcpLink

    delay = settings.retry_delay_s
    tries = 0
    reached = False
    while True:
        tries += 1
        try:
            with TcpLink(host, port, connect_timeout_s=settings.connect_timeout_s) as link:
                response = link.exchange(bundle, timeout_s=settings.timeout_s)
                if follow_up is None:
                    return Delivery(response, tries)
                second = follow_up(response)
                return Delivery(
                    link.exchange(second, timeout_s=settings.timeout_s), tries, final_bundle=second
                )
        except DeviceStatusError as exc:  # the device answered: that is its outcome
            return Delivery(None, tries, exc)
        except ProvkitError as exc:
            reached = reached or not isinstance(exc, ConnectFailed)
            if not isinstance(exc, TransportError) or tries > settings.retries:
                return Delivery(None, tries, exc, reached=reached)
            _log.info("%s:%d: %s; retrying in %.1f s", host, port, exc, delay)
            time.sleep(delay)
            delay *= 2


def csr_follow_up(api: FactoryToolApi, bundle: bytes, endpoint_name: str, serial_number: str) -> FollowUp:
    """The follow-up of a ``by_device`` first message: sign the CSR, build the certificate message.

    The session state (SID, key and certificate names) is read back from the prepared
    bundle, so ``batch inject`` can run in another process than ``batch prepare``.

    Args:
        api: the ``FactoryToolApi`` that signs the CSR.
        bundle: the prepared first message (with its ``CsrReqs``).
        endpoint_name: the device's endpoint name (the CSR's CN must match it).
        serial_number: the device's serial number.

    Raises:
        BundleDecodeError: the bundle is not a CSR request.
    """
    from provkit.errors import BundleDecodeError
    from provkit.factory.results import CsrPending, DeviceConfigurationRequest
    from provkit.params import DEVICE_CERT_OF_KEY
    from provkit.wire.bundle import decode_bundle

    first = decode_bundle(bundle)
    if not first.csr_requests or first.sid is None or first.csr_requests[0].prkn not in DEVICE_CERT_OF_KEY:
        raise BundleDecodeError("the prepared bundle is no by_device CSR request")
    key_name = first.csr_requests[0].prkn
    request = DeviceConfigurationRequest(
        bundle,
        endpoint_name=endpoint_name,
        serial_number=serial_number,
        pending_csr=CsrPending(first.sid, key_name, DEVICE_CERT_OF_KEY[key_name]),
    )
    return lambda response: api.complete_device_configuration(request, response).config_data


def enrollment_id(device_cert_sha256: str | None) -> str | None:
    """The Pelion enrollment identity of a device certificate (``A-`` + colon-separated SHA-256)."""
    if not device_cert_sha256:
        return None
    raw = device_cert_sha256.upper()
    return "A-" + ":".join(raw[i : i + 2] for i in range(0, len(raw), 2))


def conclude(
    registry: AttemptRecorder,
    checker: ResponseChecker | None,
    attempt: Attempt,
    response: bytes,
    *,
    reprovision: bool,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Record a device's answer: as ``injected`` (no ``checker``) or with its verdict.

    Unparseable answers end the attempt as failed. With a ``checker`` the answer and the
    verdict (verified, or failed with the device's reason) go in one transaction.
    ``extra`` columns (tries used, a certificate learnt while sending) are stored with them.
    """
    stored: dict[str, Any] = {"response": response, **(extra or {})}
    if checker is not None:
        check_and_record(registry, checker, attempt, response, stored, reprovision=reprovision)
        return
    from provkit.wire.response import decode_response

    try:
        decoded = decode_response(response)
    except ProvkitError as exc:
        registry.mark_failed(attempt.id, exc.code, f"device answered garbage: {exc}", **stored)
        return
    registry.update_attempt(
        attempt.id,
        AttemptState.INJECTED,
        **stored,
        return_status=decoded.return_status,
        info_message=decoded.info_message.rstrip("\n"),
        warnings="\n".join(decoded.warnings),
    )


LEFT_OVER_ITEMS: Final = (
    "the device still holds items from an earlier bundle and FCC never replaces an item: "
    "give it a fresh factory session (restarting its factory client deletes its storage) "
    "and run the batch again"
)
"""Why a device answers 17, and what to do: said in the failure reason."""


def device_refusal(status: int, message: str) -> tuple[int, str]:
    """The error code and reason recorded for a device that refused a bundle.

    The code is ft_demo's 1004 (the device's own status goes in ``return_status``). A
    device answering 17 (``FCC_STATUS_KCM_FILE_EXIST_ERROR``) kept what an earlier bundle
    stored before failing, or was provisioned before: a resend, or a resume's superseding
    attempt, meets the same items until the device starts a fresh factory session, so the
    reason says so. The attempt fails and keeps its reservation (the device may hold the
    identity); the batch run again after the device was wiped provisions it.
    """
    failed = FtErrorCode.DEVICE_EXECUTION_FAILED
    reason = f"{failed.format(status)}: {message}"
    if status == FccStatus.KCM_FILE_EXIST_ERROR:
        reason = f"{reason}; {LEFT_OVER_ITEMS}"
    return int(failed), reason


def verify_attempt(
    registry: AttemptRecorder, checker: ResponseChecker, attempt: Attempt, *, reprovision: bool
) -> None:
    """Check an injected attempt's stored response and record the device as provisioned or failed."""
    assert attempt.response is not None
    check_and_record(registry, checker, attempt, attempt.response, {}, reprovision=reprovision)


def check_and_record(
    registry: AttemptRecorder,
    checker: ResponseChecker,
    attempt: Attempt,
    response: bytes,
    values: dict[str, Any],
    *,
    reprovision: bool,
) -> None:
    """Check ``response`` with the FCU and record the verdict together with ``values``."""
    try:
        result = checker.verify_device_response(attempt.endpoint_name, response)
    except ProvkitError as exc:
        registry.mark_failed(attempt.id, exc.code, f"device answered garbage: {exc}", **values)
        return
    values = {**values, "return_status": result.status, "info_message": result.message.rstrip("\n")}
    if not result.ok:
        errors = [error.message for error in result.errors]
        parts = [result.message, *errors]
        reason = "; ".join(dict.fromkeys(part for part in parts if part)) or "device reported failure"
        code, reason = device_refusal(int(result.status), reason)
        registry.mark_failed(attempt.id, code, reason, **values)
        return
    warnings = [warning.message for warning in result.warnings]
    if warnings or "warnings" not in values:
        values = {**values, "warnings": "\n".join(warnings) or attempt.warnings}
    # A clash with a provisioned identity is recorded on the attempt by the registry.
    with contextlib.suppress(DuplicateIdentityError):
        registry.mark_verified(
            attempt.id,
            reprovision=reprovision,
            enrollment_id=attempt.enrollment_id
            or enrollment_id(values.get("device_cert_sha256") or attempt.device_cert_sha256),
            **values,
        )

"""Sending one prepared bundle to one device and recording how it went.

The write-ahead rule: the registry records ``sending`` *before* the first byte leaves,
so a batch killed while a bundle is on the wire is found on restart and handled
deterministically (see :mod:`provkit.line.batch`). The bundle goes through provkit's
one provisioning flow (:func:`provkit.factory.provision.deliver`) with the line's link
settings: transport failures (no connection, no answer in time, the connection dropped,
a corrupted answer) are retried on a new connection up to ``retries`` times; a device
that answers — with a non-zero transport status, an FCC error, or a body that is no
response — is not retried within the run, because its answer is the outcome. The tries
used are recorded on the attempt.

Nothing here reads a bundle back: what later steps need (the device certificate, the
``by_device`` session id) was recorded when the bundle was prepared, and the certificate
message's device certificate comes with the request the FCU built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final, Protocol

from provkit.codes import FccStatus, FtErrorCode
from provkit.errors import DeviceResponseError, DuplicateIdentityError, ProvkitError
from provkit.factory.api import FactoryToolApi
from provkit.factory.provision import Delivery
from provkit.factory.results import CsrPending, DeviceConfigurationRequest, DeviceResponseStatus
from provkit.params import mode_names
from provkit.registry import Attempt, AttemptState
from provkit.wire.response import decode_response

BY_DEVICE = "by_device"
"""The key mode whose first message asks the device for a CSR."""


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


def prepared_request(api: FactoryToolApi, attempt: Attempt, bundle: bytes) -> DeviceConfigurationRequest:
    """The prepared request of ``attempt`` again, from its bundle file and what the registry holds.

    A ``by_device`` first message gets its session state back: the session id recorded
    with the bundle and the key and certificate names of the configuration's mode.

    Raises:
        BatchError: a ``by_device`` attempt with no session id recorded.
    """
    pending = None
    if attempt.key_mode == BY_DEVICE:
        if attempt.session_id is None:
            from provkit.errors import BatchError

            raise BatchError("the by_device bundle has no session id recorded; prepare it again")
        names = mode_names(api.config.use_bootstrap)
        pending = CsrPending(attempt.session_id, names.key, names.cert)
    return DeviceConfigurationRequest(
        bundle,
        endpoint_name=attempt.endpoint_name,
        serial_number=attempt.serial_number,
        pending_csr=pending,
    )


def record_delivery(
    recorder: AttemptRecorder,
    api: FactoryToolApi | None,
    attempt: Attempt,
    request: DeviceConfigurationRequest,
    delivery: Delivery[DeviceResponseStatus],
    *,
    reprovision: bool,
) -> None:
    """Record how sending went: a failure, the answer (``injected``) or, with ``api``, its verdict.

    ``request`` is the last request sent: in ``by_device`` mode the certificate message,
    whose device certificate is recorded here.
    """
    extra: dict[str, Any] = {"tries": attempt.tries + delivery.tries}
    if request.device_certificate is not None and attempt.key_mode == BY_DEVICE:
        extra.update(
            device_cert_sha256=request.device_certificate.sha256,
            device_cert_serial=request.device_certificate.serial,
            enrollment_id=request.device_certificate.enrollment_id,
            ca_key=request.device_certificate.ca_key,
            device_cert=request.device_certificate.der or None,
        )
    error = delivery.error
    if delivery.response is None:
        code = None if error is None else error.code
        reason = f"device {attempt.address}: {error}"
        if isinstance(error, DeviceResponseError):  # by_device: the CSR message was refused
            extra.update(return_status=error.code, info_message=error.message)
            code, reason = device_refusal(error.code or 0, error.message)
        # A bundle that never reached the device frees the identity for other attempts.
        recorder.mark_failed(attempt.id, code, reason, release=not delivery.reached, **extra)
        return
    conclude(recorder, api, attempt, delivery.response, reprovision=reprovision, extra=extra)


def conclude(
    recorder: AttemptRecorder,
    api: FactoryToolApi | None,
    attempt: Attempt,
    response: bytes,
    *,
    reprovision: bool,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Record a device's answer: as ``injected`` (no ``api``) or with the FCU's verdict.

    Unparseable answers end the attempt as failed. With ``api`` the answer and the
    verdict (verified, or failed with the device's reason) go in one transaction.
    ``extra`` columns (tries used, a certificate learnt while sending) are stored with them.
    """
    stored: dict[str, Any] = {"response": response, **(extra or {})}
    if api is not None:
        check_and_record(recorder, api, attempt, response, stored, reprovision=reprovision)
        return
    try:
        decoded = decode_response(response)
    except ProvkitError as exc:
        recorder.mark_failed(attempt.id, exc.code, f"device answered garbage: {exc}", **stored)
        return
    recorder.update_attempt(
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
    recorder: AttemptRecorder, api: FactoryToolApi, attempt: Attempt, *, reprovision: bool
) -> None:
    """Check an injected attempt's stored response and record the device as provisioned or failed."""
    assert attempt.response is not None
    check_and_record(recorder, api, attempt, attempt.response, {}, reprovision=reprovision)


def check_and_record(
    recorder: AttemptRecorder,
    api: FactoryToolApi,
    attempt: Attempt,
    response: bytes,
    values: dict[str, Any],
    *,
    reprovision: bool,
) -> None:
    """Check ``response`` with the FCU and record the verdict together with ``values``."""
    try:
        result = api.verify_device_response(attempt.endpoint_name, response)
    except ProvkitError as exc:
        recorder.mark_failed(attempt.id, exc.code, f"device answered garbage: {exc}", **values)
        return
    values = {**values, "return_status": result.status, "info_message": result.message.rstrip("\n")}
    if not result.ok:
        parts = [result.message, *(error.message for error in result.errors)]
        reason = "; ".join(dict.fromkeys(part for part in parts if part)) or "device reported failure"
        code, reason = device_refusal(int(result.status), reason)
        recorder.mark_failed(attempt.id, code, reason, **values)
        return
    warnings = [warning.message for warning in result.warnings]
    if warnings or "warnings" not in values:
        values = {**values, "warnings": "\n".join(warnings) or attempt.warnings}
    # A clash with a provisioned identity is recorded on the attempt by the registry. The
    # enrollment id was recorded with the device certificate (prepared, or learnt while sending).
    with contextlib.suppress(DuplicateIdentityError):
        recorder.mark_verified(attempt.id, reprovision=reprovision, **values)

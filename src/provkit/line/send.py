"""The inject (and run) step of a batch: bundles to devices, outcomes through the journal.

``concurrency`` threads each take one device at a time: the write-ahead ``sending``
mark is committed, the bundle is sent, and the answer is recorded — with its verdict
in the same transaction when verifying. Records go through a
:class:`~provkit.line.journal.Journal`, which commits the threads' changes together;
a device's latency runs from the start of its turn to its outcome's commit.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Self

from provkit.errors import BatchError, DeviceResponseError, DuplicateIdentityError, ProvkitError
from provkit.factory.api import FactoryToolApi
from provkit.line.context import BatchContext, token_failure
from provkit.line.inject import (
    AttemptRecorder,
    conclude,
    csr_follow_up,
    device_refusal,
    exchange,
    verify_attempt,
)
from provkit.line.journal import Journal
from provkit.line.prepare import describe_bundle
from provkit.registry import Attempt, AttemptState


class Checker:
    """The FCU response checker, built on first use and shared by the threads."""

    def __init__(self, ctx: BatchContext) -> None:
        self._ctx = ctx
        self._api: FactoryToolApi | None = None

    def get(self) -> FactoryToolApi:
        """The shared ``FactoryToolApi``."""
        with self._ctx.lock:
            if self._api is None:
                options = self._ctx.options
                self._api = FactoryToolApi(
                    home_dir=options.home_dir, config_file=options.config_file, ca_key=options.ca_key
                )
            return self._api


def verify_one(ctx: BatchContext, checker: Checker, attempt: Attempt, recorder: AttemptRecorder) -> None:
    """Check an injected attempt's stored answer and record the verdict."""
    if attempt.response is None:
        attempt = ctx.registry.get_attempt(attempt.id)
    verify_attempt(recorder, checker.get(), attempt, reprovision=ctx.options.reprovision)


def sendable(*, verify: bool) -> frozenset[AttemptState]:
    """The states a send step takes up: prepared, and with ``verify`` injected too."""
    if verify:
        return frozenset({AttemptState.PREPARED, AttemptState.INJECTED})
    return frozenset({AttemptState.PREPARED})


class Sender:
    """The inject threads and their journal; attempts can be submitted as they become ready.

    Leaving the context waits for every submitted device, then commits what the
    journal still holds.
    """

    def __init__(self, ctx: BatchContext, checker: Checker, *, verify: bool) -> None:
        self._ctx = ctx
        self._checker = checker
        self._verify = verify
        self._slots: dict[int, str] = {}
        self._started: dict[int, float] = {}
        self._journal = Journal(ctx.registry, self._settled)
        self._pool = ThreadPoolExecutor(max_workers=max(1, ctx.options.concurrency))
        self._futures: list[Future[None]] = []

    def submit(self, attempts: list[Attempt]) -> None:
        """Queue ``attempts`` for sending (and verifying)."""
        with self._ctx.lock:
            self._slots.update((a.id, a.slot or "") for a in attempts)
        for attempt in attempts:
            self._futures.append(
                self._pool.submit(
                    _send_one,
                    self._ctx,
                    self._checker,
                    self._journal,
                    attempt,
                    self._started,
                    verify=self._verify,
                )
            )

    def _settled(self, attempt_id: int, error: ProvkitError | None) -> None:
        ctx = self._ctx
        with ctx.lock:
            slot = self._slots.get(attempt_id, "")
            if attempt_id in self._started:
                ctx.latency[slot] = time.monotonic() - self._started[attempt_id]
        if error is not None:
            ctx.note(slot, error.code, f"registry unavailable, outcome not recorded: {error}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._pool.shutdown(wait=True)
            for future in self._futures:
                future.result()  # a bug in a device's step surfaces here, not silently
        finally:
            self._journal.close()


def _send_one(
    ctx: BatchContext,
    checker: Checker,
    journal: Journal,
    attempt: Attempt,
    started: dict[int, float],
    *,
    verify: bool,
) -> None:
    with ctx.lock:
        began = started[attempt.id] = time.monotonic()
    ctx.guard(attempt, lambda: _deliver(ctx, checker, journal, attempt, verify=verify))
    with ctx.lock:
        # A queued outcome's commit may come later and then sets the latency itself.
        ctx.latency.setdefault(attempt.slot or "", time.monotonic() - began)
    ctx.progress.advance("inject")


def _deliver(
    ctx: BatchContext, checker: Checker, journal: Journal, attempt: Attempt, *, verify: bool
) -> None:
    if attempt.state is not AttemptState.PREPARED:
        if verify:
            verify_one(ctx, checker, attempt, journal)
        return
    if ctx.halted is not None:
        return  # the CA key's token failed: nothing more is sent; the attempt stays prepared
    path = ctx.layout.bundle(attempt.id, attempt.endpoint_name)
    try:
        bundle = path.read_bytes()
    except OSError as exc:
        journal.mark_failed(attempt.id, BatchError.default_code, f"bundle unreadable: {exc}")
        return
    if hashlib.sha256(bundle).hexdigest() != attempt.bundle_sha256:
        journal.mark_failed(attempt.id, BatchError.default_code, f"bundle {path} was altered")
        return
    follow_up = None
    if attempt.key_mode == "by_device":  # the certificate message follows the CSR answer
        try:
            follow_up = csr_follow_up(checker.get(), bundle, attempt.endpoint_name, attempt.serial_number)
        except ProvkitError as exc:
            journal.mark_failed(attempt.id, exc.code, f"bundle {path} is unusable: {exc}")
            return
    host, _, port = (attempt.address or "").rpartition(":")
    try:
        # Write-ahead, committed before any byte is sent; it reserves the identity too.
        journal.mark_sending(attempt.id, reprovision=ctx.options.reprovision)
    except DuplicateIdentityError:
        return  # another attempt holds the identity: refused and recorded, nothing sent
    delivery = exchange(host.strip("[]"), int(port), bundle, ctx.options.inject, follow_up)
    extra: dict[str, Any] = {"tries": attempt.tries + delivery.tries}
    if delivery.final_bundle is not None:  # by_device: the certificate was signed just now
        cert_sha, cert_serial = describe_bundle(delivery.final_bundle)
        extra.update(device_cert_sha256=cert_sha, device_cert_serial=cert_serial)
        extra.update(ca_key=checker.get().ca_key_id())
    if delivery.response is None:
        error = delivery.error
        code = None if error is None else error.code
        halt = None if error is None else token_failure(error.code, error.message)
        if halt is not None:
            ctx.halt(halt)  # the CSR could not be signed: stop sending to the other devices
        reason = f"device {attempt.address}: {error}"
        if isinstance(error, DeviceResponseError):  # by_device: the CSR message was refused
            extra.update(return_status=error.code, info_message=error.message)
            code, reason = device_refusal(error.code or 0, error.message)
        # A bundle that never reached the device frees the identity for other attempts.
        journal.mark_failed(attempt.id, code, reason, release=not delivery.reached, **extra)
        return
    # With verify the answer is checked first and recorded with its verdict in one
    # transaction; killed before that, the attempt is still "sending" (see batch.py).
    checking = checker.get() if verify else None
    conclude(journal, checking, attempt, delivery.response, reprovision=ctx.options.reprovision, extra=extra)

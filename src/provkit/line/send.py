"""The inject (and run) step of a batch: bundles to devices, outcomes through the journal.

``concurrency`` threads each take one device at a time: the write-ahead ``sending``
mark is committed, the bundle is sent, and the answer is recorded — with its verdict
in the same transaction when verifying. Records go through a
:class:`~provkit.line.journal.Journal`, which commits the threads' changes together;
a device's latency runs from the start of its turn to its outcome's commit.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Self

from provkit.errors import BatchError, DuplicateIdentityError, ProvkitError
from provkit.factory.api import FactoryToolApi
from provkit.factory.provision import FcuConversation, deliver
from provkit.line.context import BatchContext, token_failure
from provkit.line.inject import AttemptRecorder, prepared_request, record_delivery, verify_attempt
from provkit.line.journal import Journal
from provkit.registry import Attempt, AttemptState
from provkit.transport.spec import TcpTarget, parse_host_port


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
        self._endpoints: dict[int, str] = {}
        self._journal = Journal(ctx.registry, self._settled)
        self._pool = ThreadPoolExecutor(max_workers=max(1, ctx.options.concurrency))
        # Seals (or removes) verified devices' bundles off the journal's writer thread.
        self._archiver = ThreadPoolExecutor(max_workers=1)
        # A device's bookkeeping is dropped once it is done (nothing here grows with the
        # run); only an unexpected exception is kept, to be raised when the sender closes.
        self._crashes: list[BaseException] = []
        self._queued = 0
        self._room = threading.Condition()

    def wait_for_room(self, limit: int) -> None:
        """Block until fewer than ``limit`` submitted devices are still queued or in flight.

        A step submits chunk after chunk; this keeps what waits in the send queue (and
        in memory) bounded when sending is slower than preparing.
        """
        with self._room:
            self._room.wait_for(lambda: self._queued < limit)

    def submit(self, attempts: list[Attempt]) -> None:
        """Queue ``attempts`` for sending (and verifying)."""
        with self._ctx.lock:
            self._slots.update((a.id, a.slot or "") for a in attempts)
            self._endpoints.update((a.id, a.endpoint_name) for a in attempts)
        with self._room:
            self._queued += len(attempts)
        for attempt in attempts:
            future = self._pool.submit(
                _send_one,
                self._ctx,
                self._checker,
                self._journal,
                attempt,
                self._started,
                verify=self._verify,
            )
            future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        crash = future.exception()
        if crash is not None:
            with self._ctx.lock:
                self._crashes.append(crash)
        with self._room:
            self._queued -= 1
            self._room.notify_all()

    def _settled(self, attempt_id: int, error: ProvkitError | None) -> None:
        ctx = self._ctx
        with ctx.lock:
            slot = self._slots.pop(attempt_id, "")
            endpoint = self._endpoints.pop(attempt_id, None)
            began = self._started.pop(attempt_id, None)
            if began is not None:
                ctx.latency[slot] = time.monotonic() - began
        if error is not None:
            ctx.note(slot, error.code, f"registry unavailable, outcome not recorded: {error}")
        elif self._verify and endpoint is not None:
            # With verification every committed outcome is final (verified or failed): the
            # bundle's private material is no longer needed in clear.
            self._archiver.submit(ctx.settle_bundle, attempt_id, endpoint)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._pool.shutdown(wait=True)
            if self._crashes:
                raise self._crashes[0]  # a bug in a device's step surfaces here, not silently
        finally:
            self._journal.close()
            self._archiver.shutdown(wait=True)


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
    try:
        api = checker.get()
        request = prepared_request(api, attempt, bundle)
        target = TcpTarget(*parse_host_port(attempt.address or ""))
    except ProvkitError as exc:
        journal.mark_failed(attempt.id, exc.code, f"bundle {path} is unusable: {exc}")
        return
    try:
        # Write-ahead, committed before any byte is sent; it reserves the identity too.
        journal.mark_sending(attempt.id, reprovision=ctx.options.reprovision)
    except DuplicateIdentityError:
        return  # another attempt holds the identity: refused and recorded, nothing sent
    # The answer is recorded before it is judged (with its verdict, in one transaction, when
    # verifying); killed before that, the attempt is still "sending" (see batch.py).
    conversation = FcuConversation(api, request)
    delivery = deliver(conversation, target, ctx.options.inject, judge=False)
    error = delivery.error
    halt = (
        None if error is None or delivery.response is not None else token_failure(error.code, error.message)
    )
    if halt is not None:
        ctx.halt(halt)  # the CSR could not be signed: stop sending to the other devices
    record_delivery(
        journal,
        api if verify else None,
        attempt,
        conversation.request,
        delivery,
        reprovision=ctx.options.reprovision,
    )

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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from provkit.errors import BatchError, ProvkitError
from provkit.line.context import BatchContext
from provkit.line.inject import AttemptRecorder, conclude, exchange, verify_attempt
from provkit.line.journal import Journal
from provkit.registry import Attempt, AttemptState


class Checker:
    """The FCU response checker, built on first use and shared by the threads."""

    def __init__(self, ctx: BatchContext) -> None:
        self._ctx = ctx
        self._api: Any = None

    def get(self) -> Any:
        """The shared ``FactoryToolApi``."""
        with self._ctx.lock:
            if self._api is None:
                from provkit.factory.api import FactoryToolApi

                options = self._ctx.options
                self._api = FactoryToolApi(home_dir=options.home_dir, config_file=options.config_file)
            return self._api


def verify_one(ctx: BatchContext, checker: Checker, attempt: Attempt, recorder: AttemptRecorder) -> None:
    """Check an injected attempt's stored answer and record the verdict."""
    if attempt.response is None:
        attempt = ctx.registry.get_attempt(attempt.id)
    verify_attempt(recorder, checker.get(), attempt, reprovision=ctx.options.reprovision)


def send_all(ctx: BatchContext, checker: Checker, *, verify: bool) -> None:
    """Send every prepared bundle (and with ``verify`` check every answer)."""
    wanted = {AttemptState.PREPARED, AttemptState.INJECTED} if verify else {AttemptState.PREPARED}
    todo = [a for a in ctx.latest().values() if a.state in wanted]
    ctx.progress.start("inject", len(todo))
    slots = {a.id: a.slot or "" for a in todo}
    started: dict[int, float] = {}

    def settled(attempt_id: int, error: ProvkitError | None) -> None:
        slot = slots.get(attempt_id, "")
        with ctx.lock:
            if attempt_id in started:
                ctx.latency[slot] = time.monotonic() - started[attempt_id]
        if error is not None:
            ctx.note(slot, error.code, f"registry unavailable, outcome not recorded: {error}")

    threads = max(1, ctx.options.concurrency)
    # The pool is left (every thread done) before the journal, which then commits the rest.
    with Journal(ctx.registry, settled) as journal, ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(lambda a: _send_one(ctx, checker, journal, a, started, verify=verify), todo):
            pass


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
    path = ctx.layout.bundle(attempt.id, attempt.endpoint_name)
    try:
        bundle = path.read_bytes()
    except OSError as exc:
        journal.mark_failed(attempt.id, BatchError.default_code, f"bundle unreadable: {exc}")
        return
    if hashlib.sha256(bundle).hexdigest() != attempt.bundle_sha256:
        journal.mark_failed(attempt.id, BatchError.default_code, f"bundle {path} was altered")
        return
    host, _, port = (attempt.address or "").rpartition(":")
    journal.mark_sending(attempt.id)  # write-ahead: committed before any byte is sent
    try:
        response, _tries = exchange(host.strip("[]"), int(port), bundle, ctx.options.inject)
    except ProvkitError as exc:
        journal.mark_failed(attempt.id, exc.code, f"device {attempt.address}: {exc}")
        return
    # With verify the answer is checked first and recorded with its verdict in one
    # transaction; killed before that, the attempt is still "sending" (see batch.py).
    conclude(
        journal, checker.get() if verify else None, attempt, response, reprovision=ctx.options.reprovision
    )

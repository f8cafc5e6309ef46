"""Group commit of attempt state changes for the inject threads.

Every inject thread records two things per device: the write-ahead ``sending`` mark
and the device's outcome. One transaction each would make the registry the line's
bottleneck (a round trip per statement on PostgreSQL, one writer at a time on SQLite).
Instead a thread hands its change to the :class:`Journal` and one writer thread
commits whatever changes are waiting in a single transaction, in the order they came.

* The ``sending`` mark is waited for: a thread sends no byte before its mark is
  committed. The mark reserves the attempt's identity; when another attempt holds it,
  the mark is refused (:class:`~provkit.errors.DuplicateIdentityError`, recorded on
  the attempt) and the bundle is not sent.
* An outcome (answer with its verdict, or a failure) is not waited for: the thread
  goes on with its next device, and the writer reports back through ``on_settled``
  once the outcome is committed or could not be. Answer and verdict still go in one
  transaction, and since changes are committed in order, a thread's next ``sending``
  mark is committed only with or after its previous outcome — when the registry
  fails, no further bundle leaves.

The guarantees are those of one transaction per change; only the commits are shared.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from provkit.errors import DuplicateIdentityError, ProvkitError, RegistryError
from provkit.registry import AttemptState, Registry, StateChange

if TYPE_CHECKING:
    from sqlalchemy import Connection

_MAX_GROUP: Final = 256
"""Changes per transaction at most (keeps one transaction's statements short)."""

Settled = Callable[[int, ProvkitError | None], None]
"""``(attempt_id, error)``: an outcome is committed (``error`` None) or could not be."""


@dataclass(slots=True)
class _Item:
    change: StateChange
    future: Future[bool] | None = None
    """Set for a change its thread waits for; ``None`` for an outcome."""

    @property
    def alone(self) -> bool:
        """A reprovision verdict, decided alone (it may supersede a holder)."""
        return self.change.reprovision and self.change.state is AttemptState.VERIFIED


class Journal:
    """Records attempt state changes through one writer thread, many per transaction.

    The methods mirror :class:`~provkit.registry.Registry`'s (``mark_sending``,
    ``mark_failed``, ``update_attempt``, ``mark_verified``). ``mark_sending`` returns
    once the mark is committed (raising :class:`~provkit.errors.RegistryError` if it
    could not be); the others queue the outcome and return, and ``on_settled`` hears
    how it went. Use as a context manager: leaving it commits every queued change.

    Args:
        registry: where changes are committed.
        on_settled: called on the writer thread for every outcome.
    """

    def __init__(self, registry: Registry, on_settled: Settled | None = None) -> None:
        self.registry = registry
        self._on_settled = on_settled or (lambda _id, _error: None)
        self.transactions = 0
        """Transactions committed so far (for figures and tests)."""
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        # On PostgreSQL the writer keeps its own connection: no pool checkout and
        # liveness ping (a round trip) per group. SQLite's pool checkout costs nothing,
        # and a fresh checkout per group notices a registry file that went away.
        self._hold = registry.engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._writer = threading.Thread(target=self._run, name="provkit-journal", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ recorder API
    def mark_sending(self, attempt_id: int, *, reprovision: bool = False) -> None:
        """Write-ahead mark: returns once ``sending`` and the identity's reservation are committed.

        Raises:
            DuplicateIdentityError: another attempt holds the identity (recorded on the
                attempt: the bundle must not be sent).
            RegistryError: the mark could not be written.
        """
        future: Future[bool] = Future()
        change = StateChange(attempt_id, AttemptState.SENDING, reprovision=reprovision)
        self._put(_Item(change, future))
        future.result()

    def mark_failed(
        self, attempt_id: int, code: int | None, message: str, *, release: bool = False, **values: Any
    ) -> None:
        """Queue: end an attempt as failed with an error code and a reason.

        ``release``: see :meth:`~provkit.registry.Registry.mark_failed`.
        """
        values = {**values, "error_code": code, "error_message": message}
        self._put(_Item(StateChange(attempt_id, AttemptState.FAILED, values, release=release)))

    def update_attempt(self, attempt_id: int, state: AttemptState, **values: Any) -> None:
        """Queue: move an attempt to ``state`` and store ``values``."""
        self._put(_Item(StateChange(attempt_id, state, values)))

    def mark_verified(self, attempt_id: int, *, reprovision: bool = False, **values: Any) -> None:
        """Queue: record the attempt's device as provisioned.

        The common case (the identity is free) is claimed in the group. A taken identity,
        or ``reprovision``, is then settled alone by the registry, which supersedes the
        holder or records the refusal (error 4001 on the attempt).
        """
        self._put(_Item(StateChange(attempt_id, AttemptState.VERIFIED, values, reprovision=reprovision)))

    # ------------------------------------------------------------------ writer
    def _put(self, item: _Item) -> None:
        if not self._writer.is_alive():
            raise RegistryError("registry journal is closed")
        self._queue.put(item)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            # Whatever is still queued (the writer failed) must not leave a thread waiting.
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._settle(item, RegistryError("registry journal stopped"))

    def _serve(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < _MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            try:
                self._commit(group)
            except BaseException as exc:  # never leave a thread waiting forever
                self._drop_connection()
                for item in group:
                    if item.future is not None and not item.future.done():
                        item.future.set_exception(exc)
                raise

    def _commit(self, group: list[_Item]) -> None:
        # A reprovision verdict is decided alone (it may supersede a holder), but in its
        # place: what was queued before it commits first, what was queued after it (a
        # thread's next sending mark) only once it is settled.
        start = 0
        for index, item in enumerate(group):
            if item.alone:
                self._commit_group(group[start:index])
                self._settle(item, self._verify_alone(item))
                start = index + 1
        self._commit_group(group[start:])

    def _commit_group(self, group: list[_Item]) -> None:
        if not group:
            return
        try:
            if self._conn is None and self._hold:
                self._conn = self.registry.connect()
            applied = self.registry.apply_changes([item.change for item in group], self._conn)
        except ProvkitError as exc:
            self._drop_connection()
            if len(group) == 1:
                self._settle(group[0], exc)
                return
            # One bad change must not fail its neighbours: each is tried alone (when the
            # registry itself is gone, each then fails with that reason).
            for item in group:
                self._commit_group([item])
            return
        self.transactions += 1
        for item, ok in zip(group, applied, strict=True):
            if ok:
                self._settle(item, None)
            elif item.change.state is AttemptState.SENDING:  # refused, recorded as failed
                self._settle(item, DuplicateIdentityError("identity reserved by another attempt"))
            else:  # a verdict whose identity is taken is settled alone: refused, recorded as such
                self._settle(item, self._verify_alone(item))

    def _drop_connection(self) -> None:
        """Forget a connection that failed; the next group opens a new one."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            self._conn = None

    def _verify_alone(self, item: _Item) -> ProvkitError | None:
        change = item.change
        try:
            self.registry.mark_verified(change.attempt_id, reprovision=change.reprovision, **change.values)
        except DuplicateIdentityError:
            return None  # the refusal is recorded on the attempt: that is its outcome
        except ProvkitError as exc:
            return exc
        return None

    def _settle(self, item: _Item, error: ProvkitError | None) -> None:
        if item.future is not None:
            if error is None:
                item.future.set_result(True)
            else:
                item.future.set_exception(error)
        else:
            self._on_settled(item.change.attempt_id, error)

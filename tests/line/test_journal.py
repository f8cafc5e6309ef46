"""The group-commit Journal the inject threads record through."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from provkit.errors import RegistryError
from provkit.line.journal import Journal
from provkit.registry import AttemptState, NewAttempt, Registry, StateChange


def _attempts(registry: Registry, names: list[str]) -> list[int]:
    return registry.record_attempts(None, [NewAttempt(n, f"sn-{n}", slot=n) for n in names])


def test_journal_commits_many_threads_changes_in_fewer_transactions(registry_url: str) -> None:
    """Concurrent threads' marks and outcomes all land; the writer shares transactions."""
    settled: list[tuple[int, object]] = []
    with Registry.open(registry_url, station_id="s") as registry:
        ids = _attempts(registry, [f"j{n}" for n in range(64)])
        gate = threading.Barrier(16)
        with Journal(registry, lambda i, e: settled.append((i, e))) as journal:

            def work(chunk: list[int]) -> None:
                gate.wait()
                for attempt_id in chunk:
                    journal.mark_sending(attempt_id)
                    journal.mark_verified(attempt_id, return_status=0)

            threads = [threading.Thread(target=work, args=(ids[n::16],)) for n in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        transactions = journal.transactions
        rows = registry.find()
    assert all(r.state is AttemptState.VERIFIED and r.tries == 1 for r in rows)
    assert sorted(i for i, _ in settled) == sorted(ids) and all(e is None for _, e in settled)
    assert transactions < 2 * len(ids)


def test_journal_isolates_a_bad_change_and_settles_clashes(tmp_path: Path) -> None:
    """A change the database refuses fails alone; a taken identity is recorded as refused (4001)."""
    settled: dict[int, object] = {}
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        good, bad, holder, clash = _attempts(registry, ["g", "b", "h", "h"])
        registry.mark_verified(holder)
        with Journal(registry, lambda i, e: settled.__setitem__(i, e)) as journal:
            # Queued without waiting, so the three usually share one group.
            journal.update_attempt(bad, AttemptState.INJECTED, no_such_column=1)
            journal.mark_verified(good)
            journal.mark_verified(clash)
        rows = {x.id: x for x in registry.find()}
    assert isinstance(settled[bad], RegistryError)
    assert settled[good] is None and rows[good].state is AttemptState.VERIFIED
    assert settled[clash] is None  # the refusal is the recorded outcome
    assert rows[clash].state is AttemptState.FAILED and rows[clash].error_code == 4001
    assert rows[bad].state is AttemptState.ALLOCATED


def test_journal_write_ahead_mark_raises_when_registry_is_gone(tmp_path: Path) -> None:
    """mark_sending returns only once committed; with the registry gone it raises RegistryError."""
    folder = tmp_path / "reg"
    folder.mkdir()
    with Registry.open(folder / "r.sqlite", station_id="s") as registry:
        attempt = _attempts(registry, ["x"])[0]
        folder.rename(tmp_path / "gone")
        registry.engine.dispose()
        with Journal(registry) as journal, pytest.raises(RegistryError):
            journal.mark_sending(attempt)


class _OrderedRegistry(Registry):
    """A registry noting the order of the journal's commits; the first one waits for ``gate``."""

    def __init__(self, inner: Registry, gate: threading.Event) -> None:
        super().__init__(inner.engine, station_id=inner.station_id)
        self.gate = gate
        self.waiting = threading.Event()
        self.order: list[str] = []

    def apply_changes(self, items: Sequence[StateChange], connection: Connection | None = None) -> list[bool]:
        if not self.order:
            self.waiting.set()
            self.gate.wait(30)
        self.order += [f"{c.state}:{c.attempt_id}" for c in items]
        return super().apply_changes(items, connection)

    def mark_verified(self, attempt_id: int, *, reprovision: bool = False, **values: Any) -> None:
        self.order.append(f"reprovision:{attempt_id}")
        super().mark_verified(attempt_id, reprovision=reprovision, **values)


def test_journal_keeps_a_reprovision_verdict_before_the_next_sending_mark(tmp_path: Path) -> None:
    """A --reprovision verdict is settled alone, but still before the changes queued after it:
    a thread's next bundle never leaves before its previous outcome is recorded."""
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as plain:
        first, verdict, later = _attempts(plain, ["a", "b", "c"])
        gate = threading.Event()
        registry = _OrderedRegistry(plain, gate)
        with Journal(registry) as journal:
            journal.update_attempt(first, AttemptState.INJECTED)  # the writer waits on the gate with it
            assert registry.waiting.wait(30)
            journal.mark_verified(verdict, reprovision=True)
            sender = threading.Thread(target=journal.mark_sending, args=(later,))
            sender.start()
            for _ in range(3000):  # until both are queued behind the waiting writer: one group
                if journal._queue.qsize() == 2:
                    break
                threading.Event().wait(0.01)
            gate.set()
            sender.join()
        assert registry.order == [f"injected:{first}", f"reprovision:{verdict}", f"sending:{later}"]
        assert plain.get_attempt(verdict).state is AttemptState.VERIFIED


def test_journal_refuses_a_sending_mark_whose_identity_is_reserved(registry_url: str) -> None:
    """Threads marking the same identity at once: exactly one mark is committed, the others
    raise DuplicateIdentityError (recorded as 4001) and their bundles are not to be sent."""
    from provkit.errors import DuplicateIdentityError

    with Registry.open(registry_url, station_id="s") as registry:
        ids = registry.record_attempts(None, [NewAttempt("same", "sn-same", slot=str(n)) for n in range(8)])
        gate = threading.Barrier(len(ids))
        sent: list[int] = []
        refused: list[int] = []
        with Journal(registry) as journal:

            def mark(attempt_id: int) -> None:
                gate.wait()
                try:
                    journal.mark_sending(attempt_id)
                except DuplicateIdentityError:
                    refused.append(attempt_id)
                else:
                    sent.append(attempt_id)

            threads = [threading.Thread(target=mark, args=(i,)) for i in ids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert len(sent) == 1 and len(refused) == len(ids) - 1
        assert registry.get_attempt(sent[0]).state is AttemptState.SENDING
        for attempt_id in refused:
            attempt = registry.get_attempt(attempt_id)
            assert attempt.state is AttemptState.FAILED and attempt.error_code == 4001
            assert f"reserved by attempt {sent[0]}" in (attempt.error_message or "")

"""Storage backends shared between threads keep every transaction all-or-nothing.

The device farm opens a store on one thread and serves it on another, and an agent's FCC
and LwM2M handlers share one KCM; these tests run two threads of interleaved
transactions over one backend and check that no thread's writes land in, or are rolled
back with, the other's transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import MemoryStorage, SqliteStorage, StorageBackend

ROUNDS = 150


@pytest.fixture(params=["sqlite", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    store: StorageBackend = (
        SqliteStorage(tmp_path / "shared.sqlite") if request.param == "sqlite" else MemoryStorage()
    )
    yield store
    store.close()


def _run_in_threads(*targets: object) -> list[BaseException]:
    errors: list[BaseException] = []

    def guard(target: object) -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_threads_of_transactions_stay_isolated(backend: StorageBackend) -> None:
    start = threading.Barrier(2)

    def worker(tag: str) -> None:
        start.wait()
        for i in range(ROUNDS):
            backend.begin()
            backend.put("ns", f"{tag}-{i}-a", b"a")
            time.sleep(0)  # yield, so that the other thread runs inside this transaction if it can
            backend.begin()  # nested, like a KCM chain store inside a bundle
            backend.put("ns", f"{tag}-{i}-b", b"b")
            backend.commit()
            if i % 2:
                backend.rollback()
            else:
                backend.commit()

    assert _run_in_threads(lambda: worker("t1"), lambda: worker("t2")) == []
    names = {name for name, _ in backend.entries("ns")}
    expected = {f"{tag}-{i}-{part}" for tag in ("t1", "t2") for i in range(0, ROUNDS, 2) for part in "ab"}
    assert names == expected


def test_plain_writes_of_another_thread_wait_for_an_open_transaction(backend: StorageBackend) -> None:
    in_transaction = threading.Event()
    release = threading.Event()
    writer_done = threading.Event()

    def owner() -> None:
        backend.begin()
        backend.put("ns", "mine", b"1")
        in_transaction.set()
        release.wait()
        backend.rollback()

    def writer() -> None:
        in_transaction.wait()
        backend.put("ns", "theirs", b"2")  # must not join the owner's transaction
        writer_done.set()

    def releaser() -> None:
        writer_done.wait(timeout=0.5)  # lets the writer block on the lock first when it would
        release.set()

    assert _run_in_threads(owner, writer, releaser) == []
    assert backend.get("ns", "mine") is None
    assert backend.get("ns", "theirs") == b"2"


def test_commit_from_a_thread_without_a_transaction_is_refused(backend: StorageBackend) -> None:
    from provkit.errors import StorageError

    errors = _run_in_threads(backend.commit)
    assert len(errors) == 1 and isinstance(errors[0], StorageError)


def test_kcm_on_sqlite_serves_two_threads(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "kcm.sqlite")
    kcm = Kcm(storage)
    start = threading.Barrier(2)

    def worker(tag: str) -> None:
        start.wait()
        for i in range(40):
            with kcm.transaction():
                kcm.item_store(f"{tag}.cfg{i}", ItemType.CONFIG, tag.encode() * (i + 1))

    assert _run_in_threads(lambda: worker("x"), lambda: worker("y")) == []
    for tag in ("x", "y"):
        for i in range(40):
            assert kcm.item_get(f"{tag}.cfg{i}", ItemType.CONFIG) == tag.encode() * (i + 1)
    storage.close()

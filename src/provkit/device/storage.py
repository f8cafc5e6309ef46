"""Storage backends for KCM: a SQLite file (default) and process memory.

A backend is a flat map ``(namespace, name) -> bytes`` with nestable transactions; KCM
(:mod:`provkit.device.kcm`) decides what the namespaces mean and what gets encrypted.
The SQLite backend keeps one row per item in a ``WITHOUT ROWID`` table, runs in WAL mode
with ``synchronous=NORMAL`` (a committed bundle survives a killed process; only an OS
crash or power loss can lose the last commits) and commits once per transaction, which
is what makes ≥300 bundles/s possible. Each backend also supplies the device secret
that keys encryption at rest: ``<file>.secret`` (mode 0600) next to the SQLite file, or
a random in-process secret for memory storage.

Both backends are safe to share between threads (the device farm opens a store on one
thread and serves it on another; an agent may run FCC and LwM2M handlers over one KCM):
a re-entrant lock is taken by every call and held from :meth:`begin` to the matching
outermost :meth:`commit` or :meth:`rollback`, so another thread's writes can never land
inside, or be rolled back with, a bundle's transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from provkit.codes import KcmStatus
from provkit.crypto.aead import load_or_create_secret, new_secret
from provkit.errors import CryptoError, StorageError

MEMORY_SPEC = ":memory:"
"""The storage spec that selects :class:`MemoryStorage`."""


@runtime_checkable
class StorageBackend(Protocol):
    """What KCM needs from a storage backend.

    Outside a transaction every write is durable on return. Transactions nest: an inner
    :meth:`rollback` undoes only what happened since the matching :meth:`begin`.
    """

    def get(self, namespace: str, name: str) -> bytes | None:
        """Return the stored bytes, or ``None`` if absent."""
        ...

    def put(self, namespace: str, name: str, data: bytes) -> None:
        """Insert or replace an entry."""
        ...

    def delete(self, namespace: str, name: str) -> bool:
        """Delete an entry; return whether it existed."""
        ...

    def entries(self, namespace: str) -> list[tuple[str, bytes]]:
        """Return ``(name, data)`` of a namespace, sorted by name."""
        ...

    def clear(self) -> None:
        """Delete every entry of every namespace."""
        ...

    def begin(self) -> None:
        """Open a (possibly nested) transaction."""
        ...

    def commit(self) -> None:
        """Make the innermost transaction's changes part of the enclosing one (or durable)."""
        ...

    def rollback(self) -> None:
        """Undo the innermost transaction's changes."""
        ...

    def device_secret(self) -> bytes:
        """Return the 32-byte secret that keys encryption at rest for this storage."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...


class MemoryStorage:
    """A backend in process memory; transactions keep copy-on-begin snapshots."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], bytes] = {}
        self._snapshots: list[dict[tuple[str, str], bytes]] = []
        self._secret = new_secret()
        self._lock = threading.RLock()

    def get(self, namespace: str, name: str) -> bytes | None:
        """Return the stored bytes, or ``None`` if absent."""
        with self._lock:
            return self._data.get((namespace, name))

    def put(self, namespace: str, name: str, data: bytes) -> None:
        """Insert or replace an entry."""
        with self._lock:
            self._data[(namespace, name)] = bytes(data)

    def delete(self, namespace: str, name: str) -> bool:
        """Delete an entry; return whether it existed."""
        with self._lock:
            return self._data.pop((namespace, name), None) is not None

    def entries(self, namespace: str) -> list[tuple[str, bytes]]:
        """Return ``(name, data)`` of a namespace, sorted by name."""
        with self._lock:
            return sorted((name, data) for (ns, name), data in self._data.items() if ns == namespace)

    def clear(self) -> None:
        """Delete every entry of every namespace."""
        with self._lock:
            self._data.clear()

    def begin(self) -> None:
        """Open a (possibly nested) transaction; the calling thread owns the store until it ends."""
        self._lock.acquire()
        self._snapshots.append(dict(self._data))

    def commit(self) -> None:
        """Drop the innermost snapshot, keeping the changes."""
        with self._lock:
            if not self._snapshots:
                raise StorageError("commit without a transaction", kcm_status=KcmStatus.ERROR)
            self._snapshots.pop()
            self._lock.release()  # the hold taken by the matching begin()

    def rollback(self) -> None:
        """Restore the innermost snapshot."""
        with self._lock:
            if not self._snapshots:
                raise StorageError("rollback without a transaction", kcm_status=KcmStatus.ERROR)
            self._data = self._snapshots.pop()
            self._lock.release()  # the hold taken by the matching begin()

    def device_secret(self) -> bytes:
        """Return this instance's random secret (lost with the process, like the data)."""
        return self._secret

    def close(self) -> None:
        """Nothing to release."""


class SqliteStorage:
    """A backend in one SQLite file (WAL mode), with its secret in ``<path>.secret``.

    Args:
        path: the database file; created with its table if missing.

    Raises:
        StorageError: the file cannot be opened or is not a provkit storage file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.secret_path = self.path.with_name(self.path.name + ".secret")
        self._depth = 0
        self._lock = threading.RLock()
        try:
            # Autocommit mode: transactions are explicit BEGIN/SAVEPOINT statements below.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS kcm_items (ns TEXT NOT NULL, name TEXT NOT NULL, "
                "data BLOB NOT NULL, PRIMARY KEY (ns, name)) WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open storage file {self.path}: {exc}") from exc

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        # Callers fetch results under the lock too, so one thread's cursor is never reset by another's.
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"storage file {self.path}: {exc}") from exc

    def get(self, namespace: str, name: str) -> bytes | None:
        """Return the stored bytes, or ``None`` if absent."""
        with self._lock:
            row = self._run("SELECT data FROM kcm_items WHERE ns=? AND name=?", (namespace, name)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, namespace: str, name: str, data: bytes) -> None:
        """Insert or replace an entry."""
        with self._lock:
            self._run("INSERT OR REPLACE INTO kcm_items VALUES (?, ?, ?)", (namespace, name, bytes(data)))

    def delete(self, namespace: str, name: str) -> bool:
        """Delete an entry; return whether it existed."""
        with self._lock:
            return self._run("DELETE FROM kcm_items WHERE ns=? AND name=?", (namespace, name)).rowcount > 0

    def entries(self, namespace: str) -> list[tuple[str, bytes]]:
        """Return ``(name, data)`` of a namespace, sorted by name."""
        with self._lock:
            rows = self._run("SELECT name, data FROM kcm_items WHERE ns=? ORDER BY name", (namespace,))
            return [(name, bytes(data)) for name, data in rows.fetchall()]

    def clear(self) -> None:
        """Delete every entry of every namespace."""
        with self._lock:
            self._run("DELETE FROM kcm_items")

    def begin(self) -> None:
        """Open a transaction (``BEGIN IMMEDIATE``) or, nested, a savepoint.

        The calling thread owns the store until the matching outermost commit or rollback.
        """
        self._lock.acquire()
        try:
            self._run("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT sp{self._depth}")
        except BaseException:
            self._lock.release()
            raise
        self._depth += 1

    def commit(self) -> None:
        """Commit the transaction, or release the innermost savepoint."""
        with self._lock:
            if self._depth == 0:
                raise StorageError("commit without a transaction", kcm_status=KcmStatus.ERROR)
            self._depth -= 1
            try:
                self._run("COMMIT" if self._depth == 0 else f"RELEASE sp{self._depth}")
            finally:
                self._lock.release()  # the hold taken by the matching begin()

    def rollback(self) -> None:
        """Roll the transaction back, or undo to the innermost savepoint."""
        with self._lock:
            if self._depth == 0:
                raise StorageError("rollback without a transaction", kcm_status=KcmStatus.ERROR)
            self._depth -= 1
            try:
                if self._depth == 0:
                    self._run("ROLLBACK")
                else:
                    self._run(f"ROLLBACK TO sp{self._depth}")
                    self._run(f"RELEASE sp{self._depth}")
            finally:
                self._lock.release()  # the hold taken by the matching begin()

    def device_secret(self) -> bytes:
        """Return the secret in ``<path>.secret``, creating it (mode 0600) on first use.

        Raises:
            StorageError: the secret file is unreadable or malformed.
        """
        try:
            return load_or_create_secret(self.secret_path)
        except CryptoError as exc:
            raise StorageError(str(exc), kcm_status=KcmStatus.STORAGE_ERROR) from exc

    def close(self) -> None:
        """Close the database connection (rolling back an open transaction)."""
        with self._lock:
            if self._depth:
                self._db.execute("ROLLBACK")
                self._depth = 0
            self._db.close()


def open_storage(spec: str | Path) -> StorageBackend:
    """Open a backend from a spec: ``":memory:"`` for memory, else a SQLite file path.

    Raises:
        StorageError: the file cannot be opened.
    """
    if str(spec) == MEMORY_SPEC:
        return MemoryStorage()
    return SqliteStorage(spec)

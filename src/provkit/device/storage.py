"""Storage backends for KCM: a SQLite file (default) and process memory.

A backend is a flat map ``(namespace, name) -> bytes`` with nestable transactions; KCM
(:mod:`provkit.device.kcm`) decides what the namespaces mean and what gets encrypted.
The SQLite backend keeps one row per item in a ``WITHOUT ROWID`` table, runs in WAL mode
with ``synchronous=FULL`` and commits once per transaction: the WAL is synced to disk
before a commit returns, so a bundle the device answered "The Factory process
succeeded" for survives an OS crash or a power cut, not only a killed process (the
cost is measured by ``bench/device_agent.py``). Each backend also supplies the device
secret that keys encryption at rest: ``<file>.secret`` (mode 0600) next to the SQLite
file unless another file is named, or a random in-process secret for memory storage.

A SQLite file is opened in one of three ways (:class:`OpenMode`): ``CREATE`` (a new
store, or an existing provkit store: ``device serve``), ``WRITE`` (an existing store
only: ``reset``, ``erase``) or ``READ`` (``show``, ``verify``: a read-only connection
that never creates a table, a secret or a journal, so a read-only copy can be
inspected). A SQLite file that is not a provkit store is refused in every mode.

Both backends are safe to share between threads (the device farm opens a store on one
thread and serves it on another; an agent may run FCC and LwM2M handlers over one KCM):
a re-entrant lock is taken by every call and held from :meth:`begin` to the matching
outermost :meth:`commit` or :meth:`rollback`, so another thread's writes can never land
inside, or be rolled back with, a bundle's transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from provkit.codes import KcmStatus
from provkit.crypto.aead import SECRET_SIZE, load_or_create_secret, new_secret
from provkit.errors import CryptoError, NotAStoreError, SecretUnavailableError, StorageError

MEMORY_SPEC = ":memory:"
"""The storage spec that selects :class:`MemoryStorage`."""

SECRET_ENV: Final = "PROVKIT_DEVICE_SECRET"  # noqa: S105 - the variable's name, not a secret
"""Environment variable that may hold the device secret itself (64 hex digits)."""

_TABLE: Final = "kcm_items"
_COLUMNS: Final = ("ns", "name", "data")


class OpenMode(Enum):
    """How a storage file is opened."""

    CREATE = "create"
    """Create the file and its table if missing (``device serve``)."""
    WRITE = "write"
    """An existing provkit store only (``device reset``, ``device erase``)."""
    READ = "read"
    """An existing provkit store, read-only: nothing is created or written (``device show``)."""


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

    @property
    def read_only(self) -> bool:
        """Whether writes are refused (a store opened for inspection)."""
        ...

    def device_secret(self, *, create: bool = True) -> bytes:
        """Return the 32-byte secret that keys encryption at rest for this storage.

        ``create=False``: a missing secret is an error instead of a new one (the store
        already holds items sealed with the old one).
        """
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

    @property
    def read_only(self) -> bool:
        """Memory storage is always writable."""
        return False

    def device_secret(self, *, create: bool = True) -> bytes:
        """Return this instance's random secret (lost with the process, like the data)."""
        del create
        return self._secret

    def close(self) -> None:
        """Nothing to release."""


class SqliteStorage:
    """A backend in one SQLite file (WAL mode), with its secret in ``<path>.secret``.

    Args:
        path: the database file.
        mode: create it if missing, open an existing store, or open one read-only.
        secret_file: where the device secret is kept (default ``<path>.secret``): keep it
            on another medium than the database so a copy of one is not enough.

    Raises:
        StorageError: the file cannot be opened (or, without ``CREATE``, does not exist).
        NotAStoreError: the file is not a provkit device store.
    """

    def __init__(
        self, path: str | Path, *, mode: OpenMode = OpenMode.CREATE, secret_file: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        default_secret = self.path.with_name(self.path.name + ".secret")
        self.secret_path = Path(secret_file) if secret_file else default_secret
        self.mode = mode
        self._depth = 0
        self._lock = threading.RLock()
        if mode is not OpenMode.CREATE and not self.path.is_file():
            raise StorageError(f"storage file {self.path} does not exist")
        try:
            self._db = self._connect()
        except sqlite3.OperationalError as exc:
            raise StorageError(f"cannot open storage file {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database"
            raise NotAStoreError(f"{self.path} is not a provkit device store: {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open storage file {self.path}: {exc}") from exc
        try:
            self._check_table()
            if mode is not OpenMode.READ:
                # Only once the file is known to be a provkit store (or new): a foreign
                # database's journal mode is not ours to change.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot open storage file {self.path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are explicit BEGIN/SAVEPOINT statements below.
        if self.mode is not OpenMode.READ:
            return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        uri = "file:" + urllib.parse.quote(str(self.path.absolute())) + "?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            try:
                db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                db.close()
                raise
        except sqlite3.OperationalError:
            # A WAL store on a read-only medium whose -shm cannot be created: read it as an
            # immutable file (nothing else can be writing to a read-only copy).
            uri += "&immutable=1"
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return db

    def _check_table(self) -> None:
        """Refuse a file that is not a provkit store; create the table in a new one (``CREATE``)."""
        try:
            tables = [row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            if _TABLE in tables:
                columns = tuple(row[1] for row in self._db.execute(f"PRAGMA table_info({_TABLE})"))
                if columns == _COLUMNS:
                    return
                raise NotAStoreError(
                    f"{self.path} has a {_TABLE} table with columns {', '.join(columns)}, "
                    "not a provkit device store's"
                )
            if tables or self.mode is not OpenMode.CREATE:
                found = f"its tables: {', '.join(sorted(tables))}" if tables else "it has no tables"
                raise NotAStoreError(f"{self.path} is not a provkit device store ({found})")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (ns TEXT NOT NULL, name TEXT NOT NULL, "
                "data BLOB NOT NULL, PRIMARY KEY (ns, name)) WITHOUT ROWID"
            )
        except sqlite3.DatabaseError as exc:
            raise NotAStoreError(f"{self.path} is not a provkit device store: {exc}") from exc

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only (``OpenMode.READ``)."""
        return self.mode is OpenMode.READ

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

    def device_secret(self, *, create: bool = True) -> bytes:
        """Return the secret in :attr:`secret_path`, creating it (mode 0600) when allowed.

        Raises:
            SecretUnavailableError: the file is missing and ``create`` is false, or the
                store is read-only.
            StorageError: the secret file is unreadable or malformed.
        """
        if not self.secret_path.exists() and (self.read_only or not create):
            raise SecretUnavailableError(
                f"the device secret {self.secret_path} is missing: this store's keys, ROT and Entropy are "
                "sealed with it",
                hint="restore the secret file or name it with `secret_file` (or PROVKIT_DEVICE_SECRET_FILE)",
            )
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


def open_storage(
    spec: str | Path, *, mode: OpenMode = OpenMode.CREATE, secret_file: str | Path | None = None
) -> StorageBackend:
    """Open a backend from a spec: ``":memory:"`` for memory, else a SQLite file path.

    Args:
        spec: ``":memory:"`` or a SQLite file path.
        mode: how a SQLite file is opened (see :class:`OpenMode`).
        secret_file: where a SQLite store's device secret is kept (default ``<file>.secret``).

    Raises:
        StorageError: the file cannot be opened.
        NotAStoreError: the file is not a provkit device store.
    """
    if str(spec) == MEMORY_SPEC:
        return MemoryStorage()
    return SqliteStorage(spec, mode=mode, secret_file=secret_file)


def secret_from_environment(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The device secret given in :data:`SECRET_ENV`, or ``None`` when it is not set.

    For a secret kept by a secrets manager or a service's credentials rather than in a
    file next to the storage.

    Raises:
        StorageError: ``INVALID_PARAMETER`` when the value is not 64 hex digits.
    """
    text = (os.environ if environ is None else environ).get(SECRET_ENV)
    if text is None:
        return None
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        secret = b""
    if len(secret) != SECRET_SIZE:
        raise StorageError(
            f"{SECRET_ENV} must hold {SECRET_SIZE * 2} hex digits (a {SECRET_SIZE}-byte secret)",
            kcm_status=KcmStatus.INVALID_PARAMETER,
        )
    return secret

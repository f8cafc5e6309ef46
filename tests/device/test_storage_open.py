"""Opening device storage: read-only inspection, foreign files, missing secrets, durability, sealing."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from provkit.device.fcc import FactoryConfiguratorClient
from provkit.device.kcm import ENTROPY, ItemType, Kcm
from provkit.device.storage import OpenMode, SqliteStorage, open_storage, secret_from_environment
from provkit.errors import NotAStoreError, SecretUnavailableError, StorageError

MODES = list(OpenMode)


def _store(path: Path) -> None:
    """A provkit store with a sealed item (and its secret next to it)."""
    backend = SqliteStorage(path)
    Kcm(backend).item_store("k", ItemType.SYMMETRIC_KEY, b"K" * 16)
    backend.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (x)")
    db.execute("INSERT INTO notes VALUES ('mine')")
    db.commit()
    db.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path, mode: OpenMode) -> None:
    """Another application's database gets no table, no journal mode and no secret, in every mode."""
    path = tmp_path / "foreign.db"
    _foreign(path)
    before = _digest(path)
    with pytest.raises(NotAStoreError) as info:
        open_storage(path, mode=mode)
    assert info.value.code == 11 and "not a provkit device store (its tables: notes)" in info.value.message
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db"]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@pytest.mark.parametrize("mode", MODES)
def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path, mode: OpenMode) -> None:
    """Random bytes are NotAStoreError, not a crash, and stay as they were."""
    path = tmp_path / "junk.db"
    path.write_bytes(os.urandom(4096))
    before = _digest(path)
    with pytest.raises(NotAStoreError):
        open_storage(path, mode=mode)
    assert _digest(path) == before


def test_a_store_with_another_kcm_items_table_is_refused(tmp_path: Path) -> None:
    """A table of the same name but other columns is not taken for a store."""
    path = tmp_path / "odd.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kcm_items (a, b)")
    db.close()
    with pytest.raises(NotAStoreError, match="columns a, b"):
        open_storage(path, mode=OpenMode.CREATE)


@pytest.mark.parametrize("mode", [OpenMode.READ, OpenMode.WRITE])
def test_missing_file_is_not_created_without_create(tmp_path: Path, mode: OpenMode) -> None:
    """Inspection and reset/erase refuse a missing file and create nothing."""
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(tmp_path / "typo.db", mode=mode)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", [OpenMode.READ, OpenMode.WRITE, OpenMode.CREATE])
def test_missing_secret_is_an_error_and_never_replaced(tmp_path: Path, mode: OpenMode) -> None:
    """A store whose secret is gone is refused (14) and no new random secret is written."""
    path = tmp_path / "dev.db"
    _store(path)
    saved = tmp_path / "elsewhere.secret"
    (tmp_path / "dev.db.secret").rename(saved)
    backend = open_storage(path, mode=mode)
    with pytest.raises(SecretUnavailableError) as info:
        Kcm(backend)
    backend.close()
    assert info.value.code == 14 and "`secret_file`" in (info.value.hint or "")
    assert not (tmp_path / "dev.db.secret").exists()
    # The secret kept elsewhere opens the store.
    backend = open_storage(path, mode=mode, secret_file=saved)
    assert Kcm(backend).item_get("k", ItemType.SYMMETRIC_KEY) == b"K" * 16
    backend.close()


def test_read_only_open_writes_nothing(tmp_path: Path) -> None:
    """READ opens a read-only connection: the file is unchanged and a write is refused."""
    path = tmp_path / "dev.db"
    _store(path)
    before = _digest(path)
    backend = open_storage(path, mode=OpenMode.READ)
    kcm = Kcm(backend)
    assert backend.read_only and kcm.item_get("k", ItemType.SYMMETRIC_KEY) == b"K" * 16
    with pytest.raises(StorageError, match="readonly"):
        backend.put("ns", "n", b"x")
    backend.close()
    assert _digest(path) == before


def test_read_only_empty_store_needs_no_secret(tmp_path: Path) -> None:
    """A store that has sealed nothing yet can be inspected without creating its secret."""
    path = tmp_path / "empty.db"
    SqliteStorage(path).close()
    backend = open_storage(path, mode=OpenMode.READ)
    assert Kcm(backend).list_items() == []
    backend.close()
    assert not (tmp_path / "empty.db.secret").exists()


def test_read_only_copy_whose_journal_cannot_be_created_is_read_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When SQLite cannot open the WAL store read-only (its -shm cannot be made on a read-only
    medium), the copy is read as an immutable file instead of failing."""
    path = tmp_path / "dev.db"
    _store(path)
    real_connect = sqlite3.connect
    uris: list[str] = []

    def connect(database: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        uris.append(str(database))
        if "immutable=1" not in str(database):
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite3, "connect", connect)
    backend = SqliteStorage(path, mode=OpenMode.READ)
    monkeypatch.undo()
    assert [uri.endswith("mode=ro") for uri in uris] == [True, False]
    assert Kcm(backend).item_get("k", ItemType.SYMMETRIC_KEY) == b"K" * 16
    backend.close()


def test_storage_commits_with_synchronous_full(tmp_path: Path) -> None:
    """Writable SQLite storage runs WAL with synchronous=FULL (2): commits are synced to disk."""
    backend = SqliteStorage(tmp_path / "dev.db")
    assert backend._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert backend._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    backend.close()


_COMMIT_PROBE = """
import sys
from provkit.device.kcm import ItemType, Kcm
from provkit.device.storage import SqliteStorage
kcm = Kcm(SqliteStorage(sys.argv[1]))
sys.stdout.write("BEGIN\\n"); sys.stdout.flush()
with kcm.transaction():
    kcm.item_store("k", ItemType.SYMMETRIC_KEY, b"K" * 16)
sys.stdout.write("COMMITTED\\n"); sys.stdout.flush()
"""


@pytest.mark.integration
def test_a_committed_bundle_is_on_disk_before_the_commit_returns(tmp_path: Path) -> None:
    """Under strace: the WAL is synced between the transaction's start and its return, and the
    new secret file's directory is synced before anything is sealed with it."""
    trace = tmp_path / "trace.txt"
    db = tmp_path / "dev.db"
    subprocess.run(
        ["strace", "-f", "-y", "-e", "trace=fsync,fdatasync,write", "-o", str(trace),
         sys.executable, "-c", _COMMIT_PROBE, str(db)],
        check=True, capture_output=True,
    )  # fmt: skip
    lines = trace.read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if '"BEGIN\\n"' in line)
    done = next(i for i, line in enumerate(lines) if '"COMMITTED\\n"' in line)
    synced = [line for line in lines[begin:done] if "sync(" in line]
    assert any(f"{db}-wal>" in line for line in synced), synced
    before = lines[:begin]
    secret_written = next(i for i, line in enumerate(before) if "dev.db.secret>" in line and "sync" in line)
    assert any(f"<{tmp_path}>" in line and "sync" in line for line in before[secret_written:])


def test_entropy_is_sealed_at_rest(tmp_path: Path) -> None:
    """The 48-byte Entropy from a bundle is stored sealed, like the ROT and the keys."""
    path = tmp_path / "dev.db"
    backend = SqliteStorage(path)
    fcc = FactoryConfiguratorClient(Kcm(backend))
    entropy, rot = os.urandom(48), os.urandom(16)
    flags = {"KpAlvSess": 1, "Verify": 0}
    bundle = cbor2.dumps({"SchemeVersion": "0.0.1", "Entropy": entropy, "ROT": rot, **flags})
    assert fcc.bundle_handler(bundle).status == 0
    assert fcc.kcm.rbp_get(ENTROPY) == entropy
    backend.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".secret"))
    assert entropy not in raw and rot not in raw


def test_entropy_stored_in_clear_by_an_older_store_is_read_then_sealed(tmp_path: Path) -> None:
    """A clear 48-byte Entropy row still reads; the next writable open seals it in place."""
    path = tmp_path / "dev.db"
    _store(path)
    entropy = os.urandom(48)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO kcm_items VALUES ('rbp', 'entropy', ?)", (entropy,))
    db.commit()
    db.close()
    reader = open_storage(path, mode=OpenMode.READ)
    assert Kcm(reader).rbp_get(ENTROPY) == entropy
    reader.close()
    writer = open_storage(path, mode=OpenMode.WRITE)
    assert Kcm(writer).rbp_get(ENTROPY) == entropy
    writer.close()
    stored = sqlite3.connect(path).execute("SELECT data FROM kcm_items WHERE name='entropy'").fetchone()[0]
    assert entropy not in stored and len(stored) == 1 + 12 + 48 + 16


def test_secret_from_the_environment(tmp_path: Path) -> None:
    """PROVKIT_DEVICE_SECRET gives the secret itself; no file is written; a bad value is refused."""
    secret = os.urandom(32)
    assert secret_from_environment({"PROVKIT_DEVICE_SECRET": secret.hex()}) == secret
    assert secret_from_environment({}) is None
    for bad in ("abc", "zz" * 32, secret.hex()[:-2]):
        with pytest.raises(StorageError, match="64 hex digits"):
            secret_from_environment({"PROVKIT_DEVICE_SECRET": bad})
    path = tmp_path / "dev.db"
    backend = SqliteStorage(path)
    Kcm(backend, secret=secret).item_store("k", ItemType.SYMMETRIC_KEY, b"K" * 16)
    backend.close()
    assert not (tmp_path / "dev.db.secret").exists()
    with pytest.raises(SecretUnavailableError):
        Kcm(SqliteStorage(path, mode=OpenMode.READ))
    assert (
        Kcm(SqliteStorage(path, mode=OpenMode.READ), secret=secret).item_get("k", ItemType.SYMMETRIC_KEY)
        == b"K" * 16
    )

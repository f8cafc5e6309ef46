"""Which databases a registry opens: read-only inspection, foreign databases, older schemas, upgrade."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from provkit.cli.main import cli
from provkit.errors import RegistryError, RegistrySchemaError
from provkit.registry import NewAttempt, Registry
from provkit.registry.engine import MIGRATIONS_DIR, create_registry_engine, schema_state
from support import pg


def _head() -> str:
    engine = create_registry_engine("sqlite://")
    try:
        return schema_state(engine).head
    finally:
        engine.dispose()


def _at_revision(url: str, revision: str) -> None:
    """A registry as an older provkit left it: migrated up to ``revision`` only."""
    from alembic import command
    from alembic.config import Config

    engine = create_registry_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def _foreign_sqlite(path: Path) -> str:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tables(path: Path) -> list[str]:
    query = "SELECT name FROM sqlite_master WHERE type='table'"
    return [row[0] for row in sqlite3.connect(path).execute(query)]


@pytest.mark.parametrize("read_only", [True, False])
def test_a_foreign_database_is_refused_and_not_migrated(tmp_path: Path, read_only: bool) -> None:
    """Neither inspection nor a station at work adds the registry's tables to another database."""
    path = tmp_path / "other.sqlite"
    before = _foreign_sqlite(path)
    with pytest.raises(RegistrySchemaError) as info:
        Registry.open(path, read_only=read_only)
    assert info.value.code == 4004 and "is not a provkit registry (its tables: t)" in info.value.message
    assert _tables(path) == ["t"] and hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_inspection_never_creates_a_registry(tmp_path: Path) -> None:
    """A missing file is an error for inspection, and no file appears."""
    with pytest.raises(RegistryError, match=r"no registry at .*missing\.sqlite: the file does not exist"):
        Registry.open(tmp_path / "missing.sqlite", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_inspection_of_an_empty_database_says_so(tmp_path: Path) -> None:
    """An empty SQLite file is not a registry yet: inspection says how one is made."""
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    with pytest.raises(RegistrySchemaError, match="holds no registry"):
        Registry.open(path, read_only=True)
    assert _tables(path) == []


def test_read_only_registry_reads_and_refuses_writes(tmp_path: Path) -> None:
    """A read-only registry answers queries; a write fails and the file is unchanged."""
    path = tmp_path / "r.sqlite"
    with Registry.open(path, station_id="s") as registry:
        registry.record_attempts(None, [NewAttempt("ep-1", "sn-1")])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with Registry.open(path, read_only=True) as registry:
        assert registry.stats().attempts == 1
        with pytest.raises(RegistryError, match="readonly"):
            registry.record_attempts(None, [NewAttempt("ep-2", "sn-2")])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_an_older_schema_is_refused_by_inspection_and_upgraded_explicitly(tmp_path: Path) -> None:
    """Inspection names 'provkit registry upgrade'; upgrade brings it to head; then inspection works."""
    path = tmp_path / "old.sqlite"
    _at_revision(str(path), "0001")
    with pytest.raises(RegistrySchemaError) as info:
        Registry.open(path, read_only=True)
    assert "revision '0001'" in info.value.message and f"uses '{_head()}'" in info.value.message
    assert "provkit registry upgrade `registry`" in (info.value.hint or "")
    assert "reservations" not in _tables(path)
    assert Registry.upgrade(path) == ("0001", _head())
    assert Registry.upgrade(path) == (_head(), _head())
    with Registry.open(path, read_only=True) as registry:
        assert registry.stats().attempts == 0


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A revision this provkit does not know (a newer provkit's) is refused, even to upgrade."""
    path = tmp_path / "new.sqlite"
    Registry.open(path).close()
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for attempt in (lambda: Registry.open(path, read_only=True), lambda: Registry.open(path)):
        with pytest.raises(RegistrySchemaError, match="'9999', which this provkit does not know"):
            attempt()
    with pytest.raises(RegistrySchemaError):
        Registry.upgrade(path)


def test_upgrade_refuses_a_missing_file_and_a_foreign_database(tmp_path: Path) -> None:
    """upgrade never turns a mistyped path or someone else's database into a registry."""
    with pytest.raises(RegistryError, match="does not exist"):
        Registry.upgrade(tmp_path / "typo.sqlite")
    assert list(tmp_path.iterdir()) == []
    path = tmp_path / "other.sqlite"
    _foreign_sqlite(path)
    with pytest.raises(RegistrySchemaError):
        Registry.upgrade(path)
    assert _tables(path) == ["t"]


@pytest.mark.integration
@pytest.mark.postgres
def test_postgres_inspection_is_read_only_and_upgrade_creates_an_empty_one() -> None:
    """On PostgreSQL: an empty schema is refused by inspection, created by upgrade, then read
    through sessions that cannot write."""
    with pg.fresh_schema() as url:
        with pytest.raises(RegistrySchemaError, match="holds no registry"):
            Registry.open(url, read_only=True)
        assert Registry.upgrade(url) == (None, _head())
        with Registry.open(url, read_only=True) as registry:
            assert registry.stats().attempts == 0
            with pytest.raises(RegistryError, match="read-only transaction"):
                registry.record_attempts(None, [NewAttempt("ep-1", "sn-1")])
            assert "attempts" in inspect(registry.engine).get_table_names()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["registry", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("command", ["stats", "list", "export"])
def test_querying_commands_leave_a_foreign_database_alone(tmp_path: Path, command: str) -> None:
    """registry stats/list/export on another database: Error 4004, nothing migrated."""
    path = tmp_path / "other.sqlite"
    _foreign_sqlite(path)
    code, output = _run(command, "--registry", str(path))
    assert code == 1 and "Error PROVKIT-4004:" in output and "is not a provkit registry" in output
    assert _tables(path) == ["t"]


def test_registry_upgrade_command(tmp_path: Path) -> None:
    """provkit registry upgrade says what it did; stats works afterwards."""
    path = tmp_path / "old.sqlite"
    _at_revision(str(path), "0001")
    code, output = _run("stats", "--registry", str(path))
    assert code == 1 and "Error PROVKIT-4004:" in output and "provkit registry upgrade" in output
    code, output = _run("upgrade", "--registry", str(path))
    assert code == 0 and output.strip() == f"registry schema upgraded from revision 0001 to {_head()}"
    code, output = _run("upgrade", "--registry", str(path))
    assert code == 0 and output.strip() == f"registry schema already at revision {_head()}"
    assert _run("stats", "--registry", str(path))[0] == 0

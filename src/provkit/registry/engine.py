"""Database connection for the registry: URL handling, SQLite tuning, migrations.

A plain path means a SQLite file; ``postgresql://`` URLs are mapped to psycopg 3.
The schema is brought to the newest Alembic revision when a registry is opened, under
a PostgreSQL advisory lock so several stations starting at once do not race.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from provkit.errors import RegistryError

_log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_KEY: Final = 0x70726F76  # "prov": any constant shared by all stations
_SQLITE_BUSY_MS: Final = 30_000
READ_ONLY_OPTION: Final = "provkit_read_only"
"""Execution option of a connection whose transactions only read (see :func:`read_only_options`)."""


def read_only_options(dialect_name: str) -> dict[str, Any]:
    """Execution options for a read-only transaction on ``dialect_name``.

    SQLite begins it DEFERRED instead of IMMEDIATE (no write lock); PostgreSQL runs it
    ``READ ONLY``, so a query that would write fails instead.
    """
    if dialect_name == "postgresql":
        return {READ_ONLY_OPTION: True, "postgresql_readonly": True}
    return {READ_ONLY_OPTION: True}


def normalise_url(url_or_path: str | Path) -> str:
    """Return a SQLAlchemy URL for ``url_or_path``.

    Args:
        url_or_path: a filesystem path (SQLite), a ``sqlite:///`` URL, or a
            ``postgresql://`` / ``postgresql+psycopg://`` URL.

    Raises:
        RegistryError: the URL names an unsupported database.
    """
    text_url = str(url_or_path)
    if "://" not in text_url:
        return f"sqlite:///{Path(text_url).expanduser()}"
    for plain in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if text_url.startswith(plain):
            return "postgresql+psycopg://" + text_url[len(plain) :]
    if text_url.startswith(("postgresql+psycopg://", "sqlite://")):
        return text_url
    raise RegistryError(
        f"unsupported registry URL {text_url!r}",
        hint="use a SQLite file path or postgresql://user@host/db",
    )


def create_registry_engine(url_or_path: str | Path) -> Engine:
    """Create the engine for ``url_or_path`` with the settings the registry relies on.

    Raises:
        RegistryError: the URL is malformed or its directory does not exist.
    """
    url = normalise_url(url_or_path)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise RegistryError(f"malformed registry URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database not in ("", ":memory:") and not Path(database).parent.is_dir():
            raise RegistryError(f"registry directory does not exist: {Path(database).parent}")
        engine = create_engine(
            url, connect_args={"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)


def _tune_sqlite(engine: Engine) -> None:
    """WAL, busy timeout and ``BEGIN IMMEDIATE`` for every SQLite transaction.

    pysqlite opens transactions lazily and as DEFERRED, so two writers can deadlock when
    both upgrade a read lock; taking the write lock at BEGIN makes concurrent stations
    and threads queue on the busy timeout instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only transaction is a WAL snapshot: it neither waits for nor blocks writers.
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def upgrade_schema(engine: Engine) -> None:
    """Bring the registry schema to the newest migration (idempotent).

    Raises:
        RegistryError: the database cannot be reached or a migration failed.
    """
    # Imported here: Alembic is only needed when a registry is opened.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise RegistryError(f"registry database unavailable or migration failed: {exc}") from exc
    _log.debug("registry schema at head (%s)", engine.url.render_as_string(hide_password=True))

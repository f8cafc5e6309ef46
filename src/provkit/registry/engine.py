"""Database connection for the registry: URL handling, SQLite tuning, schema checks, migrations.

A plain path means a SQLite file; ``postgresql://`` URLs are mapped to psycopg 3.
Before anything else the schema is checked (:func:`check_schema`): a database that is
not a provkit registry is refused whatever the command, so no table is ever added to
someone else's database. A station opening a registry to work creates the schema in an
empty database or brings an older one to the newest Alembic revision, under a
PostgreSQL advisory lock so several stations starting at once do not race. Inspection
opens a read-only connection that never creates, migrates or writes anything, and
refuses an older schema with the command that upgrades it.
"""

from __future__ import annotations

import logging
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from provkit.errors import RegistryError, RegistrySchemaError

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


def sqlite_file(url_or_path: str | Path) -> Path | None:
    """The SQLite file a registry location names, ``None`` for PostgreSQL (or in-memory SQLite).

    Raises:
        RegistryError: the URL is malformed or names an unsupported database.
    """
    try:
        parsed = make_url(normalise_url(url_or_path))
    except ArgumentError as exc:
        raise RegistryError(f"malformed registry URL: {exc}") from exc
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return Path(database)


def create_registry_engine(url_or_path: str | Path, *, read_only: bool = False) -> Engine:
    """Create the engine for ``url_or_path`` with the settings the registry relies on.

    Args:
        url_or_path: a SQLite path or URL, or a PostgreSQL URL.
        read_only: connections that cannot write: a SQLite file opened read-only (which
            must exist), PostgreSQL sessions whose transactions are read-only.

    Raises:
        RegistryError: the URL is malformed, its directory (read-only: its file) does not
            exist, or it is PostgreSQL's and the driver (the ``postgres`` extra) is missing.
    """
    url = normalise_url(url_or_path)
    database = sqlite_file(url)
    if make_url(url).get_backend_name() == "sqlite":
        if database is not None and not database.parent.is_dir():
            raise RegistryError(f"registry directory does not exist: {database.parent}")
        if read_only:
            if database is None or not database.is_file():
                raise RegistryError(f"no registry at {database or url}: the file does not exist")
            engine = create_engine(url, creator=lambda: _connect_sqlite_read_only(database))
        else:
            engine = create_engine(
                url, connect_args={"timeout": _SQLITE_BUSY_MS / 1000, "check_same_thread": False}
            )
        _tune_sqlite(engine, read_only=read_only)
        return engine
    try:
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)
    except ImportError as exc:
        # The PostgreSQL driver is an extra: a station on SQLite, a device agent or a
        # developer's desk does not install it.
        raise RegistryError(
            f"a PostgreSQL registry needs the psycopg driver, which is not installed ({exc})",
            hint="install provkit with its postgres extra: pip install 'provkit[postgres]'",
        ) from exc
    if read_only:
        # Per transaction: a session setting would be undone when a pooled connection's
        # read-only execution option is reset on its return to the pool.
        @event.listens_for(engine, "begin")
        def _read_only_transaction(conn: Any) -> None:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


def _connect_sqlite_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``; a WAL file on a read-only medium is read as immutable."""
    uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=_SQLITE_BUSY_MS / 1000, check_same_thread=False)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            raise
    except sqlite3.OperationalError:
        # The -shm of a WAL database cannot be created (a read-only copy): nothing else can
        # be writing to such a copy, so reading it as an immutable file is safe.
        conn = sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)
    return conn


def _tune_sqlite(engine: Engine, *, read_only: bool = False) -> None:
    """WAL, busy timeout and ``BEGIN IMMEDIATE`` for every SQLite transaction.

    pysqlite opens transactions lazily and as DEFERRED, so two writers can deadlock when
    both upgrade a read lock; taking the write lock at BEGIN makes concurrent stations
    and threads queue on the busy timeout instead. A read-only engine changes nothing in
    the file (no journal mode) and begins plain, deferred transactions.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
        if not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only transaction is a WAL snapshot: it neither waits for nor blocks writers.
        reads_only = read_only or conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")


@dataclass(frozen=True, slots=True)
class SchemaState:
    """What a database holds, as far as the registry is concerned.

    Attributes:
        revision: the Alembic revision recorded in it, ``None`` when it has none.
        head: the newest revision this provkit knows.
        tables: the tables it holds.
    """

    revision: str | None
    head: str
    tables: frozenset[str]

    @property
    def empty(self) -> bool:
        """No tables at all: a new database."""
        return not self.tables

    @property
    def current(self) -> bool:
        """The schema is this provkit's newest."""
        return self.revision == self.head


def _migrations() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def schema_state(engine: Engine) -> SchemaState:
    """Read the tables and the Alembic revision of the registry database (writes nothing).

    Raises:
        RegistryError: the database cannot be reached or read.
    """
    try:
        with engine.connect() as conn:
            tables = frozenset(inspect(conn).get_table_names())
            revision = None
            if "alembic_version" in tables:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        raise RegistryError(f"registry database unavailable or unreadable: {exc}") from exc
    head = str(_migrations().get_current_head())
    return SchemaState(None if revision is None else str(revision), head, tables)


def check_schema(engine: Engine, *, allow_empty: bool, allow_outdated: bool) -> SchemaState:
    """Refuse a database that is not a provkit registry this provkit may use.

    Args:
        engine: the registry's engine.
        allow_empty: a database without tables is fine (the schema is about to be created).
        allow_outdated: an older provkit schema is fine (it is about to be upgraded).

    Raises:
        RegistrySchemaError: not a provkit registry, an empty database, an older schema
            (unless allowed), or a revision this provkit does not know (a newer provkit's).
    """
    state = schema_state(engine)
    where = engine.url.render_as_string(hide_password=True)
    if state.revision is None:
        if state.empty:
            if allow_empty:
                return state
            raise RegistrySchemaError(
                f"{where} holds no registry (an empty database)",
                hint="a batch creates the registry; 'provkit registry upgrade' creates it explicitly",
            )
        raise RegistrySchemaError(
            f"{where} is not a provkit registry (its tables: {', '.join(sorted(state.tables))})",
            hint="give `registry` the registry's file or URL",
        )
    if state.current:
        return state
    known = {script.revision for script in _migrations().walk_revisions()}
    if state.revision not in known:
        raise RegistrySchemaError(
            f"{where} has registry schema revision {state.revision!r}, which this provkit does not "
            f"know (its newest is {state.head!r}): a newer provkit made it",
            hint="use the provkit version that last upgraded this registry, or a newer one",
        )
    if not allow_outdated:
        raise RegistrySchemaError(
            f"{where} has registry schema revision {state.revision!r}; this provkit uses {state.head!r}",
            hint=f"upgrade it first (Registry.upgrade, or: provkit registry upgrade `registry` {where})",
        )
    return state


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

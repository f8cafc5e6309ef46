"""The :class:`Registry`: every provisioning attempt, provisioned identities, allocation.

Each method is one short database transaction, so a station killed at any moment
leaves the registry consistent: an attempt is either recorded in a state or not.
Database failures surface as :class:`~provkit.errors.RegistryError`; identity clashes
among provisioned devices as :class:`~provkit.errors.DuplicateIdentityError`, raised by
the database's own unique constraints so they also hold across stations.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from provkit.errors import DuplicateIdentityError, RegistryError
from provkit.registry import allocator, changes, counts, queries
from provkit.registry.accounts import Accounts
from provkit.registry.allocation import Identity, IdentityPattern
from provkit.registry.apikeys import ApiKeys
from provkit.registry.changes import StateChange
from provkit.registry.connections import Connections
from provkit.registry.credentials import PskCredentials
from provkit.registry.devcerts import DeveloperCertificates
from provkit.registry.devices import DeviceDirectory
from provkit.registry.engine import (
    check_schema,
    create_registry_engine,
    read_only_options,
    schema_state,
    sqlite_file,
    upgrade_schema,
)
from provkit.registry.enrollments import Enrollments
from provkit.registry.export import ExportFormat, write_export
from provkit.registry.queries import PageFilter
from provkit.registry.records import Attempt, NewAttempt, RegistryStats
from provkit.registry.schema import AttemptState, attempts, batches
from provkit.registry.trust import Revocations, TrustStore

_log = logging.getLogger(__name__)


def default_station_id() -> str:
    """``PROVKIT_STATION_ID`` or the host name: who recorded an attempt."""
    return os.environ.get("PROVKIT_STATION_ID") or socket.gethostname()


def _now() -> datetime:
    return datetime.now(UTC)


def _check_before_writing(url_or_path: str | Path) -> None:
    """Check an existing SQLite file through a read-only connection before a writing one opens it.

    A writing connection sets the WAL journal mode as it connects, which would already
    change a foreign database's file.

    Raises:
        RegistrySchemaError: the file is not a provkit registry, or a newer one.
    """
    database = sqlite_file(url_or_path)
    if database is None or not database.is_file():
        return
    probe = create_registry_engine(url_or_path, read_only=True)
    try:
        check_schema(probe, allow_empty=True, allow_outdated=True)
    finally:
        probe.dispose()


class Registry:
    """The device registry on SQLite or PostgreSQL.

    Use :meth:`open`; the object is safe to share between threads (each call takes its
    own pooled connection).
    """

    def __init__(self, engine: Engine, *, station_id: str) -> None:
        self.engine = engine
        self.station_id = station_id
        # SQLite has one writer at a time and every transaction here takes the write lock
        # (BEGIN IMMEDIATE). Threads of this process queue on a lock instead of on
        # SQLite's busy handler, which polls with sleeps of up to 100 ms; other
        # processes still wait on the busy timeout.
        self._serial: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self.trust = TrustStore(self)
        """Trusted CA certificates, per service (first connection)."""
        self.revocations = Revocations(self)
        """Revoked endpoints and certificates."""
        self.connections = Connections(self)
        """The last connection of every endpoint to each service."""
        self.psk = PskCredentials(self)
        """PSK credentials the LwM2M server accepts (keys sealed to the server)."""
        self.accounts = Accounts(self)
        """The account the Device Management API serves."""
        self.api_keys = ApiKeys(self)
        """API keys of the Device Management API."""
        self.developer_certificates = DeveloperCertificates(self)
        """Developer certificates and the developer CA."""
        self.enrollments = Enrollments(self)
        """First-to-claim enrollments."""
        self.devices = DeviceDirectory(self)
        """Every endpoint that connected, with its state (the Device Management device directory)."""

    @classmethod
    def open(
        cls,
        url_or_path: str | Path,
        *,
        station_id: str | None = None,
        migrate: bool = True,
        read_only: bool = False,
    ) -> Self:
        """Connect to the registry, checking (and for work, preparing) its schema.

        Args:
            url_or_path: SQLite file path or ``postgresql://`` URL.
            station_id: recorded on every attempt; default :func:`default_station_id`.
            migrate: create the schema in an empty database and bring an older one up to
                date (the default, for stations at work); ``False`` leaves the database
                exactly as it is, unchecked.
            read_only: for inspection: a connection that writes nothing, on a registry
                that must exist at this provkit's schema revision.

        Raises:
            RegistrySchemaError: the database is not a provkit registry (or, read-only,
                an empty one, or one whose schema ``provkit registry upgrade`` must
                bring up to date first).
            RegistryError: the database is unreachable or the URL unusable.
        """
        if migrate and not read_only:
            _check_before_writing(url_or_path)
        engine = create_registry_engine(url_or_path, read_only=read_only)
        try:
            if read_only:
                check_schema(engine, allow_empty=False, allow_outdated=False)
            elif migrate:
                check_schema(engine, allow_empty=True, allow_outdated=True)
                upgrade_schema(engine)
        except RegistryError:
            engine.dispose()
            raise
        return cls(engine, station_id=station_id or default_station_id())

    @staticmethod
    def upgrade(url_or_path: str | Path) -> tuple[str | None, str]:
        """Bring a registry's schema to this provkit's newest revision (``provkit registry upgrade``).

        An empty PostgreSQL database gets the whole schema; a SQLite file must exist.

        Returns:
            The revision before (``None`` for an empty database) and after.

        Raises:
            RegistrySchemaError: the database is not a provkit registry, or a newer one.
            RegistryError: the database is unreachable, the file missing or a migration failed.
        """
        database = sqlite_file(url_or_path)
        if database is not None and not database.is_file():
            # A mistyped path must not become a new, empty registry.
            raise RegistryError(f"no registry at {database}: the file does not exist")
        _check_before_writing(url_or_path)
        engine = create_registry_engine(url_or_path)
        try:
            before = check_schema(engine, allow_empty=True, allow_outdated=True).revision
            upgrade_schema(engine)
            return before, schema_state(engine).head
        finally:
            engine.dispose()

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> Connection:
        """A connection of the caller's own, for many transactions in a row.

        Raises:
            RegistryError: the database is unreachable.
        """
        try:
            return self.engine.connect()
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry unavailable: {exc.__class__.__name__}: {exc}") from exc

    @contextmanager
    def transaction(self, connection: Connection | None = None) -> Iterator[Connection]:
        """One transaction (on ``connection``, or a pooled one); failures become :class:`RegistryError`."""
        try:
            with self._serial:
                if connection is None:
                    with self.engine.begin() as conn:
                        yield conn
                else:
                    with connection.begin():
                        yield connection
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry unavailable: {exc.__class__.__name__}: {exc}") from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: one consistent view that never waits for writers, nor holds them up.

        On SQLite it is a WAL snapshot (no write lock); on PostgreSQL a ``READ ONLY``
        transaction. Failures become :class:`RegistryError`.
        """
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**read_only_options(self.engine.dialect.name))
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry unavailable: {exc.__class__.__name__}: {exc}") from exc

    # ------------------------------------------------------------------ allocation
    def allocate(self, pattern: IdentityPattern, count: int, avoid: Collection[str] = ()) -> list[Identity]:
        """Allocate ``count`` fresh identities from ``pattern``'s sequence (never reused).

        Values an attempt already used, or listed in ``avoid`` (endpoint names and
        serial numbers given explicitly in the same batch), are skipped.

        Raises:
            AllocationError: a value would clash with one allocated elsewhere too often.
        """
        with self.transaction() as conn:
            return allocator.allocate_from_pattern(conn, pattern, count, self.station_id, avoid)

    def load_pool(self, pool: str, identities: Sequence[Identity]) -> int:
        """Add pre-assigned identities (from a CSV) to ``pool``; returns how many were new."""
        with self.transaction() as conn:
            return allocator.load_pool(conn, pool, identities)

    def allocate_from_pool(self, pool: str, count: int) -> list[Identity]:
        """Claim ``count`` unclaimed identities of ``pool`` atomically.

        Raises:
            AllocationError: the pool has fewer than ``count`` left (nothing is claimed).
        """
        with self.transaction() as conn:
            return allocator.claim_from_pool(conn, pool, count, self.station_id)

    # ------------------------------------------------------------------ attempts
    def create_batch(self, batch_id: str, source: str = "") -> None:
        """Record a batch (idempotent)."""
        with self.transaction() as conn:
            exists = conn.execute(select(batches.c.id).where(batches.c.id == batch_id)).first()
            if exists is None:
                conn.execute(
                    batches.insert().values(
                        id=batch_id, station_id=self.station_id, source=source, created_at=_now()
                    )
                )

    def record_attempts(self, batch_id: str | None, items: Sequence[NewAttempt]) -> list[int]:
        """Record new attempts in state ``allocated``; returns their ids in order.

        One multi-row ``INSERT … RETURNING`` for all of them (ids come back in the
        order of ``items``), then one update linking each superseded attempt forward.
        """
        with self.transaction() as conn:
            return changes.insert_attempts(conn, batch_id, self.station_id, items, _now())

    def update_attempt(self, attempt_id: int, state: AttemptState, **values: Any) -> None:
        """Move an attempt to ``state`` and store ``values`` (columns of ``attempts``)."""
        values = {**values, "state": state.value, "updated_at": _now()}
        with self.transaction() as conn:
            conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(**values))

    def mark_sending(self, attempt_id: int, *, reprovision: bool = False) -> None:
        """Write-ahead mark: the bundle is about to be sent (counts the try).

        The attempt's identity is reserved in the same transaction; with ``reprovision``
        a reservation another attempt holds is taken over.

        Raises:
            DuplicateIdentityError: another attempt holds the identity; the attempt is
                recorded as failed with that reason, and its bundle must not be sent.
        """
        mark = StateChange(attempt_id, AttemptState.SENDING, reprovision=reprovision)
        (applied,) = self.apply_changes([mark])
        if not applied:
            raise DuplicateIdentityError(self.get_attempt(attempt_id).error_message or "identity reserved")

    def mark_failed(
        self, attempt_id: int, code: int | None, message: str, *, release: bool = False, **values: Any
    ) -> None:
        """End an attempt as failed with an error code and a reason.

        ``release``: the bundle never reached the device, so the identity reservation
        the attempt took is freed.
        """
        values = {**values, "error_code": code, "error_message": message}
        self.apply_changes([StateChange(attempt_id, AttemptState.FAILED, values, release=release)])

    def mark_verified(self, attempt_id: int, *, reprovision: bool = False, **values: Any) -> None:
        """Record the attempt's device as provisioned.

        With ``reprovision`` an existing holder of the endpoint name or serial number is
        superseded by this attempt; without it the database refuses the clash.

        Raises:
            DuplicateIdentityError: the identity is already provisioned (the attempt is
                then recorded as failed with that reason, and with ``values``: the
                device's answer is kept even though it does not count).
        """
        try:
            refusal = self._settle(attempt_id, reprovision=reprovision, values=values)
        except IntegrityError:
            # A concurrent station may have taken the identity between our check and insert.
            try:
                refusal = self._settle(attempt_id, reprovision=reprovision, values=values)
            except IntegrityError as exc:
                raise self._refuse(attempt_id, "recorded by another attempt meanwhile", values) from exc
        if refusal is not None:
            # Recorded as failed only after the checking transaction has ended (SQLite
            # holds one write lock at a time).
            raise self._refuse(attempt_id, refusal, values)

    def _settle(self, attempt_id: int, *, reprovision: bool, values: dict[str, Any]) -> str | None:
        with self.transaction() as conn:
            return changes.settle_verified(conn, attempt_id, _now(), reprovision=reprovision, values=values)

    def apply_changes(self, items: Sequence[StateChange], connection: Connection | None = None) -> list[bool]:
        """Apply many attempts' state changes in one transaction (a group commit).

        Returns, per change, whether it was applied. A ``SENDING`` change whose identity
        another attempt has reserved is not: it is recorded as failed (4001) instead, and
        its bundle must not be sent. A ``VERIFIED`` change whose identity is already held
        is not either, and is then settled with :meth:`mark_verified` (which records the
        refusal or, with ``reprovision``, supersedes the holder).
        ``connection`` (from :meth:`connect`) spares a frequent writer the pool checkout.

        Raises:
            RegistryError: the registry is unavailable (nothing of the group is written).
        """
        if not items:
            return []
        try:
            with self.transaction(connection) as conn:
                return changes.apply_changes(conn, items, _now())
        except IntegrityError as exc:  # the claim cannot clash (ON CONFLICT); anything else is a fault
            raise RegistryError(f"registry refused a group of changes: {exc}") from exc

    def _refuse(self, attempt_id: int, why: str, values: dict[str, Any]) -> DuplicateIdentityError:
        attempt = self.get_attempt(attempt_id)
        message = (
            f"{attempt.endpoint_name} / {attempt.serial_number} is already provisioned ({why}); "
            "use --reprovision to replace it"
        )
        error = DuplicateIdentityError(message)
        self.mark_failed(attempt_id, error.code, message, **values)
        return error

    # ------------------------------------------------------------------ queries
    def get_attempt(self, attempt_id: int) -> Attempt:
        """The attempt with ``attempt_id``, with the device's raw answer.

        Raises:
            RegistryError: no such attempt.
        """
        with self.reading() as conn:
            attempt = queries.get_attempt(conn, attempt_id)
        if attempt is None:
            raise RegistryError(f"no attempt with id {attempt_id}")
        return attempt

    def batch_attempts(self, batch_id: str, slots: Sequence[str] | None = None) -> dict[str, Attempt]:
        """The latest attempt of every slot of ``batch_id`` (or of the given ``slots`` only)."""
        with self.reading() as conn:
            return queries.batch_attempts(conn, batch_id, slots)

    def batch_state_count(
        self, batch_id: str, state: AttemptState, slots: Sequence[str] | None = None
    ) -> int:
        """How many attempts of ``batch_id`` (of ``slots`` only, if given) are in ``state``."""
        with self.reading() as conn:
            return queries.batch_state_count(conn, batch_id, state, slots)

    def lookup(self, key: str) -> list[Attempt]:
        """Every attempt ``key`` names, oldest first.

        ``key`` is an endpoint name, a serial number, a device certificate's SHA-256
        fingerprint (hex, colons allowed) or enrollment id, or an attempt id. Each is one
        index look-up, whatever the registry's size.
        """
        with self.reading() as conn:
            return queries.lookup(conn, key)

    def find(
        self,
        *,
        endpoint_name: str | None = None,
        state: AttemptState | None = None,
        batch_id: str | None = None,
        provisioned_only: bool = False,
        after: int | None = None,
        before: int | None = None,
        newest: bool = False,
        limit: int | None = None,
    ) -> list[Attempt]:
        """Attempts matching all given filters, oldest first (``newest``: newest first).

        A page of a long list: ``limit`` rows, continuing ``after`` (or, newest first,
        ``before``) the last id of the previous page. The device's raw answer is left
        out (:meth:`get_attempt` has it).
        """
        page = PageFilter(endpoint_name, state, batch_id, provisioned_only, after, before, newest, limit)
        with self.reading() as conn:
            return queries.find(conn, page)

    def provisioned_holders(
        self, endpoint_names: Sequence[str], serial_numbers: Sequence[str]
    ) -> list[Attempt]:
        """Attempts currently holding any of these endpoint names or serial numbers."""
        with self.transaction() as conn:
            return queries.provisioned_holders(conn, endpoint_names, serial_numbers)

    def reserved(self, endpoint_names: Sequence[str], serial_numbers: Sequence[str]) -> dict[str, int]:
        """The attempt holding the reservation of each of these endpoint names and serial numbers."""
        with self.transaction() as conn:
            return queries.reserved(conn, endpoint_names, serial_numbers)

    def provisioned_owner(self, endpoint_name: str, serial_number: str) -> Attempt | None:
        """The attempt currently holding ``endpoint_name`` or ``serial_number``, if any."""
        with self.transaction() as conn:
            return queries.provisioned_owner(conn, endpoint_name, serial_number)

    def stats(self) -> RegistryStats:
        """Counts of attempts by state and of provisioned devices by station (constant time).

        Pending count changes are folded in first where the database keeps them apart
        (PostgreSQL); a registry user without write access still gets the counts.
        """
        try:
            self.fold_counts()
        except RegistryError as exc:
            _log.debug("counts not folded: %s", exc)
        with self.reading() as conn:
            return queries.stats(conn)

    def fold_counts(self) -> None:
        """Move the count changes pending since the last fold into the counts (PostgreSQL).

        Batch steps do it when they end; it keeps what ``stats`` reads small.
        """
        if self.engine.dialect.name == "postgresql":
            with self.transaction() as conn:
                counts.fold(conn)

    def export(self, out: TextIO, fmt: ExportFormat = "csv") -> int:
        """Stream every provisioned device to ``out`` (see :func:`~provkit.registry.export.write_export`).

        Returns how many devices were written. Memory stays that of one chunk of rows.

        Raises:
            RegistryError: the registry failed mid-way (``out`` then holds a part).
            OSError: ``out`` could not be written.
        """
        with self.reading() as conn:
            return write_export(conn, out, fmt)

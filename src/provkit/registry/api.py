"""The :class:`Registry`: every provisioning attempt, provisioned identities, allocation.

Each method is one short database transaction, so a station killed at any moment
leaves the registry consistent: an attempt is either recorded in a state or not.
Database failures surface as :class:`~provkit.errors.RegistryError`; identity clashes
among provisioned devices as :class:`~provkit.errors.DuplicateIdentityError`, raised by
the database's own unique constraints so they also hold across stations.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, bindparam, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from provkit.errors import DuplicateIdentityError, RegistryError
from provkit.registry import allocator
from provkit.registry.allocation import Identity, IdentityPattern
from provkit.registry.allocator import dialect_insert as _dialect_insert
from provkit.registry.engine import create_registry_engine, upgrade_schema
from provkit.registry.records import Attempt, RegistryStats
from provkit.registry.schema import AttemptState, attempts, batches, provisioned


def default_station_id() -> str:
    """``PROVKIT_STATION_ID`` or the host name: who recorded an attempt."""
    return os.environ.get("PROVKIT_STATION_ID") or socket.gethostname()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NewAttempt:
    """What is known about an attempt when it is first recorded."""

    endpoint_name: str
    serial_number: str
    slot: str | None = None
    address: str | None = None
    key_mode: str = ""
    supersedes_id: int | None = None


class Registry:
    """The device registry on SQLite or PostgreSQL.

    Use :meth:`open`; the object is safe to share between threads (each call takes its
    own pooled connection).
    """

    def __init__(self, engine: Engine, *, station_id: str) -> None:
        self.engine = engine
        self.station_id = station_id

    @classmethod
    def open(cls, url_or_path: str | Path, *, station_id: str | None = None, migrate: bool = True) -> Self:
        """Connect to the registry and bring its schema up to date.

        Args:
            url_or_path: SQLite file path or ``postgresql://`` URL.
            station_id: recorded on every attempt; default :func:`default_station_id`.
            migrate: run the Alembic migrations (on by default).

        Raises:
            RegistryError: the database is unreachable or the URL unusable.
        """
        engine = create_registry_engine(url_or_path)
        if migrate:
            try:
                upgrade_schema(engine)
            except RegistryError:
                engine.dispose()
                raise
        return cls(engine, station_id=station_id or default_station_id())

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; database failures become :class:`RegistryError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry unavailable: {exc.__class__.__name__}: {exc}") from exc

    # ------------------------------------------------------------------ allocation
    def allocate(self, pattern: IdentityPattern, count: int) -> list[Identity]:
        """Allocate ``count`` fresh identities from ``pattern``'s sequence (never reused).

        Raises:
            AllocationError: a value would clash with one allocated elsewhere too often.
        """
        with self.transaction() as conn:
            return allocator.allocate_from_pattern(conn, pattern, count, self.station_id)

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
        """Record new attempts in state ``allocated``; returns their ids in order."""
        now = _now()
        ids: list[int] = []
        with self.transaction() as conn:
            for item in items:
                row = conn.execute(
                    attempts.insert()
                    .values(
                        batch_id=batch_id,
                        slot=item.slot,
                        address=item.address,
                        endpoint_name=item.endpoint_name,
                        serial_number=item.serial_number,
                        station_id=self.station_id,
                        key_mode=item.key_mode,
                        state=AttemptState.ALLOCATED.value,
                        tries=0,
                        supersedes_id=item.supersedes_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(attempts.c.id)
                ).scalar_one()
                ids.append(int(row))
                if item.supersedes_id is not None:
                    conn.execute(
                        update(attempts)
                        .where(attempts.c.id == item.supersedes_id)
                        .values(superseded_by_id=int(row), updated_at=now)
                    )
        return ids

    def update_attempt(self, attempt_id: int, state: AttemptState, **values: Any) -> None:
        """Move an attempt to ``state`` and store ``values`` (columns of ``attempts``)."""
        values = {**values, "state": state.value, "updated_at": _now()}
        with self.transaction() as conn:
            conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(**values))

    def update_many(self, state: AttemptState, rows: Sequence[dict[str, Any]]) -> None:
        """Move many attempts to ``state`` in one transaction.

        Args:
            state: the new state.
            rows: one dict per attempt: ``id`` plus the same other columns in every dict.
        """
        if not rows:
            return
        columns = [key for key in rows[0] if key != "id"]
        statement = (
            update(attempts)
            .where(attempts.c.id == bindparam("_id"))
            .values(
                {**{c: bindparam(c) for c in columns}, "state": state.value, "updated_at": bindparam("_now")}
            )
        )
        now = _now()
        params = [{**{c: row[c] for c in columns}, "_id": row["id"], "_now": now} for row in rows]
        with self.transaction() as conn:
            conn.execute(statement, params)

    def provisioned_holders(
        self, endpoint_names: Sequence[str], serial_numbers: Sequence[str]
    ) -> list[Attempt]:
        """Attempts currently holding any of these endpoint names or serial numbers."""
        found: dict[int, Attempt] = {}
        chunk = 500  # keeps the IN lists well under every database's parameter limit
        with self.transaction() as conn:
            for start in range(0, max(len(endpoint_names), len(serial_numbers)), chunk):
                query = (
                    select(attempts)
                    .join(provisioned, provisioned.c.attempt_id == attempts.c.id)
                    .where(
                        or_(
                            provisioned.c.endpoint_name.in_(endpoint_names[start : start + chunk]),
                            provisioned.c.serial_number.in_(serial_numbers[start : start + chunk]),
                        )
                    )
                )
                for row in conn.execute(query).mappings():
                    found[int(row["id"])] = Attempt.from_row(row)
        return list(found.values())

    def mark_sending(self, attempt_id: int) -> None:
        """Write-ahead mark: the bundle is about to be sent (counts the try)."""
        with self.transaction() as conn:
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(state=AttemptState.SENDING.value, tries=attempts.c.tries + 1, updated_at=_now())
            )

    def mark_failed(self, attempt_id: int, code: int | None, message: str, **values: Any) -> None:
        """End an attempt as failed with an error code and a reason."""
        self.update_attempt(attempt_id, AttemptState.FAILED, error_code=code, error_message=message, **values)

    def provisioned_owner(self, endpoint_name: str, serial_number: str) -> Attempt | None:
        """The attempt currently holding ``endpoint_name`` or ``serial_number``, if any."""
        with self.transaction() as conn:
            row = (
                conn.execute(
                    select(attempts)
                    .join(provisioned, provisioned.c.attempt_id == attempts.c.id)
                    .where(
                        or_(
                            provisioned.c.endpoint_name == endpoint_name,
                            provisioned.c.serial_number == serial_number,
                        )
                    )
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return None if row is None else Attempt.from_row(row)

    def mark_verified(self, attempt_id: int, *, reprovision: bool = False, **values: Any) -> None:
        """Record the attempt's device as provisioned.

        With ``reprovision`` an existing holder of the endpoint name or serial number is
        superseded by this attempt; without it the database refuses the clash.

        Raises:
            DuplicateIdentityError: the identity is already provisioned (the attempt is
                then recorded as failed with that reason).
        """
        try:
            refusal = self._mark_verified(attempt_id, reprovision=reprovision, values=values)
        except IntegrityError:
            # A concurrent station may have taken the identity between our check and insert.
            try:
                refusal = self._mark_verified(attempt_id, reprovision=reprovision, values=values)
            except IntegrityError as exc:
                raise self._refuse(attempt_id, "recorded by another attempt meanwhile") from exc
        if refusal is not None:
            # Recorded as failed only after the checking transaction has ended (SQLite
            # holds one write lock at a time).
            raise self._refuse(attempt_id, refusal)

    def _mark_verified(self, attempt_id: int, *, reprovision: bool, values: dict[str, Any]) -> str | None:
        now = _now()
        with self.transaction() as conn:
            if not reprovision and self._claim(conn, attempt_id, now, values):
                return None
            me = conn.execute(
                select(attempts.c.endpoint_name, attempts.c.serial_number).where(attempts.c.id == attempt_id)
            ).one()
            holders = conn.execute(
                select(provisioned.c.endpoint_name, provisioned.c.attempt_id)
                .where(
                    or_(
                        provisioned.c.endpoint_name == me.endpoint_name,
                        provisioned.c.serial_number == me.serial_number,
                    )
                )
                .with_for_update()
            ).all()
            others = [h for h in holders if h.attempt_id != attempt_id]
            if others and not reprovision:
                return f"held by attempt {others[0].attempt_id}"
            for holder in others:
                conn.execute(provisioned.delete().where(provisioned.c.endpoint_name == holder.endpoint_name))
                conn.execute(
                    update(attempts)
                    .where(attempts.c.id == holder.attempt_id)
                    .values(state=AttemptState.SUPERSEDED.value, superseded_by_id=attempt_id, updated_at=now)
                )
            if len(others) < len(holders):
                return None  # already recorded: verifying twice is harmless
            conn.execute(
                provisioned.insert().values(
                    endpoint_name=me.endpoint_name,
                    serial_number=me.serial_number,
                    attempt_id=attempt_id,
                    provisioned_at=now,
                )
            )
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(state=AttemptState.VERIFIED.value, provisioned_at=now, updated_at=now, **values)
            )
        return None

    @staticmethod
    def _claim(conn: Connection, attempt_id: int, now: datetime, values: dict[str, Any]) -> bool:
        """Fast path: insert the identity if nobody holds it (one statement decides).

        Returns False, with nothing written, when the endpoint name or serial number is
        taken; the caller then looks at the holders.
        """
        me = select(attempts.c.endpoint_name, attempts.c.serial_number, attempts.c.id, literal(now)).where(
            attempts.c.id == attempt_id
        )
        inserted = conn.execute(
            _dialect_insert(conn, provisioned)
            .from_select(["endpoint_name", "serial_number", "attempt_id", "provisioned_at"], me)
            .on_conflict_do_nothing()
            .returning(provisioned.c.attempt_id)
        ).first()
        if inserted is None:
            return False
        conn.execute(
            update(attempts)
            .where(attempts.c.id == attempt_id)
            .values(state=AttemptState.VERIFIED.value, provisioned_at=now, updated_at=now, **values)
        )
        return True

    def _refuse(self, attempt_id: int, why: str) -> DuplicateIdentityError:
        attempt = self.get_attempt(attempt_id)
        message = (
            f"{attempt.endpoint_name} / {attempt.serial_number} is already provisioned ({why}); "
            "use --reprovision to replace it"
        )
        error = DuplicateIdentityError(message)
        self.mark_failed(attempt_id, error.code, message)
        return error

    # ------------------------------------------------------------------ queries
    def get_attempt(self, attempt_id: int) -> Attempt:
        """The attempt with ``attempt_id``.

        Raises:
            RegistryError: no such attempt.
        """
        with self.transaction() as conn:
            row = conn.execute(select(attempts).where(attempts.c.id == attempt_id)).mappings().first()
        if row is None:
            raise RegistryError(f"no attempt with id {attempt_id}")
        return Attempt.from_row(row)

    def batch_attempts(self, batch_id: str) -> dict[str, Attempt]:
        """The latest attempt of every slot of ``batch_id``."""
        with self.transaction() as conn:
            rows = conn.execute(
                select(attempts).where(attempts.c.batch_id == batch_id).order_by(attempts.c.id)
            ).mappings()
            return {str(row["slot"]): Attempt.from_row(row) for row in rows}

    def find(
        self,
        *,
        endpoint_name: str | None = None,
        state: AttemptState | None = None,
        batch_id: str | None = None,
        provisioned_only: bool = False,
        limit: int | None = None,
    ) -> list[Attempt]:
        """Attempts matching all given filters, oldest first."""
        query = select(attempts).order_by(attempts.c.id)
        if provisioned_only:
            query = query.join(provisioned, provisioned.c.attempt_id == attempts.c.id)
        if endpoint_name is not None:
            query = query.where(attempts.c.endpoint_name == endpoint_name)
        if state is not None:
            query = query.where(attempts.c.state == state.value)
        if batch_id is not None:
            query = query.where(attempts.c.batch_id == batch_id)
        if limit is not None:
            query = query.limit(limit)
        with self.transaction() as conn:
            return [Attempt.from_row(row) for row in conn.execute(query).mappings()]

    def stats(self) -> RegistryStats:
        """Counts of attempts by state and of provisioned devices by station."""
        with self.transaction() as conn:
            by_state = {
                str(state): int(count)
                for state, count in conn.execute(
                    select(attempts.c.state, func.count()).group_by(attempts.c.state)
                ).all()
            }
            by_station = {
                str(station): int(count)
                for station, count in conn.execute(
                    select(attempts.c.station_id, func.count())
                    .join(provisioned, provisioned.c.attempt_id == attempts.c.id)
                    .group_by(attempts.c.station_id)
                ).all()
            }
            total_provisioned = conn.execute(select(func.count()).select_from(provisioned)).scalar_one()
        return RegistryStats(
            attempts=sum(by_state.values()),
            provisioned=int(total_provisioned),
            by_state=by_state,
            by_station=by_station,
        )

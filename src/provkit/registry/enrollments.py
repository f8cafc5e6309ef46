"""First-to-claim enrollments: which devices the account claims when they first connect.

An enrollment identity is ``A-`` followed by the SHA-256 fingerprint of the device's
bootstrap certificate as 32 colon-separated hex bytes (97 characters), as the factory
tool prints it (:func:`provkit.crypto.x509.enrollment_id`). The device is claimed for
the account when it first connects to ``provkit server`` with that certificate before the
enrollment expires: the servers record every connection with the certificate's
fingerprint, and reading an enrollment settles its claim from those records, once (the
first endpoint seen with the certificate wins). The device id of a claim is its endpoint
name, as in the device directory. Identities are kept in upper case, the form the factory
tool prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from provkit.errors import ApiConflict, ApiNotFound, ApiRequestInvalid
from provkit.registry.ids import new_id
from provkit.registry.paging import Order, Page, read_page
from provkit.registry.schema import accounts, connections, enrollments

if TYPE_CHECKING:
    from provkit.registry.api import Registry

CLAIM_LIFETIME: Final = timedelta(days=90)
"""How long an unclaimed enrollment waits for its device before it expires."""
_IDENTITY_RE: Final = re.compile(r"A-[0-9A-F]{2}(?::[0-9A-F]{2}){31}")


@dataclass(frozen=True, slots=True)
class Enrollment:
    """One enrollment.

    Attributes:
        id: 32 hex digits.
        account_id: the account that claims the device.
        enrollment_identity: ``A-`` + the certificate fingerprint.
        created_at: when it was made.
        expires_at: when an unclaimed enrollment lapses.
        claimed_at: when the device connected and was claimed.
        enrolled_device_id: the device id it was claimed as.
        endpoint_name: the endpoint name the device connected with.
    """

    id: str
    account_id: str
    enrollment_identity: str
    created_at: datetime
    expires_at: datetime
    claimed_at: datetime | None
    enrolled_device_id: str | None
    endpoint_name: str | None


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def enrollment(row: Any) -> Enrollment:
    """An :class:`Enrollment` from a row of ``enrollments``."""
    created, expires = _aware(row.created_at), _aware(row.expires_at)
    assert created is not None and expires is not None
    return Enrollment(
        id=row.id,
        account_id=row.account_id,
        enrollment_identity=row.enrollment_identity,
        created_at=created,
        expires_at=expires,
        claimed_at=_aware(row.claimed_at),
        enrolled_device_id=row.enrolled_device_id,
        endpoint_name=row.endpoint_name,
    )


def check_identity(identity: str) -> str:
    """``identity`` in upper case, if it is an enrollment identity.

    Raises:
        ApiRequestInvalid: not ``A-`` and 32 colon-separated hex bytes.
    """
    upper = identity.strip().upper()
    if not _IDENTITY_RE.fullmatch(upper):
        raise ApiRequestInvalid(
            "enrollment_identity must be A- followed by the certificate's SHA-256 fingerprint "
            "as 32 colon-separated hex bytes (97 characters)",
            fields=(("enrollment_identity", "not an enrollment identity"),),
        )
    return upper


class Enrollments:
    """The enrollments of a registry (``registry.enrollments``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def add(self, identity: str, *, now: datetime | None = None) -> Enrollment:
        """Enroll the device whose certificate fingerprint ``identity`` gives.

        Raises:
            ApiRequestInvalid: a malformed identity.
            ApiConflict: the identity is enrolled already.
        """
        identity = check_identity(identity)
        when = now or datetime.now(UTC)
        enrollment_id = new_id(when.timestamp())
        try:
            with self._registry.transaction() as conn:
                account_id = conn.execute(select(accounts.c.id)).scalar_one()
                conn.execute(
                    enrollments.insert().values(
                        id=enrollment_id,
                        account_id=account_id,
                        enrollment_identity=identity,
                        created_at=when,
                        expires_at=when + CLAIM_LIFETIME,
                    )
                )
        except IntegrityError as exc:
            raise ApiConflict(f"{identity} is enrolled already") from exc
        return self.get(enrollment_id)

    def get(self, enrollment_id: str) -> Enrollment:
        """The enrollment with ``enrollment_id``, its claim settled (see :meth:`page`).

        Raises:
            ApiNotFound: no such enrollment.
        """
        with self._registry.transaction() as conn:
            row = conn.execute(select(enrollments).where(enrollments.c.id == enrollment_id)).first()
            if row is None:
                raise ApiNotFound(f"no enrollment with id {enrollment_id}")
            return _settle(conn, [enrollment(row)])[0]

    def page(self, *, limit: int, after: str | None, order: Order, count: bool) -> Page:
        """One page of enrollments by id (rows are :class:`Enrollment`).

        An unclaimed enrollment whose device has connected since (a successful connection
        with the certificate of that fingerprint, before the enrollment expired) is
        claimed here, once: the first endpoint seen with the certificate wins.
        """
        with self._registry.transaction() as conn:
            query = select(enrollments)
            page = read_page(
                conn,
                query,
                enrollments.c.id,
                limit=limit,
                after=after,
                order=order,
                count=count,
                record=enrollment,
            )
            return Page(_settle(conn, list(page.rows)), page.has_more, page.total_count)

    def delete(self, enrollment_id: str) -> None:
        """Withdraw an enrollment.

        Raises:
            ApiNotFound: no such enrollment.
        """
        with self._registry.transaction() as conn:
            deleted = conn.execute(delete(enrollments).where(enrollments.c.id == enrollment_id)).rowcount
        if not deleted:
            raise ApiNotFound(f"no enrollment with id {enrollment_id}")


def _fingerprint(identity: str) -> str:
    """The hex SHA-256 an enrollment identity names (as connection records keep it)."""
    return identity.removeprefix("A-").replace(":", "").lower()


def _settle(conn: Connection, items: list[Enrollment]) -> list[Enrollment]:
    """Claim the unclaimed ones whose device connected before they expired; return all, current."""
    waiting = {_fingerprint(item.enrollment_identity): item for item in items if item.claimed_at is None}
    if not waiting:
        return items
    # The matching rows are few (one per service a device reached); the earliest is found
    # here rather than by a GROUP BY, which would sort in the database.
    seen = conn.execute(
        select(connections.c.fingerprint, connections.c.endpoint_name, connections.c.first_seen).where(
            connections.c.fingerprint.in_(list(waiting)), connections.c.successes > 0
        )
    ).all()
    first: dict[str, tuple[datetime, str]] = {}
    for fingerprint, endpoint_name, when in seen:
        moment = _aware(when)
        assert moment is not None
        if fingerprint not in first or (moment, endpoint_name) < first[fingerprint]:
            first[fingerprint] = (moment, endpoint_name)
    claimed: dict[str, Enrollment] = {}
    for fingerprint, (when, endpoint_name) in first.items():
        item = waiting[fingerprint]
        if when > item.expires_at:
            continue  # it connected only after the claim lapsed
        conn.execute(
            update(enrollments)
            .where(enrollments.c.id == item.id, enrollments.c.claimed_at.is_(None))
            .values(claimed_at=when, enrolled_device_id=endpoint_name, endpoint_name=endpoint_name)
        )
        claimed[item.id] = replace(
            item, claimed_at=when, enrolled_device_id=endpoint_name, endpoint_name=endpoint_name
        )
    return [claimed.get(item.id, item) for item in items]

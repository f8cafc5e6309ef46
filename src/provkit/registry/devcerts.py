"""Developer certificates and the developer CA that signs them, as the registry keeps them.

The private keys arrive sealed: the Device Management API seals them with the server's
secret before they reach the database (see ``provkit.server.api.developer``). Names are
unique, as Device Management answers 409 to a second certificate of one name; the
database's unique constraint decides between concurrent creations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from provkit.errors import ApiConflict, ApiNotFound
from provkit.registry.ids import new_id
from provkit.registry.paging import Order, Page, read_page
from provkit.registry.schema import developer_cas, developer_certificates, trusted_certificates

if TYPE_CHECKING:
    from provkit.registry.api import Registry


@dataclass(frozen=True, slots=True)
class DeveloperCa:
    """The developer CA.

    Attributes:
        id: 32 hex digits.
        certificate: DER.
        sealed_key: its private key, sealed by the server.
        created_at: when it was made.
    """

    id: str
    certificate: bytes
    sealed_key: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeveloperCertificateRecord:
    """One developer certificate.

    Attributes:
        id: 32 hex digits.
        account_id: the account.
        name: unique name.
        description: free text.
        endpoint_name: the device's endpoint name (the certificate's CN).
        certificate: the device certificate, DER.
        sealed_key: the device private key (PKCS#8 DER), sealed by the server.
        fingerprint: SHA-256 of the certificate, hex.
        ca_id: the developer CA that signed it.
        created_at: when it was made.
    """

    id: str
    account_id: str
    name: str
    description: str
    endpoint_name: str
    certificate: bytes
    sealed_key: bytes
    fingerprint: str
    ca_id: str
    created_at: datetime


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _record(row: Any) -> DeveloperCertificateRecord:
    return DeveloperCertificateRecord(
        id=row.id,
        account_id=row.account_id,
        name=row.name,
        description=row.description,
        endpoint_name=row.endpoint_name,
        certificate=bytes(row.certificate),
        sealed_key=bytes(row.sealed_key),
        fingerprint=row.fingerprint,
        ca_id=row.ca_id,
        created_at=_aware(row.created_at),
    )


class DeveloperCertificates:
    """Developer certificates and the developer CA of a registry (``registry.developer_certificates``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    # ------------------------------------------------------------ the CA

    def ca(self) -> DeveloperCa | None:
        """The developer CA (the first one made), or ``None`` before any."""
        with self._registry.transaction() as conn:
            row = conn.execute(select(developer_cas).order_by(developer_cas.c.created_at).limit(1)).first()
        if row is None:
            return None
        return DeveloperCa(row.id, bytes(row.certificate), bytes(row.sealed_key), _aware(row.created_at))

    def add_ca_if_none(self, certificate: bytes, sealed_key: bytes) -> DeveloperCa:
        """Store a developer CA unless one exists; return the one that counts.

        Two servers starting on one fresh database may both make a CA; the first committed
        is used by both, the other is stored and never used.
        """
        with self._registry.transaction() as conn:
            known = conn.execute(select(func.count()).select_from(developer_cas)).scalar_one()
            if not known:
                conn.execute(
                    developer_cas.insert().values(
                        id=new_id(),
                        certificate=certificate,
                        sealed_key=sealed_key,
                        created_at=datetime.now(UTC),
                    )
                )
        ca = self.ca()
        assert ca is not None
        return ca

    # ------------------------------------------------------------ certificates

    def add(
        self,
        *,
        cert_id: str,
        account_id: str,
        name: str,
        description: str,
        endpoint_name: str,
        certificate: bytes,
        sealed_key: bytes,
        fingerprint: str,
        ca_id: str,
    ) -> DeveloperCertificateRecord:
        """Record a developer certificate.

        Raises:
            ApiConflict: a developer certificate of that name exists.
        """
        record = DeveloperCertificateRecord(
            id=cert_id,
            account_id=account_id,
            name=name,
            description=description,
            endpoint_name=endpoint_name,
            certificate=certificate,
            sealed_key=sealed_key,
            fingerprint=fingerprint,
            ca_id=ca_id,
            created_at=datetime.now(UTC),
        )
        try:
            with self._registry.transaction() as conn:
                conn.execute(developer_certificates.insert().values(**asdict(record)))
        except IntegrityError as exc:
            raise ApiConflict(f"a developer certificate named {name!r} already exists") from exc
        return record

    def get(self, cert_id: str) -> DeveloperCertificateRecord:
        """The developer certificate with ``cert_id``.

        Raises:
            ApiNotFound: no such developer certificate.
        """
        found = self.find(cert_id)
        if found is None:
            raise ApiNotFound(f"no developer certificate with id {cert_id}")
        return found

    def find(self, cert_id: str) -> DeveloperCertificateRecord | None:
        """The developer certificate with ``cert_id``, or ``None``."""
        with self._registry.transaction() as conn:
            row = conn.execute(
                select(developer_certificates).where(developer_certificates.c.id == cert_id)
            ).first()
        return None if row is None else _record(row)

    def name_taken(self, name: str) -> bool:
        """Whether a developer certificate or a trusted certificate is called ``name``.

        mbl-cli and ``provkit developer`` find a developer certificate by name among the
        trusted certificates, so a name is given once across both.
        """
        developer = select(developer_certificates.c.id).where(developer_certificates.c.name == name)
        trusted = select(trusted_certificates.c.id).where(trusted_certificates.c.name == name)
        with self._registry.transaction() as conn:
            return conn.execute(developer.union_all(trusted).limit(1)).first() is not None

    def page(self, *, limit: int, after: str | None, order: Order, count: bool) -> Page:
        """One page of developer certificates by id (rows are :class:`DeveloperCertificateRecord`)."""
        with self._registry.transaction() as conn:
            query = select(developer_certificates)
            return read_page(
                conn,
                query,
                developer_certificates.c.id,
                limit=limit,
                after=after,
                order=order,
                count=count,
                record=_record,
            )

    def list(self) -> list[DeveloperCertificateRecord]:
        """Every developer certificate, oldest first."""
        with self._registry.transaction() as conn:
            rows = conn.execute(select(developer_certificates).order_by(developer_certificates.c.id)).all()
        return [_record(row) for row in rows]

    def by_fingerprints(self, fingerprints: Sequence[str]) -> dict[str, DeveloperCertificateRecord]:
        """The developer certificates among ``fingerprints`` (hex SHA-256), by fingerprint."""
        if not fingerprints:
            return {}
        with self._registry.transaction() as conn:
            query = select(developer_certificates).where(
                developer_certificates.c.fingerprint.in_(fingerprints)
            )
            rows = conn.execute(query).all()
        return {row.fingerprint: _record(row) for row in rows}

    def delete(self, cert_id: str) -> DeveloperCertificateRecord:
        """Forget a developer certificate; return what it was.

        Raises:
            ApiNotFound: no such developer certificate.
        """
        record = self.get(cert_id)
        with self._registry.transaction() as conn:
            deleted = conn.execute(
                delete(developer_certificates).where(developer_certificates.c.id == cert_id)
            )
        if not deleted.rowcount:
            raise ApiNotFound(f"no developer certificate with id {cert_id}")
        return record

"""Trusted CA certificates and revocations: whom the LwM2M server accepts.

A device is accepted in certificate mode when its chain reaches an *active* trusted CA
of the service it connects to (``bootstrap`` or ``lwm2m``) and neither its endpoint nor
its certificate is revoked. Every change bumps the ``trust_revision`` counter in the same
transaction, so running servers (several processes, several hosts on one PostgreSQL)
notice it with one cheap query and reload.

Used by ``provkit server trust-ca`` / ``revoke`` and by the Device Management API's
``/v3/trusted-certificates``; the server reads :meth:`TrustStore.active` and
:meth:`Revocations.snapshot`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from provkit.crypto import x509
from provkit.errors import CryptoError, TrustError
from provkit.registry.schema import revocations, trust_revision, trusted_certificates

if TYPE_CHECKING:
    from provkit.registry.api import Registry

ALREADY_TRUSTED: Final = 8004
"""Code of :class:`~provkit.errors.TrustError` when the certificate is already trusted for the service."""
NOT_FOUND: Final = 8005
"""Code of :class:`~provkit.errors.TrustError` for an unknown trusted certificate or revocation."""


class Service(StrEnum):
    """Which server a trusted CA or credential is for (the Device Management API's ``service``)."""

    BOOTSTRAP = "bootstrap"
    LWM2M = "lwm2m"


class TrustStatus(StrEnum):
    """Whether a trusted certificate is used (the API's ``status``)."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


@dataclass(frozen=True, slots=True)
class TrustedCertificate:
    """One trusted CA certificate.

    Attributes:
        id: 32 hex digits.
        name: a label for people.
        description: free text.
        service: which server accepts devices signed by it.
        status: only active certificates are used.
        is_developer_certificate: the CA signs developer certificates (developer flow).
        certificate: the certificate, DER.
        fingerprint: SHA-256 of the DER, hex.
        subject: RFC 4514 subject.
        issuer: RFC 4514 issuer.
        serial_number: hex serial number.
        not_before: start of validity.
        not_after: end of validity.
        created_at: when it was added.
        updated_at: when it last changed.
    """

    id: str
    name: str
    description: str
    service: Service
    status: TrustStatus
    is_developer_certificate: bool
    certificate: bytes
    fingerprint: str
    subject: str
    issuer: str
    serial_number: str
    not_before: datetime
    not_after: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def pem(self) -> str:
        """The certificate in PEM."""
        return x509.certificate_pem([x509.load_certificate(self.certificate)]).decode("ascii")


def aware(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite hands back naive datetimes for timezone columns)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _trusted(row: Any) -> TrustedCertificate:
    return TrustedCertificate(
        id=row.id,
        name=row.name,
        description=row.description,
        service=Service(row.service),
        status=TrustStatus(row.status),
        is_developer_certificate=bool(row.is_developer_certificate),
        certificate=bytes(row.certificate),
        fingerprint=row.fingerprint,
        subject=row.subject,
        issuer=row.issuer,
        serial_number=row.serial_number,
        not_before=aware(row.not_before),
        not_after=aware(row.not_after),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def bump_revision(conn: Connection) -> None:
    """Advance the trust revision (in the caller's transaction)."""
    conn.execute(
        update(trust_revision).where(trust_revision.c.id == 1).values(revision=trust_revision.c.revision + 1)
    )


def read_revision(conn: Connection) -> int:
    """The current trust revision."""
    return int(conn.execute(select(trust_revision.c.revision).where(trust_revision.c.id == 1)).scalar_one())


def check_ca_certificate(der_or_pem: bytes, *, now: datetime) -> x509.Certificate:
    """Load a certificate and check that Mbed TLS can use it as a trust anchor.

    Raises:
        TrustError: not a certificate, not a CA (BasicConstraints CA:TRUE is required of
            v3 certificates), or expired.
    """
    try:
        certs = x509.load_certificates(der_or_pem)
    except CryptoError as exc:
        raise TrustError(f"not an X.509 certificate: {exc}") from exc
    if len(certs) != 1:
        raise TrustError(f"expected one CA certificate, the file holds {len(certs)}")
    cert = certs[0]
    if cert.version.value >= 2 and not x509.is_ca_certificate(cert):
        raise TrustError(
            f"{x509.subject_text(cert)} is not a CA certificate (BasicConstraints CA:TRUE is missing)",
            hint="trust the CA that signs the device certificates (the factory CA, keystore/fcu.crt)",
        )
    if x509.not_valid_after(cert) <= now:
        raise TrustError(f"{x509.subject_text(cert)} expired on {x509.not_valid_after(cert):%Y-%m-%d}")
    return cert


class TrustStore:
    """The trusted CA certificates of a registry (``registry.trust``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def add(
        self,
        der_or_pem: bytes,
        *,
        service: Service | str = Service.BOOTSTRAP,
        name: str | None = None,
        description: str = "",
        status: TrustStatus | str = TrustStatus.ACTIVE,
        is_developer_certificate: bool = False,
        now: datetime | None = None,
    ) -> TrustedCertificate:
        """Trust a CA certificate for ``service``.

        Args:
            der_or_pem: the CA certificate (DER or PEM, one certificate).
            service: ``bootstrap`` or ``lwm2m``.
            name: a label (default: the subject CN, else the subject).
            description: free text.
            status: ``ACTIVE`` (used at once) or ``INACTIVE``.
            is_developer_certificate: the CA signs developer certificates.
            now: the current time (tests).

        Raises:
            TrustError: unusable certificate (8001), or already trusted for the service (8004).
        """
        when = now or datetime.now(UTC)
        cert = check_ca_certificate(der_or_pem, now=when)
        der = x509.certificate_der(cert)
        values = {
            "id": uuid.uuid4().hex,
            "name": name or x509.common_name(cert) or x509.subject_text(cert),
            "description": description,
            "service": Service(service).value,
            "status": TrustStatus(status).value,
            "is_developer_certificate": is_developer_certificate,
            "certificate": der,
            "fingerprint": x509.der_fingerprint(der).hex(),
            "subject": x509.subject_text(cert),
            "issuer": cert.issuer.rfc4514_string(),
            "serial_number": format(cert.serial_number, "x"),
            "not_before": x509.not_valid_before(cert),
            "not_after": x509.not_valid_after(cert),
            "created_at": when,
            "updated_at": when,
        }
        try:
            with self._registry.transaction() as conn:
                conn.execute(trusted_certificates.insert().values(**values))
                bump_revision(conn)
        except IntegrityError as exc:
            raise TrustError(
                f"{x509.subject_text(cert)} is already trusted for {Service(service).value}",
                code=ALREADY_TRUSTED,
            ) from exc
        return self.get(str(values["id"]))

    def get(self, certificate_id: str) -> TrustedCertificate:
        """The trusted certificate with ``certificate_id``.

        Raises:
            TrustError: no such certificate (8005).
        """
        with self._registry.transaction() as conn:
            row = conn.execute(
                select(trusted_certificates).where(trusted_certificates.c.id == certificate_id)
            ).first()
        if row is None:
            raise TrustError(f"no trusted certificate with id {certificate_id}", code=NOT_FOUND)
        return _trusted(row)

    def find(
        self, *, service: Service | str | None = None, status: TrustStatus | str | None = None
    ) -> list[TrustedCertificate]:
        """Trusted certificates, oldest first, optionally of one service and status."""
        query = select(trusted_certificates).order_by(
            trusted_certificates.c.created_at, trusted_certificates.c.id
        )
        if service is not None:
            query = query.where(trusted_certificates.c.service == Service(service).value)
        if status is not None:
            query = query.where(trusted_certificates.c.status == TrustStatus(status).value)
        with self._registry.transaction() as conn:
            return [_trusted(row) for row in conn.execute(query)]

    def active(self, service: Service | str) -> list[bytes]:
        """DER of every active certificate trusted for ``service``: the server's trust anchors."""
        return [cert.certificate for cert in self.find(service=service, status=TrustStatus.ACTIVE)]

    def update(
        self,
        certificate_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        status: TrustStatus | str | None = None,
    ) -> TrustedCertificate:
        """Change a trusted certificate's name, description or status.

        Raises:
            TrustError: no such certificate (8005).
        """
        values: dict[str, object] = {"updated_at": datetime.now(UTC)}
        if name is not None:
            values["name"] = name
        if description is not None:
            values["description"] = description
        if status is not None:
            values["status"] = TrustStatus(status).value
        with self._registry.transaction() as conn:
            changed = conn.execute(
                update(trusted_certificates)
                .where(trusted_certificates.c.id == certificate_id)
                .values(**values)
            ).rowcount
            if changed:
                bump_revision(conn)
        if not changed:
            raise TrustError(f"no trusted certificate with id {certificate_id}", code=NOT_FOUND)
        return self.get(certificate_id)

    def delete(self, certificate_id: str) -> None:
        """Stop trusting a certificate.

        Raises:
            TrustError: no such certificate (8005).
        """
        with self._registry.transaction() as conn:
            deleted = conn.execute(
                delete(trusted_certificates).where(trusted_certificates.c.id == certificate_id)
            ).rowcount
            if deleted:
                bump_revision(conn)
        if not deleted:
            raise TrustError(f"no trusted certificate with id {certificate_id}", code=NOT_FOUND)

    def revision(self) -> int:
        """The trust revision: it grows with every change of trusted certificates, revocations or PSKs."""
        with self._registry.transaction() as conn:
            return read_revision(conn)


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revocation: an endpoint, or one certificate.

    Attributes:
        id: row id.
        endpoint_name: every credential of this endpoint is refused, if set.
        fingerprint: the certificate with this SHA-256 fingerprint (hex) is refused, if set.
        issuer: with ``serial_number``: the certificate of this issuer and serial is refused.
        serial_number: hex serial number.
        reason: free text.
        revoked_at: when.
    """

    id: int
    endpoint_name: str | None
    fingerprint: str | None
    issuer: str | None
    serial_number: str | None
    reason: str
    revoked_at: datetime


@dataclass(frozen=True, slots=True)
class RevocationSet:
    """An in-memory snapshot of every revocation, for checks on the server's hot path."""

    endpoints: frozenset[str] = frozenset()
    fingerprints: frozenset[str] = frozenset()
    issuer_serials: frozenset[tuple[str, str]] = frozenset()

    def refuses(
        self,
        endpoint_name: str | None,
        fingerprint: str | None = None,
        issuer: str | None = None,
        serial_number: str | None = None,
    ) -> str | None:
        """Return why the endpoint or certificate is refused, or ``None`` if it is not revoked."""
        if endpoint_name is not None and endpoint_name in self.endpoints:
            return f"endpoint {endpoint_name} is revoked"
        if fingerprint is not None and fingerprint in self.fingerprints:
            return f"certificate {fingerprint[:16]}… is revoked"
        if (
            issuer is not None
            and serial_number is not None
            and (issuer, serial_number) in self.issuer_serials
        ):
            return f"certificate serial {serial_number} of {issuer} is revoked"
        return None


class Revocations:
    """Revoked endpoints and certificates of a registry (``registry.revocations``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def _insert(self, fields: Mapping[str, object], what: str) -> Revocation:
        values = {**fields, "revoked_at": datetime.now(UTC)}
        try:
            with self._registry.transaction() as conn:
                new_id = conn.execute(
                    revocations.insert().values(**values).returning(revocations.c.id)
                ).scalar_one()
                bump_revision(conn)
        except IntegrityError as exc:
            raise TrustError(f"{what} is already revoked", code=ALREADY_TRUSTED) from exc
        return next(r for r in self.find() if r.id == new_id)

    def revoke_endpoint(self, endpoint_name: str, reason: str = "") -> Revocation:
        """Refuse every credential of ``endpoint_name``.

        Raises:
            TrustError: already revoked (8004) or an empty name (8001).
        """
        if not endpoint_name:
            raise TrustError("the endpoint name is empty")
        return self._insert({"endpoint_name": endpoint_name, "reason": reason}, f"endpoint {endpoint_name}")

    def revoke_certificate(self, der_or_pem: bytes, reason: str = "") -> Revocation:
        """Refuse one certificate (by its fingerprint, and by issuer and serial).

        Raises:
            TrustError: not a certificate (8001) or already revoked (8004).
        """
        try:
            cert = x509.load_certificate(der_or_pem)
        except CryptoError as exc:
            raise TrustError(f"not an X.509 certificate: {exc}") from exc
        fingerprint = x509.sha256_fingerprint(cert).hex()
        values = {
            "fingerprint": fingerprint,
            "issuer": cert.issuer.rfc4514_string(),
            "serial_number": format(cert.serial_number, "x"),
            "reason": reason,
        }
        return self._insert(values, f"certificate {fingerprint[:16]}…")

    def revoke_fingerprint(self, fingerprint: str, reason: str = "") -> Revocation:
        """Refuse the certificate whose SHA-256 fingerprint is ``fingerprint`` (hex, colons allowed).

        Raises:
            TrustError: not 64 hex digits (8001) or already revoked (8004).
        """
        digits = fingerprint.replace(":", "").lower()
        if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
            raise TrustError(f"{fingerprint!r} is not a SHA-256 fingerprint (64 hex digits)")
        return self._insert({"fingerprint": digits, "reason": reason}, f"certificate {digits[:16]}…")

    def find(self) -> list[Revocation]:
        """Every revocation, oldest first."""
        with self._registry.transaction() as conn:
            rows = conn.execute(select(revocations).order_by(revocations.c.id)).all()
        return [
            Revocation(
                id=row.id,
                endpoint_name=row.endpoint_name,
                fingerprint=row.fingerprint,
                issuer=row.issuer,
                serial_number=row.serial_number,
                reason=row.reason,
                revoked_at=aware(row.revoked_at),
            )
            for row in rows
        ]

    def remove(self, revocation_id: int) -> None:
        """Lift a revocation.

        Raises:
            TrustError: no such revocation (8005).
        """
        with self._registry.transaction() as conn:
            deleted = conn.execute(delete(revocations).where(revocations.c.id == revocation_id)).rowcount
            if deleted:
                bump_revision(conn)
        if not deleted:
            raise TrustError(f"no revocation with id {revocation_id}", code=NOT_FOUND)

    def is_revoked(self, endpoint_name: str) -> bool:
        """Whether ``endpoint_name`` itself is revoked."""
        with self._registry.transaction() as conn:
            return (
                conn.execute(
                    select(revocations.c.id).where(revocations.c.endpoint_name == endpoint_name)
                ).first()
                is not None
            )

    def snapshot(self) -> RevocationSet:
        """All revocations at once, for the server's in-memory checks."""
        return revocation_set(self.find())


def revocation_set(items: Iterable[Revocation]) -> RevocationSet:
    """Build the in-memory set of ``items``."""
    endpoints: set[str] = set()
    fingerprints: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for item in items:
        if item.endpoint_name:
            endpoints.add(item.endpoint_name)
        if item.fingerprint:
            fingerprints.add(item.fingerprint)
        if item.issuer and item.serial_number:
            pairs.add((item.issuer, item.serial_number))
    return RevocationSet(frozenset(endpoints), frozenset(fingerprints), frozenset(pairs))

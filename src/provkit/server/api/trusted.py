"""Trusted certificates as the API shows them: the server's trust store, developer certificates among them.

The CAs whose devices the servers accept live in the registry's trust store
(``registry.trust``, the same store ``provkit server trust-ca`` writes and the servers
read). Device Management lists developer certificates with them (``device_execution_mode``
1) and deletes them with ``DELETE /v3/trusted-certificates/{id}``, and mbl-cli and
``provkit developer`` find a developer certificate by name in that list; developer
certificates live in their own registry table, so every listing joins the two and an id
is looked up in both.

Deleting a developer certificate also revokes it, so a device provisioned with it is
refused at its next connection. The developer CA is in the trust store (for the bootstrap
service) so that the servers accept developer devices; it cannot be deleted through the
API (set it ``INACTIVE`` to stop accepting every developer device).
"""

from __future__ import annotations

from datetime import datetime

from provkit.crypto import x509
from provkit.errors import ApiConflict, ApiForbidden, ApiNotFound, ApiRequestInvalid, CryptoError, TrustError
from provkit.registry import TrustedCertificate
from provkit.registry.apikeys import Role
from provkit.registry.devcerts import DeveloperCertificateRecord
from provkit.registry.trust import ALREADY_TRUSTED, NOT_FOUND
from provkit.server.api.auth import Principal
from provkit.server.api.context import ApiContext
from provkit.server.api.models import (
    TrustedCertificateBody,
    TrustedCertificateRequest,
    TrustedCertificateUpdate,
)


def _etag(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def _same_certificate(pem: str, der: bytes) -> bool:
    try:
        given = x509.load_certificates(pem.encode("utf-8"))
    except CryptoError:
        return False
    return len(given) == 1 and x509.certificate_der(given[0]) == der


def developer_body(record: DeveloperCertificateRecord) -> TrustedCertificateBody:
    """A developer certificate as a trusted certificate."""
    cert = x509.load_certificate(record.certificate)
    return TrustedCertificateBody(
        id=record.id,
        account_id=record.account_id,
        name=record.name,
        description=record.description,
        service="bootstrap",
        status="ACTIVE",
        certificate=x509.certificate_pem([cert]).decode("ascii"),
        issuer=cert.issuer.rfc4514_string(),
        subject=x509.subject_text(cert),
        validity=x509.not_valid_after(cert),
        device_execution_mode=1,
        is_developer_certificate=True,
        created_at=record.created_at,
        updated_at=record.created_at,
        etag=_etag(record.created_at),
    )


def trusted_body(context: ApiContext, item: TrustedCertificate) -> TrustedCertificateBody:
    """A trust store entry (a factory CA, or the developer CA)."""
    return TrustedCertificateBody(
        id=item.id,
        account_id=context.developer.account_id,
        name=item.name,
        description=item.description,
        service=item.service.value,
        status=item.status.value,
        certificate=item.pem,
        issuer=item.issuer,
        subject=item.subject,
        validity=item.not_after,
        device_execution_mode=0,
        is_developer_certificate=False,
        created_at=item.created_at,
        updated_at=item.updated_at,
        etag=_etag(item.updated_at),
    )


def name_taken(context: ApiContext, name: str) -> bool:
    """Whether a trusted or developer certificate is called ``name``."""
    return context.registry.developer_certificates.name_taken(name)


def all_certificates(context: ApiContext) -> list[TrustedCertificateBody]:
    """Every trusted certificate, developer certificates included, in creation order."""
    bodies = [trusted_body(context, item) for item in context.registry.trust.find()]
    bodies += [developer_body(record) for record in context.registry.developer_certificates.list()]
    return sorted(bodies, key=lambda body: (body.created_at, body.id))


def _trust_entry(context: ApiContext, certificate_id: str) -> TrustedCertificate | None:
    try:
        return context.registry.trust.get(certificate_id)
    except TrustError as exc:
        if exc.code == NOT_FOUND:
            return None
        raise


def get_certificate(context: ApiContext, certificate_id: str) -> TrustedCertificateBody:
    """The trusted (or developer) certificate with ``certificate_id``.

    Raises:
        ApiNotFound: neither.
    """
    entry = _trust_entry(context, certificate_id)
    if entry is not None:
        return trusted_body(context, entry)
    record = context.registry.developer_certificates.find(certificate_id)
    if record is None:
        raise ApiNotFound(f"no trusted certificate with id {certificate_id}")
    return developer_body(record)


def add_certificate(context: ApiContext, request: TrustedCertificateRequest) -> TrustedCertificateBody:
    """Trust a CA certificate (a factory CA) for its service.

    Raises:
        ApiRequestInvalid: not one CA certificate Mbed TLS can use, or enrollment mode asked.
        ApiConflict: the name is taken, or the certificate is trusted for that service already.
    """
    if request.enrollment_mode:
        raise ApiRequestInvalid(
            "enrollment_mode certificates are not supported: enroll devices with /v3/device-enrollments",
            fields=(("enrollment_mode", "must be false"),),
        )
    name = request.name.strip()
    if name_taken(context, name):
        raise ApiConflict(f"a certificate named {name!r} already exists")
    try:
        entry = context.registry.trust.add(
            request.certificate.encode("utf-8"),
            service=request.service,
            name=name,
            description=request.description,
            status=request.status,
        )
    except TrustError as exc:
        if exc.code == ALREADY_TRUSTED:
            raise ApiConflict(exc.message) from exc
        raise ApiRequestInvalid(exc.message, fields=(("certificate", exc.message),)) from exc
    return trusted_body(context, entry)


def update_certificate(
    context: ApiContext, certificate_id: str, change: TrustedCertificateUpdate
) -> TrustedCertificateBody:
    """Change a trusted certificate's name, description or status.

    Raises:
        ApiNotFound: no such certificate.
        ApiRequestInvalid: a developer certificate (it cannot change), or a new certificate
            or service (upload it as a new trusted certificate instead).
    """
    entry = _trust_entry(context, certificate_id)
    if entry is None:
        if context.registry.developer_certificates.find(certificate_id) is not None:
            raise ApiRequestInvalid("a developer certificate cannot be changed; delete it and create another")
        raise ApiNotFound(f"no trusted certificate with id {certificate_id}")
    if (change.service is not None and change.service != entry.service.value) or (
        change.certificate is not None and not _same_certificate(change.certificate, entry.certificate)
    ):
        raise ApiRequestInvalid(
            "the certificate and the service of a trusted certificate do not change; upload a new one",
            fields=(("certificate", "cannot change"), ("service", "cannot change")),
        )
    if (
        change.name is not None
        and change.name.strip() != entry.name
        and name_taken(context, change.name.strip())
    ):
        raise ApiConflict(f"a certificate named {change.name.strip()!r} already exists")
    updated = context.registry.trust.update(
        certificate_id,
        name=change.name.strip() if change.name is not None else None,
        description=change.description,
        status=change.status,
    )
    return trusted_body(context, updated)


def delete_certificate(context: ApiContext, certificate_id: str, principal: Principal) -> None:
    """Delete a developer certificate (any key), or stop trusting a CA (administrators).

    Raises:
        ApiNotFound: neither exists.
        ApiForbidden: a CA, with a developers key.
        ApiConflict: the developer CA.
    """
    entry = _trust_entry(context, certificate_id)
    if entry is None:
        delete_developer_certificate(context, certificate_id)
        return
    if not principal.allows(Role.ADMINISTRATORS):
        raise ApiForbidden("stopping to trust a CA needs an API key of the administrators group")
    if entry.fingerprint == x509.der_fingerprint(context.developer.ca.certificate).hex():
        raise ApiConflict(
            "the developer CA signs this server's developer certificates and cannot be deleted; "
            "set its status to INACTIVE to refuse every developer device"
        )
    context.registry.trust.delete(certificate_id)


def delete_developer_certificate(context: ApiContext, certificate_id: str) -> None:
    """Delete a developer certificate and revoke it: its devices are refused from now on.

    Raises:
        ApiNotFound: no developer certificate has that id.
    """
    record = context.registry.developer_certificates.get(certificate_id)
    try:
        context.registry.revocations.revoke_certificate(
            record.certificate, reason=f"developer certificate {record.name!r} ({record.id}) deleted"
        )
    except TrustError as exc:
        if exc.code != ALREADY_TRUSTED:  # revoked before: the deletion proceeds
            raise
    context.registry.developer_certificates.delete(certificate_id)

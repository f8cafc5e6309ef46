"""Trusted certificates as the API shows them: developer certificates among them.

Device Management lists developer certificates with the trusted certificates
(``device_execution_mode`` 1) and deletes them with ``DELETE
/v3/trusted-certificates/{id}``; mbl-cli and ``provkit developer`` find a developer
certificate by name in that list. The developer certificates live in their own registry
table, so this module joins them with the other trusted certificates for every listing
and looks an id up in both.
"""

from __future__ import annotations

from provkit.crypto import x509
from provkit.registry.devcerts import DeveloperCertificateRecord
from provkit.server.api.context import ApiContext
from provkit.server.api.models import TrustedCertificateBody


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
        etag=str(int(record.created_at.timestamp())),
    )


def name_taken(context: ApiContext, name: str) -> bool:
    """Whether a trusted or developer certificate is called ``name``."""
    return context.registry.developer_certificates.name_taken(name)


def all_certificates(context: ApiContext) -> list[TrustedCertificateBody]:
    """Every trusted certificate, developer certificates included, in creation order."""
    bodies = [developer_body(record) for record in context.registry.developer_certificates.list()]
    return sorted(bodies, key=lambda body: (body.created_at, body.id))


def get_certificate(context: ApiContext, certificate_id: str) -> TrustedCertificateBody:
    """The trusted (or developer) certificate with ``certificate_id``.

    Raises:
        ApiNotFound: neither.
    """
    return developer_body(context.registry.developer_certificates.get(certificate_id))


def delete_developer_certificate(context: ApiContext, certificate_id: str) -> None:
    """Delete a developer certificate.

    Raises:
        ApiNotFound: no developer certificate has that id.
    """
    context.registry.developer_certificates.delete(certificate_id)

"""``/v3/developer-certificates``: developer certificates for development devices.

``POST`` issues a device key and certificate under the server's developer CA and answers
with ``security_file_content``, the ``mbed_cloud_dev_credentials.c`` that ``provkit
developer`` (and mbl-cli) provision a device with. ``GET {id}`` answers the same again.
A developer certificate is also a trusted certificate (``device_execution_mode`` 1), so
it is listed and deleted under ``/v3/trusted-certificates`` as well, as Device
Management clients expect. Any valid key may use these routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from provkit.errors import ApiConflict
from provkit.server.api import trusted
from provkit.server.api.auth import AnyKey
from provkit.server.api.context import Context
from provkit.server.api.developer import IssuedCertificate
from provkit.server.api.models import DeveloperCertificateBody, DeveloperCertificateRequest, ListBody
from provkit.server.api.paging import Paging, list_body, paging

router = APIRouter(tags=["developer certificates"])


def _body(issued: IssuedCertificate) -> DeveloperCertificateBody:
    record = issued.record
    return DeveloperCertificateBody(
        id=record.id,
        account_id=record.account_id,
        name=record.name,
        description=record.description,
        created_at=record.created_at,
        developer_certificate=issued.certificate_pem,
        developer_private_key=issued.private_key_pem,
        security_file_content=issued.security_file_content,
        endpoint_name=record.endpoint_name,
        etag=str(int(record.created_at.timestamp())),
    )


@router.post("/v3/developer-certificates", status_code=201, response_model=DeveloperCertificateBody)
def create_developer_certificate(
    request: DeveloperCertificateRequest, context: Context, principal: AnyKey
) -> DeveloperCertificateBody:
    """Issue a developer certificate; 409 if the name is taken by any trusted certificate."""
    name = request.name.strip()
    if trusted.name_taken(context, name):
        raise ApiConflict(f"a certificate named {name!r} already exists")
    return _body(context.developer.create(name, request.description))


@router.get("/v3/developer-certificates", response_model=ListBody[DeveloperCertificateBody])
def list_developer_certificates(
    context: Context, principal: AnyKey, page: Annotated[Paging, Depends(paging)]
) -> ListBody[DeveloperCertificateBody]:
    """The developer certificates, oldest first, with their credentials files."""
    found = context.registry.developer_certificates.page(
        limit=page.limit, after=page.after, order=page.order, count=page.total_count
    )
    return list_body([_body(context.developer.opened(record)) for record in found.rows], found, page)


@router.get("/v3/developer-certificates/{certificate_id}", response_model=DeveloperCertificateBody)
def get_developer_certificate(
    certificate_id: str, context: Context, principal: AnyKey
) -> DeveloperCertificateBody:
    """A developer certificate with its key and credentials file; 404 for any other id."""
    return _body(context.developer.opened(context.registry.developer_certificates.get(certificate_id)))


@router.delete("/v3/developer-certificates/{certificate_id}", status_code=204, response_class=Response)
def delete_developer_certificate(certificate_id: str, context: Context, principal: AnyKey) -> Response:
    """Delete a developer certificate: devices provisioned with it are refused from now on."""
    trusted.delete_developer_certificate(context, certificate_id)
    return Response(status_code=204)

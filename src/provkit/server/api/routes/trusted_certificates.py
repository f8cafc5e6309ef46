"""``/v3/trusted-certificates``: the CAs whose devices the servers accept, and developer certificates.

Any key may read; uploading, changing and deleting a CA needs an administrators key (a
developer certificate may be deleted with any key, as it was made with one).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from provkit.errors import ApiRequestInvalid
from provkit.server.api import trusted
from provkit.server.api.auth import AdminKey, AnyKey
from provkit.server.api.context import Context
from provkit.server.api.models import (
    ListBody,
    TrustedCertificateBody,
    TrustedCertificateRequest,
    TrustedCertificateUpdate,
)
from provkit.server.api.paging import Paging, paging

router = APIRouter(tags=["trusted certificates"])


@router.get("/v3/trusted-certificates", response_model=ListBody[TrustedCertificateBody])
def list_trusted_certificates(
    context: Context,
    principal: AnyKey,
    page: Annotated[Paging, Depends(paging)],
    name__eq: str | None = None,
    service__eq: str | None = None,
    device_execution_mode__eq: int | None = None,
) -> ListBody[TrustedCertificateBody]:
    """Trusted certificates in creation order, with the Device Management filters."""
    items = trusted.all_certificates(context)
    if service__eq is not None:
        if service__eq not in ("bootstrap", "lwm2m"):
            raise ApiRequestInvalid(
                "service__eq is bootstrap or lwm2m", fields=(("service__eq", "unknown service"),)
            )
        items = [item for item in items if item.service == service__eq]
    if name__eq is not None:
        items = [item for item in items if item.name == name__eq]
    if device_execution_mode__eq is not None:
        items = [item for item in items if item.device_execution_mode == device_execution_mode__eq]
    total = len(items)
    if page.order == "DESC":
        items.reverse()
    if page.after is not None:
        ids = [item.id for item in items]
        if page.after not in ids:
            raise ApiRequestInvalid(
                f"after: no trusted certificate {page.after}", fields=(("after", "unknown id"),)
            )
        items = items[ids.index(page.after) + 1 :]
    return ListBody[TrustedCertificateBody](
        data=items[: page.limit],
        has_more=len(items) > page.limit,
        limit=page.limit,
        after=page.after,
        order=page.order,
        total_count=total if page.total_count else None,
    )


@router.get("/v3/trusted-certificates/{certificate_id}", response_model=TrustedCertificateBody)
def get_trusted_certificate(
    certificate_id: str, context: Context, principal: AnyKey
) -> TrustedCertificateBody:
    """One trusted or developer certificate."""
    return trusted.get_certificate(context, certificate_id)


@router.post("/v3/trusted-certificates", status_code=201, response_model=TrustedCertificateBody)
def upload_trusted_certificate(
    request: TrustedCertificateRequest, context: Context, principal: AdminKey
) -> TrustedCertificateBody:
    """Trust a CA (the factory CA of ``provkit setup``): its devices are accepted for the service."""
    return trusted.add_certificate(context, request)


@router.put("/v3/trusted-certificates/{certificate_id}", response_model=TrustedCertificateBody)
def update_trusted_certificate(
    certificate_id: str, change: TrustedCertificateUpdate, context: Context, principal: AdminKey
) -> TrustedCertificateBody:
    """Rename, describe, or set ACTIVE / INACTIVE (an inactive CA's devices are refused)."""
    return trusted.update_certificate(context, certificate_id, change)


@router.delete("/v3/trusted-certificates/{certificate_id}", status_code=204, response_class=Response)
def delete_trusted_certificate(certificate_id: str, context: Context, principal: AnyKey) -> Response:
    """Stop trusting a CA, or delete a developer certificate (its devices are refused from now on)."""
    trusted.delete_certificate(context, certificate_id, principal)
    return Response(status_code=204)

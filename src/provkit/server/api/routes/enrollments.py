"""``/v3/device-enrollments``: first-to-claim enrollment ids.

An administrators key enrolls a device by its enrollment identity (``A-`` and the SHA-256
fingerprint of its bootstrap certificate, as ``provkit inject`` prints it); the bootstrap
server then accepts that device once, even though no trusted CA signed its certificate,
and records the claim. Any key may read enrollments.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from provkit.registry.enrollments import Enrollment
from provkit.server.api.auth import AdminKey, AnyKey
from provkit.server.api.context import Context
from provkit.server.api.models import EnrollmentBody, EnrollmentRequest, ListBody
from provkit.server.api.paging import Paging, list_body, paging

router = APIRouter(tags=["enrollments"])


def _body(item: Enrollment) -> EnrollmentBody:
    return EnrollmentBody(
        id=item.id,
        account_id=item.account_id,
        enrollment_identity=item.enrollment_identity,
        created_at=item.created_at,
        expires_at=item.expires_at,
        claimed_at=item.claimed_at,
        enrolled_device_id=item.enrolled_device_id,
        etag=str(int((item.claimed_at or item.created_at).timestamp())),
    )


@router.post("/v3/device-enrollments", status_code=201, response_model=EnrollmentBody)
def create_enrollment(request: EnrollmentRequest, context: Context, principal: AdminKey) -> EnrollmentBody:
    """Enroll a device; 409 if its identity is enrolled already."""
    return _body(context.registry.enrollments.add(request.enrollment_identity))


@router.get("/v3/device-enrollments", response_model=ListBody[EnrollmentBody])
def list_enrollments(
    context: Context, principal: AnyKey, page: Annotated[Paging, Depends(paging)]
) -> ListBody[EnrollmentBody]:
    """Enrollments, oldest first."""
    found = context.registry.enrollments.page(
        limit=page.limit, after=page.after, order=page.order, count=page.total_count
    )
    return list_body([_body(item) for item in found.rows], found, page)


@router.get("/v3/device-enrollments/{enrollment_id}", response_model=EnrollmentBody)
def get_enrollment(enrollment_id: str, context: Context, principal: AnyKey) -> EnrollmentBody:
    """One enrollment."""
    return _body(context.registry.enrollments.get(enrollment_id))


@router.delete("/v3/device-enrollments/{enrollment_id}", status_code=204, response_class=Response)
def delete_enrollment(enrollment_id: str, context: Context, principal: AdminKey) -> Response:
    """Withdraw an enrollment (a claimed device stays as it is)."""
    context.registry.enrollments.delete(enrollment_id)
    return Response(status_code=204)

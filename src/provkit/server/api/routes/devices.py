"""``/v3/devices``: every device that connected to the servers, with its state and timestamps.

The directory is read from the connection records the bootstrap and LwM2M servers write.
Filters: ``state__eq``, ``endpoint_name__eq``, ``id__eq``, and the
``filter`` parameter of older SDKs (``filter=state%3Dregistered``, the same keys). Any
valid key may read.
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Final, cast

from fastapi import APIRouter, Depends

from provkit.errors import ApiRequestInvalid
from provkit.registry.devices import STATES, Device, DeviceState
from provkit.server.api.auth import AnyKey
from provkit.server.api.context import ApiContext, Context
from provkit.server.api.models import DeviceBody, ListBody
from provkit.server.api.paging import Paging, list_body, paging

router = APIRouter(tags=["devices"])

_FILTERS: Final = ("state__eq", "endpoint_name__eq", "id__eq")


def _body(context: ApiContext, device: Device) -> DeviceBody:
    return DeviceBody(
        id=device.endpoint_name,
        account_id=context.developer.account_id,
        endpoint_name=device.endpoint_name,
        name=device.endpoint_name,
        state=device.state,
        device_execution_mode=1 if device.developer else 0,
        serial_number=device.serial_number or "",
        created_at=device.first_seen,
        updated_at=device.last_seen,
        bootstrapped_timestamp=device.bootstrapped_at,
        last_address=device.address,
        security_mode=device.mode,
        last_failure=device.last_failure,
        etag=device.last_seen,
    )


def _filters(filter_text: str | None, given: dict[str, str | None]) -> dict[str, str]:
    """The ``key__eq`` filters of the query and of a legacy ``filter`` parameter.

    Raises:
        ApiRequestInvalid: an unknown key or state.
    """
    chosen = {key: value for key, value in given.items() if value is not None}
    for key, value in urllib.parse.parse_qsl(filter_text or "", keep_blank_values=True):
        name = key if "__" in key else f"{key}__eq"
        if name not in _FILTERS:
            raise ApiRequestInvalid(
                f"filter on {key!r} is not supported; use state, endpoint_name or id",
                fields=(("filter", f"unknown key {key}"),),
            )
        chosen[name] = value
    state = chosen.get("state__eq")
    if state is not None and state not in STATES:
        raise ApiRequestInvalid(
            f"state is one of {', '.join(STATES)}, not {state!r}", fields=(("state__eq", "unknown state"),)
        )
    return chosen


@router.get("/v3/devices", response_model=ListBody[DeviceBody])
def list_devices(
    context: Context,
    principal: AnyKey,
    page: Annotated[Paging, Depends(paging)],
    state__eq: str | None = None,
    endpoint_name__eq: str | None = None,
    id__eq: str | None = None,
    filter: str | None = None,
) -> ListBody[DeviceBody]:
    """Devices by endpoint name, with Device Management's paging and filters."""
    chosen = _filters(
        filter, {"state__eq": state__eq, "endpoint_name__eq": endpoint_name__eq, "id__eq": id__eq}
    )
    named = chosen.get("endpoint_name__eq") or chosen.get("id__eq")
    state = cast(DeviceState | None, chosen.get("state__eq"))  # checked by _filters
    found = context.registry.devices.page(
        limit=page.limit,
        after=page.after,
        order=page.order,
        count=page.total_count,
        state=state,
        endpoint_name=named,
    )
    return list_body([_body(context, device) for device in found.rows], found, page)


@router.get("/v3/devices/{device_id:path}", response_model=DeviceBody)
def get_device(device_id: str, context: Context, principal: AnyKey) -> DeviceBody:
    """One device by id (its endpoint name)."""
    return _body(context, context.registry.devices.get(device_id))

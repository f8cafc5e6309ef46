"""The query parameters of a listing: ``limit``, ``after``, ``order``, ``include``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Query

from provkit.errors import ApiRequestInvalid
from provkit.registry.paging import Order, Page
from provkit.server.api.models import ItemT, ListBody

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class Paging:
    """One listing request.

    Attributes:
        limit: items per page (2-1000, as Device Management allows).
        after: the id (or key) of the item before the page.
        order: ``ASC`` or ``DESC``.
        total_count: whether to count every item (``include=total_count``).
    """

    limit: int
    after: str | None
    order: Order
    total_count: bool


def paging(
    limit: Annotated[int, Query(ge=2, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    after: Annotated[
        str | None, Query(max_length=256, description="The id of the item before the page.")
    ] = None,
    order: Annotated[str, Query(description="ASC or DESC.")] = "ASC",
    include: Annotated[str | None, Query(description="total_count to count every item.")] = None,
) -> Paging:
    """FastAPI dependency: the listing parameters, checked.

    Raises:
        ApiRequestInvalid: an order other than ASC/DESC, or an unknown include.
    """
    upper = order.upper()
    if upper not in ("ASC", "DESC"):
        raise ApiRequestInvalid("order must be ASC or DESC", fields=(("order", "must be ASC or DESC"),))
    wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
    if wanted - {"total_count"}:
        raise ApiRequestInvalid(
            f"include takes total_count, not {', '.join(sorted(wanted - {'total_count'}))}",
            fields=(("include", "unknown value"),),
        )
    return Paging(limit, after or None, "ASC" if upper == "ASC" else "DESC", "total_count" in wanted)


def list_body(items: Sequence[ItemT], found: Page, request: Paging) -> ListBody[ItemT]:
    """The listing answer for one page: its items and cursor fields."""
    return ListBody[ItemT](
        data=list(items),
        has_more=found.has_more,
        limit=request.limit,
        after=request.after,
        order=request.order,
        total_count=found.total_count,
    )

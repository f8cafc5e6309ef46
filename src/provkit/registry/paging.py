"""Cursor pages over a table, as Device Management lists are paged.

A page is ``limit`` rows after the row whose key is ``after`` (exclusive), in ``ASC`` or
``DESC`` key order, plus whether more follow. One query reads ``limit + 1`` rows on the
key's index, so a page costs the same on the first page and on the thousandth; the total
is counted only when asked for (``include=total_count``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, func, select
from sqlalchemy.sql import Select

Order = Literal["ASC", "DESC"]


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one page.

    Attributes:
        rows: the rows, in the page's order.
        has_more: more rows follow the last one.
        total_count: every row matching the filter, when counted.
    """

    rows: Sequence[Any]
    has_more: bool
    total_count: int | None


def read_page(
    conn: Connection,
    query: Select[Any],
    key: ColumnElement[Any],
    *,
    limit: int,
    after: str | None = None,
    order: Order = "ASC",
    count: bool = False,
    record: Callable[[Any], Any] = lambda row: row,
) -> Page:
    """Read one page of ``query`` (already filtered) ordered by ``key``.

    Args:
        conn: the transaction's connection.
        query: the filtered selection.
        key: the unique column the cursor and the order use.
        limit: rows per page (at least 1).
        after: the key of the row before the page.
        order: ``ASC`` or ``DESC``.
        count: also count every matching row.
        record: turns a row into what the page holds.
    """
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one() if count else None
    paged = query
    if after is not None:
        paged = paged.where(key > after if order == "ASC" else key < after)
    paged = paged.order_by(key.asc() if order == "ASC" else key.desc()).limit(limit + 1)
    rows = conn.execute(paged).all()
    return Page([record(row) for row in rows[:limit]], len(rows) > limit, total)

"""How the database reads each table for a statement: EXPLAIN on SQLite and PostgreSQL.

``accesses`` turns a plan into one :class:`Access` per table read: ``search`` (an index
or primary-key look-up, O(log n)), ``index-scan`` (a walk along a whole index) or
``table-scan`` (every row), and ``sort`` steps. On PostgreSQL the plan is taken with
sequential scans priced out (see ``_PG_PRICED_OUT``). ``Recorder`` collects the statements an engine runs, to
check every one a workload issued.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, event

CATALOG = re.compile(r"^(alembic_version|sqlite_\w+|pg_\w+|information_schema\b)")
"""Tables that are the database's or Alembic's own, not the registry's."""

_SQLITE = re.compile(
    r"^(SEARCH|SCAN) (\S+)(?: AS \S+)?( USING (?:COVERING |PRIMARY KEY |INTEGER PRIMARY KEY)?)?"
)


_PG_PRICED_OUT = ("enable_seqscan",)
"""PostgreSQL plans are taken with sequential scans priced out: a test's tables are small,
and a planner facing few rows rightly reads them whole. A sequential scan left in the
plan means no index can serve the statement at all."""


@dataclass(frozen=True, slots=True)
class Access:
    """One table read by a plan."""

    table: str
    how: str
    """``search``, ``index-scan``, ``table-scan``; or, with no table, ``sort`` (rows sorted after
    reading) or ``partial-sort`` (read in the order of a leading key, only ties sorted)."""
    detail: str


def _sqlite_accesses(conn: Connection, statement: str, params: Any, *, unsorted: bool) -> list[Access]:
    del unsorted  # SQLite plans as for a big table already (no statistics are gathered)
    found = []
    for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params):
        detail = str(row[3])
        if detail.startswith("USE TEMP B-TREE"):
            found.append(Access("", "partial-sort" if "RIGHT PART" in detail else "sort", detail))
            continue
        match = _SQLITE.match(detail)
        if match is None or match.group(2) == "CONSTANT" or match.group(2).startswith("("):
            continue
        walk = "index-scan" if match.group(3) else "table-scan"
        how = "search" if match.group(1) == "SEARCH" else walk
        found.append(Access(match.group(2), how, detail))
    return found


def _pg_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _pg_nodes(child)


def _pg_accesses(conn: Connection, statement: str, params: Any, *, unsorted: bool) -> list[Access]:
    for setting in _PG_PRICED_OUT + (("enable_sort",) if unsorted else ()):
        conn.exec_driver_sql(f"SET LOCAL {setting} = off")
    (raw,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params).one()
    plan = raw if isinstance(raw, list) else json.loads(raw)
    found = []
    for node in _pg_nodes(plan[0]["Plan"]):
        kind = node["Node Type"]
        if kind in ("Sort", "Incremental Sort"):
            how = "partial-sort" if kind == "Incremental Sort" else "sort"
            found.append(Access("", how, json.dumps(node.get("Sort Key"))))
            continue
        if kind == "Seq Scan":
            how = "table-scan"
        elif kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
            how = "search" if "Index Cond" in node else "index-scan"
        else:
            continue
        table = node.get("Relation Name") or node.get("Index Name", "")
        found.append(Access(table, how, json.dumps({k: v for k, v in node.items() if k != "Plans"})))
    return found


def accesses(conn: Connection, statement: str, params: Any = None, *, unsorted: bool = False) -> list[Access]:
    """The registry tables the driver-level ``statement`` reads, and how (catalog tables left out).

    ``unsorted``: on PostgreSQL, price sorting out too — the plan then shows whether the
    rows can be read in the statement's order from an index (as a planner does when a
    page of 100 is asked of a million); a sort left in it means they cannot.
    """
    read = _pg_accesses if conn.dialect.name == "postgresql" else _sqlite_accesses
    with conn.begin():
        found = read(conn, statement, params, unsorted=unsorted)
    return [a for a in found if not CATALOG.match(a.table)]


def plans_of(engine: Engine, run: Callable[[], object], *, unsorted: bool = False) -> dict[str, list[Access]]:
    """Run ``run`` and EXPLAIN every statement it read tables with: statement -> accesses."""
    with Recorder(engine) as recorder:
        run()
    with engine.connect() as conn:
        return {
            statement: accesses(conn, statement, params, unsorted=unsorted)
            for statement, params in recorder.reads().items()
        }


@dataclass
class Recorder:
    """Records each distinct statement an engine runs (with the parameters of its first run)."""

    engine: Engine
    statements: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> Recorder:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
    ) -> None:
        if executemany and isinstance(parameters, list) and parameters:  # (insertmanyvalues: one dict)
            parameters = parameters[0]
        self.statements.setdefault(statement, parameters)

    def reads(self) -> dict[str, Any]:
        """The recorded statements that read tables (queries, updates, deletes, INSERT … SELECT)."""
        kept = {}
        for statement, params in self.statements.items():
            head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            if head in ("SELECT", "UPDATE", "DELETE", "WITH") or (
                head == "INSERT" and re.search(r"\bSELECT\b", statement, re.IGNORECASE)
            ):
                kept[statement] = params
        return kept

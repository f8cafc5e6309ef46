"""The registry commands' queries are answered from indexes, on SQLite and PostgreSQL (EXPLAIN).

A registry of millions answers ``show`` in milliseconds only if every table is reached
by an index look-up; a page of ``list`` only if the page is read in index order (no
sort of the whole filtered set); ``stats`` only if it reads one index and not the rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from provkit.registry import AttemptState, NewAttempt, Registry
from support import bulk, pg
from support.plans import Access, plans_of


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration])],
)
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry of 5,000 bulk attempts (with statistics), a provisioned device, a failed one."""
    if request.param == "sqlite":
        with _filled(str(tmp_path_factory.mktemp("plans") / "r.sqlite")) as opened:
            yield opened
    else:
        with pg.fresh_schema() as url, _filled(url) as opened:
            yield opened


_ENROLLMENT: dict[str, str] = {}
"""The id of the unclaimed enrollment of each filled registry (by its engine)."""


@contextmanager
def _filled(url: str) -> Iterator[Registry]:
    with Registry.open(url, station_id="s") as opened:
        bulk.fill(opened.engine, 5000)
        opened.create_batch("b1")
        first, second = opened.record_attempts(
            "b1", [NewAttempt("ep-1", "sn-1", slot="1"), NewAttempt("ep-2", "sn-2", slot="2")]
        )
        opened.mark_sending(first)
        opened.mark_verified(first, device_cert_sha256="ab" * 32)
        opened.mark_failed(second, 1012, "no answer")
        _ENROLLMENT[id(opened.engine)] = opened.enrollments.add("A-" + ":".join(["CD"] * 32)).id  # unclaimed
        yield opened


def _only_plan(
    registry: Registry, query: Callable[[Registry], object], *, unsorted: bool = False
) -> list[Access]:
    plans = plans_of(registry.engine, lambda: query(registry), unsorted=unsorted)
    assert len(plans) == 1, list(plans)
    return next(iter(plans.values()))


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda r: r.lookup("ep-1"), id="show-endpoint"),
        pytest.param(lambda r: r.lookup("ab" * 32), id="show-fingerprint"),
        pytest.param(lambda r: r.lookup("A-" + ":".join(["AB"] * 32)), id="show-enrollment-id"),
        pytest.param(lambda r: r.lookup("2"), id="show-id"),
        pytest.param(lambda r: r.get_attempt(1), id="get-attempt"),
        pytest.param(lambda r: r.find(endpoint_name="ep-1"), id="endpoint-attempts"),
        pytest.param(lambda r: r.batch_attempts("b1"), id="batch-journal"),
    ],
)
def test_lookups_search_indexes(registry: Registry, query: Callable[[Registry], object]) -> None:
    """show by endpoint, serial, fingerprint or id reaches every table by an index look-up."""
    plan = _only_plan(registry, query)
    assert plan and all(a.how in ("search", "sort") for a in plan), plan


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda r: r.find(after=1, limit=100), id="after"),
        pytest.param(lambda r: r.find(before=2, newest=True, limit=100), id="before-newest"),
        pytest.param(lambda r: r.find(state=AttemptState.FAILED, limit=100), id="state"),
        pytest.param(lambda r: r.find(state=AttemptState.FAILED, after=1, limit=100), id="state-after"),
        pytest.param(
            lambda r: r.find(state=AttemptState.FAILED, newest=True, before=9, limit=100), id="state-newest"
        ),
        pytest.param(lambda r: r.find(batch_id="b1", limit=100), id="batch"),
        pytest.param(lambda r: r.find(batch_id="b1", after=1, limit=100), id="batch-after"),
        pytest.param(lambda r: r.find(provisioned_only=True, after=0, limit=100), id="provisioned-after"),
    ],
)
def test_list_pages_are_index_ranges_in_order(
    registry: Registry, query: Callable[[Registry], object]
) -> None:
    """A page with a filter or a cursor is an index range, which can be read in id order.

    Every table is reached by an index condition; and with sorting priced out the page
    still is, with nothing sorted: the page of 100 needs no sort of the filtered set.
    """
    plan = _only_plan(registry, query)
    assert plan and all(a.how in ("search", "sort") for a in plan), plan
    in_order = _only_plan(registry, query, unsorted=True)
    assert in_order and all(a.how == "search" for a in in_order), in_order


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda r: r.find(limit=100), id="first"),
        pytest.param(lambda r: r.find(newest=True, limit=100), id="newest"),
        pytest.param(lambda r: r.find(provisioned_only=True, limit=100), id="provisioned"),
    ],
)
def test_first_pages_walk_an_index_and_stop(registry: Registry, query: Callable[[Registry], object]) -> None:
    """The first page walks the primary key (or provisioned's attempt ids) in order and stops
    at the limit: nothing is sorted, no table read row by row."""
    plan = _only_plan(registry, query)
    assert plan and all(a.how in ("search", "index-scan") or _rowid_walk(registry, a) for a in plan), plan


def test_stats_read_the_counts_not_the_attempts(registry: Registry) -> None:
    """stats reads the kept counts (a row per station and state) and never the attempts."""
    plans = plans_of(registry.engine, registry.stats)
    read = {a.table for plan in plans.values() for a in plan if a.how != "sort"}
    assert "attempt_counts" in read and "attempts" not in read, plans


def test_export_walks_provisioned_in_order(registry: Registry) -> None:
    """export walks provisioned's attempt-id index, with each attempt by its key: no sort."""
    plan = _only_plan(registry, lambda r: r.export(io.StringIO()))
    assert plan and all(a.how in ("search", "index-scan") for a in plan), plan
    assert any(a.how == "index-scan" and a.table == "provisioned" for a in plan), plan


def _rowid_walk(registry: Registry, access: Access) -> bool:
    """SQLite's ``SCAN attempts`` in a rowid-ordered query is the primary key's walk."""
    return registry.engine.dialect.name == "sqlite" and access.detail == f"SCAN {access.table}"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda r: r.connections.get("ep-1"), id="connection-of-endpoint"),
        pytest.param(lambda r: r.connections.by_location("abc"), id="connection-by-location"),
        pytest.param(lambda r: r.psk.sealed("identity-1"), id="psk-by-identity"),
        pytest.param(lambda r: r.revocations.is_revoked("ep-1"), id="revoked-endpoint"),
        pytest.param(
            # reading an unclaimed enrollment looks its device up by certificate fingerprint
            lambda r: r.enrollments.get(_ENROLLMENT[id(r.engine)]),
            id="enrollment-claim",
        ),
        pytest.param(
            lambda r: r.developer_certificates.by_fingerprints(["ab" * 32]), id="developer-certificate"
        ),
    ],
)
def test_per_device_lookups_of_the_server_tables_search_indexes(
    registry: Registry, query: Callable[[Registry], object]
) -> None:
    """What the server and the API look up per connecting device reaches its row by an index."""
    plans = plans_of(registry.engine, lambda: query(registry))
    assert plans, "no statement ran"
    for statement, plan in plans.items():
        assert plan and all(a.how in ("search", "sort") for a in plan), (statement, plan)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda r: r.connections.find(limit=100), id="connections-latest"),
        pytest.param(
            lambda r: r.enrollments.page(limit=100, after=None, order="ASC", count=False), id="enrollments"
        ),
        pytest.param(
            lambda r: r.developer_certificates.page(limit=100, after="x", order="DESC", count=False),
            id="developer-certificates",
        ),
    ],
)
def test_server_table_pages_walk_an_index(registry: Registry, query: Callable[[Registry], object]) -> None:
    """The API's and the server's lists read a page along an index (ties of its leading key
    sorted at most): no scan, no sort of the whole table."""
    for statement, plan in plans_of(registry.engine, lambda: query(registry), unsorted=True).items():
        assert plan and all(a.how in ("search", "index-scan", "partial-sort") for a in plan), (
            statement,
            plan,
        )


def test_api_key_check_searches_its_index(registry: Registry) -> None:
    """Every API request's key is found by its id."""
    _, token = registry.api_keys.create("plans")
    plans = plans_of(registry.engine, lambda: registry.api_keys.authenticate(token))
    assert plans and all(all(a.how == "search" for a in plan) for plan in plans.values()), plans


_CHUNK = [str(slot) for slot in range(2, 502)]
"""As many slots as one statement of a batch's chunk names (half a bulk batch)."""


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda r: r.batch_attempts("bulk-1", _CHUNK), id="chunk-attempts"),
        pytest.param(
            lambda r: r.batch_state_count("bulk-1", AttemptState.VERIFIED, _CHUNK), id="chunk-count"
        ),
    ],
)
def test_a_chunk_of_a_batch_is_probed_slot_by_slot(
    registry: Registry, query: Callable[[Registry], object]
) -> None:
    """A batch reads its rows a chunk of slots at a time, by index.

    On SQLite each slot is a probe on batch + slot: an ``ORDER BY id`` or a state condition
    made its planner walk the batch's id or state index instead, reading the whole batch
    for every chunk (a cost that grows with the batch). PostgreSQL weighs the batch's size
    from its statistics (for half of this batch of 1,000 it may read the batch by its batch
    index); there every access must be an index search.
    """
    plan = _only_plan(registry, query)
    read = [a for a in plan if a.how != "sort"]
    assert read and all(a.how == "search" for a in read), plan
    if registry.engine.dialect.name == "sqlite":
        assert all("ix_attempts_batch_slot" in a.detail for a in read), plan

"""Fixtures: the Device Management API served by uvicorn on a SQLite file, then on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import pg
from support.dmapi import RunningApi, running_api


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres])],
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """The API on a real registry: a SQLite file, then a PostgreSQL schema.

    One server per test module and database, to keep the suite fast: tests that change
    state use names and keys of their own (:func:`support.dmapi.new_key`).
    """
    if request.param == "sqlite":
        with running_api(str(tmp_path_factory.mktemp("api") / "registry.sqlite")) as served:
            yield served
    else:
        with pg.fresh_schema() as url, running_api(url) as served:
            yield served


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """The API on a SQLite file only (for tests whose database does not matter)."""
    with running_api(str(tmp_path_factory.mktemp("api") / "registry.sqlite")) as served:
        yield served

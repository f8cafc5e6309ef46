"""Registry fixtures: a registry URL on a real SQLite file and on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import pg


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL confined to a fresh schema."""
    with pg.fresh_schema() as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration])]
)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A registry location: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "registry.sqlite")
    else:
        with pg.fresh_schema() as url:
            yield url

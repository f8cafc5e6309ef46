"""Registry fixtures: a registry URL on a real SQLite file and on real PostgreSQL."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def load_pg() -> ModuleType:
    """Import the shared PostgreSQL helper by path (tests are not a package)."""
    spec = importlib.util.spec_from_file_location("provkit_tests_pg", Path(__file__).with_name("pg.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pg = load_pg()


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

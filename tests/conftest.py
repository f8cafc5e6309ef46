"""Suite-wide test configuration: hypothesis profiles and shared markers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from support import pg
from support.softhsm import SoftToken, make_token

# CI runs on 2 cores with a time budget; property tests get a bounded number of examples
# and no per-example deadline (a loaded machine must not turn slowness into failures).
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("PROVKIT_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def soft_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """A fresh, initialised SoftHSM2 token of this test (see :mod:`support.softhsm`)."""
    return make_token(tmp_path / "softhsm", monkeypatch)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration])]
)
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A registry location: a SQLite file, then a PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(tmp_path / "registry.sqlite")
    else:
        with pg.fresh_schema() as url:
            yield url

"""Suite-wide test configuration: hypothesis profiles and shared markers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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

"""Suite-wide test configuration: hypothesis profiles and shared markers."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI runs on 2 cores with a time budget; property tests get a bounded number of examples
# and no per-example deadline (a loaded machine must not turn slowness into failures).
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("PROVKIT_HYPOTHESIS_PROFILE", "ci"))

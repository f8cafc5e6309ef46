"""Reconciling a chunk of rows: the view it returns is the registry's after its changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.line.reconcile import reconcile
from provkit.registry import AttemptState, Registry

pytestmark = pytest.mark.integration


def test_a_refusal_shows_in_the_returned_view(
    fcu_home: Path, farm_factory: Callable[..., DeviceFarm], devices_csv: Callable[..., Path], tmp_path: Path
) -> None:
    """Prepared attempts whose identity another batch provisioned meanwhile are failed with
    4001, and the view the step goes on with says so (nothing new was recorded, yet the
    view must not be the one read before the refusal)."""
    farm = farm_factory(2)
    options = BatchOptions(fcu_home, workers=1)
    with Registry.open(tmp_path / "r.sqlite", station_id="s") as registry:
        early = devices_csv(tmp_path / "a.csv", farm.addresses())
        assert Batch.open(tmp_path / "a", registry, early, options).prepare().ok
        other = devices_csv(tmp_path / "b.csv", farm.addresses()[:1])
        assert Batch.open(tmp_path / "b", registry, other, options).run().ok
        batch = Batch.open(tmp_path / "a", registry, None, options)
        view = reconcile(batch.ctx, batch.ctx.devices.rows)
        stored = registry.batch_attempts(batch.batch_id)
    assert view == stored
    states = {a.endpoint_name: (a.state, a.error_code) for a in view.values()}
    assert states == {"ep-0000": (AttemptState.FAILED, 4001), "ep-0001": (AttemptState.PREPARED, None)}

"""Every statement a batch sends the registry reaches its rows by an index (EXPLAIN, both databases).

A batch's cost per device stays flat however large the registry grows only if nothing it
runs per device or per group of devices reads a table whole. These tests record every
statement of real batches — allocation from a pattern and from a CSV pool, preparation,
the journal's group commits with reservations and verdicts, a resume after a lost
answer, a refusal and a reprovisioning — on a registry that already holds thousands of
attempts (with planner statistics), and EXPLAIN each one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from provkit.line.batch import Batch, BatchOptions
from provkit.line.farm import DeviceFarm
from provkit.registry import IdentityPattern, Registry, parse_identity_csv
from provkit.transport.link import LinkSettings
from support import bulk
from support.plans import Recorder, accesses

pytestmark = pytest.mark.integration

BATCH_ROWS = "FROM attempts \nWHERE attempts.batch_id = "
"""How a statement reading a batch's attempt rows starts its condition; a batch reads them a
chunk of slots at a time (``attempts.slot IN``), never the whole batch (only counts by state,
on the batch + state index, for its progress bar)."""


def _options(home: Path, **kw: object) -> BatchOptions:
    settings = LinkSettings(timeout_s=10, connect_timeout_s=2, retries=0, retry_delay_s=0.01)
    return BatchOptions(home_dir=home, workers=1, concurrency=4, inject=settings, **kw)  # type: ignore[arg-type]


def _addresses_only(path: Path, farm: DeviceFarm) -> Path:
    path.write_text("address\n" + "".join(f"{h}:{p}\n" for h, p in farm.addresses()), encoding="utf-8")
    return path


def test_a_batchs_statements_all_use_indexes(
    fcu_home: Path,
    farm_factory: Callable[..., DeviceFarm],
    devices_csv: Callable[..., Path],
    registry_url: str,
    tmp_path: Path,
) -> None:
    """Run, resume, pool allocation, refusal and reprovisioning: no statement scans a table."""
    farm = farm_factory(6)
    with Registry.open(registry_url, station_id="st-1") as registry:
        bulk.fill(registry.engine, 3000)
        with Recorder(registry.engine) as recorder:
            pattern = IdentityPattern("{prefix}-{seq:04d}", prefix="plan")
            allocated = _addresses_only(tmp_path / "alloc.csv", farm)
            Batch.open(tmp_path / "a", registry, allocated, _options(fcu_home, pattern=pattern)).run()
            # A batch prepared, one device left "sending" as a kill leaves it, then resumed.
            explicit = devices_csv(tmp_path / "explicit.csv", farm.addresses())
            batch = Batch.open(tmp_path / "b", registry, explicit, _options(fcu_home))
            batch.prepare()
            registry.mark_sending(batch.registry.batch_attempts(batch.batch_id, ["2"])["2"].id)
            Batch.open(tmp_path / "b", registry, None, _options(fcu_home)).run()
            # The same identities again: refused (4001), then reprovisioned.
            Batch.open(tmp_path / "c", registry, explicit, _options(fcu_home)).run()
            Batch.open(tmp_path / "d", registry, explicit, _options(fcu_home, reprovision=True)).run()
            pool = tmp_path / "pool.csv"
            pool.write_text("".join(f"pool-{n},PSN{n}\n" for n in range(6)), encoding="utf-8")
            registry.load_pool("csv:pool", parse_identity_csv(pool.read_text()))
            pooled = _addresses_only(tmp_path / "pooled.csv", farm)
            Batch.open(tmp_path / "e", registry, pooled, _options(fcu_home, pool="csv:pool")).run()
        statements = recorder.reads()
        with registry.engine.connect() as conn:
            plans = {statement: accesses(conn, statement, params) for statement, params in statements.items()}
    assert len(plans) > 15  # the workload really went through the registry
    bad = {
        statement: [a for a in plan if a.how != "search" and a.how != "sort"]
        for statement, plan in plans.items()
    }
    bad = {statement: found for statement, found in bad.items() if found}
    assert not bad, "\n\n".join(f"{s}\n  -> {found}" for s, found in bad.items())
    chunked = [s for s in statements if BATCH_ROWS in s and not s.startswith("SELECT count(")]
    assert chunked  # the journal view is read by batch id and slots, index look-ups
    assert all("attempts.slot IN (" in s for s in chunked), chunked

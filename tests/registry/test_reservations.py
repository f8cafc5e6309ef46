"""Identity reservations: every transition of an attempt, on a real SQLite file and PostgreSQL.

An identity is reserved with the attempt's ``sending`` mark, before any bundle leaves;
the reservation is kept, released, handed over or taken over as the attempt moves on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from provkit.errors import DuplicateIdentityError
from provkit.registry import AttemptState, NewAttempt, Registry, StateChange
from provkit.registry.schema import provisioned, reservations


def _holders(registry: Registry) -> dict[str, int]:
    with registry.engine.connect() as conn:
        rows = conn.execute(select(reservations.c.endpoint_name, reservations.c.attempt_id)).all()
    return {str(r.endpoint_name): int(r.attempt_id) for r in rows}


def _new(registry: Registry, endpoint: str = "ep-1", serial: str = "sn-1", **kw: object) -> int:
    (attempt_id,) = registry.record_attempts(None, [NewAttempt(endpoint, serial, **kw)])  # type: ignore[arg-type]
    return attempt_id


def _refused(registry: Registry, attempt_id: int, *, reprovision: bool = False) -> str:
    """Mark sending, expecting the refusal; returns the reason recorded on the attempt."""
    with pytest.raises(DuplicateIdentityError) as caught:
        registry.mark_sending(attempt_id, reprovision=reprovision)
    attempt = registry.get_attempt(attempt_id)
    assert caught.value.code == 4001
    assert attempt.state is AttemptState.FAILED and attempt.error_code == 4001 and attempt.tries == 0
    return attempt.error_message or ""


def test_sending_reserves_and_a_clash_on_either_value_is_refused_before_sending(registry_url: str) -> None:
    """The second attempt for an endpoint name, or for a serial number, is refused at its
    sending mark with the holder's attempt, station and batch and how it is freed."""
    with Registry.open(registry_url, station_id="line-1") as registry:
        registry.create_batch("b1")
        (holder,) = registry.record_attempts("b1", [NewAttempt("ep-1", "sn-1", slot="1")])
        registry.mark_sending(holder)
        assert _holders(registry) == {"ep-1": holder}
    with Registry.open(registry_url, station_id="line-2") as other:
        for endpoint, serial in (("ep-1", "sn-9"), ("ep-9", "sn-1")):
            reason = _refused(other, _new(other, endpoint, serial))
            assert f"reserved by attempt {holder} of station line-1 (batch b1, sending)" in reason
            assert "run again" in reason and "--reprovision" in reason
        assert _holders(other) == {"ep-1": holder}
        assert other.get_attempt(holder).state is AttemptState.SENDING


def test_one_group_of_sending_marks_is_decided_by_the_database(registry_url: str) -> None:
    """Two marks for one identity in the same group: the first is applied, the second refused."""
    with Registry.open(registry_url, station_id="s") as registry:
        first, second, free = registry.record_attempts(
            None, [NewAttempt("ep-1", "sn-1"), NewAttempt("ep-1", "sn-1"), NewAttempt("ep-2", "sn-2")]
        )
        marks = [StateChange(i, AttemptState.SENDING) for i in (first, second, free)]
        assert registry.apply_changes(marks) == [True, False, True]
        assert registry.get_attempt(second).state is AttemptState.FAILED
        assert registry.get_attempt(first).tries == 1 and registry.get_attempt(free).tries == 1
        assert _holders(registry) == {"ep-1": first, "ep-2": free}


def test_injected_and_verified_keep_the_reservation(registry_url: str) -> None:
    """An answered and then a provisioned identity stays reserved: no later attempt may send it."""
    with Registry.open(registry_url, station_id="s") as registry:
        winner = _new(registry)
        registry.mark_sending(winner)
        registry.update_attempt(winner, AttemptState.INJECTED, return_status=0)
        assert _holders(registry) == {"ep-1": winner}  # the answer is in: still held
        registry.mark_verified(winner)
        assert _holders(registry) == {"ep-1": winner}
        reason = _refused(registry, _new(registry))
        assert reason == f"ep-1 / sn-1 is already provisioned (attempt {winner}, station s); " + (
            "use --reprovision to replace it"
        )


def test_failure_before_the_device_frees_the_identity_and_after_keeps_it(registry_url: str) -> None:
    """No try connected: released. The bundle may have reached the device: kept."""
    with Registry.open(registry_url, station_id="s") as registry:
        unreached = _new(registry)
        registry.mark_sending(unreached)
        registry.mark_failed(unreached, 1021, "no connection", release=True)
        assert _holders(registry) == {}
        reached = _new(registry)
        registry.mark_sending(reached)
        registry.mark_failed(reached, 1022, "no answer in time")
        assert _holders(registry) == {"ep-1": reached}
        assert f"reserved by attempt {reached} of station s (failed)" in _refused(registry, _new(registry))


def test_resume_hands_the_reservation_to_the_superseding_attempt(registry_url: str) -> None:
    """The attempt replacing an interrupted one inherits its reservation; being inherited, it
    is kept even when the new bundle never reaches the device (the old one may have)."""
    with Registry.open(registry_url, station_id="s") as registry:
        interrupted = _new(registry)
        registry.mark_sending(interrupted)
        registry.mark_failed(interrupted, None, "interrupted after sending: response lost")
        successor = _new(registry, supersedes_id=interrupted)
        assert _holders(registry) == {"ep-1": successor}
        registry.mark_sending(successor)
        registry.mark_failed(successor, 1021, "no connection", release=True)
        assert _holders(registry) == {"ep-1": successor}
        third = _new(registry, supersedes_id=successor)
        registry.mark_sending(third)
        registry.update_attempt(third, AttemptState.INJECTED, return_status=0)
        registry.mark_verified(third)
        assert _holders(registry) == {"ep-1": third}
        assert registry.provisioned_owner("ep-1", "sn-1").id == third  # type: ignore[union-attr]


def test_a_crashed_station_is_never_robbed_silently_only_by_reprovision(registry_url: str) -> None:
    """Another station is refused; ``--reprovision`` takes the reservation over, and the
    crashed station's resume then finds nothing to hand over and is refused in turn."""
    with Registry.open(registry_url, station_id="crashed") as crashed:
        lost = _new(crashed)
        crashed.mark_sending(lost)  # killed here: the device may hold the bundle
    with Registry.open(registry_url, station_id="other") as other:
        _refused(other, _new(other))
        taker = _new(other)
        other.mark_sending(taker, reprovision=True)
        assert _holders(other) == {"ep-1": taker}
        # Inherited: the crashed station's device may hold it, so it is not freed here.
        other.mark_failed(taker, 1021, "no connection", release=True)
        assert _holders(other) == {"ep-1": taker}
    with Registry.open(registry_url, station_id="crashed") as crashed:
        crashed.mark_failed(lost, None, "interrupted after sending: response lost")
        resumed = _new(crashed, supersedes_id=lost)
        assert f"reserved by attempt {taker} of station other" in _refused(crashed, resumed)


def test_reprovision_moves_the_reservation_and_supersedes_the_provisioned_holder(
    registry_url: str,
) -> None:
    """Reprovisioning a provisioned identity: taken over at sending, superseding at the verdict."""
    with Registry.open(registry_url, station_id="s") as registry:
        old = _new(registry)
        registry.mark_sending(old)
        registry.mark_verified(old)
        new = _new(registry)
        registry.mark_sending(new, reprovision=True)
        assert _holders(registry) == {"ep-1": new}
        registry.update_attempt(new, AttemptState.INJECTED, return_status=0)
        registry.mark_verified(new, reprovision=True)
        assert registry.get_attempt(old).state is AttemptState.SUPERSEDED
        assert registry.get_attempt(old).superseded_by_id == new
        assert _holders(registry) == {"ep-1": new}
        assert registry.stats().provisioned == 1


def test_upgrade_from_0001_reserves_the_provisioned_identities(tmp_path: Path) -> None:
    """A registry created before reservations existed refuses to send what it provisioned."""
    from support.migrations import registry_at_revision

    path = tmp_path / "old.sqlite"
    registry_at_revision(path, "0001")
    with Registry.open(path, station_id="old", migrate=False) as registry:
        old = _new(registry)
        # What 0001 wrote for a provisioned device: the attempt and its provisioned row.
        registry.update_attempt(old, AttemptState.VERIFIED, provisioned_at=datetime.now(UTC))
        with registry.engine.begin() as conn:
            conn.execute(
                provisioned.insert().values(
                    endpoint_name="ep-1",
                    serial_number="sn-1",
                    attempt_id=old,
                    provisioned_at=datetime.now(UTC),
                )
            )
    with Registry.open(path, station_id="new") as registry:
        assert _holders(registry) == {"ep-1": old}
        assert "already provisioned" in _refused(registry, _new(registry, "ep-2", "sn-1"))

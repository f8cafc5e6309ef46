"""Grouped state changes (Registry.apply_changes) and bulk attempt recording."""

from __future__ import annotations

from provkit.registry import AttemptState, NewAttempt, Registry, StateChange


def _attempts(registry: Registry, names: list[str]) -> list[int]:
    return registry.record_attempts(None, [NewAttempt(n, f"sn-{n}", slot=n) for n in names])


def test_group_claims_free_identities_and_leaves_taken_ones_unwritten(registry_url: str) -> None:
    """One transaction verifies free identities; a taken one (even within the group) is not applied."""
    with Registry.open(registry_url, station_id="s") as registry:
        a, b, c, twin = _attempts(registry, ["a", "b", "c", "a"])
        registry.mark_verified(c)
        d = _attempts(registry, ["c"])[0]
        applied = registry.apply_changes(
            [
                StateChange(a, AttemptState.VERIFIED, {"info_message": "ok"}),
                StateChange(twin, AttemptState.VERIFIED),  # same identity as a, same group
                StateChange(b, AttemptState.SENDING),
                StateChange(d, AttemptState.VERIFIED),  # c already holds it
            ]
        )
        assert applied == [True, False, True, False]
        by_id = {x.id: x for x in registry.find()}
        assert by_id[a].state is AttemptState.VERIFIED and by_id[a].info_message == "ok"
        assert by_id[a].provisioned_at is not None
        assert by_id[twin].state is AttemptState.ALLOCATED  # nothing written for it
        assert by_id[b].state is AttemptState.SENDING and by_id[b].tries == 1
        assert by_id[d].state is AttemptState.ALLOCATED
        assert registry.stats().provisioned == 2


def test_record_attempts_returns_ids_in_order_and_links_superseded(registry_url: str) -> None:
    """The bulk insert gives ids in item order and links each superseded attempt forward."""
    with Registry.open(registry_url, station_id="s") as registry:
        first = _attempts(registry, [f"d{n}" for n in range(300)])
        again = registry.record_attempts(
            None, [NewAttempt("d7", "sn-d7", slot="d7", supersedes_id=first[7]), NewAttempt("e", "sn-e")]
        )
        rows = {x.id: x for x in registry.find()}
    assert [rows[i].endpoint_name for i in first] == [f"d{n}" for n in range(300)]
    assert first == sorted(first) and again[0] > first[-1]
    assert rows[first[7]].superseded_by_id == again[0] and rows[again[0]].supersedes_id == first[7]

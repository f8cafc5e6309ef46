"""Identity allocation from patterns and CSV pools."""

from __future__ import annotations

import re

import pytest

from provkit.errors import AllocationError, PatternConflictError
from provkit.registry import Identity, IdentityPattern, Registry, parse_identity_csv


def test_pattern_renders_prefix_and_sequence() -> None:
    """The template formats prefix and zero-padded sequence."""
    pattern = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="dev")
    assert pattern.render(42) == Identity("dev-000042", "SN00000042")


@pytest.mark.parametrize("template", ["{prefix}-fixed", "{name}-{seq}", "{seq:zz}", "{seq", "{0}"])
def test_bad_patterns_are_refused(template: str) -> None:
    """Templates without {seq}, with unknown fields or malformed are AllocationError 4002."""
    with pytest.raises(AllocationError) as caught:
        IdentityPattern(template)
    assert caught.value.code == 4002


def test_pattern_allocation_never_repeats(registry_url: str) -> None:
    """Consecutive allocations continue the sequence and never hand out a value twice."""
    pattern = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:06d}", prefix="p")
    with Registry.open(registry_url, station_id="s") as registry:
        first = registry.allocate(pattern, 3)
        second = registry.allocate(pattern, 2)
    assert [i.endpoint_name for i in first] == ["p-000001", "p-000002", "p-000003"]
    assert [i.serial_number for i in second] == ["SN000004", "SN000005"]


def test_pattern_allocation_skips_values_taken_elsewhere(registry_url: str) -> None:
    """A value already allocated from a CSV pool is skipped by a pattern that produces it."""
    with Registry.open(registry_url, station_id="s") as registry:
        registry.load_pool("csv", [Identity("p-000001", "SN000001")])
        assert registry.allocate_from_pool("csv", 1) == [Identity("p-000001", "SN000001")]
        got = registry.allocate(IdentityPattern("p-{seq:06d}", "SN{seq:06d}"), 1)
    assert got == [Identity("p-000002", "SN000002")]


def test_pattern_allocation_skips_values_attempts_used(registry_url: str) -> None:
    """Endpoint names or serials some attempt used (given explicitly), or listed to avoid, are skipped."""
    from provkit.registry import NewAttempt

    pattern = IdentityPattern("p-{seq:06d}", "SN{seq:06d}")
    with Registry.open(registry_url, station_id="s") as registry:
        registry.record_attempts(None, [NewAttempt("p-000001", "other"), NewAttempt("other", "SN000002")])
        got = registry.allocate(pattern, 2, avoid={"p-000004"})
    assert got == [Identity("p-000003", "SN000003"), Identity("p-000005", "SN000005")]


def test_csv_pool_is_claimed_in_order_once(registry_url: str) -> None:
    """CSV pool entries are handed out in file order and each only once."""
    identities = parse_identity_csv("endpoint_name,serial_number\na,1\nb,2\nc,3\n")
    with Registry.open(registry_url, station_id="s") as registry:
        assert registry.load_pool("lot7", identities) == 3
        assert registry.load_pool("lot7", identities) == 0
        assert registry.allocate_from_pool("lot7", 2) == identities[:2]
        with pytest.raises(AllocationError, match="only 1 unclaimed"):
            registry.allocate_from_pool("lot7", 2)
        assert registry.allocate_from_pool("lot7", 1) == identities[2:]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a,1,extra\n", "expected 2 columns"),
        ("a,\n", "serial number is empty"),
        ("a,1\nb,1\n", "duplicate identity"),
        ("a\x07,1\n", "non-printable"),
        ("x" * 300 + ",1\n", "longer than"),
        ("a,1\n" + "x" * 200_000 + ",2\n", "line 2: unreadable: field larger than field limit"),
    ],
)
def test_bad_identity_csv_names_the_line(text: str, reason: str) -> None:
    """A bad CSV row is refused with its line number and the reason."""
    with pytest.raises(AllocationError, match=reason):
        parse_identity_csv(text)


def test_allocating_zero_is_refused(tmp_path: object) -> None:
    """Asking for no identities is an AllocationError rather than a silent no-op."""
    with Registry.open(f"{tmp_path}/r.sqlite", station_id="s") as registry, pytest.raises(AllocationError):
        registry.allocate(IdentityPattern("{seq}"), 0)


def test_template_without_prefix_under_a_new_prefix_is_refused_up_front(registry_url: str) -> None:
    """'SN{seq:08d}' with a new --prefix would only meet serials line1 took: 4003 names the serial pattern."""
    line1 = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="line1")
    line2 = IdentityPattern("{prefix}-{seq:06d}", "SN{seq:08d}", prefix="line2")
    with Registry.open(registry_url, station_id="s") as registry:
        registry.allocate(line1, 40)
        with pytest.raises(PatternConflictError) as caught:
            registry.allocate(line2, 3)
        assert caught.value.code == 4003 and isinstance(caught.value, AllocationError)
        assert "serial pattern 'SN{seq:08d}' has no {prefix}" in caught.value.message
        assert "'SN00000001'" in caught.value.message and "'line1'" in caught.value.message
        assert "put {prefix} in the serial pattern" in (caught.value.hint or "")
        # Nothing was drawn: the fixed pattern starts line2 at 1, and line1 simply goes on.
        fixed = IdentityPattern("{prefix}-{seq:06d}", "{prefix}-SN{seq:08d}", prefix="line2")
        assert registry.allocate(fixed, 1) == [Identity("line2-000001", "line2-SN00000001")]
        assert registry.allocate(line1, 1) == [Identity("line1-000041", "SN00000041")]


def test_endpoint_template_without_prefix_is_named(registry_url: str) -> None:
    """The same check names the endpoint pattern when that is the one without {prefix}."""
    with Registry.open(registry_url, station_id="s") as registry:
        registry.allocate(IdentityPattern("dev-{seq:04d}", "{prefix}{seq}", prefix="a"), 2)
        with pytest.raises(PatternConflictError, match=re.escape("endpoint pattern 'dev-{seq:04d}' has no")):
            registry.allocate(IdentityPattern("dev-{seq:04d}", "{prefix}{seq}", prefix="b"), 2)

"""``provkit registry list | show | stats | export``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.cli.main import cli
from provkit.registry import AttemptState, NewAttempt, Registry


@pytest.fixture
def registry_path(tmp_path: Path) -> str:
    """A SQLite registry with two provisioned devices and one failed attempt."""
    path = str(tmp_path / "r.sqlite")
    with Registry.open(path, station_id="st-9") as registry:
        ids = registry.record_attempts(
            None, [NewAttempt("ep-a", "sn-a"), NewAttempt("ep-b", "sn-b"), NewAttempt("ep-c", "sn-c")]
        )
        for attempt_id in ids[:2]:
            registry.update_attempt(attempt_id, AttemptState.INJECTED, return_status=0)
            registry.mark_verified(attempt_id, enrollment_id=f"A-{attempt_id:02X}", device_cert_sha256="00")
        registry.mark_failed(ids[2], 1021, "unreachable")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["registry", *args])
    return result.exit_code, result.output


def test_list_json_and_filters(registry_path: str) -> None:
    """list prints attempts and filters by state and provisioned."""
    code, output = _run("list", "--registry", registry_path, "--json")
    assert code == 0 and [a["endpoint_name"] for a in json.loads(output)] == ["ep-a", "ep-b", "ep-c"]
    _, failed = _run("list", "--registry", registry_path, "--json", "--state", "failed")
    assert [a["error_message"] for a in json.loads(failed)] == ["unreachable"]
    _, table = _run("list", "--registry", registry_path, "--provisioned")
    assert "ep-a" in table and "ep-c" not in table


def test_show_and_stats(registry_path: str) -> None:
    """show gives an endpoint's attempts; stats counts states and stations."""
    code, output = _run("show", "--registry", registry_path, "ep-b")
    assert code == 0 and json.loads(output)[0]["state"] == "verified"
    _, stats = _run("stats", "--registry", registry_path, "--json")
    assert json.loads(stats) == {
        "attempts": 3,
        "provisioned": 2,
        "by_state": {"failed": 1, "verified": 2},
        "by_station": {"st-9": 2},
    }


def test_show_by_attempt_id(registry_path: str) -> None:
    """show also takes an attempt id; an unknown id is a registry error."""
    code, output = _run("show", "--registry", registry_path, "3")
    assert code == 0 and [(a["id"], a["state"]) for a in json.loads(output)] == [(3, "failed")]
    code, output = _run("show", "--registry", registry_path, "99")
    assert code == 1 and "Error PROVKIT-4000: no attempt for '99'" in output


def test_show_unknown_endpoint_is_an_error(registry_path: str) -> None:
    """Showing an unknown endpoint exits 1 with the registry error code."""
    code, output = _run("show", "--registry", registry_path, "nope")
    assert code == 1 and "Error PROVKIT-4000" in output


def test_export_json_and_csv_file(registry_path: str, tmp_path: Path) -> None:
    """export writes only provisioned devices, as JSON or to a CSV file."""
    _, output = _run("export", "--registry", registry_path, "--format", "json")
    assert [d["endpoint_name"] for d in json.loads(output)] == ["ep-a", "ep-b"]
    code, _ = _run("export", "--registry", registry_path, "--out", str(tmp_path / "x.csv"))
    assert code == 0 and (tmp_path / "x.csv").read_text().count("\n") == 3


def test_unreachable_registry_exits_with_error() -> None:
    """A registry URL that cannot be opened is reported, not a traceback."""
    code, output = _run("stats", "--registry", "mysql://nowhere/x")
    assert code == 1 and "Error PROVKIT-4000" in output


def test_list_pages_and_points_at_the_next_one(registry_path: str) -> None:
    """A full page ends with the option that continues it; the pages together are the list."""
    result = CliRunner().invoke(
        cli, ["registry", "list", "--registry", registry_path, "--json", "--limit", "2"]
    )
    assert result.exit_code == 0
    first = json.loads(result.stdout)
    assert [a["id"] for a in first] == [1, 2] and "next page: --after 2" in result.stderr
    _, rest = _run("list", "--registry", registry_path, "--json", "--limit", "2", "--after", "2")
    assert [a["id"] for a in json.loads(rest)] == [3]
    result = CliRunner().invoke(
        cli, ["registry", "list", "--registry", registry_path, "--json", "--newest", "--limit", "2"]
    )
    assert [a["id"] for a in json.loads(result.stdout)] == [3, 2] and "--before 2" in result.stderr


def test_show_by_serial_and_fingerprint(registry_path: str) -> None:
    """show takes a serial number or a certificate fingerprint as well as an endpoint name."""
    code, by_serial = _run("show", "--registry", registry_path, "sn-b")
    assert code == 0 and [a["endpoint_name"] for a in json.loads(by_serial)] == ["ep-b"]
    with Registry.open(registry_path, station_id="st-9") as registry:
        (attempt_id,) = registry.record_attempts(None, [NewAttempt("ep-d", "sn-d")])
        registry.mark_verified(attempt_id, device_cert_sha256="5e" * 32)
    code, by_fingerprint = _run("show", "--registry", registry_path, ":".join(["5E"] * 32))
    assert code == 0 and [a["endpoint_name"] for a in json.loads(by_fingerprint)] == ["ep-d"]


def test_export_enrollment_ids(registry_path: str) -> None:
    """--enrollment-only writes the ids of the provisioned devices, one per line."""
    code, output = _run("export", "--registry", registry_path, "--enrollment-only")
    assert code == 0 and output.splitlines() == ["A-01", "A-02"]


def test_export_that_cannot_be_written_leaves_no_file(registry_path: str, tmp_path: Path) -> None:
    """An export into a missing directory fails with the registry code and writes nothing."""
    target = tmp_path / "missing" / "x.csv"
    code, output = _run("export", "--registry", registry_path, "--out", str(target))
    assert code == 1 and "cannot write" in output
    assert not target.parent.exists()
    code, _ = _run("export", "--registry", registry_path, "--out", str(tmp_path / "ok.csv"))
    left = [p.name for p in tmp_path.iterdir() if not p.name.startswith("r.sqlite")]
    assert code == 0 and left == ["ok.csv"]


def test_list_connections(registry_path: str) -> None:
    """connections lists the connection records (table and JSON, filters, one endpoint)."""
    from provkit.registry import ConnectionEvent, ConnectionOutcome

    with Registry.open(registry_path) as registry:
        registry.connections.record(
            [
                ConnectionEvent("ep-a", "bootstrap", ConnectionOutcome.BOOTSTRAPPED, address="127.0.0.1:1"),
                ConnectionEvent("ep-a", "lwm2m", ConnectionOutcome.REGISTERED, location="/rd/1", mode="psk"),
                ConnectionEvent(
                    "ep-b", "lwm2m", ConnectionOutcome.FAILED, failure="timeout", error_code=8014
                ),
            ]
        )
    code, output = _run("connections", "--registry", registry_path, "--json", "--endpoint", "ep-a")
    shown = json.loads(output)
    assert code == 0 and [c["service"] for c in shown] == ["bootstrap", "lwm2m"]
    assert shown[1]["location"] == "/rd/1" and shown[0]["outcome"] == "bootstrapped"
    code, output = _run("connections", "--registry", registry_path, "--json", "--outcome", "failed")
    assert code == 0 and [(c["endpoint_name"], c["failure"]) for c in json.loads(output)] == [
        ("ep-b", "timeout")
    ]
    code, table = _run("connections", "--registry", registry_path, "--service", "lwm2m")
    assert code == 0 and "ep-a" in table and "timeout" in table and "8014" in table

"""``provkit batch`` and ``provkit device farm`` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from provkit.cli.main import cli
from provkit.line.farm import DeviceFarm

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An FCU home with a factory CA."""
    from provkit.factory.api import FactoryToolApi
    from provkit.factory.home import make_demo_home

    path = tmp_path_factory.mktemp("home")
    make_demo_home(path)
    assert FactoryToolApi(home_dir=path).setup_factory_configurator_utility().ok
    return path


def _csv(path: Path, farm: DeviceFarm, identities: bool = False) -> Path:
    rows = [
        f"{h}:{p},ep-{n},sn-{n}" if identities else f"{h}:{p},," for n, (h, p) in enumerate(farm.addresses())
    ]
    path.write_text("address,endpoint_name,serial_number\n" + "\n".join(rows) + "\n")
    return path


def test_batch_run_with_pattern_then_registry_export(home: Path, tmp_path: Path) -> None:
    """batch run allocates from a pattern, provisions, prints a summary; export lists the devices."""
    with DeviceFarm(3).start() as farm:
        devices = _csv(tmp_path / "devices.csv", farm)
        args = [
            "--home-dir",
            str(home),
            "batch",
            "run",
            "--devices",
            str(devices),
            "--out",
            str(tmp_path / "b"),
        ]
        args += [
            "--endpoint-pattern",
            "{prefix}-{seq:04d}",
            "--prefix",
            "cli",
            "--workers",
            "1",
        ]
        args += ["--report", str(tmp_path / "copy.json")]
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    # The progress bars (count, rate, ETA), then the summary table, then the report path.
    bars = [line for line in result.output.splitlines() if "3/3" in line]
    assert {line.split()[0] for line in bars} == {"prepare", "inject"}
    assert all("dev/s" in line and "ETA" in line for line in bars)
    assert "status" in result.output and "provisioned" in result.output and "report:" in result.output
    assert (home / "registry.sqlite").is_file()  # the default registry lives in the FCU home
    assert json.loads((tmp_path / "copy.json").read_text())["counts"] == {"provisioned": 3}
    exported = CliRunner().invoke(cli, ["--home-dir", str(home), "registry", "export", "--format", "csv"])
    lines = exported.output.strip().splitlines()
    assert lines[0].startswith("enrollment_id,endpoint_name,serial_number")
    assert sorted(line.split(",")[1] for line in lines[1:]) == ["cli-0001", "cli-0002", "cli-0003"]
    ids = CliRunner().invoke(cli, ["--home-dir", str(home), "registry", "export", "--enrollment-only"])
    assert all(line.startswith("A-") for line in ids.output.split())


def test_batch_substeps_and_failure_exit_status(home: Path, tmp_path: Path) -> None:
    """prepare/inject/verify run separately; a failed device makes the command exit 1."""
    registry = str(tmp_path / "r.sqlite")
    base = ["--home-dir", str(home), "batch"]
    common = ["--out", str(tmp_path / "b"), "--registry", registry, "--no-progress", "--workers", "1"]
    with DeviceFarm(2).start() as farm:
        devices = _csv(tmp_path / "devices.csv", farm, identities=True)
        prepared = CliRunner().invoke(cli, [*base, "prepare", "--devices", str(devices), *common])
        assert prepared.exit_code == 0, prepared.output
        injected = CliRunner().invoke(cli, [*base, "inject", *common])
        assert injected.exit_code == 0, injected.output
    verified = CliRunner().invoke(cli, [*base, "verify", *common])
    assert verified.exit_code == 0, verified.output
    again = tmp_path / "again.csv"
    again.write_text(devices.read_text())
    refused = CliRunner().invoke(
        cli,
        [
            *base,
            "run",
            "--devices",
            str(again),
            "--out",
            str(tmp_path / "c"),
            "--registry",
            registry,
            "--no-progress",
        ],
    )
    assert refused.exit_code == 1
    assert "4001" in refused.output and "already provisioned" in refused.output


def test_bad_pattern_and_missing_batch_are_clear_errors(home: Path, tmp_path: Path) -> None:
    """A malformed pattern or an empty batch directory ends with the documented error code."""
    devices = tmp_path / "d.csv"
    devices.write_text("address\n127.0.0.1:1\n")
    bad = CliRunner().invoke(
        cli,
        ["--home-dir", str(home), "batch", "run", "--devices", str(devices), "--out", str(tmp_path / "b"),
         "--endpoint-pattern", "{nope}"],
    )  # fmt: skip
    assert bad.exit_code == 1 and "Error PROVKIT-4002" in bad.output
    empty = CliRunner().invoke(
        cli, ["--home-dir", str(home), "batch", "verify", "--out", str(tmp_path / "none")]
    )
    assert empty.exit_code == 1 and "Error PROVKIT-4100" in empty.output


@pytest.mark.parametrize(
    ("option", "content", "expected"),
    [
        ("--identities", b"\xbe\xef\x00garbage", "Error PROVKIT-4002: cannot read identity CSV"),
        (
            "--identities",
            b"a,1\n" + b"x" * 200_000 + b",2\n",
            "Error PROVKIT-4002: identity CSV line 2: unreadable",
        ),
        ("--devices", b"\xbe\xef\x00garbage", "Error PROVKIT-4100: cannot read devices file"),
    ],
)
def test_unreadable_input_files_are_clear_errors(
    home: Path, tmp_path: Path, option: str, content: bytes, expected: str
) -> None:
    """Binary or over-long input is refused with its code, never a traceback."""
    devices = tmp_path / "d.csv"
    devices.write_text("address\n127.0.0.1:1\n")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    files = {"--devices": devices, option: bad}
    args = ["--home-dir", str(home), "batch", "prepare", "--out", str(tmp_path / "b"), "--no-progress"]
    for name, path in files.items():
        args += [name, str(path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and expected in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_farm_storage_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    """``device farm --storage`` naming a file fails with a message, not a traceback."""
    target = tmp_path / "file"
    target.write_text("x")
    result = CliRunner().invoke(cli, ["device", "farm", "--count", "2", "--storage", str(target)])
    assert result.exit_code == 1 and "farm's storage directory" in result.output, result.output


def test_device_farm_command_serves_until_terminated(tmp_path: Path) -> None:
    """The farm command prints one line per device and stops cleanly on SIGTERM."""
    ports_file = tmp_path / "ports.json"
    code = "import sys; from provkit.cli.farm_cmd import farm_cmd; farm_cmd(sys.argv[1:])"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--count",
            "5",
            "--storage",
            str(tmp_path / "store"),
            "--ports-file",
            str(ports_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not ports_file.exists() or not ports_file.read_text():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        ports = json.loads(ports_file.read_text())["ports"]
        assert len(ports) == 5
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.count("device ") == 5 and "farm stopped" in err
